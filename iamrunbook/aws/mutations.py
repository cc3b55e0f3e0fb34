"""One small function per kind of change: the IAM calls apply makes, client first, each idempotent.

A rerun after an interruption meets things half done, so each states what "already done" looks like:
EntityAlreadyExists after a create, NoSuchEntity after a removal. Right after a create IAM may not see
the new user or policy yet (eventual consistency), so calls that need one retry NoSuchEntity briefly.
"""

from __future__ import annotations

from iamrunbook.aws.clients import exists_ok, gone_ok, retry_not_found
from iamrunbook.aws.deletion import delete_user as full_cleanup
from iamrunbook.core.changes import CENTER_KINDS, KINDS, RETIRE_KINDS, Change, Handlers

#: kind -> the AWS calls that make it; the executor dispatches through this
AWS = Handlers("AWS")

READ_ACTIONS: tuple[str, ...] = ()
#: the user and group modes' calls; Identity Center's and 07's are declared by aws/center_mutations.py
WRITE_ACTIONS = tuple(sorted({action for name, kind in KINDS.items() if name not in (*CENTER_KINDS, *RETIRE_KINDS)
                              for action in kind.actions}))  # fmt: skip


def _tags(change: Change) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in change.tags]


@AWS.register("create_policy")
def create_policy(iam, c: Change) -> None:
    exists_ok(
        lambda: iam.create_policy(
            PolicyName=c.policy_name, PolicyDocument=c.document, Description=c.description, Tags=_tags(c)
        )
    )


@AWS.register("delete_policy_version", "prune_policy_version")
def delete_policy_version(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy_version(PolicyArn=c.policy_arn, VersionId=c.version_id))


@AWS.register("update_policy")
def update_policy(iam, c: Change) -> None:
    iam.create_policy_version(PolicyArn=c.policy_arn, PolicyDocument=c.document, SetAsDefault=True)


@AWS.register("delete_policy")
def delete_policy(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy(PolicyArn=c.policy_arn))


@AWS.register("create_user")
def create_user(iam, c: Change) -> None:
    if exists_ok(lambda: iam.create_user(UserName=c.user, Tags=_tags(c))) is None:
        tag_user(iam, c)  # created by an interrupted run: make sure it is tagged


@AWS.register("tag_user", "import_user")
def tag_user(iam, c: Change) -> None:
    retry_not_found(lambda: iam.tag_user(UserName=c.user, Tags=_tags(c)))


@AWS.register("create_group")
def create_group(iam, c: Change) -> None:
    exists_ok(lambda: iam.create_group(GroupName=c.target_name))


@AWS.register("attach")
def attach(iam, c: Change) -> None:
    """A policy onto a user (the default) or a group."""
    if c.target_kind == "group":
        retry_not_found(lambda: iam.attach_group_policy(GroupName=c.target_name, PolicyArn=c.policy_arn))
    else:
        retry_not_found(lambda: iam.attach_user_policy(UserName=c.user, PolicyArn=c.policy_arn))


@AWS.register("add_to_group")
def add_to_group(iam, c: Change) -> None:
    retry_not_found(lambda: iam.add_user_to_group(GroupName=c.target_name, UserName=c.user))


@AWS.register("detach")
def detach(iam, c: Change) -> None:
    calls = {
        "user": lambda: iam.detach_user_policy(UserName=c.target_name, PolicyArn=c.policy_arn),
        "group": lambda: iam.detach_group_policy(GroupName=c.target_name, PolicyArn=c.policy_arn),
        "role": lambda: iam.detach_role_policy(RoleName=c.target_name, PolicyArn=c.policy_arn),
    }
    gone_ok(calls[c.target_kind])


@AWS.register("remove_from_group")
def remove_from_group(iam, c: Change) -> None:
    gone_ok(lambda: iam.remove_user_from_group(GroupName=c.target_name, UserName=c.user))


@AWS.register("delete_group")
def delete_group(iam, c: Change) -> None:
    """A temporary grant's group, once its members are out and its policy detached."""
    gone_ok(lambda: iam.delete_group(GroupName=c.target_name))


@AWS.register("delete_user")
def delete_user(iam, c: Change) -> None:
    """The user's full, ordered cleanup (deletion.py), then the user."""
    full_cleanup(iam, c.user)
