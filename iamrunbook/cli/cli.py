"""The `iamrunbook` command: `run` executes the runbook notebooks headless, `demo` runs it against an
embedded AWS, `audit` checks and lists the records, `permissions` prints the runner's policy, `grant` and
`revoke` edit a temporary grant in the spec and run. Thin on purpose: parsing and printing here, the work
in runner.py, grant.py, planfile.py, audit.py, archive.py and sandbox/demo.py."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.base.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_PENDING, EXIT_TRANSIENT
from iamrunbook.cli import scheduler
from iamrunbook.cli.grant import add_parsers as add_grant_parsers
from iamrunbook.cli.runner import CHAIN, RunResult, gather_params, run

MAX_MESSAGE_LINES = 40
LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iamrunbook", description="Manage the IAM users of an AWS account with runbook notebooks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(commands)
    scheduler.add_parser(commands)
    demo_cmd = commands.add_parser("demo", help="run the runbook against an embedded AWS on 127.0.0.1")
    demo_cmd.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs/)")
    demo_cmd.add_argument(
        "--keep-running", action="store_true", help="keep the embedded AWS serving after the run, until Ctrl-C"
    )
    demo_cmd.add_argument(
        "--accounts", action="store_true", help="the fan-out: an embedded Organization, each member its own spec"
    )
    demo_cmd.add_argument("--env", metavar="FILE", help="with --accounts --keep-running: serve at once as a fixture "
                          "and write AWS_*, IAMRUNBOOK_ACCOUNTS, IAMRUNBOOK_OUT to FILE")  # fmt: skip
    demo_cmd.set_defaults(handler=cmd_demo)
    _audit_parser(commands)
    add_grant_parsers(commands, {"grant": cmd_edit_and_run, "revoke": cmd_edit_and_run})
    perm_cmd = commands.add_parser(
        "permissions",
        help="print the IAM policy a runner role needs (plan-only by default)",
        description="Print the least-privilege identity policy for the identity that runs the runbook, "
        "built from the actions each step declares.",
    )
    perm_cmd.add_argument("-f", "--parameters", metavar="PARAMS.yaml", help="the parameters the runs use")
    perm_cmd.add_argument("--apply", action="store_true", help="include the write actions an apply run needs")
    perm_cmd.add_argument("--archive", metavar="s3://BUCKET/PREFIX", help="the S3 actions of --archive, on that prefix")
    perm_cmd.add_argument("--account-id", help="the account the runner works in (default: expected_account_id)")
    perm_cmd.add_argument("--format", choices=("json", "terraform"), default="json", help="default json")
    perm_cmd.add_argument("--accounts", metavar="ACCOUNTS.yaml", help="print the fan-out caller's policy instead")
    perm_cmd.add_argument("--security-hub-import", action="store_true", help="include what security_hub_import sends")
    perm_cmd.set_defaults(handler=cmd_permissions)
    return parser


def _archive_options(cmd: argparse.ArgumentParser) -> None:
    retention = "days of Object Lock retention, when the bucket has Object Lock (default 400)"
    cmd.add_argument("--retention-days", type=int, default=400, metavar="N", help=retention)
    cmd.add_argument(
        "--lock-mode", choices=LOCK_MODES, default="GOVERNANCE", help="Object Lock mode (default GOVERNANCE)"
    )


def _run_parser(commands) -> None:
    run_cmd = commands.add_parser(
        "run",
        help="run notebooks headless (default: the chain 01 -> 04), one run folder per run",
        description="Run the runbook notebooks with papermill. Exit codes: 0 the account matches the spec, "
        "2 plan-only run with pending changes an apply would make, 1 error or a problem no apply fixes.",
    )
    which = f"a notebook name like 01_gather_user_info, or a path; default: {' '.join(CHAIN)}"
    run_cmd.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help=which)
    source = run_cmd.add_mutually_exclusive_group(required=True)  # one account's parameters, or many accounts
    source.add_argument("-f", "--file", dest="params_file", metavar="PARAMS.yaml", help="parameters file (YAML)")
    run_cmd.add_argument("-p", "--param", dest="overrides", nargs=2, action="append", default=[],
                         metavar=("NAME", "VALUE"), help="set one parameter; VALUE is read as YAML")  # fmt: skip
    run_cmd.add_argument("--apply", action="store_true", help="make the changes (sets apply: true)")
    run_cmd.add_argument("--parallelism", type=int, metavar="N",
                         help="changes of one phase applied at once (sets apply_parallelism; default 8)")  # fmt: skip
    run_cmd.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs/)")
    run_cmd.add_argument("--plan", metavar="RUN_DIR",
                         help="apply exactly this reviewed plan-only run (or its plan.json), or nothing")  # fmt: skip
    run_cmd.add_argument("--approved-by", metavar="NAME", help="who approved the plan (required with --plan)")
    run_cmd.add_argument("--max-plan-age", default="24h", metavar="AGE", help="refuse older plans (default 24h)")
    run_cmd.add_argument("--archive", metavar="s3://BUCKET/PREFIX", help="upload the run folder when the run ends")
    _archive_options(run_cmd)
    _accounts_options(run_cmd, source)
    run_cmd.set_defaults(handler=cmd_run)


def _accounts_options(run_cmd: argparse.ArgumentParser, source) -> None:
    source.add_argument(
        "--accounts",
        metavar="ACCOUNTS.yaml",
        help="instead of -f: assume a role in each account of this file (or its organization) and run there",
    )
    many = run_cmd.add_argument_group("many accounts")
    many.add_argument(
        "--account",
        dest="only",
        action="append",
        default=[],
        metavar="ID_OR_NAME",
        help="with --accounts: only this account (repeat for more)",
    )
    many.add_argument("--parallel", type=int, metavar="N",
                      help="with --accounts: accounts run at once, each in its own process (default 4)")  # fmt: skip
    many.add_argument("--into", metavar="FOLDER",
                      help="with --accounts: write into this accounts folder (shared: one chain, one summary) "
                           "instead of a new <out>/<ts>-accounts/")  # fmt: skip


def _audit_parser(commands) -> None:
    audit = commands.add_parser("audit", help="check and list the audit record (run folders)")
    verbs = audit.add_subparsers(dest="audit_command", required=True, metavar="VERB")
    verify = verbs.add_parser("verify", help="recompute every hash and every link of the chain; exit 1 if altered")
    verify.add_argument(
        "target", nargs="?", default="runs", help="an out folder, a run folder, or s3://BUCKET/PREFIX/RUN"
    )
    verify.add_argument("--against", metavar="s3://BUCKET/PREFIX", help="compare a local run folder with its archive")
    verify.set_defaults(handler=cmd_audit_verify)
    listing = verbs.add_parser("list", help="the runs as a table: when, caller, mode, exit code, plan, approval")
    listing.add_argument("target", nargs="?", default="runs", help="an out folder (default: runs/)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(handler=cmd_audit_list)
    archive = verbs.add_parser("archive", help="upload (or finish uploading) a run folder to S3")
    archive.add_argument("run_dir", help="the run folder")
    archive.add_argument("uri", metavar="s3://BUCKET/PREFIX")
    _archive_options(archive)
    archive.set_defaults(handler=cmd_audit_archive)


def _version() -> str:
    from iamrunbook.cli.runner import versions

    return versions()["iamrunbook"]


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_MESSAGE_LINES:
        return text
    return "\n".join([*lines[:MAX_MESSAGE_LINES], f"... ({len(lines) - MAX_MESSAGE_LINES} more lines)"])


def _type_hint(problems: Sequence[str]) -> str | None:
    if any("expected string" in p and "got int" in p for p in problems):
        return "Values are YAML: quote a number meant as text, e.g. -p expected_account_id \"'012345678901'\"."
    return None


def _refused(exc: SpecError, command: str = "run") -> int:
    _err(f"iamrunbook {command}: refused before starting any notebook (nothing changed):")
    for problem in exc.problems:
        _err(f"  - {problem}")
    hint = _type_hint(exc.problems)
    if hint:
        _err(hint)
    return EXIT_ERROR


def _reviewed_options(args: argparse.Namespace, params: dict) -> dict:
    """--plan: the reviewed run, checked now; what the run then needs (a precheck, the kernels' env, run.json)."""
    from iamrunbook.cli.runner import kernel_params, reviewed_options
    from iamrunbook.runs import planfile

    problems = []
    if not args.apply:
        problems.append("--plan applies a reviewed plan: add --apply")
    if not args.approved_by:
        problems.append("--plan needs --approved-by NAME: who approved the plan, for the record")
    if problems:
        raise SpecError(problems)
    options = reviewed_options(args.plan, args.approved_by, planfile.parse_age(args.max_plan_age), params)
    params.update(options.pop("params"))
    kernel_params(params)  # the parameters stay valid with it
    return options


def cmd_run(args: argparse.Namespace) -> int:
    if args.accounts:
        return cmd_run_accounts(args)
    try:
        if args.only or args.parallel is not None or args.into:
            raise SpecError("--account, --parallel and --into go with --accounts ACCOUNTS.yaml")
        parallelism = [] if args.parallelism is None else [("apply_parallelism", str(args.parallelism))]
        params = gather_params(args.params_file, [*args.overrides, *parallelism], args.apply)
        options = _reviewed_options(args, params) if args.plan else {}
        if args.approved_by and not args.plan:
            raise SpecError("--approved-by goes with --plan (a reviewed plan)")
        if args.archive:
            from iamrunbook.runs.archive import parse_uri

            parse_uri(args.archive)
        result = run(args.notebooks, params, out=args.out, params_file=args.params_file, echo=print, **options)
    except SpecError as exc:
        return _refused(exc)
    report(result)
    if args.archive:
        return _archive_after(result, args)
    return result.exit_code


def cmd_edit_and_run(args: argparse.Namespace) -> int:
    """grant / revoke: the spec file edited (or nothing, on bad input), then an ordinary run of the chain."""
    from iamrunbook.cli.grant import edit

    try:
        print(edit(args, gather_params(args.params_file)))
        params = gather_params(args.params_file, [], args.apply)  # read again: the spec may live in it
        result = run(None, params, out=args.out, params_file=args.params_file, echo=print)
    except SpecError as exc:
        return _refused(exc, args.command)
    report(result)
    return result.exit_code


def cmd_run_accounts(args: argparse.Namespace) -> int:
    """`run --accounts`: every problem with the file, the parameters or the options refuses before any call."""
    from iamrunbook.cli import fanout
    from iamrunbook.runs import planfile

    try:
        problems = ["--archive goes with one account (-f), not with --accounts"] if args.archive else []
        if args.plan and not (args.apply and args.approved_by):
            problems.append("--plan applies each account's reviewed plan: add --apply and --approved-by NAME")
        if args.approved_by and not args.plan:
            problems.append("--approved-by goes with --plan (a reviewed folder of `run --accounts`)")
        if args.parallel is not None and args.parallel < 1:
            problems.append(f"--parallel {args.parallel}: at least 1 account at a time")
        if problems:
            raise SpecError(problems)
        max_age = planfile.parse_age(args.max_plan_age)
        prepared = fanout.prepare(args.accounts, args.notebooks, apply=args.apply, overrides=args.overrides,
                                  only=args.only, plan=args.plan)  # fmt: skip
        parallel = fanout.DEFAULT_PARALLEL if args.parallel is None else args.parallel
        result = fanout.run_accounts(prepared, apply=args.apply, parallel=parallel, out=args.out,
                                     approved_by=args.approved_by, max_plan_age=max_age, into=args.into)  # fmt: skip
    except SpecError as exc:
        return _refused(exc)
    except RunbookError as exc:
        _err(f"iamrunbook run --accounts: {exc}")
        return EXIT_TRANSIENT if isinstance(exc, fanout.Unreachable) else EXIT_ERROR
    for line in fanout.report_lines(result):
        print(line)
    return result.exit_code


def _archive_after(result: RunResult, args: argparse.Namespace) -> int:
    """Upload the run folder whatever the run's outcome; a failed upload fails the run (exit 1)."""
    from iamrunbook.runs.archive import ArchiveError, upload

    try:
        done = upload(result.run_dir, args.archive, retention_days=args.retention_days, lock_mode=args.lock_mode)
    except (ArchiveError, RunbookError) as exc:
        _err(f"archive FAILED: {exc}")
        _err(f"the run folder is kept: finish with `iamrunbook audit archive {result.run_dir} {args.archive}`")
        return EXIT_ERROR
    print(done.summary())
    return result.exit_code


def report(result: RunResult) -> None:
    """What the operator needs at the terminal: the folder, the outcome, each problem and pending change
    on its own line (as `terraform plan` lists resources), and where a failure happened."""
    print(f"run folder: {result.run_dir}")
    if result.failure:
        f = result.failure
        _err(f"FAILED: {_clip(f.message())}")
        _err(f"the executed notebook (up to the failure) is {result.run_dir / (f.notebook + '.ipynb')}")
    if result.problems:
        _err("refused, or problems no apply can fix (exit 1):")
        for line in result.problems:
            _err(f"  - {line}")
    if result.exit_code == EXIT_PENDING:
        print("changes pending (plan only; an apply would make them):")
    if result.details and (result.exit_code == EXIT_PENDING or result.failure or result.problems):
        for line in result.details:
            print(f"  {line}")
    if result.exit_code == EXIT_OK:
        print("succeeded: the account matches the spec" if result.record.get("verification_ok") else "succeeded")
    print(f"exit code {result.exit_code}")


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from iamrunbook.runs import archive, audit

    try:
        if args.target.startswith("s3://"):
            findings = archive.verify_remote(args.target)
        elif args.against:
            findings = audit.verify_local(Path(args.target)) + archive.compare(Path(args.target), args.against)
        else:
            findings = audit.verify_local(Path(args.target))
    except (OSError, RunbookError) as exc:
        _err(f"iamrunbook audit verify: {exc}")
        return EXIT_ERROR
    for finding in findings:
        print(finding.line())
    print(f"{len(findings)} problem(s): the record was altered" if findings else "intact: every hash and link verifies")
    return EXIT_ERROR if findings else EXIT_OK


def cmd_audit_list(args: argparse.Namespace) -> int:
    from iamrunbook.runs import audit

    rows = audit.listing(Path(args.target))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(audit.listing_frame(rows).to_string(index=False) if rows else "no runs")
    return EXIT_OK


def cmd_audit_archive(args: argparse.Namespace) -> int:
    from iamrunbook.runs.archive import ArchiveError, upload

    try:
        done = upload(Path(args.run_dir), args.uri, retention_days=args.retention_days, lock_mode=args.lock_mode)
    except (ArchiveError, RunbookError, OSError) as exc:
        _err(f"archive FAILED: {exc}")
        return EXIT_ERROR
    print(done.summary())
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if args.env and not (args.accounts and args.keep_running):
        _err("iamrunbook demo: --env goes with --accounts --keep-running (the embedded Organization as a fixture)")
        return EXIT_ERROR
    if args.accounts:
        from iamrunbook.sandbox.demo import run_accounts_demo

        env_file = {"env_file": args.env} if args.env else {}
        return run_accounts_demo(main, out=args.out, keep_running=args.keep_running, **env_file)
    from iamrunbook.sandbox.demo import run_demo  # moto is an optional dependency: import only when asked for

    return run_demo(main, out=args.out, keep_running=args.keep_running)


def cmd_permissions(args: argparse.Namespace) -> int:
    from iamrunbook.cli import permissions

    try:
        params = gather_params(args.parameters)
        scope = permissions.scope_for(
            params, account_id=args.account_id, archive=args.archive, security_hub_import=args.security_hub_import
        )
        if args.accounts:
            print(json.dumps(permissions.fanout_policy(args.accounts, scope.partition), indent=2))
        else:
            print(permissions.render(args.apply, scope, args.format))
            for note in permissions.scope_notes(scope):  # grant_via identity_center: what could not be narrowed
                _err(f"iamrunbook permissions: note: {note}")
    except SpecError as exc:
        _err("iamrunbook permissions: " + "; ".join(exc.problems))
        return EXIT_ERROR
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
