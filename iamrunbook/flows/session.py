"""What every notebook does first, and the one decision every changing step shares.

A notebook calls `rb = start(globals())` and then works through `rb`: parameters checked, AWS connected,
the account checked before anything else, records written to the run folder (`IAMRUNBOOK_RUN_DIR`, set by
`iamrunbook run`; a live session gets one folder per Jupyter session under the project's `runs/`).

`rb.carry_out(...)` is the headless / plan-only / live-confirm decision: under `iamrunbook run`, papermill and
nbval the `apply` parameter decides; in a live session the front end the notebook start-up plugged in
(ui/start.py: a two-step Confirm button) does, whatever `apply` says, so nothing changes without a second,
explicit click. The flows never import the UI: they ask `rb.frontend` (flows/frontend.py).
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from iamrunbook.aws import clients as aws
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base import records
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.progress import HEADLESS_ENV, headless
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.params import from_namespace, validate_params
from iamrunbook.core.spec import Spec, grant_settings, load_spec
from iamrunbook.flows.frontend import Frontend
from iamrunbook.runs import live as live_runs
from iamrunbook.runs import manifest

READ_ACTIONS = ("sts:GetCallerIdentity",)
WRITE_ACTIONS: tuple[str, ...] = ()

RUN_DIR_ENV = "IAMRUNBOOK_RUN_DIR"
START_DIR_ENV = "IAMRUNBOOK_START_DIR"
PLAN_ONLY = "Plan only (apply is false): nothing was changed."
NO_FRONTEND = (
    "Nothing was changed: this live session has no front end to confirm with. "
    "Start the notebook with `from iamrunbook.ui import start`."
)

__all__ = ["HEADLESS_ENV", "PLAN_ONLY", "RUN_DIR_ENV", "START_DIR_ENV", "Runbook", "headless", "start"]


def run_dir() -> Path:
    """The run folder: the runner's (from the environment), else this Jupyter session's, made once."""
    path = os.environ.get(RUN_DIR_ENV)
    if not path:
        path = str(manifest.session_run_dir(Path.cwd()))
        os.environ[RUN_DIR_ENV] = path  # every later cell of this kernel writes to the same folder
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Runbook:
    params: dict[str, Any]
    session: Any
    identity: dict
    run_dir: Path
    _spec: Spec | None = field(default=None, repr=False)
    #: no widget may wait for a click (iamrunbook run, papermill, nbval, tests)
    headless: bool = field(default_factory=headless)
    #: in a live session, the widget waiting for the operator's click (a ConfirmButton, or 03's editor)
    pending: Any = field(default=None, repr=False)
    #: where the run started: relative iam_users_file paths are relative to it
    start_dir: str | None = field(default_factory=lambda: os.environ.get(START_DIR_ENV))
    #: who confirms, edits and signs in a live session (ui/start.py plugs the widgets in); None headless
    frontend: Frontend | None = field(default=None, repr=False)

    @cached_property
    def iam(self):
        return aws.client(self.session, "iam")

    @cached_property
    def sts(self):
        return aws.client(self.session, "sts")

    @property
    def account_id(self) -> str:
        return self.identity["Account"]

    @property
    def caller_arn(self) -> str:
        return self.identity["Arn"]

    @property
    def apply(self) -> bool:
        return bool(self.params["apply"])

    def spec(self) -> Spec:
        """The validated spec; relative iam_users_file paths are relative to where the run started. A live
        session without `iam_users_file` uses the spec file it saved (03's editor), so every notebook of
        the session reads one spec, not a notebook's default `iam_users`."""
        if self._spec is None:
            p = self.params
            settings = grant_settings(p, p["roles"])
            users, path = p["iam_users"], p["iam_users_file"]
            remembered = None if self.headless or path else self.remembered_spec()
            if remembered is not None:
                users, path = None, remembered
                print(f"spec: {remembered}, saved earlier in this session (set iam_users_file to use another)")
            self._spec = load_spec(users, path, p["roles"], self.start_dir, settings,
                                   max_temporary_days=p["max_temporary_days"])  # fmt: skip
        return self._spec

    def remember_spec(self, path: Path) -> None:
        """The spec file this live session saved, in its session.json: the session's other notebooks use it."""
        if self.headless:
            return
        data = json.loads(records.read(self.run_dir, records.SESSION) or "{}")
        records.write(self.run_dir, records.SESSION, {**data, "spec_file": str(Path(path).resolve())})
        self._spec = None

    def pending_migration(self) -> tuple:
        """02's steps planned in this run folder and not yet carried out: what 04 simulates before it judges."""
        planned, done = self.read(records.LEGACY_PLAN), self.read(records.LEGACY_RESULT)
        return tuple(planned.steps) if planned is not None and not planned.blocked and done is None else ()

    def remembered_spec(self) -> str | None:
        data = json.loads(records.read(self.run_dir, records.SESSION) or "{}")
        found = data.get("spec_file")
        return found if found and Path(found).is_file() else None

    def inventory(self, *, with_credential_report: bool = False) -> Inventory:
        """One sweep; the credential report too when asked, or when MFA-required roles need to know who
        has an MFA device."""
        report = with_credential_report or bool(self.params["require_mfa"])
        return read_inventory(self.iam, self.sts, with_credential_report=report, progress=True)

    def write(self, record: records.Record | str, content: Any, *, name: str | None = None) -> Path:
        """Write a declared record into the run folder (records.py refuses anything undeclared)."""
        return records.write(self.run_dir, record, content, name=name)

    def read(self, record: records.Record, *, name: str | None = None) -> Any:
        return records.read(self.run_dir, record, name=name)

    def header(self) -> None:
        """Who, where and how: the first lines of every notebook's record."""
        print(f"caller:     {self.caller_arn}")
        print(f"account:    {self.account_id}")
        print(f"mode:       {'APPLY' if self.apply else 'plan only'}{'' if self.headless else ' (live session)'}")
        print(f"run folder: {self.run_dir.resolve()}")

    def carry_out(
        self,
        title: str,
        action: Callable[[], Any],
        *,
        prompt: str | None = None,
        ready: bool = True,
        live: Callable[[], Any] | None = None,
        step: str | None = None,
    ) -> Any:
        """Run `action` the way this session decides: headless by `apply`, live only after Confirm.

        `ready` false (nothing to do, or refused: the plan above says why) shows no button in a live
        session; headless, `action` still runs with `apply`, so a refusal fails the run as it should.
        `live` replaces the Confirm button with a view of its own (03's role matrix editor, which has
        its own two-step confirm). Returns what `action` returned when it ran now, else None. `step` (the
        notebook's name) makes a live Confirm leave a run in the chain, as a headless apply does (runs/live.py).
        """
        if self.headless:
            if self.apply:
                return action()
            print(PLAN_ONLY)
            return None
        if self.frontend is None:
            print(NO_FRONTEND)
            return None
        if live is not None:
            self.pending = live()
            return None
        if not ready:
            print("Nothing to confirm here: see the plan above.")
            return None
        self.pending = self.frontend.confirm(title, self._recorded(step, action) if step else action, prompt=prompt)
        return None

    def _recorded(self, step: str, action: Callable[[], Any]) -> Callable[[], Any]:
        """`action`, then its run folder in the chain, whether it finished or failed."""

        def run() -> Any:
            started, ok = datetime.now(timezone.utc), False
            try:
                result = action()
                ok = True
                show_live(result)
                return result
            finally:
                self.record_live(step, ok=ok, started=started)

        return run

    def record_live(self, step: str, *, ok: bool, started: datetime | None = None, approved_by: str | None = None,
                    spec_file: Path | None = None, files: Mapping[records.Record, Any] | None = None) -> Path | None:
        """A live change as a run folder in the chain (runs/live.py): the records `step` writes, the spec
        file, who confirmed (the operator at this session, unless `approved_by` says), and the notebook when
        the front end can save it. Headless runs are recorded by the runner: None."""
        if self.headless:
            return None
        spec = spec_file or (Path(self.spec().source) if self.spec().source else None)
        identity = records.Identity(self.caller_arn, self.account_id)
        change = live_runs.LiveChange(step, ok, approved_by or operator(), identity, self.params,
                                      started or datetime.now(timezone.utc), spec, dict(files or {}))  # fmt: skip
        folder = live_runs.prepare(self.run_dir, change)
        saver = getattr(self.frontend, "save_notebook", None)
        notebook, note = saver(folder, step) if saver else (None, "no front end could save the notebook")
        live_runs.finish(folder, change, self.run_dir.name, notebook, note)
        print(f"Recorded in the chain as run {folder} (iamrunbook audit list {folder.parent}).")
        if notebook is None:
            print(f"The notebook itself is not in that run: {note}. Save it (File > Save Notebook), then keep "
                  f"a copy beside the run: jupyter nbconvert --to html <this notebook> --output-dir {folder}-notebook")
        return folder


def show_live(result: Any) -> None:
    """What a confirmed step did, under its button (the cell's own output was written before the click)."""
    from IPython.display import display

    from iamrunbook.base.display import table
    from iamrunbook.flows.reports import results_frame

    frame = results_frame(result.rows()) if hasattr(result, "rows") else result
    if frame is not None and hasattr(frame, "empty"):
        display(table(frame, "No step was needed."))


def operator() -> str:
    """Who clicked: the login of the user this live session runs as (the AWS caller is recorded apart)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def check_account(identity: Mapping[str, str], expected_account_id: str | None) -> None:
    if expected_account_id and identity["Account"] != str(expected_account_id):
        raise SafetyError(
            f"refused: these credentials are for account {identity['Account']}, but expected_account_id is "
            f"{expected_account_id}. Nothing was changed. Check aws_profile or the environment."
        )


def start(namespace: Mapping[str, Any], frontend: Frontend | None = None) -> Runbook:
    """Validate the notebook's parameters, connect, and refuse a wrong account before anything else.
    `frontend` answers for the operator in a live session (ui/start.py passes the widgets)."""
    from iamrunbook.base.display import configure

    params = validate_params(from_namespace(namespace))
    configure()
    session = aws.make_session(params["aws_profile"], params["aws_region"])
    identity = aws.caller_identity(session)
    folder = run_dir()
    # Who ran it, for the run record (run.json) — written even when the account check refuses below.
    records.write(folder, records.IDENTITY, records.Identity(identity["Arn"], identity["Account"]))
    check_account(identity, params["expected_account_id"])
    return Runbook(params, session, identity, folder, frontend=frontend)


def open_runbook(
    params: Mapping[str, Any], run_dir: str | Path, *, session: Any = None, start_dir: str | Path | None = None
) -> Runbook:
    """A headless Runbook from plain parameters, for code and tests that run a flow without a notebook."""
    params = validate_params(params)
    session = session or aws.make_session(params["aws_profile"], params["aws_region"])
    identity = aws.caller_identity(session)
    check_account(identity, params["expected_account_id"])
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    start = str(start_dir) if start_dir is not None else os.environ.get(START_DIR_ENV)
    return Runbook(params, session, identity, folder, headless=True, start_dir=start)
