"""Verify: compare the account with the spec. Converged means no problems and the expected addresses.

Verification reuses the planner (a pending change is a problem) so "verified" and "plan is empty" can
never disagree, and adds what a plan cannot fix: access to a role by a path the spec does not grant.
Each problem says whether an apply would fix it, because a scheduled job that applies on exit code 2 must
never loop on one it cannot: what is left after the pending changes (migration included) are simulated is
what no apply fixes, and the runner exits 1 for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.names import (
    attachment_address,
    group_address,
    group_attachment_address,
    membership_address,
    policy_address,
    policy_name,
    user_address,
)
from iamrunbook.core.access import Grant, effective_access, unexpected_access
from iamrunbook.core.changes import Change
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import Spec

UNEXPECTED = "unexpected access"


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str
    message: str

    def line(self) -> str:
        return problem_line(asdict(self))


def problem_line(problem: Mapping) -> str:
    """One problem as the operator reads it: a pending change in Terraform's words, or who can assume what."""
    if problem.get("kind") == UNEXPECTED:
        return str(problem.get("message", ""))
    return f"{problem.get('subject')}: {problem.get('kind')} ({problem.get('message')})"


@dataclass
class Verification:
    problems: list[Problem]
    addresses: list[str]
    iam_user_arns: dict[str, str]
    assume_role_policy_arns: dict[str, str]
    #: the problems no apply fixes (a subset of `problems`)
    unfixable: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def problems_frame(self) -> pd.DataFrame:
        return pd.DataFrame([p.__dict__ for p in self.problems], columns=["kind", "subject", "message"])

    def record(self) -> records.VerificationRecord:
        return records.VerificationRecord(
            ok=self.ok,
            problems=self.problems_frame().to_dict(orient="records"),
            addresses=self.addresses,
            outputs={"iam_user_arns": self.iam_user_arns, "assume_role_policy_arns": self.assume_role_policy_arns},
            unfixable=[asdict(p) for p in self.unfixable],
        )


def state_addresses(spec: Spec, inv: Inventory) -> list[str]:
    """Sorted Terraform addresses of the spec's resources that exist in the account."""
    addresses = []
    policy_arns = {}
    for key, role in spec.roles.items():
        policy = inv.local_policy(policy_name(role))
        if policy:
            policy_arns[policy["Arn"]] = key
            addresses.append(policy_address(key))
    groups = spec.groups()
    for key, group in groups.items():
        entity = inv.group_named(group)
        if entity is not None:
            addresses.append(group_address(key))
            if any(policy_arns.get(a) == key for a in Inventory.attached_arns(entity)):
                addresses.append(group_attachment_address(key))
    for name in spec.users:
        user = inv.user_named(name)
        if user is None:
            continue
        addresses.append(user_address(name))
        if groups:
            member_of = {g.lower() for g in user.get("GroupList", [])}
            if any(groups[k].lower() in member_of for k in spec.users[name].roles):
                addresses.append(membership_address(name))
            continue
        for arn in Inventory.attached_arns(user):
            key = policy_arns.get(arn)
            if key in spec.users[name].roles:
                addresses.append(attachment_address(name, key))
    return sorted(addresses)


def access_problem(g: Grant, granted: bool) -> Problem:
    why = "granted by the spec, but not through the runbook's own policy" if granted else "not granted by the spec"
    verdict = "" if g.verdict == "yes" else f" ({'; '.join(g.conditions) or 'conditional'})"
    return Problem(UNEXPECTED, g.user, f"{g.user} can assume {g.role_name}{verdict} via {g.path} ({why})")


def access_problems(spec: Spec, inv: Inventory) -> list[Problem]:
    """Anyone who can assume a configured role by a path the spec does not grant."""
    grants = effective_access(inv.details(), spec.roles, inv.account_id)
    granted = {(u.lower(), k) for u, k in spec.grants()}
    return [
        access_problem(g, (g.user.lower(), g.role_key) in granted)
        for g in unexpected_access(grants, spec.grants(), spec.groups())
    ]


def unfixable_problems(spec: Spec, inv: Inventory, migration: Sequence[Change] = ()) -> list[Problem]:
    """The unexpected access still there once an apply has done everything (simulated, no AWS): the
    legacy migration's steps, then the plan made on the account the migration leaves."""
    from iamrunbook.core.simulate import Simulation

    after = Simulation(inv, spec.roles).run(migration).inventory() if migration else inv
    final = Simulation(after, spec.roles).run(make_plan(spec, after).changes).inventory()
    return access_problems(spec, final)


def verify(
    spec: Spec, inv: Inventory, *, check_access: bool = True, also_pending: Iterable[Change] = ()
) -> Verification:
    """The account against the spec. `also_pending`: the legacy migration's steps, which an apply of the
    chain makes before the plan: counted when deciding which problems an apply fixes."""
    plan = make_plan(spec, inv)
    problems = [Problem(c.kind, c.address, c.reason) for c in plan.changes]
    unfixable: list[Problem] = []
    if check_access:
        found = access_problems(spec, inv)
        problems += found
        if found:
            unfixable = unfixable_problems(spec, inv, tuple(also_pending))
    user_arns = {name: inv.user_named(name)["Arn"] for name in spec.users if inv.user_named(name)}
    policy_arns = {
        key: inv.local_policy(policy_name(role))["Arn"]
        for key, role in spec.roles.items()
        if inv.local_policy(policy_name(role))
    }
    return Verification(problems, state_addresses(spec, inv), user_arns, policy_arns, tuple(unfixable))


def summary(verification: Verification) -> str:
    n, unfixable = len(verification.problems), len(verification.unfixable)
    if not unfixable:
        return f"drift: {n} problem(s), all of which an apply fixes (plan-only run)"
    return f"{n} problem(s); {unfixable} of them no apply fixes: remove those paths by hand"
