"""`iamrunbook demo`: the whole runbook against an embedded AWS, so a newcomer sees it work with no account.

The embedded AWS is a moto server on 127.0.0.1 behind the same strict-AWS middleware the tests use, seeded
as an account looks after a typical manual setup. The demo then runs the real chain with papermill, exactly
as a scheduled job would, and tells what happened from the run folder's own files.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.base.exit_codes import EXIT_OK, EXIT_PENDING
from iamrunbook.base.shipped import shipped_dir
from iamrunbook.sandbox.seed import seed_demo_account
from iamrunbook.sandbox.server import EmbeddedAws

EXAMPLE_PARAMS = shipped_dir("parameters") / "example.yaml"

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


def _csv(path: Path) -> list[dict]:
    try:
        with path.open(encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def story(run_dir: Path) -> list[str]:
    """What the apply run did, told from the audit record it left behind (read through records.py)."""
    lines = []
    identity = records.read(run_dir, records.IDENTITY)
    lines.append(f"Ran as {identity.caller_arn} in account {identity.account_id}." if identity else "No identity.")
    users = _csv(run_dir / records.INVENTORY_USERS.name)
    if users:
        lines.append(f"01 found {len(users)} users:")
        for u in users:
            held = u.get("attached_policies") or "no policies"
            managed = "managed" if u.get("managed") == "True" else "not managed by iamrunbook"
            lines.append(f"     {u['user']}: {held} ({managed})")
    backup = records.read(run_dir, records.LEGACY_BACKUP, name="legacy_policy_backup.json")
    migration = records.read(run_dir, records.LEGACY_RESULT)
    if backup:
        lines.append(
            f"02 backed up {backup.policy_name} ({len(backup.versions)} version(s)) to legacy_policy_backup.json,"
        )
        attach = (
            sum(1 for s in migration.steps or [] if s.get("kind") in ("attach", "add_to_group")) if migration else 0
        )
        lines.append(
            f"   granted {attach} Assume*Policy policies BEFORE detaching it, then deleted it: nobody was locked out."
        )
    elif migration:
        lines.append(f"02 {migration.message or 'legacy migration done'}")
    plan = records.read(run_dir, records.PLAN)
    changes = list(plan.changes) if plan else []
    kinds = [c.kind for c in changes]
    imported = [c.user for c in changes if c.kind == "import_user"]
    created = [c.user for c in changes if c.kind == "create_user"]
    lines.append(
        f"03 imported {len(imported)} existing user(s) ({', '.join(imported) or '-'}), created {len(created)} "
        f"({', '.join(created) or '-'}), attached {kinds.count('attach')} policies, "
        f"created {kinds.count('create_policy')} policies; untagged users outside the spec were left alone."
    )
    verification = records.read(run_dir, records.VERIFICATION)
    addresses = verification.addresses if verification else []
    ok = "verified" if verification and verification.ok else "NOT verified"
    lines.append(f"04 {ok}: {len(addresses)} addresses, as `terraform state list` would print them:")
    lines += [f"     {a}" for a in addresses]
    return lines


#: the `iamrunbook` command's entry point (argv -> exit code); the CLI passes itself in, so the sandbox never
#: imports the CLI that starts it
Command = Callable[[list[str]], int]


def _command(main: Command, echo: Callable[[str], None], *argv: str) -> int:
    """Run one `iamrunbook` command exactly as an operator types it, and show it."""
    echo(f"\n== iamrunbook {' '.join(argv)} ==")
    sys.stdout.flush()
    return main(list(argv))


def _latest(out: Path, before: set[Path]) -> Path:
    """The run folder the last command made."""
    return max((p for p in out.iterdir() if p.is_dir() and p not in before), key=lambda p: p.name)


def run_demo(
    main: Command, out: str | Path = "runs", keep_running: bool = False, echo: Callable[[str], None] = print
) -> int:
    """Seed; plan; apply that reviewed plan; a plan-only drift check that must find nothing; audit verify.
    Exit code 0, or 1 when any step did not end as it should."""
    started = time.monotonic()
    out = Path(out)
    params = str(EXAMPLE_PARAMS)
    with stoppable(), EmbeddedAws(load_aws_managed_policies=False) as aws, pointed_at(aws):
        echo(f"Embedded AWS (moto, strict like AWS) on {aws.endpoint}: no real account is touched.")
        seed_demo_account(aws.client("iam", internal=True), history=aws)
        echo(
            "Seeded a hand-built account: three roles; your-username with a console password, MFA, an access key "
            "and the legacy AssumeRolesPolicy; alice@example.com with no policies; ci-bot with its own policy."
        )
        seen = set(out.iterdir()) if out.is_dir() else set()
        if _command(main, echo, "run", "-f", params, "--out", str(out)) != EXIT_PENDING:
            echo("the plan-only run should have found changes to make (exit 2)")
            return 1
        planned = _latest(out, seen)
        echo(f"A person reviews {planned}/plan.json (and the HTML beside it), then approves exactly that plan:")
        seen = set(out.iterdir())
        reviewed = ["--apply", "--plan", str(planned), "--approved-by", "demo"]
        if _command(main, echo, "run", "-f", params, *reviewed, "--out", str(out)) != EXIT_OK:
            echo("the reviewed apply failed; its record is in the newest run folder")
            return 1
        applied = _latest(out, seen)
        for line in story(applied):
            echo(line)
        drift = _command(main, echo, "run", "-f", params, "--out", str(out))
        echo(f"plan-only run exit code {drift} ({ {0: 'no drift', 2: 'DRIFT: changes pending'}.get(drift, 'error') })")
        intact = _command(main, echo, "audit", "verify", str(out))
        echo(f"demo finished in {time.monotonic() - started:.0f} s; the audit record is in {out.resolve()}")
        if keep_running:
            _serve_until_interrupted(aws, out, echo)
        return 0 if drift == EXIT_OK and intact == EXIT_OK else 1


@contextmanager
def stoppable() -> Iterator[None]:
    """SIGINT and SIGTERM both stop the demo as Ctrl-C does (KeyboardInterrupt), so every `with` unwinds: the
    server stops, the temporary folder goes. Explicit, because a shell starts a background job with SIGINT
    ignored and Python's default for SIGTERM is to die on the spot."""

    def stop(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def write_env(path: str | Path, aws: EmbeddedAws, accounts: Path, out: Path) -> Path:
    """FILE for a scheduler or a test fixture: the `AWS_*` settings of the embedded AWS, IAMRUNBOOK_ACCOUNTS
    and IAMRUNBOOK_OUT, one NAME=value a line (a shell's `set -a; . FILE`, or an env-file). Written whole at
    once (a reader polling for it never sees half), mode 0600."""
    settings = {**aws.env(), "IAMRUNBOOK_ACCOUNTS": str(accounts.resolve()), "IAMRUNBOOK_OUT": str(out.resolve())}
    target = Path(path).resolve()
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items()), encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(target)
    return target


