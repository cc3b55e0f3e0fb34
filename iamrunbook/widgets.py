"""The operator's interactive mode: a role matrix editor with a live plan, and a two-step confirm button.

Only live sessions (Jupyter, Voilà) show these; under `iamrunbook run`, papermill and nbval
(`runbook.headless()`) no widget is shown or waits for a click: the `apply` parameter decides.

Every edit revalidates the spec and recomputes the plan from the inventory already read: `make_plan` is
pure, so typing never calls AWS. Apply reads the account afresh (it may have changed since), shows that
plan's summary and changes nothing until a second, explicit Confirm click. The editor keeps its state in
attributes (`mapping`, `errors`, `plan`, `preview_text`, `status_text`, `result`) so tests can drive it
without a browser.
"""

from __future__ import annotations

import copy
import html
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from .apply import ApplyError, ApplyResult, apply_plan, check_safety
from .errors import RunbookError, SafetyError, SpecError
from .inventory import Inventory, read_inventory
from .log import logger
from .names import DEFAULT_ROLES
from .plan import Plan, make_plan
from .spec import Spec, iam_name_problem, load_hcl, load_spec, load_yaml, validate_users

READ_ACTIONS = ("iam:GetAccountAuthorizationDetails", "sts:GetCallerIdentity")  # the fresh read before Apply
WRITE_ACTIONS: tuple[str, ...] = ()  # apply.apply_plan makes the changes and declares them

_log = logger.getChild("widgets")

YAML_SUFFIXES = (".yaml", ".yml")
TFVARS_SUFFIXES = (".tfvars", ".hcl")
INTERACTIVE_SPEC_FILE = "iam_users.yaml"

_ERROR_STYLE = "color:#b00020"
_CELL = "padding:2px 8px;text-align:left"
_ROLE_WIDTH = "190px"


# --- writing the spec back to its file ------------------------------------------------------------


def _yaml_block(iam_users: Mapping[str, Any]) -> str:
    """`iam_users:` as block YAML, role lists in flow style (`roles: [admin, data_engineer]`)."""
    text = yaml.safe_dump(
        {"iam_users": dict(iam_users)}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=4096
    )
    return text.rstrip("\n")


def _last_mark(node: yaml.Node) -> int:
    """Where the text of `node` ends: its last scalar or closing bracket, not the comments after it."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1])
    return node.end_mark.index


def _splice_yaml(text: str, iam_users: Mapping[str, Any]) -> str:
    """`text` with its top-level `iam_users` replaced; every other key and comment stays as written."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    block = _yaml_block(iam_users)
    if root is None:
        return f"{text.rstrip()}\n{block}\n" if text.strip() else block + "\n"
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise RunbookError("the file is not a block mapping of parameters; not rewriting it")
    for key, value in root.value:
        if key.value == "iam_users":
            start = key.start_mark.index
            end = max(_last_mark(value), key.end_mark.index)
            line_end = text.find("\n", end)
            end = len(text) if line_end < 0 else line_end  # a comment after the old value goes with it
            return text[:start] + block + text[end:]
    return f"{text.rstrip()}\n{block}\n"


def _splice_tfvars(text: str, iam_users: Mapping[str, Any]) -> str:
    """`text` with its `iam_users = {...}` replaced by dump_tfvars' rendering; other variables stay."""
    import hcl2

    from .terraform import dump_tfvars

    rendered = dump_tfvars(iam_users)
    block = rendered[rendered.index("iam_users = ") :].rstrip("\n")
    body = hcl2.parses_to_tree(text).children[0]
    for node in body.children:
        if getattr(node, "data", None) == "attribute" and str(node.children[0].children[0]) == "iam_users":
            return text[: node.meta.start_pos] + block + text[node.meta.end_pos :]
    return f"{text.rstrip()}\n\n{block}\n" if text.strip() else rendered


