"""Hypothesis strategies for random accounts and specs (issue 14), and the same account built with boto3.

An `Account` is plain data: users (tagged ManagedBy=iamrunbook or not, with keys, passwords, MFA, groups,
attached and inline policies), groups (foreign ones, and the runbook's own role groups as an earlier
`grant_via: group` run left them), roles (the three configured ones and others, trusting the account
root), and policies: each role's Assume<Role>Policy missing, right or broader than it should be, at 1-5
versions; the legacy AssumeRolesPolicy granting several roles; foreign customer-managed policies (one
allowing sts:AssumeRole on `*`, one a Deny) and AWS-managed ones (AdministratorAccess, PowerUserAccess).
`Account.inventory()` is the Inventory the sweep of that account returns; `build(iam, account)` makes
the account through boto3 calls, for end-to-end tests on the embedded AWS.

    cases(legacy=None) (Account, Spec): an account and a spec for it (random grant_via and require_mfa)
    accounts(legacy)   an Account, its caller a user in it or moto's arn:aws:sts::123456789012:user/moto;
                       legacy=True: always with the legacy policy, False: never, None: three in four
    specs(account)     a Spec that covers some of the account's users, drops some, adds new ones

The caller, when it is a user of the account, is in the spec with at least the roles it holds now: an
operator outside their own spec is refused by design (tests/test_simulate.py proves that by hand).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache

from hypothesis import strategies as st
from moto.iam.aws_managed_policies import aws_managed_policies_data

from iamrunbook.base.names import (
    DEFAULT_ROLES,
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    policy_document,
    policy_name,
    role_arn,
    temporary_group_name,
    temporary_policy_name,
)
from iamrunbook.core.access import effective_access
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import GrantSettings, load_spec

ACCOUNT = "123456789012"
MOTO_CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
ROLES = dict(DEFAULT_ROLES)
KEYS = tuple(ROLES)
LEGACY = "AssumeRolesPolicy"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
OWN_GROUPS = {key: f"{role}Users" for key, role in ROLES.items()}
AWS_MANAGED = ("AdministratorAccess", "PowerUserAccess", "IAMReadOnlyAccess")
USER_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "moto", "ci-bot", "heidi@example.com")
NEW_NAMES = ("zoe", "yusuf", "Xena")
FOREIGN_GROUPS = ("ops", "devs", "auditors")
OTHER_ROLES = ("ci-runner", "lambda-exec")
#: temporary grants (issue 29): the run's time, and one until already past and one still ahead of it
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
UNTILS = (NOW - timedelta(days=1), NOW + timedelta(days=1))
ROOT_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume(resource, effect: str = "Allow", **extra) -> dict:
    return {"Effect": effect, "Action": "sts:AssumeRole", "Resource": resource, **extra}


def arn_of(policy: str) -> str:
    if policy in AWS_MANAGED:
        return f"arn:aws:iam::aws:policy/{policy}"
    return f"arn:aws:iam::{ACCOUNT}:policy/{policy}"


def role_of(key: str) -> str:
    return role_arn(ACCOUNT, ROLES[key])


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
#: customer-managed policies nobody's spec owns: one reaches every role, one denies AdminRole, one is unrelated
FOREIGN = {
    "AssumeAnything": doc(assume("*")),
    "DenyAdminRole": doc(assume(role_of("admin"), "Deny")),
    "ReadArtifacts": doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*"}),
}
INLINE = {
    "assume-any": doc(assume("*")),
    "assume-data-with-mfa": doc(assume(role_of("data_engineer"), Condition=MFA)),
    "deny-infra": doc(assume(role_of("infrastructure_admin"), "Deny")),
    "read-logs": doc({"Effect": "Allow", "Action": "logs:Get*", "Resource": "*"}),
}
#: what a group of the runbook's may hold besides its own policy: no Deny (see test_simulate's notes)
ALLOW_ONLY_INLINE = ("assume-any", "assume-data-with-mfa", "read-logs")


@cache
def _aws_managed(name: str) -> dict:
    return json.loads(aws_managed_policies_data)[name]


def aws_managed_detail(name: str, attachments: int) -> dict:
    """An AWS-managed policy as the sweep returns it: its one (default) version, with AWS's version id."""
    data = _aws_managed(name)
    detail = Policy(name, (data["Document"],)).detail(attachments)
    detail["DefaultVersionId"] = data["DefaultVersionId"]
    detail["PolicyVersionList"] = [{**detail["PolicyVersionList"][0], "VersionId": data["DefaultVersionId"]}]
    return detail


