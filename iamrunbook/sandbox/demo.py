"""`iamrunbook demo`: the whole runbook against an embedded AWS, so a newcomer sees it work with no account.

The embedded AWS is a moto server on 127.0.0.1 behind the same strict-AWS middleware the tests use, seeded
as an account looks after a typical manual setup. The demo then runs the real chain with papermill, exactly
as a scheduled job would, and tells what happened from the run folder's own files.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import runner
from .seed import seed_demo_account
from .server import EmbeddedAws

EXAMPLE_PARAMS = runner.shipped_dir("parameters") / "example.yaml"

#: AWS settings a developer's shell may carry; the demo must never reach a real account through them.
_SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL_STS",
)


@contextmanager
def pointed_at(aws: EmbeddedAws) -> Iterator[None]:
    """Point this process and every kernel it starts at the embedded AWS; restore the environment after."""
    saved = dict(os.environ)
    for name in _SCRUB:
        os.environ.pop(name, None)
    os.environ.update(aws.env())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _csv(path: Path) -> list[dict]:
    try:
        with path.open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def story(run_dir: Path) -> list[str]:
    """What the apply run did, told from the audit record it left behind."""
    lines = []
    identity = _json(run_dir / "identity.json") or {}
    lines.append(f"Ran as {identity.get('caller_arn')} in account {identity.get('account_id')}.")
    users = _csv(run_dir / "inventory_users.csv")
    if users:
        lines.append(f"01 found {len(users)} users:")
        for u in users:
            held = u.get("attached_policies") or "no policies"
            managed = "managed" if u.get("managed") == "True" else "not managed by iamrunbook"
            lines.append(f"     {u['user']}: {held} ({managed})")
    backup = _json(run_dir / "legacy_policy_backup.json") or {}
    migration = _json(run_dir / "legacy_migration_result.json") or {}
    if backup:
        versions = len(backup.get("versions", []))
        lines.append(
            f"02 backed up {backup.get('policy_name', 'the legacy policy')} ({versions} version(s)) to "
            "legacy_policy_backup.json,"
        )
        steps = migration.get("steps", [])
        attach = sum(1 for s in steps if s.get("kind") == "attach")
        lines.append(
            f"   attached {attach} Assume*Policy policies BEFORE detaching it, then deleted it: nobody was locked out."
        )
    elif migration:
        lines.append(f"02 {migration.get('message', 'legacy migration done')}")
    plan = _json(run_dir / "plan.json") or {}
    changes = plan.get("changes", [])
    kinds = [c.get("kind") for c in changes]
    imported = [c.get("user") for c in changes if c.get("kind") == "import_user"]
    created = [c.get("user") for c in changes if c.get("kind") == "create_user"]
    lines.append(
        f"03 imported {len(imported)} existing user(s) ({', '.join(imported) or '-'}), created {len(created)} "
        f"({', '.join(created) or '-'}), attached {kinds.count('attach')} policies, "
        f"created {kinds.count('create_policy')} policies; untagged users outside the spec were left alone."
    )
    verification = _json(run_dir / "verification.json") or {}
    addresses = verification.get("addresses", [])
    ok = "verified" if verification.get("ok") else "NOT verified"
    lines.append(f"04 {ok}: {len(addresses)} addresses, as `terraform state list` would print them:")
    lines += [f"     {a}" for a in addresses]
    return lines


def run_demo(out: str | Path = "runs", keep_running: bool = False, echo: Callable[[str], None] = print) -> int:
    """Seed, apply the example spec, verify, then a plan-only run that must find no drift. Exit code 0/1."""
    started = time.monotonic()
    with EmbeddedAws(load_aws_managed_policies=False) as aws, pointed_at(aws):
        echo(f"Embedded AWS (moto, strict like AWS) on {aws.endpoint}: no real account is touched.")
        seeded = seed_demo_account(aws.client("iam", internal=True))
        echo(
            "Seeded a hand-built account: three roles; your-username with a console password, MFA, an access key "
            "and the legacy AssumeRolesPolicy; alice@example.com with no policies; ci-bot with its own policy."
        )
        if not seeded:
            echo("seeding failed")
            return 1
        params = runner.gather_params(EXAMPLE_PARAMS, apply=True)
        echo("\n== iamrunbook run -f parameters/example.yaml --apply ==")
        first = runner.run(params=params, out=out, params_file=EXAMPLE_PARAMS, echo=echo)
        if first.exit_code != runner.EXIT_OK:
            echo(f"the apply run failed (exit {first.exit_code}); its record is in {first.run_dir}")
            if first.failure:
                echo(first.failure.message())
            return 1
        for line in story(first.run_dir):
            echo(line)
        echo(f"The audit record (executed notebooks, HTML, run.json, side files) is in {first.run_dir}")

        echo("\n== iamrunbook run -f parameters/example.yaml  (plan only: what a scheduled drift check runs) ==")
        second = runner.run(params=runner.gather_params(EXAMPLE_PARAMS), out=out, params_file=EXAMPLE_PARAMS, echo=echo)
        verdict = {0: "no drift", 2: "DRIFT: changes pending"}.get(second.exit_code, "error")
        echo(f"plan-only run exit code {second.exit_code} ({verdict}); record in {second.run_dir}")
        echo(f"demo finished in {time.monotonic() - started:.0f} s")
        if keep_running:
            _serve_until_interrupted(aws, echo)
        return 0 if second.exit_code == runner.EXIT_OK else 1


def _serve_until_interrupted(aws: EmbeddedAws, echo: Callable[[str], None]) -> None:
    echo("\nThe embedded AWS is still running. To open the notebooks against the same account, paste:")
    for name, value in aws.env().items():
        echo(f"  export {name}={value}")
    echo("  jupyter lab notebooks/\nPress Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopped")
