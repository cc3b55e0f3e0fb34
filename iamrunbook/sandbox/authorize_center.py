"""The resources an Identity Center request is authorised on, as AWS's Service Authorization Reference lists them.

sso-admin requests name an `Instance`, a `PermissionSet` (tagged: `aws:ResourceTag`) and an `Account`; an
identitystore request names its `Identitystore` and the `User`, `Group` or `GroupMembership` it acts on. AWS
allows the request only if the caller may act on every one, so each is one (resource, condition keys) pair
here. moto writes a permission set's ARN as `…:instance/ssoins-…/ps-…`; AWS authorises
`…:permissionSet/ssoins-…/ps-…`, the form a policy names. An id the request does not carry (a lookup, a
listing, a permission set not made yet) is `*`. Not modelled: the group and user behind a membership
deleted by its id, `kms:Decrypt` for an instance with a customer-managed key, `sso:PrimaryRegion`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SERVICES = ("sso", "identitystore")
Resources = list[tuple[str, dict[str, Any]]]


def _tag_context(params: dict) -> dict[str, Any]:
    if params.get("Tags"):
        tags = {str(t.get("Key")): str(t.get("Value", "")) for t in params["Tags"] if isinstance(t, dict)}
        return {"aws:tagkeys": sorted(tags), **{f"aws:requesttag/{k.lower()}": v for k, v in tags.items()}}
    if params.get("TagKeys"):
        return {"aws:tagkeys": list(params["TagKeys"])}
    return {}


def permission_set_arn(moto_arn: str) -> str:
    """AWS's form of a permission set's ARN (moto's `…:instance/ID/ps-…` -> `…:permissionSet/ID/ps-…`)."""
    head, _, path = moto_arn.partition(":::instance/")
    return f"{head}:::permissionSet/{path}" if path.count("/") == 1 else moto_arn


def _sso(partition: str, action: str, params: dict, tags_of: Callable[[str], dict]) -> Resources:
    instance = str(params.get("InstanceArn") or "")
    if not instance:  # ListInstances
        return [("*", {})]
    out: Resources = [(instance, {})]
    moto_ps = str(params.get("PermissionSetArn") or params.get("ResourceArn") or "")
    if moto_ps and moto_ps != instance:
        tags = {f"aws:resourcetag/{k.lower()}": v for k, v in tags_of(moto_ps).items()}
        out.append((permission_set_arn(moto_ps), tags))
    elif action == "CreatePermissionSet":
        out.append((f"arn:{partition}:sso:::permissionSet/{instance.rsplit('/', 1)[-1]}/*", {}))
    account = params.get("TargetId") or params.get("AccountId")
    if account:
        out.append((f"arn:{partition}:sso:::account/{account}", {}))
    return out


#: identitystore operation -> the entity kinds it names beyond the store ("*": the request carries no id)
_STORE_KINDS = {
    "GetUserId": ("user",), "ListUsers": ("user",), "DescribeUser": ("user",), "CreateUser": (),
    "GetGroupId": ("group",), "ListGroups": ("group",), "DescribeGroup": ("group",), "CreateGroup": (),
    "ListGroupMemberships": ("group", "membership"), "CreateGroupMembership": ("group", "user"),
    "DeleteGroupMembership": ("membership",), "GetGroupMembershipId": ("group", "user", "membership"),
}  # fmt: skip
_ID_KEYS = {"user": "UserId", "group": "GroupId", "membership": "MembershipId"}


def _identitystore(partition: str, account: str, action: str, params: dict) -> Resources:
    store = f"arn:{partition}:identitystore::{account}:identitystore/{params.get('IdentityStoreId') or '*'}"
    member = params.get("MemberId") if isinstance(params.get("MemberId"), dict) else {}
    out: Resources = [(store, {})]
    for kind in _STORE_KINDS.get(action, ()):
        entity = params.get(_ID_KEYS[kind]) or (member.get("UserId") if kind == "user" else None) or "*"
        out.append((f"arn:{partition}:identitystore:::{kind}/{entity}", {}))
    return out


def _no_tags(arn: str) -> dict:
    return {}


def center_resources(partition: str, account: str, service: str, action: str, params: dict,
                     tags_of: Callable[[str], dict] | None = None) -> Resources:  # fmt: skip
    """(resource ARN, condition keys) of each resource an sso-admin or identitystore request names."""
    if service == "sso":
        request = _tag_context(params) if action in ("CreatePermissionSet", "TagResource", "UntagResource") else {}
        return [(arn, {**request, **keys}) for arn, keys in _sso(partition, action, params, tags_of or _no_tags)]
    return _identitystore(partition, account, action, params)
