"""Changes: the one table of change kinds, and the `Change` that plan, legacy migration and apply share.

A kind says how a change reads (Terraform's symbol and summary bucket), which function makes it
(mutations.py), and where it goes when two changes are otherwise equal (`rank`, the tie-breaker of the
safe order; the order itself comes from simulated access, see order.py). `ChangeSet` gives every plan
the same summary, text and table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from iamrunbook.aws import mutations


@dataclass(frozen=True)
class Kind:
    symbol: str
    bucket: str  # "import" | "add" | "change" | "destroy"
    handler: Callable
    #: the class a kind belongs to when simulation says nothing else: grant, revoke or delete
    role: str


#: kind -> Kind; the order of this table is the tie-breaker of the safe order.
KINDS: dict[str, Kind] = {
    "create_policy": Kind("+", "add", mutations.create_policy, "grant"),
    "prune_policy_version": Kind("~", "change", mutations.delete_policy_version, "grant"),
    "update_policy": Kind("~", "change", mutations.update_policy, "grant"),
    "create_group": Kind("+", "add", mutations.create_group, "grant"),
    "create_user": Kind("+", "add", mutations.create_user, "grant"),
    "import_user": Kind("<=", "import", mutations.tag_user, "grant"),
    "tag_user": Kind("~", "change", mutations.tag_user, "grant"),
    "attach": Kind("+", "add", mutations.attach, "grant"),
    "add_to_group": Kind("+", "add", mutations.add_to_group, "grant"),
    "detach": Kind("-", "destroy", mutations.detach, "revoke"),
    "remove_from_group": Kind("-", "destroy", mutations.remove_from_group, "revoke"),
    "delete_user": Kind("-", "destroy", mutations.delete_user, "delete"),
    "delete_policy_version": Kind("-", "destroy", mutations.delete_policy_version, "delete"),
    "delete_policy": Kind("-", "destroy", mutations.delete_policy, "delete"),
}
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
