"""Check the Terraform handoff with the real Terraform, against the embedded AWS holding the converged account.

    python bench/terraform_check.py [--plugin-dir /opt/tf-plugins] [--keep DIR] [--only NAME ...]

Not part of pytest: a user's fresh machine may have neither Terraform nor a local copy of its AWS provider.
For each scenario it starts from an empty strict EmbeddedAws on 127.0.0.1, prepares the account, writes the
handoff with `terraform.write_terraform`, and runs, in a temporary folder:

- `terraform fmt -check` on the handoff as written;
- `terraform init -plugin-dir=...` and `terraform validate`;
- `terraform plan`: Terraform must read the tfvars as the spec; every managed resource must be imported,
  with 0 to add and 0 to destroy, and a change is allowed only in Terraform-only settings (`force_destroy`
  on imported users);
- `terraform apply` of that plan, which must make no mutating call to AWS;
- `terraform state list`, which must equal expected_state_list.txt, and the policy documents (the ones
  Terraform renders and the ones in AWS), which must mean the same as names.policy_document;
- a second `terraform plan`, which must find no changes.

Scenarios: parameters/example.yaml with grant_via user and group, each with and without require_mfa, on
the converged account: the legacy account, then the runbook's own plan + apply in that mode. Two more: a
control whose account lacks the MFA condition, which must fail exactly the "Terraform-only changes" and
"no AWS change" checks; and a fresh account (roles only) with custom roles and
odd names in group mode with MFA, where Terraform creates everything and the runbook's import_blocks must
then find every managed address. And "identity center": the example spec under grant_via: identity_center, its
policies and its whole Identity Center part made with boto3 (bench/center_account.py), where Terraform must
import everything, the state list must equal terraform_center.center_addresses, and no IAM user is written.

The provider block pointing at the server goes into the temporary copy only, never into the handoff.
Prints one line per scenario, then a table. Exit code 1 when a scenario is not as it must be.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import yaml

from iamrunbook.aws.center_sweep import read_center_state
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.names import policy_document
from iamrunbook.core.identity_center import IdentityCenterSettings
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import GrantSettings, Spec, load_spec
from iamrunbook.core.terraform import STATE_LIST_FILE, import_blocks, managed_addresses, write_terraform
from iamrunbook.core.terraform_center import center_addresses
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import ACCOUNT_ID, EmbeddedAws, seed

ROOT = Path(__file__).resolve().parents[1]


def _sibling(name: str):
    """A helper script beside this one (bench/ is no package), loaded by its path."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


center_account = _sibling("center_account")
EXAMPLE = yaml.safe_load((ROOT / "parameters" / "example.yaml").read_text(encoding="utf-8"))
MFA_ROLES = frozenset({"admin", "infrastructure_admin"})
MFA_MAX_AGE = 3600
#: Attributes Terraform holds that AWS does not: a change in them alone changes nothing in the account.
TERRAFORM_ONLY = {"force_destroy"}
TIMEOUT = 600


# --- the converged account --------------------------------------------------------------------------
def example_spec(grant_via: str = "user", mfa: bool = False) -> Spec:
    settings = GrantSettings(
        grant_via=grant_via,
        require_mfa=MFA_ROLES if mfa else frozenset(),
        mfa_max_age_seconds=MFA_MAX_AGE if mfa else None,
    )
    return load_spec(EXAMPLE["iam_users"], roles=EXAMPLE["roles"], settings=settings)


