"""The live editor's temporary grants: give a user a role "for 4h" or "until 2026-12-31T18:00Z" with a reason,
or revoke one early.

A thin view over `SpecDraft`: Grant goes through `SpecDraft.grant_checked`, so the spec's own validation
(with the session's `max_temporary_days`) decides, and bad input changes nothing and says why. A grant is
only an edit of the draft: it reaches AWS through the editor's Apply, which saves the spec file first.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timezone

import ipywidgets as w

from iamrunbook.core.temporary import UNTIL_ALLOWED, parse_until, shown_until, until_for
from iamrunbook.flows.editor import SpecDraft

_ERROR_STYLE = "color:#b00020"


def until_of(for_text: str, until_text: str, now: datetime) -> datetime:
    """The until the operator means: `for_text` (90m, 4h, 2d) from `now`, or `until_text`; exactly one of them.
    ValueError names what is allowed."""
    for_text, until_text = for_text.strip(), until_text.strip()
    if bool(for_text) == bool(until_text):
        raise ValueError("give either 'for' (e.g. 4h) or 'until' (e.g. 2026-12-31T18:00Z), not both and not neither")
    if for_text:
        return until_for(for_text, now)
    until = parse_until(until_text)
    if until is None:
        raise ValueError(f"until {until_text!r} is not a UTC time; {UNTIL_ALLOWED}")
    return until


class TemporaryGrants(w.VBox):
    """User and role dropdowns, a "for" or an "until", a reason, Grant and Revoke, and a message line.

    `after` runs after every click (the editor re-renders its plan preview); `clock` gives the time "for"
    counts from (tests may set it)."""

    def __init__(self, draft: SpecDraft, after: Callable[[], None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):  # fmt: skip
        self.draft, self.after, self.clock = draft, after, clock
        self.user = w.Dropdown(description="user")
        self.role = w.Dropdown(description="role", options=list(draft.roles))
        self.for_text = w.Text(description="for", placeholder="4h, 90m, 2d", layout=w.Layout(width="180px"))
        self.until = w.Text(description="or until", placeholder="2026-12-31T18:00Z", layout=w.Layout(width="260px"))
        self.reason = w.Text(description="reason", placeholder="INC-1234 restore the warehouse",
                             layout=w.Layout(width="min(480px, 100%)"))  # fmt: skip
        self.grant_button = w.Button(description="Grant", icon="clock-o", tooltip="add the temporary grant to the spec")
        self.revoke_button = w.Button(description="Revoke", icon="times", tooltip="remove the user's temporary grant")
        self.message = w.HTML()
        for widget, name in ((self.grant_button, "iamrb-temp-grant"), (self.revoke_button, "iamrb-temp-revoke"),
                             (self.message, "iamrb-temp-message")):  # fmt: skip
            widget.add_class(name)
        self.grant_button.on_click(lambda _: self.grant())
        self.revoke_button.on_click(lambda _: self.revoke())
        super().__init__([
            w.HTML("<h4 style='margin:6px 0 2px'>Temporary grants</h4>"),
            w.HBox([self.user, self.role]),
            w.HBox([self.for_text, self.until]),
            w.HBox([self.reason, self.grant_button, self.revoke_button]),
            self.message,
        ])  # fmt: skip
        self.add_class("iamrb-temporary")
        self.show()

    def show(self) -> None:
        """The user dropdown follows the draft's users (added or removed rows)."""
        users = list(self.draft.users)
        if list(self.user.options) != users:
            self.user.options = users

    def _say(self, text: str, error: bool = False) -> None:
        escaped = html.escape(text)
        self.message.value = f"<span style='{_ERROR_STYLE}'>{escaped}</span>" if error else escaped
        if self.after is not None:
            self.after()

    def grant(self) -> bool:
        """Add the grant to the draft when the spec stays valid; else name every problem and change nothing."""
        user, key, reason = self.user.value, self.role.value, self.reason.value.strip()
        if not user:
            self._say("Not granted: add a user to the spec first.", error=True)
            return False
        try:
            until = until_of(self.for_text.value, self.until.value, self.clock())
        except ValueError as exc:
            self._say(f"Not granted: {exc}", error=True)
            return False
        problems = self.draft.grant_checked(user, key, until, reason)
        if problems:
            self._say("Not granted: " + "; ".join(problems), error=True)
            return False
        self._say(f"{user} may assume {key} until {shown_until(until)} ({reason}). Press Apply to make it: the spec "
                  "is saved to its file first.")  # fmt: skip
        return True

    def revoke(self) -> bool:
        user, key = self.user.value, self.role.value
        try:
            self.draft.revoke_temporary(user, key)
        except ValueError as exc:
            self._say(f"Not revoked: {exc}", error=True)
            return False
        self._say(f"Revoked {user}'s temporary {key}. Press Apply to remove it from the account.")
        return True

    @property
    def message_text(self) -> str:
        return html.unescape(self.message.value.replace(f"<span style='{_ERROR_STYLE}'>", "").replace("</span>", ""))
