"""grant_via: identity_center on the embedded AWS through boto3: the read (center_sweep), the handlers and
run_center (center_mutations) through the executor, and the sign-in evidence (cloudtrail.center_sign_ins)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from iamrunbook.aws import clients
from iamrunbook.aws.center_mutations import CenterTarget, run_center
from iamrunbook.aws.center_sweep import (
    UNKNOWN_PRINCIPAL,
    find_instance,
    is_unknown_principal,
    parse_reserved_role,
    read_center_state,
)
from iamrunbook.aws.cloudtrail import center_sign_ins
from iamrunbook.aws.executor import ApplyError, ApplyResult, execute
from iamrunbook.aws.mutations import AWS
from iamrunbook.base.errors import AwsActionError, SpecError
from iamrunbook.core.changes import Change
from iamrunbook.core.identity_center import IdentityCenterSettings, store_user
from iamrunbook.core.identity_center_state import GROUP, USER, Assignment
from iamrunbook.sandbox.calls import ACCOUNT_ID
from iamrunbook.sandbox.identity_center import sign_in

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                              "Resource": "*"}]})  # fmt: skip
PS, GROUP_NAME, POLICY_NAME = "AssumeAdminRole", "AdminRoleUsers", "AssumeAdminRolePolicy"
MANAGED = (("ManagedBy", "iamrunbook"),)


@pytest.fixture
def target(aws, session, iam):
    sso, store = aws.client("sso-admin"), aws.client("identitystore")
    instance = sso.list_instances()["Instances"][0]
    return CenterTarget(iam, sso, store, instance["InstanceArn"], instance["IdentityStoreId"])


def _change(kind: str, **fields) -> Change:
    return Change(kind, f"{kind}.{fields.get('target_name') or fields.get('user')}", "test", **fields)


def grant_changes(users=("alice@example.com", "bob"), account: str = ACCOUNT_ID) -> list[Change]:
    """Phase 1 for one role, as the planner fills the fields (COMMON.md)."""
    made = [_change("ic_create_user", user=u, document=json.dumps(store_user(u, f"{u.title()} Person - ops")))
            for u in users]  # fmt: skip
    made += [
        _change("ic_create_group", target_kind="ic_group", target_name=GROUP_NAME, role_key="admin",
                description="Holders of AdminRole"),
        _change("ic_create_permission_set", target_kind="permission_set", target_name=PS, role_key="admin",
                description="Assume AdminRole", tags=MANAGED, document=json.dumps({"SessionDuration": "PT2H"})),
        _change("ic_attach_policy_reference", target_name=PS, policy_name=POLICY_NAME, role_key="admin"),
        _change("ic_provision", target_name=PS, account=account),
    ]  # fmt: skip
    made += [_change("ic_add_member", user=u, target_kind="ic_group", target_name=GROUP_NAME, role_key="admin")
             for u in users]  # fmt: skip
    made.append(_change("ic_assign", target_name=PS, account=account, principal_type=GROUP, user=GROUP_NAME,
                        role_key="admin"))  # fmt: skip
    return made


def _run(target, changes, parallelism: int = 1) -> ApplyResult:
    return execute(target, changes, ApplyResult(), desc="apply", progress=False, parallelism=parallelism,
                   run=run_center)  # fmt: skip


def _state(session, accounts=None):
    return read_center_state(session, IdentityCenterSettings(), ACCOUNT_ID, accounts=accounts)


def test_every_kind_has_an_aws_handler():
    assert AWS.missing() == []


def test_the_handlers_grant_the_path_and_a_rerun_changes_nothing(aws, session, iam, target):
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    changes = grant_changes()
    assert len(_run(target, changes).done) == len(changes)
    first = _state(session)
    calls = len(aws.mutating_calls())
    again = CenterTarget(target.iam, target.sso, target.store, target.instance_arn, target.identity_store_id)
    assert len(_run(again, changes).done) == len(changes)  # everything already done counts as done
    assert _state(session) == first
    made_again = [c.action for c in aws.mutating_calls()[calls:] if c.ok]
    assert set(made_again) <= {"TagResource", "UpdatePermissionSet", "ProvisionPermissionSet"}, made_again
    assert set(first.users) == {"alice@example.com", "bob"}
    assert first.users["alice@example.com"]["DisplayName"] == "Alice@Example.Com Person"
    assert first.members(GROUP_NAME) == {"alice@example.com", "bob"}
    assert set(first.membership_ids) == first.memberships and all(first.membership_ids.values())  # Terraform's ids
    ps = first.permission_sets[PS]
    assert (ps.customer_managed, ps.session_duration, ps.is_managed) == (((POLICY_NAME, "/"),), "PT2H", True)
    assert ACCOUNT_ID in ps.provisioned and ps.created
    assert first.assignments == {Assignment(ACCOUNT_ID, PS, GROUP, GROUP_NAME)}
    assert parse_reserved_role(first.reserved_roles[ACCOUNT_ID][PS].rsplit("/", 1)[1])[0] == PS


def test_the_read_names_everything_and_marks_principals_it_does_not_know(aws, session, iam, target):
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    iam.create_policy(PolicyName="Ops_Policy", Path="/ops/", PolicyDocument=POLICY)
    _run(target, grant_changes(users=("alice",)))
    extra = [
        _change("ic_create_permission_set", target_name="Assume_Ops_Role",
                document=json.dumps({"SessionDuration": "PT4H"})),
        _change("ic_attach_policy_reference", target_name="Assume_Ops_Role", policy_name="Ops_Policy",
                document=json.dumps({"Path": "/ops/"})),
        _change("ic_assign", target_name="Assume_Ops_Role", account=ACCOUNT_ID, principal_type=USER, user="alice"),
    ]  # fmt: skip
    _run(target, extra)
    ops = target.permission_set_arn("Assume_Ops_Role")
    target.sso.attach_managed_policy_to_permission_set(InstanceArn=target.instance_arn, PermissionSetArn=ops,
                                                       ManagedPolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    target.sso.put_inline_policy_to_permission_set(InstanceArn=target.instance_arn, PermissionSetArn=ops,
                                                   InlinePolicy=POLICY)  # fmt: skip
    target.sso.create_account_assignment(InstanceArn=target.instance_arn, TargetId=ACCOUNT_ID, TargetType="AWS_ACCOUNT",
                                         PermissionSetArn=ops, PrincipalType=GROUP, PrincipalId="g-gone")  # fmt: skip
    state = _state(session)
    assert set(state.permission_sets) == {PS, "Assume_Ops_Role"}
    found = state.permission_sets["Assume_Ops_Role"]
    assert found.customer_managed == (("Ops_Policy", "/ops/"),) and found.inline and found.tags == ()
    assert found.managed_arns == ("arn:aws:iam::aws:policy/ReadOnlyAccess",) and not found.is_managed
    assert Assignment(ACCOUNT_ID, "Assume_Ops_Role", USER, "alice") in state.assignments
    unknown = Assignment(ACCOUNT_ID, "Assume_Ops_Role", GROUP, f"{UNKNOWN_PRINCIPAL}g-gone")
    assert unknown in state.assignments and is_unknown_principal(unknown.principal)
    assert set(state.reserved_roles[ACCOUNT_ID]) == {PS, "Assume_Ops_Role"}
    assert state.instance_arn == target.instance_arn and state.home_region == "us-east-1"


def test_assignments_are_read_in_every_target_account(aws, session, target):
    member = "210987654321"
    aws.client("iam", account_id=member).create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    _run(target, grant_changes(users=("alice",), account=member))
    state = _state(session, accounts=(ACCOUNT_ID, member))
    assert state.assignments == {Assignment(member, PS, GROUP, GROUP_NAME)}
    assert state.reserved_roles == {ACCOUNT_ID: {}}  # the caller's account only; the member's is its own read


class _Instances:
    """A stand-in sso-admin client whose ListInstances answers `instances`."""

    def __init__(self, instances):
        self.instances = instances

    def get_paginator(self, _):
        return self

    def paginate(self, **_):
        return [{"Instances": self.instances}]


def test_the_instance_must_be_one_and_only_one():
    one = {"InstanceArn": "arn:aws:sso:::instance/ssoins-1111111111111111", "IdentityStoreId": "d-1111111111"}
    two = {"InstanceArn": "arn:aws:sso:::instance/ssoins-2222222222222222", "IdentityStoreId": "d-2222222222"}
    found = find_instance(_Instances([one]), IdentityCenterSettings(), "eu-west-1")
    assert found == (one["InstanceArn"], "d-1111111111")
    with pytest.raises(SpecError, match="found none"):
        find_instance(_Instances([]), IdentityCenterSettings(), "eu-west-1")
    with pytest.raises(SpecError, match="2 instances in eu-west-1.*instance_arn"):
        find_instance(_Instances([one, two]), IdentityCenterSettings(), "eu-west-1")
    chosen = IdentityCenterSettings(instance_arn=two["InstanceArn"])
    assert find_instance(_Instances([one, two]), chosen, "eu-west-1") == (two["InstanceArn"], "d-2222222222")


def test_a_missing_referenced_policy_fails_the_assignment_with_aws_reason(aws, session, target):
    changes = [c for c in grant_changes(users=("alice",)) if c.kind != "ic_provision"]
    with pytest.raises(ApplyError) as failed:
        _run(target, changes)
    assert failed.value.change.kind == "ic_assign"
    assert isinstance(failed.value.cause, AwsActionError)
    assert f"Not supported policy arn:aws:iam::{ACCOUNT_ID}:policy/{POLICY_NAME}" in str(failed.value)
    assert _state(session).assignments == frozenset()


def test_a_request_still_in_progress_times_out_with_a_clear_error(aws, iam, target, monkeypatch):
    from iamrunbook.aws import center_mutations

    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    _run(target, [c for c in grant_changes(users=("alice",)) if c.kind != "ic_assign"])
    aws.identity_center.settle_seconds = 60
    monkeypatch.setattr(center_mutations, "POLL_TIMEOUT_S", 0.3)
    with pytest.raises(AwsActionError, match="still IN_PROGRESS after 0 s"):
        run_center(target, grant_changes(users=("alice",))[-1])


def test_more_assignments_than_may_be_in_flight_all_succeed(aws, session, iam, target):
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    users = [f"user{i}" for i in range(12)]
    setup = [c for c in grant_changes(users=users) if c.kind != "ic_assign"]
    _run(target, setup, parallelism=4)
    aws.identity_center.settle_seconds = 1.5  # each request stays in flight a while: the 11th is throttled
    assigns = [_change("ic_assign", target_name=PS, account=ACCOUNT_ID, principal_type=USER, user=u, phase=1)
               for u in users]  # fmt: skip
    result = _run(target, assigns, parallelism=12)
    assert len(result.done) == 12
    assert any(c.error_code == "ThrottlingException" for c in aws.calls)
    assert {a.principal for a in _state(session).assignments if a.principal_type == USER} == set(users)


def test_unassign_and_removals_undo_the_path_and_are_done_when_gone(aws, session, iam, target):
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=POLICY)
    _run(target, grant_changes(users=("alice",)))
    undo = [
        _change("ic_unassign", target_name=PS, account=ACCOUNT_ID, principal_type=GROUP, user=GROUP_NAME),
        _change("ic_remove_member", user="alice", target_kind="ic_group", target_name=GROUP_NAME),
        _change("ic_detach_policy_reference", target_name=PS, policy_name=POLICY_NAME),
        _change("ic_update_permission_set", target_name=PS, description="Assume AdminRole, 8 hours",
                document=json.dumps({"SessionDuration": "PT8H"})),
    ]  # fmt: skip
    _run(target, undo)
    _run(target, undo)
    state = _state(session)
    assert state.assignments == frozenset() and state.memberships == frozenset()
    assert state.permission_sets[PS].customer_managed == () and state.permission_sets[PS].session_duration == "PT8H"
    assert state.reserved_roles[ACCOUNT_ID] == {}  # the last assignment gone: AWS deletes the role
    gone = [_change("ic_unassign", target_name="AssumeNobody", account=ACCOUNT_ID, principal_type=GROUP, user="x"),
            _change("ic_remove_member", user="nobody", target_kind="ic_group", target_name=GROUP_NAME),
            _change("ic_detach_policy_reference", target_name="AssumeNobody", policy_name=POLICY_NAME)]  # fmt: skip
    assert len(_run(target, gone).done) == 3


def test_retiring_an_iam_user_deactivates_its_keys_and_removes_its_password(aws, iam, target):
    iam.create_user(UserName="alice")
    keys = [iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    iam.update_access_key(UserName="alice", AccessKeyId=keys[1], Status="Inactive")
    iam.create_login_profile(UserName="alice", Password="Initial-Password-123!")
    retire = [_change("deactivate_access_keys", user="alice"), _change("delete_login_profile", user="alice")]
    for _ in range(2):  # the second time everything is already done
        _run(target, retire)
        listed = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
        assert {k["AccessKeyId"]: k["Status"] for k in listed} == dict.fromkeys(keys, "Inactive")
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_login_profile(UserName="alice")
    assert len(_run(target, [_change("deactivate_access_keys", user="gone"),
                             _change("delete_login_profile", user="gone")]).done) == 2  # fmt: skip


def test_sign_ins_are_matched_on_the_identity_store_user_since_a_time(aws, session):
    since = datetime.now(timezone.utc) - timedelta(days=5)
    sign_in(aws, "alice@example.com", "u-alice", days_ago=2)
    sign_in(aws, "alice@example.com", "u-alice", days_ago=1)
    sign_in(aws, "bob", "u-bob", days_ago=9)  # before `since`: proves nothing
    sign_in(aws, "mallory", "u-mallory", days_ago=1)  # not one of the users asked about
    sign_in(aws, "renamed", "u-carol", days_ago=3)  # matched by the store's user id
    users = {"alice@example.com": "u-alice", "bob": "u-bob", "carol": "u-carol"}
    found = center_sign_ins(session, "us-east-1", since, users)
    assert set(found) == {"alice@example.com", "carol"}
    latest = datetime.fromisoformat(found["alice@example.com"])
    assert abs(latest - (datetime.now(timezone.utc) - timedelta(days=1))) < timedelta(minutes=5)


def test_the_pacer_keeps_to_its_rate_after_a_burst():
    pacer = clients.Pacer(rate=200, burst=5)
    started = datetime.now()
    for _ in range(25):
        pacer.wait()
    elapsed = (datetime.now() - started).total_seconds()
    assert 0.08 <= elapsed < 1.0  # 20 past the burst, 5 ms apart


def test_a_failed_or_foreign_sign_in_event_is_no_evidence():
    from iamrunbook.aws.cloudtrail import _signed_in

    when = datetime.now(timezone.utc)

    def event(source="signin.amazonaws.com", **detail):
        extra = {"additionalEventData": {"UserName": "Alice@Example.com", "userId": "u-alice"}}
        return {"EventSource": source, "EventTime": when, "CloudTrailEvent": json.dumps({**extra, **detail})}

    by_name, by_id = {"alice@example.com": "alice@example.com"}, {"u-alice": "alice@example.com"}
    assert _signed_in(event(), by_name, by_id) == ("alice@example.com", when)  # UserName matched without case
    assert _signed_in(event(errorCode="AccessDenied"), by_name, by_id) is None
    assert _signed_in(event(serviceEventDetails={"UserAuthentication": "Failure"}), by_name, by_id) is None
    assert _signed_in(event(source="sso.amazonaws.com"), by_name, by_id) is None