def temporary_spec(grant_via: str) -> Spec:
    """The example spec with one valid temporary grant (alice: admin for 4 h) and one expired (bob:
    infrastructure_admin, an hour ago): Terraform must keep the first and drop the second, as the runbook does."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    users = copy.deepcopy(EXAMPLE["iam_users"])
    users["alice@example.com"]["temporary"] = [{"role": "admin", "until": (now + timedelta(hours=4)).strftime(
        "%Y-%m-%dT%H:%M:00Z"), "reason": "INC-1234 restore"}]  # fmt: skip
    users["bob@example.com"]["temporary"] = [{"role": "infrastructure_admin", "until": (now - timedelta(hours=1))
                                              .strftime("%Y-%m-%dT%H:%M:00Z"), "reason": "INC-1200 done"}]  # fmt: skip
    return load_spec(users, roles=EXAMPLE["roles"], settings=GrantSettings(grant_via=grant_via), now=now)


def custom_spec() -> Spec:
    """Roles other than the default, odd user names, descriptions with non-printing separators, a user
    granted nothing; group mode with MFA on one role (no age limit).

    No `+` in role names here: moto returns policy documents without the URL-encoding AWS applies, and the
    provider's URL-decoding then reads `+` as a space (boto3 does not), so such a role could not converge.
    """
    roles = {"ops": "Ops.Role-1", "read_only": "ReadOnly.Role=2@x"}
    users = {
        "a+b=c@d.e": {"description": "Zoë 中文 \u00a0\u2028\u2029 ² _ . : / = + - @", "roles": ["ops", "read_only"]},
        "UPPER_lower-09": {"description": "", "roles": []},
        "@": {"description": "Ω", "roles": ["read_only"]},
    }
    settings = GrantSettings(grant_via="group", role_groups={"ops": "Ops"}, require_mfa=frozenset({"ops"}))
    return load_spec(users, roles=roles, settings=settings)


def center_spec() -> Spec:
    """The example spec under grant_via: identity_center: one role's group renamed, a 2-hour session."""
    settings = GrantSettings(grant_via="identity_center", role_groups={"data_engineer": "DataEngineers"},
                             identity_center=IdentityCenterSettings(session_duration="PT2H", accounts=(ACCOUNT_ID,)))
    return load_spec(EXAMPLE["iam_users"], roles=EXAMPLE["roles"], settings=settings)


def wanted_document(spec: Spec, account_id: str, key: str) -> dict:
    """names.policy_document for the role, with MFA when the spec requires it."""
    mfa = spec.settings.mfa(key)
    max_age = spec.settings.mfa_max_age_seconds if mfa else None
    return policy_document(account_id, spec.roles[key], mfa=mfa, mfa_max_age_seconds=max_age)


def prepared_account(iam, sts, spec: Spec, account: str) -> Inventory:
    """The account a scenario starts from; the inventory read afterwards.

    "converged": what the runbook leaves, in either grant mode: the legacy account, then the runbook's
    own plan applied (migrating your-username). "control": converged for the same spec without MFA, so the
    MFA condition the spec asks for is missing. "fresh": the roles only, Terraform creates the rest.
    "center": the roles and their policies (check_scenario makes the Identity Center part); "center fresh":
    the roles only, Terraform creates the policies and the Identity Center part.
    """
    if account in ("fresh", "center fresh"):
        seed.seed_roles(iam, spec.roles)
        return read_inventory(iam, sts)
    if account == "center":
        return center_account.prepare_policies(iam, sts, spec)
    seed.seed_legacy_account(iam, spec.roles)
    target = spec
    if account == "control":
        target = replace(spec, settings=replace(spec.settings, require_mfa=frozenset(), mfa_max_age_seconds=None))
    apply_plan(iam, make_plan(target, read_inventory(iam, sts)), allow_without_mfa_device=True)
    return read_inventory(iam, sts)


# --- running Terraform ------------------------------------------------------------------------------
def provider_block(server: EmbeddedAws) -> str:
    """The provider pointed at the embedded server: written next to a copy of the handoff, never into it."""
    env = server.env()
    return f"""provider "aws" {{
  region                      = "{env["AWS_REGION"]}"
  access_key                  = "{env["AWS_ACCESS_KEY_ID"]}"
  secret_key                  = "{env["AWS_SECRET_ACCESS_KEY"]}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true

  endpoints {{
    iam = "{server.endpoint}"
    sts = "{server.endpoint}"
  }}
}}
"""


