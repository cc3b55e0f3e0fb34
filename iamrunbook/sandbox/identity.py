"""Who is calling, and in which account: the request's access key, looked up in moto's state.

moto keys its state by account. A request signed with an access key moto issued (an IAM user's own key,
or temporary credentials from `sts:AssumeRole`) acts in the account that key belongs to; any other key
acts in the account named by the `x-moto-account-id` header, else in the default account. The sandbox
uses the same mapping so that its strict rules, its call log and CloudTrail see the account moto changes.

Unlike moto, a key the account issued and then made inactive or deleted is refused, as AWS refuses it.
A key the sandbox never issued (its fake key, or any a test makes up) stays the account's administrator,
as in moto: the sandbox cannot tell a made-up key from a real one it never saw.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from iamrunbook.sandbox.calls import ACCOUNT_ID

ACCOUNT_HEADER = "x-moto-account-id"  # moto's own header: act in this account
#: The caller moto reports for credentials it did not issue (GetCallerIdentity).
ADMIN_NAME = "moto"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Caller:
    """The principal behind a request: the account's administrator (fake key), an IAM user or a role session."""

    account_id: str
    arn: str
    kind: str  # "admin" | "user" | "role"
    access_key_id: str = ""
    user_name: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    valid: bool = True  # False: AWS would refuse these credentials outright

    @property
    def name(self) -> str:
        """CloudTrail's `Username`: the IAM user, the role session's name, or moto's default user."""
        return self.user_name or self.session_name or ADMIN_NAME


def access_key_of(environ: dict) -> str:
    """The access key id from the SigV4 Authorization header or a presigned URL's X-Amz-Credential."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = re.search(r"(?:^|&)X-Amz-Credential=([^%&/]+)", environ.get("QUERY_STRING", ""))
    return query.group(1) if query else ""


def _owner(access_key_id: str):
    """(account id, moto AccessKey) of a key moto issued, or (None, None)."""
    for account_id, account in list(iam_backends.items()):
        key = account["aws"].access_keys.get(access_key_id)
        if key is not None:
            return account_id, key
    return None, None


def _role_session(account_id: str, key) -> Caller:
    session = sts_backends[account_id]["aws"].get_assumed_role_from_access_key(key.access_key_id)
    session_name = session.session_name if session is not None else "session"
    role_name = (key.role_arn or "").rsplit("/", 1)[-1]
    return Caller(
        account_id,
        f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}",
        "role",
        key.access_key_id,
        role_arn=key.role_arn,
        session_name=session_name,
    )


def identify(environ: dict, revoked: Collection[str] = ()) -> Caller:
    """The caller of one request, and the account it acts on. `revoked`: deleted key ids (refused)."""
    key_id = access_key_of(environ)
    account_id, key = _owner(key_id) if key_id else (None, None)
    if key is not None and key.role_arn:
        return _role_session(account_id, key)
    if key is not None and key.user_name:
        user = iam_backends[account_id]["aws"].users.get(key.user_name)
        arn = user.arn if user is not None else f"arn:aws:iam::{account_id}:user/{key.user_name}"
        return Caller(account_id, arn, "user", key_id, user_name=key.user_name, valid=key.status == "Active")
    account_id = environ.get("HTTP_" + ACCOUNT_HEADER.upper().replace("-", "_")) or ACCOUNT_ID
    arn = f"arn:aws:sts::{account_id}:user/{ADMIN_NAME}"
    return Caller(account_id, arn, "admin", key_id, valid=key_id not in revoked)


def invalid_credentials(protocol: str, service: str) -> tuple[str, str, int]:
    """The error AWS answers for an unknown, deleted or inactive access key, per protocol."""
    if service == "s3":
        return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403
    if protocol == "json":
        return "UnrecognizedClientException", "The security token included in the request is invalid.", 400
    return "InvalidClientTokenId", "The security token included in the request is invalid.", 403
