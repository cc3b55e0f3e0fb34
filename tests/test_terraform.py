"""Terraform handoff: tfvars round-trips, generated files parse, imports name the account's real resources,
and an adopted spec describes the account as it is.

The pure parts run without AWS; the rest apply the example spec to the strict embedded account first (group
mode too: the converged account of bench/terraform_check.py). User mode is held byte for byte to
the golden files in tests/golden/. The real Terraform is not run here, as a fresh machine may lack it:
`python bench/terraform_check.py` plans, applies and re-plans every setting against the embedded server."""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from pathlib import Path

import hcl2
import pytest
from examples import EXAMPLE_ADDRESSES
from hcl2.utils import SerializationOptions

from iamrunbook.aws import clients as aws_edge
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import (
    DEFAULT_ROLES,
    mfa_condition,
    policy_description,
    policy_document,
    policy_name,
    user_tags,
)
from iamrunbook.core.params import load_params_file
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import GrantSettings, load_spec, tag_value_problem
from iamrunbook.core.terraform import (
    ADOPTED_TFVARS,
    ADOPTED_YAML,
    IMPORTS_FILE,
    MODULE_FILE,
    OUTPUTS_FILE,
    STATE_LIST_FILE,
    TFVARS_FILE,
    VARIABLES_FILE,
    ImportBlock,
    adopt,
    adopted_spec,
    clean_description,
    dump_tfvars,
    expected_state_list,
    hcl_string,
    import_blocks,
    load_tfvars,
    state_list_order,
    write_adopted,
    write_terraform,
)
from iamrunbook.core.verify import verify
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import seed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = load_params_file(ROOT / "parameters" / "example.yaml")


