"""Many accounts: the accounts file, the accounts of an AWS Organization, and the role assumed in each.

An accounts file names the accounts one `iamrunbook run --accounts` covers and how to enter each, the
shape c7n-org and Prowler use: a role assumed from the caller's own credentials, an ExternalId when the
role's trust asks for one, and the parameters file holding that account's spec. Or `accounts:
from_organization`: the ACTIVE accounts Organizations lists, optionally only those under some OUs (nested
OUs included) or carrying some tags. The file is checked like the spec, every problem at once and named,
before any AWS call; paths in it (and in the parameters files it names) are relative to its folder.

The calls here are made with the caller's credentials in the management (or delegated administrator)
account, not by the runner in a member account: their actions are not part of `iamrunbook permissions`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iamrunbook.aws import clients as aws
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import role_arn
from iamrunbook.core.spec import iam_name_problem, load_yaml

READ_ACTIONS = (
    "organizations:DescribeOrganization",  # grant_via: identity_center: which account runs last (fanout_center.py)
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
    "organizations:ListTagsForResource",
    "sts:AssumeRole",
)
WRITE_ACTIONS: tuple[str, ...] = ()

FROM_ORGANIZATION = "from_organization"
DEFAULT_ROLE = "OrganizationAccountAccessRole"
#: what `defaults` and each account may set, with its default
SETTINGS: dict[str, Any] = {
    "role_name": DEFAULT_ROLE,
    "external_id": None,
    "parameters_file": None,
    "iam_users_file": None,
    "duration_seconds": 3600,
}
ACCOUNT_KEYS = ("id", "name", *SETTINGS)
TOP_KEYS = ("defaults", "accounts", "ous", "tags", "exclude")
FILTER_KEYS = ("ous", "tags", "exclude")
PLACEHOLDERS = ("id", "name")
_ACCOUNT_ID = re.compile(r"\d{12}")
_PARENT_ID = re.compile(r"ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)  # sts externalIdType
_LABEL = re.compile(r"[^\w.+-]", re.ASCII)
#: Organizations answers at most 20 accounts or children a page (MaxResults 1-20)
PAGE = {"PaginationConfig": {"PageSize": 20}}


@dataclass(frozen=True)
class Account:
    """One account of a fan-out and how to enter it; file paths are absolute (or None)."""

    id: str
    name: str
    role_name: str = DEFAULT_ROLE
    external_id: str | None = None
    parameters_file: str | None = None
    iam_users_file: str | None = None
    duration_seconds: int = 3600

    def role_arn(self, partition: str = "aws") -> str:
        return role_arn(self.id, self.role_name, partition)

    @property
    def label(self) -> str:
        """`<name>-<id>`, safe in a folder name: which account a run folder belongs to, at a glance."""
        return f"{_LABEL.sub('_', self.name)[:40]}-{self.id}"

    def describe(self) -> str:
        return self.id if self.name == self.id else f"{self.name} ({self.id})"


@dataclass(frozen=True)
class AccountsFile:
    """A checked accounts file: its accounts, or the filters of `accounts: from_organization`."""

    path: Path
    defaults: dict[str, Any]
    accounts: tuple[Account, ...] = ()
    from_organization: bool = False
    ous: tuple[str, ...] = ()
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    @property
    def base_dir(self) -> Path:
        return self.path.parent


# --- checking the file ------------------------------------------------------------------------------
def account_id_problem(value: Any, where: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{where}: id {value} is a number; quote it so YAML keeps it text, leading zeros included"
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        return f"{where}: id {value!r} is not an AWS account id (12 digits, quoted)"
    return None


def _setting_problem(key: str, value: Any) -> str | None:
    """What is wrong with one setting of `defaults` or of an account, or None."""
    if key == "role_name":
        return iam_name_problem(value, "role_name")
    if key == "external_id":
        if value is not None and not (isinstance(value, str) and _EXTERNAL_ID.fullmatch(value)):
            return "external_id must be 2-1224 characters of letters, digits and + = , . @ : / _ - (or null)"
    elif key == "duration_seconds":
        if isinstance(value, bool) or not isinstance(value, int) or not 900 <= value <= 43200:
            return f"duration_seconds must be a whole number of seconds from 900 to 43200, got {value!r}"
    elif value is not None and not (isinstance(value, str) and value.strip()):
        return f"{key} must be a path (a string) or null, got {value!r}"
    return None


def _unknown(mapping: Mapping, allowed: Sequence[str], where: str) -> list[str]:
    return [f"{where}: unknown key {k!r}; allowed: {', '.join(allowed)}" for k in mapping if k not in allowed]


def _settings(mapping: Mapping, where: str) -> tuple[dict[str, Any], list[str]]:
    """The valid settings of `mapping`, and a problem for each invalid one (left out, so it harms nothing)."""
    valid, problems = {}, []
    for key in (k for k in SETTINGS if k in mapping):
        problem = _setting_problem(key, mapping[key])
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            valid[key] = mapping[key]
    return valid, problems


def _path(template: str | None, account_id: str, name: str, base: Path, where: str) -> tuple[str | None, list[str]]:
    """The file a setting names for this account ({id} and {name} filled in), absolute; it must exist."""
    if template is None:
        return None, []
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:  # an unmatched { or }
        return None, [f"{where}: {template!r}: {exc}; a placeholder is {{id}} or {{name}}"]
    unknown = sorted(fields - set(PLACEHOLDERS))
    if unknown:
        return None, [f"{where}: {template!r} has placeholder(s) {', '.join(unknown)}; allowed: {{id}}, {{name}}"]
    path = (base / template.format(id=account_id, name=name)).resolve()
    if not path.is_file():
        return None, [f"{where}: {path} does not exist"]
    return str(path), []


def make_account(
    account_id: str, name: str, settings: Mapping[str, Any], base: Path, where: str
) -> tuple[Account, list[str]]:
    """An Account from its id, name and settings (defaults already merged), its files checked."""
    merged = {**SETTINGS, **settings}
    problems = []
    files = {}
    for key in ("parameters_file", "iam_users_file"):
        files[key], found = _path(merged[key], account_id, name, base, f"{where}: {key}")
        problems += found
    if merged["parameters_file"] is None and merged["iam_users_file"] is None:
        problems.append(f"{where}: no spec: give parameters_file or iam_users_file (here or in defaults)")
    account = Account(account_id, name, merged["role_name"], merged["external_id"], files["parameters_file"],
                      files["iam_users_file"], merged["duration_seconds"])  # fmt: skip
    return account, problems


def _listed(entries: Any, defaults: Mapping, base: Path) -> tuple[list[Account], list[str]]:
    if not isinstance(entries, list) or not entries:
        return [], [f"accounts: a list of accounts (each with an id) or {FROM_ORGANIZATION!r}, got {entries!r}"]
    accounts, problems = [], []
    for i, entry in enumerate(entries, 1):
        where = f"accounts[{i}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: an account is a mapping with id, name, ...; got {entry!r}")
            continue
        problems += _unknown(entry, ACCOUNT_KEYS, where)
        if "id" not in entry:
            problems.append(f"{where}: no id")
            continue
        bad_id = account_id_problem(entry["id"], where)
        name = entry.get("name", entry["id"])
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: name must be a non-empty string, got {name!r}")
            name = str(entry["id"])
        if bad_id:
            problems.append(bad_id)
            continue
        where = f"account {name} ({entry['id']})" if name != entry["id"] else f"account {entry['id']}"
        settings, found = _settings(entry, where)
        account, missing = make_account(entry["id"], name, {**defaults, **settings}, base, where)
        accounts.append(account)
        problems += found + missing
    return accounts, problems + _duplicates(accounts)


def _duplicates(accounts: Sequence[Account]) -> list[str]:
    problems = []
    for attr in ("id", "name"):
        seen: dict[str, int] = {}
        for account in accounts:
            seen[getattr(account, attr)] = seen.get(getattr(account, attr), 0) + 1
        problems += [f"accounts: {attr} {value!r} is listed {n} times" for value, n in seen.items() if n > 1]
    return problems


def _filters(data: Mapping) -> tuple[dict[str, Any], list[str]]:
    """ous, tags and exclude of `accounts: from_organization`, checked."""
    problems = []
    ous = data.get("ous") or []
    if not isinstance(ous, list) or not all(isinstance(o, str) for o in ous):
        problems.append(f"ous: a list of OU ids (ou-...) or root ids (r-...), got {ous!r}")
        ous = []
    problems += [f"ous: {o!r} is not an OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)" for o in ous
                 if not _PARENT_ID.fullmatch(o)]  # fmt: skip
    tags = data.get("tags") or {}
    wanted: dict[str, tuple[str, ...]] = {}
    if not isinstance(tags, Mapping):
        problems.append(f"tags: a mapping of tag key to a value or a list of values, got {tags!r}")
        tags = {}
    for key, value in tags.items():
        values = value if isinstance(value, list) else [value]
        if not isinstance(key, str) or not values or not all(isinstance(v, str) for v in values):
            problems.append(f"tags: {key!r}: a value (a string) or a list of values, got {value!r}")
        wanted[str(key)] = tuple(str(v) for v in values)
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list):
        problems.append(f"exclude: a list of account ids, got {exclude!r}")
        exclude = []
    problems += [p for p in (account_id_problem(e, "exclude") for e in exclude) if p]
    return {"ous": tuple(ous), "tags": wanted, "exclude": tuple(str(e) for e in exclude)}, problems


def load_accounts_file(path: str | Path) -> AccountsFile:
    """The accounts file, checked; SpecError lists every problem found."""
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"accounts file {path} does not exist")
    data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(data, Mapping):
        raise SpecError(f"{path}: an accounts file is a YAML mapping with `accounts` (and `defaults`)")
    problems = _unknown(data, TOP_KEYS, str(path.name))
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append(f"defaults: a mapping of {', '.join(SETTINGS)}, got {defaults!r}")
        defaults = {}
    problems += _unknown(defaults, tuple(SETTINGS), "defaults")
    settings, found = _settings(defaults, "defaults")
    problems += found
    if "accounts" not in data:
        problems.append(f"no `accounts`: list them, or write `accounts: {FROM_ORGANIZATION}`")
    if data.get("accounts") == FROM_ORGANIZATION:
        filters, found = _filters(data)
        problems += found
        if problems:
            raise SpecError(problems)
        return AccountsFile(path, settings, from_organization=True, **filters)
    problems += [f"{key}: only with `accounts: {FROM_ORGANIZATION}`" for key in FILTER_KEYS if key in data]
    accounts, found = _listed(data.get("accounts"), settings, path.parent) if "accounts" in data else ([], [])
    if problems + found:
        raise SpecError(problems + found)
    return AccountsFile(path, settings, tuple(accounts))


def select(accounts: Sequence[Account], wanted: Iterable[str]) -> list[Account]:
    """The accounts named by id or name (`--account`), in the file's order; SpecError for an unknown one."""
    wanted = list(wanted)
    if not wanted:
        return list(accounts)
    known = {a.id for a in accounts} | {a.name for a in accounts}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        listed = ", ".join(a.describe() for a in accounts)
        raise SpecError([f"--account {w}: not in the accounts file (it has: {listed})" for w in unknown])
    return [a for a in accounts if a.id in wanted or a.name in wanted]


