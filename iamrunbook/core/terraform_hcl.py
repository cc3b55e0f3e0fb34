"""The HCL text every mode's Terraform handoff writes: strings and comments Terraform reads back exactly, the
templates, import blocks, Terraform's order of `state list`, and the Assume<Role>Policy part (the same
policies in every mode). terraform.py writes the IAM-user modes, terraform_center.py Identity Center's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from iamrunbook.base.names import mfa_condition, policy_description, policy_name
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import GrantSettings, Spec

TFVARS_FILE = "iam_users.auto.tfvars"
IMPORTS_FILE = "imports.tf"
VERSIONS_FILE = "versions.tf"
VARIABLES_FILE = "variables.tf"
OUTPUTS_FILE = "outputs.tf"
STATE_LIST_FILE = "expected_state_list.txt"

CALLER_IDENTITY = "data.aws_caller_identity.current"
PARTITION = "data.aws_partition.current"  # every ARN the configuration writes is in the caller's partition


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


def unescape_templates(value: Any) -> Any:
    """python-hcl2 resolves backslash escapes but keeps `$${` and `%%{` as written: finish the job."""
    if isinstance(value, str):
        return value.replace("$${", "${").replace("%%{", "%{")
    if isinstance(value, list):
        return [unescape_templates(v) for v in value]
    if isinstance(value, dict):
        return {unescape_templates(k): unescape_templates(v) for k, v in value.items()}
    return value


def comment(text: str) -> str:
    """One comment line's text: no line breaks can end it early."""
    return " ".join(str(text).split())


def aligned(pairs: Iterable[tuple[str, Any]], quote: bool = True) -> list[tuple[str, Any]]:
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


def render_versions() -> str:
    return render_template("versions.tf.j2")


# --- import blocks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportBlock:
    to: str
    id: str

    def to_hcl(self) -> str:
        return render_template("import_block.tf.j2", block=self._escaped())

    def _escaped(self) -> dict[str, str]:
        return {"to": self.to, "id": hcl_string(self.id)}


def render_imports(blocks: Iterable[ImportBlock]) -> str:
    return render_template("imports.tf.j2", blocks=[b._escaped() for b in blocks])


# --- the Assume<Role>Policy part -------------------------------------------------------------------
def _mfa_conditions(settings: GrantSettings) -> list[dict]:
    """names.mfa_condition as aws_iam_policy_document conditions: the JSON Terraform renders means the same."""
    return [
        {"test": hcl_string(test), "variable": hcl_string(variable), "values": [hcl_string(value)]}
        for test, keys in mfa_condition(settings.mfa_max_age_seconds).items()
        for variable, value in keys.items()
    ]


def policy_values(roles: Mapping[str, str], settings: GrantSettings) -> dict[str, Any]:
    """The template values of templates/assume_role_*.tf.j2: the roles, their policies and MFA conditions."""
    policies = [
        (key, {"name": hcl_string(policy_name(role)), "description": hcl_string(policy_description(role))})
        for key, role in roles.items()
    ]
    return {
        "roles": aligned((k, hcl_string(v)) for k, v in roles.items()),
        "policies": aligned(policies),
        "mfa_roles": [hcl_string(key) for key in roles if settings.mfa(key)],
        "mfa_conditions": _mfa_conditions(settings),
    }


def existing_policy_arns(spec: Spec, inventory: Inventory) -> dict[str, str]:
    """role key -> the ARN of its Assume<Role>Policy, for the policies that exist (each is imported)."""
    return {k: p["Arn"] for k, role in spec.roles.items() if (p := inventory.local_policy(policy_name(role)))}


def assume_role_documents(spec: Spec) -> list[str]:
    """The state addresses of the policy documents Terraform renders, one per role."""
    return [f"data.aws_iam_policy_document.assume_role[{hcl_string(k)}]" for k in spec.roles]


# --- state list and writing ------------------------------------------------------------------------
_ADDRESS = re.compile(r'(?P<data>data\.)?(?P<type>[^.]+)\.(?P<name>[^.[]+)(?:\["(?P<key>.*)"\])?')


def state_list_order(address: str) -> tuple:
    """Terraform's sort of `state list`: data resources first, then type, name and instance key."""
    m = _ADDRESS.fullmatch(address)
    if m is None:
        raise ValueError(f"not a root-module resource address: {address}")
    return (m["data"] is None, m["type"], m["name"], m["key"] or "")


def write_files(out_dir: str | Path, files: Mapping[str, str]) -> dict[str, Path]:
    """Each (file name, text) into out_dir, made when missing; file name -> the path written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in files.items():
        written[name] = out / name
        written[name].write_text(text, encoding="utf-8")
    return written
