"""The notebook start-up: the flows' session, with the widget front end plugged in for a live session.

Every notebook begins with `rb = start(globals())`. Headless runs (papermill, `iamrunbook run`, nbval) never
ask the front end: `apply` decides there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from IPython.display import display

from iamrunbook.flows import session
from iamrunbook.flows.review import ReviewDraft
from iamrunbook.ui import notebook
from iamrunbook.ui.review import ReviewWidget
from iamrunbook.ui.widgets import RoleMatrixEditor, confirm_button


class Widgets:
    """flows.frontend.Frontend as ipywidgets: each view is displayed, then returned (the runbook keeps it)."""

    def confirm(self, title: str, action: Callable[[], Any], *, prompt: str | None = None) -> Any:
        return _shown(confirm_button(title, action, prompt=prompt))

    def edit_spec(self, rb: Any, spec: Any, inventory: Any) -> Any:
        return _shown(RoleMatrixEditor.for_runbook(rb, spec, inventory))

    def sign_review(self, rb: Any, draft: ReviewDraft) -> Any:
        return _shown(ReviewWidget(draft, rb))

    def save_notebook(self, folder: Path, name: str) -> tuple[str | None, str]:
        return notebook.save_notebook(folder, name)


def _shown(view: Any) -> Any:
    display(view)
    return view


def start(namespace: Mapping[str, Any]) -> session.Runbook:
    """Check the parameters, connect, refuse a wrong account; a live session gets the widgets to confirm with."""
    return session.start(namespace, frontend=Widgets())