def terraform_env(server: EmbeddedAws, home: Path) -> dict[str, str]:
    """Only the server's fake credentials, no network checks, no user's CLI configuration."""
    cli_config = home / "terraformrc"
    cli_config.write_text("", encoding="utf-8")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        **server.env(),
    }


@dataclass
class Run:
    """One scenario's folders: the handoff as written, and the copy (plus the provider block) Terraform runs in."""

    handoff: Path
    work: Path
    env: dict[str, str]
    #: terraform subcommand -> seconds spent in it
    seconds: dict[str, float] = field(default_factory=dict)

    def terraform(
        self, *args: str, ok: tuple[int, ...] = (0,), where: Path | None = None
    ) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run(
            ["terraform", f"-chdir={where or self.work}", *args, "-no-color"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        self.seconds[args[0]] = self.seconds.get(args[0], 0.0) + time.monotonic() - started
        if done.returncode not in ok:
            raise RuntimeError(f"terraform {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def json(self, *args: str) -> dict:
        return json.loads(self.terraform("show", "-json", *args).stdout)


def changed_attributes(change: dict) -> set[str]:
    """Top-level attributes whose planned value differs from the imported one (unknowns count as changed)."""
    before, after = change.get("before") or {}, change.get("after") or {}
    unknown = {k for k, v in (change.get("after_unknown") or {}).items() if v}
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)} | unknown


@dataclass
class PlanCounts:
    imports: int = 0
    add: int = 0
    change: int = 0
    destroy: int = 0
    #: address -> attributes changed beyond the Terraform-only ones
    real_changes: dict[str, list[str]] = field(default_factory=dict)
    imported: list[str] = field(default_factory=list)


def read_plan(plan_json: dict) -> PlanCounts:
    counts = PlanCounts()
    for rc in plan_json.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        change, actions = rc["change"], rc["change"]["actions"]
        if change.get("importing"):
            counts.imports += 1
            counts.imported.append(rc["address"])
        counts.add += "create" in actions
        counts.destroy += "delete" in actions
        if "update" in actions:
            counts.change += 1
            beyond = sorted(changed_attributes(change) - TERRAFORM_ONLY)
            if beyond:
                counts.real_changes[rc["address"]] = beyond
    return counts


def state_documents(state_json: dict, prefix: str, attribute: str) -> dict[str, dict]:
    """role key -> the JSON document in `attribute` of the resources at `prefix[key]` in Terraform's state."""
    resources = state_json.get("values", {}).get("root_module", {}).get("resources", [])
    return {r["index"]: json.loads(r["values"][attribute]) for r in resources if r["address"].startswith(prefix)}


def same_document(a: dict, b: dict) -> bool:
    """Equal as IAM reads them: a one-element list and its element are the same value."""

    def norm(value):
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k != "Sid" or v}
        if isinstance(value, list):
            return norm(value[0]) if len(value) == 1 else [norm(v) for v in value]
        return value

    return norm(a) == norm(b)


# --- one scenario -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Spec
    #: "converged", "control" or "fresh" (see prepared_account)
    account: str = "converged"


SCENARIOS = [
    Scenario("user", example_spec("user")),
    Scenario("user + mfa", example_spec("user", mfa=True)),
    Scenario("group", example_spec("group")),
    Scenario("group + mfa", example_spec("group", mfa=True)),
    Scenario("control: mfa missing", example_spec("user", mfa=True), account="control"),
    Scenario("fresh: custom group + mfa", custom_spec(), account="fresh"),
    Scenario("user + temporary", temporary_spec("user")),
    Scenario("group + temporary", temporary_spec("group")),
    Scenario("identity center", center_spec(), account="center"),
    Scenario("identity center: fresh", center_spec(), account="center fresh"),
]
#: what the control must fail, and only that: Terraform would add the MFA condition in AWS
CONTROL_FAILS = frozenset({"plan: Terraform-only changes", "apply: no AWS change"})