def _load_script(name: str, path: Path):
    """A script of this repository (not a package module), loaded by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


#: the cases behind the golden files
GOLDEN = _load_script("golden_generate", ROOT / "tests" / "golden" / "generate.py")
#: the converged group-mode account, built with boto3 (the runbook's group-mode planner is not here yet)
TF_CHECK = _load_script("terraform_check", ROOT / "bench" / "terraform_check.py")


# Every kind of character AWS allows in a tag value: letters, separators (\p{Z}), numbers, _.:/=+-@.
EVERY_ALLOWED = (
    "Zoë Ærø straße 中文 Ω"  # letters, Latin and not
    " \u00a0\u2009\u3000\u2028\u2029"  # space separators, line and paragraph separators
    "0123456789 ² ٣ Ⅻ ½"  # numbers: digits, superscript, Arabic-Indic, Roman, fractions
    " _ . : / = + - @"
)
ODD_NAMES = ["a+b=c@d.e", "first.last+tag@example.co.uk", "x=y", "UPPER_lower-09", "@", "a.b-c_d+e=f@g"]


def example_spec():
    return load_spec(EXAMPLE["iam_users"], roles=EXAMPLE["roles"])


def strip_block_marks(value):
    """python-hcl2 marks blocks with __is_block__; drop the marks to compare content."""
    if isinstance(value, dict):
        return {k: strip_block_marks(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [strip_block_marks(v) for v in value]
    return value


# --- HCL strings and tfvars -------------------------------------------------------------------------
def test_hcl_string_escapes_what_hcl_would_read_differently():
    assert hcl_string('say "hi"') == r'"say \"hi\""'
    assert hcl_string("back\\slash") == r'"back\\slash"'
    assert hcl_string("${var.x} and %{if}") == '"$${var.x} and %%{if}"'
    assert hcl_string("two\nlines\ttab") == r'"two\nlines\ttab"'
    assert hcl_string("nbsp\u00a0ls\u2028") == r'"nbsp\u00a0ls\u2028"'
    assert hcl_string("plain $ and % and {braces}") == '"plain $ and % and {braces}"'
    assert hcl_string("é 中 😀") == '"é 中 😀"'


@pytest.mark.parametrize(
    "value",
    ['q"q', "b\\s", "\\n", "${x}", "$${x}", "$$${x}", "%{if x}", "%%{y}", "a\nb\r\tc", EVERY_ALLOWED, "$", "%", ""],
)
def test_tfvars_string_round_trip(value):
    text = dump_tfvars({"u": {"description": value, "roles": []}})
    assert load_tfvars(text) == {"u": {"description": value, "roles": []}}


def test_every_allowed_character_is_really_allowed():
    assert tag_value_problem(EVERY_ALLOWED) is None
    assert {unicodedata.category(c)[0] for c in EVERY_ALLOWED} >= {"L", "Z", "N", "P", "S"}


def test_tfvars_spec_tfvars_round_trip_unchanged(tmp_path):
    iam_users = {
        name: {"description": EVERY_ALLOWED[: 20 + i * 7], "roles": list(DEFAULT_ROLES)[: i % 4]}
        for i, name in enumerate(ODD_NAMES)
    }
    iam_users["nobody"] = {"description": "", "roles": []}
    text = dump_tfvars(iam_users)
    spec = load_spec(load_tfvars(text))
    assert spec.to_mapping() == iam_users
    assert dump_tfvars(spec.to_mapping()) == text
    # The same file as `iam_users_file` is the same spec: one source of truth for both tools.
    path = tmp_path / "iam_users.auto.tfvars"
    path.write_text(text, encoding="utf-8")
    assert load_spec(iam_users_file=path) == spec
    # The example: YAML and the tfvars written from it agree, in the same order.
    example = example_spec()
    assert dump_tfvars(load_spec(load_tfvars(dump_tfvars(example.to_mapping()))).to_mapping()) == dump_tfvars(
        EXAMPLE["iam_users"]
    )


def test_names_are_quoted_keys_in_the_generated_hcl():
    text = dump_tfvars({name: {"description": "d", "roles": ["admin"]} for name in ODD_NAMES})
    for name in ODD_NAMES:
        assert f'  "{name}" = {{\n' in text
    raw = hcl2.loads(text)  # without quote stripping, a quoted key keeps its quotes
    assert list(raw["iam_users"]) == [f'"{name}"' for name in ODD_NAMES]
    assert list(load_tfvars(text)) == ODD_NAMES


def test_empty_spec_and_notes():
    assert load_tfvars(dump_tfvars({})) == {}
    text = dump_tfvars({"a": {"description": "", "roles": []}}, notes={"a": ["line one\nline two"]})
    assert "  # line one line two\n" in text
    assert load_tfvars(text) == {"a": {"description": "", "roles": []}}


def test_load_tfvars_refuses_what_is_not_a_spec():
    with pytest.raises(SpecError, match="no top-level `iam_users`"):
        load_tfvars('users = { "a" = { description = "", roles = [] } }')
    with pytest.raises(SpecError, match="duplicate key 'a'"):
        load_tfvars(
            'iam_users = {\n  "a" = { description = "", roles = [] }\n  "a" = { description = "", roles = [] }\n}'
        )
    with pytest.raises(SpecError, match="malformed HCL"):
        load_tfvars('iam_users = { "a" = ')


# --- golden files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(GOLDEN.CASES))
def test_files_are_byte_identical_to_the_golden_ones(case, iam, sts, tmp_path):
    GOLDEN.CASES[case](iam, sts, tmp_path)
    kept = GOLDEN.GOLDEN / case
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept.iterdir())
    for path in sorted(kept.iterdir()):
        written = (tmp_path / path.name).read_bytes()
        if written != path.read_bytes():  # show a readable diff of the first file that differs
            assert written.decode("utf-8") == path.read_text(encoding="utf-8"), path.name
            pytest.fail(f"{path.name}: same text, different bytes")


def test_golden_cases_cover_what_the_writer_must_escape():
    text = (GOLDEN.GOLDEN / "escaping" / "iam_users.tf").read_text(encoding="utf-8")
    assert r'"Quote\"Role"' in text and '"Tmpl$${var.x}%%{if}Role"' in text and r'"Back\\slash\\nRole"' in text
    tfvars = (GOLDEN.GOLDEN / "escaping" / TFVARS_FILE).read_text(encoding="utf-8")
    assert r'"line\u2028sep"' in tfvars and "😀" in tfvars
    assert "import {" in (GOLDEN.GOLDEN / "example_after_apply" / IMPORTS_FILE).read_text(encoding="utf-8")


# --- the generated module ---------------------------------------------------------------------------
def test_every_generated_file_parses_and_says_what_the_runbook_does(tmp_path):
    spec = example_spec()
    files = write_terraform(tmp_path / "terraform", spec, None)
    assert set(files) >= {TFVARS_FILE, IMPORTS_FILE, VARIABLES_FILE, MODULE_FILE, OUTPUTS_FILE, STATE_LIST_FILE}
    parsed = {
        name: strip_block_marks(hcl2.loads(path.read_text(encoding="utf-8")))
        for name, path in files.items()
        if name.endswith((".tf", ".tfvars"))
    }
    assert load_tfvars(files[TFVARS_FILE].read_text(encoding="utf-8")) == spec.to_mapping()
    assert "import" not in parsed[IMPORTS_FILE]  # nothing exists: no import blocks

    variable = parsed[VARIABLES_FILE]["variable"][0]['"iam_users"']
    assert variable["type"] == ("${map(object({description = string, roles = list(string), temporary = "
                                "optional(list(object({role = string, until = string, reason = string})), [])}))}")
    assert '["admin", "data_engineer", "infrastructure_admin"]' in variable["validation"][0]["condition"]

    module = parsed[MODULE_FILE]
    local = module["locals"][0]
    quoted = {f'"{key}"': f'"{role}"' for key, role in spec.roles.items()}
    assert local["assumable_roles"] == quoted
    assert local["assume_role_policies"] == {
        f'"{key}"': {"name": hcl_string(policy_name(role)), "description": hcl_string(policy_description(role))}
        for key, role in spec.roles.items()
    }
    resources = {next(iter(r)): r[next(iter(r))] for r in module["resource"]}
    user = resources['"aws_iam_user"']['"users"']
    assert user["force_destroy"] is True
    assert user["for_each"] == "${var.iam_users}"
    assert list(user["tags"]) == list(user_tags("n", "d", ("k",)))  # exactly names.user_tags' keys
    assert user["tags"]["ManagedBy"] == '"iamrunbook"'
    assert user["tags"]["Roles"] == '${join(" ", each.value.roles)}'
    policy = resources['"aws_iam_policy"']['"assume_role"']
    assert policy["for_each"] == "${local.assumable_roles}"
    assert policy["name"] == "${local.assume_role_policies[each.key].name}"
    assert policy["tags"] == {"Name": "${local.assume_role_policies[each.key].name}"}
    attachment = resources['"aws_iam_user_policy_attachment"']['"user_roles"']
    assert attachment["for_each"] == "${local.user_role_attachments}"
    assert '"${pair.user}/${pair.role_key}"' in local["user_role_attachments"]
    data = {next(iter(d)): d[next(iter(d))] for d in module["data"]}
    assert set(data) == {'"aws_caller_identity"', '"aws_iam_policy_document"', '"aws_partition"'}
    statement = data['"aws_iam_policy_document"']['"assume_role"']["statement"][0]
    assert statement["actions"] == ['"sts:AssumeRole"'] and statement["effect"] == '"Allow"'
    # the document Terraform renders holds the single statement names.policy_document holds
    wanted = policy_document("123456789012", "R")["Statement"][0]
    assert (wanted["Effect"], wanted["Action"]) == ("Allow", "sts:AssumeRole")
    assert statement["resources"] == [
        '"arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/'
        '${each.value}"'
    ]

    outputs = {next(iter(o)) for o in parsed[OUTPUTS_FILE]["output"]}
    assert outputs == {'"iam_user_arns"', '"assume_role_policy_arns"'}


def test_expected_state_list_is_terraforms_order(tmp_path):
    spec = example_spec()
    lines = write_terraform(tmp_path, spec, None)[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    assert lines[:5] == [
        "data.aws_caller_identity.current",
        'data.aws_iam_policy_document.assume_role["admin"]',
        'data.aws_iam_policy_document.assume_role["data_engineer"]',
        'data.aws_iam_policy_document.assume_role["infrastructure_admin"]',
        "data.aws_partition.current",
    ]
    assert lines[5:] == EXAMPLE_ADDRESSES
    assert lines == expected_state_list(spec)
    assert state_list_order("data.z.x") < state_list_order("a.a")  # data first, even though "a" < "data"
    assert state_list_order('t.n["a"]') < state_list_order('t.n["a/b"]')
    with pytest.raises(ValueError):
        state_list_order("module.m.aws_iam_user.x")


def test_roles_other_than_the_default_shape_the_module(tmp_path):
    spec = load_spec({"eve": {"description": "", "roles": ["ops"]}}, roles={"ops": "Ops.Role-1"})
    files = write_terraform(tmp_path, spec, None)
    text = files[MODULE_FILE].read_text(encoding="utf-8")
    assert '"ops" = "Ops.Role-1"' in text and '"AssumeOps.Role-1Policy"' in text
    assert '["ops"]' in files[VARIABLES_FILE].read_text(encoding="utf-8")
    for path in files.values():
        if path.suffix in (".tf", ".tfvars"):
            hcl2.loads(path.read_text(encoding="utf-8"))
    assert expected_state_list(spec)[-3:] == [
        'aws_iam_policy.assume_role["ops"]',
        'aws_iam_user.users["eve"]',
        'aws_iam_user_policy_attachment.user_roles["eve/ops"]',
    ]


# --- against the embedded account -------------------------------------------------------------------
def apply_spec(iam, sts, spec):
    apply_plan(iam, make_plan(spec, read_inventory(iam, sts)))
    return read_inventory(iam, sts)


def parsed_imports(path: Path) -> list[ImportBlock]:
    blocks = hcl2.loads(path.read_text(encoding="utf-8")).get("import", [])
    return [ImportBlock(b["to"][2:-1], json.loads(b["id"])) for b in blocks]


def test_import_ids_are_the_accounts_real_names_and_arns(iam, sts, tmp_path):
    seed.seed_roles(iam)
    spec = example_spec()
    inv = apply_spec(iam, sts, spec)
    files = write_terraform(tmp_path, spec, inv)

    real_policies = {
        p["PolicyName"]: p["Arn"] for p in aws_edge.paginate(iam, "list_policies", "Policies", Scope="Local")
    }
    expected = [
        ImportBlock(f'aws_iam_policy.assume_role["{k}"]', real_policies[policy_name(r)]) for k, r in spec.roles.items()
    ]
    attachments = []
    for name in spec.users:
        real_user = iam.get_user(UserName=name)["User"]["UserName"]
        expected.append(ImportBlock(f'aws_iam_user.users["{name}"]', real_user))
        attached = {
            p["PolicyName"]: p["PolicyArn"]
            for p in aws_edge.paginate(iam, "list_attached_user_policies", "AttachedPolicies", UserName=name)
        }
        for key in spec.users[name].roles:
            arn = attached[policy_name(spec.roles[key])]
            attachments.append(
                ImportBlock(f'aws_iam_user_policy_attachment.user_roles["{name}/{key}"]', f"{name}/{arn}")
            )
    assert parsed_imports(files[IMPORTS_FILE]) == expected + attachments
    assert import_blocks(spec, inv) == expected + attachments

    # every managed address is imported, and the managed part of the state list is verify's list
    state = files[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    managed = [a for a in state if not a.startswith("data.")]
    assert managed == verify(spec, inv, check_access=False).addresses == EXAMPLE_ADDRESSES
    assert sorted(b.to for b in parsed_imports(files[IMPORTS_FILE])) == managed


def test_plan_only_imports_only_what_exists(iam, sts, legacy_account, tmp_path):
    spec = example_spec()
    inv = read_inventory(iam, sts)
    files = write_terraform(tmp_path, spec, inv)
    # your-username exists; the Assume*Policy policies do not (AssumeRolesPolicy is not managed here)
    assert parsed_imports(files[IMPORTS_FILE]) == [ImportBlock('aws_iam_user.users["your-username"]', "your-username")]
    # a stray attachment of a managed policy that the spec does not grant is not imported
    spec_bob_only = load_spec({"your-username": {"description": "", "roles": []}})
    inv = apply_spec(iam, sts, example_spec())
    assert [b.to for b in import_blocks(spec_bob_only, inv) if "attachment" in b.to] == []


def test_odd_user_names_in_imports(iam, sts, tmp_path):
    seed.seed_roles(iam)
    spec = load_spec({name: {"description": "x", "roles": ["admin"]} for name in ODD_NAMES})
    inv = apply_spec(iam, sts, spec)
    blocks = parsed_imports(write_terraform(tmp_path, spec, inv)[IMPORTS_FILE])
    for name in ODD_NAMES:
        assert ImportBlock(f'aws_iam_user.users["{name}"]', name) in blocks
        assert any(b.to == f'aws_iam_user_policy_attachment.user_roles["{name}/admin"]' for b in blocks)


# --- adoption ---------------------------------------------------------------------------------------
def test_adopted_spec_of_a_converged_account_plans_nothing(iam, sts, tmp_path):
    seed.seed_roles(iam)
    inv = apply_spec(iam, sts, example_spec())
    adopted = adopted_spec(inv, EXAMPLE["roles"])
    assert adopted == dict(sorted(EXAMPLE["iam_users"].items(), key=lambda kv: kv[0].lower()))
    assert make_plan(load_spec(adopted, roles=EXAMPLE["roles"]), inv).is_empty
    assert adopt(inv, EXAMPLE["roles"]).notes == {}  # nothing but the runbook's own policies

    files = write_adopted(tmp_path / "run", inv, EXAMPLE["roles"])
    params = load_params_file(files[ADOPTED_YAML])
    assert params == {"roles": EXAMPLE["roles"], "iam_users": adopted}
    from_yaml = load_spec(params["iam_users"], roles=params["roles"])
    from_tfvars = load_spec(iam_users_file=files[ADOPTED_TFVARS], roles=params["roles"])
    assert from_yaml == from_tfvars
    assert make_plan(from_tfvars, inv).is_empty


def test_adoption_from_the_legacy_account(iam, sts, legacy_account, tmp_path):
    iam.create_user(UserName="nobody")
    inv = read_inventory(iam, sts)
    adoption = adopt(inv)
    assert adoption.iam_users == {
        "nobody": {"description": "", "roles": []},
        "your-username": {"description": "", "roles": ["admin", "data_engineer", "infrastructure_admin"]},
    }
    assert adoption.notes["your-username"] == tuple(
        f"{key}: via attached policy AssumeRolesPolicy" for key in DEFAULT_ROLES
    )
    files = write_adopted(tmp_path, inv)
    yaml_text = files[ADOPTED_YAML].read_text(encoding="utf-8")
    notes = "".join(f"  # {key}: via attached policy AssumeRolesPolicy\n" for key in DEFAULT_ROLES)
    assert notes + "  your-username:\n" in yaml_text
    assert "# Adopted from account" in yaml_text
    # used as the spec, the runbook moves your-username onto the Assume*Policy policies
    plan = make_plan(load_spec(iam_users_file=files[ADOPTED_TFVARS]), inv)
    assert {c.address for c in plan.changes if c.kind == "attach"} == {
        f'aws_iam_user_policy_attachment.user_roles["your-username/{k}"]' for k in DEFAULT_ROLES
    }


def test_adoption_counts_every_path_but_not_conditions(iam, sts, tmp_path):
    roles = seed.seed_roles(iam)
    account = roles["admin"].split(":")[4]

    def doc(resource, condition=None):
        statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}
        if condition:
            statement["Condition"] = condition
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    iam.create_user(UserName="inline", Tags=[{"Key": "Description", "Value": "Inline: data roles"}])
    iam.put_user_policy(UserName="inline", PolicyName="wild", PolicyDocument=doc(f"arn:aws:iam::{account}:role/Data*"))
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="ops-admin", PolicyDocument=doc(roles["admin"]))
    iam.create_user(UserName="grouped")
    iam.add_user_to_group(GroupName="ops", UserName="grouped")
    iam.create_user(UserName="mfa")
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    iam.put_user_policy(UserName="mfa", PolicyName="mfa", PolicyDocument=doc(roles["infrastructure_admin"], mfa))
    iam.create_user(UserName="star")
    iam.put_user_policy(UserName="star", PolicyName="all", PolicyDocument=doc("*"))
    iam.create_user(UserName="a,b")  # a valid IAM name the spec refuses (no ',' in the Name tag)

    inv = read_inventory(iam, sts)
    adoption = adopt(inv)
    assert adoption.iam_users == {
        "grouped": {"description": "", "roles": ["admin"]},
        "inline": {"description": "Inline: data roles", "roles": ["data_engineer"]},
        "mfa": {"description": "", "roles": []},
        "star": {"description": "", "roles": ["admin", "data_engineer", "infrastructure_admin"]},
    }
    assert adoption.notes["grouped"] == ("admin: via group ops: inline policy ops-admin",)
    assert adoption.notes["inline"] == ("data_engineer: via inline policy wild",)
    assert adoption.notes["mfa"] == (
        "infrastructure_admin: NOT granted here, conditional via inline policy mfa (only with MFA)",
    )
    assert [w for w in adoption.warnings if w.startswith("skipped, the spec cannot hold this user: a,b: ")]
    load_spec(adoption.iam_users)  # the adopted mapping is a valid spec

    files = write_adopted(tmp_path, inv)
    text = files[ADOPTED_TFVARS].read_text(encoding="utf-8")
    assert "  # infrastructure_admin: NOT granted here" in text
    assert "# WARNING: skipped, the spec cannot hold this user: a,b:" in text
    for path in files.values():
        assert path.read_text(encoding="utf-8").count("a,b") == 1  # only in the warning, never as a user


def test_descriptions_are_cleaned_to_what_aws_accepts(iam, sts):
    assert clean_description("Alice - Platform Engineer (promoted), EU") == "Alice - Platform Engineer promoted EU"
    assert clean_description(EVERY_ALLOWED) == EVERY_ALLOWED
    assert clean_description("x" * 300) == "x" * 256
    iam.create_user(UserName="carol", Tags=[{"Key": "Description", "Value": "Carol"}])
    inv = read_inventory(iam, sts)
    inv.users["carol"]["Tags"] = [{"Key": "Description", "Value": "Carol (old tag), {kept?}"}]  # as moto would keep it
    adoption = adopt(inv)
    assert adoption.iam_users["carol"]["description"] == "Carol old tag kept"
    assert "Description tag cleaned" in adoption.notes["carol"][0]


# --- grant settings: group mode and MFA ------------------------------------------------------------
GROUP = GrantSettings(grant_via="group", role_groups={"admin": "Admins"})
MFA = GrantSettings(require_mfa=frozenset({"admin", "infrastructure_admin"}), mfa_max_age_seconds=900)
GROUP_MFA = GrantSettings(grant_via="group", require_mfa=frozenset({"data_engineer"}))
SETTINGS = {"group": GROUP, "mfa": MFA, "group+mfa": GROUP_MFA}
PLAIN = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def example_with(settings: GrantSettings):
    return load_spec(EXAMPLE["iam_users"], roles=EXAMPLE["roles"], settings=settings)


def parse_all(files: dict[str, Path]) -> dict[str, dict]:
    """Every .tf/.tfvars file through python-hcl2, quotes stripped, block marks and comments dropped."""
    return {
        name: hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=PLAIN)
        for name, path in files.items()
        if name.endswith((".tf", ".tfvars"))
    }


def blocks_by_type(blocks: list[dict]) -> dict[str, dict]:
    """[{type: {name: body}}, ...] -> {"type.name": body}."""
    return {f"{kind}.{name}": body for block in blocks for kind, named in block.items() for name, body in named.items()}


def rendered_document(module: dict, account_id: str, key: str) -> dict:
    """The JSON aws_iam_policy_document renders for role `key`, worked out from the parsed module.

    Terraform writes a one-element list as its element (`Action`, `Resource`, each condition's value).
    """
    local = module["locals"][0]
    statement = blocks_by_type(module["data"])["aws_iam_policy_document.assume_role"]["statement"][0]
    resource = statement["resources"][0].replace("${data.aws_caller_identity.current.account_id}", account_id)
    resource = resource.replace("${data.aws_partition.current.partition}", "aws")
    out = {"Effect": statement["effect"], "Action": statement["actions"][0]}
    out["Resource"] = resource.replace("${each.value}", local["assumable_roles"][key])
    dynamic = statement.get("dynamic", [])
    if dynamic:
        condition = dynamic[0]["condition"]
        assert condition["for_each"] == "${contains(local.mfa_roles, each.key) ? local.mfa_conditions : []}"
        assert condition["content"][0] == {
            "test": "${condition.value.test}",
            "variable": "${condition.value.variable}",
            "values": "${condition.value.values}",
        }
        if key in local["mfa_roles"]:
            out["Condition"] = {}
            for c in local["mfa_conditions"]:
                out["Condition"].setdefault(c["test"], {})[c["variable"]] = c["values"][0]
    return {"Version": "2012-10-17", "Statement": [out]}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_file_parses_under_each_setting(name, tmp_path):
    spec = example_with(SETTINGS[name])
    files = write_terraform(tmp_path, spec, None)
    parsed = parse_all(files)
    assert set(parsed) == {TFVARS_FILE, IMPORTS_FILE, "versions.tf", VARIABLES_FILE, MODULE_FILE, OUTPUTS_FILE}
    # variables.tf and the tfvars do not depend on the settings
    for fixed in (VARIABLES_FILE, TFVARS_FILE, "versions.tf"):
        assert files[fixed].read_bytes() == (GOLDEN.GOLDEN / "example_no_inventory" / fixed).read_bytes()
    resources = blocks_by_type(parsed[MODULE_FILE]["resource"])
    outputs = {next(iter(o)) for o in parsed[OUTPUTS_FILE]["output"]}
    if spec.settings.via_group:
        assert "aws_iam_user_policy_attachment.user_roles" not in resources
        assert outputs == {"iam_user_arns", "assume_role_policy_arns", "role_group_arns"}
    else:
        assert "aws_iam_group.role_groups" not in resources
        assert outputs == {"iam_user_arns", "assume_role_policy_arns"}


def test_user_mode_ignores_group_names_and_stays_byte_identical(tmp_path):
    spec = example_with(GrantSettings(grant_via="user", role_groups={"admin": "Admins"}))
    write_terraform(tmp_path, spec, None)
    assert GOLDEN.differences(tmp_path, GOLDEN.GOLDEN / "example_no_inventory") == []


def test_group_mode_module_holds_groups_their_policies_and_memberships(tmp_path):
    spec = example_with(GROUP)
    parsed = parse_all(write_terraform(tmp_path, spec, None))
    module = parsed[MODULE_FILE]
    local = module["locals"][0]
    assert (
        local["role_groups"]
        == spec.groups()
        == {
            "admin": "Admins",
            "data_engineer": "DataEngineerRoleUsers",
            "infrastructure_admin": "InfrastructureAdminRoleUsers",
        }
    )
    assert "user_role_attachments" not in local and "mfa_roles" not in local
    assert local["user_roles"] == (
        "${{for user_name, user in var.iam_users : user_name => user.roles if length(user.roles) > 0}}"
    )
    resources = blocks_by_type(module["resource"])
    assert resources["aws_iam_group.role_groups"] == {"for_each": "${local.role_groups}", "name": "${each.value}"}
    assert resources["aws_iam_group_policy_attachment.role_groups"] == {
        "for_each": "${local.role_groups}",
        "group": "${aws_iam_group.role_groups[each.key].name}",
        "policy_arn": "${aws_iam_policy.assume_role[each.key].arn}",
    }
    assert resources["aws_iam_user_group_membership.users"] == {
        "for_each": "${local.user_roles}",
        "user": "${aws_iam_user.users[each.key].name}",
        "groups": "${[for role_key in each.value : aws_iam_group.role_groups[role_key].name]}",
    }
    # users, tags and policies are the user mode's
    user_mode = blocks_by_type(
        parse_all(write_terraform(tmp_path / "user", example_spec(), None))[MODULE_FILE]["resource"]
    )
    for address in ("aws_iam_user.users", "aws_iam_policy.assume_role"):
        assert resources[address] == user_mode[address]
    assert "dynamic" not in blocks_by_type(module["data"])["aws_iam_policy_document.assume_role"]["statement"][0]


def test_group_mode_state_list_is_terraforms_order(tmp_path):
    spec = example_with(GROUP)
    lines = write_terraform(tmp_path, spec, None)[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    keys = list(DEFAULT_ROLES)
    assert lines == [
        "data.aws_caller_identity.current",
        *(f'data.aws_iam_policy_document.assume_role["{k}"]' for k in keys),
        "data.aws_partition.current",
        *(f'aws_iam_group.role_groups["{k}"]' for k in keys),
        *(f'aws_iam_group_policy_attachment.role_groups["{k}"]' for k in keys),
        *(f'aws_iam_policy.assume_role["{k}"]' for k in keys),
        'aws_iam_user.users["alice@example.com"]',
        'aws_iam_user.users["bob@example.com"]',
        'aws_iam_user.users["your-username"]',
        'aws_iam_user_group_membership.users["alice@example.com"]',
        'aws_iam_user_group_membership.users["bob@example.com"]',
        'aws_iam_user_group_membership.users["your-username"]',
    ]
    # a user granted no role is in no group: no membership for her
    spec = load_spec({"eve": {"description": "", "roles": []}, "ann": {"roles": ["admin"]}}, settings=GROUP)
    assert [a for a in expected_state_list(spec) if "membership" in a] == ['aws_iam_user_group_membership.users["ann"]']


@pytest.mark.parametrize("settings", [MFA, GROUP_MFA, GrantSettings(require_mfa=frozenset(DEFAULT_ROLES))])
def test_mfa_conditions_render_the_runbooks_policy_document(settings, tmp_path):
    spec = example_with(settings)
    module = parse_all(write_terraform(tmp_path, spec, None))[MODULE_FILE]
    local = module["locals"][0]
    assert local["mfa_roles"] == [k for k in spec.roles if settings.mfa(k)]
    wanted = mfa_condition(settings.mfa_max_age_seconds)
    assert {c["test"]: {c["variable"]: c["values"][0]} for c in local["mfa_conditions"]} == wanted
    assert ("NumericLessThan" in wanted) == (settings.mfa_max_age_seconds is not None)
    for key, role in spec.roles.items():
        expected = policy_document(
            "123456789012", role, mfa=settings.mfa(key), mfa_max_age_seconds=settings.mfa_max_age_seconds
        )
        assert rendered_document(module, "123456789012", key) == expected
    admin = rendered_document(module, "123456789012", "admin")["Statement"][0]
    assert ("Condition" in admin) == settings.mfa("admin")


def test_mfa_in_user_mode_changes_only_the_policy_document(tmp_path):
    files = write_terraform(tmp_path, example_with(MFA), None)
    golden = GOLDEN.GOLDEN / "example_no_inventory"
    assert GOLDEN.differences(tmp_path, golden) == [MODULE_FILE]
    added = set(files[MODULE_FILE].read_text(encoding="utf-8").splitlines()) - set(
        (golden / MODULE_FILE).read_text(encoding="utf-8").splitlines()
    )
    assert any("mfa_roles" in line for line in added) and any('dynamic "condition"' in line for line in added)
    assert not any("group" in line for line in added)


# --- group mode against the embedded account --------------------------------------------------------
def group_account(iam, sts, spec):
    """The legacy account converged by the runbook's own group-mode plan, as the real-Terraform check does."""
    return TF_CHECK.prepared_account(iam, sts, spec, "converged")


def exists(iam, block: ImportBlock, spec) -> bool:
    """Does the import id name something that is in the account, as the address means it?"""
    kind = block.to.split(".", 1)[0]
    if kind == "aws_iam_policy":
        return iam.get_policy(PolicyArn=block.id)["Policy"]["Arn"] == block.id
    if kind == "aws_iam_group":
        return iam.get_group(GroupName=block.id)["Group"]["GroupName"] == block.id
    if kind == "aws_iam_user":
        return iam.get_user(UserName=block.id)["User"]["UserName"] == block.id
    if kind == "aws_iam_group_policy_attachment":
        group, arn = block.id.split("/", 1)
        return arn in {p["PolicyArn"] for p in iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]}
    if kind == "aws_iam_user_group_membership":
        user, *groups = block.id.split("/")
        return set(groups) <= {g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]}
    raise AssertionError(f"unexpected import {block}")


