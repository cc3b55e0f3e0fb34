"""Golden Terraform handoffs: the files the code wrote for a few specs, kept to catch any change in them.

    python tests/golden/generate.py            # (re)write tests/golden/terraform/<case>/
    python tests/golden/generate.py --check    # exit 1 when a written file differs from the kept one

The files were first made by the code before the handoff moved into templates (issue 15), so the
templates must render them byte for byte; tests/test_terraform.py renders every case and compares.
A case is a function `(iam, sts, out_dir)` that writes its files; the ones that need an account run
against the strict embedded AWS, reset before each case, so account ids and ARNs are the same every time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import Spec, UserSpec, load_spec
from iamrunbook.core.terraform import write_adopted, write_terraform
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import EmbeddedAws, seed

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "terraform"
EXAMPLE = yaml.safe_load((HERE.parents[1] / "parameters" / "example.yaml").read_text(encoding="utf-8"))

#: Letters, separators (including non-printing ones), numbers and the punctuation AWS allows in tags.
UNICODE_DESCRIPTION = "Zoë Ærø straße 中文 Ω \u00a0\u2009\u3000\u2028\u2029 ² ٣ Ⅻ ½ _ . : / = + - @"


def example_spec() -> Spec:
    return load_spec(EXAMPLE["iam_users"], roles=EXAMPLE["roles"])


def example_no_inventory(iam, sts, out: Path) -> None:
    """The example spec before anything exists: no import blocks."""
    write_terraform(out, example_spec(), None)


def example_after_apply(iam, sts, out: Path) -> None:
    """The example spec on the legacy account once the runbook applied it: every resource imported."""
    seed.seed_legacy_account(iam)
    spec = example_spec()
    apply_plan(iam, make_plan(spec, read_inventory(iam, sts)))
    write_terraform(out, spec, read_inventory(iam, sts))


def custom_roles(iam, sts, out: Path) -> None:
    """Roles other than the default and the odd (valid) names and descriptions a spec may hold."""
    roles = {"ops": "Ops.Role-1", "read_only": "ReadOnly+Role=2@x"}
    users = {
        "a+b=c@d.e": {"description": UNICODE_DESCRIPTION, "roles": ["ops", "read_only"]},
        "UPPER_lower-09": {"description": "", "roles": []},
        "@": {"description": "emoji-free: Ω", "roles": ["read_only"]},
    }
    write_terraform(out, load_spec(users, roles=roles), None)


def escaping(iam, sts, out: Path) -> None:
    """Strings validation would refuse, built as a Spec directly: the writer must escape what it gets."""
    roles = {"quote": 'Quote"Role', "tmpl": "Tmpl${var.x}%{if}Role", "slash": "Back\\slash\\nRole"}
    users = {
        'say"hi': UserSpec('say"hi', 'a "quoted" ${var.secret} %{ if true }x%{ endif } \\ back', ("quote",)),
        "line\u2028sep": UserSpec("line\u2028sep", "two\nlines\ttab\r😀 é 中", ("tmpl", "slash")),
        "$${already}": UserSpec("$${already}", "%%{already} $$ %% $", ()),
    }
    write_terraform(out, Spec(roles=roles, users=users), None)


def empty_spec(iam, sts, out: Path) -> None:
    """No users at all: the module still declares the roles' policies."""
    write_terraform(out, load_spec({}), None)


def adopted_demo(iam, sts, out: Path) -> None:
    """write_adopted on the demo account: notes, warnings and a cleaned spec for every user."""
    seed.seed_demo_account(iam)
    write_adopted(out, read_inventory(iam, sts))


def adopted_empty(iam, sts, out: Path) -> None:
    """write_adopted on an account with roles and no users: an empty spec, and a warning-free header."""
    seed.seed_roles(iam)
    write_adopted(out, read_inventory(iam, sts))


def adopted_warnings(iam, sts, out: Path) -> None:
    """write_adopted where roles are missing and a user name is one the spec cannot hold (`,`)."""
    seed.seed_roles(iam, {"admin": "AdminRole"})
    iam.create_user(UserName="a,b")
    iam.create_user(UserName="dave")
    write_adopted(out, read_inventory(iam, sts))


CASES: dict[str, Callable[..., None]] = {
    "example_no_inventory": example_no_inventory,
    "example_after_apply": example_after_apply,
    "custom_roles": custom_roles,
    "escaping": escaping,
    "empty_spec": empty_spec,
    "adopted_demo": adopted_demo,
    "adopted_empty": adopted_empty,
    "adopted_warnings": adopted_warnings,
}


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def differences(written: Path, kept: Path) -> list[str]:
    """Names of the files that differ between two case folders (a file missing on either side differs)."""
    if not kept.is_dir():
        return ["(no kept folder)"]
    names = {p.name for p in written.iterdir()} | {p.name for p in kept.iterdir()}
    return sorted(n for n in names if _bytes(written / n) != _bytes(kept / n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    failed = []
    with EmbeddedAws(load_aws_managed_policies=False) as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(server.env())  # seed.account_id_for uses the default credential chain
        for name, case in CASES.items():
            server.reset()
            out = Path(tmp) / name if args.check else GOLDEN / name
            out.mkdir(parents=True, exist_ok=True)
            case(server.client("iam"), server.client("sts"), out)
            if args.check:
                diff = differences(out, GOLDEN / name)
                failed += [f"{name}/{d}" for d in diff]
            print(f"{name}: {'differs: ' + ', '.join(diff) if args.check and diff else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
