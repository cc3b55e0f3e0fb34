"""07's phase 2 as data: which IAM users to retire now, which to delete after the grace period, and why the
others are kept (`plan_retire`, pure; flows/center.py runs it).

A spec user's IAM user is retired when the person has signed in through Identity Center since phase 1 (or the
operator lists them in `retire_iam_users` with a reason) and their Identity Center path grants every role the
spec grants them in the IAM users' account: user -> group -> assignment -> provisioned permission set ->
Assume<Role>Policy -> a trust that admits the reserved role (identity_center_access.center_grants). Retiring
is: deactivate the access keys, remove the console password, then tag the user `iamrunbook:retired-at`, the
runbook's memory of when. Once `retire_grace_days` have passed since then (and the path still works), the
user is deleted with 05's full cleanup.

Never retired: the identity running the plan; a user whose path is missing or not provisioned; an IAM user
that is not a spec user. The spec naming a user is what makes it the runbook's to retire: no ManagedBy tag is
required, since the teams migrating come from user or group mode, where 03 adopted (tagged) spec users
anyway, and the proof (check_center) refuses a step that would take a role the person keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import caller_user_name, user_address
from iamrunbook.core.changes import Change
from iamrunbook.core.identity_center_access import center_grants
from iamrunbook.core.identity_center_simulate import check_center
from iamrunbook.core.identity_center_state import CenterState
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import Plan
from iamrunbook.core.simulate import LockoutError
from iamrunbook.core.spec import Spec

RETIRED_AT = "iamrunbook:retired-at"
DEACTIVATE, PASSWORD, TAG, DELETE = 1, 2, 3, 4
NOT_SIGNED_IN = "has not signed in through Identity Center since phase 1"
OPERATOR = "the identity running this"
#: only a user the runbook manages is retired: the runner's policy may change no other (cli/runner_scope.py)
NOT_MANAGED = ("its IAM user is not tagged ManagedBy=iamrunbook: adopt it first (03 in user or group mode), or "
               "offboard it with 05")  # fmt: skip


@dataclass(frozen=True)
class RetirePlan(Plan):
    """Phase 2's changes, and each spec user's IAM user kept, with why."""

    #: (user, why) for every spec user whose IAM user is kept
    kept: tuple[tuple[str, str], ...] = ()
    accounts: tuple[str, ...] = ()
    noun = "Retire"
    empty_line = "No IAM users to retire."

    def to_json(self) -> str:
        data = json.loads(super().to_json()) | {"accounts": list(self.accounts),
                                                "kept": [{"user": u, "why": why} for u, why in self.kept]}  # fmt: skip
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RetirePlan:
        data = json.loads(text)
        kept = tuple((row["user"], row["why"]) for row in data.get("kept", ()))
        return replace(super().from_json(text), kept=kept, accounts=tuple(data.get("accounts", ())))


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)


def center_gaps(spec: Spec, inventory: Inventory, state: CenterState, accounts: Sequence[str] | None) -> dict:
    """spec user -> what their Identity Center path lacks in the IAM users' account ("" when it grants every
    role the spec grants them)."""
    account = inventory.account_id
    if accounts is not None and account not in accounts:
        return dict.fromkeys(spec.users, f"account {account} is not a target account")
    held: dict[str, set[str]] = {}
    for g in center_grants(state, inventory, spec.roles, account, users=list(spec.users), now=spec.now):
        held.setdefault(g.user, set()).add(g.role_key)
    granted: dict[str, set[str]] = {}
    for user, key in spec.grants():
        granted.setdefault(user, set()).add(key)
    gaps = {}
    for name in spec.users:
        missing = sorted(granted.get(name, set()) - held.get(name, set()))
        if name not in state.users and granted.get(name):
            gaps[name] = "no Identity Center user"
        else:
            gaps[name] = ", ".join(f"{spec.roles[k]} ({k})" for k in missing)
    return gaps


def _retire(name: str, why: str, now: datetime) -> list[Change]:
    address = user_address(name)
    return [
        Change("deactivate_access_keys", address, f"retire: deactivate the access keys ({why})", user=name,
               phase=DEACTIVATE),
        Change("delete_login_profile", address, f"retire: remove the console password ({why})", user=name,
               phase=PASSWORD),
        Change("tag_user", address, "retire: remember when", user=name, tags=((RETIRED_AT, _stamp(now)),),
               phase=TAG),
    ]  # fmt: skip


def _decide(name: str, iam_user: dict, gap: str, evidence: str | None, grace: timedelta,
            now: datetime) -> tuple[list[Change], str | None]:  # fmt: skip
    """(changes, None) for a user to retire or delete now; ([], why) for one kept."""
    if gap:
        return [], f"Identity Center path missing or not provisioned: {gap}"
    stamp = Inventory.tags(iam_user).get(RETIRED_AT)
    if stamp is not None:
        at = _parse(stamp)
        if at is None:
            return [], f"its {RETIRED_AT} tag {stamp!r} is not a time: fix or remove it"
        if now < at + grace:
            return [], f"retired {at.date()}; deleted after {(at + grace).date()} (retire_grace_days)"
        reason = f"retired {at.date()}, {grace.days} days ago or more: delete it with 05's full cleanup"
        return [Change("delete_user", user_address(iam_user["UserName"]), reason, user=iam_user["UserName"],
                       phase=DELETE)], None  # fmt: skip
    if evidence is None:
        return [], NOT_SIGNED_IN
    return _retire(iam_user["UserName"], evidence, now), None


def _evidence(spec: Spec, signed_in: Mapping[str, str], listed: Mapping[str, str]) -> dict[str, str]:
    """spec user -> why retiring them is warranted: their sign-in, or the operator's reason."""
    found = {name: f"signed in through Identity Center {when}" for name, when in signed_in.items()
             if name in spec.users}  # fmt: skip
    for name, reason in listed.items():
        user = spec.user_named(name)
        found.setdefault(user.name, f"listed in retire_iam_users: {reason}")
    return found


