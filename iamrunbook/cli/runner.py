"""Run the runbook notebooks headless with papermill; one run folder per run is the audit record.

The flow of `run`: check the parameters (before any kernel, so a typo never reaches AWS), make a new
run folder, execute each notebook in order with papermill (stopping at the first failure), export each
executed notebook to HTML, and write `run.json` with what ran, against which account, the outcome and
the sha256 of every file. Exit codes follow `terraform plan -detailed-exitcode`: 0 converged,
2 plan-only with pending changes, 1 error.

Kernels learn the run folder from the environment they inherit (IAMRUNBOOK_RUN_DIR, IAMRUNBOOK_HEADLESS,
IAMRUNBOOK_START_DIR), the same way they find AWS: nothing run-specific is injected into a notebook
except its parameters.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.base.shipped import shipped_dir
from iamrunbook.core.params import check_params, load_params_file, validate_params
from iamrunbook.core.spec import grant_settings, load_spec, load_yaml
from iamrunbook.flows.precheck import precheck
from iamrunbook.flows.session import HEADLESS_ENV, RUN_DIR_ENV, START_DIR_ENV
from iamrunbook.runs import manifest, planfile
from iamrunbook.runs.manifest import new_run_dir, utc_iso, versions
from iamrunbook.runs.outcome import SUCCEEDED, Assessment, assess, decide_exit
from iamrunbook.runs.record_html import export_html

READ_ACTIONS: tuple[str, ...] = ()  # the notebooks call AWS; the runner itself never does
WRITE_ACTIONS: tuple[str, ...] = ()

NOTEBOOKS_ENV = "IAMRUNBOOK_NOTEBOOKS"
CHAIN = ("01_gather_user_info", "02_delete_legacy_policy", "03_import_and_apply", "04_verify")

FAILED = "failed"
NOT_RUN = "not run"
INTERRUPTED = "interrupted"


# --- finding notebooks -------------------------------------------------------------------------------
def notebooks_dir() -> Path:
    """IAMRUNBOOK_NOTEBOOKS if set, else the shipped `notebooks/`."""
    override = os.environ.get(NOTEBOOKS_ENV)
    if override:
        return Path(override)
    return shipped_dir("notebooks")


def available_notebooks() -> list[str]:
    folder = notebooks_dir()
    return sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []


def resolve_notebook(ref: str | Path) -> Path:
    """A notebook by name (`01_gather_user_info`, with or without .ipynb) or by path."""
    path = Path(ref)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    name = path.name if path.suffix == ".ipynb" else f"{path.name}.ipynb"
    candidate = notebooks_dir() / name
    if len(path.parts) == 1 and candidate.is_file():
        return candidate
    known = ", ".join(available_notebooks()) or f"none in {notebooks_dir()} (set {NOTEBOOKS_ENV} to the folder)"
    raise SpecError(f"no notebook {str(ref)!r}; known notebooks: {known} (or give a path to an .ipynb file)")


# --- parameters --------------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A `-p NAME VALUE` value, read as YAML like the parameters file (`true`, `3`, `{a: b}`, `null`)."""
    return load_yaml(text, "-p value")


def gather_params(
    params_file: str | Path | None = None,
    overrides: Iterable[tuple[str, str]] = (),
    apply: bool = False,
) -> dict[str, Any]:
    """The parameters as given: the file, then each -p (YAML), then --apply. Raises SpecError if invalid."""
    params = load_params_file(params_file) if params_file is not None else {}
    for name, text in overrides:
        params[name] = parse_value(text)
    if apply:
        params["apply"] = True
    problems = check_params(params)
    if problems:
        raise SpecError(problems)
    return params


def kernel_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter, defaults filled in: a notebook's own example defaults never mix into a run."""
    return validate_params(params)


# --- the run folder ----------------------------------------------------------------------------------
def run_label(notebooks: Sequence[Path], apply: bool) -> str:
    mode = "apply" if apply else "plan"
    stems = [p.stem for p in notebooks]
    if tuple(stems) == CHAIN:
        return mode
    label = "+".join(stems) + f"-{mode}"
    return re.sub(r"[^\w.+-]", "_", label)[:100]


@contextlib.contextmanager
def kernel_env(run_dir: Path, start_dir: Path, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """The environment kernels inherit (papermill starts them from this process), restored afterwards."""
    wanted = {RUN_DIR_ENV: str(run_dir), HEADLESS_ENV: "1", START_DIR_ENV: str(start_dir), **dict(extra or {})}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _socket_dir() -> Iterator[str | None]:
    """A private folder (mode 0700) for kernel sockets where the OS has Unix sockets; else None (TCP)."""
    if os.name != "posix":
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="iamrb-") as folder:
        yield folder


