"""06, the periodic user access review: for every IAM user what they hold, whether they still use it, what
the reviewer decided, and whether the removals were carried out (SOC 2 CC6.2/CC6.3, ISO 27001 A.5.18).

Read once, never per user: the inventory sweep, the credential report and one CloudTrail sweep of the
AssumeRole events (`cloudtrail.assume_role_sweep`, which with inventory.py declares the reads). The
recommendations are a proposed spec: remove a grant not assumed in `review_days`, offboard a spec user with
no console sign-in and no access-key use in `review_days`; users created within the period are left alone.
The reviewer's decisions (`review_decisions_file`, or the live widget) make the reviewed spec that the chain
applies, and the next review reads the earlier one and the apply runs after it, through records.py, to say
whether each removal was done. Nothing here changes the account.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import attachment_address, user_address
from iamrunbook.core.access import Grant
from iamrunbook.core.cis import parse_date
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import Spec, load_spec, load_yaml

#: CloudTrail's LookupEvents keeps 90 days of history: nothing older can be seen
HISTORY_DAYS = 90


@dataclass(frozen=True)
class RoleUse:
    """When each IAM user last assumed each role, from one LookupEvents sweep (EventName=AssumeRole).

    `last` maps (user, role name), both lower-cased (IAM names are case-insensitive), to the newest
    successful assumption seen from `since` to `until`. `complete` is false when the sweep failed or was
    cut short: an absent entry then proves nothing, so nothing may be proposed from it.
    """

    last: dict[tuple[str, str], datetime]
    since: datetime
    until: datetime
    pages: int = 0
    events: int = 0
    complete: bool = True
    status: str = ""

    def last_assumed(self, user: str, role_name: str) -> datetime | None:
        return self.last.get((user.lower(), role_name.lower()))

KEEP, REMOVE, OFFBOARD = "keep", "remove", "offboard"
DECISIONS = (KEEP, REMOVE, OFFBOARD)
DECISION_FIELDS = ("decision", "note")


def _date(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else ""


def _when(value) -> datetime | None:
    """A date from the sweep (datetime), the credential report or a record (ISO text), in UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return parse_date(value) if value else None


# --- what each user holds and uses --------------------------------------------------------------------
@dataclass(frozen=True)
class UserReview:
    """One IAM user: the spec's grants, what they can assume by any path, and when they last used it."""

    user: str
    in_spec: bool
    created: datetime | None
    granted: tuple[str, ...]
    can_assume: tuple[str, ...]
    last_assumed: Mapping[str, datetime]  # role key -> newest AssumeRole seen
    console: bool
    last_sign_in: datetime | None
    password_changed: datetime | None
    mfa: bool
    keys: tuple[dict, ...]  # {"key": 1|2, "active", "created", "last_used"} per access key the report lists

    @property
    def last_activity(self) -> datetime | None:
        """The newest console sign-in or access-key use: what any AssumeRole needed first."""
        moments = [self.last_sign_in, *(k["last_used"] for k in self.keys)]
        return max((m for m in moments if m is not None), default=None)

    def as_dict(self, now: datetime) -> dict:
        def age(moment: datetime | None) -> int | None:
            return None if moment is None else max(0, (now - moment).days)

        keys = [{"key": k["key"], "status": "active" if k["active"] else "inactive", "age_days": age(k["created"]),
                 "last_used": _date(k["last_used"])} for k in self.keys]  # fmt: skip
        return {"user": self.user, "in_spec": self.in_spec, "created": _date(self.created),
                "granted": list(self.granted), "can_assume": list(self.can_assume),
                "last_assumed": {key: _date(when) for key, when in self.last_assumed.items()},
                "console": self.console, "last_sign_in": _date(self.last_sign_in),
                "password_age_days": age(self.password_changed), "mfa": self.mfa, "access_keys": keys,
                "last_activity": _date(self.last_activity)}  # fmt: skip


def _keys(row: Mapping[str, str]) -> tuple[dict, ...]:
    """The report's two key slots; a slot that never held a key has no rotation date."""
    found = []
    for n in (1, 2):
        created = _when(row.get(f"access_key_{n}_last_rotated"))
        if created is not None:
            active = str(row.get(f"access_key_{n}_active")).lower() == "true"
            found.append({"key": n, "active": active, "created": created,
                          "last_used": _when(row.get(f"access_key_{n}_last_used_date"))})  # fmt: skip
    return tuple(found)


