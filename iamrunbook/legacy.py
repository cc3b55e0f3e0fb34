"""Legacy migration: replace the bundled AssumeRolesPolicy with one Assume*Policy per role, never a lockout.

The manual procedure detaches and deletes the bundled policy first and attaches the new policies after,
which leaves a window in which nobody can assume any role. Here the order is the other way round, as data
first (`plan_migration`), then executed (`apply_migration`):

1. create (or repair) the Assume*Policy policies the migrating users need;
2. attach each migrating user's Assume*Policy policies from the spec;
3. detach the legacy policy from those users, then from everyone else (only with legacy_detach_unmanaged);
4. delete its non-default versions, then the policy (AWS refuses either while still attached/versioned).

Before any change the policy's every version and its holders go to `legacy_policy_backup.json`, which
`restore_legacy` turns back into the policy. Every step is idempotent, so a rerun after an interruption
finishes the job, and an account without the policy has nothing to migrate.

The operator's own access (decided here): when the identity running the migration holds the legacy policy
(its IAM user directly or through a group, or the role of its assumed-role session) and the policy lets it
assume a configured role that the spec does not grant that user, the migration is refused before any
change, even with legacy_detach_unmanaged. Grant the roles in the spec or run as another identity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from botocore.exceptions import ClientError

from .access import ASSUME_ROLE, document_access, statement_covers
from .apply import HANDLERS as PLAN_HANDLERS
from .apply import ApplyResult, execute
from .aws import error_code, gone_ok
from .errors import SafetyError
from .inventory import Inventory, decode_document, default_document
from .log import logger
from .names import name_from_arn, role_arn
from .plan import Change, make_plan
from .spec import Spec

READ_ACTIONS = (
    "iam:ListEntitiesForPolicy",
    "iam:GetPolicyVersion",
)
WRITE_ACTIONS = (
    # the migration (create/update/attach go through apply.py's handlers)
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
    "iam:DeletePolicy",
    # restore_legacy
    "iam:SetDefaultPolicyVersion",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
)

BACKUP_FILE = "legacy_policy_backup.json"
BACKUP_FORMAT = 1
HOLDER_KINDS = ("user", "group", "role")
#: Policy changes from plan.make_plan the migration takes over for the roles its users need.
_POLICY_KINDS = ("create_policy", "prune_policy_version", "update_policy")
#: Step kinds: plan.py's where they fit, plus two of our own; symbol and summary bucket for display.
STEP_KINDS = {
    "create_policy": ("+", "add"),
    "prune_policy_version": ("~", "change"),
    "update_policy": ("~", "change"),
    "attach": ("+", "add"),
    "detach": ("-", "destroy"),
    "delete_policy_version": ("-", "destroy"),
    "delete_policy": ("-", "destroy"),
}
GRANTING = ("yes", "conditional")


@dataclass(frozen=True)
class Holder:
    """An entity the legacy policy is attached to."""

    kind: str  # "user" | "group" | "role"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


# --- reading ---------------------------------------------------------------------------------------
def find_legacy(inv: Inventory, name: str) -> dict | None:
    """The customer-managed policy called `name` (ManagedPolicyDetail from the sweep), or None."""
    return inv.local_policy(name)


def list_holders(iam, policy_arn: str | None) -> tuple[Holder, ...]:
    """Every user, group and role the policy is attached to (ListEntitiesForPolicy, every page)."""
    if policy_arn is None:
        return ()
    found: list[Holder] = []

    def read() -> None:
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=policy_arn):
            found.extend(Holder("user", e["UserName"]) for e in page.get("PolicyUsers", []))
            found.extend(Holder("group", e["GroupName"]) for e in page.get("PolicyGroups", []))
            found.extend(Holder("role", e["RoleName"]) for e in page.get("PolicyRoles", []))

    gone_ok(read)  # deleted since the sweep: nobody holds it
    return tuple(sorted(set(found), key=lambda h: (HOLDER_KINDS.index(h.kind), h.name)))


def holders_frame(holders: Iterable[Holder], spec: Spec | None = None, inv: Inventory | None = None) -> pd.DataFrame:
    rows = []
    for h in holders:
        covered = h.kind == "user" and spec is not None and _spec_user(spec, h.name) is not None
        members = ""
        if h.kind == "group" and inv is not None:
            members = ", ".join(_group_members(inv, h.name))
        rows.append({"kind": h.kind, "name": h.name, "in_spec": covered, "group_members": members})
    return pd.DataFrame(rows, columns=["kind", "name", "in_spec", "group_members"])


# --- what it grants ----------------------------------------------------------------------------------
def _role_arns(inv: Inventory, roles: Mapping[str, str]) -> dict[str, str]:
    """role key -> the role's real ARN (with its path) when it exists, else the plain one."""
    return {
        key: inv.roles[name]["Arn"] if name in inv.roles else role_arn(inv.account_id, name)
        for key, name in roles.items()
    }


