"""The plan's part for temporary grants: one policy per (role, until), attached while valid, tidied after.

Each pair's policy (Assume<RoleName>PolicyUntil<YYYYMMDDTHHMMZ>) allows sts:AssumeRole on the one role only
while aws:CurrentTime < until, so AWS ends the grant by itself; these changes only make and tidy it. Under
`grant_via: user` the policy is attached to each user holding the pair. Under `grant_via: group` (CIS 1.15:
no policy on a user) each pair gets its own group, <RoleName>UsersUntil<YYYYMMDDTHHMMZ>, holding the pair's
policy and exactly the users granted that pair: a temporary grant never changes the role's permanent
group, so it expires without touching anyone's permanent grant. Expired or revoked pairs are detached
(members removed), then their group and policy deleted once nobody holds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import (
    UNTIL_STAMP,
    is_aws_managed,
    name_from_arn,
    partition_of,
    policy_arn,
    policy_document,
    policy_name,
    temporary_group_name,
    temporary_policy_name,
)
from iamrunbook.core.changes import Change
from iamrunbook.core.inventory import Inventory, default_document
from iamrunbook.core.spec import Spec
from iamrunbook.core.temporary import shown_until

#: AWS's default quotas (Service Quotas can raise them; the plan refuses to pass the defaults)
MAX_POLICIES_PER_USER = MAX_POLICIES_PER_GROUP = 10
MAX_GROUPS_PER_USER = 10
MAX_CUSTOMER_POLICIES = 1500

Pair = tuple[str, datetime]  # (role key, until)


def _stamp(pair: Pair) -> str:
    return f"{pair[0]}/{pair[1].strftime(UNTIL_STAMP)}"


def _until_of(name: str, prefix: str) -> datetime | None:
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], UNTIL_STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def existing_pairs(spec: Spec, inv: Inventory) -> dict[str, Pair]:
    """policy ARN -> (role key, until) of every temporary-grant policy in the account, of a configured role."""
    found = {}
    for arn in inv.policies:
        if is_aws_managed(arn):
            continue
        for key, role in spec.roles.items():
            until = _until_of(name_from_arn(arn), f"{policy_name(role)}Until")
            if until is not None:
                found[arn] = (key, until)
    return found


def _group_pair(spec: Spec, group: str) -> Pair | None:
    for key, role in spec.roles.items():
        until = _until_of(group, f"{spec.settings.group_name(key, role)}Until")
        if until is not None:
            return key, until
    return None


def wanted_pairs(spec: Spec) -> dict[Pair, list[str]]:
    """(role key, until) -> the spec users granted it, for every grant still valid at the run's time."""
    wanted: dict[Pair, list[str]] = {}
    for user in spec.users.values():
        for grant in user.active(spec.now):
            wanted.setdefault((grant.role, grant.until), []).append(user.name)
    return wanted


def _granted(spec: Spec, user: str, pair: Pair) -> str:
    """How a grant reads in the plan and every record: the role, its until and the spec's reason."""
    entry = spec.user_named(user)
    reason = next((t.reason for t in entry.temporary if (t.role, t.until) == pair), "") if entry else ""
    return f"grant {spec.roles[pair[0]]} until {shown_until(pair[1])} ({reason})"


def pair_group(spec: Spec, pair: Pair) -> str:
    key = pair[0]
    return temporary_group_name(spec.settings.group_name(key, spec.roles[key]), pair[1])


def _why_gone(spec: Spec, pair: Pair) -> str:
    reasons = sorted({t.reason for u in spec.users.values() for t in u.temporary if (t.role, t.until) == pair})
    if spec.now >= pair[1]:
        why = f" ({'; '.join(reasons)})" if reasons else ""
        return f"expired {shown_until(pair[1])}{why}: AWS already denies it; tidy up"
    return f"temporary grant until {shown_until(pair[1])} no longer in the spec (revoked early)"


def _link(kind: str, pair: Pair, arn: str, target_kind: str, target: str, why: str, user: str | None = None):
    resource = "user_policy_attachment" if target_kind == "user" else f"{target_kind}_policy_attachment"
    own_group = target_kind == "group" and target.endswith(pair[1].strftime(UNTIL_STAMP))
    where = _stamp(pair) if own_group else f"{target}/{_stamp(pair)}"
    address = f'aws_iam_{resource}.temporary["{where}"]'
    return Change(kind, address, why, user=user, role_key=pair[0], policy_name=name_from_arn(arn), policy_arn=arn,
                  target_kind=target_kind, target_name=target)  # fmt: skip


