"""One small function per kind of change: the IAM calls apply makes, client first, each idempotent.

A rerun after an interruption meets things half done, so each states what "already done" looks like:
EntityAlreadyExists after a create, NoSuchEntity after a removal. Right after a create IAM may not see
the new user or policy yet (eventual consistency), so calls that need one retry NoSuchEntity briefly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from iamrunbook.aws.clients import exists_ok, gone_ok, retry_not_found

if TYPE_CHECKING:  # changes.py holds the kinds table that names these functions
    from iamrunbook.core.changes import Change

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
    "iam:CreateUser",
    "iam:TagUser",
    "iam:CreateGroup",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AddUserToGroup",
    "iam:DetachUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
    "iam:RemoveUserFromGroup",
)


def _tags(change: Change) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in change.tags]


def create_policy(iam, c: Change) -> None:
    exists_ok(
        lambda: iam.create_policy(
            PolicyName=c.policy_name, PolicyDocument=c.document, Description=c.description, Tags=_tags(c)
        )
    )


def delete_policy_version(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy_version(PolicyArn=c.policy_arn, VersionId=c.version_id))


def update_policy(iam, c: Change) -> None:
    iam.create_policy_version(PolicyArn=c.policy_arn, PolicyDocument=c.document, SetAsDefault=True)


def delete_policy(iam, c: Change) -> None:
    gone_ok(lambda: iam.delete_policy(PolicyArn=c.policy_arn))


def create_user(iam, c: Change) -> None:
    if exists_ok(lambda: iam.create_user(UserName=c.user, Tags=_tags(c))) is None:
        tag_user(iam, c)  # created by an interrupted run: make sure it is tagged


def tag_user(iam, c: Change) -> None:
    retry_not_found(lambda: iam.tag_user(UserName=c.user, Tags=_tags(c)))


def create_group(iam, c: Change) -> None:
    exists_ok(lambda: iam.create_group(GroupName=c.target_name))


def attach(iam, c: Change) -> None:
    """A policy onto a user (the default) or a group."""
    if c.target_kind == "group":
        retry_not_found(lambda: iam.attach_group_policy(GroupName=c.target_name, PolicyArn=c.policy_arn))
    else:
        retry_not_found(lambda: iam.attach_user_policy(UserName=c.user, PolicyArn=c.policy_arn))


def add_to_group(iam, c: Change) -> None:
    retry_not_found(lambda: iam.add_user_to_group(GroupName=c.target_name, UserName=c.user))


def detach(iam, c: Change) -> None:
    calls = {
        "user": lambda: iam.detach_user_policy(UserName=c.target_name, PolicyArn=c.policy_arn),
        "group": lambda: iam.detach_group_policy(GroupName=c.target_name, PolicyArn=c.policy_arn),
        "role": lambda: iam.detach_role_policy(RoleName=c.target_name, PolicyArn=c.policy_arn),
    }
    gone_ok(calls[c.target_kind])


def remove_from_group(iam, c: Change) -> None:
    gone_ok(lambda: iam.remove_user_from_group(GroupName=c.target_name, UserName=c.user))


def delete_user(iam, c: Change) -> None:
    """The user's full, ordered cleanup (offboard.delete_user), then the user."""
    from iamrunbook.flows.offboard import delete_user as offboard_user

    offboard_user(iam, c.user)
