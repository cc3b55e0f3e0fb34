"""Temporary grants in the spec: `temporary: [{role, until, reason}]` next to a user's `roles`.

AWS itself ends such a grant (its policy allows sts:AssumeRole only while aws:CurrentTime < until), so the
schedule only tidies up. Validation names every problem at once; an `until` already past is not a
problem: the grant has expired and the plan removes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from iamrunbook.base.names import UNTIL_TEXT

TEMPORARY_FIELDS = ("role", "until", "reason")
DEFAULT_MAX_TEMPORARY_DAYS = 30
# UTC, ISO 8601, to the minute at most: 2026-12-31T18:00Z or 2026-12-31T18:00:00Z
_UNTIL = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::00)?Z")
UNTIL_ALLOWED = "allowed: UTC ISO 8601 to the minute, e.g. 2026-12-31T18:00:00Z"


@dataclass(frozen=True)
class TempGrant:
    """One temporary grant: `role` (a role key) until `until` (UTC, whole minutes), for `reason`."""

    role: str
    until: datetime
    reason: str

    @property
    def until_text(self) -> str:
        """2026-12-31T18:00:00Z: the spec's and the policy condition's spelling."""
        return self.until.strftime(UNTIL_TEXT)

    def expired(self, now: datetime) -> bool:
        """DateLessThan is strict: at exactly `until` AWS no longer applies the statement."""
        return now >= self.until

    def shown(self, now: datetime) -> str:
        """How access reads: "until 2026-12-31 18:00 UTC" while valid, "expired 2026-12-31 18:00 UTC" after."""
        return f"{'expired' if self.expired(now) else 'until'} {shown_until(self.until)}"

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "until": self.until_text, "reason": self.reason}


def shown_until(until: datetime) -> str:
    return until.strftime("%Y-%m-%d %H:%M UTC")


def parse_until(value: Any) -> datetime | None:
    """The UTC minute `value` names, or None when it is not UTC ISO 8601 to the minute. YAML reads an unquoted
    timestamp as a datetime: accepted when it is UTC and whole minutes."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() != timedelta(0) or value.second or value.microsecond:
            return None
        return value.astimezone(timezone.utc)
    match = _UNTIL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return datetime(*map(int, match.groups()), tzinfo=timezone.utc)
    except ValueError:  # 2026-02-30
        return None


def until_text(value: Any) -> str:
    """`value` in the spec's spelling (2026-12-31T18:00:00Z) when it is a valid until, else as given."""
    until = parse_until(value)
    return until.strftime(UNTIL_TEXT) if until is not None else str(value)


def temporary_problems(
    name: str, raw: Any, roles: Mapping[str, str], held: Any, now: datetime, max_days: int
) -> list[str]:
    """Every problem with one user's `temporary` list, one line each: unknown role, a time that is not UTC ISO
    8601, a missing reason, an until more than `max_days` from `now`, a role held for good, a pair twice."""
    if not isinstance(raw, list | tuple):
        return [f"{name}: temporary must be a list of {{role, until, reason}}, got {type(raw).__name__}"]
    problems = []
    latest = now + timedelta(days=max_days)
    seen: set[tuple[Any, Any]] = set()
    permanent = set(held) if isinstance(held, list | tuple) else set()
    for i, item in enumerate(raw, 1):
        where = f"{name}: temporary grant {i}"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a mapping with keys {', '.join(TEMPORARY_FIELDS)}")
            continue
        problems += [f"{where}: unknown field {k!r}; allowed: {', '.join(TEMPORARY_FIELDS)}"
                     for k in sorted(set(item) - set(TEMPORARY_FIELDS), key=str)]  # fmt: skip
        role, reason = item.get("role"), item.get("reason")
        if role not in roles:
            problems.append(f"{where}: unknown role {role!r}; valid roles: {', '.join(sorted(roles))}")
        elif role in permanent:
            problems.append(f"{where}: {role!r} is already granted for good in roles; a grant is one or the other")
        until = parse_until(item.get("until"))
        if until is None:
            problems.append(f"{where}: until {item.get('until')!r} is not a UTC time; {UNTIL_ALLOWED}")
        elif until > latest:
            problems.append(f"{where}: until {until.strftime(UNTIL_TEXT)} is more than max_temporary_days "
                            f"({max_days}) from now; allowed: up to {latest.strftime('%Y-%m-%dT%H:%MZ')}")  # fmt: skip
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}: a reason is required (who asked, the ticket), e.g. INC-1234 restore")
        if (role, until) in seen and until is not None:
            problems.append(f"{where}: {role!r} until {until.strftime(UNTIL_TEXT)} is listed twice")
        seen.add((role, until))
    return problems


def temporary_grants(raw: Any) -> tuple[TempGrant, ...]:
    """The validated `temporary` list as TempGrants, in the spec's order."""
    return tuple(TempGrant(t["role"], parse_until(t["until"]), t["reason"].strip()) for t in raw or ())


# --- editing: `iamrunbook grant` / `revoke` and the live editor ------------------------------------------
_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def until_for(duration: str, now: datetime) -> datetime:
    """`now` plus a duration such as 90m, 4h or 2d, rounded up to the minute; ValueError names what is allowed."""
    match = _DURATION.fullmatch(duration.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"--for {duration!r}: allowed: a whole number of minutes, hours or days, e.g. 90m, 4h, 2d")
    end = now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    whole = end.replace(second=0, microsecond=0)
    return whole if whole == end else whole + timedelta(minutes=1)


def _entry_of(iam_users: Mapping[str, Any], user: str) -> tuple[str, dict]:
    """The spelling and entry of `user` in the spec (IAM names are case-insensitive); ValueError if absent."""
    found = next((n for n in iam_users if isinstance(n, str) and n.lower() == user.lower()), None)
    if found is None or not isinstance(iam_users[found], Mapping):
        raise ValueError(f"{user!r} is not in the spec; add the user first (known: {', '.join(map(str, iam_users))})")
    return found, dict(iam_users[found])


def with_grant(iam_users: Mapping[str, Any], user: str, role: str, until: datetime, reason: str) -> dict:
    """A copy of `iam_users` in which `user` holds `role` until `until` (replacing an earlier until of that
    role), users and keys in their order. The caller validates the result (load_spec)."""
    name, entry = _entry_of(iam_users, user)
    kept = [t for t in entry.get("temporary") or () if not (isinstance(t, Mapping) and t.get("role") == role)]
    entry["temporary"] = [*kept, TempGrant(role, until, reason).as_dict()]
    return {**iam_users, name: entry}


def without_grant(iam_users: Mapping[str, Any], user: str, role: str) -> dict:
    """A copy of `iam_users` without `user`'s temporary grants of `role`; ValueError when there is none."""
    name, entry = _entry_of(iam_users, user)
    grants = list(entry.get("temporary") or ())
    kept = [t for t in grants if not (isinstance(t, Mapping) and t.get("role") == role)]
    if len(kept) == len(grants):
        held = sorted({str(t.get("role")) for t in grants if isinstance(t, Mapping)})
        raise ValueError(f"{name} holds no temporary grant of {role!r} (temporary grants: {', '.join(held) or 'none'})")
    if kept:
        entry["temporary"] = kept
    else:
        entry.pop("temporary", None)
    return {**iam_users, name: entry}