def legacy_grants(
    policy: dict | None, inv: Inventory, roles: Mapping[str, str], user: str | None = None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """role key -> (verdict, conditions) of the policy's default version for sts:AssumeRole on that role.

    Only this one document is evaluated (a Deny elsewhere in the account is not its business). `user`
    resolves policy variables like ${aws:username} for that user.
    """
    arns = _role_arns(inv, roles)
    if policy is None:
        return {key: ("no", ()) for key in roles}
    doc = default_document(policy)
    principal = inv.user_named(user) if user else None
    return {
        key: document_access(doc, ASSUME_ROLE, arn, user=principal, account_id=inv.account_id)
        for key, arn in arns.items()
    }


def grants_frame(policy: dict | None, inv: Inventory, roles: Mapping[str, str]) -> pd.DataFrame:
    rows = [
        {"role_key": key, "role": roles[key], "verdict": verdict, "conditions": "; ".join(conditions)}
        for key, (verdict, conditions) in legacy_grants(policy, inv, roles).items()
    ]
    return pd.DataFrame(rows, columns=["role_key", "role", "verdict", "conditions"])


def _listed(value) -> str:
    return ", ".join(str(v) for v in (value if isinstance(value, list) else [value]))


def _statement_list(doc: dict) -> list[dict]:
    statements = doc.get("Statement", [])
    return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]


def _beyond_assume_role(stmt: dict) -> bool:
    """True when a statement is about more than sts:AssumeRole: deleting the policy takes that away too."""
    if "Action" not in stmt:
        return True  # NotAction: everything but a few actions
    actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
    return any(str(a).lower() != ASSUME_ROLE.lower() for a in actions)


