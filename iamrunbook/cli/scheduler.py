"""`iamrunbook accounts`: what a scheduler's tasks call around `run --accounts ... --account ID --into FOLDER`.

`accounts list` checks the accounts file and every account's parameters and spec (as `run --accounts` does
before any call), lists the organization when the file says so, and prints the accounts as one JSON line: the
scheduler maps one task over each. `accounts summary` gathers the rows those tasks merged into the shared
folder's `accounts_summary.json`, adds a failed row for every expected account that wrote none (its task
died, or never ran), rewrites the summary and exits with the worst code of them (0, 2 drift, 75 try again
later, 1). A scheduler's own setting decides what a 2 does to its run (skip or fail); the command stays 0/1/2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.base.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_TRANSIENT
from iamrunbook.runs import manifest

NO_RESULT = "no result"


def add_parser(commands) -> None:
    accounts = commands.add_parser("accounts", help="list the accounts of an accounts file; gather a shared summary")
    verbs = accounts.add_subparsers(dest="accounts_command", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="check the file and every account's spec; print the accounts as JSON")
    listing.add_argument("accounts_file", metavar="ACCOUNTS.yaml")
    listing.add_argument("--account", dest="only", action="append", default=[], metavar="ID_OR_NAME",
                         help="only this account (repeat for more)")  # fmt: skip
    listing.set_defaults(handler=cmd_accounts_list)
    summary = verbs.add_parser("summary", help="gather the rows of a shared accounts folder; exit with the worst")
    summary.add_argument("folder", metavar="FOLDER", help="the folder the runs went --into")
    summary.add_argument("--account", dest="expected", action="append", default=[], metavar="ID",
                         help="an account that must have a row (repeat; default: the rows found)")  # fmt: skip
    summary.set_defaults(handler=cmd_accounts_summary)


def listed(accounts_file: str | Path, only: Sequence[str] = ()) -> list[dict]:
    """[{id, name, label}] of every account a fan-out of this file would run, everything checked first."""
    from iamrunbook.cli import fanout  # pandas and boto3: only when a verb runs

    prepared = fanout.prepare(accounts_file, only=only)
    for note in prepared.notes:
        print(note, flush=True)
    return [{"id": a.id, "name": a.name, "label": a.label} for a in prepared.accounts]


def gather(folder: str | Path, expected: Sequence[str] = ()) -> tuple[Path, list, int]:
    """The shared folder's rows, a failed row for each expected account without one; rewritten; the worst code."""
    from iamrunbook.cli import fanout

    parent = Path(folder).resolve()
    if not parent.is_dir() and not expected:
        raise SpecError(f"{folder}: no such folder (the folder the account runs went --into)")
    parent.mkdir(parents=True, exist_ok=True)  # expected accounts and none ran: each gets its failed row
    with manifest.locked(parent):
        header, rows = fanout.read_summary(parent)
        have = {row.account_id for row in rows}
        missing = [account for account in dict.fromkeys(expected) if account not in have]
        rows += [fanout.AccountResult(account, account, EXIT_ERROR, NO_RESULT,
                                      problems=("no run of this account wrote its row: see its task's log",))
                 for account in missing]  # fmt: skip
        code = fanout.aggregate_exit(row.exit_code for row in rows)
        now = manifest.utc_iso(datetime.now(timezone.utc))
        about = {"id": parent.name, "kind": "accounts", "started": now, **header, "gathered": now, "exit_code": code}
        fanout.write_summary(parent, rows, about)
    return parent, rows, code


def cmd_accounts_list(args: argparse.Namespace) -> int:
    from iamrunbook.cli import fanout

    try:
        found = listed(args.accounts_file, args.only)
    except SpecError as exc:
        return _say_refused(exc.problems)
    except fanout.Unreachable as exc:
        return _say_refused([str(exc)], EXIT_TRANSIENT)
    except RunbookError as exc:
        return _say_refused([str(exc)])
    print(json.dumps(found))  # the last line: what a scheduler's task reads
    return EXIT_OK


def cmd_accounts_summary(args: argparse.Namespace) -> int:
    from iamrunbook.cli import fanout

    try:
        parent, rows, code = gather(args.folder, args.expected)
    except SpecError as exc:
        return _say_refused(exc.problems)
    result = fanout.FanOutResult(parent, tuple(rows), code)
    for line in fanout.report_lines(result):
        print(line)
    print(f"summary: {parent / records.ACCOUNTS_SUMMARY.name}")
    return code


def _say_refused(problems: Sequence[str], code: int = EXIT_ERROR) -> int:
    print("iamrunbook accounts: refused:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return code