@dataclass
class Result:
    scenario: str
    #: the checks a control scenario must fail (and no others)
    must_fail: frozenset[str] = frozenset()
    managed: int = 0
    plan: PlanCounts = field(default_factory=PlanCounts)
    checks: dict[str, bool] = field(default_factory=dict)
    apply_mutations: int = -1
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> set[str]:
        return {k for k, v in self.checks.items() if not v}

    @property
    def ok(self) -> bool:
        return bool(self.checks) and self.failed == self.must_fail

    def verdict(self) -> str:
        if not self.ok:
            return "FAIL: " + ", ".join(sorted(self.failed ^ self.must_fail))
        return "fails as it must: " + ", ".join(sorted(self.must_fail)) if self.must_fail else "all pass"


def check_plan(run: Run, spec: Spec, fresh: bool, expected: list[str], result: Result) -> None:
    """fmt, validate and the first plan: imports only (or, on a fresh account, creates only)."""
    checks = result.checks
    checks["fmt"] = run.terraform("fmt", "-check", ok=(0, 3), where=run.handoff).returncode == 0
    checks["validate"] = run.terraform("validate").returncode == 0
    run.terraform("plan", "-input=false", "-out=tfplan")
    plan_json = run.json("tfplan")
    result.plan = read_plan(plan_json)
    checks["tfvars read as the spec"] = plan_json["variables"]["iam_users"]["value"] == spec.to_mapping()
    managed = sorted(a for a in expected if not a.startswith("data."))
    if fresh:
        checks["plan: creates everything"] = result.plan.add == len(managed) and not result.plan.imports
        checks["plan: 0 change, 0 destroy"] = result.plan.change == 0 and result.plan.destroy == 0
        return
    checks["plan: all imported"] = sorted(result.plan.imported) == managed
    checks["plan: 0 add, 0 destroy"] = result.plan.add == 0 and result.plan.destroy == 0
    checks["plan: Terraform-only changes"] = not result.plan.real_changes
    result.notes += [f"{a}: {', '.join(v)}" for a, v in result.plan.real_changes.items()]


def check_apply(run: Run, server: EmbeddedAws, spec: Spec, fresh: bool, expected: list[str], result: Result) -> None:
    """apply without touching AWS, the state Terraform keeps, and a second plan with nothing to do."""
    checks = result.checks
    server.clear_calls()
    run.terraform("apply", "-input=false", "tfplan")
    result.apply_mutations = len(server.mutating_calls())
    if not fresh:
        checks["apply: no AWS change"] = result.apply_mutations == 0
    elif spec.settings.identity_center is None:  # what Terraform made, the runbook finds (IC mode: check_center)
        found = import_blocks(spec, read_inventory(server.client("iam"), server.client("sts")))
        checks["runbook finds what Terraform made"] = sorted(b.to for b in found) == sorted(managed_addresses(spec))
    listed = run.terraform("state", "list").stdout.splitlines()
    checks["state list"] = listed == expected
    if listed != expected:
        result.notes.append(f"state list: {sorted(set(listed) ^ set(expected))}")
    state = run.json()
    for label, prefix, attribute in (
        ("documents rendered", "data.aws_iam_policy_document.assume_role[", "json"),
        ("documents in AWS", "aws_iam_policy.assume_role[", "policy"),
    ):
        documents = state_documents(state, prefix, attribute)
        checks[label] = set(documents) == set(spec.roles) and all(
            same_document(doc, wanted_document(spec, ACCOUNT_ID, key)) for key, doc in documents.items()
        )
    checks["second plan: no changes"] = run.terraform("plan", "-detailed-exitcode", ok=(0, 2)).returncode == 0


def read_center(server: EmbeddedAws):
    """The instance as the runbook reads it (aws/center_sweep.py), membership ids included."""
    del server  # main() points the default credential chain at it
    return read_center_state(boto3.Session(), IdentityCenterSettings(), ACCOUNT_ID, accounts=[ACCOUNT_ID])


