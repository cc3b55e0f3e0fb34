"""Verify: compare the account with the spec. Converged means no problems and the expected addresses.

Verification reuses the planner (a pending change is a problem) so "verified" and "plan is empty" can
never disagree, and adds what a plan cannot fix: access to a role by a path the spec does not grant.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .inventory import Inventory
from .names import attachment_address, policy_address, policy_name, user_address
from .plan import make_plan
from .spec import Spec

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str
    message: str


@dataclass
class Verification:
    problems: list[Problem]
    addresses: list[str]
    iam_user_arns: dict[str, str]
    assume_role_policy_arns: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["kind", "subject", "message"])


def state_addresses(spec: Spec, inv: Inventory) -> list[str]:
    """Sorted Terraform addresses of the spec's resources that exist in the account."""
    addresses = []
    policy_arns = {}
    for key, role in spec.roles.items():
        policy = inv.local_policy(policy_name(role))
        if policy:
            policy_arns[policy["Arn"]] = key
            addresses.append(policy_address(key))
    for name in spec.users:
        user = inv.user_named(name)
        if user is None:
            continue
        addresses.append(user_address(name))
        for arn in Inventory.attached_arns(user):
            key = policy_arns.get(arn)
            if key in spec.users[name].roles:
                addresses.append(attachment_address(name, key))
    return sorted(addresses)


def access_problems(spec: Spec, inv: Inventory) -> list[Problem]:
    """Anyone who can assume a configured role by a path the spec does not grant."""
    from .access import effective_access, unexpected_access

    grants = effective_access(inv.details(), spec.roles, inv.account_id)
    return [
        Problem("unexpected access", g.user, f"{g.user} can assume {g.role_name} ({g.verdict}) via {g.path}")
        for g in unexpected_access(grants, spec.grants())
    ]


def verify(spec: Spec, inv: Inventory, *, check_access: bool = True) -> Verification:
    plan = make_plan(spec, inv)
    problems = [Problem(c.kind, c.address, c.reason) for c in plan.changes]
    if check_access:
        problems += access_problems(spec, inv)
    user_arns = {name: inv.user_named(name)["Arn"] for name in spec.users if inv.user_named(name)}
    policy_arns = {
        key: inv.local_policy(policy_name(role))["Arn"]
        for key, role in spec.roles.items()
        if inv.local_policy(policy_name(role))
    }
    return Verification(problems, state_addresses(spec, inv), user_arns, policy_arns)