def save_spec(path: str | Path, iam_users: Mapping[str, Any], roles: Mapping[str, str] | None = None) -> Path:
    """Write `iam_users` into the file it came from, keeping its format and everything else in it.

    YAML (a parameters file): only the top-level `iam_users` is replaced; `roles`, other keys and comments
    stay. tfvars: `iam_users = {...}` is rendered by terraform.dump_tfvars; other variables stay. A new file
    gets `roles` too (YAML) or only `iam_users` (tfvars). The result is read back and compared before it
    replaces the file, so a save never leaves a file that loads as a different spec.
    """
    from .terraform import dump_parameters_yaml, load_tfvars

    p = Path(path)
    iam_users = {name: {"description": e.get("description") or "", "roles": list(e.get("roles") or [])}
                 for name, e in iam_users.items()}  # fmt: skip
    old = p.read_text(encoding="utf-8") if p.is_file() else None
    if p.suffix in YAML_SUFFIXES:
        if old is None:
            new = dump_parameters_yaml(dict(DEFAULT_ROLES if roles is None else roles), iam_users)
            expected_rest: dict = {"roles": dict(DEFAULT_ROLES if roles is None else roles)}
        else:
            before = load_yaml(old, str(p)) or {}
            expected_rest = {k: v for k, v in before.items() if k != "iam_users"}
            new = _splice_yaml(old, iam_users)
        after = load_yaml(new, str(p))
        rest = {k: v for k, v in after.items() if k != "iam_users"}
        if after.get("iam_users") != iam_users or rest != expected_rest:
            raise RunbookError(f"{p}: the rewritten file would not read back as the edited spec; not saved")
    elif p.suffix in TFVARS_SUFFIXES:
        before = {} if old is None else load_hcl(old, str(p))
        new = _splice_tfvars(old or "", iam_users)
        # python-hcl2 lists comments under `__comments__`: those inside the old iam_users go with it.
        rest_before = {k: v for k, v in before.items() if k != "iam_users" and not k.startswith("__")}
        rest_after = {k: v for k, v in load_hcl(new, str(p)).items() if k != "iam_users" and not k.startswith("__")}
        if load_tfvars(new, str(p)) != iam_users or rest_after != rest_before:
            raise RunbookError(f"{p}: the rewritten file would not read back as the edited spec; not saved")
    else:
        raise RunbookError(f"{p}: unknown extension; the spec is saved as .yaml/.yml or .tfvars")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.saving")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, p)  # never a half-written spec file
    return p


# --- small rendering helpers ----------------------------------------------------------------------


