"""IAM Identity Center as AWS runs it, where moto 5.2.5 does not (see aws-iam-facts.md, third round).

moto keeps permission sets, references and assignments, but creates no role in the target account,
accepts references to policies that do not exist, marks every assignment SUCCEEDED and lacks the
provisioning status and tag calls. This module answers, around moto:

- CreateAccountAssignment / ProvisionPermissionSet create or update `AWSReservedSSO_<name>_<16 hex>` under
  `/aws-reserved/sso.amazonaws.com/` (plus `<region>/` outside us-east-1) in the target account, with the
  permission set's AWS-managed, customer-managed and inline policies and its session duration. A
  customer-managed reference to a policy the account lacks fails the request with AWS's reason.
- Requests are asynchronous: IN_PROGRESS until `settle_seconds` have passed, then SUCCEEDED or FAILED in
  Describe{AccountAssignmentCreation,AccountAssignmentDeletion,PermissionSetProvisioning}Status. At most
  10 are in flight; the 11th is throttled.
- DeleteAccountAssignment of the last assignment of a permission set in an account deletes its role; a
  later assignment makes a new suffix. IAM refuses edits to reserved roles (`reserved_role_refusal`).
- TagResource / UntagResource / ListTagsForResource, and the tags CreatePermissionSet was given.
- The identity store's own gaps: see identity_store.py.
- `sign_in(aws, ...)` seeds the `signin.amazonaws.com` `UserAuthentication` event of a finished sign-in.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.ssoadmin.models import ssoadmin_backends

from iamrunbook.sandbox import identity_store
from iamrunbook.sandbox.calls import REGION
from iamrunbook.sandbox.wire import Request, Response, error_response, json_response

#: The signing name boto3's sso-admin client uses.
SERVICE = "sso"
RESERVED_PATH = "/aws-reserved/sso.amazonaws.com/"
RESERVED_PREFIX = "AWSReservedSSO_"
MAX_IN_FLIGHT = 10
INLINE_POLICY_NAME = "AwsSSOInlinePolicy"
#: IAM actions that change a role named by RoleName: AWS refuses them on a reserved role.
ROLE_EDITS = frozenset({
    "UpdateRole", "UpdateRoleDescription", "UpdateAssumeRolePolicy", "AttachRolePolicy", "DetachRolePolicy",
    "PutRolePolicy", "DeleteRolePolicy", "DeleteRole", "TagRole", "UntagRole", "PutRolePermissionsBoundary",
    "DeleteRolePermissionsBoundary",
})  # fmt: skip
_STATUS_KEYS = {
    "CreateAccountAssignment": "AccountAssignmentCreationStatus",
    "DeleteAccountAssignment": "AccountAssignmentDeletionStatus",
    "ProvisionPermissionSet": "PermissionSetProvisioningStatus",
}
_DESCRIBE = {
    "DescribeAccountAssignmentCreationStatus": ("AccountAssignmentCreationRequestId", "CreateAccountAssignment"),
    "DescribeAccountAssignmentDeletionStatus": ("AccountAssignmentDeletionRequestId", "DeleteAccountAssignment"),
    "DescribePermissionSetProvisioningStatus": ("ProvisionPermissionSetRequestId", "ProvisionPermissionSet"),
}


def is_reserved(role: Any) -> bool:
    return str(getattr(role, "path", "")).startswith(RESERVED_PATH)


def reserved_role_refusal(backend: Any, action: str | None, params: Any) -> tuple[str, str, int] | None:
    """AWS's refusal of an edit to a role Identity Center owns."""
    if action not in ROLE_EDITS or not isinstance(params, dict):
        return None
    name = str(params.get("RoleName", ""))
    role = next((r for r in backend.roles.values() if r.name == name), None)
    if role is None or not is_reserved(role):
        return None
    message = f"Cannot perform the operation on the protected role '{name}' - this role is only modifiable by AWS"
    return "UnmodifiableEntity", message, 400


def reserved_path(region: str) -> str:
    return RESERVED_PATH if region == "us-east-1" else f"{RESERVED_PATH}{region}/"


