"""Run the runbook in many accounts at once: one process per account, one parent folder, one summary.

`run_accounts` checks the accounts file and every account's parameters and spec before any AWS call, lists
the organization's accounts when the file says `from_organization`, then runs each account in a process of
its own, `parallel` at a time. That process assumes the account's role and puts the temporary credentials
in its environment, where the notebook kernels find them as they find any credentials: never as a
parameter, so none reaches a notebook or run.json. The chain runs with `expected_account_id` set to the
account, so credentials that land anywhere else are refused before any change.

Run folders land side by side in `<out>/<timestamp>-accounts/` and form one hash chain there (manifest.py
writes each link under a lock); `accounts_summary.json` and `.csv` hold one row per account. `into` names that
folder instead, so that many fan-outs (a scheduler's task per account) share one folder, one chain and one
summary (each merges its rows under the same lock). The exit code is the worst of them: 1 if any account
errored (or could not be entered), else 75 if any was throttled or could not reach AWS (try again later), else
2 if any has drift, else 0.

Under `grant_via: identity_center` the Identity Center part runs once, in the organization's management
account: the members run first (each makes its own Assume*Policy policies), then the management account, for
every account of the fan-out (fanout_center.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.base.exit_codes import EXIT_TRANSIENT, is_transient_name
from iamrunbook.base.names import partition_of
from iamrunbook.cli import fanout_center, runner
from iamrunbook.cli.accounts import (
    Account,
    AccountsFile,
    assume_role,
    load_accounts_file,
    organization_accounts,
    select,
)
from iamrunbook.core.spec import grant_settings, load_spec
from iamrunbook.runs import manifest, planfile
from iamrunbook.runs.outcome import EXIT_ERROR, EXIT_OK, EXIT_PENDING

SUMMARY_JSON = records.ACCOUNTS_SUMMARY.name
SUMMARY_CSV = records.ACCOUNTS_SUMMARY_CSV.name
SUMMARY_COLUMNS = ("account_id", "name", "exit_code", "outcome", "plan", "pending", "problems", "seconds",
                   "run_folder", "run_json_sha256")  # fmt: skip
DEFAULT_PARALLEL = 4
PARENT_LABEL = "accounts"
#: a profile would stand between a kernel and the credentials the account's process put in its environment
_PROFILE_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
NOT_ENTERED = "not entered"
UNREACHABLE = "unreachable"


class Unreachable(RunbookError):
    """AWS throttled the fan-out's first calls or could not be reached: exit 75, worth a retry."""


@dataclass(frozen=True)
class AccountTask:
    """What one account's process needs. No secret: the process assumes the role itself."""

    account: Account
    role_arn: str
    params: dict
    notebooks: tuple[str, ...]
    parent: str
    run_id: str
    label: str
    start_dir: str
    reviewed_plan: str | None = None
    approved_by: str | None = None
    max_plan_age_seconds: int = int(planfile.DEFAULT_MAX_AGE.total_seconds())


@dataclass(frozen=True)
class AccountResult:
    """One row of the summary."""

    account_id: str
    name: str
    exit_code: int
    outcome: str
    plan_summary: dict | None = None
    pending: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    seconds: float = 0.0
    run_folder: str | None = None
    run_json_sha256: str | None = None

    def row(self) -> dict:
        """The CSV row: lists joined, the plan as Terraform counts it."""
        values = asdict(self)
        values["plan"] = plan_text(self.plan_summary)
        values["pending"] = "; ".join(self.pending)
        values["problems"] = "; ".join(self.problems)
        return {column: values[column] for column in SUMMARY_COLUMNS}


@dataclass(frozen=True)
class FanOutResult:
    parent: Path
    results: tuple[AccountResult, ...]
    exit_code: int
    notes: tuple[str, ...] = ()


def plan_text(summary: dict | None) -> str:
    if not summary:
        return ""
    text = f"{summary.get('add', 0)} add, {summary.get('change', 0)} change, {summary.get('destroy', 0)} destroy"
    return f"{summary['import']} import, {text}" if summary.get("import") else text


