"""The Identity Center calls apply makes for `grant_via: identity_center`, and 07's retiring of IAM users.

Changes name things (core/identity_center_state.py): the handlers look ids up when they call (GetUserId on
userName, GetGroupId on DisplayName, the instance's permission sets by name), caching them per target. Each
is idempotent: a create that meets ConflictException, or a removal that meets ResourceNotFoundException,
was made by an earlier run. Assignments and provisioning are asynchronous: the handler polls the request's
status until it SUCCEEDED, and raises AWS's FailureReason when it FAILED. Throttling (AWS's rate, or the
instance's 10 requests in flight) is retried by botocore and then by the executor; a ConflictException on
an asynchronous request (another operation on the permission set is in progress) is retried here.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.aws.mutations import AWS
from iamrunbook.base.errors import AwsActionError
from iamrunbook.core.changes import CENTER_KINDS, KINDS, RETIRE_KINDS, Change
from iamrunbook.core.identity_center_state import GROUP, POLICY_PATH, USER

_KIND_ACTIONS = {action for name in (*CENTER_KINDS, *RETIRE_KINDS) for action in KINDS[name].actions}


def _reads(action: str) -> bool:
    return action.split(":", 1)[1].startswith(("Get", "List", "Describe"))


#: the kinds' status polls and listings, and the lookups by name the handlers make (only apply makes them)
READ_ACTIONS = tuple(sorted(
    {action for action in _KIND_ACTIONS if _reads(action)}
    | {"identitystore:GetUserId", "identitystore:GetGroupId", "identitystore:GetGroupMembershipId",
       "sso:ListPermissionSets", "sso:DescribePermissionSet", "sso:ListAccountAssignments"}
))  # fmt: skip
#: the calls of the Identity Center kinds and of 07's retiring that change something
WRITE_ACTIONS = tuple(sorted(action for action in _KIND_ACTIONS if not _reads(action)))

CONFLICT, NOT_FOUND = "ConflictException", "ResourceNotFoundException"
#: how long an asynchronous request may stay IN_PROGRESS, and the polls' first and longest pause
POLL_TIMEOUT_S = 300.0
POLL_FIRST_S, POLL_MOST_S = 0.05, 5.0
#: how long a request refused for another in progress on its permission set (ConflictException) is retried
CONFLICT_TIMEOUT_S = 120.0


class _Events:
    """The three clients' botocore events as one, so the executor's Watch sees every call a change makes."""

    def __init__(self, *clients) -> None:
        self._all = [c.meta.events for c in clients]

    def register(self, event, handler, unique_id=None) -> None:
        for events in self._all:
            events.register(event, handler, unique_id=unique_id)

    def unregister(self, event, handler=None, unique_id=None) -> None:
        for events in self._all:
            events.unregister(event, handler, unique_id=unique_id)


@dataclass
class _Meta:
    events: _Events


@dataclass
class CenterTarget:
    """What an Identity Center apply calls: IAM (the policies, 07's retiring), sso-admin and the identity
    store in the home region, and the instance. Caches name -> id lookups for every worker thread."""

    iam: object
    sso: object
    store: object
    instance_arn: str
    identity_store_id: str
    pacer: aws.Pacer = field(default_factory=aws.Pacer)
    _ids: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _permission_sets: dict[str, str] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        for center in (self.sso, self.store):  # the instance's rate: ~20 requests a second for both together
            aws.pace(center, self.pacer)
        self.meta = _Meta(_Events(self.iam, self.sso, self.store))

    # -- lookups by name

    def principal_id(self, principal_type: str, name: str) -> str | None:
        """The user's (GetUserId on userName) or group's (GetGroupId on DisplayName) id; None if there is none."""
        key = (principal_type, name)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        path, call = ("displayName", self.store.get_group_id) if principal_type == GROUP else (
            "userName", self.store.get_user_id)  # fmt: skip
        try:
            found = call(IdentityStoreId=self.identity_store_id, AlternateIdentifier={
                "UniqueAttribute": {"AttributePath": path, "AttributeValue": name}})  # fmt: skip
        except ClientError as exc:
            if aws.error_code(exc) == NOT_FOUND:
                return None
            raise
        return self.remember(principal_type, name, found["GroupId" if principal_type == GROUP else "UserId"])

    def remember(self, principal_type: str, name: str, principal_id: str) -> str:
        with self._lock:
            self._ids[(principal_type, name)] = principal_id
        return principal_id

    def permission_set_arn(self, name: str) -> str | None:
        """The permission set's ARN by name (ListPermissionSets and DescribePermissionSet, read again on a miss)."""
        with self._lock:
            if name not in self._permission_sets:
                for arn in aws.paginate(self.sso, "list_permission_sets", "PermissionSets",
                                        InstanceArn=self.instance_arn):  # fmt: skip
                    if arn not in self._permission_sets.values():
                        ps = self.sso.describe_permission_set(InstanceArn=self.instance_arn, PermissionSetArn=arn)
                        self._permission_sets[ps["PermissionSet"]["Name"]] = arn
            return self._permission_sets.get(name)

    def remember_permission_set(self, name: str, arn: str) -> None:
        with self._lock:
            self._permission_sets[name] = arn

    def needed(self, name: str, c: Change) -> str:
        """The permission set's ARN, or an error naming the change that needed it."""
        arn = self.permission_set_arn(name)
        if arn is None:
            raise AwsActionError(f"{c.kind} {c.address}", LookupError(f"no permission set {name!r} in the instance"))
        return arn


def run_center(target: CenterTarget, change: Change) -> object:
    """One change of an Identity Center plan (pass as `run=` to executor.execute): the Identity Center kinds on
    `target`, the IAM kinds (the Assume*Policy policies, 07's retiring) on its IAM client."""
    if change.kind in CENTER_KINDS:
        return AWS(target, change)
    return AWS(target.iam, change)


def _tolerate(code: str, call):
    try:
        return call()
    except ClientError as exc:
        if aws.error_code(exc) == code:
            return None
        raise


def _tags(c: Change) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in c.tags]


