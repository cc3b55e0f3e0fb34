"""CIS 1.16 over every principal: each policy judged once, with where it is attached and who gets it.

The benchmark audits every attached policy, not only users': an `AdministratorAccess` on a role, an inline
`*:*` on a role or a `*:*` on a group with no members fails it as surely as one on a user. Every managed
policy (customer- or AWS-managed) attached to a user, group or role, and every inline policy of each, is
judged statement by statement (cis.statement_verdict). Full admin FAILs 1.16; near admin (a NotAction that
leaves out only IAM's escalation actions) is a WARN under the runbook's own id, not a CIS failure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.names import is_aws_managed, name_from_arn
from iamrunbook.core import cis
from iamrunbook.core.inventory import Inventory, default_document

#: the near-admin warning's own id: not a CIS item
NEAR_ADMIN_ID = "IAMRUNBOOK.1"
NEAR_ADMIN_TITLE = "no policy allowing all but a few actions on every resource (near admin)"
NEAR_ADMIN_FIX = "replace the NotAction grant with the actions the job needs"
_KINDS = (
    ("user", "users", "UserPolicyList"), ("group", "groups", "GroupPolicyList"), ("role", "roles", "RolePolicyList")
)


@dataclass(frozen=True)
class PolicyFinding:
    """One policy as 1.16 sees it: where it is attached, which statements grant admin, who gets it."""

    policy: str
    kind: str  # customer-managed, aws-managed, inline
    arn: str  # managed: the policy's ARN; inline: the ARN of the user, group or role that holds it
    attached_to: tuple[str, ...]  # "role AdminRole", "group admins"
    statements: tuple[tuple[int, dict, str], ...]
    users: tuple[str, ...]
    roles: tuple[str, ...]

    @property
    def status(self) -> str:
        verdicts = {verdict for _, _, verdict in self.statements}
        return cis.FAIL if cis.ADMIN in verdicts else cis.WARN if verdicts else cis.PASS

    @property
    def label(self) -> str:
        return f"{self.kind} {self.policy}" + (f" on {self.attached_to[0]}" if self.kind == "inline" else "")

    def as_row(self) -> dict:
        near = self.status == cis.WARN
        check = cis.CHECKS["no_admin"]
        shown = "; ".join(f"statement {n}: {json.dumps(s, sort_keys=True)}"[:400] for n, s, _ in self.statements)
        finding = {cis.FAIL: "grants full administrator access", cis.WARN: "grants all but a few actions on "
                   "every resource (not a CIS failure)", cis.PASS: ""}[self.status]  # fmt: skip
        return {
            "policy": self.policy, "kind": self.kind, "arn": self.arn, "status": self.status,
            "check": NEAR_ADMIN_TITLE if near else check.title, "cis": NEAR_ADMIN_ID if near else check.cis,
            "attached_to": "; ".join(self.attached_to), "statement": shown, "users": "; ".join(self.users),
            "roles": "; ".join(self.roles), "finding": finding,
            "fix": {cis.FAIL: check.fix, cis.WARN: NEAR_ADMIN_FIX}.get(self.status, ""),
        }  # fmt: skip


def _reach(inv: Inventory, holders: list[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The users (directly and through groups) and roles that get a policy held by `holders`."""
    users, roles = set(), set()
    for kind, name in holders:
        if kind == "user":
            users.add(name)
        elif kind == "group":
            users.update(inv.group_members(name))
        else:
            roles.add(name)
    return tuple(sorted(users, key=str.lower)), tuple(sorted(roles, key=str.lower))


def _finding(inv: Inventory, name: str, kind: str, arn: str, document, holders) -> PolicyFinding:
    users, roles = _reach(inv, holders)
    attached = tuple(f"{k} {n}" for k, n in holders)
    return PolicyFinding(name, kind, arn, attached, tuple(cis.admin_statements(document)), users, roles)


def policy_findings(inv: Inventory) -> list[PolicyFinding]:
    """Every managed policy attached anywhere, then every inline policy of users, groups and roles."""
    found = []
    for arn, policy in sorted(inv.policies.items()):
        holders = inv.holders(arn)
        if holders:
            kind = "aws-managed" if is_aws_managed(arn) else "customer-managed"
            name = policy.get("PolicyName") or name_from_arn(arn)  # moto omits PolicyName on AWS-managed ones
            found.append(_finding(inv, name, kind, arn, default_document(policy), holders))
    for kind, attr, inline_key in _KINDS:
        for name, entity in sorted(getattr(inv, attr).items()):
            for inline in entity.get(inline_key, []):
                found.append(_finding(inv, inline["PolicyName"], "inline", entity.get("Arn", ""),
                                      inline["PolicyDocument"], [(kind, name)]))  # fmt: skip
    return found


def frame(found: list[PolicyFinding]) -> pd.DataFrame:
    """The per-policy view: failing and warning policies first."""
    order = {cis.FAIL: 0, cis.WARN: 1, cis.PASS: 2}
    rows = [f.as_row() for f in sorted(found, key=lambda f: (order[f.status], f.kind, f.policy.lower()))]
    return pd.DataFrame(rows, columns=records.CIS_POLICIES.columns)
