"""Airflow: the runbook in every account of an accounts file, one mapped task per account.

A task lists the accounts when the DAG runs (so an edited accounts file, or a new account in the
organization, is picked up without a redeploy), and dynamic task mapping (`.partial().expand()`) starts
one BashOperator per account. Each runs

    iamrunbook run --accounts ACCOUNTS.yaml --account ID --out OUT [NOTEBOOK ...] [--apply]

which assumes that account's role from the worker's own credentials (instance profile, IRSA, or the
environment), checks that it landed in that account, and writes its own run folder under OUT. Exit code
2 (plan only, drift found) marks the task skipped rather than failed (`skip_on_exit_code=2`); 1 fails
it; each account retries and reports on its own.

Airflow is imported inside a guard: without it, `account_command` and `account_commands` still work,
which is how the tests check the commands against the CLI. Settings come from the environment:
IAMRUNBOOK_ACCOUNTS (the accounts file), IAMRUNBOOK_OUT (the run folders), IAMRUNBOOK_APPLY=1 to apply.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

ACCOUNTS_FILE = Path(os.environ.get("IAMRUNBOOK_ACCOUNTS", "/opt/iamrunbook/accounts.yaml"))
OUT = Path(os.environ.get("IAMRUNBOOK_OUT", "/var/lib/iamrunbook/runs"))
APPLY = os.environ.get("IAMRUNBOOK_APPLY") == "1"
NOTEBOOKS: tuple[str, ...] = ()  # the whole chain, 01 -> 04


def account_command(
    accounts_file: str | Path, account_id: str, *, out: str | Path, notebooks: Sequence[str] = (), apply: bool = False
) -> str:
    """The shell command one mapped task runs: the chain in one account of the accounts file."""
    # BashOperator runs the command in a temporary folder: absolute paths only
    accounts_file, out = Path(accounts_file).resolve(), Path(out).resolve()
    argv = ["iamrunbook", "run", "--accounts", str(accounts_file), "--account", account_id, "--out", str(out)]
    argv += [*notebooks, *(["--apply"] if apply else [])]
    return shlex.join(argv)


def account_ids(accounts_file: str | Path) -> list[str]:
    """The accounts the file covers, listed now: for `accounts: from_organization` this asks Organizations
    (so it belongs in a task, not at DAG parse time)."""
    from iamrunbook.aws import clients as aws
    from iamrunbook.cli.accounts import load_accounts_file, organization_accounts

    found = load_accounts_file(accounts_file)
    if not found.from_organization:
        return [account.id for account in found.accounts]
    session = aws.make_session(None, os.environ.get("AWS_REGION") or "us-east-1")
    own = aws.caller_identity(session)["Account"]
    listed, _, _ = organization_accounts(found, aws.client(session, "organizations"), own)
    return [account.id for account in listed]


def account_commands(
    accounts_file: str | Path, *, out: str | Path, notebooks: Sequence[str] = (), apply: bool = False
) -> list[str]:
    """One command per account: what `.expand(bash_command=...)` maps over."""
    ids = account_ids(accounts_file)
    return [account_command(accounts_file, i, out=out, notebooks=notebooks, apply=apply) for i in ids]


try:  # Airflow 3, then Airflow 2
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG, task
except ImportError:
    try:
        from airflow import DAG
        from airflow.decorators import task
        from airflow.operators.bash import BashOperator
    except ImportError:  # no Airflow here: the functions above are the whole module
        DAG = None

if DAG is not None:
    with DAG(
        dag_id="iamrunbook_accounts",
        schedule="0 6 * * *",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["iam", "iamrunbook"],
        doc_md=__doc__,
    ) as dag:

        @task
        def accounts_to_run() -> list[str]:
            return account_commands(ACCOUNTS_FILE, out=OUT, notebooks=NOTEBOOKS, apply=APPLY)

        BashOperator.partial(
            task_id="iamrunbook_account",
            skip_on_exit_code=2,
            max_active_tis_per_dag=4,  # accounts at once, as `--parallel 4`
        ).expand(bash_command=accounts_to_run())
