"""The front end a flow asks, in a live session, to confirm a change, edit the spec or sign a review.

The flows define what they need; the UI layer implements it (ui/start.py) and the notebook start-up plugs it in,
as Terraform's core defines `Hook` and its views implement it. Headless runs need none: `apply` decides.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class Frontend(Protocol):
    def confirm(self, title: str, action: Callable[[], Any], *, prompt: str | None = None) -> Any:
        """Show `title` and run `action` only after a second, explicit click; returns the view."""

    def edit_spec(self, rb: Any, spec: Any, inventory: Any) -> Any:
        """03's role matrix editor over `spec`, with its own save-then-apply confirm; returns the view."""

    def sign_review(self, rb: Any, draft: Any) -> Any:
        """06's keep/remove choices over a `ReviewDraft`, whose Save signs the review; returns the view."""

    def save_notebook(self, folder: Path, name: str) -> tuple[str | None, str]:
        """This live notebook into the run folder `folder` as `<name>.ipynb`: the file name written (None
        when it could not be) and a note saying which version it is, or why not."""
