"""Request authorisation by resource and condition, for the credentials a test switches it on for.

moto's own request authorisation checks actions only (Resource and Condition are a TODO in its source) and
only `StringEquals`. Here a request made with an enforced access key is allowed only if the caller's identity
policies (its own, its groups') allow the action on the request's resource with the request's condition keys,
as AWS's Service Authorization Reference defines them for the IAM and S3 calls the runbook makes:
`iam:PolicyARN` on Attach/Detach*Policy, `aws:ResourceTag/<k>` and `iam:ResourceTag/<k>` of the user or
role acted on, `aws:RequestTag/<k>` and `aws:TagKeys` of CreateUser/TagUser/CreatePolicy, `s3:prefix` of a
listing, and the policy variable `${aws:username}`; Identity Center requests on each resource they name
(authorize_center.py). Any other key is absent (a condition on it fails).
Out of scope: SCPs, permissions boundaries, session policies, resource policies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iamrunbook.base.names import partition_of
from iamrunbook.sandbox.assume import identity_documents
from iamrunbook.sandbox.authorize_center import SERVICES as CENTER_SERVICES
from iamrunbook.sandbox.authorize_center import center_resources
from iamrunbook.sandbox.identity import Caller
from iamrunbook.sandbox.policy import verdict

Refusal = tuple[str, str, int]
#: access key ids whose requests are authorised by their policies (`enforce`); every other key is as before
_ENFORCED: set[str] = set()

_ATTACH = {f"{verb}{kind}Policy" for verb in ("Attach", "Detach") for kind in ("User", "Group", "Role")}
#: S3 operation -> the IAM action that allows it (S3's action names are not all its API names)
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "HeadBucket": "s3:ListBucket",
}
_S3_BUCKET_OPERATIONS = {"ListObjectsV2", "ListObjects", "GetObjectLockConfiguration", "HeadBucket", "CreateBucket"}


def enforce(access_key_id: str) -> None:
    """From now on, requests signed with this key are authorised by its principal's policies."""
    _ENFORCED.add(access_key_id)


def release(access_key_id: str) -> None:
    _ENFORCED.discard(access_key_id)


def _tags(params: dict) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in params.get("Tags") or [] if isinstance(t, dict)}


def _iam_entity(backend: Any, caller: Caller, action: str, params: dict) -> tuple[str, Any]:
    """(kind, name) of what an IAM call acts on: policy, mfa, group, role, user, or ("*", None)."""
    if action == "CreatePolicy":
        return "new-policy", params.get("PolicyName")
    if params.get("PolicyArn") and action not in _ATTACH:
        return "policy", params["PolicyArn"]
    if action == "DeleteVirtualMFADevice":
        return "mfa", params.get("SerialNumber")
    for kind in ("Group", "Role", "User"):
        if params.get(f"{kind}Name"):
            return kind.lower(), params[f"{kind}Name"]
    if params.get("AccessKeyId"):  # GetAccessKeyLastUsed: the key's owner
        owner = next((u.name for u in backend.users.values() if any(
            k.access_key_id == params["AccessKeyId"] for k in u.access_keys)), None)  # fmt: skip
        return ("user", owner) if owner else ("*", None)
    return ("user", caller.user_name) if caller.user_name else ("*", None)  # IAM: no UserName is the caller


def _iam_request(backend: Any, caller: Caller, action: str, params: dict) -> tuple[str, dict[str, Any]]:
    """The resource ARN an IAM call is authorised on, and its condition keys beyond the caller's."""
    kind, name = _iam_entity(backend, caller, action, params)
    partition, account = partition_of(caller.arn), caller.account_id
    context: dict[str, Any] = {}
    if action in _ATTACH:
        context["iam:policyarn"] = params.get("PolicyArn")
    if action in ("CreateUser", "TagUser", "CreatePolicy", "CreateRole"):
        tags = _tags(params)
        context["aws:tagkeys"] = sorted(tags)
        context.update({f"aws:requesttag/{k.lower()}": v for k, v in tags.items()})
    if action.startswith("Untag"):
        context["aws:tagkeys"] = list(params.get("TagKeys") or [])
    if kind in ("policy", "mfa") or kind == "*":
        return str(name) if kind != "*" else "*", context
    if kind == "new-policy":
        return f"arn:{partition}:iam::{account}:policy{params.get('Path') or '/'}{name}", context
    found = {"user": backend.users.get(name), "group": backend.groups.get(name),
             "role": next((r for r in backend.roles.values() if r.name == name), None)}[kind]  # fmt: skip
    arn = found.arn if found is not None else f"arn:{partition}:iam::{account}:{kind}{params.get('Path') or '/'}{name}"
    for key, value in _resource_tags(backend, kind, found).items():
        context[f"aws:resourcetag/{key.lower()}"] = context[f"iam:resourcetag/{key.lower()}"] = value
    return arn, context


