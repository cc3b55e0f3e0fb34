"""`grant_via: identity_center`: its settings, their validation, and the names and attributes the mode derives.

A spec user becomes an identity-store user (UserName = the spec name, looked up with GetUserId on userName);
each role becomes an identity-store group (`<RoleName>Users` or `role_groups`) and a permission set
`Assume<RoleName>` (at most 32 characters) referencing the customer-managed `Assume<RoleName>Policy` by name
and path, assigned group -> permission set -> each target account. The facts these rules follow are in
aws-iam-facts.md (third round, IAM Identity Center).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODE = "identity_center"
#: The keys of the `identity_center` parameter.
SETTINGS_KEYS = ("instance_arn", "identity_store_id", "home_region", "session_duration")
DEFAULT_SESSION = "PT1H"
MAX_PERMISSION_SET_NAME = 32
#: sso-admin's model: InstanceArn, PermissionSetName; identitystore's IdentityStoreId.
_INSTANCE_ARN = re.compile(r"arn:(aws|aws-us-gov|aws-cn|aws-iso|aws-iso-b):sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}")
_STORE_ID = re.compile(r"d-[0-9a-f]{10}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PERMISSION_SET_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_DURATION = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?")
_ACCOUNT = re.compile(r"\d{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class IdentityCenterSettings:
    """Where the mode's Identity Center part runs. None for the instance and store: ListInstances finds them;
    no home region: the `aws_region` parameter; no accounts: the caller's account."""

    instance_arn: str | None = None
    identity_store_id: str | None = None
    home_region: str | None = None
    session_duration: str = DEFAULT_SESSION
    accounts: tuple[str, ...] = ()


def permission_set_name(role_name: str) -> str:
    """The role's permission set: `AssumeInfrastructureAdminRole` for InfrastructureAdminRole."""
    return f"Assume{role_name}"


def session_seconds(duration: str) -> int | None:
    """ISO 8601 `PT<h>H<m>M` in seconds, or None when it is not one."""
    match = _DURATION.fullmatch(duration) if isinstance(duration, str) else None
    if not match or not any(match.groups()):
        return None
    return int(match.group(1) or 0) * 3600 + int(match.group(2) or 0) * 60


def store_user(name: str, description: str) -> dict[str, Any]:
    """The identity-store user for a spec user, as CreateUser takes it.

    DisplayName is the person part of the description (before ` - `), else the name; Name splits it into
    the first word and the rest (one word: both parts, as Terraform's resource needs both). The email is
    the user name when it is one.
    """
    person = description.split(" - ", 1)[0].strip() or name
    words = person.split()
    given, family = words[0], " ".join(words[1:]) or words[0]
    user: dict[str, Any] = {
        "UserName": name,
        "DisplayName": person,
        "Name": {"Formatted": person, "GivenName": given, "FamilyName": family},
    }
    if _EMAIL.fullmatch(name):
        user["Emails"] = [{"Value": name, "Type": "work", "Primary": True}]
    return user


def group_description(role_name: str) -> str:
    """The Description of the role's identity-store group, as the runbook and its Terraform handoff write it."""
    return f"Users who may assume {role_name} (iamrunbook)"


def _settings_mapping_problems(raw: Mapping[str, Any]) -> list[str]:
    problems = [f"identity_center: unknown key {key!r}; allowed: {', '.join(SETTINGS_KEYS)}"
                for key in raw if key not in SETTINGS_KEYS]  # fmt: skip
    arn, store = raw.get("instance_arn"), raw.get("identity_store_id")
    if arn is not None and not (isinstance(arn, str) and _INSTANCE_ARN.fullmatch(arn)):
        problems.append(f"identity_center.instance_arn: {arn!r} is not an instance ARN "
                        "(arn:aws:sso:::instance/ssoins-<16 characters>)")  # fmt: skip
    if store is not None and not (isinstance(store, str) and _STORE_ID.fullmatch(store)):
        problems.append(f"identity_center.identity_store_id: {store!r} is not an identity store id (d-<10 hex>)")
    if (arn is None) != (store is None):
        problems.append("identity_center: give instance_arn and identity_store_id together, or neither "
                        "(ListInstances finds them)")  # fmt: skip
    region = raw.get("home_region")
    if region is not None and not (isinstance(region, str) and _REGION.fullmatch(region)):
        problems.append(f"identity_center.home_region: {region!r} is not a region (e.g. us-east-1)")
    duration = raw.get("session_duration", DEFAULT_SESSION)
    seconds = session_seconds(duration)
    if seconds is None or not 3600 <= seconds <= 12 * 3600:
        problems.append(f"identity_center.session_duration: {duration!r} is not allowed; allowed: ISO 8601 "
                        "from PT1H to PT12H (e.g. PT8H, PT1H30M)")  # fmt: skip
    return problems


