"""Airflow 3: the runbook in every account of an accounts file: a plan DAG on a schedule, an apply DAG by hand.

Airflow's own environment never imports iamrunbook: every task runs `IAMRUNBOOK_PYTHON -m iamrunbook ...` (the
interpreter of iamrunbook's own virtual environment) as a child process, and reads its exit code and its output.

`iamrunbook_plan` (daily, plan only) and `iamrunbook_apply` (no schedule: triggered by hand, so unpausing it
applies nothing) have the same three steps:

1. `accounts` runs `iamrunbook accounts list ACCOUNTS.yaml`: the file and every account's spec are checked and
   the organization is listed when the DAG runs, so a new account is picked up without a redeploy.
2. `account` is mapped over them, one task per account, named `<name> (<id>)`. Each runs
   `iamrunbook run --accounts ACCOUNTS.yaml --account ID --into OUT/<ts>-accounts` (ts: the DAG run's
   `run_after`), so every task of one DAG run writes into one folder, one hash chain, one summary. The apply
   DAG adds `--apply --plan OUT/<plan_run> --approved-by <approved_by>` from its run conf: each account applies
   exactly its reviewed plan, or is refused as the CLI refuses it.
3. `summary` (runs whatever the accounts ended as) runs `iamrunbook accounts summary`, which gathers every
   account's row into that folder's accounts_summary.json (an account whose task died gets a failed row), and
   pushes the summary as the XCom `summary`.

Exit codes: 0 success; 2 (drift) skips an account's task, and the summary task is skipped
(IAMRUNBOOK_DRIFT=skip, the default) or failed, failing the DAG run (IAMRUNBOOK_DRIFT=fail); 75 (throttled,
AWS unreachable) fails the task for a retry (IAMRUNBOOK_RETRIES, default 3, backing off); 1 fails it at once,
with no retry: it needs a person. Settings, read from the worker's environment: IAMRUNBOOK_PYTHON,
IAMRUNBOOK_ACCOUNTS, IAMRUNBOOK_OUT, IAMRUNBOOK_DRIFT, IAMRUNBOOK_DAG_NOTEBOOKS (default: the whole chain; e.g.
`04_verify` for a quick drift check), IAMRUNBOOK_RETRIES, IAMRUNBOOK_PARALLEL (accounts at once).
The functions above the Airflow import work without Airflow: the tests run them against the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

#: iamrunbook's exit codes (iamrunbook/base/exit_codes.py; not imported: Airflow's environment lacks it)
EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_TRANSIENT = 0, 1, 2, 75
DRIFT_POLICIES = ("skip", "fail")
SUCCESS, SKIP, FAIL, RETRY = "success", "skip", "fail", "retry"
RETRIES = int(os.environ.get("IAMRUNBOOK_RETRIES", "3"))
PARALLEL = int(os.environ.get("IAMRUNBOOK_PARALLEL", "4"))


def setting(name: str) -> str:
    """A setting from the worker's environment, read when the task runs; a missing one is an error that names it."""
    defaults = {"IAMRUNBOOK_DRIFT": "skip", "IAMRUNBOOK_OUT": "/var/lib/iamrunbook/runs"}
    defaults["IAMRUNBOOK_DAG_NOTEBOOKS"] = " "  # the whole chain
    value = os.environ.get(name) or defaults.get(name)
    if not value:
        raise ValueError(f"{name} is not set: set it in the environment of Airflow's workers")
    if name == "IAMRUNBOOK_DRIFT" and value not in DRIFT_POLICIES:
        raise ValueError(f"IAMRUNBOOK_DRIFT={value!r}: one of {', '.join(DRIFT_POLICIES)}")
    return value


def iamrunbook_argv(*args: str) -> list[str]:
    """The command line of `iamrunbook ARGS` in iamrunbook's own environment (IAMRUNBOOK_PYTHON)."""
    return [setting("IAMRUNBOOK_PYTHON"), "-m", "iamrunbook", *args]


def shared_folder(run_after: datetime, out: str | Path) -> Path:
    """The one folder every task of a DAG run writes into: `<out>/<run_after as UTC stamp>-accounts`."""
    stamp = run_after.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(out).resolve() / f"{stamp}-accounts"


def reviewed(conf: Mapping | None, out: str | Path) -> tuple[Path, str]:
    """The apply DAG's run conf, checked: `plan_run`, a folder name under OUT; `approved_by`, a name."""
    conf = conf or {}
    plan_run, approved_by = str(conf.get("plan_run") or ""), str(conf.get("approved_by") or "").strip()
    problems = []
    if not plan_run or Path(plan_run).name != plan_run or plan_run in (".", ".."):
        problems.append(f"plan_run {plan_run!r}: the name of a plan DAG run's folder under {out} (<ts>-accounts)")
    elif not (Path(out) / plan_run).is_dir():
        problems.append(f"plan_run {plan_run!r}: no such folder under {out}")
    if not approved_by:
        problems.append("approved_by: who reviewed the plans (required)")
    if problems:
        raise ValueError("the apply DAG needs its run conf: " + "; ".join(problems))
    return (Path(out) / plan_run).resolve(), approved_by


