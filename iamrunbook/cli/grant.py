"""`iamrunbook grant` and `iamrunbook revoke`: the on-call engineer's temporary grant, written into the spec.

The spec file stays the one source of truth: the grant is spliced into it (YAML or tfvars, comments and order
kept, core/specfile.py) and the ordinary run then plans it, and applies it only with --apply, under every
guard a run has. Bad input (an unknown user or role, a bad duration, an until past max_temporary_days)
is refused before the file or the account is touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.core.params import validate_params
from iamrunbook.core.spec import grant_settings, load_spec, read_users_file
from iamrunbook.core.specfile import save_spec
from iamrunbook.core.temporary import parse_until, until_for, with_grant, without_grant


def add_parsers(commands, handlers: Mapping[str, Callable]) -> None:
    grant = commands.add_parser(
        "grant",
        help="give a user a role for a while (AWS itself ends it), written into the spec file",
        description="Write a temporary grant into the spec file (YAML or tfvars, comments kept), then run the "
        "runbook: plan only, or with --apply make it. Exit codes as `run`.",
    )
    grant.add_argument("user", help="a user of the spec")
    grant.add_argument("role", help="a role key, e.g. admin")
    when = grant.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="duration", metavar="DURATION", help="how long: 90m, 4h, 2d")
    when.add_argument("--until", metavar="TIME", help="when it ends, UTC: 2026-12-31T18:00:00Z")
    grant.add_argument("--reason", required=True, help="why (the ticket), kept in the spec and every record")
    revoke = commands.add_parser("revoke", help="remove a user's temporary grant of a role early, in the spec file")
    revoke.add_argument("user", help="a user of the spec")
    revoke.add_argument("role", help="a role key")
    for cmd, name in ((grant, "grant"), (revoke, "revoke")):
        cmd.add_argument("-f", "--file", dest="params_file", required=True, metavar="PARAMS.yaml",
                         help="the parameters file (its iam_users, or the iam_users_file it names)")  # fmt: skip
        cmd.add_argument("--apply", action="store_true", help="make the change (sets apply: true)")
        cmd.add_argument("--out", default="runs", metavar="DIR", help="where run folders go (default: runs/)")
        cmd.set_defaults(handler=handlers[name])


def spec_file(params_file: str | Path, params: Mapping[str, Any]) -> Path:
    """The file holding the spec: the iam_users_file the parameters name (relative to here, as a run reads
    it), else the parameters file itself."""
    named = params.get("iam_users_file")
    if named:
        path = Path(named).expanduser()
        return path if path.is_absolute() else Path.cwd() / path
    if params.get("iam_users") is None:
        raise SpecError(f"{params_file}: sets neither iam_users nor iam_users_file: no spec to write the grant in")
    return Path(params_file)


def edit(args: argparse.Namespace, params: Mapping[str, Any], now: datetime | None = None) -> str:
    """Write the grant (or its removal) into the spec file once the result validates; the line to print.
    SpecError, with nothing written, otherwise."""
    now = now or datetime.now(timezone.utc)
    full = validate_params(params)
    path = spec_file(args.params_file, params)
    raw, _ = read_users_file(path)
    try:
        if args.command == "grant":
            until = until_for(args.duration, now) if args.duration else parse_until(args.until)
            if until is None:
                raise ValueError(f"--until {args.until!r}: allowed: UTC ISO 8601 to the minute, 2026-12-31T18:00:00Z")
            new = with_grant(raw, args.user, args.role, until, args.reason)
        else:
            new = without_grant(raw, args.user, args.role)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    spec = load_spec(new, roles=full["roles"], settings=grant_settings(full, full["roles"]), now=now,
                     max_temporary_days=full["max_temporary_days"])  # fmt: skip
    try:
        save_spec(path, new)
    except RunbookError as exc:
        raise SpecError(str(exc)) from None
    if args.command == "revoke":
        return f"{path}: removed {args.user}'s temporary grant of {args.role}"
    user = spec.user_named(args.user)
    grant = next(t for t in user.temporary if t.role == args.role)
    return f"{path}: {user.name} may assume {spec.roles[args.role]} {grant.shown(now)} ({grant.reason})"
