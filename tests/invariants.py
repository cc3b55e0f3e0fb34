"""Invariants the tests check mid-run on the embedded AWS, after every successful mutating call."""

from __future__ import annotations

from iamrunbook.aws.sweep import fetch_details
from iamrunbook.core.access import effective_access
from iamrunbook.sandbox import ACCOUNT_ID


def role_guard(aws, spec, account_id: str = ACCOUNT_ID, *, allow_empty: bool = False) -> list[str]:
    """After every successful mutating call: every (spec user, role) the spec grants and the user has held
    at any point so far (from the start of the run on) is still assumable. Access is computed
    independently of plan/apply/legacy: access.effective_access over a fresh sweep (internal client)."""
    internal = aws.client("iam", internal=True)
    granted = {(user.lower(), key) for user, key in spec.grants()}

    def held() -> set[tuple[str, str]]:
        grants = effective_access(fetch_details(internal), spec.roles, account_id)
        return {(g.user.lower(), g.role_key) for g in grants} & granted

    protected = held()
    assert protected or allow_empty, "the guard must have something to guard"
    checked: list[str] = []

    def check(call) -> None:
        now = held()
        checked.append(call.action)
        lost = sorted(protected - now)
        assert not lost, f"after {call.action} #{call.seq}: {lost} can no longer assume a role the spec grants"
        protected.update(now)

    aws.on_mutation(check)
    return checked
