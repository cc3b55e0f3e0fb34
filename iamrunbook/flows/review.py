"""What 06_access_review runs and shows: the review read and recorded, the heat-map, and the sign-off.

`Review.read` does the reads (review.py holds the rules); its methods write the run folder's records.
Headless (`iamrunbook run`, papermill, nbval) the sign-off is the `reviewer` and `review_decisions_file`
parameters; in a live session `ReviewWidget` lists each recommendation with keep / remove and Save. The
widget is a thin view over `ReviewDraft`, a plain model that applies each choice to a `SpecDraft` (the
role matrix editor's model), so the reviewed spec is validated and planned as the editor does it, from the
inventory already read: the reviewer sees what the chain will change, and no click calls AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from iamrunbook.aws.cloudtrail import assume_role_sweep
from iamrunbook.base import records
from iamrunbook.base.display import styled
from iamrunbook.base.errors import SpecError
from iamrunbook.core import review as rv
from iamrunbook.core.access import effective_access
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.review import KEEP, OFFBOARD, REMOVE, AccessReview, Decision, Recommendation, RoleUse, UserReview
from iamrunbook.core.spec import Spec
from iamrunbook.flows.editor import SpecDraft
from iamrunbook.flows.session import NO_FRONTEND


def decisions(rb) -> dict[str, Decision]:
    """The decisions file, checked against the spec before anything is read: every problem at once."""
    path, reviewer = rb.params["review_decisions_file"], (rb.params["reviewer"] or "").strip()
    problems = []
    try:
        found = rv.load_decisions(path, rb.spec(), rb.start_dir)
    except SpecError as exc:
        found, problems = {}, list(exc.problems)
    if path and not reviewer:
        problems.append("reviewer: required with review_decisions_file: who signs these decisions")
    if problems:
        raise SpecError(problems)
    if path:
        print(f"{len(found)} decision(s) from {path}, by {reviewer}")
    elif rb.headless:
        print("No review_decisions_file: this run proposes; a reviewer signs with reviewer + review_decisions_file.")
    else:
        print("Decide keep or remove for each recommendation at the end of this notebook, type your name and Save.")
    return found


@dataclass
class Review:
    """The review as read: who holds and uses what, the recommendations, the follow-up of the last one."""

    spec: Spec
    inventory: Inventory
    use: RoleUse
    users: list[UserReview]
    recommendations: list[Recommendation]
    follow_up: list[dict]
    review_days: int
    now: datetime

    @classmethod
    def read(cls, rb) -> Review:
        """One inventory sweep with the credential report, one AssumeRole sweep, the out folder's records."""
        spec, days = rb.spec(), rb.params["review_days"]
        inv = rb.inventory(with_credential_report=True)
        use = assume_role_sweep(rb.session, inv.account_id, days)
        print(use.status)
        history = rv.History.read(Path(rb.run_dir).parent, exclude=Path(rb.run_dir).name)
        grants = effective_access(inv.details(), spec.roles, inv.account_id)
        users = rv.user_reviews(inv, spec, grants, use, history.last_assumed())
        follow = history.follow_up(inv, grants, spec)
        return cls(spec, inv, use, users, rv.recommend(users, use, days, use.until), follow, days, use.until)

    def rows(self) -> list[dict]:
        return [u.as_dict(self.now) for u in self.users]

    def table(self, rb) -> pd.DataFrame:
        frame = rv.table_frame(self.rows(), self.recommendations)
        rb.write(records.ACCESS_REVIEW_TABLE, frame)
        if self.spec.settings.identity_center is not None:  # mid-migration: the Identity Center side too
            center_users(rb, self.spec, self.inventory)
        return frame

    def recommendations_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.as_dict() for r in self.recommendations], columns=["user", "action", "role_key",
                                                                                  "reason"])  # fmt: skip

    def temporary_frame(self) -> pd.DataFrame:
        """Every temporary grant with its until, reason and whether it was used (never proposed as permanent)."""
        return pd.DataFrame(rv.temporary_rows(self.spec, self.use), columns=rv.TEMPORARY_COLUMNS)

    def follow_up_frame(self) -> pd.DataFrame:
        columns = ["user", "decision", "role_key", "status", "reviewed_in", "reviewer"]
        return pd.DataFrame(self.follow_up, columns=columns)

    def propose(self, rb) -> str:
        """proposed_iam_users.yaml / .auto.tfvars and the diff against the current spec; returns the diff."""
        proposed = rv.reviewed_users(self.spec, rv.proposed_decisions(self.recommendations))
        notes: dict[str, list[str]] = {}
        for rec in self.recommendations:
            notes.setdefault(rec.user, []).append(f"proposed: {rec.label}: {rec.reason}")
        header = [f"Proposed by the access review of {self.now:%Y-%m-%d} (account {self.inventory.account_id}); "
                  "a proposal only: nothing was changed."]  # fmt: skip
        header += [f"proposed: offboard {r.user}: {r.reason}" for r in self.recommendations if r.action == OFFBOARD]
        yaml_text, tfvars_text = rv.spec_files(self.spec.roles, proposed, header, notes)
        rb.write(records.PROPOSED_YAML, yaml_text)
        rb.write(records.PROPOSED_TFVARS, tfvars_text)
        diff = rv.spec_diff(self.spec.roles, self.spec.to_mapping(), proposed)
        rb.write(records.PROPOSED_DIFF, diff)
        return diff or "No changes proposed: every grant is in use and every spec user is active."

    def record(self, rb, decided: Mapping[str, Decision] | None = None, reviewer: str | None = None,
               reviewed_sha: str | None = None) -> AccessReview:  # fmt: skip
        """access_review.json; signed when a reviewer decided every recommendation and the spec was written."""
        decided = dict(decided or {})
        signed = bool(reviewer) and reviewed_sha is not None and not rv.undecided(self.recommendations, decided)
        return AccessReview(
            self.inventory.account_id, rb.caller_arn, self.now.isoformat(timespec="seconds"), self.review_days,
            rv.use_record(self.use), self.rows(), [r.as_dict() for r in self.recommendations], reviewer, signed,
            [d.as_dict() for d in decided.values()], rv.outcomes(self.recommendations, decided), reviewed_sha,
            self.follow_up, self.spec.source,
        )  # fmt: skip

    def sign(self, rb, decided: Mapping[str, Decision], reviewer: str | None) -> AccessReview:
        """Record the review. With a reviewer: refused (every problem at once, nothing written) unless every
        recommendation is decided; then reviewed_iam_users.yaml is written beside the signed record."""
        reviewer = (reviewer or "").strip() or None
        if reviewer is None:
            review = self.record(rb, decided)
            rb.write(records.ACCESS_REVIEW, review)
            return review
        problems = rv.undecided(self.recommendations, decided)
        if problems:
            raise SpecError([f"not signed, nothing written: {p}" for p in problems])
        header = [f"Reviewed by {reviewer} on {self.now:%Y-%m-%d} in run {Path(rb.run_dir).name} "
                  f"(account {self.inventory.account_id}). Apply it with iam_users_file pointing here."]  # fmt: skip
        notes = {d.user: [f"{d.decision} {' '.join(d.roles)}".strip() + (f": {d.note}" if d.note else "")]
                 for d in decided.values()}  # fmt: skip
        header += [f"offboarded {d.user}" + (f": {d.note}" if d.note else "") for d in decided.values()
                   if d.decision == OFFBOARD]  # fmt: skip
        yaml_text = rv.spec_files(self.spec.roles, rv.reviewed_users(self.spec, decided), header, notes)[0]
        path = rb.write(records.REVIEWED_YAML, yaml_text)
        review = self.record(rb, decided, reviewer, rv.sha256(path.read_text(encoding="utf-8")))
        rb.write(records.ACCESS_REVIEW, review)
        return review


