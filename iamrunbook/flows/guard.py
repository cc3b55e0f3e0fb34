"""The checks every apply owes before its first call, and the outcome record after it: shared by 02, 03, 05 and
07 (flows/apply.py re-exports them), so no flow has to import another to be safe.
"""

from __future__ import annotations

from collections.abc import Iterable

from iamrunbook.aws.executor import ApplyResult
from iamrunbook.base import records
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import caller_role_name, caller_user_name, same_name
from iamrunbook.core.changes import Change
from iamrunbook.core.plan import Plan


def _operator_problems(changes: Iterable[Change], caller_arn: str, *, simulated: bool = False) -> list[str]:
    """Anything that removes the access of the identity running the plan (its user or its role).

    When the simulator proves the plan (`simulated`), it alone judges the operator's user: a detach from
    them is safe when they keep the role another way (a role group), which a name check cannot see.
    """
    me, my_role = caller_user_name(caller_arn), caller_role_name(caller_arn)
    me_for_revokes = None if simulated else me
    problems = []
    for change in changes:
        target = change.target_name or change.user
        if change.kind == "delete_user" and same_name(target, me):
            problems.append(f"the plan deletes {change.user}, the identity running it; run it as another identity")
        revokes = change.kind in ("detach", "remove_from_group")
        if revokes and ((change.target_kind == "user" and same_name(target, me_for_revokes)) or
                        (change.target_kind == "role" and same_name(target, my_role)) or
                        (change.kind == "remove_from_group" and same_name(change.user, me_for_revokes))):  # fmt: skip
            if change.kind == "detach":
                what = f"detaches {change.policy_name} from {change.target_kind} {change.target_name}"
            else:
                what = f"removes {change.user} from group {change.target_name}"
            problems.append(
                f"the plan {what}, the identity running it, which would lock you out of that role; grant it "
                "in the spec or run as another identity"
            )
    return problems


def refuse(problems: list[str]) -> None:
    if problems:
        raise SafetyError("refused before any change:\n" + "\n".join(f"- {p}" for p in problems))


def check_safety(
    plan: Plan, max_deletions: int, *, allow_without_mfa_device: bool = False, simulated: bool = False
) -> None:
    """Refuse, before any change, mass deletions, the operator's own lockout and MFA-less MFA grants.
    `simulated`: the simulator runs next and judges the operator's user step by step."""
    problems = []
    deletions = plan.deletions()
    if len(deletions) > max_deletions:
        names = ", ".join(c.user for c in deletions)
        problems.append(
            f"the plan deletes {len(deletions)} users ({names}), more than max_deletions={max_deletions}; "
            "raise max_deletions for this run if that is really intended"
        )
    problems += _operator_problems(plan.changes, plan.caller_arn, simulated=simulated)
    if plan.without_mfa and not allow_without_mfa_device and not plan.is_empty:
        problems.append(
            "these users are granted a role that requires MFA but have no MFA device, so they would lose it in "
            f"practice: {', '.join(plan.without_mfa)}; give them a device first, or set "
            "allow_without_mfa_device: true"
        )
    refuse(problems)


def record_outcome(rb, record: records.Record, result: ApplyResult, *, rows_key: str = "changes", **extra) -> None:
    """apply_result.json (or the legacy migration's): ok, the error, and one row per change."""
    outcome = records.Outcome(ok=result.ok, error=result.error, **{rows_key: result.rows()}, **extra)
    rb.write(record, outcome)