def _member(kind: str, pair: Pair, group: str, user: str, why: str) -> Change:
    address = f'aws_iam_user_group_membership.temporary["{user}/{_stamp(pair)}"]'
    return Change(kind, address, why, user=user, role_key=pair[0], target_kind="group", target_name=group)


def _policy_changes(spec: Spec, inv: Inventory, wanted: dict[Pair, list[str]], arns: dict[Pair, str]):
    settings = spec.settings
    for pair in wanted:
        key, until = pair
        role = spec.roles[key]
        name = temporary_policy_name(role, until)
        document = policy_document(inv.account_id, role, mfa=settings.mfa(key), partition=partition_of(inv.caller_arn),
                                   mfa_max_age_seconds=settings.mfa_max_age_seconds if settings.mfa(key) else None,
                                   until=until)  # fmt: skip
        existing = inv.policies.get(arns[pair])
        common = dict(address=f'aws_iam_policy.temporary["{_stamp(pair)}"]', role_key=key, policy_name=name,
                      policy_arn=arns[pair])  # fmt: skip
        if existing is None:
            yield Change("create_policy", reason=f"create {name} (sts:AssumeRole on {role} until "
                         f"{shown_until(until)}, then AWS denies it)", document=json.dumps(document),
                         description=f"Allows assuming {role} until {shown_until(until)}",
                         tags=(("Name", name),), **common)  # fmt: skip
        elif json.dumps(default_document(existing), sort_keys=True) != json.dumps(document, sort_keys=True):
            yield Change("update_policy", reason="document differs from the temporary grant: restore it",
                         document=json.dumps(document), **common)  # fmt: skip


def _user_links(spec: Spec, inv: Inventory, wanted: dict[Pair, list[str]], arns: dict[Pair, str], have: dict):
    direct = not spec.settings.via_group
    held = {(u.lower(), pair) for pair, users in wanted.items() for u in users} if direct else set()
    for name, user in sorted(inv.users.items()):
        for arn in sorted(Inventory.attached_arns(user) & have.keys()):
            if (name.lower(), have[arn]) not in held:
                why = "drift: grant_via: group grants through groups only" if spec.settings.via_group else None
                yield _link("detach", have[arn], arn, "user", name, why or _why_gone(spec, have[arn]), user=name)
    for pair, users in wanted.items():
        for user in [] if spec.settings.via_group else users:
            existing = inv.user_named(user)
            if existing is None or arns[pair] not in Inventory.attached_arns(existing):
                name = existing["UserName"] if existing else user
                yield _link("attach", pair, arns[pair], "user", name, _granted(spec, user, pair), user=name)


def _group_links(spec: Spec, inv: Inventory, wanted: dict[Pair, list[str]], arns: dict[Pair, str], have: dict):
    groups = {pair_group(spec, pair).lower(): pair for pair in wanted} if spec.settings.via_group else {}
    for pair in (p for p in wanted if spec.settings.via_group):
        group = inv.group_named(pair_group(spec, pair))
        name = group["GroupName"] if group else pair_group(spec, pair)
        if group is None:
            yield Change("create_group", f'aws_iam_group.temporary["{_stamp(pair)}"]', f"create group {name} for "
                         f"{spec.roles[pair[0]]} until {shown_until(pair[1])}", role_key=pair[0],
                         target_kind="group", target_name=name)  # fmt: skip
        if arns[pair] not in Inventory.attached_arns(group or {}):
            yield _link("attach", pair, arns[pair], "group", name, f"grant the group {spec.roles[pair[0]]} until "
                        f"{shown_until(pair[1])}")  # fmt: skip
        members = {m.lower() for m in inv.group_members(name)} if group else set()
        for user in wanted[pair]:
            if user.lower() not in members:
                member = (inv.user_named(user) or {}).get("UserName", user)
                yield _member("add_to_group", pair, name, member, f"{_granted(spec, user, pair)}: add to group {name}")
    permanent = {g.lower() for g in spec.groups().values()}  # plan.py keeps those holding only their role's policy
    for name, group in sorted(inv.groups.items()):
        if name.lower() in permanent:
            continue
        pair = _group_pair(spec, name)
        kept = groups.get(name.lower())
        keep_users = {u.lower() for u in wanted.get(kept, ())} if kept else set()
        for member in inv.group_members(name) if pair else ():
            if member.lower() not in keep_users:
                yield _member("remove_from_group", pair, name, member, _why_gone(spec, pair))
        for arn in sorted(Inventory.attached_arns(group) & have.keys()):
            if kept and arn == arns[kept]:
                continue
            why = _why_gone(spec, have[arn]) if have[arn] not in wanted else f"drift: {name} is not the pair's group"
            yield _link("detach", have[arn], arn, "group", name, why)
        if pair and not kept:
            yield Change("delete_group", f'aws_iam_group.temporary["{_stamp(pair)}"]', _why_gone(spec, pair),
                         role_key=pair[0], target_kind="group", target_name=name)  # fmt: skip
    for name, role in sorted(inv.roles.items()):
        for arn in sorted(Inventory.attached_arns(role) & have.keys()):
            yield _link("detach", have[arn], arn, "role", name, "drift: temporary grants are for users, not roles")