def aggregate_exit(codes: Iterable[int]) -> int:
    """1 if any account errored (or none ran), else 75 if any was throttled or unreachable, else 2 if any has
    drift, else 0."""
    codes = list(codes)
    if not codes or any(code not in (EXIT_OK, EXIT_PENDING, EXIT_TRANSIENT) for code in codes):
        return EXIT_ERROR
    for code in (EXIT_TRANSIENT, EXIT_PENDING):
        if code in codes:
            return code
    return EXIT_OK


def is_transient(exc: BaseException) -> bool:
    """A throttled call, or an AWS that did not answer: the same command may succeed later."""
    return is_transient_name(aws.error_code(exc)) or is_transient_name(type(exc).__name__)


def _transient_failure(result: runner.RunResult) -> bool:
    """A notebook stopped on throttling or an unreachable AWS, and the run found no problem of its own."""
    failure = result.failure
    if failure is None or result.problems:
        return False
    code = re.search(r"An error occurred \((\w+)\)", failure.evalue or "")
    return is_transient_name(failure.ename) or bool(code and is_transient_name(code.group(1)))


# --- each account's parameters, checked before any call ---------------------------------------------
def account_params(account: Account, overrides: Sequence[tuple[str, str]], apply: bool, start: Path) -> dict:
    """The parameters one account runs with: its parameters file, its own iam_users_file (which replaces
    the file's spec), each -p, --apply, and expected_account_id set to the account. Its spec is loaded
    too. SpecError names the account in each problem."""
    where = f"account {account.describe()}"
    try:
        params = runner.gather_params(account.parameters_file, overrides, apply)
        if account.iam_users_file:
            params.pop("iam_users", None)
            params["iam_users_file"] = account.iam_users_file
        problems = _credential_problems(params, account)
        params["expected_account_id"] = account.id
        full = runner.kernel_params(params)
        try:
            load_spec(full["iam_users"], full["iam_users_file"], full["roles"], base_dir=start,
                      settings=grant_settings(full, full["roles"]),
                      max_temporary_days=full["max_temporary_days"])  # fmt: skip
        except SpecError as exc:
            problems += exc.problems
        if problems:
            raise SpecError(problems)
    except SpecError as exc:
        raise SpecError([f"{where}: {problem}" for problem in exc.problems]) from None
    return params


def _credential_problems(params: dict, account: Account) -> list[str]:
    """A profile or another account's id would defeat the role assumed for this account."""
    problems = []
    if params.get("aws_profile"):
        problems.append(f"aws_profile {params['aws_profile']!r}: with --accounts the credentials come from the role "
                        "assumed in each account; remove it")  # fmt: skip
    if params.get("expected_account_id") not in (None, account.id):
        problems.append(f"expected_account_id {params['expected_account_id']!r} is another account")
    return problems


def all_params(accounts: Sequence[Account], overrides, apply: bool, start: Path, found: Sequence[str] = ()) -> dict:
    """account id -> its parameters; SpecError with every account's problems (and `found`) at once."""
    problems, params = list(found), {}
    for account in accounts:
        try:
            params[account.id] = account_params(account, overrides, apply, start)
        except SpecError as exc:
            problems += exc.problems
    if not accounts and not problems:
        problems.append("no accounts to run: the accounts file (or its organization filter) selects none")
    if problems:
        raise SpecError(problems)
    return params


def reviewed_runs(parent: str | Path) -> dict[str, list[Path]]:
    """account id -> its run folders in a reviewed fan-out folder, by the account each run.json names; where the
    summary's row for that account names one of them, that one alone."""
    folder = planfile.resolve(parent)
    found: dict[str, list[Path]] = {}
    for path in manifest.manifests(folder).values():
        record = records.read(path.parent, records.RUN_MANIFEST)
        if record is not None and record.account_id:
            found.setdefault(record.account_id, []).append(path.parent)
    if not found:
        raise SpecError(f"--plan {parent}: no run folders with run.json in it: not a folder of `run --accounts`")
    for row in read_summary(folder)[1]:  # a task run again (--into): its row names the run that counts
        named = [run for run in found.get(row.account_id, []) if run.name == row.run_folder]
        if named:
            found[row.account_id] = named
    return found


