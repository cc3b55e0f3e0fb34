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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
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
    mfa_condition,
    policy_address,
    policy_description,
    policy_name,
    user_address,
    user_tags,
)
from iamrunbook.core import terraform_temporary as tt
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

READ_ACTIONS: tuple[str, ...] = ()  # pure: works on an Inventory already read
WRITE_ACTIONS: tuple[str, ...] = ()

TFVARS_FILE = "iam_users.auto.tfvars"
IMPORTS_FILE = "imports.tf"
VERSIONS_FILE = "versions.tf"
VARIABLES_FILE = "variables.tf"
MODULE_FILE = "iam_users.tf"
OUTPUTS_FILE = "outputs.tf"
STATE_LIST_FILE = "expected_state_list.txt"
ADOPTED_YAML = "adopted_iam_users.yaml"
ADOPTED_TFVARS = "adopted_iam_users.auto.tfvars"

CALLER_IDENTITY = "data.aws_caller_identity.current"
PARTITION = "data.aws_partition.current"  # every ARN the configuration writes is in the caller's partition

# The rules spec.py enforces, for Terraform's validation blocks (RE2 syntax; \p classes as in AWS's model).
_USER_NAME_RE = r"^[A-Za-z0-9_+=.@-]{1,64}$"
_TAG_VALUE_RE = r"^[\p{L}\p{Z}\p{N}_.:/=+@-]*$"


# --- HCL strings -----------------------------------------------------------------------------------
def hcl_string(value: str) -> str:
    """`value` as an HCL quoted string that Terraform reads back as exactly `value`.

    Escapes `\\`, `"`, newlines and tabs; writes characters that are not printable (line and paragraph
    separators, non-breaking spaces, controls) as \\uNNNN; doubles the template markers `${` and `%{`.
    """
    out = []
    for ch in value:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    text = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unescape_templates(value: Any) -> Any:
    """python-hcl2 resolves backslash escapes but keeps `$${` and `%%{` as written: finish the job."""
    if isinstance(value, str):
        return value.replace("$${", "${").replace("%%{", "%{")
    if isinstance(value, list):
        return [_unescape_templates(v) for v in value]
    if isinstance(value, dict):
        return {_unescape_templates(k): _unescape_templates(v) for k, v in value.items()}
    return value


def _comment(text: str) -> str:
    """One comment line's text: no line breaks can end it early."""
    return " ".join(str(text).split())


def _aligned(pairs: Iterable[tuple[str, Any]], quote: bool = True) -> list[tuple[str, Any]]:
    """(key, value) pairs with the keys padded so the `=` line up, as terraform fmt leaves them."""
    pairs = [(hcl_string(k) if quote else k, v) for k, v in pairs]
    width = max((len(k) for k, _ in pairs), default=0)
    return [(k.ljust(width), v) for k, v in pairs]


# --- templates -------------------------------------------------------------------------------------
def _template_source(name: str) -> str:
    """Templates are package data: importlib.resources finds them in a wheel install as in a checkout."""
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FunctionLoader(_template_source),
    autoescape=False,  # HCL, not HTML: every value is HCL already (strings through hcl_string)
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,  # a value the template names but Python did not give is a bug
)


def render_template(name: str, **data: Any) -> str:
    """The text of templates/<name> with `data` filled in."""
    return _TEMPLATES.get_template(name).render(**data)


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
        "notes": [_comment(n) for n in notes],
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
    return render_template("iam_users.auto.tfvars.j2", users=users, header=[_comment(h) for h in header])


def load_tfvars(text: str, source: str = "<tfvars>") -> dict[str, dict]:
    """The `iam_users` mapping of a tfvars file (raises SpecError when it is malformed or missing)."""
    data = _unescape_templates(load_hcl(text, source))
    if not isinstance(data, Mapping) or "iam_users" not in data:
        raise SpecError(f"{source}: holds no top-level `iam_users`")
    iam_users = data["iam_users"]
    if not isinstance(iam_users, Mapping):
        raise SpecError(f"{source}: `iam_users` must be a map of user name -> {{description, roles}}")
    return dict(iam_users)


# --- import blocks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportBlock:
    to: str
    id: str

    def to_hcl(self) -> str:
        return render_template("import_block.tf.j2", block=self._escaped())

    def _escaped(self) -> dict[str, str]:
        return {"to": self.to, "id": hcl_string(self.id)}