# --- the heat-map ---------------------------------------------------------------------------------------
def center_users(rb, spec, inventory) -> None:
    """Each spec user's Identity Center user and last sign-in next to their IAM user (identity_center_users.csv)."""
    from IPython.display import display

    from iamrunbook.base.display import table
    from iamrunbook.flows import center

    state = center.read_state(rb)
    frame = center.users_frame(rb, spec, inventory, state, center.sign_ins(rb, state))
    print("Identity Center (grant_via: identity_center): each spec user's identity-store user and last sign-in")
    display(table(frame, "No spec users."))


def heatmap_frame(review: Review) -> pd.DataFrame:
    """users x role keys: days since the last AssumeRole; -1 where the user has access but no use was seen;
    None where they have neither access nor use."""
    cells = {}
    for u in review.users:
        reach = set(u.can_assume) | set(u.granted)
        cells[u.user] = {key: (review.now - u.last_assumed[key]).days if key in u.last_assumed
                         else (-1 if key in reach else None) for key in review.spec.roles}  # fmt: skip
    return pd.DataFrame.from_dict(cells, orient="index", columns=list(review.spec.roles))


def _colour(days, review_days: int) -> str:
    if days is None or pd.isna(days):
        return "background-color: #eeeeee; color: #9e9e9e"
    if days < 0 or days > review_days:
        return "background-color: #c62828; color: white; font-weight: bold"
    shades = ("#2e7d32", "#7cb342", "#fbc02d", "#ef6c00")
    return f"background-color: {shades[min(3, int(4 * days / max(review_days, 1)))]}; color: black"


def heatmap(review: Review):
    """The heat-map: green used lately, through amber to red for a role not assumed in the period."""
    days = heatmap_frame(review)
    text = days.apply(lambda col: col.map(lambda d: "" if pd.isna(d) else ("none" if d < 0 else f"{int(d)} d")))
    period = f"the {review.review_days} days" if review.use.complete else "the (incomplete) CloudTrail history"
    caption = (f"Days since each user last assumed each role; 'none': access, but no AssumeRole in {period}; "
               "grey: no access")
    return styled(text, caption).apply(
        lambda _: days.apply(lambda col: col.map(lambda d: _colour(d, review.review_days))), axis=None
    )


