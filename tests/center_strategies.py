"""Hypothesis strategies for accounts in the middle of a move to Identity Center (issue 31).

An IAM account from strategies.accounts (users with the runbook's or foreign policies, groups, the legacy
policy), each configured role's trust drawn anew (the account root, the reserved role by wildcard, or only a
user, which Identity Center cannot pass), and an Identity Center instance beside it: some spec users already
in the identity store, some foreign users; the runbook's groups and permission sets present or not, right or
drifted (other references, one to a policy the account lacks, another session duration, other principals
assigned); foreign groups and permission sets (one reaching every role) with their own assignments.

    center_cases()  (Account, Inventory, CenterState, Spec): the spec in grant_via: identity_center; the
                    caller, when a user of the account, granted at least what it holds now by either path
"""

from __future__ import annotations

from hypothesis import strategies as st
from strategies import ACCOUNT, KEYS, NEW_NAMES, NOW, ROLES, ROOT_TRUST, accounts, doc

from iamrunbook.base.names import policy_name
from iamrunbook.core.identity_center import IdentityCenterSettings, permission_set_name, store_user
from iamrunbook.core.identity_center_access import held_now
from iamrunbook.core.identity_center_state import GROUP, USER, Assignment, CenterState, PermissionSet
from iamrunbook.core.identity_center_trust import RESERVED_PATH, reserved_role_arn
from iamrunbook.core.spec import GrantSettings, load_spec

INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890123456"
STORE = "d-1234567890"
REGION = "us-east-1"
OWN_GROUPS = {key: f"{role}Users" for key, role in ROLES.items()}
OWN_SETS = {key: permission_set_name(role) for key, role in ROLES.items()}
FOREIGN_GROUPS = ("Auditors", "Platform")
FOREIGN_SETS = {"ReadOnly": (("ReadArtifacts", "/"),), "PowerUsers": (("AssumeAnything", "/"),)}
FOREIGN_USERS = ("outsider@example.com", "contractor")
#: references the runbook's permission sets may hold besides their own: a foreign policy, one that is missing
STALE_REFS = (("AssumeAnything", "/"), ("ReadArtifacts", "/"), ("Gone", "/old/"))
MANAGED = (("ManagedBy", "iamrunbook"),)
ARN_LIKE = {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/{RESERVED_PATH}*"}}
TRUSTS = (
    ROOT_TRUST,
    doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Condition": ARN_LIKE}),
    doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, "Action": "sts:AssumeRole"}),
)


def _some(draw, items, max_size: int = 3) -> list:
    items = sorted(items)
    return draw(st.lists(st.sampled_from(items), max_size=max_size, unique=True)) if items else []


@st.composite
def _trusts(draw) -> dict[str, dict]:
    """role name -> its trust: the account root most of the time, now and then one Identity Center cannot pass."""
    kinds = st.integers(0, 20).map(lambda i: 2 if i in (7, 17) else 1 if i % 3 == 1 else 0)  # 2 in 21 shut it out
    return {role: TRUSTS[draw(kinds)] for role in ROLES.values()}


def _own_set(draw, key: str) -> PermissionSet:
    own = (policy_name(ROLES[key]), "/")
    refs = ([own] if draw(st.integers(0, 3)) else []) + _some(draw, STALE_REFS, 1)
    duration = draw(st.sampled_from(("PT1H", "PT1H", "PT4H")))
    tags = MANAGED if draw(st.booleans()) else ()
    return PermissionSet(OWN_SETS[key], f"{INSTANCE}/ps-own-{key}", duration, tuple(refs), tags=tags,
                         created="2024-01-01T00:00:00Z")


@st.composite
def states(draw, names: tuple[str, ...]) -> CenterState:
    """An instance with some of `names` (and foreign users) in its store, and the runbook's parts in any shape."""
    users = {n: {**store_user(n, n), "UserId": f"id-{i}"} for i, n in enumerate([*_some(draw, names, 6),
             *_some(draw, FOREIGN_USERS, 2)])}  # fmt: skip
    groups = {g: {"DisplayName": g, "GroupId": f"g-{g}"} for g in [*_some(draw, OWN_GROUPS.values(), 3),
              *_some(draw, FOREIGN_GROUPS, 2)]}  # fmt: skip
    memberships = frozenset((g, u) for g in groups for u in users if draw(st.integers(0, 2)) == 0)
    sets = {OWN_SETS[k]: _own_set(draw, k) for k in _some(draw, KEYS, 3)}
    sets |= {n: PermissionSet(n, f"{INSTANCE}/ps-{n}", "PT1H", FOREIGN_SETS[n]) for n in _some(draw, FOREIGN_SETS, 2)}
    principals = [(GROUP, g) for g in groups] + [(USER, u) for u in users]
    assignments = frozenset(Assignment(ACCOUNT, ps, kind, who) for ps in sets for kind, who in principals
                            if draw(st.integers(0, 3)) == 0)  # fmt: skip
    assigned = sorted({a.permission_set for a in assignments})
    reserved = {ACCOUNT: {ps: reserved_role_arn(ACCOUNT, ps, f"{i:016x}") for i, ps in enumerate(assigned)}}
    outdated = set(_some(draw, assigned, 1))
    sets = {n: PermissionSet(**{**ps.__dict__, "provisioned": frozenset({ACCOUNT} if n in assigned and n not in
            outdated else ())}) for n, ps in sets.items()}  # fmt: skip
    return CenterState(INSTANCE, STORE, REGION, users, groups, memberships, sets, assignments, reserved)


def center_spec(entries: dict, duration: str = "PT1H", mfa=frozenset()):
    settings = GrantSettings(grant_via="identity_center", require_mfa=frozenset(mfa),
                             identity_center=IdentityCenterSettings(INSTANCE, STORE, REGION, duration))  # fmt: skip
    return load_spec(entries, roles=ROLES, settings=settings, now=NOW)


@st.composite
def center_cases(draw):
    account = draw(accounts())
    inv = account.inventory()
    for role, trust in draw(_trusts()).items():
        inv.roles[role] = {**inv.roles[role], "AssumeRolePolicyDocument": trust}
    kept = [u.name for u in account.users if draw(st.booleans())]
    if account.caller and account.caller not in kept:
        kept.append(account.caller)
    names = tuple([*kept, *_some(draw, NEW_NAMES, 2)]) or NEW_NAMES[:1]
    state = draw(states(names))
    entries = {}
    for name in names:
        keys = set(draw(st.lists(st.sampled_from(KEYS), unique=True)))
        if name == account.caller:
            keys |= held_now(inv, state, ROLES, [name], now=NOW)[name]
        entries[name] = {"description": f"{name.split('@')[0].title()} - works here",
                         "roles": [k for k in KEYS if k in keys]}  # fmt: skip
    mfa = draw(st.one_of(st.just(frozenset()), st.sets(st.sampled_from(KEYS))))
    spec = center_spec(entries, draw(st.sampled_from(("PT1H", "PT4H"))), mfa)
    return account, inv, state, spec
