"""The `iamrunbook` command: `run` executes the runbook notebooks headless, `demo` runs it against an
embedded AWS. Thin on purpose: parsing and printing here, the work in runner.py and sandbox/demo.py."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import SpecError
from .runner import CHAIN, EXIT_ERROR, EXIT_OK, EXIT_PENDING, RunResult, gather_params, run

MAX_MESSAGE_LINES = 40


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iamrunbook", description="Manage the IAM users of an AWS account with runbook notebooks."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_cmd = commands.add_parser(
        "run",
        help="run notebooks headless (default: the chain 01 -> 04), one run folder per run",
        description="Run the runbook notebooks with papermill. Exit codes: 0 the account matches the spec, "
        "2 plan-only run with pending changes, 1 error.",
    )
    run_cmd.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        help=f"a notebook name like 01_gather_user_info, or a path; default: {' '.join(CHAIN)}",
    )
    run_cmd.add_argument(
        "-f", "--file", dest="params_file", required=True, metavar="PARAMS.yaml", help="parameters file (YAML)"
    )
    run_cmd.add_argument(
        "-p",
        "--param",
        dest="overrides",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set one parameter; VALUE is read as YAML",
    )
    run_cmd.add_argument("--apply", action="store_true", help="make the changes (sets apply: true)")
    run_cmd.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs/)")
    run_cmd.set_defaults(handler=cmd_run)

    demo_cmd = commands.add_parser("demo", help="run the runbook against an embedded AWS on 127.0.0.1")
    demo_cmd.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs/)")
    demo_cmd.add_argument(
        "--keep-running", action="store_true", help="keep the embedded AWS serving after the run, until Ctrl-C"
    )
    demo_cmd.set_defaults(handler=cmd_demo)

    perm_cmd = commands.add_parser(
        "permissions",
        help="print the IAM policy a runner role needs (plan-only by default)",
        description="Print the least-privilege identity policy for the identity that runs the runbook, "
        "built from the actions each step declares.",
    )
    perm_cmd.add_argument("--apply", action="store_true", help="include the write actions an apply run needs")
    perm_cmd.set_defaults(handler=cmd_permissions)
    return parser


def _version() -> str:
    from .runner import versions

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


def cmd_run(args: argparse.Namespace) -> int:
    try:
        params = gather_params(args.params_file, args.overrides, args.apply)
        result = run(args.notebooks, params, out=args.out, params_file=args.params_file, echo=print)
    except SpecError as exc:
        _err("iamrunbook run: refused before starting any notebook:")
        for problem in exc.problems:
            _err(f"  - {problem}")
        hint = _type_hint(exc.problems)
        if hint:
            _err(hint)
        return EXIT_ERROR
    report(result)
    return result.exit_code


def report(result: RunResult) -> None:
    """What the operator needs at the terminal: the folder, the outcome, and where it failed."""
    print(f"run folder: {result.run_dir}")
    if result.failure:
        f = result.failure
        _err(f"FAILED: {_clip(f.message())}")
        _err(f"the executed notebook (up to the failure) is {result.run_dir / (f.notebook + '.ipynb')}")
    elif result.exit_code == EXIT_PENDING:
        print("changes pending (plan only):")
        for line in result.pending:
            print(f"  - {line}")
    elif result.record.get("verification_ok"):
        print("succeeded: the account matches the spec")
    elif result.exit_code == EXIT_OK:
        print("succeeded")
    print(f"exit code {result.exit_code}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .sandbox.demo import run_demo  # moto is an optional dependency: import only when asked for

    return run_demo(out=args.out, keep_running=args.keep_running)


def cmd_permissions(args: argparse.Namespace) -> int:
    from .permissions import runner_policy_json

    print(runner_policy_json(apply=args.apply))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