def _deletions(spec: Spec, inv: Inventory, wanted: dict[Pair, list[str]], have: dict[str, Pair]):
    for arn, pair in sorted(have.items()):
        if pair in wanted:
            continue
        address = f'aws_iam_policy.temporary["{_stamp(pair)}"]'
        common = dict(role_key=pair[0], policy_name=name_from_arn(arn), policy_arn=arn)
        for version in inv.policies[arn].get("PolicyVersionList", []):
            if not version.get("IsDefaultVersion"):
                yield Change("delete_policy_version", address, "delete non-default version before the policy",
                             version_id=version["VersionId"], **common)  # fmt: skip
        yield Change("delete_policy", address, f"{_why_gone(spec, pair)}; nobody holds it once detached", **common)


def temporary_changes(spec: Spec, inv: Inventory) -> Iterator[Change]:
    """Every change the spec's temporary grants ask for, unordered (order.py orders the whole plan)."""
    wanted = wanted_pairs(spec)
    have = existing_pairs(spec, inv)
    by_pair = {pair: arn for arn, pair in have.items()}
    arns = {pair: by_pair.get(pair) or policy_arn(inv.account_id, temporary_policy_name(spec.roles[pair[0]], pair[1]),
                                                  partition_of(inv.caller_arn)) for pair in wanted}  # fmt: skip
    yield from _policy_changes(spec, inv, wanted, arns)
    yield from _user_links(spec, inv, wanted, arns, have)
    yield from _group_links(spec, inv, wanted, arns, have)
    yield from _deletions(spec, inv, wanted, have)


class QuotaError(SpecError):
    """The plan would pass an IAM quota: AWS would refuse it half way, so it is refused before any call."""


def check_quotas(spec: Spec, inv: Inventory, changes) -> None:
    """Refuse a plan that would leave a user or group with more managed policies than AWS allows by default
    (10), a user in more than 10 groups, or the account with more than 1,500 customer-managed policies."""
    from iamrunbook.core.simulate import Simulation, SimulationError

    sim = Simulation(inv, spec.roles, spec.now)
    try:
        sim.run(changes)
    except SimulationError:
        return  # the safety check names the step AWS would refuse
    problems = []
    limits = (("user", sim.users, MAX_POLICIES_PER_USER), ("group", sim.groups, MAX_POLICIES_PER_GROUP))
    for kind, table, limit in limits:
        touched = {(c.target_name or "").lower() for c in changes if c.kind == "attach" and c.target_kind == kind}
        for name, entity in sorted(table.items()):
            count = len(entity.get("AttachedManagedPolicies", []))
            if name.lower() in touched and count > limit:
                problems.append(f"{kind} {name}: the plan would attach {count} managed policies; the quota is "
                                f"{limit} managed policies per {kind} (IAM's default): drop a grant")  # fmt: skip
    joined = {(c.user or "").lower() for c in changes if c.kind == "add_to_group"}
    for name, user in sorted(sim.users.items()):
        if name.lower() in joined and len(user.get("GroupList", [])) > MAX_GROUPS_PER_USER:
            problems.append(f"user {name}: the plan would put them in {len(user['GroupList'])} groups; the quota is "
                            f"{MAX_GROUPS_PER_USER} groups per user (IAM's default): drop a grant")  # fmt: skip
    customer = sum(1 for arn in sim.policies if not is_aws_managed(arn))
    if any(c.kind == "create_policy" for c in changes) and customer > MAX_CUSTOMER_POLICIES:
        problems.append(f"account {inv.account_id}: the plan would make {customer} customer-managed policies; "
                        f"the quota is {MAX_CUSTOMER_POLICIES} per account (IAM's default)")  # fmt: skip
    if problems:
        raise QuotaError(problems)
