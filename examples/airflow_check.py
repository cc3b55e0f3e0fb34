"""The Airflow DAGs in a real Apache Airflow 3, against the demo's embedded Organization (CI runs this).

    .venv/bin/python examples/airflow_check.py [--airflow .airflow-venv/bin/airflow]

This interpreter is iamrunbook's (IAMRUNBOOK_PYTHON); Airflow runs from its own virtual environment, which
never has iamrunbook. Steps:

1. `iamrunbook demo --accounts --keep-running --env FILE` serves the Organization (legacy and data with drift,
   playground with a problem no apply fixes); `data` is applied first, so it is in sync.
2. `airflow dags test iamrunbook_plan` with IAMRUNBOOK_DRIFT=fail: data succeeds, legacy is skipped (drift),
   playground fails, the summary fails the DAG run; tasks are named by account; one folder, one chain.
3. The plan DAG again as a quick drift check (IAMRUNBOOK_DAG_NOTEBOOKS=04_verify) over legacy alone with
   IAMRUNBOOK_DRIFT=skip: drift skips the summary, the run succeeds.
4. `airflow dags test iamrunbook_apply -c '{"plan_run": ..., "approved_by": ...}'`: legacy applies exactly its
   reviewed plan, data its empty one, playground is refused and left as it was.
5. The fixture stops on SIGTERM and removes its temporary folder. Airflow listened on loopback only.
Exit 0 when every check holds; an AssertionError names the first that does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "examples" / "airflow_iamrunbook_dag.py"
APPROVER = "airflow-check"


@contextmanager
def fixture(work: Path):
    """The demo's Organization as a fixture: its settings, then a clean stop on SIGTERM."""
    env_file = work / "fixture.env"
    with (work / "fixture.log").open("w") as log:
        demo = subprocess.Popen([sys.executable, "-m", "iamrunbook", "demo", "--accounts", "--keep-running",
                                 "--env", str(env_file), "--out", str(work / "runs")],
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        for _ in range(600):
            if env_file.is_file() or demo.poll() is not None:
                break
            time.sleep(0.1)
        assert env_file.is_file(), (work / "fixture.log").read_text()
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        yield {k: shlex.split(v)[0] for k, v in settings.items()}
    finally:
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 0, "the fixture did not stop cleanly on SIGTERM"
    project = Path(settings["IAMRUNBOOK_ACCOUNTS"]).parent
    assert not project.exists() and not env_file.exists(), "the fixture left its temporary folder or its FILE"


def airflow_env(work: Path, fixture_env: dict) -> dict:
    """Airflow's settings: its own home and SQLite, only this DAG file, loopback only; iamrunbook's settings."""
    dags = work / "dags"
    dags.mkdir(exist_ok=True)
    (dags / DAG_FILE.name).write_text(DAG_FILE.read_text())
    scrub = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "IAMRUNBOOK_", "PYTHON"))}
    return {**scrub, **fixture_env,
            "AIRFLOW_HOME": str(work / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__API__HOST": "127.0.0.1",
            "IAMRUNBOOK_PYTHON": iamrunbook_python(work), "IAMRUNBOOK_RETRIES": "0"}  # fmt: skip


def iamrunbook_python(work: Path) -> str:
    """IAMRUNBOOK_PYTHON: this interpreter, with this process's PYTHONPATH (a checkout under test) given to it
    alone, never to Airflow's own processes."""
    if not os.environ.get("PYTHONPATH"):
        return sys.executable
    wrapper = work / "iamrunbook-python"
    path, python = shlex.quote(os.environ["PYTHONPATH"]), shlex.quote(sys.executable)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={path} exec {python} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def airflow(binary: str, env: dict, *args: str, log: Path) -> int:
    """One `airflow` command; its output into `log`, and loopback checked while it runs."""
    with log.open("a") as out:
        out.write(f"\n$ airflow {shlex.join(args)}\n")
        out.flush()
        process = subprocess.Popen([binary, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        while process.poll() is None:
            exposed = listening_beyond_loopback(process.pid)
            assert not exposed, f"airflow {args[0]} listens beyond loopback: {exposed}"
            time.sleep(0.5)
    return process.returncode


def listening_beyond_loopback(pid: int) -> list[str]:
    """TCP sockets in LISTEN state that this process (or a child) holds on an address other than loopback."""
    inodes = set()
    for proc in [pid, *_children(pid)]:
        try:
            for fd in Path(f"/proc/{proc}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    exposed = []
    for table, loopback in (("tcp", ("0100007F",)), ("tcp6", ("00000000000000000000000001000000",))):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            address, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes and address.split(":")[0] not in loopback:
                exposed.append(f"{table} {address}")
    return exposed


def _children(pid: int) -> list[int]:
    try:
        found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return found + [g for c in found for g in _children(c)]


def last_run(db: Path, dag_id: str) -> dict:
    """The newest DAG run: its state, its tasks (id, name, state) and its `summary` XCom, read from Airflow's DB."""
    with sqlite3.connect(db) as con:
        run_id, state = con.execute("SELECT run_id, state FROM dag_run WHERE dag_id=? ORDER BY id DESC LIMIT 1",
                                    (dag_id,)).fetchone()  # fmt: skip
        tasks = con.execute("SELECT task_id, map_index, rendered_map_index, state FROM task_instance "
                            "WHERE dag_id=? AND run_id=?", (dag_id, run_id)).fetchall()  # fmt: skip
        xcom = con.execute("SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id='summary' AND key='summary'",
                           (dag_id, run_id)).fetchone()  # fmt: skip
    summary = json.loads(xcom[0]) if xcom else None
    while isinstance(summary, str):  # stored as JSON text
        summary = json.loads(summary)
    return {"run_id": run_id, "state": state, "summary": summary,
            "tasks": {(t if m < 0 else name): s for t, m, name, s in tasks}}  # fmt: skip


def iamrunbook(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iamrunbook", *args], env=env, capture_output=True, text=True)


def names(settings: dict) -> dict[str, str]:
    """account name -> id, as `iamrunbook accounts list` gives them."""
    done = iamrunbook("accounts", "list", settings["IAMRUNBOOK_ACCOUNTS"], env=settings)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row["id"] for row in json.loads(done.stdout.strip().splitlines()[-1])}


def one_folder(out: Path, before: set[Path]) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir() and p not in before]
    assert folder.name.endswith("-accounts"), folder
    return folder


def check_plan_run(run: dict, folder: Path, ids: dict, env: dict) -> None:
    """Tasks named by account, their states, the summary (file and XCom), the drift policy, one chain."""
    named = {f"{name} ({ids[name]})" for name in ("legacy", "data", "playground")}
    assert set(run["tasks"]) == {"accounts", "summary", *named}, run["tasks"]
    states = {name.split(" ")[0]: state for name, state in run["tasks"].items()}
    assert states == {"accounts": "success", "data": "success", "legacy": "skipped", "playground": "failed",
                      "summary": "failed"}, states  # fmt: skip
    assert run["state"] == "failed", run
    written = json.loads((folder / "accounts_summary.json").read_text())
    assert {r["name"]: r["exit_code"] for r in written["accounts"]} == {"data": 0, "legacy": 2, "playground": 1}
    assert run["summary"] == written and written["exit_code"] == 1
    check_chain(folder, 3, env)


def check_chain(folder: Path, count: int, env: dict) -> None:
    """One chain in the folder (exactly one run starts it), intact; `audit list` of OUT shows each run."""
    runs = [p for p in folder.iterdir() if (p / "run.json").is_file()]
    assert len(runs) == count, runs
    firsts = [p for p in runs if json.loads((p / "run.json").read_text())["previous_run"] is None]
    assert len(firsts) == 1, firsts
    out = folder.parent
    verified = iamrunbook("audit", "verify", str(out), env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout
    listed = json.loads(iamrunbook("audit", "list", str(out), "--json", env=env).stdout)
    assert {f"{folder.name}/{p.name}" for p in runs} <= {row["run"] for row in listed}, listed


def check_drift_skip(run: dict, folder: Path, env: dict) -> None:
    states = {name.split(" ")[0]: state for name, state in run["tasks"].items()}
    assert states == {"accounts": "success", "legacy": "skipped", "summary": "skipped"}, states
    assert run["state"] == "success", run
    assert run["summary"]["exit_code"] == 2, run["summary"]
    check_chain(folder, 1, env)


def check_apply_run(run: dict, folder: Path, reviewed: Path, ids: dict, env: dict) -> None:
    """legacy: exactly its reviewed plan; data: its empty one; playground: refused, its IAM as it was."""
    states = {name.split(" ")[0]: state for name, state in run["tasks"].items()}
    assert states == {"accounts": "success", "legacy": "success", "data": "success", "playground": "failed",
                      "summary": "failed"}, states  # fmt: skip
    rows = {r["name"]: r for r in json.loads((folder / "accounts_summary.json").read_text())["accounts"]}
    planned = {r["name"]: r for r in json.loads((reviewed / "accounts_summary.json").read_text())["accounts"]}
    for name in ("legacy", "data"):
        applied, plan = folder / rows[name]["run_folder"], reviewed / planned[name]["run_folder"]
        record = json.loads((applied / "run.json").read_text())
        assert record["mode"] == "apply" and record["verification_ok"] is True, record
        assert record["reviewed_plan"]["run_id"] == plan.name and record["reviewed_plan"]["approved_by"] == APPROVER
        assert _changes(applied) == _changes(plan), name
    assert _changes(folder / rows["legacy"]["run_folder"]), "legacy's reviewed plan had changes to make"
    assert rows["playground"]["exit_code"] == 1
    check_playground_untouched(ids["playground"], env)
    check_chain(folder, len([r for r in rows.values() if r["run_folder"]]), env)


def _changes(run_dir: Path) -> list:
    return json.loads((run_dir / "plan.json").read_text())["changes"]


def check_playground_untouched(account_id: str, env: dict) -> None:
    """The stranger keeps its inline policy and the unlisted ghost is still there: refused means unchanged."""
    import boto3

    keys = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": env["AWS_REGION"]}
    sts = boto3.client("sts", aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], **keys)  # fmt: skip
    role = f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
    c = sts.assume_role(RoleArn=role, RoleSessionName="airflow-check")["Credentials"]
    iam = boto3.client("iam", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                       aws_session_token=c["SessionToken"], **keys)  # fmt: skip
    assert iam.list_user_policies(UserName="stranger")["PolicyNames"] == ["assume-anything"]
    assert iam.get_user(UserName="ghost")["User"]["UserName"] == "ghost"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow", default=str(ROOT / ".airflow-venv" / "bin" / "airflow"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="iamrb-airflow-") as temp:
        work = Path(temp)
        try:
            with fixture(work) as settings:
                env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **settings}
                steps(args.airflow, work, env, airflow_env(work, settings))
        except BaseException:
            for log in ("airflow.log", "fixture.log"):
                if (work / log).is_file():
                    print((work / log).read_text()[-20000:], file=sys.stderr)
            raise
    print(f"airflow check: every check holds ({time.monotonic() - started:.0f} s)")
    return 0


def steps(binary: str, work: Path, env: dict, flow: dict) -> None:
    log, out, db = work / "airflow.log", Path(env["IAMRUNBOOK_OUT"]), work / "airflow" / "airflow.db"
    ids = names(env)
    python = Path(binary).absolute().with_name("python")  # absolute, not resolved: the venv's own python
    alone = subprocess.run([str(python), "-c", "import iamrunbook"], env=flow, capture_output=True, text=True,
                           cwd=work)  # not the checkout, which `python -c` would put on sys.path  # fmt: skip
    assert "ModuleNotFoundError" in alone.stderr, "Airflow's own environment must not have iamrunbook"
    setup = subprocess.Popen([sys.executable, "-m", "iamrunbook", "run", "--accounts", env["IAMRUNBOOK_ACCOUNTS"],
                              "--account", "data", "--apply", "--out", str(work / "setup")], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
    assert airflow(binary, flow, "db", "migrate", log=log) == 0
    assert setup.wait() == 0, "data could not be brought in sync before the plan DAG"
    timed = {}
    before = set(out.iterdir()) if out.is_dir() else set()
    timed["plan"] = _timed(lambda: airflow(binary, {**flow, "IAMRUNBOOK_DRIFT": "fail"}, "dags", "test",
                                           "iamrunbook_plan", log=log))  # fmt: skip
    plan_folder = one_folder(out, before)
    check_plan_run(last_run(db, "iamrunbook_plan"), plan_folder, ids, env)

    legacy_only = work / "legacy-only.yaml"
    project = Path(env["IAMRUNBOOK_ACCOUNTS"]).parent
    legacy_only.write_text(f"defaults:\n  role_name: OrganizationAccountAccessRole\n  parameters_file: {project}/"
                           f"{{name}}.yaml\naccounts:\n  - id: '{ids['legacy']}'\n    name: legacy\n")  # fmt: skip
    before = set(out.iterdir())
    drift = {**flow, "IAMRUNBOOK_DRIFT": "skip", "IAMRUNBOOK_ACCOUNTS": str(legacy_only),
             "IAMRUNBOOK_DAG_NOTEBOOKS": "04_verify"}  # a daily drift check: 04 alone  # fmt: skip
    timed["drift"] = _timed(lambda: airflow(binary, drift, "dags", "test", "iamrunbook_plan", log=log))
    check_drift_skip(last_run(db, "iamrunbook_plan"), one_folder(out, before), env)

    before = set(out.iterdir())
    conf = json.dumps({"plan_run": plan_folder.name, "approved_by": APPROVER})
    timed["apply"] = _timed(lambda: airflow(binary, flow, "dags", "test", "iamrunbook_apply", "-c", conf, log=log))
    check_apply_run(last_run(db, "iamrunbook_apply"), one_folder(out, before), plan_folder, ids, env)
    print("airflow dags test seconds:", {k: round(v) for k, v in timed.items()})


def _timed(call) -> float:
    started = time.monotonic()
    call()
    seconds = time.monotonic() - started
    print(f"airflow dags test: {seconds:.0f} s", flush=True)
    return seconds


if __name__ == "__main__":
    sys.exit(main())