# --- one account, in a process of its own ----------------------------------------------------------------
def run_account(task: AccountTask) -> AccountResult:
    """Enter the account and run the chain there. Meant for a fresh process (`run_all`): the account's
    credentials go into this process's environment, for its kernels. Every failure is this account's row."""
    started = time.monotonic()
    try:
        max_age = timedelta(seconds=task.max_plan_age_seconds)
        reviewed = task.reviewed_plan and (task.reviewed_plan, task.approved_by or "", max_age, task.params)
        options = runner.reviewed_options(*reviewed) if reviewed else {}
    except SpecError as exc:
        return _failed(task, exc.problems, started, "refused")
    region = task.params.get("aws_region", "us-east-1")
    try:
        sts = aws.client(aws.make_session(None, region), "sts")
        credentials = assume_role(sts, task.role_arn, task.run_id, task.account)
    except (ClientError, BotoCoreError) as exc:
        if is_transient(exc):
            return _failed(task, [f"could not assume {task.role_arn}: {exc}"], started, UNREACHABLE, EXIT_TRANSIENT)
        return _failed(task, [f"could not assume {task.role_arn}: {exc}"], started, NOT_ENTERED)
    for name in _PROFILE_ENV:
        os.environ.pop(name, None)
    os.environ.update(credentials)
    try:
        result = runner.run(task.notebooks, options.pop("params", task.params), out=task.parent,
                            params_file=task.account.parameters_file, start_dir=task.start_dir, label=task.label,
                            **options)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - an account's crash is its row; the other accounts go on
        return _failed(task, [f"{type(exc).__name__}: {exc}"], started, "error")
    return _result(task, result, started)


def _failed(task: AccountTask, problems: Sequence[str], started: float, outcome: str,
            code: int = EXIT_ERROR) -> AccountResult:  # fmt: skip
    seconds = round(time.monotonic() - started, 1)
    return AccountResult(task.account.id, task.account.name, code, outcome, problems=tuple(problems),
                         seconds=seconds)  # fmt: skip


def _outcome(result: runner.RunResult) -> str:
    if result.exit_code == EXIT_PENDING:
        return "drift"
    if result.exit_code == EXIT_OK:
        return "converged" if result.record.get("verification_ok") else "ok"
    return "error"


def _result(task: AccountTask, result: runner.RunResult, started: float) -> AccountResult:
    problems = [" ".join(result.failure.message().splitlines())] if result.failure else []
    run_json = result.run_dir / records.RUN_MANIFEST.name
    transient = _transient_failure(result)
    return AccountResult(
        task.account.id,
        task.account.name,
        EXIT_TRANSIENT if transient else result.exit_code,
        UNREACHABLE if transient else _outcome(result),
        result.record.get("plan_summary"),
        tuple(result.pending),
        tuple(problems + list(result.problems)),
        round(time.monotonic() - started, 1),
        result.run_dir.name,
        manifest.sha256(run_json) if run_json.is_file() else None,
    )


# --- all of them ------------------------------------------------------------------------------------------
class _Progress:
    """One bar over the accounts on a terminal; one line per finished account in a log (cron, CI)."""

    def __init__(self, total: int, echo: Callable[[str], None]) -> None:
        self.total, self.count, self.echo = total, 0, echo
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="accounts", unit="account")

    def done(self, result: AccountResult) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        self.echo(f"[{self.count}/{self.total}] {result.name} ({result.account_id}): exit {result.exit_code} "
                  f"({result.outcome}) in {result.seconds:.1f} s")  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_all(tasks: Sequence[AccountTask], parallel: int = DEFAULT_PARALLEL,
            echo: Callable[[str], None] = print) -> list[AccountResult]:  # fmt: skip
    """Each task in a fresh spawned process (nothing of this process's state, nor any other account's
    credentials, carries over), `parallel` at a time; results in the tasks' order."""
    if not tasks:
        return []
    done: dict[str, AccountResult] = {}
    progress = _Progress(len(tasks), echo)
    pool = multiprocessing.get_context("spawn").Pool(min(parallel, len(tasks)), maxtasksperchild=1)
    try:
        for result in pool.imap_unordered(run_account, tasks):
            done[result.account_id] = result
            progress.done(result)
        pool.close()
    finally:
        if len(done) < len(tasks):  # interrupted: stop the accounts still running
            pool.terminate()
        pool.join()
        progress.close()
    return [done[task.account.id] for task in tasks]