def _resource_tags(backend: Any, kind: str, entity: Any) -> dict[str, str]:
    """The tags of an existing user (moto keeps them in its tagger) or role (on the role)."""
    if entity is None:
        return {}
    if kind == "user":
        return dict(backend.tagger.get_tag_dict_for_resource(entity.arn))
    if kind == "role":
        return {str(t.get("Key", k)): str(t.get("Value", "")) for k, t in (getattr(entity, "tags", None) or {}).items()}
    return {}


def _s3_request(caller: Caller, operation: str, params: dict) -> tuple[list[str], str, dict[str, Any]]:
    """(actions, resource, condition keys) of an S3 call: objects by bucket/key, listings by bucket + prefix."""
    partition = partition_of(caller.arn)
    bucket, key = params.get("Bucket", ""), params.get("Key", "")
    on_bucket = operation in _S3_BUCKET_OPERATIONS or not key
    resource = f"arn:{partition}:s3:::{bucket}" if on_bucket else f"arn:{partition}:s3:::{bucket}/{key}"
    actions = [S3_ACTIONS.get(operation, f"s3:{operation}")]
    if operation == "PutObject" and (params.get("ObjectLockMode") or params.get("ObjectLockRetainUntilDate")):
        actions.append("s3:PutObjectRetention")
    context = {"s3:prefix": params.get("Prefix", "")} if actions[0] == "s3:ListBucket" else {}
    return actions, resource, context


def request_of(backend: Any, caller: Caller, service: str, action: str, params: dict) -> tuple[list[str], str, dict]:
    """(IAM actions, resource ARN, full condition context) of one request, as AWS authorises it."""
    context: dict[str, Any] = {
        "aws:principalarn": caller.role_arn or caller.arn,
        "aws:principalaccount": caller.account_id,
    }
    if caller.user_name:
        context["aws:username"] = caller.user_name
    if service == "iam":
        resource, extra = _iam_request(backend, caller, action, params)
        # tagging on create needs the create action and the tag action (iam:CreateUser with iam:TagUser, ...)
        tag_action = _TAG_ON_CREATE.get(action) if params.get("Tags") else None
        actions = [f"iam:{action}", *([tag_action] if tag_action else [])]
    elif service == "s3":
        actions, resource, extra = _s3_request(caller, action, params)
    else:
        actions, resource, extra = [f"{service}:{action}"], "*", {}
    return actions, resource, {**context, **extra}


#: the tag action AWS also checks when a create request carries tags
_TAG_ON_CREATE = {"CreateUser": "iam:TagUser", "CreatePolicy": "iam:TagPolicy", "CreateRole": "iam:TagRole"}


def authorization_refusal(caller: Caller, service: str, action: str | None, params: Any,
                          iam_backend: Callable[[str], Any],
                          center_tags: Callable[[str], dict] | None = None) -> Refusal | None:  # fmt: skip
    """AccessDenied unless the enforced caller's policies allow the request (None: not enforced, or allowed).
    sts:AssumeRole is left to the trust-policy check (assume.py), which also reads the caller's policies.
    An Identity Center request is allowed only on every resource it names (authorize_center.py), with
    `center_tags` giving a permission set's tags."""
    if caller.access_key_id not in _ENFORCED or not action or (service, action) == ("sts", "AssumeRole"):
        return None
    backend = iam_backend(caller.account_id)
    documents = identity_documents(caller, backend) or []
    params = params if isinstance(params, dict) else {}
    actions, resource, context = request_of(backend, caller, service, action, params)
    checks = [(resource, context)]
    if service in CENTER_SERVICES:
        found = center_resources(partition_of(caller.arn), caller.account_id, service, action, params, center_tags)
        checks = [(arn, {**context, **keys}) for arn, keys in found]
    for needed in actions:
        for arn, keys in checks:
            if verdict(documents, needed, arn, keys) != "Allow":
                message = f"User: {caller.arn} is not authorized to perform: {needed} on resource: {arn}"
                return "AccessDenied", message, 403
    return None