def _document(c: Change) -> dict:
    return json.loads(c.document) if c.document else {}


# --- asynchronous requests ---------------------------------------------------------------------------
def start(call):
    """Start an asynchronous request; while another operation on its permission set is in progress
    (ConflictException), wait and try again, with backoff, for at most CONFLICT_TIMEOUT_S."""
    deadline, pause = time.monotonic() + CONFLICT_TIMEOUT_S, POLL_FIRST_S
    while True:
        try:
            return call()
        except ClientError as exc:
            if aws.error_code(exc) != CONFLICT or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
        pause = min(pause * 2, POLL_MOST_S)


def settle(describe, key: str, request: dict, what: str) -> dict:
    """Poll `describe(request id)` until the request is done; its status when SUCCEEDED, AwsActionError with
    AWS's FailureReason when FAILED, or when still IN_PROGRESS after POLL_TIMEOUT_S."""
    deadline, pause = time.monotonic() + POLL_TIMEOUT_S, POLL_FIRST_S
    status = request
    while status.get("Status") == "IN_PROGRESS":
        if time.monotonic() > deadline:
            late = TimeoutError(f"request {request['RequestId']} still IN_PROGRESS after {POLL_TIMEOUT_S:.0f} s; "
                                "run again: the rerun finds what it made")  # fmt: skip
            raise AwsActionError(what, late)
        time.sleep(pause)
        pause = min(pause * 2, POLL_MOST_S)
        status = describe(request["RequestId"])[key]
    if status.get("Status") == "FAILED":
        raise AwsActionError(what, RuntimeError(status.get("FailureReason") or "FAILED without a reason"))
    return status


def _missing(c: Change, what: str) -> AwsActionError:
    return AwsActionError(f"{c.kind} {c.address}", LookupError(f"no {what} in the instance"))


# --- the identity store ------------------------------------------------------------------------------
@AWS.register("ic_create_user")
def ic_create_user(t: CenterTarget, c: Change) -> None:
    """The user as the change's document gives CreateUser (UserName, DisplayName, Name, Emails)."""
    made = _tolerate(CONFLICT, lambda: t.store.create_user(IdentityStoreId=t.identity_store_id, **_document(c)))
    if made is not None:
        t.remember(USER, c.user, made["UserId"])