def plan_retire(spec: Spec, inventory: Inventory, state: CenterState, signed_in: Mapping[str, str], *,
                retire_iam_users: Mapping[str, str], grace_days: int, now: datetime, caller_arn: str,
                accounts: Sequence[str] | None = None) -> RetirePlan:  # fmt: skip
    """Phase 2 (see the module docstring): `signed_in` maps identity-store UserName -> the time of their last
    sign-in since phase 1; `retire_iam_users` maps user -> the operator's reason. Proven with check_center."""
    strangers = [name for name in retire_iam_users if spec.user_named(name) is None]
    if strangers:
        raise SpecError([f"retire_iam_users: {name} is not a spec user; 07 retires only the IAM users of the spec"
                         for name in strangers])  # fmt: skip
    me = (caller_user_name(caller_arn) or "").lower()
    gaps = center_gaps(spec, inventory, state, accounts)
    evidence = _evidence(spec, signed_in, retire_iam_users)
    changes: list[Change] = []
    kept: list[tuple[str, str]] = []
    for name in spec.users:
        iam_user = inventory.user_named(name)
        if iam_user is None:
            continue
        if iam_user["UserName"].lower() == me:
            kept.append((name, OPERATOR))
            continue
        if not inventory.is_managed(iam_user):
            kept.append((name, NOT_MANAGED))
            continue
        made, why = _decide(name, iam_user, gaps[name], evidence.get(name), timedelta(days=grace_days), now)
        changes += made
        if why is not None:
            kept.append((name, why))
    changes.sort(key=lambda c: c.phase)
    losses = check_center(inventory, state, changes, spec, caller_arn)
    if losses:
        raise LockoutError(losses)
    return RetirePlan(tuple(changes), inventory.account_id, caller_arn, dict(spec.roles), kept=tuple(kept),
                      accounts=tuple(accounts or ()))  # fmt: skip