def user_reviews(inv: Inventory, spec: Spec, grants: list[Grant], use: RoleUse,
                 earlier: Mapping[tuple[str, str], datetime] | None = None) -> list[UserReview]:  # fmt: skip
    """Every IAM user of the sweep (spec or not), from the sweep, the report and the one AssumeRole sweep;
    `earlier` (user lower, role key) -> last use an earlier review saw, for use older than CloudTrail keeps."""
    report = {r.get("user", "").lower(): r for r in inv.credential_report or ()}
    reach: dict[str, set[str]] = {}
    for grant in grants:
        reach.setdefault(grant.user.lower(), set()).add(grant.role_key)
    found = []
    for name, user in sorted(inv.users.items(), key=lambda item: item[0].lower()):
        entry, row = spec.user_named(name), report.get(name.lower(), {})
        last = {}
        for key, role in spec.roles.items():
            seen = [use.last_assumed(name, role), (earlier or {}).get((name.lower(), key))]
            if any(seen):
                last[key] = max(m for m in seen if m is not None)
        found.append(UserReview(
            name, entry is not None, _when(user.get("CreateDate")), entry.roles if entry else (),
            tuple(k for k in spec.roles if k in reach.get(name.lower(), ())), last,
            str(row.get("password_enabled")).lower() == "true", _when(row.get("password_last_used")),
            _when(row.get("password_last_changed")), str(row.get("mfa_active")).lower() == "true", _keys(row),
        ))  # fmt: skip
    return found


def table_frame(rows: list[dict], recommendations: list[Recommendation]) -> pd.DataFrame:
    """access_review.csv: one row per user; lists as text, each key as `1: active, 100 d old, used <date>`."""
    advice: dict[str, list[str]] = {}
    for rec in recommendations:
        advice.setdefault(rec.user, []).append(rec.label)
    out = []
    for row in rows:
        keys = [f"{k['key']}: {k['status']}, {k['age_days']} d old, used {k['last_used'] or 'never'}"
                for k in row["access_keys"]]  # fmt: skip
        assumed = [f"{key} {when}" for key, when in row["last_assumed"].items()]
        out.append({**row, "granted": ", ".join(row["granted"]), "can_assume": ", ".join(row["can_assume"]),
                    "last_assumed": ", ".join(assumed), "access_keys": "; ".join(keys),
                    "password_age_days": "" if row["password_age_days"] is None else row["password_age_days"],
                    "recommendation": "; ".join(advice.get(row["user"], []))})  # fmt: skip
    return pd.DataFrame(out, columns=records.ACCESS_REVIEW_TABLE.columns)


# --- recommendations: a proposed spec ----------------------------------------------------------------
@dataclass(frozen=True)
class Recommendation:
    user: str
    action: str  # REMOVE (a grant) or OFFBOARD (the user)
    role_key: str | None
    reason: str

    @property
    def label(self) -> str:
        return f"remove {self.role_key}" if self.action == REMOVE else OFFBOARD

    def as_dict(self) -> dict:
        return {"user": self.user, "action": self.action, "role_key": self.role_key, "reason": self.reason}


def recommend(users: list[UserReview], use: RoleUse, review_days: int, now: datetime) -> list[Recommendation]:
    """Offboard a spec user with no sign-in and no key use in the period; else remove each granted role
    not assumed in it (only from a complete sweep: a missing event proves nothing otherwise)."""
    cutoff = now - timedelta(days=review_days)
    seen = f"{HISTORY_DAYS} days (all CloudTrail keeps)" if review_days > HISTORY_DAYS else f"{review_days} days"
    found = []
    for u in users:
        if not u.in_spec or (u.created is not None and u.created > cutoff):
            continue  # not the spec's to change, or too new to have used anything yet
        if u.last_activity is None or u.last_activity <= cutoff:
            last = _date(u.last_activity) or "never"
            why = f"no console sign-in and no access-key use in {review_days} days (last: {last})"
            found.append(Recommendation(u.user, OFFBOARD, None, why))
            continue
        for key in u.granted if use.complete else ():
            when = u.last_assumed.get(key)
            if when is None or when <= cutoff:
                why = f"last assumed {_date(when)}" if when else f"not assumed in the last {seen}"
                found.append(Recommendation(u.user, REMOVE, key, why))
    return found


