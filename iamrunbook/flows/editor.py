"""The role matrix editor's model: a draft of the spec, its validation, its plan, saving and applying it.

Plain Python, so tests (and any other front end) drive it without widgets; `widgets.RoleMatrixEditor` is a
thin view over a `SpecDraft`. Every edit revalidates and replans from the inventory already read:
`make_plan` is pure, so typing never calls AWS. Applying takes two steps (`TwoStep`): `arm()` reads the
account afresh, runs the safety checks and holds the plan for review; `confirm()` applies it only if a
fresh read still gives exactly that plan, and first saves the spec to its file, so the next scheduled run
plans from what was applied instead of undoing it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from iamrunbook.aws.executor import ApplyError, ApplyResult
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError, SafetyError, SpecError
from iamrunbook.base.log import logger
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import Plan, make_plan
from iamrunbook.core.spec import GrantSettings, Spec, iam_name_problem, load_spec, validate_users
from iamrunbook.core.specfile import save_spec, spec_format
from iamrunbook.core.temporary import DEFAULT_MAX_TEMPORARY_DAYS, with_grant, without_grant
from iamrunbook.core.verify import unfixable_problems
from iamrunbook.flows.apply import apply_plan, prove_safe
from iamrunbook.runs.manifest import project_root

READ_ACTIONS = ("iam:GetAccountAuthorizationDetails", "sts:GetCallerIdentity")  # the fresh read before Apply
WRITE_ACTIONS: tuple[str, ...] = ()  # apply.apply_plan makes the changes and declares them

_log = logger.getChild("editor")

INFO, PENDING, ERROR = "info", "pending", "error"  # how a message reads: news, waiting for Confirm, a refusal
_AWS_ERRORS = (RunbookError, ClientError, BotoCoreError)  # shown to the operator; nothing was changed


# --- the account: the one place this module reads it, checks a plan and changes it ------------------


#: the run-folder files that mark a folder as a record (every notebook writes identity.json first)
RUN_MARKERS = (records.RUN_MANIFEST.name, records.SESSION.name, records.IDENTITY.name)
SPEC_FILE_NAME = "iam_users.yaml"


def run_folder_of(path: Path) -> Path | None:
    """The run folder `path` would sit in, or None: a spec saved there would be lost with the record."""
    return next((f for f in Path(path).resolve().parents if any((f / m).exists() for m in RUN_MARKERS)), None)


def lasting_spec_path(start: str | Path | None) -> Path | None:
    """Where to offer to save a spec given as the `iam_users` parameter: the project's `parameters/`, beside
    the parameters files, when there is one; else nothing (the operator types a path)."""
    root = project_root(Path(start or Path.cwd()))
    return root / "parameters" / SPEC_FILE_NAME if root is not None and (root / "parameters").is_dir() else None


def read_account(iam: Any, sts: Any) -> Inventory:
    return read_inventory(iam, sts)


def check_plan(plan: Plan, draft: SpecDraft) -> None:
    """apply's safety checks, and the simulator's proof that no step takes a role from someone who keeps it."""
    prove_safe(plan, draft.max_deletions, allow_without_mfa_device=draft.allow_without_mfa_device,
               inventory=draft.inventory, spec=draft.spec)  # fmt: skip


def change_account(iam: Any, plan: Plan, draft: SpecDraft) -> ApplyResult:
    """Apply `plan`; raises ApplyError (with the partial result) when a change fails."""
    return apply_plan(iam, plan, max_deletions=draft.max_deletions, progress=True, inventory=draft.inventory,
                      spec=draft.spec, allow_without_mfa_device=draft.allow_without_mfa_device)  # fmt: skip


# --- arm, then confirm -------------------------------------------------------------------------------


class TwoStep:
    """A change that runs only on a second, explicit step: `arm()` shows what would happen, `confirm()`
    does it, `cancel()` (or `withdraw()`) drops it. `pending` is what waits for Confirm; `message` and
    `level` are what the operator reads next. `once` makes it one-shot (a notebook's destructive cell)."""

    not_armed = ""  # said when Confirm comes without a pending step

    def __init__(self, action: Callable[[], Any] | None = None, prompt: str = "", *, once: bool = True):
        self.action, self.prompt, self.once = action, prompt, once
        self.pending: Any = None
        self.ran = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.message, self.level = "", INFO

    @property
    def armed(self) -> bool:
        return self.pending is not None

    @property
    def ready(self) -> bool:
        """Whether the first step can be taken now."""
        return not (self.once and self.ran)

    def say(self, message: str, level: str = INFO) -> None:
        self.message, self.level = message, level

    def review(self) -> Any:
        """What to hold for Confirm, or None (having said why) when there is nothing to confirm."""
        self.say(self.prompt, PENDING)
        return self.prompt

    def run_reviewed(self, reviewed: Any) -> Any:
        """Run the change that was reviewed."""
        self.result = self.action()
        self.say("Done.")
        return self.result

    def arm(self) -> bool:
        if self.ready:
            self.pending = self.review()
        return self.armed

    def withdraw(self, message: str, level: str = INFO) -> None:
        self.pending = None
        self.say(message, level)

    def cancel(self) -> None:
        self.withdraw("Cancelled: nothing was changed.")

    def confirm(self) -> Any:
        """Run what was reviewed; only right after `arm()`, and (if `once`) only once."""
        reviewed = self.pending
        if reviewed is None or not self.ready:
            if self.not_armed:
                self.say(self.not_armed)
            return None
        self.pending = None
        self.ran = True
        self.error = None
        try:
            return self.run_reviewed(reviewed)
        except Exception as exc:  # shown to the operator; the notebook's record says what was done
            self.error = exc
            self.say(f"Failed: {exc}", ERROR)
            _log.error("confirmed action failed: %s", exc)
            return None


# --- the draft -----------------------------------------------------------------------------------------


def _entry(value: Any) -> dict[str, Any]:
    """A user's entry as the draft holds it; temporary grants ride along untouched (never made permanent)."""
    value = value if isinstance(value, Mapping) else {}
    entry = {"description": value.get("description") or "", "roles": list(value.get("roles") or [])}
    return entry | ({"temporary": list(value["temporary"])} if value.get("temporary") else {})


def _unique(problems: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(problems))


class SpecDraft(TwoStep):
    """The spec as the operator edits it, with its problems and the plan it gives; saved to a file and
    applied in two steps (see the module docstring).

    `source_path` is the file the spec lives in (None: it came from the `iam_users` parameter, and Apply is
    refused until it is saved to a file). `on_apply(plan, result)` runs after every apply that started.
    """

    not_armed = "Press Apply first: it shows what would change."

    def __init__(
        self,
        users: Mapping[str, Any],
        inventory: Inventory,
        *,
        roles: Mapping[str, str],
        settings: GrantSettings | None = None,
        source_path: str | Path | None = None,
        base_dir: str | Path | None = None,
        iam: Any = None,
        sts: Any = None,
        max_deletions: int = 3,
        on_apply: Callable[[Plan, ApplyResult], Any] | None = None,
        max_temporary_days: int = DEFAULT_MAX_TEMPORARY_DAYS,
    ):
        super().__init__(once=False)
        self.max_temporary_days = max_temporary_days  # the session's parameter: temporary grants are checked by it
        self.roles = dict(roles)
        self.settings = settings or GrantSettings()
        self._users = {name: _entry(value) for name, value in users.items()}
        self.inventory = inventory
        self.source_path = Path(source_path) if source_path else None
        self.base_dir = Path(base_dir) if base_dir else None
        self.iam, self.sts = iam, sts
        self.max_deletions = max_deletions
        #: apply even though a user granted an MFA-required role has no MFA device (the parameter)
        self.allow_without_mfa_device = False
        self.on_apply = on_apply
        #: runs with the path after every write of the spec (a live session remembers it for its other notebooks)
        self.on_save: Callable[[Path], Any] | None = None
        self.spec: Spec | None = None
        self.plan: Plan | None = None
        self.errors: list[str] = []
        #: what 04 would report that no apply fixes, when `check_access` (a live session's editor); the legacy
        #: migration's steps (`migration`, 02's plan in the session) are simulated first, as 04 does
        self.unfixable: list[str] = []
        self.check_access, self.migration = False, ()
        self.apply_error: ApplyError | None = None
        self.saved_to: Path | None = None
        self.saved_sha256: str | None = None
        self.refresh()

    @classmethod
    def from_spec(cls, spec: Spec, inventory: Inventory, **options: Any) -> SpecDraft:
        """A draft of a loaded spec, saved back to its source file unless `source_path` says otherwise."""
        options["source_path"] = options.get("source_path") or spec.source
        return cls(spec.to_mapping(), inventory, roles=spec.roles, settings=spec.settings, **options)

    # --- state ---------------------------------------------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """The `iam_users` mapping as edited (a copy)."""
        return copy.deepcopy(self._users)

    @property
    def ready(self) -> bool:
        return self.plan is not None and self.iam is not None and self.sts is not None

    def user_problems(self, user: str) -> list[str]:
        return [p for p in self.errors if p.startswith(f"{user}: ")]

    def spec_problems(self) -> list[str]:
        """The problems that belong to no user row (a role missing from the account, say), then what 04 would
        report that no apply fixes (access by a path the runbook does not own), each once."""
        return [p for p in self.errors if not any(p.startswith(f"{u}: ") for u in self._users)] + self.unfixable

    @property
    def preview_text(self) -> str:
        if self.plan is None:
            return "No plan while the spec is invalid:\n" + "\n".join(self.errors)
        return self.plan.to_text()

    # --- edits ---------------------------------------------------------------------------------------

    def set_role(self, user: str, key: str, granted: bool) -> None:
        roles = self._users[user]["roles"]
        if granted and key not in roles:
            roles.append(key)
            roles.sort(key=list(self.roles).index)
        elif not granted and key in roles:
            roles.remove(key)
        self._edited()

    def grant_temporary(self, user: str, key: str, until: datetime, reason: str) -> None:
        """Give `user` the role `key` until `until` (UTC) for `reason`: validated as the spec is, saved and
        applied like any edit. `until_for("4h", now)` (core/temporary.py) turns "for N hours" into an until."""
        self._users = with_grant(self._users, user, key, until, reason)
        self._edited()

    def grant_checked(self, user: str, key: str, until: datetime, reason: str) -> list[str]:
        """`grant_temporary` only if it adds no problem to the spec; else the new problems, and nothing changed."""
        try:
            candidate = with_grant(self._users, user, key, until, reason)
        except ValueError as exc:
            return [str(exc)]
        now = datetime.now(timezone.utc)
        before = set(validate_users(self._users, self.roles, now, self.max_temporary_days))
        added = [p for p in validate_users(candidate, self.roles, now, self.max_temporary_days) if p not in before]
        if not added:
            self._users = candidate
            self._edited()
        return added

    def revoke_temporary(self, user: str, key: str) -> None:
        self._users = without_grant(self._users, user, key)
        self._edited()

    def set_description(self, user: str, description: str) -> None:
        self._users[user]["description"] = description
        self._edited()

    def new_user_problem(self, name: str) -> str | None:
        """Why `name` cannot be added, or None; an empty name is not a problem yet."""
        if not name:
            return None
        problem = iam_name_problem(name)
        if problem:
            return problem
        taken = {u.lower(): u for u in self._users}
        if name.lower() in taken:
            return f"{taken[name.lower()]!r} is already in the spec (IAM user names are case-insensitive)"
        return None

    def add_user(self, name: str, description: str = "", roles: Iterable[str] = ()) -> str | None:
        """Add a user; returns why not (an invalid or taken name), or None when added."""
        name = name.strip()
        problem = self.new_user_problem(name) or (None if name else "type a user name first")
        if problem:
            return problem
        wanted = set(roles)
        self._users[name] = {"description": description, "roles": [k for k in self.roles if k in wanted]}
        self._edited()
        return None

    def remove_user(self, name: str) -> None:
        self._users.pop(name, None)
        self._edited()

    def _edited(self) -> None:
        """Any edit withdraws a plan waiting for Confirm: the operator confirms only what they reviewed."""
        if self.armed:
            self.withdraw("The spec changed: press Apply again to review the new plan.")
        self.refresh()

    def refresh(self) -> None:
        """Revalidate and replan from the inventory already read: no AWS call. Each problem is listed once."""
        self.spec, self.plan, self.errors, self.unfixable = None, None, [], []
        try:
            self.spec = load_spec(self._users, roles=self.roles, settings=self.settings,
                                  max_temporary_days=self.max_temporary_days)  # fmt: skip
            self.plan = make_plan(self.spec, self.inventory)
        except SpecError as exc:
            self.errors = _unique(exc.problems)
            return
        if not self.check_access:
            return
        with contextlib.suppress(RunbookError):  # a plan the simulator refuses is refused at Apply, with its reason
            found = unfixable_problems(self.spec, self.inventory, self.migration)
            self.unfixable = _unique(f"no apply fixes: {p.line()}" for p in found)

    # --- save ----------------------------------------------------------------------------------------

    def resolve(self, path: str | Path) -> Path:
        """A path the operator typed, relative to where the run started (as `iam_users_file` is)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() or self.base_dir is None else self.base_dir / p

    def _write(self, path: Path) -> Path:
        saved = save_spec(path, self._users, self.roles)
        self.saved_to, self.saved_sha256 = saved, hashlib.sha256(saved.read_bytes()).hexdigest()
        if self.on_save is not None:
            self.on_save(saved)
        return saved

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write the spec to `path` (default: its file); a new path becomes the spec's file from now on."""
        if self.spec is None:
            self.say("Not saved: fix the problems above first.", ERROR)
            return None
        target = self.resolve(path) if path else self.source_path
        if target is None:
            self.say("Not saved: this spec came from the iam_users parameter; give a file to save it to.", ERROR)
            return None
        record = run_folder_of(target)
        if record is not None:
            self.say(f"Not saved: {target} is inside the run folder {record}, a record that is never edited. Save the "
                     "spec where it lasts, e.g. beside your parameters file, and point iam_users_file there.", ERROR)
            return None
        try:
            saved = self._write(target)
        except (RunbookError, OSError, yaml.YAMLError) as exc:
            self.say(f"Not saved: {exc}", ERROR)
            return None
        moved, self.source_path = saved != self.source_path, saved
        message = f"Saved {len(self._users)} user(s) to {saved}."
        if moved:
            message += (
                f" Point scheduled runs at this file (iam_users_file: {saved}), or the next one plans from the old"
                " spec and undoes what you apply here."
            )
        self.say(message)
        return saved

    def apply_record(self, plan: Plan, result: ApplyResult) -> dict[str, Any]:
        """What an interactive apply did, and the spec file (with its sha256) that says it should stay."""
        return {
            "ok": result.ok,
            "error": result.error,
            "summary": plan.summary(),
            "changes": result.rows(),
            "spec_file": str(self.saved_to) if self.saved_to else None,
            "spec_sha256": self.saved_sha256,
        }

    # --- apply: a fresh read and the safety checks, then an explicit confirm --------------------------

    def _fresh_plan(self) -> Plan:
        """The account may have changed since the preview's inventory: read it again, plan again."""
        self.inventory = read_account(self.iam, self.sts)
        return make_plan(self.spec, self.inventory)

    def _apply_refusal(self) -> str | None:
        if self.plan is None:
            return "Nothing to apply: fix the spec first."
        if self.iam is None or self.sts is None:
            return "No AWS clients given."
        if self.source_path is None:
            return (
                "Apply refused: this spec came from the iam_users parameter, and an applied edit that is in no file"
                " is undone by the next scheduled run. Save it to a file first, then point scheduled runs at that"
                " file (iam_users_file)."
            )
        try:
            spec_format(self.source_path)
        except RunbookError as exc:
            return f"Apply refused: the spec could not be saved first: {exc}"
        return None

    def review(self) -> Plan | None:
        """First step: read the account, plan, run the safety checks; the plan then waits for Confirm."""
        refusal = self._apply_refusal()
        if refusal:
            self.say(refusal, ERROR)
            return None
        try:
            plan = self._fresh_plan()
            check_plan(plan, self)
        except _AWS_ERRORS as exc:
            self.refresh()
            self.say(f"Apply refused: {exc}", ERROR)
            return None
        self.refresh()  # the preview now shows the fresh plan
        if plan.is_empty:
            self.say("No changes: the account already matches the spec.")
            return None
        self.say(
            f"{plan.summary_line()} Review the changes above, then press Confirm apply to make them, or Cancel. "
            "Nothing has changed yet.",
            PENDING,
        )
        return plan

    def run_reviewed(self, reviewed: Plan) -> ApplyResult | None:
        """Second step: save the spec, then apply the reviewed plan if the account still gives exactly it."""
        try:
            plan = self._fresh_plan()
        except _AWS_ERRORS as exc:
            self.say(f"Not applied: {exc}", ERROR)
            return None
        if plan.changes != reviewed.changes:
            self.refresh()
            self.pending = plan
            self.say(
                f"The account changed since you reviewed the plan. {plan.summary_line()} Review the new plan above "
                "and confirm again.",
                PENDING,
            )
            return None
        try:
            self._write(self.source_path)
        except (RunbookError, OSError, yaml.YAMLError) as exc:
            self.say(f"Not applied: saving the spec to {self.source_path} failed first: {exc}", ERROR)
            return None
        return self._apply(plan)

    def _apply(self, plan: Plan) -> ApplyResult | None:
        self.apply_error = None
        try:
            result = change_account(self.iam, plan, self)
        except ApplyError as exc:
            result, self.apply_error = exc.result, exc
        except SafetyError as exc:
            self.say(str(exc), ERROR)
            return None
        self.result = result
        if self.on_apply is not None:
            self.on_apply(plan, result)
        if result.ok:
            self.say(f"Applied: {len(result.done)} change(s) done.")
        else:
            self.say(
                f"Stopped at {result.failed.address}: {result.error or ''}. {len(result.done)} done, "
                f"{len(result.not_done) + 1} not done; fix the cause and apply again (every change is idempotent).",
                ERROR,
            )
        try:
            self.inventory = read_account(self.iam, self.sts)
        except (ClientError, BotoCoreError) as exc:  # the apply itself is done; the preview may lag
            _log.warning("re-reading the account after apply failed: %s", exc)
        self.refresh()
        return result