@dataclass(frozen=True)
class Policy:
    name: str
    versions: tuple[dict, ...]  # documents, oldest first: v1, v2, ...
    default: int = 0  # index of the default version

    @property
    def arn(self) -> str:
        return arn_of(self.name)

    def detail(self, attachments: int) -> dict:
        versions = [
            {"Document": d, "VersionId": f"v{i + 1}", "IsDefaultVersion": i == self.default,
             "CreateDate": EPOCH + timedelta(days=i)}
            for i, d in enumerate(self.versions)
        ]  # fmt: skip
        return {"PolicyName": self.name, "PolicyId": f"ANPA{self.name.upper()}"[:21], "Arn": self.arn, "Path": "/",
                "DefaultVersionId": f"v{self.default + 1}", "AttachmentCount": attachments, "IsAttachable": True,
                "CreateDate": EPOCH, "UpdateDate": EPOCH, "PolicyVersionList": versions}  # fmt: skip


@dataclass(frozen=True)
class Principal:
    """A user, group or role: its name, attached policy names, inline policy names (from INLINE)."""

    name: str
    attached: tuple[str, ...] = ()
    inline: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # users only
    tags: tuple[tuple[str, str], ...] = ()  # users only
    keys: int = 0  # users only: access keys
    password: bool = False
    mfa: bool = False

    def refs(self) -> list[dict]:
        return [{"PolicyName": p, "PolicyArn": arn_of(p)} for p in self.attached]

    def inline_list(self) -> list[dict]:
        return [{"PolicyName": p, "PolicyDocument": INLINE[p]} for p in self.inline]


@dataclass(frozen=True)
class Account:
    users: tuple[Principal, ...]
    groups: tuple[Principal, ...]
    roles: tuple[Principal, ...]
    policies: tuple[Policy, ...]  # customer-managed
    caller_arn: str = MOTO_CALLER
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def caller(self) -> str | None:
        name = self.caller_arn.rsplit("/", 1)[-1]
        return next((u.name for u in self.users if u.name.lower() == name.lower()), None)

    def inventory(self) -> Inventory:
        """What read_inventory(with_credential_report=True) returns for this account."""
        everyone = (*self.users, *self.groups, *self.roles)
        used = {p for e in everyone for p in e.attached}
        policies = {p.arn: p.detail(sum(p.name in e.attached for e in everyone)) for p in self.policies}
        for name in sorted(used & set(AWS_MANAGED)):
            policies[arn_of(name)] = aws_managed_detail(name, sum(name in e.attached for e in everyone))
        users = {
            u.name: {"Path": "/", "UserName": u.name, "UserId": f"AIDA{u.name.upper()}"[:21],
                     "Arn": f"arn:aws:iam::{ACCOUNT}:user/{u.name}", "CreateDate": EPOCH,
                     "UserPolicyList": u.inline_list(), "GroupList": list(u.groups),
                     "AttachedManagedPolicies": u.refs(), "Tags": [{"Key": k, "Value": v} for k, v in u.tags]}
            for u in self.users
        }  # fmt: skip
        groups = {
            g.name: {"Path": "/", "GroupName": g.name, "GroupId": f"AGPA{g.name.upper()}"[:21],
                     "Arn": f"arn:aws:iam::{ACCOUNT}:group/{g.name}", "CreateDate": EPOCH,
                     "GroupPolicyList": g.inline_list(), "AttachedManagedPolicies": g.refs()}
            for g in self.groups
        }  # fmt: skip
        roles = {
            r.name: {"Path": "/", "RoleName": r.name, "RoleId": f"AROA{r.name.upper()}"[:21],
                     "Arn": role_arn(ACCOUNT, r.name), "CreateDate": EPOCH, "AssumeRolePolicyDocument": ROOT_TRUST,
                     "RolePolicyList": r.inline_list(), "AttachedManagedPolicies": r.refs(), "Tags": []}
            for r in self.roles
        }  # fmt: skip
        return Inventory(ACCOUNT, self.caller_arn, users, groups, roles, policies, credential_report=self.report())

    def report(self) -> list[dict]:
        def flag(value: bool) -> str:
            return "true" if value else "false"

        return [
            {"user": u.name, "arn": f"arn:aws:iam::{ACCOUNT}:user/{u.name}", "password_enabled": flag(u.password),
             "mfa_active": flag(u.mfa), "access_key_1_active": flag(u.keys >= 1),
             "access_key_2_active": flag(u.keys >= 2)}
            for u in self.users
        ]  # fmt: skip