def _table_html(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th style='{_CELL}'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{_CELL}'>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table class='iamrb-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _errors_html(problems: list[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    return f"<div class='iamrb-errors' style='{_ERROR_STYLE}'><ul style='margin:2px 0'>{items}</ul></div>"


def _plan_html(plan: Plan) -> str:
    summary = f"<p class='iamrb-summary'><b>{html.escape(plan.summary_line())}</b></p>"
    if plan.is_empty:
        return summary
    rows = plan.to_frame().to_dict("records")
    return summary + _table_html(rows, ["symbol", "kind", "address", "reason"])


def _css_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)


def _hide(widget: w.DOMWidget, hidden: bool) -> None:
    widget.layout.display = "none" if hidden else None


# --- the generic two-step confirm ------------------------------------------------------------------


class ConfirmButton(w.VBox):
    """A destructive action behind two clicks: the button arms it, Confirm runs it, Cancel disarms it."""

    def __init__(self, description: str, action: Callable[[], Any], *, prompt: str | None = None):
        self.action = action
        self.prompt = prompt or f"{description}: this changes the account. Confirm to go ahead, or cancel."
        self.button = w.Button(description=description, button_style="danger", icon="exclamation-triangle")
        self.confirm = w.Button(description="Confirm", button_style="danger")
        self.cancel = w.Button(description="Cancel")
        self.message = w.HTML()
        self.output = w.Output()
        for widget, name in (
            (self.button, "iamrb-arm"),
            (self.confirm, "iamrb-confirm"),
            (self.cancel, "iamrb-cancel"),
        ):
            widget.add_class(name)
        self.armed = False
        self.ran = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.button.on_click(lambda _: self._arm())
        self.confirm.on_click(lambda _: self._run())
        self.cancel.on_click(lambda _: self._disarm("Cancelled: nothing was changed."))
        self._show_confirm(False)
        super().__init__([self.button, w.HBox([self.confirm, self.cancel]), self.message, self.output])
        self.add_class("iamrb-confirm-button")

    @property
    def status_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", self.message.value))

    def _show_confirm(self, shown: bool) -> None:
        _hide(self.confirm, not shown)
        _hide(self.cancel, not shown)

    def _arm(self) -> None:
        if self.ran:
            return
        self.armed = True
        self.message.value = f"<b>{html.escape(self.prompt)}</b>"
        self._show_confirm(True)

    def _disarm(self, message: str) -> None:
        self.armed = False
        self.message.value = html.escape(message)
        self._show_confirm(False)

    def _run(self) -> None:
        if not self.armed or self.ran:  # Confirm only counts right after the first click
            return
        self.armed = False
        self.ran = True
        self._show_confirm(False)
        self.button.disabled = True
        self.message.value = "Running…"
        with self.output:
            try:
                self.result = self.action()
            except Exception as exc:  # shown to the operator; the notebook's record says what was done
                self.error = exc
                self.message.value = f"<span style='{_ERROR_STYLE}'>Failed: {html.escape(str(exc))}</span>"
                _log.error("confirmed action %r failed: %s", self.button.description, exc)
                return
        self.message.value = "Done."


def confirm_button(description: str, action: Callable[[], Any], *, prompt: str | None = None) -> ConfirmButton:
    """A two-step confirm for a notebook's destructive part; `action()` runs only after Confirm."""
    return ConfirmButton(description, action, prompt=prompt)


# --- the role matrix editor ------------------------------------------------------------------------


class RoleMatrixEditor(w.VBox):
    """One row per user, one checkbox per role key, a description; a live plan; Save and Apply.

    `spec` is a Spec or an `iam_users` mapping (then `roles` gives the role keys, default the three).
    `source_path` is where Save writes (default: the Spec's source file). Apply needs `iam` and `sts`;
    `on_apply(plan, result)` is called after every apply that started (`result.ok` tells how it went).
    """

    def __init__(
        self,
        spec: Spec | Mapping[str, Any],
        inventory: Inventory,
        source_path: str | Path | None = None,
        on_apply: Callable[[Plan, ApplyResult], Any] | None = None,
        *,
        iam: Any = None,
        sts: Any = None,
        roles: Mapping[str, str] | None = None,
        max_deletions: int = 3,
    ):
        if isinstance(spec, Spec):
            self.roles = dict(spec.roles)
            users = spec.to_mapping()
            source_path = source_path or spec.source
        else:
            self.roles = dict(DEFAULT_ROLES if roles is None else roles)
            users = copy.deepcopy(dict(spec))
        self._users: dict[str, dict[str, Any]] = {}
        for name, entry in users.items():
            entry = entry if isinstance(entry, Mapping) else {}
            self._users[name] = {
                "description": entry.get("description") or "",
                "roles": list(entry.get("roles") or []),
            }
        self.inventory = inventory
        self.source_path = Path(source_path) if source_path else None
        self.on_apply = on_apply
        self.iam, self.sts = iam, sts
        self.max_deletions = max_deletions

        self.spec: Spec | None = None
        self.plan: Plan | None = None
        self.errors: list[str] = []
        self.preview_text = ""
        self.pending: Plan | None = None
        self.result: ApplyResult | None = None
        self.apply_error: BaseException | None = None
        self.saved_to: Path | None = None

        self.checkboxes: dict[tuple[str, str], w.Checkbox] = {}
        self.descriptions: dict[str, w.Text] = {}
        self.remove_buttons: dict[str, w.Button] = {}
        self.row_errors: dict[str, w.HTML] = {}

        self.rows = w.VBox()
        self.rows.add_class("iamrb-rows")
        self.new_user = w.Text(placeholder="new user name", continuous_update=True, layout=w.Layout(width="220px"))
        self.new_user.add_class("iamrb-new-user")
        self.add_button = w.Button(description="Add user", icon="plus")
        self.add_button.add_class("iamrb-add")
        self.add_problem = w.HTML()
        self.errors_html = w.HTML()
        self.errors_html.add_class("iamrb-spec-errors")
        self.preview = w.HTML()
        self.preview.add_class("iamrb-preview")
        self.save_button = w.Button(description="Save", icon="save", tooltip=self._save_tooltip())
        self.save_button.add_class("iamrb-save")
        self.apply_button = w.Button(description="Apply…", button_style="warning", icon="play")
        self.apply_button.add_class("iamrb-apply")
        self.confirm_button = w.Button(description="Confirm apply", button_style="danger", icon="check")
        self.confirm_button.add_class("iamrb-confirm")
        self.cancel_button = w.Button(description="Cancel", icon="times")
        self.cancel_button.add_class("iamrb-cancel")
        self.status = w.HTML()
        self.status.add_class("iamrb-status")
        self.output = w.Output()  # the progress bar while applying
        self.result_html = w.HTML()
        self.result_html.add_class("iamrb-result")

        self.new_user.observe(lambda _: self._check_new_user(), names="value")
        self.add_button.on_click(lambda _: self.add_user(self.new_user.value))
        self.save_button.on_click(lambda _: self.save())
        self.apply_button.on_click(lambda _: self.request_apply())
        self.confirm_button.on_click(lambda _: self.confirm())
        self.cancel_button.on_click(lambda _: self.cancel())
        self._show_confirm(False)

        source = html.escape(str(self.source_path)) if self.source_path else "the iam_users parameter (no file)"
        super().__init__(
            [
                w.HTML(f"<h3 style='margin:4px 0'>Role matrix</h3><div>spec file: <code>{source}</code></div>"),
                self._header_row(),
                self.rows,
                w.HBox([self.new_user, self.add_button, self.add_problem]),
                self.errors_html,
                w.HTML("<h4 style='margin:6px 0 2px'>Plan preview</h4>"),
                self.preview,
                w.HBox([self.save_button, self.apply_button, self.confirm_button, self.cancel_button]),
                self.status,
                self.output,
                self.result_html,
            ]
        )
        self.add_class("iamrb-editor")
        self._render_rows()
        self._check_new_user()
        self.refresh()

    @classmethod
    def for_runbook(cls, rb: Any, spec: Spec, inventory: Inventory) -> RoleMatrixEditor:
        """Wired to a notebook's Runbook: its clients and max_deletions; Save goes to the spec's file (or
        `iam_users.yaml` in the run folder), and every interactive apply is recorded in the run folder."""

        def record(plan: Plan, result: ApplyResult) -> None:
            rb.write("interactive_plan.json", plan.to_json())
            rb.write(
                "interactive_apply_result.json",
                {"ok": result.ok, "error": result.error, "summary": plan.summary(), "changes": result.rows()},
            )

        return cls(
            spec,
            inventory,
            spec.source or Path(rb.run_dir) / INTERACTIVE_SPEC_FILE,
            record,
            iam=rb.iam,
            sts=rb.sts,
            max_deletions=rb.params["max_deletions"],
        )

    # --- state -------------------------------------------------------------------------------------

    @property
    def mapping(self) -> dict[str, dict[str, Any]]:
        """The `iam_users` mapping as edited (a copy)."""
        return copy.deepcopy(self._users)

    @property
    def summary_line(self) -> str:
        return self.plan.summary_line() if self.plan else ""

    @property
    def status_text(self) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", self.status.value))

    def _save_tooltip(self) -> str:
        return f"write the spec to {self.source_path}" if self.source_path else "no spec file to write to"

    # --- rows --------------------------------------------------------------------------------------

    def _header_row(self) -> w.HBox:
        cells = [w.HTML("<b>user</b>", layout=w.Layout(width="200px"))]
        cells += [
            w.HTML(
                f"<b>{html.escape(key)}</b><br><small style='color:#555'>{html.escape(role)}</small>",
                layout=w.Layout(width=_ROLE_WIDTH),
            )
            for key, role in self.roles.items()
        ]
        cells.append(w.HTML("<b>description</b>", layout=w.Layout(width="320px")))
        return w.HBox(cells)

    def _row(self, name: str) -> w.VBox:
        entry = self._users[name]
        cells: list[w.Widget] = [w.HTML(f"<code>{html.escape(name)}</code>", layout=w.Layout(width="200px"))]
        for key in self.roles:
            box = w.Checkbox(
                value=key in entry["roles"], indent=False, description="", layout=w.Layout(width=_ROLE_WIDTH)
            )
            box.add_class(f"iamrb-role-{_css_name(key)}")
            box.observe(lambda change, n=name, k=key: self.set_role(n, k, change["new"]), names="value")
            self.checkboxes[(name, key)] = box
            cells.append(box)
        text = w.Text(
            value=entry["description"],
            placeholder="letters, digits, spaces and _ . : / = + - @",
            continuous_update=True,
            layout=w.Layout(width="320px"),
        )
        text.add_class("iamrb-description")
        text.observe(lambda change, n=name: self.set_description(n, change["new"]), names="value")
        self.descriptions[name] = text
        remove = w.Button(description="Remove", icon="trash", tooltip=f"remove {name} from the spec")
        remove.add_class("iamrb-remove")
        remove.on_click(lambda _, n=name: self.remove_user(n))
        self.remove_buttons[name] = remove
        cells += [text, remove]
        problems = w.HTML()
        self.row_errors[name] = problems
        row = w.VBox([w.HBox(cells), problems])
        row.add_class("iamrb-user-row")
        row.add_class(f"iamrb-user-{_css_name(name)}")
        return row

    def _render_rows(self) -> None:
        self.checkboxes, self.descriptions, self.remove_buttons, self.row_errors = {}, {}, {}, {}
        self.rows.children = [self._row(name) for name in self._users]

    # --- edits (the widgets call these; tests may too) ---------------------------------------------

    def set_role(self, user: str, key: str, granted: bool) -> None:
        box = self.checkboxes.get((user, key))
        if box is not None and box.value != granted:
            box.value = granted  # its observer comes back here
            return
        roles = self._users[user]["roles"]
        if granted and key not in roles:
            roles.append(key)
            roles.sort(key=list(self.roles).index)
        elif not granted and key in roles:
            roles.remove(key)
        self._edited()

    def set_description(self, user: str, description: str) -> None:
        text = self.descriptions.get(user)
        if text is not None and text.value != description:
            text.value = description  # its observer comes back here
            return
        self._users[user]["description"] = description
        self._edited()

    def _new_user_problem(self, name: str) -> str | None:
        if not name:
            return None
        problem = iam_name_problem(name)
        if problem:
            return problem
        taken = {u.lower(): u for u in self._users}
        if name.lower() in taken:
            return f"{taken[name.lower()]!r} is already in the spec (IAM user names are case-insensitive)"
        return None

    def _check_new_user(self) -> None:
        name = self.new_user.value.strip()
        problem = self._new_user_problem(name)
        self.add_problem.value = f"<span style='{_ERROR_STYLE}'>{html.escape(problem)}</span>" if problem else ""
        self.add_button.disabled = bool(problem) or not name

    def add_user(self, name: str, description: str = "", roles: list[str] | tuple[str, ...] = ()) -> bool:
        """Add a row; refused (with the reason shown next to the field) for an invalid or taken name."""
        name = name.strip()
        problem = self._new_user_problem(name) or (None if name else "type a user name first")
        if problem:
            self.add_problem.value = f"<span style='{_ERROR_STYLE}'>{html.escape(problem)}</span>"
            return False
        self._users[name] = {"description": description, "roles": [k for k in self.roles if k in roles]}
        self._render_rows()
        self.new_user.value = ""
        self._edited()
        return True

    def remove_user(self, name: str) -> None:
        self._users.pop(name, None)
        self._render_rows()
        self._check_new_user()
        self._edited()

    # --- validation and preview --------------------------------------------------------------------

    def _edited(self) -> None:
        """Any edit withdraws a plan waiting for Confirm: the operator confirms only what they reviewed."""
        if self.pending is not None:
            self.pending = None
            self._show_confirm(False)
            self.status.value = "The spec changed: press Apply again to review the new plan."
        self.refresh()

    def refresh(self) -> None:
        """Revalidate and recompute the plan from the inventory already read: no AWS call."""
        self.spec, self.plan = None, None
        problems = validate_users(self._users, self.roles)
        if not problems:
            try:
                self.spec = load_spec(iam_users=self._users, roles=self.roles)
                self.plan = make_plan(self.spec, self.inventory)
            except SpecError as exc:
                problems = exc.problems
        self.errors = list(problems)
        for name, box in self.row_errors.items():
            mine = [p for p in self.errors if p.startswith(f"{name}: ")]
            box.value = _errors_html(mine)
        if self.plan is None:
            self.preview_text = "No plan while the spec is invalid:\n" + "\n".join(self.errors)
            self.errors_html.value = _errors_html(self.errors)
            self.preview.value = "<p><i>No plan while the spec is invalid: fix the problems above.</i></p>"
        else:
            self.preview_text = self.plan.to_text()
            self.errors_html.value = ""
            self.preview.value = _plan_html(self.plan)
        self.save_button.disabled = self.spec is None or self.source_path is None
        self.apply_button.disabled = self.plan is None or self.iam is None or self.sts is None

    # --- save --------------------------------------------------------------------------------------

    def save(self) -> Path | None:
        if self.spec is None:
            self.status.value = f"<span style='{_ERROR_STYLE}'>Not saved: fix the problems above first.</span>"
            return None
        if self.source_path is None:
            self.status.value = "Not saved: this spec came from the iam_users parameter, not a file."
            return None
        try:
            self.saved_to = save_spec(self.source_path, self._users, self.roles)
        except (RunbookError, OSError, yaml.YAMLError) as exc:
            self.status.value = f"<span style='{_ERROR_STYLE}'>Not saved: {html.escape(str(exc))}</span>"
            return None
        self.status.value = f"Saved {len(self._users)} user(s) to <code>{html.escape(str(self.saved_to))}</code>."
        return self.saved_to

    # --- apply: a fresh read, the summary, then an explicit confirm ---------------------------------

    def _show_confirm(self, shown: bool) -> None:
        _hide(self.confirm_button, not shown)
        _hide(self.cancel_button, not shown)

    def _fresh_plan(self) -> Plan:
        """The account may have changed since the preview's inventory: read it again, plan again."""
        self.inventory = read_inventory(self.iam, self.sts)
        return make_plan(self.spec, self.inventory)

    def _fail(self, message: str) -> None:
        self.pending = None
        self._show_confirm(False)
        self.status.value = f"<span style='{_ERROR_STYLE}'>{html.escape(message)}</span>"

    def request_apply(self) -> Plan | None:
        """First click: read the account, plan, run the safety checks; then wait for Confirm."""
        if self.plan is None or self.iam is None or self.sts is None:
            self._fail("Nothing to apply: fix the spec first." if self.plan is None else "No AWS clients given.")
            return None
        self.status.value = "Reading the account…"
        try:
            plan = self._fresh_plan()
            check_safety(plan, self.max_deletions)
        except (RunbookError, ClientError, BotoCoreError) as exc:  # shown to the operator; nothing changed
            self.refresh()
            self._fail(f"Apply refused: {exc}")
            return None
        self.refresh()  # the preview now shows the fresh plan
        if plan.is_empty:
            self.status.value = "No changes: the account already matches the spec."
            return None
        self.pending = plan
        self._show_confirm(True)
        self.status.value = (
            f"<b>{html.escape(plan.summary_line())}</b> Review the changes above, then press "
            "<b>Confirm apply</b> to make them, or Cancel. Nothing has changed yet."
        )
        return plan

    def cancel(self) -> None:
        self.pending = None
        self._show_confirm(False)
        self.status.value = "Cancelled: nothing was changed."

    def confirm(self) -> ApplyResult | None:
        """Second click: apply the reviewed plan, if the account still gives exactly that plan."""
        reviewed = self.pending
        if reviewed is None:
            self.status.value = "Press Apply first: it shows what would change."
            return None
        self._show_confirm(False)
        self.pending = None
        try:
            plan = self._fresh_plan()
        except (RunbookError, ClientError, BotoCoreError) as exc:  # shown to the operator; nothing changed
            self._fail(f"Not applied: {exc}")
            return None
        if plan.changes != reviewed.changes:
            self.refresh()
            self.pending = plan
            self._show_confirm(True)
            self.status.value = (
                "The account changed since you reviewed the plan. <b>"
                f"{html.escape(plan.summary_line())}</b> Review the new plan above and confirm again."
            )
            return None
        self._set_busy(True)
        self.status.value = f"Applying {len(plan.changes)} change(s)…"
        self.output.clear_output()
        self.apply_error = None
        try:
            with self.output:
                result = apply_plan(self.iam, plan, max_deletions=self.max_deletions, progress=True)
        except ApplyError as exc:
            result, self.apply_error = exc.result, exc
        except SafetyError as exc:
            self._fail(str(exc))
            return None
        finally:
            self._set_busy(False)
        self.result = result
        rows = result.rows()
        self.result_html.value = _table_html(rows, ["address", "kind", "status"])
        if self.on_apply is not None:
            self.on_apply(plan, result)
        if result.ok:
            self.status.value = f"Applied: {len(result.done)} change(s) done."
        else:
            self.status.value = (
                f"<span style='{_ERROR_STYLE}'>Stopped at {html.escape(result.failed.address)}: "
                f"{html.escape(result.error or '')}. {len(result.done)} done, {len(result.not_done) + 1} not done; "
                "fix the cause and apply again (every change is idempotent).</span>"
            )
        try:
            self.inventory = read_inventory(self.iam, self.sts)
        except (ClientError, BotoCoreError) as exc:  # the apply itself is done; the preview may lag
            _log.warning("re-reading the account after apply failed: %s", exc)
        self.refresh()
        return result

    def _set_busy(self, busy: bool) -> None:
        for button in (self.save_button, self.apply_button, self.add_button, *self.remove_buttons.values()):
            button.disabled = busy
        if not busy:
            self._check_new_user()
