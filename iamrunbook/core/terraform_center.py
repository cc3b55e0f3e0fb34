"""The Terraform handoff under `grant_via: identity_center`: the same spec, with no IAM user in it.

The configuration holds each role's Assume<Role>Policy as in the other modes, and, instead of IAM users, what
the mode's plan makes (core/identity_center_plan.py): one identity-store user per spec user, one group per
role holding the users the spec grants it, one permission set per role referencing the role's policy by name
and path, and the group assigned to the permission set in each target account. Addresses are the ones
core/identity_center.py gives the plan, so a team can move to Terraform without recreating anything.

Decisions worth knowing:
- The identity-store attributes (DisplayName, Name, the email) come from identity_center.store_user, written
  into identity_center.auto.tfvars as `store_users`: Terraform's string functions would split descriptions
  with non-breaking or other Unicode spaces differently from the runbook.
- The instance ARN, identity store id, session duration and target accounts are the `identity_center`
  variable, written from the instance as the read found it (or the settings). No accounts: the caller's.
- Imports use the provider's ids (aws-iam-facts.md): `STORE_ID/ID` for users, groups and memberships;
  `PS_ARN,INSTANCE_ARN`; `NAME,PATH,PS_ARN,INSTANCE_ARN`; `PRINCIPAL_ID,GROUP,ACCOUNT,AWS_ACCOUNT,PS_ARN,
  INSTANCE_ARN`. A membership the read found without its MembershipId is not imported (Terraform would then
  try to add it again): the read fills CenterState.membership_ids.
- Temporary grants have no Identity Center form (the mode's plan refuses active ones): none is written.
- The Assume<Role>Policy is managed in the account Terraform runs in; other target accounts need it too
  (the runbook's `--accounts` run gives each its policies).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from iamrunbook.base.log import logger
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, policy_address, policy_description, policy_name
from iamrunbook.core import terraform_hcl as hcl
from iamrunbook.core.identity_center import (
    IdentityCenterSettings,
    group_description,
    ic_address,
    permission_set_name,
    store_user,
)
from iamrunbook.core.identity_center_state import GROUP, POLICY_PATH, Assignment, CenterState
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import Spec
from iamrunbook.core.terraform_hcl import hcl_string

CENTER_MODULE_FILE = "identity_center.tf"
CENTER_TFVARS_FILE = "identity_center.auto.tfvars"
AWS_ACCOUNT = "AWS_ACCOUNT"


def center_settings(spec: Spec) -> IdentityCenterSettings:
    return spec.settings.identity_center or IdentityCenterSettings()


def target_accounts(spec: Spec, inventory: Inventory | None) -> tuple[str, ...]:
    """The accounts each role's group is assigned in: the settings', else the caller's (none when unknown)."""
    accounts = center_settings(spec).accounts
    return tuple(accounts) or ((inventory.account_id,) if inventory is not None else ())


def _granted(spec: Spec, key: str) -> list[str]:
    """The users the spec grants the role for good (temporary grants have no Identity Center form)."""
    return [u.name for u in spec.users.values() if key in u.roles]


# --- addresses and import ids --------------------------------------------------------------------------
def managed_center_addresses(spec: Spec, accounts: Sequence[str]) -> list[str]:
    """Every managed resource the configuration holds for `spec`, with the group assigned in `accounts`."""
    addresses = [policy_address(key) for key in spec.roles] + [ic_address("user", name) for name in spec.users]
    for key in spec.roles:
        addresses += [ic_address("group", key), ic_address("permission_set", key), ic_address("policy_reference", key)]
        addresses += [ic_address("membership", key, user) for user in _granted(spec, key)]
        addresses += [ic_address("assignment", key, account) for account in accounts]
    return addresses