def import_blocks(spec: Spec, inventory: Inventory | None) -> list[ImportBlock]:
    """An import for each resource the configuration manages that exists: entities, then what joins them."""
    if inventory is None:
        return []
    policies = {k: p["Arn"] for k, role in spec.roles.items() if (p := inventory.local_policy(policy_name(role)))}
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


def render_imports(blocks: Iterable[ImportBlock]) -> str:
    return render_template("imports.tf.j2", blocks=[b._escaped() for b in blocks])


# --- the module ------------------------------------------------------------------------------------
def render_versions() -> str:
    return render_template("versions.tf.j2")


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


def _mfa_conditions(settings: GrantSettings) -> list[dict]:
    """names.mfa_condition as aws_iam_policy_document conditions: the JSON Terraform renders means the same."""
    return [
        {"test": hcl_string(test), "variable": hcl_string(variable), "values": [hcl_string(value)]}
        for test, keys in mfa_condition(settings.mfa_max_age_seconds).items()
        for variable, value in keys.items()
    ]


def render_module(roles: Mapping[str, str], settings: GrantSettings | None = None, temporary: bool = False) -> str:
    """iam_users.tf: the same policies, groups, users, tags, attachments and memberships the runbook makes."""
    settings = settings or GrantSettings()
    policies = [
        (key, {"name": hcl_string(policy_name(role)), "description": hcl_string(policy_description(role))})
        for key, role in roles.items()
    ]
    groups = [(key, hcl_string(settings.group_name(key, role))) for key, role in roles.items()]
    return render_template(
        "iam_users.tf.j2",
        roles=_aligned((k, hcl_string(v)) for k, v in roles.items()),
        policies=_aligned(policies),
        groups=_aligned(groups) if settings.via_group else [],
        mfa_roles=[hcl_string(key) for key in roles if settings.mfa(key)],
        mfa_conditions=_mfa_conditions(settings),
        user_tags=_aligned(_user_tag_expressions(), quote=False), temporary=temporary,
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


_ADDRESS = re.compile(r'(?P<data>data\.)?(?P<type>[^.]+)\.(?P<name>[^.[]+)(?:\["(?P<key>.*)"\])?')


def state_list_order(address: str) -> tuple:
    """Terraform's sort of `state list`: data resources first, then type, name and instance key."""
    m = _ADDRESS.fullmatch(address)
    if m is None:
        raise ValueError(f"not a root-module resource address: {address}")
    return (m["data"] is None, m["type"], m["name"], m["key"] or "")


def expected_state_list(spec: Spec) -> list[str]:
    """What `terraform state list` prints after `terraform apply` of the written configuration."""
    return sorted([*data_addresses(spec), *managed_addresses(spec)], key=state_list_order)


# --- writing ---------------------------------------------------------------------------------------
def _write(out_dir: Path, name: str, text: str) -> Path:
    path = out_dir / name
    path.write_text(text, encoding="utf-8")
    return path


def write_terraform(out_dir: str | Path, spec: Spec, inventory: Inventory | None) -> dict[str, Path]:
    """Write the Terraform handoff for `spec` into out_dir; imports for what `inventory` shows exists."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = import_blocks(spec, inventory)
    files = {
        TFVARS_FILE: dump_tfvars(spec.to_mapping()),
        IMPORTS_FILE: render_imports(blocks),
        VERSIONS_FILE: render_versions(),
        VARIABLES_FILE: render_variables(spec.roles),
        MODULE_FILE: render_module(spec.roles, spec.settings, tt.has_temporary(spec)),
        OUTPUTS_FILE: render_outputs(spec.settings),
        STATE_LIST_FILE: "\n".join(expected_state_list(spec)) + "\n",
    }
    written = {name: _write(out, name, text) for name, text in files.items()}
    logger.info("Terraform handoff written to %s (%d import blocks)", out, len(blocks))
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

    lines = [f"# {_comment(h)}" for h in header]
    lines += dump({"roles": dict(roles)}, flow=False)
    if not iam_users:
        return "\n".join([*lines, "iam_users: {}", ""])
    lines.append("iam_users:")
    for name, entry in iam_users.items():
        lines += [f"  # {_comment(n)}" for n in (notes or {}).get(name, ())]
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
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        ADOPTED_YAML: _write(out, ADOPTED_YAML, yaml_text),
        ADOPTED_TFVARS: _write(out, ADOPTED_TFVARS, tfvars_text),
    }
