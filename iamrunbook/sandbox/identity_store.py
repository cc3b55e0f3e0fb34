"""The identity store as AWS runs it, where moto 5.2.5 does not (aws-iam-facts.md, third round).

- moto keeps a second membership of the same user in the same group; AWS refuses it (ConflictException).
- moto leaves a deleted user's memberships behind; AWS removes them with the user.
- moto fails (HTTP 500) in GetUserId on `emails.value` when any user has no email; AWS answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.identitystore.models import identitystore_backends

from iamrunbook.sandbox.calls import REGION
from iamrunbook.sandbox.wire import Request, Response, error_response, json_response

SERVICE = "identitystore"


def _store(account_id: str, store_id: Any) -> Any:
    return identitystore_backends[account_id][REGION].identity_stores.get(str(store_id or ""))


def _membership_exists(store: Any, params: dict) -> bool:
    user_id = (params.get("MemberId") or {}).get("UserId")
    return any(m["GroupId"] == params.get("GroupId") and m["MemberId"].get("UserId") == user_id
               for m in store.group_memberships.values())  # fmt: skip


def _user_by_email(request: Request, store: Any, email: str) -> Response:
    for user in store.users.values():
        if any(item.get("Value") == email for item in user.Emails or ()):
            return json_response({"UserId": user.UserId, "IdentityStoreId": request.params["IdentityStoreId"]})
    return error_response(request, "ResourceNotFoundException", "USER not found.", 400)


def answer(request: Request, account_id: str, forward: Callable[[], Response]) -> Response | None:
    """The sandbox's answer to an identitystore call, or None to let moto answer it alone."""
    params = request.params if isinstance(request.params, dict) else {}
    store = _store(account_id, params.get("IdentityStoreId"))
    if request.service != SERVICE or store is None:
        return None
    if request.action == "CreateGroupMembership" and _membership_exists(store, params):
        return error_response(request, "ConflictException", "Member already exists in the group", 400)
    if request.action == "GetUserId":
        unique = (params.get("AlternateIdentifier") or {}).get("UniqueAttribute") or {}
        if str(unique.get("AttributePath", "")).lower() == "emails.value" and unique.get("AttributeValue"):
            return _user_by_email(request, store, str(unique["AttributeValue"]))
    if request.action == "DeleteUser":
        response = forward()
        if response.status < 400:
            gone = [
                key for key, m in store.group_memberships.items() if m["MemberId"].get("UserId") == params.get("UserId")
            ]
            for key in gone:
                del store.group_memberships[key]
        return response
    return None