def _role_resources(spec: Spec, center: CenterState, key: str, accounts: Sequence[str]) -> Iterator[tuple]:
    """(address, import id or None) of what exists of the role's group, memberships, permission set, its
    reference and assignments; None: it exists, but the read did not give the id to import it by."""
    store, instance = center.identity_store_id, center.instance_arn
    role = spec.roles[key]
    group_name, ps = spec.settings.group_name(key, role), center.permission_sets.get(permission_set_name(role))
    group_id = (center.groups.get(group_name) or {}).get("GroupId")
    if group_id is not None:
        yield ic_address("group", key), f"{store}/{group_id}"
    for user in _granted(spec, key):
        if (group_name, user) in center.memberships:
            found = center.membership_ids.get((group_name, user))
            yield ic_address("membership", key, user), found and f"{store}/{found}"
    if ps is None or ps.arn is None:
        return
    yield ic_address("permission_set", key), f"{ps.arn},{instance}"
    if (policy_name(role), POLICY_PATH) in ps.customer_managed:
        yield ic_address("policy_reference", key), f"{policy_name(role)},{POLICY_PATH},{ps.arn},{instance}"
    for account in accounts:
        if group_id is not None and Assignment(account, ps.name, GROUP, group_name) in center.assignments:
            id_ = f"{group_id},{GROUP},{account},{AWS_ACCOUNT},{ps.arn},{instance}"
            yield ic_address("assignment", key, account), id_


def existing_resources(spec: Spec, inventory: Inventory | None, center: CenterState | None,
                       accounts: Sequence[str]) -> list[tuple[str, str | None]]:  # fmt: skip
    """(address, import id or None) of every managed resource that exists: policies, users, then per role."""
    found: list[tuple[str, str | None]] = []
    if inventory is not None:
        found += [(policy_address(k), arn) for k, arn in hcl.existing_policy_arns(spec, inventory).items()]
    if center is None:
        return found
    found += [(ic_address("user", name), f"{center.identity_store_id}/{center.users[name]['UserId']}")
              for name in spec.users if name in center.users]  # fmt: skip
    for key in spec.roles:
        found += _role_resources(spec, center, key, accounts)
    return found


def center_import_blocks(spec: Spec, inventory: Inventory | None, center: CenterState | None) -> list[hcl.ImportBlock]:
    """An import for each managed resource that exists, in the provider's import id format."""
    found = existing_resources(spec, inventory, center, target_accounts(spec, inventory))
    missing = [address for address, id_ in found if id_ is None]
    if missing:
        logger.warning("Terraform handoff: no id to import %s by (the read gave no MembershipId)", ", ".join(missing))
    return [hcl.ImportBlock(address, id_) for address, id_ in found if id_ is not None]


def center_addresses(spec: Spec, inventory: Inventory | None, center: CenterState | None) -> list[str]:
    """Sorted addresses of the spec's resources that exist (verify's state_addresses for this mode): what
    `terraform state list` shows of them once the handoff is applied."""
    return sorted(address for address, _ in existing_resources(spec, inventory, center,
                                                                target_accounts(spec, inventory)))  # fmt: skip


def expected_center_state_list(spec: Spec, accounts: Sequence[str]) -> list[str]:
    """What `terraform state list` prints after `terraform apply` of the written configuration."""
    data = [hcl.CALLER_IDENTITY, hcl.PARTITION, *hcl.assume_role_documents(spec)]
    return sorted([*data, *managed_center_addresses(spec, accounts)], key=hcl.state_list_order)


# --- the files -----------------------------------------------------------------------------------------
def _store_user_values(name: str, description: str) -> list[tuple[str, str]]:
    user = store_user(name, description)
    emails = user.get("Emails") or [{}]
    values = {"display_name": user["DisplayName"], "given_name": user["Name"]["GivenName"],
              "family_name": user["Name"]["FamilyName"], "email": emails[0].get("Value")}  # fmt: skip
    return hcl.aligned([(k, hcl_string(v)) for k, v in values.items() if v is not None], quote=False)


def render_center_tfvars(spec: Spec, inventory: Inventory | None, center: CenterState | None) -> str:
    """identity_center.auto.tfvars: the instance, session and accounts, and each user's store attributes."""
    settings = center_settings(spec)
    instance = center.instance_arn if center is not None else settings.instance_arn
    store = center.identity_store_id if center is not None else settings.identity_store_id
    accounts = "[" + ", ".join(hcl_string(a) for a in target_accounts(spec, inventory)) + "]"
    instance_values = [("instance_arn", hcl_string(instance or "")), ("identity_store_id", hcl_string(store or "")),
                       ("session_duration", hcl_string(settings.session_duration)), ("accounts", accounts)]  # fmt: skip
    users = [(hcl_string(u.name), _store_user_values(u.name, u.description)) for u in spec.users.values()]
    instance_values = hcl.aligned(instance_values, quote=False)
    return hcl.render_template("identity_center.auto.tfvars.j2", instance=instance_values, users=users)