def check_center(run: Run, server: EmbeddedAws, spec: Spec, expected: list[str], result: Result) -> None:
    """Identity Center mode: no IAM user written, and the state list is what the runbook reads as existing."""
    result.checks["no aws_iam_user"] = not any("aws_iam_user" in p.read_text(encoding="utf-8")
                                               for p in run.handoff.iterdir())  # fmt: skip
    inventory = read_inventory(server.client("iam"), server.client("sts"))
    found = center_addresses(spec, inventory, read_center(server))
    result.checks["state list = center_addresses"] = found == sorted(a for a in expected if not a.startswith("data."))
    if not result.checks["state list = center_addresses"]:
        result.notes.append(f"center_addresses: {sorted(set(found) ^ set(expected))}")


def check_scenario(server: EmbeddedAws, scenario: Scenario, tmp: Path, plugin_dir: str) -> Result:
    """Converge the account, write the handoff, and run Terraform's checks on it."""
    started = time.monotonic()
    result = Result(scenario.name, must_fail=CONTROL_FAILS if scenario.account == "control" else frozenset())
    server.reset()
    spec, fresh = scenario.spec, scenario.account in ("fresh", "center fresh")
    inventory = prepared_account(server.client("iam"), server.client("sts"), spec, scenario.account)
    center = None
    if scenario.account == "center":
        center_account.prepare_center(server.client("sso-admin"), server.client("identitystore"), spec, [ACCOUNT_ID])
    if scenario.account.startswith("center"):
        center = read_center(server)
    run = Run(tmp / "handoff", tmp / "work", terraform_env(server, tmp))
    files = write_terraform(run.handoff, spec, inventory, center=center)
    shutil.copytree(run.handoff, run.work)
    (run.work / "zz_embedded_aws_provider.tf").write_text(provider_block(server), encoding="utf-8")
    expected = files[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    result.managed = sum(not a.startswith("data.") for a in expected)
    run.terraform("init", f"-plugin-dir={plugin_dir}", "-input=false")
    check_plan(run, spec, fresh, expected, result)
    check_apply(run, server, spec, fresh, expected, result)
    if center is not None:
        check_center(run, server, spec, expected, result)
    result.seconds = time.monotonic() - started
    result.notes.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    return result


# --- the table --------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    head = ["scenario", "managed", "import", "add", "change", "destroy", "apply calls", "checks", "s"]
    rows = [
        [
            r.scenario,
            str(r.managed),
            str(r.plan.imports),
            str(r.plan.add),
            str(r.plan.change),
            str(r.plan.destroy),
            str(r.apply_mutations),
            r.verdict(),
            f"{r.seconds:.1f}",
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugin-dir", default="/opt/tf-plugins", help="local copy of the AWS provider")
    parser.add_argument("--keep", type=Path, help="keep each scenario's folders under this folder")
    parser.add_argument("--only", nargs="*", help="run only the scenarios of these names")
    args = parser.parse_args(argv)
    if shutil.which("terraform") is None:
        print("terraform is not on PATH: nothing to check here", file=sys.stderr)
        return 2
    print(subprocess.run(["terraform", "version"], capture_output=True, text=True, check=False).stdout.split("\n")[0])
    results = []
    with EmbeddedAws(load_aws_managed_policies=False) as server:
        os.environ.update(server.env())  # seed.account_id_for uses the default credential chain
        for scenario in [s for s in SCENARIOS if not args.only or s.name in args.only]:
            with tempfile.TemporaryDirectory(prefix="tfcheck-") as tmp:
                result = check_scenario(server, scenario, Path(tmp), args.plugin_dir)
                if args.keep:
                    shutil.copytree(tmp, args.keep / scenario.name.replace(" ", "_"), dirs_exist_ok=True)
            results.append(result)
            print(f"{scenario.name}: {result.verdict()} ({result.seconds:.1f} s)", file=sys.stderr)
    print(table(results))
    for r in results:
        for note in r.notes:
            print(f"  {r.scenario}: {note}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