def open_notebooks_lines(env: dict[str, str], out: Path) -> list[str]:
    """Shell lines that open the shipped notebooks against the embedded AWS from any folder: absolute paths,
    this Python's Jupyter, and the live runs in the demo's out folder (one chain with the demo's runs)."""
    exports = [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    exports.append(f"export IAMRUNBOOK_RUNS={shlex.quote(str(Path(out).resolve()))}")
    notebooks = shlex.quote(str(shipped_dir("notebooks").resolve()))
    return [*exports, f"{shlex.quote(sys.executable)} -m jupyter lab {notebooks}"]


def _serve_until_interrupted(aws: EmbeddedAws, out: Path, echo: Callable[[str], None]) -> None:
    echo("\nThe embedded AWS is still running. To open the notebooks against the same account, paste:")
    for line in open_notebooks_lines(aws.env(), out):
        echo(f"  {line}")
    echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopped")


def _serve_fixture(aws: EmbeddedAws, accounts: Path, out: Path, env_file, started: float, echo) -> int:
    """Write the settings, serve until SIGINT or SIGTERM, then remove the settings file (its endpoint is gone)."""
    written = write_env(env_file, aws, accounts, out)
    echo(f"Serving after {time.monotonic() - started:.1f} s; the settings are in {written}:")
    echo(written.read_text(encoding="utf-8").rstrip())
    try:
        _serve_until_interrupted(aws, out, echo)
    finally:
        with suppress(FileNotFoundError):
            written.unlink()
    return 0


# --- `iamrunbook demo --accounts`: the fan-out across an embedded Organization -------------------------
#: member name -> its own small spec (legacy: the example's)
MEMBER_SPECS = {
    "data": {
        "dana": {"description": "Dana - Data Engineer", "roles": ["data_engineer"]},
        "erin@example.com": {"description": "Erin - Analytics Lead", "roles": ["data_engineer", "admin"]},
    },
    "playground": {"pat@example.com": {"description": "Pat - Platform Engineer", "roles": ["infrastructure_admin"]}},
}
#: what each fan-out must end with, per member: the plan, the apply, the drift check
EXPECTED = (
    ("plan", {"legacy": 2, "data": 2, "playground": 1}),
    ("apply", {"legacy": 0, "data": 0, "playground": 0}),
    ("drift check", {"legacy": 0, "data": 0, "playground": 0}),
)


def write_org_project(folder: Path) -> Path:
    """accounts.yaml (`from_organization`, each member's parameters file by its name) and the parameters."""
    import yaml

    example = yaml.safe_load(EXAMPLE_PARAMS.read_text(encoding="utf-8"))
    specs = {"legacy": example["iam_users"], **MEMBER_SPECS}
    for name, spec in specs.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"iam_users": spec}, sort_keys=False), encoding="utf-8")
    accounts = folder / "accounts.yaml"
    accounts.write_text(
        "# Every ACTIVE account of the organization but the caller's own; each member's spec is <name>.yaml.\n"
        'defaults:\n  role_name: OrganizationAccountAccessRole\n  parameters_file: "{name}.yaml"\n'
        "accounts: from_organization\n",
        encoding="utf-8",
    )
    return accounts


