"""Invariants the tests check mid-run on the embedded AWS, after every successful mutating call."""

from __future__ import annotations

from iamrunbook.aws.sweep import AWS_MANAGED_FILTER, ENTITY_FILTER
from iamrunbook.core.access import effective_access
from iamrunbook.core.inventory import aws_managed_in_use
from iamrunbook.sandbox import ACCOUNT_ID


def sweep(iam, filters: list[str]) -> dict[str, list]:
    """One paginated get_account_authorization_details, pages merged (what aws.sweep.fetch_details reads)."""
    merged: dict[str, list] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=list(filters)):
        for key in merged:
            merged[key].extend(page.get(key, []))
    return merged


def details_reader(iam):
    """fetch_details' answer, read afresh on every call; the AWS-managed policies' documents, which no call of
    an account can change (the strict embedded AWS refuses it, as AWS does), are read once: over a thousand
    of them in every sweep made the guard cost seconds per mutating call."""
    aws_managed = {p["Arn"]: p for p in sweep(iam, AWS_MANAGED_FILTER)["Policies"]}

    def read() -> dict:
        merged = sweep(iam, ENTITY_FILTER)
        merged["Policies"] += [aws_managed[arn] for arn in sorted(aws_managed_in_use(merged)) if arn in aws_managed]
        return merged

    return read


def role_guard(aws, spec, account_id: str = ACCOUNT_ID, *, allow_empty: bool = False) -> list[str]:
    """After every successful mutating call: every (spec user, role) the spec grants and the user has held
    at any point so far (from the start of the run on) is still assumable. Access is computed
    independently of plan/apply/legacy: access.effective_access over a fresh sweep (internal client)."""
    details = details_reader(aws.client("iam", internal=True))
    granted = {(user.lower(), key) for user, key in spec.grants()}

    def held() -> set[tuple[str, str]]:
        grants = effective_access(details(), spec.roles, account_id)
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
