"""The operator's interactive mode: a role matrix editor with a live plan, and a two-step confirm button.

Only live sessions (Jupyter, Voilà) show these; under `iamrunbook run`, papermill and nbval
(`runbook.headless()`) no widget is shown or waits for a click: the `apply` parameter decides.

Both are thin views over the plain models in `editor.py`: a click or a keystroke calls the model
(`SpecDraft`, `TwoStep`) and the view re-renders from it, so every rule is tested without a browser. The
editor's columns come from one CSS grid template shared by the header and every user row, so they line
up at any width; a name too long for its column is cut with an ellipsis and shown whole as a tooltip.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w

from iamrunbook.aws.executor import ApplyResult
from iamrunbook.base import records
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import Plan
from iamrunbook.core.spec import Spec
from iamrunbook.core.specfile import save_spec  # noqa: F401 - re-exported: notebooks and tests import it from here
from iamrunbook.flows.editor import ERROR, PENDING, SpecDraft, TwoStep, lasting_spec_path
from iamrunbook.flows.session import START_DIR_ENV
from iamrunbook.ui.temporary import TemporaryGrants

_ERROR_STYLE = "color:#b00020"
_CELL = "padding:2px 8px;text-align:left"
_CLIP = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap"
_NO_PLAN = "<p><i>No plan while the spec is invalid: fix the problems shown above.</i></p>"
#: the editor's own CSS: an HTML widget's content may shrink below its text (so a long name is cut with an
#: ellipsis instead of widening its column), and the plan table reads as a table at any width
_STYLE = """<style>
.iamrb-editor .widget-html-content { min-width: 0; }
.iamrb-editor .iamrb-table { border-collapse: collapse; line-height: 1.4; margin: 2px 0; }
.iamrb-editor .iamrb-table th { border-bottom: 1px solid #bbb; }
.iamrb-editor .iamrb-table td { vertical-align: top; }
.iamrb-editor .iamrb-table .iamrb-col-address { overflow-wrap: anywhere; }
.iamrb-editor .iamrb-table .iamrb-col-symbol, .iamrb-editor .iamrb-table .iamrb-col-kind { white-space: nowrap; }
.iamrb-editor .iamrb-table tbody tr:nth-child(even) { background: #f5f5f5; }
</style>"""


# --- small rendering helpers ----------------------------------------------------------------------


def _table_html(rows: list[dict], columns: list[str]) -> str:
    """A table, or one sentence when there is nothing to list (never a header-only table)."""
    if not rows:
        return "<p class='iamrb-empty'>No changes.</p>"
    head = "".join(f"<th style='{_CELL}'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td class='iamrb-col-{c}' style='{_CELL}'>{html.escape(str(r.get(c, '')))}</td>" for c in columns)
        + "</tr>"
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
    return summary + _table_html(plan.to_frame().to_dict("records"), ["symbol", "kind", "address", "reason"])


def _message_html(message: str, level: str) -> str:
    text = html.escape(message)
    if level == ERROR:
        return f"<span style='{_ERROR_STYLE}'>{text}</span>"
    return f"<b>{text}</b>" if level == PENDING else text


def _plain(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _css_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", value)


def _breakable(text: str) -> str:
    """Escaped, with line-break chances after `_` and before capitals: `infrastructure_admin` wraps."""
    return re.sub(r"(_)|(?<=[a-z])(?=[A-Z])", lambda m: (m.group(1) or "") + "<wbr>", html.escape(text))


def _hide(widget: w.DOMWidget, hidden: bool) -> None:
    widget.layout.display = "none" if hidden else None


# --- the generic two-step confirm ------------------------------------------------------------------


class ConfirmButton(w.VBox):
    """A destructive action behind two clicks: the button arms it, Confirm runs it, Cancel disarms it.

    A view over an `editor.TwoStep`: given an `action`, a one-shot one is made; the role matrix editor passes
    its SpecDraft as `step`. `after` runs after every click, so a bigger view can show the rest of its model;
    the buttons in `running` are disabled while the action runs.
    """

    def __init__(
        self,
        description: str,
        action: Callable[[], Any] | None = None,
        *,
        prompt: str | None = None,
        step: TwoStep | None = None,
        confirm_label: str = "Confirm",
        after: Callable[[], None] | None = None,
    ):
        prompt = prompt or f"{description}: this changes the account. Confirm to go ahead, or cancel."
        self.step = step if step is not None else TwoStep(action, prompt)
        self.after = after
        self.running: list[w.Button] = []
        self.button = w.Button(description=description, button_style="danger", icon="exclamation-triangle",
                               layout=w.Layout(width="auto", max_width="100%"))  # the whole label, never cut
        self.confirm = w.Button(description=confirm_label, button_style="danger")
        self.cancel = w.Button(description="Cancel")
        self.message = w.HTML()
        self.output = w.Output()
        for widget, name in (
            (self.button, "iamrb-arm"),
            (self.confirm, "iamrb-confirm"),
            (self.cancel, "iamrb-cancel"),
            (self.message, "iamrb-message"),
        ):
            widget.add_class(name)
        self.button.on_click(lambda _: self.click(self.step.arm))
        self.confirm.on_click(lambda _: self.run())
        self.cancel.on_click(lambda _: self.click(self.step.cancel))
        super().__init__([self.button, w.HBox([self.confirm, self.cancel]), self.message, self.output])
        self.add_class("iamrb-confirm-button")
        self.show_step()

    armed = property(lambda self: self.step.armed)
    ran = property(lambda self: self.step.ran)
    result = property(lambda self: self.step.result)
    error = property(lambda self: self.step.error)

    @property
    def status_text(self) -> str:
        return _plain(self.message.value)

    def show_step(self) -> None:
        """Confirm and Cancel only while something waits for them; the step's message under them."""
        _hide(self.confirm, not self.step.armed)
        _hide(self.cancel, not self.step.armed)
        self.button.disabled = not self.step.ready
        self.message.value = _message_html(self.step.message, self.step.level)

    def click(self, step_call: Callable[[], Any]) -> None:
        step_call()
        self.show_step()
        if self.after is not None:
            self.after()

    def run(self) -> None:
        """Confirm: the step runs (its progress bar in `output`) with the buttons disabled meanwhile."""
        if not self.step.armed:
            self.click(self.step.confirm)  # a stray Confirm: the step says why nothing ran
            return
        buttons = [self.button, self.confirm, self.cancel, *self.running]
        for button in buttons:
            button.disabled = True
        self.message.value = "Running…"
        self.output.clear_output()
        try:
            with self.output:
                self.step.confirm()
        finally:
            for button in buttons:
                button.disabled = False
        self.click(lambda: None)


def confirm_button(description: str, action: Callable[[], Any], *, prompt: str | None = None) -> ConfirmButton:
    """A two-step confirm for a notebook's destructive part; `action()` runs only after Confirm."""
    return ConfirmButton(description, action, prompt=prompt)


# --- the role matrix editor ------------------------------------------------------------------------


def _columns(role_count: int) -> str:
    """The one grid template of the header and every row: user, a column per role, description, remove."""
    return f"minmax(11rem, 18rem) repeat({role_count}, minmax(7rem, 10rem)) minmax(10rem, 1fr) 6.5rem"


def _cell() -> w.Layout:
    return w.Layout(width="auto", min_width="0", overflow="hidden")


def _draft_attr(name: str, doc: str | None = None) -> property:
    return property(lambda self: getattr(self.draft, name), doc=doc)


class RoleMatrixEditor(w.VBox):
    """A view over a SpecDraft: a grid row per user, a checkbox per role key, a description; the plan
    under it; Save (to the spec's file, or the "save to" path) and Apply, then Confirm apply.

    `spec` is a Spec or an `iam_users` mapping (then `roles` gives the role keys, default the three).
    `source_path` is the spec's file (default: the Spec's source); `save_as` prefills the path Save writes
    to when there is none. Apply needs `iam` and `sts`; `on_apply(plan, result)` runs after every apply.
    """

    mapping = _draft_attr("users", "The `iam_users` mapping as edited (a copy).")
    spec = _draft_attr("spec")
    plan = _draft_attr("plan")
    errors = _draft_attr("errors")
    preview_text = _draft_attr("preview_text")
    pending = _draft_attr("pending")
    result = _draft_attr("result")
    apply_error = _draft_attr("apply_error")
    saved_to = _draft_attr("saved_to")
    source_path = _draft_attr("source_path")

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
        save_as: str | Path | None = None,
        base_dir: str | Path | None = None,
    ):
        options = {"source_path": source_path, "base_dir": base_dir, "iam": iam, "sts": sts,
                   "max_deletions": max_deletions, "on_apply": on_apply}  # fmt: skip
        if isinstance(spec, Spec):
            self.draft = SpecDraft.from_spec(spec, inventory, **options)
        else:
            self.draft = SpecDraft(spec, inventory, roles=DEFAULT_ROLES if roles is None else roles, **options)
        self._columns = _columns(len(self.draft.roles))
        self.checkboxes: dict[tuple[str, str], w.Checkbox] = {}
        self.descriptions: dict[str, w.Text] = {}
        self.remove_buttons: dict[str, w.Button] = {}
        self.row_errors: dict[str, w.HTML] = {}
        self._rows: dict[str, w.VBox] = {}
        self.rows = w.VBox()
        self.rows.add_class("iamrb-rows")
        self._build_controls(save_as or self.draft.source_path)
        super().__init__(self._layout())
        self.add_class("iamrb-editor")
        for name, entry in self.draft.users.items():
            self._add_row(name, entry)
        self.render()

    @classmethod
    def for_runbook(cls, rb: Any, spec: Spec, inventory: Inventory) -> RoleMatrixEditor:
        """Wired to a notebook's Runbook: its clients and max_deletions. Save goes to the spec's file (a spec
        from the iam_users parameter is offered the project's parameters/, never a run folder); every
        apply is a run folder of its own in the chain, with the spec file it saved first (runs/live.py); what
        no apply fixes shows under the rows, as 04 would report it."""
        start = os.environ.get(START_DIR_ENV)
        editor = cls(spec, inventory, iam=rb.iam, sts=rb.sts, max_deletions=rb.params["max_deletions"],
                     save_as=None if spec.source else lasting_spec_path(start), base_dir=start)

        def record(plan: Plan, result: ApplyResult) -> None:  # a run in the chain, as a headless apply is
            rb.record_live("03_import_and_apply", ok=result.ok, spec_file=editor.draft.saved_to,
                           files={records.PLAN: plan, records.APPLY_RESULT: editor.draft.apply_record(plan, result)})

        editor.draft.on_apply, editor.draft.on_save = record, rb.remember_spec
        editor.draft.check_access, editor.draft.migration = True, rb.pending_migration()
        editor.draft.max_temporary_days = rb.params["max_temporary_days"]  # checked as the session's spec is
        editor._edit(editor.draft.refresh)
        editor.draft.allow_without_mfa_device = bool(rb.params.get("allow_without_mfa_device"))
        return editor

    @property
    def max_deletions(self) -> int:
        return self.draft.max_deletions

    @max_deletions.setter
    def max_deletions(self, value: int) -> None:
        self.draft.max_deletions = value

    @property
    def summary_line(self) -> str:
        return self.draft.plan.summary_line() if self.draft.plan else ""

    @property
    def status_text(self) -> str:
        return _plain(self.status.value)

    # --- building ----------------------------------------------------------------------------------

    def _build_controls(self, save_as: str | Path | None) -> None:
        self.new_user = w.Text(placeholder="new user name", continuous_update=True, layout=w.Layout(width="260px"))
        self.new_user.add_class("iamrb-new-user")
        self.new_user.observe(lambda _: self._check_new_user(), names="value")
        self.new_user.on_msg(self._on_new_user_msg)
        self.add_button = w.Button(description="Add user", icon="plus")
        self.add_button.add_class("iamrb-add")
        self.add_button.on_click(lambda _: self.add_user(self.new_user.value))
        self.add_problem, self.errors_html, self.preview, self.source_html, self.result_html = (
            w.HTML() for _ in range(5)
        )
        for widget, name in ((self.errors_html, "iamrb-spec-errors"), (self.preview, "iamrb-preview"),
                             (self.source_html, "iamrb-source"), (self.result_html, "iamrb-result")):  # fmt: skip
            widget.add_class(name)
        self.save_as = w.Text(
            value=str(save_as or ""),
            placeholder="the file to save the spec to: .yaml or .tfvars",
            description="save to",
            layout=w.Layout(width="min(640px, 100%)"),
        )
        self.save_as.add_class("iamrb-save-as")
        self.save_as.observe(lambda _: self.render(), names="value")
        self.save_button = w.Button(description="Save", icon="save", tooltip="write the spec to the file named left")
        self.save_button.add_class("iamrb-save")
        self.save_button.on_click(lambda _: self.save())
        self.apply_box = ConfirmButton("Apply…", step=self.draft, confirm_label="Confirm apply")
        self.apply_box.button.button_style, self.apply_box.button.icon = "warning", "play"
        self.apply_box.confirm.icon, self.apply_box.cancel.icon = "check", "times"
        self.apply_box.button.add_class("iamrb-apply")
        self.apply_box.message.add_class("iamrb-status")
        self.apply_box.after = self.render
        self.apply_box.running = [self.save_button, self.add_button]
        box = self.apply_box
        self.apply_button, self.confirm_button, self.cancel_button = box.button, box.confirm, box.cancel
        self.status, self.output = box.message, box.output
        self.temporary = TemporaryGrants(self.draft, after=self.render)

    def _layout(self) -> list[w.Widget]:
        return [
            w.HTML(f"{_STYLE}<h3 style='margin:4px 0'>Role matrix</h3>"),
            self.source_html,
            self._header(),
            self.rows,
            w.HBox([self.new_user, self.add_button, self.add_problem]),
            self.errors_html,
            self.temporary,
            w.HTML("<h4 style='margin:6px 0 2px'>Plan preview</h4>"),
            self.preview,
            w.HBox([self.save_as, self.save_button]),
            self.apply_box,
            self.result_html,
        ]

    def _grid(self, cells: list[w.Widget]) -> w.GridBox:
        layout = w.Layout(grid_template_columns=self._columns, grid_gap="0 8px", align_items="center", width="100%")
        return w.GridBox(cells, layout=layout)

    def _header(self) -> w.GridBox:
        def head(name: str, markup: str) -> w.HTML:
            cell = w.HTML(markup, layout=_cell())
            cell.add_class(f"iamrb-head-{name}")
            return cell

        cells = [head("user", "<b>user</b>")]
        for key, role in self.draft.roles.items():
            title = html.escape(f"{key}: {role}", quote=True)
            markup = (
                f"<div title='{title}' style='line-height:1.25'><b>{_breakable(key)}</b><br>"
                f"<small style='color:#555'>{_breakable(role)}</small></div>"
            )
            cells.append(head(f"role-{_css_name(key)}", markup))
        cells += [head("description", "<b>description</b>"), head("remove", "")]
        header = self._grid(cells)
        header.add_class("iamrb-header")
        return header

    def _add_row(self, name: str, entry: Mapping[str, Any]) -> None:
        full = html.escape(name, quote=True)
        label = w.HTML(f"<div class='iamrb-name' title='{full}' style='{_CLIP}'><code>{full}</code></div>",
                       layout=_cell())  # fmt: skip
        cells: list[w.Widget] = [label]
        for key in self.draft.roles:
            box = w.Checkbox(value=key in entry["roles"], indent=False, description="", layout=_cell())
            box.add_class(f"iamrb-role-{_css_name(key)}")
            box.observe(lambda change, n=name, k=key: self._edit(self.draft.set_role, n, k, change["new"]), "value")
            self.checkboxes[(name, key)] = box
            cells.append(box)
        text = w.Text(
            value=entry["description"],
            placeholder="letters, digits, spaces and _ . : / = + - @",
            continuous_update=True,
            layout=_cell(),
        )
        text.add_class("iamrb-description")
        text.observe(lambda change, n=name: self._edit(self.draft.set_description, n, change["new"]), "value")
        self.descriptions[name] = text
        remove = w.Button(description="Remove", icon="trash", tooltip=f"remove {name} from the spec", layout=_cell())
        remove.add_class("iamrb-remove")
        remove.on_click(lambda _, n=name: self.remove_user(n))
        self.remove_buttons[name] = remove
        self.row_errors[name] = w.HTML()
        row = w.VBox([self._grid([*cells, text, remove]), self.row_errors[name]])
        row.add_class("iamrb-user-row")
        row.add_class(f"iamrb-user-{_css_name(name)}")
        self._rows[name] = row
        self.rows.children = (*self.rows.children, row)

    def _drop_row(self, name: str) -> None:
        row = self._rows.pop(name)
        self.rows.children = tuple(r for r in self.rows.children if r is not row)
        for key in self.draft.roles:
            self.checkboxes.pop((name, key), None)
        for widgets in (self.descriptions, self.remove_buttons, self.row_errors):
            widgets.pop(name, None)

    # --- what the operator does (the widgets call these; tests may too) ------------------------------

    def _edit(self, change: Callable[..., None], *args: Any) -> None:
        change(*args)
        self.render()

    def _on_new_user_msg(self, _widget: w.Widget, content: Mapping[str, Any], _buffers: Any) -> None:
        """Enter in the new-user field adds the user, as the Add button does."""
        if content.get("event") == "submit":
            self.add_user(self.new_user.value)

    def _check_new_user(self) -> None:
        name = self.new_user.value.strip()
        problem = self.draft.new_user_problem(name)
        self.add_problem.value = f"<span style='{_ERROR_STYLE}'>{html.escape(problem)}</span>" if problem else ""
        self.add_button.disabled = bool(problem) or not name

    def add_user(self, name: str, description: str = "", roles: list[str] | tuple[str, ...] = ()) -> bool:
        """Add a row; refused (with the reason shown next to the field) for an invalid or taken name."""
        problem = self.draft.add_user(name, description, roles)
        if problem:
            self.add_problem.value = f"<span style='{_ERROR_STYLE}'>{html.escape(problem)}</span>"
            return False
        name = name.strip()
        self._add_row(name, self.draft.users[name])
        self.new_user.value = ""
        self.render()
        return True

    def remove_user(self, name: str) -> None:
        self.draft.remove_user(name)
        self._drop_row(name)
        self._check_new_user()
        self.render()

    def save(self) -> Path | None:
        saved = self.draft.save(self.save_as.value.strip() or None)
        if saved is not None:
            self.save_as.value = str(saved)
        self.render()
        return saved

    def request_apply(self) -> Plan | None:
        self.apply_box.click(self.draft.arm)
        return self.draft.pending

    def confirm(self) -> ApplyResult | None:
        self.apply_box.run()
        return self.draft.result

    def cancel(self) -> None:
        self.apply_box.click(self.draft.cancel)

    # --- rendering ---------------------------------------------------------------------------------

    def render(self) -> None:
        """Show the draft: each problem once (on its row, or under the rows), the plan, the spec's file."""
        draft = self.draft
        for name, box in self.row_errors.items():
            box.value = _errors_html(draft.user_problems(name))
        self.errors_html.value = _errors_html(draft.spec_problems())
        self.preview.value = _NO_PLAN if draft.plan is None else _plan_html(draft.plan)
        self.save_button.disabled = draft.spec is None or not self.save_as.value.strip()
        self._check_new_user()
        self.temporary.show()
        self.apply_box.show_step()
        self.result_html.value = (
            "" if draft.result is None else _table_html(draft.result.rows(), ["address", "kind", "status"])
        )
        self.source_html.value = self._source_html()

    def _source_html(self) -> str:
        draft = self.draft
        if draft.source_path is None:
            return "<div>spec: the <code>iam_users</code> parameter (no file yet: save it to one before Apply)</div>"
        saved = ""
        if draft.saved_to == draft.source_path and draft.saved_sha256:
            saved = f" — saved, sha256 <code>{draft.saved_sha256[:12]}…</code>"
        return f"<div>spec file: <code>{html.escape(str(draft.source_path))}</code>{saved}</div>"
