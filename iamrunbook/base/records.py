"""Every file of a run folder: one declaration each (name and shape), and the one way to write and read it.

The run folder is the audit record and the runner's exit code is read from it, so a record written by a
notebook and read by the runner, the demo or the audit must mean the same to both. Notebooks write only
through `write`, and everyone else reads only through `read`: a name or key can no longer drift between
a cell and the code that decides a cron job's exit code. `declared(path)` says whether a file of a run
folder is one of these (a test runs every notebook and checks each file it left).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from iamrunbook.base.errors import RunbookError


@dataclass(frozen=True)
class Record:
    """A run-folder file: `name` (a glob for families like `offboard_<user>_credentials.json`), and its shape:
    a class with to_json/from_json (given as "module:Class" so this module imports no domain code), CSV
    columns, or neither for plain text."""

    name: str
    shape: str | None = None
    columns: tuple[str, ...] = ()

    def matches(self, relative: str) -> bool:
        return fnmatch.fnmatchcase(relative, self.name)

    def shape_class(self) -> type:
        module, _, cls = (self.shape or "").partition(":")
        return getattr(importlib.import_module(module), cls)


class Shape:
    """to_json/from_json for a dataclass record: the keys of the file are its fields, unset ones left out."""

    def to_dict(self) -> dict:
        """Every field; an optional one (default None) only when it is set."""
        optional = {f.name for f in dataclasses.fields(self) if f.default is None}
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k not in optional}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str):
        """The shape again; a field that may be None and was left out (to_dict drops None) is None."""
        data = json.loads(text)
        fields = dataclasses.fields(cls)
        unset = {f.name: None for f in fields if f.name not in data and "None" in str(f.type)}
        names = {f.name for f in fields}
        return cls(**unset, **{k: v for k, v in data.items() if k in names})


# --- shapes the notebooks and the runner share ------------------------------------------------------
@dataclass(frozen=True)
class Identity(Shape):
    """Who ran it and where: written by every notebook's first cell, before the account check refuses."""

    caller_arn: str
    account_id: str


@dataclass(frozen=True)
class Outcome(Shape):
    """What an apply did: ok, and one row per change (address, kind, status). Legacy's rows are `steps`."""

    ok: bool
    changes: list[dict] | None = None
    steps: list[dict] | None = None
    error: str | None = None
    summary: dict | None = None
    message: str | None = None
    spec_file: str | None = None
    spec_sha256: str | None = None


@dataclass(frozen=True)
class VerificationRecord(Shape):
    """04's verdict. `unfixable`: problems no apply fixes (access by a path the runbook does not own)."""

    ok: bool
    problems: list[dict]
    addresses: list[str]
    outputs: dict
    unfixable: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class OffboardRecord(Shape):
    """05's outcome: whether the user existed, whether this run applied, and each step taken."""

    user: str
    exists: bool
    applied: bool
    steps: list[dict]
    planned: list[dict] | None = None


# --- the declarations, notebook by notebook ---------------------------------------------------------
_SHAPES = __name__
USER_COLUMNS = ("user", "managed", "description", "attached_policies", "inline_policies", "groups", "tags", "created")
CREDENTIAL_COLUMNS = (
    *("user", "password_enabled", "password_last_used", "mfa_active"),
    *("access_key_1_active", "access_key_1_last_rotated", "access_key_1_last_used_date"),
    *("access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date"),
)