def _seconds(duration: str | None) -> int:
    """PT1H / PT90M / PT1H30M -> seconds (AWS's default is one hour; moto keeps a non-string default when a
    permission set is created without one)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?", duration if isinstance(duration, str) else "")
    if not match or not any(match.groups()):
        return 3600
    return int(match.group(1) or 0) * 3600 + int(match.group(2) or 0) * 60


@dataclass
class _Job:
    """One asynchronous request, as its Describe*Status call reports it."""

    action: str
    detail: dict[str, Any]
    started: float
    failure: str | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def status(self, settle_seconds: float, now: float) -> dict[str, Any]:
        done = now >= self.started + settle_seconds
        state = "IN_PROGRESS" if not done else ("FAILED" if self.failure else "SUCCEEDED")
        out = {**self.detail, "RequestId": self.request_id, "Status": state, "CreatedDate": self.started}
        if done and self.failure:
            out["FailureReason"] = self.failure
        return out


class IdentityCenter:
    """The Identity Center state moto lacks, per server: jobs, tags and reserved roles' suffixes."""

    def __init__(self, iam_backend: Callable[[str], Any]) -> None:
        self._iam = iam_backend
        self._lock = threading.RLock()
        #: Seconds a request stays IN_PROGRESS (0: done at the first Describe*Status).
        self.settle_seconds = 0.0
        self._jobs: dict[str, _Job] = {}
        self._tags: dict[str, dict[str, str]] = {}

    def reset(self) -> None:
        with self._lock:
            self.settle_seconds = 0.0
            self._jobs.clear()
            self._tags.clear()

    def tags_of(self, arn: str) -> dict[str, str]:
        """A permission set's (or the instance's) tags, as request authorisation reads them."""
        with self._lock:
            return dict(self._tags.get(arn, {}))

    # -- answering

    def answer(self, request: Request, account_id: str, forward: Callable[[], Response]) -> Response | None:
        """The sandbox's answer to an sso-admin or identitystore call, or None to let moto answer it alone."""
        if request.service == identity_store.SERVICE:
            return identity_store.answer(request, account_id, forward)
        if request.service != SERVICE or not isinstance(request.params, dict):
            return None
        params, action = request.params, request.action or ""
        with self._lock:
            if action in _DESCRIBE:
                return self._describe(request, params)
            if action in ("TagResource", "UntagResource", "ListTagsForResource"):
                return self._tagging(action, params)
            if action in _STATUS_KEYS:
                if self._in_flight() >= MAX_IN_FLIGHT:
                    message = f"Rate exceeded: at most {MAX_IN_FLIGHT} requests may be in progress"
                    return error_response(request, "ThrottlingException", message, 400)
                return self._async(request, account_id, forward)
            if action == "CreatePermissionSet":
                return self._create_permission_set(params, forward)
        return None

    def _in_flight(self) -> int:
        now = time.time()
        return sum(1 for job in self._jobs.values() if now < job.started + self.settle_seconds)

    def _describe(self, request: Request, params: dict) -> Response:
        key, action = _DESCRIBE[request.action or ""]
        job = self._jobs.get(str(params.get(key, "")))
        if job is None or job.action != action:
            return error_response(request, "ResourceNotFoundException", "The request does not exist.", 400)
        return json_response({_STATUS_KEYS[action]: job.status(self.settle_seconds, time.time())})

    def _tagging(self, action: str, params: dict) -> Response:
        tags = self._tags.setdefault(str(params.get("ResourceArn", "")), {})
        if action == "TagResource":
            tags.update({t["Key"]: t.get("Value", "") for t in params.get("Tags") or []})
        elif action == "UntagResource":
            for key in params.get("TagKeys") or []:
                tags.pop(key, None)
        else:
            return json_response({"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})
        return json_response({})

    def _create_permission_set(self, params: dict, forward: Callable[[], Response]) -> Response:
        response = forward()
        if response.status < 400:
            arn = json.loads(response.body)["PermissionSet"]["PermissionSetArn"]
            self._tags[arn] = {t["Key"]: t.get("Value", "") for t in params.get("Tags") or []}
        return response

    def _async(self, request: Request, account_id: str, forward: Callable[[], Response]) -> Response:
        params, action = request.params, request.action or ""
        moto = ssoadmin_backends[account_id][REGION]
        permission_set = _permission_set(moto, str(params.get("PermissionSetArn", "")))
        if permission_set is None:
            return error_response(request, "ResourceNotFoundException", "Could not find PermissionSet.", 400)
        if action == "CreateAccountAssignment":
            failure = _missing_policy(self._iam, permission_set, str(params.get("TargetId", "")))
            if failure is None:  # a failed assignment is never made
                response = forward()
                if response.status >= 400:
                    return response
                self._provision(permission_set, str(params.get("TargetId", "")))
        elif action == "DeleteAccountAssignment":
            response = forward()
            if response.status >= 400:
                return response
            failure = self._retire_if_unassigned(moto, permission_set, str(params.get("TargetId", "")))
        else:
            failure = self._provision_targets(moto, permission_set, params, forward)
        detail = {k: params[k] for k in ("TargetId", "TargetType", "PermissionSetArn", "PrincipalType",
                                         "PrincipalId") if k in params}  # fmt: skip
        if action == "ProvisionPermissionSet":
            detail = {"PermissionSetArn": params.get("PermissionSetArn"), "AccountId": params.get("TargetId")}
        job = _Job(action, {k: v for k, v in detail.items() if v is not None}, time.time(), failure)
        self._jobs[job.request_id] = job
        return json_response({_STATUS_KEYS[action]: job.status(float("inf"), job.started)})

    def _provision_targets(self, moto: Any, permission_set: Any, params: dict, forward: Callable) -> str | None:
        """ProvisionPermissionSet: to one account, or to every account it has a reserved role in."""
        forward()  # moto's own list of provisioned permission sets
        if params.get("TargetType") == "AWS_ACCOUNT":
            targets = [str(params.get("TargetId", ""))]
        else:
            targets = sorted({a.target_id for a in moto.account_assignments
                              if a.permission_set_arn == permission_set.permission_set_arn})  # fmt: skip
        failures = [reason for target in targets if (reason := self._provision(permission_set, target))]
        return failures[0] if failures else None

    # -- the reserved role in a target account

    def _provision(self, permission_set: Any, account_id: str) -> str | None:
        """Create or update the permission set's reserved role in the account; AWS's reason when it cannot."""
        failure = _missing_policy(self._iam, permission_set, account_id)
        if failure is not None:
            return failure
        backend = self._iam(account_id)
        wanted = _customer_managed(permission_set, account_id)
        wanted += [policy.arn for policy in permission_set.managed_policies]
        role = reserved_role(backend, permission_set.name)
        if role is None:
            role = backend.create_role(
                f"{RESERVED_PREFIX}{permission_set.name}_{secrets.token_hex(8)}", _saml_trust(account_id),
                reserved_path(REGION), None, permission_set.description or "", [],
                str(_seconds(permission_set.session_duration)),
            )  # fmt: skip
        role.max_session_duration = _seconds(permission_set.session_duration)
        for arn in set(role.managed_policies) - set(wanted):
            backend.detach_role_policy(arn, role.name)
        for arn in wanted:
            if arn not in role.managed_policies:
                backend.attach_role_policy(arn, role.name)
        if permission_set.inline_policy:
            backend.put_role_policy(role.name, INLINE_POLICY_NAME, permission_set.inline_policy)
        elif INLINE_POLICY_NAME in role.policies:
            backend.delete_role_policy(role.name, INLINE_POLICY_NAME)
        return None

    def _retire_if_unassigned(self, moto: Any, permission_set: Any, account_id: str) -> None:
        """The last assignment of the permission set in the account is gone: so is its reserved role."""
        arn = permission_set.permission_set_arn
        if any(a.permission_set_arn == arn and a.target_id == account_id for a in moto.account_assignments):
            return None
        backend = self._iam(account_id)
        role = reserved_role(backend, permission_set.name)
        if role is not None:
            for policy_arn in list(role.managed_policies):
                backend.detach_role_policy(policy_arn, role.name)
            for name in list(role.policies):
                backend.delete_role_policy(role.name, name)
            backend.delete_role(role.name)
        return None


def reserved_role(backend: Any, permission_set_name: str) -> Any:
    """The account's `AWSReservedSSO_<name>_<suffix>` role for a permission set, or None."""
    pattern = re.compile(re.escape(f"{RESERVED_PREFIX}{permission_set_name}_") + r"[0-9a-f]{16}")
    return next((r for r in backend.roles.values() if is_reserved(r) and pattern.fullmatch(r.name)), None)


def _customer_managed(permission_set: Any, account_id: str) -> list[str]:
    return [f"arn:aws:iam::{account_id}:policy{ref.path}{ref.name}" for ref in permission_set.customer_managed_policies]


def _missing_policy(iam: Callable[[str], Any], permission_set: Any, account_id: str) -> str | None:
    """AWS's failure reason when a referenced customer-managed policy is not in the account."""
    policies = iam(account_id).managed_policies
    missing = [arn for arn in _customer_managed(permission_set, account_id) if arn not in policies]
    return f"Received a 404 status error: Not supported policy {missing[0]}." if missing else None


def _permission_set(moto: Any, arn: str) -> Any:
    return next((p for p in moto.permission_sets if p.permission_set_arn == arn), None)


def _saml_trust(account_id: str) -> str:
    provider = f"arn:aws:iam::{account_id}:saml-provider/AWSSSO_{secrets.token_hex(8)}_DO_NOT_DELETE"
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider},
        "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
        "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
    }]})  # fmt: skip


def sign_in(aws: Any, user_name: str, user_id: str, *, days_ago: float = 0, account_id: str | None = None) -> Any:
    """Seed a finished Identity Center sign-in: `signin.amazonaws.com` `UserAuthentication` in the home region.

    The user is in `additionalEventData` (`UserName`, `userId`), never in `userIdentity.userName`.
    """
    flow = str(uuid.uuid4())
    extra = {"UserName": user_name, "userId": user_id, "CredentialType": "PASSWORD", "AuthWorkflowID": flow}
    return aws.record_event("UserAuthentication", service="signin", params={"additionalEventData": extra},
                            principal="", days_ago=days_ago, account_id=account_id)  # fmt: skip