@dataclass(frozen=True)
class Prepared:
    """A fan-out checked and resolved, before anything runs in an account."""

    accounts_file: AccountsFile
    accounts: tuple[Account, ...]
    params: dict[str, dict]
    notebooks: tuple[str, ...]
    caller_arn: str
    reviewed: dict[str, list[Path]] | None = None
    notes: tuple[str, ...] = field(default=())
    #: grant_via: identity_center: the management account, whose chain runs after every member's
    management: str | None = None


def prepare(accounts_path: str | Path, notebooks: Sequence[str] = (), *, apply: bool = False,
            overrides: Sequence[tuple[str, str]] = (), only: Sequence[str] = (),
            plan: str | Path | None = None) -> Prepared:  # fmt: skip
    """Everything checked that can be: the file, every listed account's parameters and spec, the notebooks
    and the reviewed folder, before any call; then who calls, and the organization's accounts if asked."""
    found = load_accounts_file(accounts_path)
    start = found.base_dir
    sources = tuple(str(runner.resolve_notebook(n)) for n in (notebooks or runner.CHAIN))
    by_account = reviewed_runs(plan) if plan else None
    accounts = [] if found.from_organization else select(found.accounts, only)
    params = {} if found.from_organization else all_params(accounts, overrides, apply, start)
    try:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        session = aws.make_session(None, region)
        caller = aws.caller_identity(session)
        notes: list[str] = []
        if found.from_organization:
            org = aws.client(session, "organizations")
            listed, problems, notes = organization_accounts(found, org, caller["Account"])
            accounts = select(listed, only)
            params = all_params(accounts, overrides, apply, start, problems)
        management = fanout_center.find_management(session, params)
    except (ClientError, BotoCoreError) as exc:
        raise (Unreachable if is_transient(exc) else RunbookError)(f"could not start the fan-out: {exc}") from exc
    params, center_notes = fanout_center.center_params(accounts, params, management)
    return Prepared(found, tuple(accounts), params, sources, caller["Arn"], by_account, (*notes, *center_notes),
                    management)  # fmt: skip


def _tasks(prepared: Prepared, parent: Path, apply: bool, approved_by: str | None,
           max_age: timedelta) -> tuple[list[AccountTask], list[AccountResult]]:  # fmt: skip
    """One task per account; an account the reviewed folder has no single plan for is refused here."""
    partition = partition_of(prepared.caller_arn)
    mode = runner.run_label([Path(n) for n in prepared.notebooks], apply)
    tasks, refused = [], []
    for account in prepared.accounts:
        task = AccountTask(account, account.role_arn(partition), prepared.params[account.id], prepared.notebooks,
                           str(parent), parent.name, f"{account.label}-{mode}", str(prepared.accounts_file.base_dir),
                           approved_by=approved_by, max_plan_age_seconds=int(max_age.total_seconds()))  # fmt: skip
        if prepared.reviewed is not None:
            runs = prepared.reviewed.get(account.id, [])
            if len(runs) != 1:
                why = "no run" if not runs else f"{len(runs)} runs"
                refused.append(_failed(task, [f"the reviewed folder has {why} for this account"], time.monotonic(),
                                       "refused"))  # fmt: skip
                continue
            task = replace(task, reviewed_plan=str(runs[0]))
        tasks.append(task)
    return tasks, refused