# the runner and every notebook
RUN_MANIFEST = Record("run.json", "iamrunbook.runs.manifest:RunManifest")
IDENTITY = Record("identity.json", f"{_SHAPES}:Identity")
SESSION = Record("session.json")
NOTEBOOKS = Record("*.ipynb")
HTML = Record("*.html")
# 01_gather_user_info
INVENTORY_USERS = Record("inventory_users.csv", columns=USER_COLUMNS)
INVENTORY_ATTACHMENTS = Record("inventory_attachments.csv", columns=("kind", "entity", "policy", "policy_arn"))
INVENTORY_POLICIES = Record(
    "inventory_policies.csv", columns=("policy", "arn", "aws_managed", "default_version", "versions", "attachments")
)
INVENTORY_CREDENTIALS = Record("inventory_credentials.csv", columns=CREDENTIAL_COLUMNS)
EFFECTIVE_ACCESS = Record("effective_access.csv")  # user x the configured role keys
EFFECTIVE_ACCESS_PATHS = Record(
    "effective_access_paths.csv", columns=("user", "role_key", "role_name", "verdict", "path", "conditions")
)
ROLE_TRUST = Record("role_trust.csv", columns=("role_key", "role", "trusts", "requires_mfa", "policy_requires_mfa",
                                               "max_session_hours"))  # fmt: skip
CIS_CHECKS = Record("cis_checks.csv", columns=("check", "cis", "user", "status", "finding", "fix"))
# 01 and 06: the CIS account-level items, 1.16 per policy, and every finding as ASFF (core/cis_account.py, asff.py)
CIS_ACCOUNT = Record("cis_account.csv", columns=("check", "cis", "resource", "status", "finding", "fix"))
CIS_POLICIES = Record(
    "cis_policies.csv",
    columns=(
        *("policy", "kind", "arn", "status", "check", "cis", "attached_to", "statement", "users", "roles"),
        *("finding", "fix"),
    ),
)
CIS_ASFF = Record("cis_findings.asff.json")
LEGACY_HOLDERS = Record("legacy_holders.csv", columns=("kind", "name"))
ADOPTED_YAML = Record("adopted_iam_users.yaml")
ADOPTED_TFVARS = Record("adopted_iam_users.auto.tfvars")
# 02_delete_legacy_policy
LEGACY_DELTA = Record(
    "legacy_privilege_delta.csv",
    columns=("user", "via", "in_spec", "role_key", "role", "legacy", "conditions", "spec", "change"),
)
LEGACY_BACKUP = Record("legacy_policy_backup*.json", "iamrunbook.aws.legacy_backup:Backup")
LEGACY_PLAN = Record("legacy_migration_plan.json", "iamrunbook.core.migration:MigrationPlan")
LEGACY_RESULT = Record("legacy_migration_result.json", f"{_SHAPES}:Outcome")
# 03_import_and_apply
PLAN = Record("plan.json", "iamrunbook.core.plan:Plan")
APPLY_RESULT = Record("apply_result.json", f"{_SHAPES}:Outcome")
TERRAFORM = Record("terraform/*")
# written by live sessions before live changes became runs of their own (runs/live.py): kept declared, so
# those older records still read and verify
INTERACTIVE_PLAN = Record("interactive_plan.json", "iamrunbook.core.plan:Plan")
INTERACTIVE_RESULT = Record("interactive_apply_result.json", f"{_SHAPES}:Outcome")
INTERACTIVE_SPEC = Record("iam_users.yaml")
SPEC_FILE = Record("spec/*")  # a live change's run folder: the spec file it kept (runs/live.py)
# 04_verify
# 07_migrate_to_identity_center (and 03 under grant_via: identity_center): phase 1 grants, phase 2 retires
ROLE_TRUST_CENTER = Record("role_trust_identity_center.csv", columns=("role_key", "role", "permission_set",
                                                                     "admits_identity_center", "why"))  # fmt: skip
CENTER_PLAN = Record("identity_center_plan.json", "iamrunbook.core.identity_center_plan:CenterPlan")
CENTER_RESULT = Record("identity_center_result.json", f"{_SHAPES}:Outcome")
CENTER_USERS = Record("identity_center_users.csv", columns=("user", "identity_center_user", "iam_user", "roles",
                                                          "last_sign_in", "status"))  # fmt: skip