# --- executing one notebook --------------------------------------------------------------------------
@dataclass(frozen=True)
class CellFailure:
    """Where a notebook stopped and why, in the words an operator needs (not the traceback)."""

    notebook: str
    exec_count: int | None
    cell_index: int | None
    first_line: str
    ename: str
    evalue: str

    def message(self) -> str:
        where = f"cell In [{self.exec_count}]" if self.exec_count is not None else "a cell"
        if self.first_line:
            where += f" ({self.first_line})"
        return f"{self.notebook}: {where} failed\n{self.ename}: {self.evalue}".rstrip()


@dataclass(frozen=True)
class NotebookRun:
    name: str
    status: str
    seconds: float = 0.0
    output: str | None = None
    html: str | None = None
    failure: CellFailure | None = None


def _first_code_line(source: str) -> str:
    for line in source.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line[:120]
    return ""


def _failure_from(name: str, exc: BaseException) -> CellFailure:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return CellFailure(
            name, exc.exec_count, exc.cell_index, _first_code_line(exc.source or ""), exc.ename, exc.evalue
        )
    return CellFailure(name, None, None, "", type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "")


def _kernel_manager_class(socket_dir: str | None):
    """A kernel manager for runbook kernels.

    Its `python3` kernel is this interpreter, so the kernel imports this iamrunbook (a user-level
    `python3` kernelspec may point at another Python without it). Given `socket_dir` (a private folder),
    the kernel talks over Unix sockets in it instead of TCP ports on localhost that any local user can
    reach; each kernel gets its own socket names.
    """
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name in ("python3", "python"):
                return self.kernel_spec_class(
                    resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
                )
            return super().get_kernel_spec(kernel_name)

    class RunbookKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client interrupts every kernel before asking it to shut down; an idle kernel then
            # logs "KeyboardInterrupt caught in kernel" on stderr at the end of every notebook. A clean
            # shutdown needs no interrupt: the shutdown request, then a kill if that times out.
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        @default("kernel_spec_manager")
        def _default_specs(self):
            return ThisPythonSpecs(data_dir=self.data_dir)

        @default("transport")
        def _default_transport(self):
            return "ipc" if socket_dir else "tcp"

        @default("ip")
        def _default_ip(self):
            # jupyter_client's own default for ipc is "kernel-ipc" in the working directory, shared by
            # every kernel started there: two kernels would read each other's messages.
            if self.transport == "ipc":
                return os.path.join(socket_dir, f"k{uuid.uuid4().hex[:8]}")
            return "127.0.0.1"

    return RunbookKernelManager


def execute_notebook(
    source: Path, run_dir: Path, params: Mapping[str, Any], cwd: Path, socket_dir: str | None = None
) -> NotebookRun:
    """Execute one notebook into the run folder; a failed cell is a result, not an exception."""
    import papermill
    from papermill.exceptions import PapermillException

    name = source.stem
    output = run_dir / source.name
    started = time.monotonic()
    failure = None
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=dict(params),
            progress_bar=False,
            cwd=str(cwd),
            kernel_manager_class=_kernel_manager_class(socket_dir),
        )
    except (PapermillException, RuntimeError, OSError, TimeoutError) as exc:
        # PapermillExecutionError: a cell raised; the others: the kernel died or did not start.
        failure = _failure_from(name, exc)
    seconds = round(time.monotonic() - started, 2)
    html = export_html(output) if output.is_file() else None
    return NotebookRun(
        name,
        FAILED if failure else SUCCEEDED,
        seconds,
        output.name if output.is_file() else None,
        html.name if html else None,
        failure,
    )


# --- what the run left: pending changes, problems no apply fixes, the manifest ------------------------
@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    exit_code: int
    notebooks: tuple[NotebookRun, ...]
    pending: tuple[str, ...] = ()
    record: dict = field(default_factory=dict, repr=False)
    problems: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    @property
    def failure(self) -> CellFailure | None:
        return next((r.failure for r in self.notebooks if r.failure), None)


def write_record(run_dir: Path, *, given: Mapping[str, Any], params_file: str | None, runs: Sequence[NotebookRun],
                 started: datetime, assessment: Assessment, exit_code: int, apply: bool,
                 extra: Mapping[str, Any] | None = None) -> dict:  # fmt: skip
    """run.json, through manifest.write_manifest (hashes and the chain link are added there)."""
    identity = records.read(run_dir, records.IDENTITY)
    plan = records.read(run_dir, records.PLAN)
    legacy = records.read(run_dir, records.LEGACY_PLAN)
    verification = records.read(run_dir, records.VERIFICATION)
    review = records.read(run_dir, records.ACCESS_REVIEW)
    final = manifest.write_manifest(
        run_dir,
        manifest.RunManifest(
            id=run_dir.name,
            kind="access_review" if review is not None else "run",
            parameters=dict(given),
            parameters_file=params_file,
            mode="apply" if apply else "plan",
            caller_arn=identity.caller_arn if identity else None,
            account_id=identity.account_id if identity else None,
            versions=versions(),
            started=utc_iso(started),
            finished=utc_iso(datetime.now(timezone.utc)),
            notebooks=[asdict(r) for r in runs],
            plan_summary=plan.summary() if plan is not None else None,
            legacy_plan_summary=legacy.summary() if legacy is not None and not legacy.nothing_to_migrate else None,
            verification_ok=verification.ok if verification is not None else None,
            pending=list(assessment.pending),
            problems=list(assessment.problems),
            exit_code=exit_code,
            reviewer=getattr(review, "reviewer", None),
            **dict(extra or {}),
        ),
    )
    return final.to_dict()