@AWS.register("ic_create_group")
def ic_create_group(t: CenterTarget, c: Change) -> None:
    extra = {"Description": c.description} if c.description else {}
    made = _tolerate(CONFLICT, lambda: t.store.create_group(IdentityStoreId=t.identity_store_id,
                                                            DisplayName=c.target_name, **extra))  # fmt: skip
    if made is not None:
        t.remember(GROUP, c.target_name, made["GroupId"])


def _member_ids(t: CenterTarget, c: Change) -> tuple[str | None, str | None]:
    return t.principal_id(USER, c.user), t.principal_id(GROUP, c.target_name)


@AWS.register("ic_add_member")
def ic_add_member(t: CenterTarget, c: Change) -> None:
    user, group = _member_ids(t, c)
    if user is None or group is None:
        raise _missing(c, f"identity-store user {c.user!r}" if user is None else f"group {c.target_name!r}")
    _tolerate(CONFLICT, lambda: t.store.create_group_membership(IdentityStoreId=t.identity_store_id, GroupId=group,
                                                                MemberId={"UserId": user}))  # fmt: skip


@AWS.register("ic_remove_member")
def ic_remove_member(t: CenterTarget, c: Change) -> None:
    """Every membership of the user in the group (a store may hold a duplicate); none left is done."""
    user, group = _member_ids(t, c)
    if user is None or group is None:
        return
    for _ in range(10):
        found = _tolerate(NOT_FOUND, lambda: t.store.get_group_membership_id(
            IdentityStoreId=t.identity_store_id, GroupId=group, MemberId={"UserId": user}))  # fmt: skip
        if found is None:
            return
        membership = found["MembershipId"]
        _tolerate(NOT_FOUND, lambda m=membership: t.store.delete_group_membership(
            IdentityStoreId=t.identity_store_id, MembershipId=m))  # fmt: skip


# --- permission sets ---------------------------------------------------------------------------------
def _settings(c: Change) -> dict:
    """Description and SessionDuration, as the change gives them."""
    extra = {"Description": c.description} if c.description else {}
    duration = _document(c).get("SessionDuration")
    return {**extra, "SessionDuration": duration} if duration else extra


@AWS.register("ic_create_permission_set")
def ic_create_permission_set(t: CenterTarget, c: Change) -> None:
    """Created with its tags; one an interrupted run made is tagged again."""
    arn = t.permission_set_arn(c.target_name)
    if arn is None:
        tags = {"Tags": _tags(c)} if c.tags else {}
        made = _tolerate(CONFLICT, lambda: t.sso.create_permission_set(InstanceArn=t.instance_arn,
                                                                       Name=c.target_name, **_settings(c), **tags))
        if made is not None:
            t.remember_permission_set(c.target_name, made["PermissionSet"]["PermissionSetArn"])
            return
        arn = t.needed(c.target_name, c)
    if c.tags:
        t.sso.tag_resource(InstanceArn=t.instance_arn, ResourceArn=arn, Tags=_tags(c))


@AWS.register("ic_update_permission_set")
def ic_update_permission_set(t: CenterTarget, c: Change) -> None:
    arn = t.needed(c.target_name, c)
    t.sso.update_permission_set(InstanceArn=t.instance_arn, PermissionSetArn=arn, **_settings(c))
    if c.tags:
        t.sso.tag_resource(InstanceArn=t.instance_arn, ResourceArn=arn, Tags=_tags(c))


def _reference(c: Change) -> dict:
    return {"Name": c.policy_name, "Path": _document(c).get("Path", POLICY_PATH)}


@AWS.register("ic_attach_policy_reference")
def ic_attach_policy_reference(t: CenterTarget, c: Change) -> None:
    arn = t.needed(c.target_name, c)
    _tolerate(CONFLICT, lambda: t.sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=t.instance_arn, PermissionSetArn=arn, CustomerManagedPolicyReference=_reference(c)))  # fmt: skip


@AWS.register("ic_detach_policy_reference")
def ic_detach_policy_reference(t: CenterTarget, c: Change) -> None:
    arn = t.permission_set_arn(c.target_name)
    if arn is not None:
        detach = t.sso.detach_customer_managed_policy_reference_from_permission_set
        _tolerate(NOT_FOUND, lambda: detach(InstanceArn=t.instance_arn, PermissionSetArn=arn,
                                            CustomerManagedPolicyReference=_reference(c)))  # fmt: skip


