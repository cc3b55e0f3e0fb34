"""04 under `grant_via: identity_center`: the account and the instance against the spec.

As in the other modes, a pending change of the mode's plan is a problem, so "verified" and "the plan is
empty" cannot disagree. Access counts by both paths while a migration is under way: an IAM user that 07 has
not retired yet keeps the runbook's own IAM path (its Assume*Policy, attached to the user or to the role's
group in group mode), and Identity Center's path must be through the runbook's own permission set. Any
other path to a role, or a role the spec does not grant, is a problem no apply fixes.
"""

from __future__ import annotations

from collections.abc import Sequence

from iamrunbook.base.names import policy_name
from iamrunbook.core.access import effective_access, unexpected_access
from iamrunbook.core.identity_center import permission_set_name
from iamrunbook.core.identity_center_access import center_grants
from iamrunbook.core.identity_center_plan import make_center_plan, make_member_plan
from iamrunbook.core.identity_center_state import CenterState
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import Spec
from iamrunbook.core.verify import UNEXPECTED, Problem, Verification, access_problem


def _center_problems(spec: Spec, inv: Inventory, state: CenterState, account_id: str) -> list[Problem]:
    granted = spec.grants()
    problems = []
    for g in center_grants(state, inv, spec.roles, account_id):
        own = g.path.endswith(f"permission set {permission_set_name(g.role_name)}")
        if (g.user, g.role_key) not in granted or not own:
            problems.append(access_problem(g, (g.user, g.role_key) in granted))
    return problems


def center_access_problems(spec: Spec, inv: Inventory, state: CenterState, accounts: Sequence[str]) -> list[Problem]:
    """Every path the spec does not grant, by IAM (old-mode paths of spec users allowed) or Identity Center,
    and every granted role nobody's path reaches."""
    old_groups = {key: spec.settings.group_name(key, role) for key, role in spec.roles.items()}
    iam_grants = effective_access(inv.details(), spec.roles, inv.account_id)
    problems = [access_problem(g, (g.user.lower(), g.role_key) in {(u.lower(), k) for u, k in spec.grants()})
                for g in unexpected_access(iam_grants, spec.grants(), old_groups)]  # fmt: skip
    for account in accounts:
        problems += _center_problems(spec, inv, state, account)
    held = {(g.user.lower(), g.role_key) for g in iam_grants}
    held |= {(g.user.lower(), g.role_key) for g in center_grants(state, inv, spec.roles, inv.account_id)}
    for user, key in sorted(spec.grants()):
        if (user.lower(), key) not in held:
            problems.append(Problem(UNEXPECTED, user, f"{user} cannot assume {spec.roles[key]} ({key}), which the "
                                    "spec grants: no IAM or Identity Center path reaches it"))  # fmt: skip
    return problems


def _fixable(problem: Problem, spec: Spec, plan_empty: bool) -> bool:
    """The mode's plan removes ungranted access through the runbook's own permission sets and groups, and adds
    missing paths; it never touches IAM users (07 retires them) or anything else."""
    own = tuple(f"via Identity Center permission set {permission_set_name(r)} " for r in spec.roles.values())
    if " cannot assume " in problem.message:
        return not plan_empty
    return any(path in problem.message for path in own)


def verify_center(spec: Spec, inv: Inventory, state: CenterState, accounts: Sequence[str],
                  addresses: Sequence[str] = ()) -> Verification:  # fmt: skip
    """Pending changes of the mode's plan, then access, each problem marked fixable by an apply or not."""
    plan = make_center_plan(spec, inv, state, accounts=accounts)
    problems = [Problem(c.kind, c.address, c.reason) for c in plan.changes]
    found = center_access_problems(spec, inv, state, accounts)
    problems += found
    unfixable = tuple(p for p in found if not _fixable(p, spec, plan.is_empty))
    policy_arns = {key: inv.local_policy(policy_name(role))["Arn"] for key, role in spec.roles.items()
                   if inv.local_policy(policy_name(role))}  # fmt: skip
    users = {name: user["UserId"] for name, user in state.users.items() if name in spec.users}
    return Verification(problems, sorted(addresses), users, policy_arns, unfixable)


def verify_member(spec: Spec, inv: Inventory, region: str = "us-east-1") -> Verification:
    """04 in a member account whose Identity Center part the management account runs: its Assume*Policy
    policies as the spec says (a pending change of its member plan is a problem) and every granted role's trust
    admitting the reserved role (make_member_plan refuses otherwise). No instance is read: who holds which
    permission set is the management account's 04 to say."""
    plan = make_member_plan(spec, inv, region)
    problems = [Problem(c.kind, c.address, c.reason) for c in plan.changes]
    policy_arns = {key: inv.local_policy(policy_name(role))["Arn"] for key, role in spec.roles.items()
                   if inv.local_policy(policy_name(role))}  # fmt: skip
    return Verification(problems, [], {}, policy_arns)
