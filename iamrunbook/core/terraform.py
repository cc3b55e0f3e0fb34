"""Terraform handoff: the spec as tfvars, the module that manages it, and import blocks for what exists.

The runbook and this configuration manage the same resources under the same names (names.py), so a team
can move an account to Terraform without recreating anything: `terraform plan` in the written folder
shows imports and no creates once the runbook has applied.

Decisions worth knowing:
- `expected_state_list.txt` is what `terraform state list` prints after `terraform apply`: the data sources
  first (caller identity, partition: every ARN written is in the caller's, the policy documents), as Terraform
  sorts them, then every resource the spec needs, which equals verify's addresses once the account converged.
- Import ids use the account's real names and ARNs; an address always uses the spec's spelling. IAM user
  names are case-insensitive, so `Alice` in the spec imports the existing `alice` (Terraform then renames).
- `grant_via: group`: one IAM group per role holds the role's Assume*Policy and users are its members,
  one `aws_iam_user_group_membership` per user (import id `<user>/<group>/...`, the address names.py gives
  verify and the planner). That resource is not exclusive: other members are the runbook's to remove.
- `require_mfa`: the document's conditions are names.mfa_condition, as the runbook writes: no change on import.
- Adoption counts a role as granted when a user can assume it unconditionally by any path. A conditional
  path (MFA, source IP, ...) is not turned into a plain grant, which would widen access: it is written as
  a comment next to the user, and so is every grant that comes by a path other than the runbook's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.base.log import logger
from iamrunbook.base.names import (
    DEFAULT_ROLES,
    ROLES_TAG_SEPARATOR,
    attachment_address,
    find_named,
    group_address,
    group_attachment_address,
    membership_address,
    policy_address,
    user_address,
    user_tags,
)
from iamrunbook.core import terraform_temporary as tt
from iamrunbook.core.identity_center import MODE
from iamrunbook.core.identity_center_state import CenterState
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import (
    MAX_DESCRIPTION,
    GrantSettings,
    Spec,
    UserSpec,
    load_hcl,
    load_yaml,
    tag_value_problem,
    validate_users,
)
from iamrunbook.core.temporary import until_text
from iamrunbook.core.terraform_center import write_center_terraform, write_member_terraform
from iamrunbook.core.terraform_hcl import (
    CALLER_IDENTITY,
    IMPORTS_FILE,
    OUTPUTS_FILE,
    PARTITION,
    STATE_LIST_FILE,
    TFVARS_FILE,
    VARIABLES_FILE,
    VERSIONS_FILE,
    ImportBlock,
    aligned,
    comment,
    existing_policy_arns,
    hcl_string,
    policy_values,
    render_imports,
    render_template,
    render_versions,
    state_list_order,
    unescape_templates,
    write_files,
)

READ_ACTIONS: tuple[str, ...] = ()  # pure: works on an Inventory already read
WRITE_ACTIONS: tuple[str, ...] = ()

MODULE_FILE = "iam_users.tf"
ADOPTED_YAML = "adopted_iam_users.yaml"
ADOPTED_TFVARS = "adopted_iam_users.auto.tfvars"

# The rules spec.py enforces, for Terraform's validation blocks (RE2 syntax; \p classes as in AWS's model).
_USER_NAME_RE = r"^[A-Za-z0-9_+=.@-]{1,64}$"
_TAG_VALUE_RE = r"^[\p{L}\p{Z}\p{N}_.:/=+@-]*$"


# --- tfvars ----------------------------------------------------------------------------------------
def _entry(value: Any) -> tuple[str, list[str], list[dict]]:
    if isinstance(value, UserSpec):
        return value.description, list(value.roles), [t.as_dict() for t in value.temporary]
    return (value.get("description") or ""), list(value.get("roles") or []), list(value.get("temporary") or [])


def _tfvars_entry(name: str, value: Any, notes: Iterable[str]) -> dict[str, Any]:
    description, roles, temporary = _entry(value)
    return {
        "name": hcl_string(name),
        "description": hcl_string(description),
        "roles": [hcl_string(r) for r in roles],
        "temporary": [{k: hcl_string(str(v) if k != "until" else until_text(v)) for k, v in t.items()}
                      for t in temporary],  # fmt: skip
        "notes": [comment(n) for n in notes],
    }


def dump_tfvars(
    iam_users: Mapping[str, Any],
    *,
    notes: Mapping[str, Iterable[str]] | None = None,
    header: Iterable[str] = (),
) -> str:
    """The `iam_users` mapping as a `terraform fmt`-clean tfvars file, users in the given order.

    Values may be {description, roles} mappings or UserSpec. `notes` (user -> lines) become comments
    above the user's entry, `header` lines comments at the top; load_tfvars ignores both.
    """
    users = [_tfvars_entry(name, value, (notes or {}).get(name, ())) for name, value in iam_users.items()]
    return render_template("iam_users.auto.tfvars.j2", users=users, header=[comment(h) for h in header])


def load_tfvars(text: str, source: str = "<tfvars>") -> dict[str, dict]:
    """The `iam_users` mapping of a tfvars file (raises SpecError when it is malformed or missing)."""
    data = unescape_templates(load_hcl(text, source))
    if not isinstance(data, Mapping) or "iam_users" not in data:
        raise SpecError(f"{source}: holds no top-level `iam_users`")
    iam_users = data["iam_users"]
    if not isinstance(iam_users, Mapping):
        raise SpecError(f"{source}: `iam_users` must be a map of user name -> {{description, roles}}")
    return dict(iam_users)


# --- import blocks ---------------------------------------------------------------------------------
def import_blocks(spec: Spec, inventory: Inventory | None) -> list[ImportBlock]:
    """An import for each resource the configuration manages that exists: entities, then what joins them."""
    if inventory is None:
        return []
    policies = existing_policy_arns(spec, inventory)
    real_groups = {k: find_named(inventory.groups, name) for k, name in spec.groups().items()}
    groups = {k: inventory.groups[real] for k, real in real_groups.items() if real is not None}
    users = {name: user for name in spec.users if (user := inventory.user_named(name)) is not None}
    blocks = [ImportBlock(policy_address(k), arn) for k, arn in policies.items()]
    blocks += [ImportBlock(group_address(k), group["GroupName"]) for k, group in groups.items()]
    blocks += [ImportBlock(user_address(name), user["UserName"]) for name, user in users.items()]
    blocks += [ImportBlock(address, id_) for address, id_ in tt.imports(spec, inventory)]
    if spec.settings.via_group:
        return blocks + _group_grant_imports(spec, policies, groups, users)
    return blocks + _attachment_imports(spec, policies, users)


def _attachment_imports(spec: Spec, policies: Mapping[str, str], users: Mapping[str, dict]) -> list[ImportBlock]:
    """User mode: `<user>/<policy ARN>` for each granted Assume*Policy already attached to the user."""
    blocks = []
    for name, user in users.items():
        attached = Inventory.attached_arns(user)
        for key in spec.users[name].roles:
            if policies.get(key) in attached:
                blocks.append(ImportBlock(attachment_address(name, key), f"{user['UserName']}/{policies[key]}"))
    return blocks


def _group_grant_imports(
    spec: Spec, policies: Mapping[str, str], groups: Mapping[str, dict], users: Mapping[str, dict]
) -> list[ImportBlock]:
    """Group mode: `<group>/<policy ARN>` per attached group policy; `<user>/<group>/<group>...` per member.

    A membership lists only the spec's groups the user is in already: the provider reads back exactly
    those, and Terraform then adds the missing ones as an in-place update.
    """
    blocks = [
        ImportBlock(group_attachment_address(key), f"{group['GroupName']}/{policies[key]}")
        for key, group in groups.items()
        if policies.get(key) in Inventory.attached_arns(group)
    ]
    for name, user in users.items():
        member_of = [groups[k]["GroupName"] for k in spec.users[name].roles if k in groups]
        member_of = [g for g in member_of if g in user.get("GroupList", [])]
        if member_of:
            blocks.append(ImportBlock(membership_address(name), "/".join([user["UserName"], *member_of])))
    return blocks


# --- the module ------------------------------------------------------------------------------------
def render_variables(roles: Mapping[str, str]) -> str:
    """variables.tf: `iam_users`, validated by the rules spec.py applies, so Terraform refuses the same specs."""
    return render_template(
        "variables.tf.j2",
        role_keys="[" + ", ".join(hcl_string(k) for k in roles) + "]",
        role_key_text=hcl_string(", ".join(roles))[1:-1],  # inside the message's quotes
        name_pattern=hcl_string(_USER_NAME_RE),
        description_pattern=hcl_string(_TAG_VALUE_RE),
        max_description=MAX_DESCRIPTION,
    )


def _user_tag_expressions() -> list[tuple[str, str]]:
    """names.user_tags as Terraform expressions: same keys, same order, same separator and values."""
    name, description, role = "\0name", "\0description", "\0role"
    exprs = []
    for key, value in user_tags(name, description, (role,)).items():
        if value == name:
            exprs.append((key, "each.key"))
        elif value == description:
            exprs.append((key, "each.value.description"))
        elif value == role:
            exprs.append((key, f"join({hcl_string(ROLES_TAG_SEPARATOR)}, each.value.roles)"))
        else:
            exprs.append((key, hcl_string(value)))
    return exprs


def render_module(roles: Mapping[str, str], settings: GrantSettings | None = None, temporary: bool = False) -> str:
    """iam_users.tf: the same policies, groups, users, tags, attachments and memberships the runbook makes."""
    settings = settings or GrantSettings()
    groups = [(key, hcl_string(settings.group_name(key, role))) for key, role in roles.items()]
    return render_template(
        "iam_users.tf.j2",
        **policy_values(roles, settings),
        groups=aligned(groups) if settings.via_group else [],
        user_tags=aligned(_user_tag_expressions(), quote=False),
        temporary=temporary,
    )


def render_outputs(settings: GrantSettings | None = None) -> str:
    return render_template("outputs.tf.j2", groups=(settings or GrantSettings()).via_group)


# --- state list ------------------------------------------------------------------------------------
def managed_addresses(spec: Spec) -> list[str]:
    """Every managed resource the configuration holds for `spec` (the part verify reports)."""
    addresses = [policy_address(key) for key in spec.roles] + tt.addresses(spec)
    addresses += [user_address(name) for name in spec.users]
    if spec.settings.via_group:
        addresses += [group_address(key) for key in spec.roles]
        addresses += [group_attachment_address(key) for key in spec.roles]
        return addresses + [membership_address(u.name) for u in spec.users.values() if u.roles]
    return addresses + [attachment_address(u.name, key) for u in spec.users.values() for key in u.roles]


def data_addresses(spec: Spec) -> list[str]:
    documents = (f"data.aws_iam_policy_document.{n}[{hcl_string(k)}]" for n, k in tt.data_keys(spec))
    return [CALLER_IDENTITY, PARTITION, *documents]


def expected_state_list(spec: Spec) -> list[str]:
    """What `terraform state list` prints after `terraform apply` of the written configuration."""
    return sorted([*data_addresses(spec), *managed_addresses(spec)], key=state_list_order)


# --- writing ---------------------------------------------------------------------------------------
def write_terraform(
    out_dir: str | Path, spec: Spec, inventory: Inventory | None, center: CenterState | None = None, *,
    member: bool = False,
) -> dict[str, Path]:
    """Write the Terraform handoff for `spec` into out_dir; imports for what `inventory` (and, under grant_via:
    identity_center, `center`) shows exists. `member`: an organization's member account in that mode, which
    holds only its policies."""
    tfvars, variables = dump_tfvars(spec.to_mapping()), render_variables(spec.roles)
    if spec.settings.grant_via == MODE and member:
        return write_member_terraform(out_dir, spec, inventory, tfvars=dump_tfvars({}), variables=variables)
    if spec.settings.grant_via == MODE:  # no IAM users: the Identity Center resources (terraform_center.py)
        return write_center_terraform(out_dir, spec, inventory, center, tfvars=tfvars, variables=variables)
    blocks = import_blocks(spec, inventory)
    files = {
        TFVARS_FILE: tfvars,
        IMPORTS_FILE: render_imports(blocks),
        VERSIONS_FILE: render_versions(),
        VARIABLES_FILE: variables,
        MODULE_FILE: render_module(spec.roles, spec.settings, tt.has_temporary(spec)),
        OUTPUTS_FILE: render_outputs(spec.settings),
        STATE_LIST_FILE: "\n".join(expected_state_list(spec)) + "\n",
    }
    written = write_files(out_dir, files)
    logger.info("Terraform handoff written to %s (%d import blocks)", out_dir, len(blocks))
    return written


# --- adopting an existing account ------------------------------------------------------------------
@dataclass(frozen=True)
class Adoption:
    """A spec for every existing user, plus what the operator should read before using it."""

    iam_users: dict[str, dict]
    #: user -> comment lines (other access paths, conditional access, a cleaned description)
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: account-level remarks: users skipped, roles missing
    warnings: tuple[str, ...] = ()


def clean_description(value: str) -> str:
    """A Description tag value as the spec accepts it: characters AWS refuses dropped, at most 256."""
    kept = "".join(ch for ch in value if tag_value_problem(ch) is None)
    if kept != value:  # "Ops (EU), Berlin" -> "Ops EU Berlin", not "Ops EU  Berlin"
        kept = " ".join(kept.split())
    return kept[:MAX_DESCRIPTION]


def adopt(inventory: Inventory, roles: Mapping[str, str] | None = None) -> Adoption:
    """Every existing user with the role keys they can assume today, unconditionally, by any path."""
    from iamrunbook.core.access import effective_access, is_runbook_path

    roles = dict(DEFAULT_ROLES if roles is None else roles)
    grants = effective_access(inventory.details(), roles, inventory.account_id)
    warnings = [
        f"role {key!r}: IAM role {name!r} is not in account {inventory.account_id}; nobody is granted it"
        for key, name in roles.items()
        if name not in inventory.roles
    ]
    iam_users: dict[str, dict] = {}
    notes: dict[str, tuple[str, ...]] = {}
    by_user: dict[str, list] = {}
    for g in grants:
        by_user.setdefault(g.user, []).append(g)
    for name in sorted(inventory.users, key=str.lower):
        user = inventory.users[name]
        mine = by_user.get(name, [])
        granted = {g.role_key for g in mine if g.verdict == "yes" and g.until is None}  # never a temporary one
        user_notes = [f"{g.role_key}: via {g.path}" for g in mine if g.verdict == "yes" and not is_runbook_path(g)]
        user_notes += [f"{g.role_key}: temporary, {g.shown} via {g.path}; not adopted as a permanent grant"
                       for g in mine if g.until is not None and g.role_key not in granted]  # fmt: skip
        user_notes += [
            f"{g.role_key}: NOT granted here, conditional via {g.path} ({'; '.join(g.conditions)})"
            for g in mine
            if g.verdict != "yes" and g.role_key not in granted
        ]
        raw = Inventory.tags(user).get("Description", "")
        description = clean_description(raw)
        if description != raw:
            user_notes.append(f"Description tag cleaned to what AWS accepts in a tag value (was {raw!r})")
        entry = {"description": description, "roles": [key for key in roles if key in granted]}
        problems = validate_users({name: entry}, roles)
        if problems:
            warnings.append("skipped, the spec cannot hold this user: " + "; ".join(problems))
            continue
        iam_users[name] = entry
        if user_notes:
            notes[name] = tuple(dict.fromkeys(user_notes))
    for warning in warnings:
        logger.warning("adoption: %s", warning)
    return Adoption(iam_users, notes, tuple(warnings))


def adopted_spec(inventory: Inventory, roles: Mapping[str, str] | None = None) -> dict[str, dict]:
    """The `iam_users` mapping adopting every existing user (see `adopt` for the notes and warnings)."""
    return adopt(inventory, roles).iam_users


def dump_parameters_yaml(
    roles: Mapping[str, str],
    iam_users: Mapping[str, Mapping],
    *,
    notes: Mapping[str, Iterable[str]] | None = None,
    header: Iterable[str] = (),
) -> str:
    """A parameters file (`roles:` + `iam_users:`) with comments; PyYAML quotes what needs quoting."""

    def dump(data: Mapping, flow: bool | None = None) -> list[str]:
        text = yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=flow, width=4096)
        return text.rstrip("\n").split("\n")

    lines = [f"# {comment(h)}" for h in header]
    lines += dump({"roles": dict(roles)}, flow=False)
    if not iam_users:
        return "\n".join([*lines, "iam_users: {}", ""])
    lines.append("iam_users:")
    for name, entry in iam_users.items():
        lines += [f"  # {comment(n)}" for n in (notes or {}).get(name, ())]
        description, user_roles, temporary = _entry(entry)
        kept = {"description": description, "roles": user_roles} | ({"temporary": temporary} if temporary else {})
        lines += ["  " + line for line in dump({name: kept})]
    return "\n".join(lines) + "\n"


def write_adopted(run_dir: str | Path, inventory: Inventory, roles: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write adopted_iam_users.yaml (a parameters file) and adopted_iam_users.auto.tfvars into run_dir."""
    roles = dict(DEFAULT_ROLES if roles is None else roles)
    adoption = adopt(inventory, roles)
    header = render_template("adopted_header.txt.j2", account_id=inventory.account_id, adoption=adoption).splitlines()
    yaml_text = dump_parameters_yaml(roles, adoption.iam_users, notes=adoption.notes, header=header)
    tfvars_text = dump_tfvars(adoption.iam_users, notes=adoption.notes, header=header)
    # Both files must read back as the spec they describe: check before anyone relies on them.
    if load_yaml(yaml_text, ADOPTED_YAML) != {"roles": roles, "iam_users": adoption.iam_users}:
        raise RunbookError(f"{ADOPTED_YAML} does not read back as the adopted spec")
    if load_tfvars(tfvars_text, ADOPTED_TFVARS) != adoption.iam_users:
        raise RunbookError(f"{ADOPTED_TFVARS} does not read back as the adopted spec")
    return write_files(run_dir, {ADOPTED_YAML: yaml_text, ADOPTED_TFVARS: tfvars_text})