def render_center_module(spec: Spec) -> str:
    """identity_center.tf: the policies, and the users, groups, permission sets and assignments the plan makes."""
    groups, sets = [], []
    for key, role in spec.roles.items():
        group, ps = spec.settings.group_name(key, role), permission_set_name(role)
        groups.append((key, {"name": hcl_string(group), "description": hcl_string(group_description(role))}))
        sets.append((key, {"name": hcl_string(ps), "description": hcl_string(policy_description(role))}))
    return hcl.render_template(
        "identity_center.tf.j2",
        **hcl.policy_values(spec.roles, spec.settings),
        role_groups=hcl.aligned(groups),
        permission_sets=hcl.aligned(sets),
        policy_path=hcl_string(POLICY_PATH),
        ps_tags=[(MANAGED_BY_KEY, hcl_string(MANAGED_BY_VALUE))],
        group_type=hcl_string(GROUP),
        target_type=hcl_string(AWS_ACCOUNT),
    )


def write_center_terraform(out_dir: str | Path, spec: Spec, inventory: Inventory | None, center: CenterState | None,
                           *, tfvars: str, variables: str) -> dict[str, Path]:  # fmt: skip
    """Write the handoff (`tfvars` and `variables` as terraform.py writes them for the spec) into out_dir."""
    blocks = center_import_blocks(spec, inventory, center)
    files = {
        hcl.TFVARS_FILE: tfvars,
        CENTER_TFVARS_FILE: render_center_tfvars(spec, inventory, center),
        hcl.IMPORTS_FILE: hcl.render_imports(blocks),
        hcl.VERSIONS_FILE: hcl.render_versions(),
        hcl.VARIABLES_FILE: variables + "\n" + hcl.render_template("identity_center_variables.tf.j2"),
        CENTER_MODULE_FILE: render_center_module(spec),
        hcl.OUTPUTS_FILE: hcl.render_template("identity_center_outputs.tf.j2", member=False),
        hcl.STATE_LIST_FILE: "\n".join(expected_center_state_list(spec, target_accounts(spec, inventory))) + "\n",
    }
    written = hcl.write_files(out_dir, files)
    logger.info("Terraform handoff (Identity Center) written to %s (%d import blocks)", out_dir, len(blocks))
    return written


def write_member_terraform(out_dir: str | Path, spec: Spec, inventory: Inventory | None, *, tfvars: str,
                           variables: str) -> dict[str, Path]:  # fmt: skip
    """A member account's handoff: its Assume<Role>Policy policies and their imports, nothing else."""
    found = existing_resources(spec, inventory, None, ())
    blocks = [hcl.ImportBlock(address, id_) for address, id_ in found if id_ is not None]
    policies = [policy_address(key) for key in spec.roles]
    state = sorted([hcl.CALLER_IDENTITY, hcl.PARTITION, *hcl.assume_role_documents(spec), *policies],
                   key=hcl.state_list_order)  # fmt: skip
    files = {
        hcl.TFVARS_FILE: tfvars,
        hcl.IMPORTS_FILE: hcl.render_imports(blocks),
        hcl.VERSIONS_FILE: hcl.render_versions(),
        hcl.VARIABLES_FILE: variables,
        CENTER_MODULE_FILE: hcl.render_template("identity_center_member.tf.j2",
                                                **hcl.policy_values(spec.roles, spec.settings)),  # fmt: skip
        hcl.OUTPUTS_FILE: hcl.render_template("identity_center_outputs.tf.j2", member=True),
        hcl.STATE_LIST_FILE: "\n".join(state) + "\n",
    }
    written = hcl.write_files(out_dir, files)
    logger.info("Terraform handoff (Identity Center member account) written to %s (%d import blocks)", out_dir,
                len(blocks))  # fmt: skip
    return written