# --- decisions ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    user: str
    decision: str  # KEEP | REMOVE | OFFBOARD
    roles: tuple[str, ...] = ()
    note: str = ""

    def removes(self, rec: Recommendation) -> bool:
        """Whether this decision carries `rec` out: offboarding removes everything, `remove` its roles."""
        if self.decision == OFFBOARD:
            return True
        return self.decision == REMOVE and rec.action == REMOVE and rec.role_key in self.roles

    def as_dict(self) -> dict:
        return {"user": self.user, "decision": self.decision, "roles": list(self.roles), "note": self.note}


def _decision(user: str, value, spec: Spec, where: str) -> tuple[Decision | None, list[str]]:
    """One entry: `keep`, `offboard`, `remove <role>[, <role>]`, or {decision: ..., note: ...}."""
    entry = spec.user_named(user)
    if entry is None:
        return None, [f"{where}: not in the spec; only spec users are decided here (others: 05_offboard_user)"]
    note, problems = "", []
    if isinstance(value, Mapping):
        problems += [f"{where}: unknown field {k!r}; allowed: {', '.join(DECISION_FIELDS)}"
                     for k in value if k not in DECISION_FIELDS]  # fmt: skip
        value, note = value.get("decision"), value.get("note") or ""
        if not isinstance(note, str):
            problems.append(f"{where}: note must be text, got {type(note).__name__}")
    words = str(value).replace(",", " ").split() if isinstance(value, str) else []
    verb, named = (words[0].lower(), [w for w in words[1:] if w.lower() != "role"]) if words else ("", [])
    if verb not in DECISIONS:
        return None, [*problems, f"{where}: {value!r} is not a decision; write keep, offboard or remove <role key>"]
    if (verb == REMOVE) != bool(named):
        fix = "name the role(s): remove data_engineer" if verb == REMOVE else f"{verb} takes no role"
        return None, [*problems, f"{where}: {value!r}: {fix}"]
    by_name = {name.lower(): key for key, name in spec.roles.items()}
    keys = [n if n in spec.roles else by_name.get(n.lower(), n) for n in named]
    for key in keys:
        if key not in spec.roles:
            problems.append(f"{where}: unknown role {key!r}; valid roles: {', '.join(spec.roles)}")
        elif key not in entry.roles:
            problems.append(f"{where}: the spec does not grant {key} to {entry.name}; granted: "
                            f"{', '.join(entry.roles) or 'none'}")  # fmt: skip
    return Decision(entry.name, verb, tuple(dict.fromkeys(keys)), note.strip()), problems


def parse_decisions(data, spec: Spec, source: str = "review_decisions_file") -> dict[str, Decision]:
    """user -> Decision; raises SpecError listing every problem (as the spec's validation does)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: must be a mapping of user -> keep / offboard / remove <role>")
    decided: dict[str, Decision] = {}
    problems, seen = [], set()
    for user, value in data.items():
        entry = spec.user_named(str(user))
        if entry is not None and entry.name in seen:
            problems.append(f"{source}: {user}: decided twice (IAM user names are case-insensitive)")
            continue
        seen.add(entry.name if entry is not None else None)
        decision, found = _decision(str(user), value, spec, f"{source}: {user}")
        problems += found
        if decision is not None:
            decided[decision.user] = decision
    if problems:
        raise SpecError(problems)
    return decided


def load_decisions(path: str | None, spec: Spec, base_dir: str | Path | None = None) -> dict[str, Decision]:
    """The decisions file, resolved like `iam_users_file` (relative to where the run started)."""
    if not path:
        return {}
    p = Path(path).expanduser()
    p = p if p.is_absolute() else Path(base_dir or Path.cwd()) / p
    if not p.is_file():
        raise SpecError(f"review_decisions_file: {path} does not exist (resolved to {p})")
    return parse_decisions(load_yaml(p.read_text(encoding="utf-8"), str(p)), spec, str(p))


def undecided(recommendations: list[Recommendation], decisions: Mapping[str, Decision]) -> list[str]:
    """A signed review decides every recommendation: each one left open, as a line to fix."""
    return [f"undecided: {r.user}: {r.label} ({r.reason}); add `{r.user}: keep` or `{r.user}: {r.label}`"
            for r in recommendations if r.user not in decisions]  # fmt: skip


def proposed_decisions(recommendations: list[Recommendation]) -> dict[str, Decision]:
    """Every recommendation accepted: the proposal as decisions."""
    found: dict[str, Decision] = {}
    for rec in recommendations:
        before = found.get(rec.user)
        roles = (before.roles if before else ()) + ((rec.role_key,) if rec.role_key else ())
        found[rec.user] = Decision(rec.user, rec.action, roles if rec.action == REMOVE else ())
    return found


def reviewed_users(spec: Spec, decisions: Mapping[str, Decision]) -> dict[str, dict]:
    """The `iam_users` mapping once the decisions are carried out, in the spec's order."""
    users = {}
    for name, entry in spec.to_mapping().items():
        decision = decisions.get(name)
        if decision is not None and decision.decision == OFFBOARD:
            continue
        gone = set(decision.roles) if decision is not None and decision.decision == REMOVE else set()
        users[name] = {"description": entry["description"], "roles": [k for k in entry["roles"] if k not in gone]}
        temporary = [t for t in entry.get("temporary", ()) if t["role"] not in gone]  # kept temporary, never permanent
        if temporary:
            users[name]["temporary"] = temporary
    return users


