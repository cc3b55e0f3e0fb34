"""Plan: a pure function of spec and inventory, returning the ordered changes that converge the account.

The plan is data. It is shown to the operator (table, Terraform-style text, JSON) and consumed by apply;
nothing here calls AWS. Safe order is the plan's order: policies before attachments, attachments of the
new before detachments of the old, deletions last.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pandas as pd

from .errors import SpecError
from .inventory import Inventory, default_document
from .names import (
    attachment_address,
    name_from_arn,
    policy_address,
    policy_arn,
    policy_description,
    policy_document,
    policy_name,
    user_address,
    user_tags,
)
from .spec import Spec

MAX_POLICY_VERSIONS = 5

#: kind -> (symbol, summary bucket); the order here is the apply order.
KINDS = {
    "create_policy": ("+", "add"),
    "prune_policy_version": ("~", "change"),
    "update_policy": ("~", "change"),
    "create_user": ("+", "add"),
    "import_user": ("<=", "import"),
    "tag_user": ("~", "change"),
    "attach": ("+", "add"),
    "detach": ("-", "destroy"),
    "delete_user": ("-", "destroy"),
}
_ORDER = {kind: i for i, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Change:
    """One step of a plan; apply makes one API call for it (a user deletion is its full cleanup)."""

    kind: str
    address: str
    reason: str
    user: str | None = None
    role_key: str | None = None
    policy_name: str | None = None
    policy_arn: str | None = None
    #: for detach: "user" | "group" | "role", and the entity's name
    target_kind: str | None = None
    target_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    document: str | None = None
    description: str | None = None
    version_id: str | None = None

    @property
    def symbol(self) -> str:
        return KINDS[self.kind][0]

    def as_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        if self.tags:
            d["tags"] = dict(self.tags)
        return d


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    account_id: str
    caller_arn: str
    roles: dict = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        counts = {"import": 0, "add": 0, "change": 0, "destroy": 0}
        for change in self.changes:
            counts[KINDS[change.kind][1]] += 1
        return counts

    def summary_line(self) -> str:
        if self.is_empty:
            return "No changes. Your account matches the spec."
        c = self.summary()
        return f"Plan: {c['import']} to import, {c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."

    def deletions(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "delete_user"]

    def to_text(self) -> str:
        """Terraform's style: one line per change with its address, then the summary."""
        if self.is_empty:
            return "No changes. Your account matches the spec."
        lines = [f"  {c.symbol:>2} {c.address}: {c.reason}" for c in self.changes]
        return "\n".join([*lines, "", self.summary_line()])

    def to_frame(self) -> pd.DataFrame:
        cols = ["symbol", "kind", "address", "reason"]
        return pd.DataFrame(
            [{"symbol": c.symbol, "kind": c.kind, "address": c.address, "reason": c.reason} for c in self.changes],
            columns=cols,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "account_id": self.account_id,
                "caller_arn": self.caller_arn,
                "roles": dict(self.roles),
                "summary": self.summary(),
                "changes": [c.as_dict() for c in self.changes],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        changes = []
        for raw in data["changes"]:
            raw = dict(raw)
            raw["tags"] = tuple(raw.get("tags", {}).items())
            changes.append(Change(**raw))
        return cls(tuple(changes), data["account_id"], data["caller_arn"], dict(data.get("roles", {})))


def _canonical(doc: dict) -> str:
    """Documents compare equal when they mean the same (single statements may be a dict or a list)."""
    doc = dict(doc)
    statements = doc.get("Statement", [])
    doc["Statement"] = [statements] if isinstance(statements, dict) else statements
    return json.dumps(doc, sort_keys=True)


def _version_age(version: dict) -> tuple:
    """Sort key, oldest first: CreateDate, then the version number (v2 before v10; ids only grow)."""
    number = version["VersionId"].lstrip("v")
    created = version.get("CreateDate")
    return (created is None, created, int(number) if number.isdigit() else 0, version["VersionId"])


def check_roles_exist(spec: Spec, inventory: Inventory) -> None:
    missing = [
        f"role {key!r}: IAM role {name!r} does not exist in account {inventory.account_id}; "
        "create it first or fix `roles`"
        for key, name in spec.roles.items()
        if name not in inventory.roles
    ]
    if missing:
        raise SpecError(missing)


def _policy_changes(spec: Spec, inv: Inventory) -> tuple[list[Change], dict[str, str]]:
    changes: list[Change] = []
    arns: dict[str, str] = {}
    for key, role in spec.roles.items():
        name = policy_name(role)
        wanted = policy_document(inv.account_id, role)
        existing = inv.local_policy(name)
        arn = existing["Arn"] if existing else policy_arn(inv.account_id, name)
        arns[key] = arn
        common = dict(address=policy_address(key), role_key=key, policy_name=name, policy_arn=arn)
        if existing is None:
            changes.append(
                Change(
                    "create_policy",
                    reason=f"create {name} (sts:AssumeRole on {role})",
                    document=json.dumps(wanted),
                    description=policy_description(role),
                    tags=(("Name", name),),
                    **common,
                )
            )
            continue
        if _canonical(default_document(existing)) != _canonical(wanted):
            versions = existing.get("PolicyVersionList", [])
            if len(versions) >= MAX_POLICY_VERSIONS:
                oldest = min((v for v in versions if not v.get("IsDefaultVersion")), key=_version_age)
                changes.append(
                    Change(
                        "prune_policy_version",
                        reason=f"delete oldest non-default version {oldest['VersionId']} "
                        f"({MAX_POLICY_VERSIONS} versions is the limit)",
                        version_id=oldest["VersionId"],
                        **common,
                    )
                )
            changes.append(
                Change(
                    "update_policy",
                    reason="document differs from sts:AssumeRole on the role only: restore it",
                    document=json.dumps(wanted),
                    **common,
                )
            )
    return changes, arns


def _user_changes(spec: Spec, inv: Inventory, arns: dict[str, str]) -> list[Change]:
    changes: list[Change] = []
    managed_arns = {arn: key for key, arn in arns.items()}
    for user in spec.users.values():
        wanted_tags = user_tags(user.name, user.description, user.roles)
        existing = inv.user_named(user.name)
        address = user_address(user.name)
        if existing is None:
            changes.append(
                Change("create_user", address, "create user, tagged", user=user.name, tags=tuple(wanted_tags.items()))
            )
            held: set[str] = set()
        else:
            name = existing["UserName"]
            current = Inventory.tags(existing)
            diff = {k: v for k, v in wanted_tags.items() if current.get(k) != v}
            if not inv.is_managed(existing):
                changes.append(
                    Change(
                        "import_user",
                        address,
                        "adopt existing user: tag it ManagedBy=iamrunbook",
                        user=name,
                        tags=tuple(wanted_tags.items()),
                    )
                )
            elif diff:
                changes.append(
                    Change(
                        "tag_user",
                        address,
                        "update tags " + ", ".join(sorted(diff)),
                        user=name,
                        tags=tuple(diff.items()),
                    )
                )
            held = {managed_arns[a] for a in Inventory.attached_arns(existing) if a in managed_arns}
            for key in sorted(held - set(user.roles)):
                changes.append(_detach("user", name, key, arns[key], "role no longer granted by the spec"))
        for key in user.roles:
            if key not in held:
                changes.append(
                    Change(
                        "attach",
                        attachment_address(user.name, key),
                        f"grant {spec.roles[key]}",
                        user=existing["UserName"] if existing else user.name,
                        role_key=key,
                        policy_name=name_from_arn(arns[key]),
                        policy_arn=arns[key],
                    )
                )
    return changes


def _detach(kind: str, name: str, key: str, arn: str, why: str) -> Change:
    address = attachment_address(name, key) if kind == "user" else f"{kind}/{name}/{name_from_arn(arn)}"
    return Change(
        "detach",
        address,
        why,
        user=name if kind == "user" else None,
        role_key=key,
        policy_name=name_from_arn(arn),
        policy_arn=arn,
        target_kind=kind,
        target_name=name,
    )


def _drift_and_deletions(spec: Spec, inv: Inventory, arns: dict[str, str]) -> list[Change]:
    """Assume*Policy attachments the spec does not grant are drift; managed users gone from it are deleted."""
    changes: list[Change] = []
    spec_users = {u.lower() for u in spec.users}
    managed_arns = {arn: key for key, arn in arns.items()}
    for name, user in sorted(inv.users.items()):
        if name.lower() in spec_users:
            continue
        if inv.is_managed(user):
            changes.append(
                Change(
                    "delete_user",
                    user_address(name),
                    "tagged ManagedBy=iamrunbook but no longer in the spec: offboard",
                    user=name,
                )
            )
            continue
        for arn in sorted(Inventory.attached_arns(user) & managed_arns.keys()):
            changes.append(_detach("user", name, managed_arns[arn], arn, "drift: not granted by the spec"))
    for kind, entities in (("group", inv.groups), ("role", inv.roles)):
        for name, entity in sorted(entities.items()):
            for arn in sorted(Inventory.attached_arns(entity) & managed_arns.keys()):
                changes.append(
                    _detach(
                        kind,
                        name,
                        managed_arns[arn],
                        arn,
                        f"drift: Assume*Policy policies are granted to users only, not to a {kind}",
                    )
                )
    return changes


def make_plan(spec: Spec, inventory: Inventory) -> Plan:
    """The changes that make the account match the spec; empty when it already does."""
    check_roles_exist(spec, inventory)
    policy_changes, arns = _policy_changes(spec, inventory)
    changes = policy_changes + _user_changes(spec, inventory, arns) + _drift_and_deletions(spec, inventory, arns)
    changes.sort(key=lambda c: _ORDER[c.kind])  # stable: keeps spec order within a kind
    return Plan(tuple(changes), inventory.account_id, inventory.caller_arn, dict(spec.roles))