def run_accounts(prepared: Prepared, *, apply: bool = False, parallel: int = DEFAULT_PARALLEL,
                 out: str | Path = "runs", approved_by: str | None = None,
                 max_plan_age: timedelta = planfile.DEFAULT_MAX_AGE, into: str | Path | None = None,
                 echo: Callable[[str], None] = print) -> FanOutResult:  # fmt: skip
    """Run every prepared account into one new parent folder (or `into`, shared with other fan-outs); write
    the summary (merged with the rows already in `into`); the aggregate exit code."""
    if parallel < 1:
        raise SpecError(f"--parallel {parallel}: at least 1")
    for note in prepared.notes:
        echo(note)
    started = datetime.now(timezone.utc)
    parent = shared_folder(into) if into else manifest.new_run_dir(out, PARENT_LABEL)
    tasks, refused = _tasks(prepared, parent, apply, approved_by, max_plan_age)
    echo(f"{len(prepared.accounts)} account(s), {min(parallel, max(len(tasks), 1))} at a time, into {parent}")
    ordered = fanout_center.in_order(tasks, prepared.management, lambda some: run_all(some, parallel, echo))
    ran = {r.account_id: r for r in [*ordered, *refused]}
    results = tuple(ran[account.id] for account in prepared.accounts)
    code = aggregate_exit(r.exit_code for r in results)
    about = {
        "id": parent.name,
        "kind": "accounts",
        "accounts_file": str(prepared.accounts_file.path),
        "caller_arn": prepared.caller_arn,
        "mode": "apply" if apply else "plan",
        "notebooks": [Path(n).stem for n in prepared.notebooks],
        "parallel": parallel,
        "reviewed_plan": {"approved_by": approved_by} if prepared.reviewed is not None else None,
        "started": manifest.utc_iso(started),
        "finished": manifest.utc_iso(datetime.now(timezone.utc)),
        "exit_code": code,
    }
    if into:
        merge_summary(parent, results, about)
    else:
        write_summary(parent, results, about)
    return FanOutResult(parent, results, code, prepared.notes)


def shared_folder(into: str | Path) -> Path:
    """The accounts folder that many fan-outs share (made if missing); never a run folder."""
    folder = Path(into).resolve()
    if (folder / records.RUN_MANIFEST.name).is_file():
        raise SpecError(f"--into {into}: that is a run folder; name an accounts folder (<out>/<ts>-accounts)")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_summary(parent: Path, results: Sequence[AccountResult], about: dict) -> None:
    data = {**about, "accounts": [asdict(r) for r in results]}
    (parent / SUMMARY_JSON).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    rows = pd.DataFrame([r.row() for r in results], columns=list(SUMMARY_COLUMNS))
    records.write(parent, records.ACCOUNTS_SUMMARY_CSV, rows)  # the package's one CSV writer


def read_summary(parent: Path) -> tuple[dict, list[AccountResult]]:
    """The summary's header and its rows; ({}, []) when there is none yet."""
    try:
        data = json.loads((parent / SUMMARY_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, []
    rows = [
        AccountResult(
            **{**row, "pending": tuple(row.get("pending") or ()), "problems": tuple(row.get("problems") or ())}
        )
        for row in data.pop("accounts", [])
    ]
    return data, rows


def merge_summary(parent: Path, results: Sequence[AccountResult], about: dict) -> list[AccountResult]:
    """Put these rows into the shared folder's summary under the folder's lock (a row per account: a re-run
    replaces its account's row); the header keeps the first start and takes the worst exit code of all rows."""
    with manifest.locked(parent):
        header, rows = read_summary(parent)
        merged = {row.account_id: row for row in rows}
        merged.update({row.account_id: row for row in results})
        every = list(merged.values())
        header = {**about, "started": header.get("started") or about["started"]}
        write_summary(parent, every, {**header, "exit_code": aggregate_exit(r.exit_code for r in every)})
    return every


def report_lines(result: FanOutResult) -> list[str]:
    """The table an operator reads at the end, then each account's problems and pending changes."""
    frame = pd.DataFrame(
        [(r.account_id, r.name, r.exit_code, r.outcome, plan_text(r.plan_summary), f"{r.seconds:.1f}",
          r.run_folder or "-") for r in result.results],
        columns=["account", "name", "exit", "outcome", "plan", "seconds", "run folder"],
    )  # fmt: skip
    lines = [f"accounts folder: {result.parent}", frame.to_string(index=False)]
    for r in result.results:
        lines += [f"{r.name} ({r.account_id}): {line}" for line in (*r.problems, *r.pending)]
    lines.append(f"exit code {result.exit_code} (1: an account errored; 75: throttled or unreachable, run again "
                 "later; 2: drift in an account; 0: all match)")  # fmt: skip
    return lines