TEMPORARY_COLUMNS = ("user", "role_key", "until", "state", "reason", "used", "last_assumed")


def temporary_rows(spec: Spec, use: RoleUse) -> list[dict]:
    """Every temporary grant of the spec: its until (valid or expired at the review's time), its reason, and
    whether the user assumed the role in the period looked at."""
    rows = []
    for user in spec.users.values():
        for t in user.temporary:
            last = use.last_assumed(user.name, spec.roles[t.role])
            rows.append({"user": user.name, "role_key": t.role, "until": t.until_text,
                         "state": "expired" if t.expired(use.until) else "valid", "reason": t.reason,
                         "used": "yes" if last else ("no" if use.complete else "unknown"),
                         "last_assumed": _date(last)})  # fmt: skip
    return rows


def outcomes(recommendations: list[Recommendation], decisions: Mapping[str, Decision]) -> list[dict]:
    """Each recommendation with what the reviewer decided about it (keep or remove) and their note."""
    rows = []
    for rec in recommendations:
        decision = decisions.get(rec.user)
        verdict = "" if decision is None else (REMOVE if decision.removes(rec) else KEEP)
        rows.append({**rec.as_dict(), "decided": verdict, "note": decision.note if decision else ""})
    return rows


# --- the proposed and reviewed spec as files ------------------------------------------------------------
def spec_files(roles: Mapping[str, str], users: Mapping[str, dict], header: list[str],
               notes: Mapping[str, list[str]] | None = None) -> tuple[str, str]:  # fmt: skip
    """(parameters YAML, tfvars) of `users`; both must read back as exactly that spec, and validate."""
    from iamrunbook.core.terraform import dump_parameters_yaml, dump_tfvars, load_tfvars

    load_spec(dict(users), roles=roles)
    yaml_text = dump_parameters_yaml(roles, users, notes=notes, header=header)
    tfvars_text = dump_tfvars(users, notes=notes, header=header)
    if (load_yaml(yaml_text) or {}).get("iam_users") != dict(users) or load_tfvars(tfvars_text) != dict(users):
        raise SpecError("the proposed spec does not read back as itself; nothing was written")
    return yaml_text, tfvars_text


def spec_diff(roles: Mapping[str, str], before: Mapping[str, dict], after: Mapping[str, dict]) -> str:
    """A unified diff of the spec, as a reviewer reads a pull request; empty when nothing changes."""
    from iamrunbook.core.terraform import dump_parameters_yaml

    old, new = (dump_parameters_yaml(roles, users).splitlines(keepends=True) for users in (before, after))
    return "".join(difflib.unified_diff(old, new, "iam_users (current spec)", records.PROPOSED_YAML.name))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- the record -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccessReview(records.Shape):
    """access_review.json: the review as read, what was recommended, and (when signed) who decided what.
    `signed` needs a reviewer and a decision for every recommendation; the runner copies `reviewer` into
    run.json and marks the run `kind: access_review`."""

    account_id: str
    caller_arn: str
    generated: str
    review_days: int
    cloudtrail: dict
    users: list[dict]
    recommendations: list[dict]
    reviewer: str | None = None
    signed: bool = False
    decisions: list[dict] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    reviewed_spec_sha256: str | None = None
    follow_up: list[dict] = field(default_factory=list)
    spec_source: str | None = None

    def decided(self) -> dict[str, Decision]:
        return {d["user"]: Decision(d["user"], d["decision"], tuple(d.get("roles") or ()), d.get("note") or "")
                for d in self.decisions}  # fmt: skip