# --- the organization -------------------------------------------------------------------------------
def _active(account: Mapping) -> bool:
    """ACTIVE by `State` (AWS's newer field) or, where only that is given, `Status`."""
    return (account.get("State") or account.get("Status")) == "ACTIVE"


def accounts_under(org, parent_ids: Iterable[str]) -> list[dict]:
    """Every account under these OUs or roots, nested OUs included (ListAccountsForParent, ListChildren)."""
    found: dict[str, dict] = {}
    pending, seen = list(parent_ids), set()
    while pending:
        parent = pending.pop()
        if parent in seen:
            continue
        seen.add(parent)
        for account in aws.paginate(org, "list_accounts_for_parent", "Accounts", ParentId=parent, **PAGE):
            found[account["Id"]] = account
        children = aws.paginate(
            org, "list_children", "Children", ParentId=parent, ChildType="ORGANIZATIONAL_UNIT", **PAGE
        )
        pending += [child["Id"] for child in children]
    return list(found.values())


def account_tags(org, account_id: str) -> dict[str, str]:
    tags = aws.paginate(org, "list_tags_for_resource", "Tags", ResourceId=account_id)
    return {t["Key"]: t["Value"] for t in tags}


def list_organization_accounts(
    org, *, ous: Sequence[str] = (), tags: Mapping[str, Sequence[str]] | None = None
) -> list[dict]:
    """The organization's ACTIVE accounts (ListAccounts, paginated), or those under `ous`, and with every
    tag of `tags` set to one of its values; sorted by name, then id."""
    listed = accounts_under(org, ous) if ous else aws.paginate(org, "list_accounts", "Accounts", **PAGE)
    chosen = [a for a in listed if _active(a)]
    if tags:
        chosen = [a for a in chosen if _tags_match(account_tags(org, a["Id"]), tags)]
    return sorted(chosen, key=lambda a: (a.get("Name", ""), a["Id"]))


