"""Changes: the one table of change kinds, and the `Change` that plan, legacy migration and apply share.

A kind is data only: how a change reads (Terraform's symbol and summary bucket), its class when simulation
says nothing else, and the IAM actions it needs. The functions that make a change register themselves beside
their code (`Handlers`: aws/mutations.py for AWS, simulate.py for the in-memory account), so the data model
never depends on the calls. The table's order is the tie-breaker of the safe order (order.py). `ChangeSet`
gives every plan the same summary, text and table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Kind:
    symbol: str
    bucket: str  # "import" | "add" | "change" | "destroy"
    #: the class a kind belongs to when simulation says nothing else: grant, revoke or delete
    role: str
    #: the IAM actions making it calls (delete_user's full cleanup is declared by aws/deletion.py)
    actions: tuple[str, ...] = ()


_DETACH = ("iam:DetachUserPolicy", "iam:DetachGroupPolicy", "iam:DetachRolePolicy")

#: kind -> Kind; the order of this table is the tie-breaker of the safe order.
KINDS: dict[str, Kind] = {
    "create_policy": Kind("+", "add", "grant", ("iam:CreatePolicy", "iam:TagPolicy")),  # created with its tags
    "prune_policy_version": Kind("~", "change", "grant", ("iam:DeletePolicyVersion",)),
    "update_policy": Kind("~", "change", "grant", ("iam:CreatePolicyVersion",)),
    "create_group": Kind("+", "add", "grant", ("iam:CreateGroup",)),
    "create_user": Kind("+", "add", "grant", ("iam:CreateUser", "iam:TagUser")),
    "import_user": Kind("<=", "import", "grant", ("iam:TagUser",)),
    "tag_user": Kind("~", "change", "grant", ("iam:TagUser",)),
    "attach": Kind("+", "add", "grant", ("iam:AttachUserPolicy", "iam:AttachGroupPolicy")),
    "add_to_group": Kind("+", "add", "grant", ("iam:AddUserToGroup",)),
    "detach": Kind("-", "destroy", "revoke", _DETACH),
    "remove_from_group": Kind("-", "destroy", "revoke", ("iam:RemoveUserFromGroup",)),
    "delete_user": Kind("-", "destroy", "delete"),
    "delete_group": Kind("-", "destroy", "delete", ("iam:DeleteGroup",)),
    "delete_policy_version": Kind("-", "destroy", "delete", ("iam:DeletePolicyVersion",)),
    "delete_policy": Kind("-", "destroy", "delete", ("iam:DeletePolicy",)),
    # grant_via: identity_center (core/identity_center_plan.py): names, not ids, in every change
    "ic_create_user": Kind("+", "add", "grant", ("identitystore:CreateUser",)),
    "ic_create_group": Kind("+", "add", "grant", ("identitystore:CreateGroup",)),
    "ic_create_permission_set": Kind("+", "add", "grant", ("sso:CreatePermissionSet", "sso:TagResource")),
    "ic_update_permission_set": Kind("~", "change", "grant", ("sso:UpdatePermissionSet",)),
    "ic_attach_policy_reference": Kind("+", "add", "grant",
                                       ("sso:AttachCustomerManagedPolicyReferenceToPermissionSet",)),  # fmt: skip
    "ic_provision": Kind("~", "change", "grant",
                         ("sso:ProvisionPermissionSet", "sso:DescribePermissionSetProvisioningStatus")),  # fmt: skip
    "ic_add_member": Kind("+", "add", "grant", ("identitystore:CreateGroupMembership",)),
    "ic_assign": Kind("+", "add", "grant",
                      ("sso:CreateAccountAssignment", "sso:DescribeAccountAssignmentCreationStatus")),  # fmt: skip
    "ic_unassign": Kind("-", "destroy", "revoke",
                        ("sso:DeleteAccountAssignment", "sso:DescribeAccountAssignmentDeletionStatus")),  # fmt: skip
    "ic_detach_policy_reference": Kind("-", "destroy", "revoke",
                                       ("sso:DetachCustomerManagedPolicyReferenceFromPermissionSet",)),  # fmt: skip
    "ic_remove_member": Kind("-", "destroy", "revoke", ("identitystore:DeleteGroupMembership",)),
    # 07's phase 2: retiring an IAM user whose Identity Center path works
    "deactivate_access_keys": Kind("-", "destroy", "revoke", ("iam:ListAccessKeys", "iam:UpdateAccessKey")),
    "delete_login_profile": Kind("-", "destroy", "revoke", ("iam:DeleteLoginProfile",)),
}

#: The Identity Center kinds, and 07's retiring of an IAM user: only plans of grant_via: identity_center hold them
CENTER_KINDS = tuple(kind for kind in KINDS if kind.startswith("ic_"))
RETIRE_KINDS = ("deactivate_access_keys", "delete_login_profile")


class Handlers:
    """One dispatch of changes to whatever makes them (AWS, the simulator's in-memory account).

    A plug-in registers a function per kind beside its own code (`@HANDLERS.register("attach")`), in the manner of
    cloud-custodian's action registries; the kinds table above never names them. Calling the registry with the
    target and a change runs the kind's function.
    """

    def __init__(self, target: str):
        self.target = target
        self._by_kind: dict[str, Callable[[Any, Change], Any]] = {}

    def register(self, *kinds: str) -> Callable:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"{self.target}: unknown change kind(s) {unknown}; the kinds are {list(KINDS)}")

        def add(fn: Callable) -> Callable:
            self._by_kind.update(dict.fromkeys(kinds, fn))
            return fn

        return add

    def handles(self, kind: str) -> bool:
        return kind in self._by_kind

    def missing(self) -> list[str]:
        """Kinds without a function here: a test holds this empty."""
        return [k for k in KINDS if k not in self._by_kind]

    def __call__(self, target: Any, change: Change) -> Any:
        fn = self._by_kind.get(change.kind)
        if fn is None:
            raise KeyError(f"{self.target} has no handler for change kind {change.kind!r}")
        return fn(target, change)


RANK = {kind: i for i, kind in enumerate(KINDS)}
BUCKETS = ("import", "add", "change", "destroy")


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
    #: for attach/detach and group changes: "user" | "group" | "role", and the entity's name
    target_kind: str | None = None
    target_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    document: str | None = None
    description: str | None = None
    version_id: str | None = None
    #: Identity Center changes: the target account, and USER | GROUP for an assignment's principal
    account: str | None = None
    principal_type: str | None = None
    #: the phase of the safe order this change runs in (order.py); changes of one phase may run together
    phase: int | None = None

    @property
    def symbol(self) -> str:
        return KINDS[self.kind].symbol

    def line(self) -> str:
        """The change as `terraform plan` prints a resource: symbol, address, why."""
        return f"  {self.symbol:>2} {self.address}: {self.reason}"

    def as_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v not in (None, ())}
        if self.tags:
            d["tags"] = dict(self.tags)
        return d

    @classmethod
    def from_dict(cls, raw: dict) -> Change:
        raw = dict(raw)
        raw["tags"] = tuple(raw.get("tags", {}).items())
        return cls(**raw)


def summary(changes: Sequence[Change]) -> dict[str, int]:
    counts = dict.fromkeys(BUCKETS, 0)
    for change in changes:
        counts[KINDS[change.kind].bucket] += 1
    return counts


class ChangeSet:
    """What every plan shares: its changes summarised, as Terraform-style text and as a table."""

    changes: tuple[Change, ...]
    #: the summary line's first word ("Plan", "Migration", ...)
    noun = "Plan"
    empty_line = "No changes. Your account matches the spec."

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        return summary(self.changes)

    def summary_line(self) -> str:
        if self.is_empty:
            return self.empty_line
        c = self.summary()
        imports = f"{c['import']} to import, " if c["import"] or self.noun == "Plan" else ""
        return f"{self.noun}: {imports}{c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."

    def lines(self) -> list[str]:
        return [c.line() for c in self.changes]

    def to_text(self) -> str:
        """Terraform's style: one line per change with its address, then the summary."""
        if self.is_empty:
            return self.summary_line()
        return "\n".join([*self.lines(), "", self.summary_line()])

    #: whether tables number the steps (the migration's do: its order is the point)
    numbered = False

    def to_frame(self) -> pd.DataFrame:
        columns = ["step", "symbol", "kind", "address", "reason"][0 if self.numbered else 1 :]
        rows = [
            {"step": i, "symbol": c.symbol, "kind": c.kind, "address": c.address, "reason": c.reason}
            for i, c in enumerate(self.changes, 1)
        ]
        return pd.DataFrame(rows, columns=columns)


def changes_json(changes: Sequence[Change]) -> list[dict]:
    return [c.as_dict() for c in changes]