def _accounts_problems(raw: list) -> list[str]:
    problems = [f"identity_center_accounts: {a!r} is not a 12-digit account id (write it as a string)"
                for a in raw if not (isinstance(a, str) and _ACCOUNT.fullmatch(a))]  # fmt: skip
    repeated = sorted({a for a in raw if isinstance(a, str) and raw.count(a) > 1})
    if repeated:
        problems.append(f"identity_center_accounts: listed twice: {', '.join(repeated)}")
    return problems


def _roles_problems(roles: Mapping[str, str]) -> list[str]:
    problems = []
    for key, role in roles.items():
        name = permission_set_name(str(role))
        if len(name) > MAX_PERMISSION_SET_NAME or not _PERMISSION_SET_NAME.fullmatch(name):
            problems.append(f"roles.{key}: permission set {name!r} is {len(name)} characters; Identity Center allows "
                            f"1-{MAX_PERMISSION_SET_NAME} of [\\w+=,.@-] (role names up to "
                            f"{MAX_PERMISSION_SET_NAME - len('Assume')} characters)")  # fmt: skip
    return problems


def identity_center_problems(params: Mapping[str, Any], roles: Mapping[str, str]) -> list[str]:
    """Every problem with `identity_center`, `identity_center_accounts` and the roles' permission set names."""
    raw, accounts = params.get("identity_center"), params.get("identity_center_accounts")
    if params.get("grant_via", "user") != MODE:
        given = [name for name, value in (("identity_center", raw), ("identity_center_accounts", accounts))
                 if value not in (None, {}, [])]  # fmt: skip
        return [f"{name}: only with grant_via: {MODE}" for name in given]
    problems = []
    if isinstance(raw, Mapping):
        problems += _settings_mapping_problems(raw)
    elif raw is not None:
        problems.append(f"identity_center: expected a mapping with {', '.join(SETTINGS_KEYS)}, got {raw!r}")
    if isinstance(accounts, list):
        problems += _accounts_problems(accounts)
    elif accounts is not None:
        problems.append(f"identity_center_accounts: expected a list of 12-digit account ids, got {accounts!r}")
    return problems + _roles_problems(roles)


def identity_center_settings(params: Mapping[str, Any]) -> IdentityCenterSettings | None:
    """The settings of a valid parameter set (see `identity_center_problems`); None outside the mode."""
    if params.get("grant_via", "user") != MODE:
        return None
    raw = dict(params.get("identity_center") or {})
    return IdentityCenterSettings(
        instance_arn=raw.get("instance_arn"),
        identity_store_id=raw.get("identity_store_id"),
        home_region=raw.get("home_region") or params.get("aws_region"),
        session_duration=raw.get("session_duration", DEFAULT_SESSION),
        accounts=tuple(params.get("identity_center_accounts") or ()),
    )


# --- Terraform addresses: the plan's changes and the Terraform handoff name each resource the same way ---------
#: what -> the Terraform resource holding the runbook's own one; its key is `ic_address`'s parts joined by "/"
RESOURCES = {
    "user": "aws_identitystore_user.this",  # key: UserName
    "group": "aws_identitystore_group.role",  # key: role key
    "membership": "aws_identitystore_group_membership.this",  # key: role key/UserName
    "permission_set": "aws_ssoadmin_permission_set.role",  # key: role key
    "policy_reference": "aws_ssoadmin_customer_managed_policy_attachment.role",  # key: role key
    "assignment": "aws_ssoadmin_account_assignment.role",  # key: role key/account id
}
#: drift on the runbook's permission sets (to be removed): another reference, another principal assigned
OTHER = {"policy_reference": "aws_ssoadmin_customer_managed_policy_attachment.other",
         "assignment": "aws_ssoadmin_account_assignment.other"}  # fmt: skip


def ic_address(what: str, *key: str, other: bool = False) -> str:
    """`aws_identitystore_user.this["alice@example.com"]`, `aws_identitystore_group_membership.this["admin/alice"]`,
    `aws_ssoadmin_account_assignment.role["admin/123456789012"]`, ... (see RESOURCES); `other`: the drift form,
    `aws_ssoadmin_account_assignment.other["admin/123456789012/USER/bob"]`."""
    resource = (OTHER if other else RESOURCES)[what]
    return f'{resource}["{"/".join(key)}"]'


def ic_provision_address(role_key: str, account: str, after_detach: bool = False) -> str:
    """ProvisionPermissionSet has no resource of its own (the provider provisions after each change): the
    permission set's address with the account, `aws_ssoadmin_permission_set.role["admin"].provision[
    "123456789012"]` (`.reprovision[...]` for the one after references are detached)."""
    what = "reprovision" if after_detach else "provision"
    return f'{ic_address("permission_set", role_key)}.{what}["{account}"]'