def use_record(use: RoleUse) -> dict:
    return {"since": use.since.isoformat(timespec="seconds"), "until": use.until.isoformat(timespec="seconds"),
            "pages": use.pages, "events": use.events, "complete": use.complete, "status": use.status}  # fmt: skip


# --- closing the loop: the earlier reviews, and the apply runs after them ------------------------------
@dataclass(frozen=True)
class Applied:
    """An apply run of the out folder: its id, when it finished, and the addresses it changed (lower-case)."""

    run: str
    finished: datetime
    done: frozenset[str]


def _applied(folder: Path) -> Applied | None:
    manifest = records.read(folder, records.RUN_MANIFEST)
    outcome = records.read(folder, records.APPLY_RESULT)
    finished = _when(getattr(manifest, "finished", None))
    if manifest is None or manifest.mode != "apply" or outcome is None or finished is None:
        return None
    done = frozenset(str(c.get("address", "")).lower() for c in outcome.changes or () if c.get("status") == "done")
    return Applied(folder.name, finished, done)


@dataclass(frozen=True)
class History:
    """The out folder's earlier reviews (run id, record) and apply runs, oldest first, read through records."""

    reviews: tuple[tuple[str, AccessReview], ...] = ()
    applies: tuple[Applied, ...] = ()

    @classmethod
    def read(cls, out: Path, exclude: str | None = None) -> History:
        folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != exclude) if out.is_dir() else []
        reviews = [(f.name, r) for f in folders if (r := records.read(f, records.ACCESS_REVIEW)) is not None]
        applies = [a for f in folders if (a := _applied(f)) is not None]
        reviews.sort(key=lambda r: r[1].generated)
        return cls(tuple(reviews), tuple(sorted(applies, key=lambda a: a.finished)))

    def last_assumed(self) -> dict[tuple[str, str], datetime]:
        """(user lower, role key) -> the newest use any earlier review saw: history older than CloudTrail's."""
        found: dict[tuple[str, str], datetime] = {}
        for _, review in self.reviews:
            for row in review.users:
                for key, day in (row.get("last_assumed") or {}).items():
                    when, slot = _when(day), (str(row.get("user", "")).lower(), key)
                    if when is not None and when > found.get(slot, when - timedelta(seconds=1)):
                        found[slot] = when
        return found

    def follow_up(self, inv: Inventory, grants: list[Grant], spec: Spec) -> list[dict]:
        """Each removal the last signed review decided: done (when, in which run) or still to do, from the
        account as read now and the apply runs that finished after the review."""
        signed = [(run, r) for run, r in self.reviews if r.signed]
        if not signed:
            return []
        run, review = signed[-1]
        after = [a for a in self.applies if a.finished > (_when(review.generated) or a.finished)]
        reach, groups = {(g.user.lower(), g.role_key) for g in grants}, spec.groups()
        rows = []
        for d in sorted(review.decided().values(), key=lambda d: d.user.lower()):
            for key in d.roles if d.decision == REMOVE else ((None,) if d.decision == OFFBOARD else ()):
                if key is None:
                    addresses, still = {user_address(d.user)}, inv.user_named(d.user) is not None
                else:
                    addresses = {attachment_address(d.user, key), f"group/{groups.get(key)}/{d.user}"}
                    still = (d.user.lower(), key) in reach
                done = next((a for a in after if a.done & {x.lower() for x in addresses}), None)
                rows.append({"user": d.user, "decision": d.decision, "role_key": key, "reviewed_in": run,
                             "reviewer": review.reviewer, "status": _status(key, still, done)})  # fmt: skip
        return rows


def _status(role_key: str | None, still: bool, done: Applied | None) -> str:
    """`removed 2026-12-03 in run <id>`, or why not: the account as read now is the authority."""
    if still:
        return "not done: " + (f"can still assume {role_key}" if role_key else "the user still exists")
    verb = "removed" if role_key else "offboarded"
    return f"{verb} {_date(done.finished)} in run {done.run}" if done else f"{verb}, but by no apply run in this folder"
