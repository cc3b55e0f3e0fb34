"""06's sign-off in a live session: keep / remove per recommendation, the reviewer's name, Save.

A thin view over flows/review.py's ReviewDraft, which holds every choice and is tested without a browser.
"""

from __future__ import annotations

import html

import ipywidgets as w

from iamrunbook.core.review import KEEP, REMOVE, AccessReview
from iamrunbook.flows.review import ReviewDraft


class ReviewWidget(w.VBox):
    """A row per recommendation with keep / remove, the reviewer's name, Save, and the plan the chain would
    make from the reviewed spec. Every click goes to the ReviewDraft; the view re-renders from it."""

    def __init__(self, model: ReviewDraft, rb):
        self.model, self.rb = model, rb
        self.toggles = [w.ToggleButtons(options=[KEEP, REMOVE], value=c) for c in model.choices]
        for index, toggle in enumerate(self.toggles):
            toggle.observe(lambda change, i=index: self._choose(i, change["new"]), names="value")
        self.reviewer = w.Text(value=model.reviewer, description="Reviewer")
        self.reviewer.observe(lambda change: self._name(change["new"]), names="value")
        self.save_button = w.Button(description="Save", button_style="primary", tooltip="sign the review")
        self.save_button.on_click(lambda _: self.save())
        self.message, self.preview = w.HTML(), w.HTML()
        rows = [w.HBox([w.HTML(f"<b>{html.escape(r.user)}</b>: {html.escape(r.label)} "
                               f"<i>({html.escape(r.reason)})</i>"), t])
                for r, t in zip(model.review.recommendations, self.toggles, strict=True)]  # fmt: skip
        empty = [w.HTML("<p>Nothing to decide: every grant is in use. Save signs the review as it is.</p>")]
        super().__init__([*(rows or empty), self.reviewer, self.save_button, self.message, self.preview])
        self.render()

    def _name(self, reviewer: str) -> None:
        self.model.reviewer = reviewer
        self.model.recheck()
        self.render()

    def _choose(self, index: int, choice: str | None) -> None:
        self.model.choose(index, choice)
        self.render()

    def save(self) -> AccessReview | None:
        signed = self.model.save(self.rb)
        self.render()
        return signed

    def render(self) -> None:
        self.message.value = f"<pre>{html.escape(self.model.message)}</pre>" if self.model.message else ""
        plan = html.escape(self.model.draft.preview_text)
        self.preview.value = f"<p>What the chain would change with the reviewed spec:</p><pre>{plan}</pre>"