@AWS.register("ic_provision")
def ic_provision(t: CenterTarget, c: Change) -> None:
    """The permission set's current version to the change's account; waits until it is there."""
    arn, key = t.needed(c.target_name, c), "PermissionSetProvisioningStatus"
    request = start(lambda: t.sso.provision_permission_set(InstanceArn=t.instance_arn, PermissionSetArn=arn,
                                                           TargetId=c.account, TargetType="AWS_ACCOUNT"))[key]
    settle(lambda rid: t.sso.describe_permission_set_provisioning_status(
        InstanceArn=t.instance_arn, ProvisionPermissionSetRequestId=rid), key, request,
        f"ProvisionPermissionSet {c.target_name} to {c.account}")  # fmt: skip


# --- account assignments -----------------------------------------------------------------------------
def _assignment(t: CenterTarget, arn: str, principal_id: str, c: Change) -> dict:
    return {"InstanceArn": t.instance_arn, "TargetId": c.account, "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": arn, "PrincipalType": c.principal_type, "PrincipalId": principal_id}  # fmt: skip


def _assigned(t: CenterTarget, arn: str, principal_id: str, c: Change) -> bool:
    listed = aws.paginate(t.sso, "list_account_assignments", "AccountAssignments", InstanceArn=t.instance_arn,
                          AccountId=c.account, PermissionSetArn=arn)  # fmt: skip
    return any(a["PrincipalType"] == c.principal_type and a["PrincipalId"] == principal_id for a in listed)


def _what(call: str, c: Change) -> str:
    return f"{call} {c.target_name} -> {c.principal_type} {c.user} in {c.account}"


@AWS.register("ic_assign")
def ic_assign(t: CenterTarget, c: Change) -> None:
    """Principal -> permission set in the account, unless already there; waits until AWS has made it (a
    referenced policy missing in the account fails it, with AWS's reason)."""
    arn, principal = t.needed(c.target_name, c), t.principal_id(c.principal_type, c.user)
    if principal is None:
        raise _missing(c, f"identity-store {c.principal_type.lower()} {c.user!r}")
    if _assigned(t, arn, principal, c):
        return
    key = "AccountAssignmentCreationStatus"
    request = start(lambda: t.sso.create_account_assignment(**_assignment(t, arn, principal, c)))[key]
    settle(lambda rid: t.sso.describe_account_assignment_creation_status(
        InstanceArn=t.instance_arn, AccountAssignmentCreationRequestId=rid), key, request,
        _what("CreateAccountAssignment", c))  # fmt: skip


@AWS.register("ic_unassign")
def ic_unassign(t: CenterTarget, c: Change) -> None:
    """Gone already (the assignment, its permission set or its principal) is done."""
    arn, principal = t.permission_set_arn(c.target_name), t.principal_id(c.principal_type, c.user)
    if arn is None or principal is None:
        return
    key = "AccountAssignmentDeletionStatus"
    started = start(lambda: _tolerate(NOT_FOUND, lambda: t.sso.delete_account_assignment(
        **_assignment(t, arn, principal, c))))  # fmt: skip
    if started is not None:
        settle(lambda rid: t.sso.describe_account_assignment_deletion_status(
            InstanceArn=t.instance_arn, AccountAssignmentDeletionRequestId=rid), key, started[key],
            _what("DeleteAccountAssignment", c))  # fmt: skip


# --- 07's retiring of an IAM user (these take the IAM client) ---------------------------------------
@AWS.register("deactivate_access_keys")
def deactivate_access_keys(iam, c: Change) -> None:
    """Every active key of the user made inactive (kept, so it can be turned back on); a gone user is done."""
    keys = aws.gone_ok(lambda: aws.paginate(iam, "list_access_keys", "AccessKeyMetadata", UserName=c.user)) or []
    for key in keys:
        if key.get("Status") == "Active":
            aws.gone_ok(lambda key=key: iam.update_access_key(UserName=c.user, AccessKeyId=key["AccessKeyId"],
                                                              Status="Inactive"))  # fmt: skip


@AWS.register("delete_login_profile")
def delete_login_profile(iam, c: Change) -> None:
    """The console password removed; none (or no user) is done."""
    aws.gone_ok(lambda: iam.delete_login_profile(UserName=c.user))