def statements_frame(policy: dict | None, inv: Inventory, roles: Mapping[str, str]) -> pd.DataFrame:
    """Every statement of the default version: what it says and which configured roles (keys) it covers.

    `other_roles`: roles in the account the spec does not configure that the statement reaches too (a
    wildcard, usually): after the migration nobody reaches them through this policy. `beyond_assume_role`:
    the statement is about other actions as well, which the deletion removes with no replacement.
    """
    cols = ["sid", "effect", "action", "resource", "condition", "covers", "other_roles", "beyond_assume_role"]
    if policy is None:
        return pd.DataFrame([], columns=cols)
    arns = _role_arns(inv, roles)
    configured = set(roles.values())
    others = {name: r["Arn"] for name, r in sorted(inv.roles.items()) if name not in configured}
    rows = []
    for i, stmt in enumerate(_statement_list(default_document(policy))):
        action_key = "Action" if "Action" in stmt else "NotAction"
        resource_key = "Resource" if "Resource" in stmt else "NotResource"
        rows.append(
            {
                "sid": stmt.get("Sid", f"#{i + 1}"),
                "effect": stmt.get("Effect", ""),
                "action": f"{action_key}: {_listed(stmt.get(action_key, ''))}",
                "resource": f"{resource_key}: {_listed(stmt.get(resource_key, ''))}",
                "condition": json.dumps(stmt["Condition"], sort_keys=True) if stmt.get("Condition") else "",
                "covers": ", ".join(k for k, arn in arns.items() if statement_covers(stmt, ASSUME_ROLE, arn)),
                "other_roles": ", ".join(n for n, arn in others.items() if statement_covers(stmt, ASSUME_ROLE, arn)),
                "beyond_assume_role": _beyond_assume_role(stmt),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def policy_frame(policy: dict | None) -> pd.DataFrame:
    """One row per version of the policy: which is default, when made, and its document."""
    cols = ["version", "default", "created", "document"]
    if policy is None:
        return pd.DataFrame([], columns=cols)
    rows = [
        {
            "version": v["VersionId"],
            "default": bool(v.get("IsDefaultVersion")),
            "created": str(v.get("CreateDate", "")),
            "document": json.dumps(decode_document(v.get("Document")), sort_keys=True),
        }
        for v in sorted(policy.get("PolicyVersionList", []), key=_version_number)
    ]
    return pd.DataFrame(rows, columns=cols)


def _version_number(version: dict) -> int:
    digits = "".join(ch for ch in version["VersionId"] if ch.isdigit())
    return int(digits or 0)


# --- who is affected ---------------------------------------------------------------------------------
def _spec_user(spec: Spec, name: str):
    """The spec's entry for an IAM user name; IAM names are case-insensitive."""
    if name in spec.users:
        return spec.users[name]
    return next((u for n, u in spec.users.items() if n.lower() == name.lower()), None)


def _group_members(inv: Inventory, group: str) -> list[str]:
    return sorted(name for name, u in inv.users.items() if group in u.get("GroupList", []))


def affected_users(inv: Inventory, holders: Iterable[Holder]) -> dict[str, str | None]:
    """Every IAM user the legacy policy reaches: name -> None when it holds it directly, else the group."""
    holders = list(holders)
    found: dict[str, str | None] = {h.name: None for h in holders if h.kind == "user"}
    for h in holders:
        if h.kind == "group":
            for member in _group_members(inv, h.name):
                found.setdefault(member, h.name)
    return found


# --- privilege delta ---------------------------------------------------------------------------------
DELTA_COLUMNS = ["user", "via", "in_spec", "role_key", "role", "legacy", "conditions", "spec", "change"]


def _delta_change(legacy: str, granted: bool) -> str:
    if legacy in GRANTING and not granted:
        return "removed"
    if legacy == "no" and granted:
        return "added"
    if legacy == "conditional" and granted:
        return "condition dropped"  # the Assume*Policy has no condition: wider than before
    return "kept" if granted else ""


def privilege_delta(spec: Spec, inv: Inventory, policy: dict | None, holders: Iterable[Holder]) -> pd.DataFrame:
    """For each user the legacy policy reaches (directly or through a group) and each configured role:
    what the legacy policy lets them assume versus what the spec grants, and the change the migration makes.
    Groups and roles holding it lose it outright; their rows name no user."""
    rows = []
    holders = list(holders)
    for user, group in affected_users(inv, holders).items():
        entry = _spec_user(spec, user)
        grants = legacy_grants(policy, inv, spec.roles, user=user)
        for key, role in spec.roles.items():
            verdict, conditions = grants[key]
            granted = entry is not None and key in entry.roles
            rows.append(
                {
                    "user": user,
                    "via": f"group {group}" if group else "attached",
                    "in_spec": entry is not None,
                    "role_key": key,
                    "role": role,
                    "legacy": verdict,
                    "conditions": "; ".join(conditions),
                    "spec": "yes" if granted else "no",
                    "change": _delta_change(verdict, granted),
                }
            )
    for h in holders:
        if h.kind != "role":
            continue
        for key, (verdict, conditions) in legacy_grants(policy, inv, spec.roles).items():
            rows.append(
                {
                    "user": "",
                    "via": str(h),
                    "in_spec": False,
                    "role_key": key,
                    "role": spec.roles[key],
                    "legacy": verdict,
                    "conditions": "; ".join(conditions),
                    "spec": "no",
                    "change": _delta_change(verdict, False),
                }
            )
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


_DELTA_STYLES = {
    "removed": "background-color: #c62828; color: white; font-weight: bold",
    "condition dropped": "background-color: #ffb300; color: black",
    "added": "background-color: #2e7d32; color: white",
}


def styled_delta(delta: pd.DataFrame):
    """Removed access in red, widened (condition dropped) in amber, added in green."""
    return delta.style.apply(lambda row: [_DELTA_STYLES.get(row["change"], "")] * len(row), axis=1)


# --- backup and restore --------------------------------------------------------------------------------
def backup_record(iam, policy: dict, holders: Iterable[Holder]) -> dict:
    """Everything needed to recreate the policy: every version's document, the default, its holders."""
    arn = policy["Arn"]
    versions = []
    for v in sorted(policy.get("PolicyVersionList", []), key=_version_number):
        document = v.get("Document")
        if document is None:  # the sweep always has it; a hand-built inventory may not
            document = iam.get_policy_version(PolicyArn=arn, VersionId=v["VersionId"])["PolicyVersion"]["Document"]
        versions.append(
            {
                "version_id": v["VersionId"],
                "is_default": bool(v.get("IsDefaultVersion")),
                "create_date": str(v.get("CreateDate", "")),
                "document": decode_document(document),
            }
        )
    return {
        "format": BACKUP_FORMAT,
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "policy_name": name_from_arn(arn),
        "arn": arn,
        "path": policy.get("Path", "/"),
        "description": policy.get("Description") or "",
        "default_version_id": policy.get("DefaultVersionId")
        or next((v["version_id"] for v in versions if v["is_default"]), None),
        "versions": versions,
        "holders": [{"kind": h.kind, "name": h.name} for h in holders],
    }


def backup(iam, policy: dict | None, holders: Iterable[Holder], run_dir: str | Path) -> Path | None:
    """Write the backup into the run folder before any change; None when there is no policy.

    An earlier backup in the same folder is never overwritten (it was taken before more of the policy was
    gone): the new one gets a numbered name and that is the path returned.
    """
    if policy is None:
        return None
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BACKUP_FILE
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{Path(BACKUP_FILE).stem}-{n}.json"
    path.write_text(json.dumps(backup_record(iam, policy, holders), indent=2) + "\n", encoding="utf-8")
    logger.info("legacy policy backup written to %s", path)
    return path


def read_backup(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_backup(path: str | Path | None, mplan: MigrationPlan) -> dict:
    """Refuse to change anything unless a readable backup of this very policy exists."""
    if path is None or not Path(path).is_file():
        raise SafetyError(f"refused before any change: no backup of {mplan.legacy_name} at {path}; write it first")
    try:
        record = read_backup(path)
    except (OSError, ValueError) as exc:
        raise SafetyError(f"refused before any change: the backup {path} is unreadable: {exc}") from exc
    default = next((v for v in record.get("versions", []) if v.get("is_default")), None)
    if record.get("arn") != mplan.policy_arn or not default or not default.get("document"):
        raise SafetyError(
            f"refused before any change: {path} is not a backup of {mplan.policy_arn} with its default document"
        )
    return record


def attach_holder(iam, holder: Holder, policy_arn: str) -> bool:
    """Attach a policy to a user, group or role; False when the entity no longer exists."""
    calls = {
        "user": lambda: iam.attach_user_policy(UserName=holder.name, PolicyArn=policy_arn),
        "group": lambda: iam.attach_group_policy(GroupName=holder.name, PolicyArn=policy_arn),
        "role": lambda: iam.attach_role_policy(RoleName=holder.name, PolicyArn=policy_arn),
    }
    return gone_ok(calls[holder.kind]) is not None


def restore_legacy(iam, record: Mapping) -> list[str]:
    """Recreate the policy from a backup: its versions in order, the same default, attached to its holders.

    Version ids restart at v1 (IAM numbers them). If the policy exists already its versions are left as
    they are and only the attachments are restored. Returns what was done, one line each.
    """
    name = record["policy_name"]
    versions = record["versions"]
    done: list[str] = []
    try:
        kwargs = {"Description": record["description"]} if record.get("description") else {}
        created = iam.create_policy(
            PolicyName=name,
            Path=record.get("path") or "/",
            PolicyDocument=json.dumps(versions[0]["document"]),
            **kwargs,
        )["Policy"]
        arn = created["Arn"]
        new_ids = {versions[0]["version_id"]: created.get("DefaultVersionId", "v1")}
        for v in versions[1:]:
            made = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(v["document"]))
            new_ids[v["version_id"]] = made["PolicyVersion"]["VersionId"]
        default = new_ids[record["default_version_id"]]
        if default != new_ids[versions[0]["version_id"]]:
            iam.set_default_policy_version(PolicyArn=arn, VersionId=default)
        done.append(f"created {name} with {len(versions)} version(s), default {default}")
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise
        arn = record["arn"]
        done.append(f"{name} exists already: its versions are left as they are")
    for raw in record.get("holders", []):
        holder = Holder(raw["kind"], raw["name"])
        done.append(f"attached to {holder}" if attach_holder(iam, holder, arn) else f"{holder} is gone: skipped")
    return done


# --- the plan ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step(Change):
    """One migration step: a plan.Change whose kind may also be one of this module's own (STEP_KINDS)."""

    @property
    def symbol(self) -> str:
        return STEP_KINDS[self.kind][0]

    @classmethod
    def of(cls, change: Change) -> Step:
        return cls(**{f.name: getattr(change, f.name) for f in fields(Change)})


@dataclass(frozen=True)
class MigrationPlan:
    """The migration as ordered steps (Step: plan.Change, kinds in STEP_KINDS), plus why it may not run.

    `unmanaged` lists holders the spec does not cover; they block the run unless `detach_unmanaged`.
    `refusals` (the operator's own lockout) block it always. No policy: nothing to migrate.
    """

    legacy_name: str
    policy_arn: str | None
    account_id: str
    caller_arn: str
    holders: tuple[Holder, ...] = ()
    migrating_users: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()  # one line per holder: "group ops (members: a, b)"
    refusals: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    detach_unmanaged: bool = False

    @property
    def nothing_to_migrate(self) -> bool:
        return self.policy_arn is None

    def problems(self) -> list[str]:
        """Why the migration may not start; empty when it may."""
        problems = list(self.refusals)
        if self.unmanaged and not self.detach_unmanaged:
            listing = "\n".join(f"    {u}" for u in self.unmanaged)
            problems.append(
                f"{self.legacy_name} is held by entities the spec does not cover:\n{listing}\n"
                "  Detaching it would take their access away. Add those users to the spec, detach it from them "
                "yourself, or set legacy_detach_unmanaged: true to detach it from them too."
            )
        return problems

    @property
    def blocked(self) -> bool:
        return bool(self.problems())

    def summary(self) -> dict[str, int]:
        counts = {"import": 0, "add": 0, "change": 0, "destroy": 0}
        for step in self.steps:
            counts[STEP_KINDS[step.kind][1]] += 1
        return counts

    def summary_line(self) -> str:
        if self.nothing_to_migrate:
            return f"Nothing to migrate: there is no customer-managed policy named {self.legacy_name}."
        c = self.summary()
        line = f"Migration: {c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."
        return line + (" BLOCKED: see the problems above." if self.blocked else "")

    def to_text(self) -> str:
        if self.nothing_to_migrate:
            return self.summary_line()
        lines = [f"{self.legacy_name} ({self.policy_arn})"]
        lines.append("  held by: " + (", ".join(str(h) for h in self.holders) or "nobody"))
        lines += [f"  {s.symbol:>2} {s.address}: {s.reason}" for s in self.steps]
        problems = self.problems()
        if problems:
            lines += ["", "Refused before any change:", *(f"- {p}" for p in problems)]
        return "\n".join([*lines, "", self.summary_line()])

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {"step": i, "symbol": s.symbol, "kind": s.kind, "address": s.address, "reason": s.reason}
            for i, s in enumerate(self.steps, 1)
        ]
        return pd.DataFrame(rows, columns=["step", "symbol", "kind", "address", "reason"])

    def to_json(self) -> str:
        return json.dumps(
            {
                "legacy_name": self.legacy_name,
                "policy_arn": self.policy_arn,
                "account_id": self.account_id,
                "caller_arn": self.caller_arn,
                "holders": [{"kind": h.kind, "name": h.name} for h in self.holders],
                "migrating_users": list(self.migrating_users),
                "problems": self.problems(),
                "summary": self.summary(),
                "steps": [s.as_dict() for s in self.steps],
            },
            indent=2,
        )


def _caller_role(caller_arn: str) -> str | None:
    """The role name of an `...:assumed-role/Name/session` caller, or None."""
    resource = caller_arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        return resource.split("/")[1]
    return None


def _lockout(spec: Spec, inv: Inventory, policy: dict, holders: tuple[Holder, ...]) -> list[str]:
    """Refusals that keep the operator from locking themselves out (see the module docstring)."""
    name = name_from_arn(policy["Arn"])
    held = {(h.kind, h.name.lower()) for h in holders}
    problems = []
    me = inv.caller_user
    if me:
        user = inv.user_named(me)
        via = ["attached"] if ("user", me.lower()) in held else []
        via += [f"group {g}" for g in (user or {}).get("GroupList", []) if ("group", g.lower()) in held]
        if via:
            entry = _spec_user(spec, me)
            keeps = set(entry.roles) if entry else set()
            loses = [
                spec.roles[k]
                for k, (verdict, _) in legacy_grants(policy, inv, spec.roles, user=me).items()
                if verdict in GRANTING and k not in keeps
            ]
            if loses:
                problems.append(
                    f"you are running this as {me}, who holds {name} ({', '.join(via)}) and would lose "
                    f"{', '.join(loses)}, which the spec does not grant {me}: grant them in the spec or run as "
                    "another identity"
                )
    role = _caller_role(inv.caller_arn)
    if role and ("role", role.lower()) in held:
        loses = [spec.roles[k] for k, (v, _) in legacy_grants(policy, inv, spec.roles).items() if v in GRANTING]
        if loses:
            problems.append(
                f"you are running this as role {role}, which holds {name}: detaching it would take away its "
                f"access to {', '.join(loses)}; run as another identity"
            )
    return problems


def _legacy_detach(holder: Holder, arn: str, reason: str) -> Step:
    name = name_from_arn(arn)
    return Step(
        "detach",
        f"{holder.kind}/{holder.name}/{name}",
        reason,
        user=holder.name if holder.kind == "user" else None,
        policy_name=name,
        policy_arn=arn,
        target_kind=holder.kind,
        target_name=holder.name,
    )


def plan_migration(
    spec: Spec, inv: Inventory, legacy_name: str, holders: Iterable[Holder], detach_unmanaged: bool = False
) -> MigrationPlan:
    """The ordered steps that replace the legacy policy without a window; pure (no AWS calls).

    Every user the spec covers who holds it (directly or through a group) gets their Assume*Policy
    attachments first; only then is it detached from anyone, then its versions and itself deleted.
    """
    holders = tuple(holders)
    policy = find_legacy(inv, legacy_name)
    common = dict(legacy_name=legacy_name, account_id=inv.account_id, caller_arn=inv.caller_arn)
    if policy is None:
        return MigrationPlan(policy_arn=None, detach_unmanaged=detach_unmanaged, **common)
    arn = policy["Arn"]
    name = name_from_arn(arn)

    reached = affected_users(inv, holders)
    migrating = tuple(u for u in reached if _spec_user(spec, u) is not None)
    unmanaged = []
    for h in holders:
        if h.kind == "user" and _spec_user(spec, h.name) is not None:
            continue
        members = _group_members(inv, h.name) if h.kind == "group" else []
        unmanaged.append(f"{h}" + (f" (members: {', '.join(members)})" if members else ""))

    full = make_plan(spec, inv)
    keys = {k for u in migrating for k in _spec_user(spec, u).roles}
    users = {u.lower() for u in migrating}
    steps = [Step.of(c) for c in full.changes if c.kind in _POLICY_KINDS and c.role_key in keys]
    steps += [Step.of(c) for c in full.changes if c.kind == "attach" and c.user.lower() in users]
    covered = [h for h in holders if h.kind == "user" and h.name.lower() in users]
    steps += [
        _legacy_detach(
            h, arn, f"detach {name}: the steps above put the user's Assume*Policy attachments in place first"
        )
        for h in covered
    ]
    steps += [
        _legacy_detach(h, arn, f"detach {name} from an entity the spec does not cover (legacy_detach_unmanaged)")
        for h in holders
        if h not in covered
    ]
    steps += [
        Step(
            "delete_policy_version",
            f"policy/{name}/{v['VersionId']}",
            "delete a non-default version (AWS refuses to delete a policy that has any)",
            policy_name=name,
            policy_arn=arn,
            version_id=v["VersionId"],
        )
        for v in sorted(policy.get("PolicyVersionList", []), key=_version_number)
        if not v.get("IsDefaultVersion")
    ]
    steps.append(Step("delete_policy", f"policy/{name}", "delete the legacy policy", policy_name=name, policy_arn=arn))
    return MigrationPlan(
        policy_arn=arn,
        holders=holders,
        migrating_users=migrating,
        unmanaged=tuple(unmanaged),
        refusals=tuple(_lockout(spec, inv, policy, holders)),
        steps=tuple(steps),
        detach_unmanaged=detach_unmanaged,
        **common,
    )


def check_migration(mplan: MigrationPlan) -> None:
    problems = mplan.problems()
    if problems:
        raise SafetyError("refused before any change:\n" + "\n".join(f"- {p}" for p in problems))


# --- apply -------------------------------------------------------------------------------------------
@dataclass
class MigrationResult(ApplyResult):
    message: str = ""


def _delete_policy_version(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy_version(PolicyArn=c.policy_arn, VersionId=c.version_id))


def _delete_policy(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy(PolicyArn=c.policy_arn))


STEP_HANDLERS: dict[str, Callable] = {
    **{kind: PLAN_HANDLERS[kind] for kind in ("create_policy", "prune_policy_version", "update_policy")},
    "attach": PLAN_HANDLERS["attach"],
    "detach": PLAN_HANDLERS["detach"],  # NoSuchEntity: already detached
    "delete_policy_version": _delete_policy_version,
    "delete_policy": _delete_policy,
}


def apply_migration(
    iam, mplan: MigrationPlan, *, backup_path: str | Path | None, progress: bool = False
) -> MigrationResult:
    """Run the steps in order. Refuses before any change when blocked or without a backup; stops at the
    first failure with ApplyError naming the step. Every step is idempotent: run the notebook again."""
    if mplan.nothing_to_migrate:
        logger.info(mplan.summary_line())
        return MigrationResult(message=mplan.summary_line())
    check_migration(mplan)
    check_backup(backup_path, mplan)
    result = execute(iam, mplan.steps, STEP_HANDLERS, MigrationResult(), desc="migration", progress=progress)
    result.message = (
        f"{mplan.legacy_name} is gone; {len(mplan.migrating_users)} user(s) moved to their Assume*Policy policies."
    )
    return result


def verify_migration(spec: Spec, inv: Inventory, mplan: MigrationPlan) -> list[str]:
    """After the run, read afresh: the policy is gone and every migrating user holds what the spec grants."""
    problems = []
    if find_legacy(inv, mplan.legacy_name) is not None:
        problems.append(f"{mplan.legacy_name} still exists")
    policy_arns = {
        key: p["Arn"] for key, name in spec.policy_names().items() if (p := inv.local_policy(name)) is not None
    }
    for user in mplan.migrating_users:
        entity = inv.user_named(user)
        attached = Inventory.attached_arns(entity) if entity else set()
        for key in _spec_user(spec, user).roles:
            if policy_arns.get(key) not in attached:
                problems.append(f"{user} does not hold the Assume*Policy for {spec.roles[key]}")
    return problems