RETIRE_PLAN = Record("retire_plan.json", "iamrunbook.core.identity_center_plan:RetirePlan")
RETIRE_RESULT = Record("retire_result.json", f"{_SHAPES}:Outcome")

VERIFICATION = Record("verification.json", f"{_SHAPES}:VerificationRecord")
# 05_offboard_user
OFFBOARD_CREDENTIALS = Record("offboard_*_credentials.json")
OFFBOARD = Record("offboard.json", f"{_SHAPES}:OffboardRecord")
# 06_access_review: the review (signed or not) and its table; the proposal; the reviewed spec
ACCESS_REVIEW = Record("access_review.json", "iamrunbook.core.review:AccessReview")
ACCESS_REVIEW_TABLE = Record(
    "access_review.csv",
    columns=(
        *("user", "in_spec", "created", "granted", "can_assume", "last_assumed", "console", "last_sign_in"),
        *("password_age_days", "mfa", "access_keys", "last_activity", "recommendation"),
    ),
)
PROPOSED_YAML, PROPOSED_TFVARS = Record("proposed_iam_users.yaml"), Record("proposed_iam_users.auto.tfvars")
PROPOSED_DIFF = Record("proposed_iam_users.diff")
REVIEWED_YAML = Record("reviewed_iam_users.yaml")  # what `iam_users_file` points at to carry the decisions out

DECLARED: tuple[Record, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Record))

# not run-folder files: the parent folder of `iamrunbook run --accounts`, one row per account (cli/fanout.py)
ACCOUNTS_SUMMARY = Record("accounts_summary.json")
ACCOUNTS_SUMMARY_CSV = Record("accounts_summary.csv")


def declared(relative: str) -> Record | None:
    """The declaration a run-folder path (relative, POSIX) falls under, or None."""
    return next((r for r in DECLARED if r.matches(relative)), None)


def _checked(record: Record | str, name: str | None) -> tuple[Record, str]:
    if isinstance(record, str):
        name, record = record, declared(record)
        if record is None:
            raise RunbookError(f"{name} is not a declared run-folder record (records.py)")
    name = name or record.name
    if not record.matches(name):
        raise RunbookError(f"{name} is not a file of record {record.name}")
    return record, name


#: A spreadsheet runs a cell that starts with one of these as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a leading `'`; anything else as it is.
    IAM names and tag values may legally start with `=+-@`, so account data can be such a cell."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def neutral_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the CSV side file holds it: every text cell and header through `neutral_cell`. Only CSV:
    the JSON side files keep the raw values."""
    out = frame.map(neutral_cell)
    out.columns = [neutral_cell(c) for c in frame.columns]
    return out


def write(run_dir: str | Path, record: Record | str, content: Any, *, name: str | None = None) -> Path:
    """Write one record atomically: a shape (to_json), a DataFrame (CSV, formulas neutralised: the one CSV
    writer of the package), text, bytes or JSON-able data."""
    record, name = _checked(record, name)
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.writing")
    if isinstance(content, pd.DataFrame):
        if record.columns and tuple(content.columns) != record.columns:
            raise RunbookError(f"{name}: columns {list(content.columns)} are not the record's {list(record.columns)}")
        # CRLF rows (RFC 4180): a carriage return inside a cell is then quoted, not read as a row break
        neutral_csv(content).to_csv(tmp, index=False, lineterminator="\r\n")
    elif isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        if hasattr(content, "to_json"):
            content = content.to_json()
        elif not isinstance(content, str):
            content = json.dumps(content, indent=2, default=str)
        tmp.write_text(content if content.endswith("\n") else content + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read(run_dir: str | Path, record: Record, *, name: str | None = None) -> Any:
    """The record as its shape (or text), or None when the file is missing or unreadable."""
    record, name = _checked(record, name)
    path = Path(run_dir) / name
    try:
        text = path.read_text(encoding="utf-8")
        return record.shape_class().from_json(text) if record.shape else text
    except (OSError, ValueError, TypeError, KeyError):
        return None