def _fan_out(main: Command, echo: Callable[[str], None], out: Path, accounts: Path, *extra: str) -> dict[str, int]:
    """One `iamrunbook run --accounts` as an operator types it; member name -> exit code, from the summary."""
    seen = set(out.iterdir()) if out.is_dir() else set()
    _command(main, echo, "run", "--accounts", str(accounts), "--out", str(out), *extra)
    parent = _latest(out, seen)
    summary = json.loads((parent / records.ACCOUNTS_SUMMARY.name).read_text(encoding="utf-8"))
    return {row["name"]: row["exit_code"] for row in summary["accounts"]}


def run_accounts_demo(
    main: Command,
    out: str | Path = "runs",
    keep_running: bool = False,
    echo: Callable[[str], None] = print,
    env_file: str | Path | None = None,
) -> int:
    """An Organization of three members, each with its own spec: plan them all; fix by hand the one path no
    apply can; apply them all; a drift check that must find nothing; audit verify. 0, or 1 if a step ends
    otherwise than it should. With `env_file` it is a fixture instead: seed, write the settings to that file
    and serve at once, as seeded (two members with drift, one with a problem no apply fixes), until stopped."""
    from iamrunbook.sandbox.org import STRANGER, STRANGER_POLICY, seed_organization

    started = time.monotonic()
    out = Path(out)
    with (
        stoppable(),
        EmbeddedAws() as aws,
        pointed_at(aws),
        tempfile.TemporaryDirectory(prefix="iamrb-org-") as project,
    ):
        echo(f"Embedded AWS with an Organization on {aws.endpoint}: no real account is touched.")
        org = seed_organization(aws)
        accounts = write_org_project(Path(project))
        if env_file:
            return _serve_fixture(aws, accounts, out, env_file, started, echo)
        echo(f"Seeded a management account and {len(org['accounts'])} members. The accounts file:")
        echo(accounts.read_text(encoding="utf-8"))
        ended = []
        for step, (title, expected) in enumerate(EXPECTED):
            codes = _fan_out(main, echo, out, accounts, *(["--apply"] if title == "apply" else []))
            echo(f"{title}: {codes} (expected {expected})")
            ended.append(codes == expected)
            if step == 0:
                member = org["accounts"]["playground"]
                echo(f"No apply removes {STRANGER}'s own inline {STRANGER_POLICY} in playground: a person does.")
                iam = aws.client("iam", account_id=member["id"], internal=True)
                iam.delete_user_policy(UserName=STRANGER, PolicyName=STRANGER_POLICY)
        intact = _command(main, echo, "audit", "verify", str(out))
        echo(f"demo finished in {time.monotonic() - started:.0f} s; the audit record is in {out.resolve()}")
        if keep_running:
            _serve_until_interrupted(aws, out, echo)
        return 0 if all(ended) and intact == EXIT_OK else 1