# --- the live sign-off: a model over SpecDraft, and its view ------------------------------------------------
class ReviewDraft:
    """The reviewer's keep / remove for each recommendation (None: undecided), applied to a SpecDraft of the
    spec. Decisions from the file set the first state; those on users without a recommendation stay as given.
    `save(rb)` signs through `Review.sign`, exactly as a headless run with the same decisions does."""

    def __init__(self, review: Review, given: Mapping[str, Decision] | None = None, reviewer: str | None = None):
        given = dict(given or {})
        self.review, self.reviewer, self.message = review, reviewer or "", ""
        self.choices: list[str | None] = [None if given.get(r.user) is None else (REMOVE if given[r.user].removes(r)
                                          else KEEP) for r in review.recommendations]  # fmt: skip
        recommended = {r.user for r in review.recommendations}
        self.kept = {user: d for user, d in given.items() if user not in recommended}
        self.notes = {user: d.note for user, d in given.items()}
        self.draft = SpecDraft.from_spec(review.spec, review.inventory)
        self._sync()

    def choose(self, index: int, choice: str | None) -> None:
        self.choices[index] = choice
        self._sync()
        self.recheck()

    def recheck(self) -> None:
        """A "Not saved" message lists what is still missing, or goes once nothing is (it never goes stale)."""
        if self.message.startswith("Not saved"):
            problems = self.problems()
            self.message = "Not saved:\n" + "\n".join(f"- {p}" for p in problems) if problems else ""

    def decisions(self) -> dict[str, Decision]:
        """user -> Decision for every user whose recommendations are all decided (and the file's others)."""
        found = dict(self.kept)
        by_user: dict[str, list[tuple[Recommendation, str | None]]] = {}
        for rec, choice in zip(self.review.recommendations, self.choices, strict=True):
            by_user.setdefault(rec.user, []).append((rec, choice))
        for user, pairs in by_user.items():
            if any(choice is None for _, choice in pairs):
                continue
            note = self.notes.get(user, "")
            if any(rec.action == OFFBOARD and choice == REMOVE for rec, choice in pairs):
                found[user] = Decision(user, OFFBOARD, note=note)
                continue
            roles = tuple(rec.role_key for rec, choice in pairs if choice == REMOVE and rec.role_key)
            found[user] = Decision(user, REMOVE if roles else KEEP, roles, note)
        return found

    def _sync(self) -> None:
        """Edit the SpecDraft to the reviewed spec (undecided counts as keep): its plan is what the chain does."""
        want = rv.reviewed_users(self.review.spec, self.decisions())
        for name in [n for n in self.draft.users if n not in want]:
            self.draft.remove_user(name)
        for name, entry in want.items():
            have = self.draft.users.get(name)
            if have is None:
                self.draft.add_user(name, entry["description"], entry["roles"])
                continue
            for key in self.draft.roles:
                if (key in have["roles"]) != (key in entry["roles"]):
                    self.draft.set_role(name, key, key in entry["roles"])

    def problems(self) -> list[str]:
        found = [] if self.reviewer.strip() else ["reviewer: type who reviewed; a signed review names them"]
        return found + rv.undecided(self.review.recommendations, self.decisions()) + self.draft.errors

    def save(self, rb) -> AccessReview | None:
        """Sign: writes reviewed_iam_users.yaml and the signed access_review.json, or says what is missing."""
        problems = self.problems()
        if problems:
            self.message = "Not saved:\n" + "\n".join(f"- {p}" for p in problems)
            return None
        signed = self.review.sign(rb, self.decisions(), self.reviewer)
        rb.record_live("06_access_review", ok=True, approved_by=signed.reviewer)  # a live signature is a run
        self.message = (f"Signed by {signed.reviewer}: {len(signed.decisions)} decision(s), "
                        f"{records.REVIEWED_YAML.name} written. Nothing was changed in the account: run the chain "
                        f"with iam_users_file pointing at it to carry the removals out.")  # fmt: skip
        return signed


def sign_off(rb, review: Review, given: Mapping[str, Decision]):
    """Headless: sign with the parameters (or record the review unsigned). Live: record it unsigned, then
    show the widget, whose Save signs it."""
    if rb.headless:
        signed = review.sign(rb, given, rb.params["reviewer"])
        print(f"signed by {signed.reviewer}: {records.REVIEWED_YAML.name} written" if signed.signed else
              "Not signed (no reviewer): recorded as read. Nothing was changed in the account.")  # fmt: skip
        return pd.DataFrame(signed.outcomes, columns=["user", "action", "role_key", "reason", "decided", "note"])
    review.sign(rb, {}, None)
    if rb.frontend is None:
        print(NO_FRONTEND)
        return None
    rb.pending = rb.frontend.sign_review(rb, ReviewDraft(review, given, rb.params["reviewer"]))
    return None