def _tags_match(found: Mapping[str, str], wanted: Mapping[str, Sequence[str]]) -> bool:
    return all(found.get(key) in values for key, values in wanted.items())


def organization_accounts(
    accounts_file: AccountsFile, org, own_account_id: str | None = None
) -> tuple[list[Account], list[str], list[str]]:
    """The accounts of `accounts: from_organization` with the file's defaults, every problem (a missing
    parameters file for one of them), and notes. Left out: every id in `exclude`, and the caller's own
    account, where no role is assumed (run `iamrunbook run -f` there)."""
    accounts, problems, notes = [], [], []
    for listed in list_organization_accounts(org, ous=accounts_file.ous, tags=accounts_file.tags):
        name = listed.get("Name") or listed["Id"]
        if listed["Id"] == own_account_id:
            notes.append(f"left out {name} ({listed['Id']}): the caller's own account; run `iamrunbook run -f` in it")
            continue
        if listed["Id"] in accounts_file.exclude:
            continue
        where = f"account {name} ({listed['Id']})"
        account, found = make_account(listed["Id"], name, accounts_file.defaults, accounts_file.base_dir, where)
        accounts.append(account)
        problems += found
    return accounts, problems, notes


# --- entering an account ----------------------------------------------------------------------------
def session_name(run_id: str) -> str:
    """`iamrunbook-<run id>`: each member's CloudTrail ties the session to the fan-out's folder."""
    return _LABEL.sub("_", f"iamrunbook-{run_id}")[:64]


def assume_role(sts, role_arn: str, run_id: str, account: Account) -> dict[str, str]:
    """Temporary credentials from sts:AssumeRole of `role_arn` (with the account's ExternalId, when it has
    one), as the three AWS_* environment variables a kernel's boto3 reads. botocore's errors propagate."""
    kwargs = {"ExternalId": account.external_id} if account.external_id else {}
    answer = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name(run_id), DurationSeconds=account.duration_seconds, **kwargs
    )
    credentials = answer["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