# --- documents ---------------------------------------------------------------------------------------
def _assume_documents(key: str) -> st.SearchStrategy[dict]:
    """An Assume<Role>Policy's document: right (with or without MFA), or broader (every role, a list, a
    wildcard), or emptied of its grant (AWS refuses a document with no statement at all, so "empty" is one
    that allows nothing here). Never naming only other roles."""
    right = role_of(key)
    others = [role_of(k) for k in KEYS if k != key]
    return st.sampled_from(
        [
            policy_document(ACCOUNT, ROLES[key]),
            policy_document(ACCOUNT, ROLES[key], mfa=True),
            doc(assume("*")),
            doc(assume([right, *others])),
            doc(assume([right, others[0]])),
            doc(assume(f"arn:aws:iam::{ACCOUNT}:role/*Role")),
            doc({"Effect": "Allow", "Action": "sts:*", "Resource": "*"}),
            doc({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}),  # emptied by hand
        ]
    )


def _legacy_documents() -> st.SearchStrategy[dict]:
    """AssumeRolesPolicy: sts:AssumeRole on several configured roles (or all, by wildcard)."""
    lists = st.lists(st.sampled_from(KEYS), min_size=2, max_size=3, unique=True).map(
        lambda keys: doc(assume(sorted(role_of(k) for k in keys)))
    )
    return st.one_of(lists, st.just(doc(assume("*"))), st.just(doc(assume("*", Condition=MFA))))


@st.composite
def _versioned(draw, name: str, documents: st.SearchStrategy[dict]) -> Policy:
    versions = tuple(draw(st.lists(documents, min_size=1, max_size=5)))
    return Policy(name, versions, draw(st.integers(0, len(versions) - 1)))


# --- the account -------------------------------------------------------------------------------------
@st.composite
def _policies(draw, legacy: bool | None) -> tuple[Policy, ...]:
    found = []
    for key in KEYS:
        if draw(st.booleans()) or draw(st.booleans()):  # three in four exist
            found.append(draw(_versioned(policy_name(ROLES[key]), _assume_documents(key))))
    if legacy or (legacy is None and draw(st.integers(0, 3)) > 0):  # by default three in four still have it
        found.append(draw(_versioned(LEGACY, _legacy_documents())))
    for name, document in FOREIGN.items():
        if draw(st.booleans()):
            found.append(Policy(name, (document,)))
    for key in KEYS:  # temporary grants' policies, some expired, left by earlier runs
        for until in UNTILS:
            if draw(st.integers(0, 3)) == 0:
                document = policy_document(ACCOUNT, ROLES[key], until=until)
                found.append(Policy(temporary_policy_name(ROLES[key], until), (document,)))
    return tuple(found)


def _some(draw, items, max_size: int = 3) -> tuple:
    items = sorted(items)
    if not items:
        return ()
    return tuple(draw(st.lists(st.sampled_from(items), max_size=max_size, unique=True)))


