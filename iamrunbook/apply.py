"""Apply: execute a plan, one API call per change, in the plan's safe order.

Safety checks run before the first change. A failure stops the run and says what was done and what
was not; every change is idempotent, so running the runbook again converges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code, gone_ok, retry_not_found
from .errors import AwsActionError, SafetyError
from .inventory import caller_user_name
from .log import logger
from .plan import Change, Plan
from .progress import progress as show_progress

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:CreateUser",
    "iam:TagUser",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
)


@dataclass
class ApplyResult:
    done: list[Change] = field(default_factory=list)
    not_done: list[Change] = field(default_factory=list)
    failed: Change | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None

    def rows(self) -> list[dict]:
        rows = [{"address": c.address, "kind": c.kind, "status": "done"} for c in self.done]
        if self.failed:
            rows.append({"address": self.failed.address, "kind": self.failed.kind, "status": f"FAILED: {self.error}"})
        rows += [{"address": c.address, "kind": c.kind, "status": "not done"} for c in self.not_done]
        return rows


class ApplyError(AwsActionError):
    """A change failed; `result` holds what was done and what was not."""

    def __init__(self, change: Change, cause: Exception, result: ApplyResult):
        super().__init__(f"{change.kind} {change.address}", cause)
        self.change = change
        self.result = result

    def __str__(self) -> str:
        r = self.result
        lines = [
            f"{self.step} failed: {self.cause}",
            f"{len(r.done)} change(s) done, {len(r.not_done) + 1} not done "
            f"(the failed one and {len(r.not_done)} after it).",
        ]
        lines += _listed("done", r.done)
        lines += _listed("not done", [self.change, *r.not_done])
        lines.append("Fix the cause and run again: every change is idempotent, the rerun converges.")
        return "\n".join(lines)


def _listed(label: str, changes: list[Change], limit: int = 20) -> list[str]:
    """The addresses of `changes`, one per line, so the operator sees exactly where the run stopped."""
    if not changes:
        return []
    shown = [f"  {c.symbol:>2} {c.address}" for c in changes[:limit]]
    if len(changes) > limit:
        shown.append(f"  ... and {len(changes) - limit} more")
    return [f"{label}:", *shown]


def caller_role_name(caller_arn: str) -> str | None:
    """The role of an `...:assumed-role/<role>/<session>` caller (IAM names ignore case), else None."""
    resource = caller_arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        parts = resource.split("/")
        return parts[1] if len(parts) >= 3 else None
    return None


def check_safety(plan: Plan, max_deletions: int) -> None:
    """Refuse, before any change, mass deletions and anything that removes the operator's own access."""
    problems = []
    deletions = plan.deletions()
    if len(deletions) > max_deletions:
        names = ", ".join(c.user for c in deletions)
        problems.append(
            f"the plan deletes {len(deletions)} users ({names}), more than max_deletions={max_deletions}; "
            "raise max_deletions for this run if that is really intended"
        )
    me = (caller_user_name(plan.caller_arn) or "").lower()
    my_role = (caller_role_name(plan.caller_arn) or "").lower()
    for change in plan.changes:
        target = (change.target_name or change.user or "").lower()
        if change.kind == "delete_user" and me and target == me:
            problems.append(f"the plan deletes {change.user}, the identity running it; run it as another identity")
        if change.kind != "detach":
            continue
        if (change.target_kind == "user" and me and target == me) or (
            change.target_kind == "role" and my_role and target == my_role
        ):
            problems.append(
                f"the plan detaches {change.policy_name} from {change.target_kind} {change.target_name}, the "
                "identity running it, which would lock you out of that role; grant it in the spec or run as "
                "another identity"
            )
    if problems:
        raise SafetyError("refused before any change:\n" + "\n".join(f"- {p}" for p in problems))


def _tags(change: Change) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in change.tags]


def _create_policy(iam, c: Change) -> None:
    try:
        iam.create_policy(PolicyName=c.policy_name, PolicyDocument=c.document, Description=c.description, Tags=_tags(c))
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise


def _prune_policy_version(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy_version(PolicyArn=c.policy_arn, VersionId=c.version_id))


def _update_policy(iam, c: Change) -> None:
    iam.create_policy_version(PolicyArn=c.policy_arn, PolicyDocument=c.document, SetAsDefault=True)


def _create_user(iam, c: Change) -> None:
    try:
        iam.create_user(UserName=c.user, Tags=_tags(c))
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":
            raise
        iam.tag_user(UserName=c.user, Tags=_tags(c))  # created by an interrupted run: make sure it is tagged


def _tag_user(iam, c: Change) -> None:
    retry_not_found(lambda: iam.tag_user(UserName=c.user, Tags=_tags(c)))


def _attach(iam, c: Change) -> None:
    # Right after a create, IAM may not see the user or policy yet.
    retry_not_found(lambda: iam.attach_user_policy(UserName=c.user, PolicyArn=c.policy_arn))


def _detach(iam, c: Change) -> None:
    calls = {
        "user": lambda: iam.detach_user_policy(UserName=c.target_name, PolicyArn=c.policy_arn),
        "group": lambda: iam.detach_group_policy(GroupName=c.target_name, PolicyArn=c.policy_arn),
        "role": lambda: iam.detach_role_policy(RoleName=c.target_name, PolicyArn=c.policy_arn),
    }
    gone_ok(calls[c.target_kind])


def _delete_user(iam, c: Change) -> None:
    from .offboard import delete_user

    delete_user(iam, c.user)


HANDLERS: dict[str, Callable] = {
    "create_policy": _create_policy,
    "prune_policy_version": _prune_policy_version,
    "update_policy": _update_policy,
    "create_user": _create_user,
    "import_user": _tag_user,
    "tag_user": _tag_user,
    "attach": _attach,
    "detach": _detach,
    "delete_user": _delete_user,
}


def execute(iam, changes, handlers: dict[str, Callable], result: ApplyResult, *, desc: str, progress: bool):
    """Run each change's handler in order into `result`; at the first failure raise ApplyError (with it)."""
    changes = list(changes)
    steps = show_progress(changes, desc=desc, unit="change") if progress else changes
    for i, change in enumerate(steps):
        try:
            handlers[change.kind](iam, change)
        # AwsActionError: a user deletion stopped part-way (offboard names its own step).
        except (ClientError, BotoCoreError, AwsActionError) as exc:
            result.failed, result.error = change, str(exc)
            result.not_done = changes[i + 1 :]
            logger.error("%s stopped at %s: %s", desc, change.address, exc)
            raise ApplyError(change, exc, result) from exc
        result.done.append(change)
        logger.info("%s %s", change.symbol, change.address)
    return result


def apply_plan(iam, plan: Plan, *, max_deletions: int = 3, progress: bool = False) -> ApplyResult:
    """Execute every change in order; raise ApplyError (with the result) at the first failure."""
    check_safety(plan, max_deletions)
    return execute(iam, plan.changes, HANDLERS, ApplyResult(), desc="apply", progress=progress)