def account_args(account_id: str, folder: str | Path, *, accounts_file: str | Path,
                 notebooks: Sequence[str] = (), plan: str | Path | None = None,
                 approved_by: str | None = None) -> list[str]:  # fmt: skip
    """`iamrunbook` arguments of one account's task: into the shared folder; with a reviewed plan, apply it."""
    args = ["run", "--accounts", str(Path(accounts_file).resolve()), "--account", account_id, "--into", str(folder)]
    args += list(notebooks)
    if plan is not None:
        args += ["--apply", "--plan", str(plan), "--approved-by", str(approved_by)]
    return args


def outcome(code: int, drift: str = "skip") -> str:
    """What a task does with an exit code: 2 is drift (skip, or fail under IAMRUNBOOK_DRIFT=fail); 75 is worth a
    retry; anything else but 0 needs a person (fail, no retry)."""
    if code == EXIT_OK:
        return SUCCESS
    if code == EXIT_PENDING:
        return FAIL if drift == "fail" else SKIP
    return RETRY if code == EXIT_TRANSIENT else FAIL


def call(args: Sequence[str]) -> tuple[int, str]:
    """Run `iamrunbook ARGS`, its output into the task's log as it comes; the exit code and the last line."""
    last = ""
    with subprocess.Popen(iamrunbook_argv(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            print(line, end="", flush=True)
            last = line.strip() or last
    print(f"exit code {p.returncode}", file=sys.stderr)
    return p.returncode, last


try:
    from airflow.sdk import DAG, get_current_context, task
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
except ImportError:  # no Airflow here: the functions above are the whole module
    DAG = None


def _end(code: int, drift: str = "skip") -> None:
    """The task's end for an exit code (see `outcome`)."""
    what = outcome(code, drift)
    if what == SKIP:
        raise AirflowSkipException(f"exit {code}: drift (changes pending); see the summary")
    if what == RETRY:
        raise AirflowException(f"exit {code}: throttled or AWS unreachable; Airflow retries this task")
    if what == FAIL:
        raise AirflowFailException(f"exit {code}: needs a person (see the log); not retried")


def _folder() -> Path:
    return shared_folder(get_current_context()["dag_run"].run_after, setting("IAMRUNBOOK_OUT"))


def _define(dag_id: str, schedule: str | None, apply: bool, doc: str):
    """One DAG: list the accounts, one task per account, the summary."""
    retrying = {"retries": RETRIES, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}
    with DAG(dag_id=dag_id, schedule=schedule, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False,
             max_active_runs=1, tags=["iam", "iamrunbook"], doc_md=doc) as dag:  # fmt: skip

        @task(task_id="accounts", **retrying)
        def accounts() -> list[dict]:
            if apply:  # a run without a reviewed plan stops here, before any account
                reviewed(get_current_context()["dag_run"].conf, setting("IAMRUNBOOK_OUT"))
            code, last = call(["accounts", "list", setting("IAMRUNBOOK_ACCOUNTS")])
            _end(code)
            return json.loads(last)

        @task(task_id="account", map_index_template="{{ account_name }}", max_active_tis_per_dag=PARALLEL, **retrying)
        def account(account: dict) -> None:
            context = get_current_context()
            context["account_name"] = f"{account['name']} ({account['id']})"
            plan, approved_by = reviewed(context["dag_run"].conf, setting("IAMRUNBOOK_OUT")) if apply else (None, None)
            args = account_args(account["id"], _folder(), accounts_file=setting("IAMRUNBOOK_ACCOUNTS"),
                                notebooks=setting("IAMRUNBOOK_DAG_NOTEBOOKS").split(), plan=plan,
                                approved_by=approved_by)  # fmt: skip
            _end(call(args)[0])

        @task(task_id="summary", trigger_rule="all_done")
        def summary(listed: list[dict]) -> dict:
            folder = _folder()
            expected = [arg for row in listed for arg in ("--account", row["id"])]
            code, _ = call(["accounts", "summary", str(folder), *expected])
            written = folder / "accounts_summary.json"
            data = json.loads(written.read_text(encoding="utf-8")) if written.is_file() else {}
            get_current_context()["ti"].xcom_push(key="summary", value=data)
            _end(code, setting("IAMRUNBOOK_DRIFT"))
            return data

        listed = accounts()
        account.expand(account=listed) >> summary(listed)
    return dag


if DAG is not None:
    plan_dag = _define("iamrunbook_plan", "0 6 * * *", apply=False, doc=__doc__)
    apply_dag = _define("iamrunbook_apply", None, apply=True, doc=__doc__)