@st.composite
def _groups(draw, policies: tuple[Policy, ...]) -> tuple[Principal, ...]:
    names = {p.name for p in policies}
    attachable = names | set(AWS_MANAGED)
    groups = []
    for key, group in OWN_GROUPS.items():  # left by an earlier grant_via: group run
        if draw(st.integers(0, 3)) == 0:
            own = {policy_name(ROLES[key])} & names
            extra = _some(draw, attachable - set(FOREIGN) | {"AssumeAnything"} & names, 1)
            groups.append(Principal(group, tuple(sorted(own | set(extra))), _some(draw, ALLOW_ONLY_INLINE, 1)))
    for group in _some(draw, FOREIGN_GROUPS, 3):
        groups.append(Principal(group, _some(draw, attachable, 2), _some(draw, INLINE, 2)))
    for policy in (p for p in policies if "PolicyUntil" in p.name):  # a temporary grant's own group, now and then
        if draw(st.integers(0, 2)) == 0:
            key = next(k for k in KEYS if policy.name.startswith(policy_name(ROLES[k])))
            until = next(u for u in UNTILS if policy.name == temporary_policy_name(ROLES[key], u))
            groups.append(Principal(temporary_group_name(OWN_GROUPS[key], until), (policy.name,)))
    return tuple(groups)


def _attachments(draw, policies: tuple[Policy, ...]) -> tuple[str, ...]:
    """Each Assume*Policy half the time, the legacy policy a third, and up to one foreign or AWS-managed one:
    the runbook's own policies are what plans change, so users hold them often."""
    names = {p.name for p in policies}
    own = [policy_name(ROLES[k]) for k in KEYS if policy_name(ROLES[k]) in names]
    found = [n for n in own if draw(st.booleans())]
    found += _some(draw, [n for n in names if "PolicyUntil" in n], 2)
    if LEGACY in names and draw(st.integers(0, 2)) == 0:
        found.append(LEGACY)
    others = {n for n in names - {*own, LEGACY} if "PolicyUntil" not in n}
    return (*found, *_some(draw, others | set(AWS_MANAGED), 1))


@st.composite
def _users(draw, policies: tuple[Policy, ...], groups: tuple[Principal, ...]) -> tuple[Principal, ...]:
    names = draw(st.lists(st.sampled_from(USER_NAMES), max_size=7, unique=True))
    users = []
    for name in names:
        tags = [("Team", "ops")] if draw(st.booleans()) else []
        if draw(st.booleans()):  # the runbook made (or adopted) this user once
            tags += [("Name", name), ("Description", "made by the runbook"), (MANAGED_BY_KEY, MANAGED_BY_VALUE)]
        users.append(Principal(
            name, _attachments(draw, policies), _some(draw, INLINE, 1), _some(draw, [g.name for g in groups], 2),
            tuple(tags), draw(st.integers(0, 2)), draw(st.booleans()), draw(st.booleans()),
        ))  # fmt: skip
    return tuple(users)


@st.composite
def _roles(draw, policies: tuple[Policy, ...]) -> tuple[Principal, ...]:
    attachable = {p.name for p in policies} | set(AWS_MANAGED)
    configured = [Principal(name, _some(draw, attachable, 1)) for name in ROLES.values()]
    others = [Principal(name, _some(draw, attachable, 2), _some(draw, INLINE, 1))
              for name in _some(draw, OTHER_ROLES, 2)]  # fmt: skip
    return (*configured, *others)


@st.composite
def accounts(draw, legacy: bool | None = None) -> Account:
    """`legacy`: True, every account has the legacy policy; False, none; None, three in four."""
    policies = draw(_policies(legacy))
    groups = draw(_groups(policies))
    users = draw(_users(policies, groups))
    callers = [MOTO_CALLER, *(f"arn:aws:iam::{ACCOUNT}:user/{u.name}" for u in users)]
    return Account(users, groups, draw(_roles(policies)), policies, draw(st.sampled_from(callers)))


# --- the spec ----------------------------------------------------------------------------------------
def held_now(account: Account, user: str) -> set[str]:
    """The role keys `user` can assume in the account, by any path (access.py)."""
    inv = account.inventory()
    return {g.role_key for g in effective_access(inv.details(), ROLES, ACCOUNT, users=[user])}