@pytest.mark.parametrize("settings", [GROUP, GROUP_MFA])
def test_group_mode_imports_name_what_exists(iam, sts, settings, tmp_path):
    spec = example_with(settings)
    inv = group_account(iam, sts, spec)
    files = write_terraform(tmp_path, spec, inv)
    blocks = parsed_imports(files[IMPORTS_FILE])
    assert blocks == import_blocks(spec, inv)
    state = files[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    assert sorted(b.to for b in blocks) == sorted(a for a in state if not a.startswith("data."))
    assert all(exists(iam, b, spec) for b in blocks)
    by_address = {b.to: b.id for b in blocks}
    assert by_address['aws_iam_group.role_groups["admin"]'] == spec.groups()["admin"]
    policy = iam.get_policy(PolicyArn=by_address['aws_iam_policy.assume_role["admin"]'])["Policy"]
    assert (
        by_address['aws_iam_group_policy_attachment.role_groups["admin"]']
        == f"{spec.groups()['admin']}/{policy['Arn']}"
    )
    groups = spec.groups()
    assert by_address['aws_iam_user_group_membership.users["alice@example.com"]'] == "/".join(
        ["alice@example.com", groups["data_engineer"], groups["infrastructure_admin"]]
    )
    # entities first, then what joins them
    kinds = [b.to.split(".")[0] for b in blocks]
    assert kinds.index("aws_iam_user_group_membership") > kinds.index("aws_iam_user") > kinds.index("aws_iam_group")


def test_group_mode_imports_only_the_memberships_that_exist(iam, sts, tmp_path):
    spec = example_with(GROUP)
    group_account(iam, sts, spec)
    groups = spec.groups()
    iam.remove_user_from_group(GroupName=groups["infrastructure_admin"], UserName="alice@example.com")
    iam.remove_user_from_group(GroupName=groups["data_engineer"], UserName="bob@example.com")
    iam.detach_group_policy(GroupName=groups["admin"], PolicyArn=iam.list_attached_group_policies(
        GroupName=groups["admin"])["AttachedPolicies"][0]["PolicyArn"])  # fmt: skip
    iam.add_user_to_group(GroupName=groups["admin"], UserName="bob@example.com")  # not granted: not imported
    by_address = {b.to: b.id for b in import_blocks(spec, read_inventory(iam, sts))}
    assert by_address['aws_iam_user_group_membership.users["alice@example.com"]'] == (
        f"alice@example.com/{groups['data_engineer']}"
    )
    assert 'aws_iam_user_group_membership.users["bob@example.com"]' not in by_address
    assert 'aws_iam_group_policy_attachment.role_groups["admin"]' not in by_address
    assert 'aws_iam_group.role_groups["admin"]' in by_address


def test_group_names_are_case_insensitive_in_imports(iam, sts):
    seed.seed_roles(iam)
    iam.create_group(GroupName="adminroleusers")
    iam.create_user(UserName="ann")
    iam.add_user_to_group(GroupName="adminroleusers", UserName="ann")
    spec = load_spec({"Ann": {"description": "", "roles": ["admin"]}}, settings=GrantSettings(grant_via="group"))
    by_address = {b.to: b.id for b in import_blocks(spec, read_inventory(iam, sts))}
    assert by_address['aws_iam_group.role_groups["admin"]'] == "adminroleusers"
    assert by_address['aws_iam_user.users["Ann"]'] == "ann"
    assert by_address['aws_iam_user_group_membership.users["Ann"]'] == "ann/adminroleusers"