# --- the run -----------------------------------------------------------------------------------------
def execute_all(sources, run_dir, params, start, socket_dir, runs: list[NotebookRun], say, *, refused: bool) -> None:
    """Each notebook in order into `runs`; after a failure (or a refusal) the rest are not run."""
    for source in sources:
        if refused or (runs and runs[-1].status != SUCCEEDED):
            runs.append(NotebookRun(source.stem, NOT_RUN))
            continue
        say(f"running {source.stem} ...")
        result = execute_notebook(source, run_dir, params, start, socket_dir)
        runs.append(result)
        say(f"  {result.status} in {result.seconds:.1f} s")


def reviewed_options(plan: str | Path, approved_by: str, max_age: timedelta, params: Mapping[str, Any]) -> dict:
    """`--plan`: the reviewed run, loaded and checked now; `run` then plans afresh before any kernel and refuses
    when the fresh plan differs (flows/precheck.py). The same for one account and for each of `--accounts`."""
    saved = planfile.load(plan, max_age=max_age)

    def check(full: Mapping[str, Any], notebooks: list[str], start: Path) -> list[str]:
        return precheck(saved, dict(full), notebooks, start)

    return {
        "params": {**params, "reviewed_plan": str(saved.run_dir)},
        "precheck": check,
        "env": {planfile.MAX_AGE_ENV: str(int(max_age.total_seconds()))},
        "extra": {"reviewed_plan": saved.provenance(approved_by, max_age)},
    }


def run(
    notebooks: Sequence[str | Path] = (),
    params: Mapping[str, Any] | None = None,
    *,
    out: str | Path = "runs",
    params_file: str | Path | None = None,
    start_dir: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
    extra: Mapping[str, Any] | None = None,
    precheck: Callable[[Mapping[str, Any], list[str], Path], list[str]] | None = None,
    env: Mapping[str, str] | None = None,
    label: str | None = None,  # the run folder's name after its timestamp; default: run_label (fanout: the account)
) -> RunResult:
    """Run notebooks (default: the chain 01 -> 04) in order, stopping at the first failure.

    `params` are the parameters as given; they are checked before any kernel starts (SpecError). `echo` receives one
    progress line per notebook start and end (the CLI prints them). `extra` goes into run.json as given (the
    reviewed plan and its approver). `precheck(params, notebooks, start)` runs once the run folder exists and before
    any kernel: what it returns refuses the run (exit 1, no notebook started), e.g. how a fresh plan differs from a
    reviewed one. `env` is added to the kernels' environment.
    """
    say = echo or (lambda line: None)
    given = dict(params or {})
    problems = check_params(given)
    if problems:
        raise SpecError(problems)
    sources = [resolve_notebook(n) for n in (notebooks or CHAIN)]
    apply = bool(given.get("apply", False))
    full = kernel_params(given)
    start = Path(start_dir or Path.cwd()).resolve()
    # Every notebook takes the same spec: a bad one is refused here, before any kernel or AWS call.
    load_spec(full["iam_users"], full["iam_users_file"], full["roles"], base_dir=start,
              settings=grant_settings(full, full["roles"]), max_temporary_days=full["max_temporary_days"])  # fmt: skip
    run_dir = new_run_dir(out, label or run_label(sources, apply))
    started = datetime.now(timezone.utc)
    runs: list[NotebookRun] = []
    refused = tuple(precheck(full, [p.stem for p in sources], start)) if precheck else ()
    try:
        with kernel_env(run_dir, start, env), _socket_dir() as socket_dir:
            execute_all(sources, run_dir, full, start, socket_dir, runs, say, refused=bool(refused))
    finally:
        # Interrupted (Ctrl-C, a crash in the runner itself): the record is still written, as a failure.
        for i, source in enumerate(sources[len(runs) :]):
            runs.append(NotebookRun(source.stem, INTERRUPTED if i == 0 else NOT_RUN))
        assessment = assess(run_dir, apply)
        if refused:
            assessment = Assessment(problems=refused, details=refused)
        code = decide_exit(runs, apply, assessment.pending, assessment.problems)
        record = write_record(
            run_dir,
            given=given,
            params_file=str(params_file) if params_file is not None else None,
            runs=runs,
            started=started,
            assessment=assessment,
            exit_code=code,
            apply=apply,
            extra=extra,
        )
    return RunResult(run_dir, code, tuple(runs), assessment.pending, record, assessment.problems, assessment.details)