@st.composite
def specs(draw, account: Account):
    """Some of the account's users (now and then spelled in another case), some new ones, each with random
    roles; the caller, if a user of the account, with at least what it holds now."""
    roles = st.lists(st.sampled_from(KEYS), unique=True)
    kept = [u.name for u in account.users if draw(st.booleans())]
    if account.caller and account.caller not in kept:
        kept.append(account.caller)
    entries = {}
    for name in [*kept, *_some(draw, NEW_NAMES, 2)]:
        spelled = name.swapcase() if draw(st.integers(0, 5)) == 0 else name
        keys = set(draw(roles))
        if name == account.caller:
            keys |= held_now(account, name)
        entries[spelled] = {"description": f"{name} works here", "roles": [k for k in KEYS if k in keys]}
        for key in _some(draw, set(KEYS) - keys, 2):  # temporary grants, valid or expired
            until = draw(st.sampled_from(UNTILS)).strftime("%Y-%m-%dT%H:%M:00Z")
            entries[spelled].setdefault("temporary", []).append({"role": key, "until": until, "reason": "INC-1"})
    mfa = draw(st.one_of(st.just(frozenset()), st.just(frozenset(KEYS)), st.sets(st.sampled_from(KEYS))))
    settings = GrantSettings(grant_via=draw(st.sampled_from(("user", "group"))), require_mfa=frozenset(mfa))
    return load_spec(entries, roles=ROLES, settings=settings, now=NOW)


@st.composite
def cases(draw, legacy: bool | None = None):
    account = draw(accounts(legacy))
    return account, draw(specs(account))


# --- the same account through boto3 -----------------------------------------------------------------
def build(iam, account: Account) -> None:
    """Create `account` with boto3 calls on `iam` (the embedded AWS, or a throwaway account): roles
    trusting the account root, customer-managed policies with every version and the right default, groups,
    users with tags, memberships, attachments, inline policies, access keys, passwords and MFA."""
    for role in account.roles:
        iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(ROOT_TRUST))
    for policy in account.policies:
        iam.create_policy(PolicyName=policy.name, PolicyDocument=json.dumps(policy.versions[0]))
        for document in policy.versions[1:]:
            iam.create_policy_version(PolicyArn=policy.arn, PolicyDocument=json.dumps(document), SetAsDefault=False)
        if policy.default:
            iam.set_default_policy_version(PolicyArn=policy.arn, VersionId=f"v{policy.default + 1}")
    for group in account.groups:
        iam.create_group(GroupName=group.name)
        for name in group.attached:
            iam.attach_group_policy(GroupName=group.name, PolicyArn=arn_of(name))
        for name in group.inline:
            iam.put_group_policy(GroupName=group.name, PolicyName=name, PolicyDocument=json.dumps(INLINE[name]))
    for user in account.users:
        _build_user(iam, user)
    for role in account.roles:
        for name in role.attached:
            iam.attach_role_policy(RoleName=role.name, PolicyArn=arn_of(name))
        for name in role.inline:
            iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(INLINE[name]))


def _build_user(iam, user: Principal) -> None:
    tags = [{"Key": k, "Value": v} for k, v in user.tags]
    iam.create_user(UserName=user.name, **({"Tags": tags} if tags else {}))
    for group in user.groups:
        iam.add_user_to_group(GroupName=group, UserName=user.name)
    for name in user.attached:
        iam.attach_user_policy(UserName=user.name, PolicyArn=arn_of(name))
    for name in user.inline:
        iam.put_user_policy(UserName=user.name, PolicyName=name, PolicyDocument=json.dumps(INLINE[name]))
    for _ in range(user.keys):
        iam.create_access_key(UserName=user.name)  # the secret is dropped here
    if user.password:
        iam.create_login_profile(UserName=user.name, Password="Correct-Horse-Battery-9", PasswordResetRequired=False)
    if user.mfa:
        device = user.name.replace("@", "-")
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=device)["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=user.name, SerialNumber=serial, AuthenticationCode1="123456",
                              AuthenticationCode2="654321")  # fmt: skip
