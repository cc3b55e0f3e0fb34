"""`grant_via: identity_center`: 07's two phases, and 03 and 04 in this mode.

Phase 1 grants each spec user their Identity Center path (core/identity_center_plan.py) and never touches an
IAM user; the simulator proves, after every step, that nobody loses a role they hold now. Phase 2, in a later
run, retires the IAM user of each spec user who has signed in through Identity Center since phase 1 (or whom
`retire_iam_users` names with a reason): keys deactivated and password removed first, the user deleted with
05's full cleanup after `retire_grace_days`. Both are plans first, applied only with `apply` (headless) or a
Confirm (live), and both leave their plan and outcome in the run folder, in the chain like every run.

Which part a run takes comes from the organization (`part`, one DescribeOrganization): the management account,
or an account in no organization, runs the Identity Center part for `identity_center_accounts` (default: its
own). A member account (`run --accounts` runs members first) makes only its own Assume<Role>Policy policies
(make_member_plan): the permission sets the management account provisions there reference them. A member makes
no identity store or sso-admin call: its 04 checks those policies and its roles' trusts, and its 07 phase 2
retires nobody. Phase 2's evidence (the permission sets' provisioning and the sign-ins of the instance's users)
is in the management account's instance and CloudTrail, which a member's credentials cannot read; retiring a
member's IAM users needs that state carried to it, which this mode does not do yet.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from iamrunbook.aws import clients as aws
from iamrunbook.aws.center_mutations import CenterTarget, run_center
from iamrunbook.aws.center_sweep import management_account, read_center_state
from iamrunbook.aws.cloudtrail import center_sign_ins
from iamrunbook.aws.executor import ApplyError, ApplyResult, execute
from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.core.identity_center import IdentityCenterSettings, permission_set_name
from iamrunbook.core.identity_center_access import center_grants
from iamrunbook.core.identity_center_plan import (
    CenterPlan,
    RetirePlan,
    make_center_plan,
    make_member_plan,
    plan_retire,
)
from iamrunbook.core.identity_center_simulate import ensure_center_safe
from iamrunbook.core.identity_center_state import CenterState
from iamrunbook.core.identity_center_trust import trust_admits_reserved_role
from iamrunbook.core.identity_center_verify import verify_center, verify_member
from iamrunbook.core.inventory import Inventory, decode_document
from iamrunbook.core.spec import Spec
from iamrunbook.core.terraform_center import center_addresses
from iamrunbook.core.verify import Verification
from iamrunbook.flows.guard import check_safety, record_outcome
from iamrunbook.runs import planfile

READ_ACTIONS: tuple[str, ...] = ()  # aws/center_sweep.py, aws/center_mutations.py and aws/cloudtrail.py declare
WRITE_ACTIONS: tuple[str, ...] = ()
STEP = "07_migrate_to_identity_center"
NO_PASSWORD = (
    "Users the runbook creates in the identity store have no password: they can sign in only once the instance "
    "sends email one-time passwords (Settings > Authentication > Send email OTP) or an administrator resets "
    "their password. Until then they cannot sign in, and phase 2 keeps their IAM users."
)


def settings(rb) -> IdentityCenterSettings:
    """The mode's settings; refuses a run of another mode."""
    found = rb.spec().settings.identity_center
    if found is None:
        raise SpecError(f"{STEP} needs grant_via: identity_center (it is {rb.spec().settings.grant_via!r})")
    return found


MANAGEMENT, MEMBER = "management", "member"
MEMBER_NOTE = ("member account: the management account's run makes the Identity Center part (run 07 and 03 there); "
               "this account makes only its Assume*Policy policies")  # fmt: skip


def part(rb) -> str:
    """MANAGEMENT (the management account, or an account in no organization) or MEMBER; read once a run."""
    if "center_part" not in rb.__dict__:
        manager = management_account(rb.session)
        rb.__dict__["center_part"] = MEMBER if manager not in (None, rb.account_id) else MANAGEMENT
    return rb.__dict__["center_part"]


def targets(rb) -> tuple[str, ...]:
    return settings(rb).accounts or (rb.account_id,)


def home_region(rb) -> str:
    return settings(rb).home_region or rb.params["aws_region"]


def read_state(rb) -> CenterState:
    """The instance as it is now (ListInstances finds it when the parameters do not say); in a member account
    no instance is read: an empty state."""
    if part(rb) == MEMBER:
        return CenterState(instance_arn="", identity_store_id="", home_region=home_region(rb))
    return read_center_state(rb.session, settings(rb), rb.account_id, accounts=targets(rb))


# --- phase 1: grant --------------------------------------------------------------------------------
def record_plan(rb, spec: Spec, inventory: Inventory, state: CenterState) -> CenterPlan:
    """Phase 1's plan (and 03's in this mode), proven step by step, written to identity_center_plan.json; a
    member account's is its policies alone."""
    if part(rb) == MEMBER:
        print(MEMBER_NOTE)
        plan = make_member_plan(spec, inventory, home_region(rb))
    else:
        plan = make_center_plan(spec, inventory, state, accounts=targets(rb))
    rb.write(records.CENTER_PLAN, plan)
    return plan


def _target(rb, state: CenterState) -> CenterTarget:
    """IAM (policies, retiring) and Identity Center in its home region, paced together to the instance's rate."""
    workers, pacer = rb.params["apply_parallelism"], aws.Pacer()
    sso, store = (aws.center_client(rb.session, service, state.home_region, pacer, workers)
                  for service in ("sso-admin", "identitystore"))  # fmt: skip
    iam = aws.apply_client(rb.session, workers)
    return CenterTarget(iam, sso, store, state.instance_arn, state.identity_store_id, pacer)


def _execute(rb, plan, inventory: Inventory, state: CenterState, record: records.Record) -> ApplyResult:
    """The checks owed before the first call, then the calls (executor: phase by phase, bounded), then the
    outcome record, whether it finished or failed."""
    check_safety(plan, rb.params["max_deletions"], simulated=True)
    ensure_center_safe(inventory, state, plan.changes, rb.spec(), plan.caller_arn)
    try:
        result = execute(_target(rb, state), plan.changes, ApplyResult(), desc="identity center", progress=True,
                         parallelism=rb.params["apply_parallelism"], run=run_center)  # fmt: skip
    except ApplyError as exc:
        record_outcome(rb, record, exc.result)
        raise
    record_outcome(rb, record, result, summary=plan.summary())
    return result


def grant(rb, plan: CenterPlan, inventory: Inventory, state: CenterState, step: str = STEP) -> ApplyResult | None:
    """Phase 1 applied: headless with `apply`, live after Confirm; the outcome in identity_center_result.json."""

    def go() -> ApplyResult:
        chosen = planfile.bind(rb, step, plan)
        return _execute(rb, chosen, inventory, state, records.CENTER_RESULT)

    return rb.carry_out(f"Identity Center: {plan.summary_line()}", go, ready=not plan.is_empty, step=step)


# --- phase 2: retire -------------------------------------------------------------------------------
def phase_one_time(state: CenterState) -> datetime | None:
    """When phase 1 made the runbook's permission sets: sign-ins before it prove nothing about its path."""
    made = [ps.created for ps in state.permission_sets.values() if ps.is_managed and ps.created]
    return datetime.fromisoformat(min(made).replace("Z", "+00:00")) if made else None


def sign_ins(rb, state: CenterState) -> dict[str, str]:
    """UserName -> the last finished Identity Center sign-in since phase 1 (CloudTrail, home region)."""
    since = phase_one_time(state)
    if since is None:
        return {}
    users = {name: user["UserId"] for name, user in state.users.items() if user.get("UserId")}
    return center_sign_ins(rb.session, state.home_region, since, users)


def record_retire_plan(rb, spec: Spec, inventory: Inventory, state: CenterState, signed_in: dict[str, str], *,
                       after: CenterPlan) -> RetirePlan:  # fmt: skip
    """Phase 2's plan: who is retired now, who is deleted after the grace period, and why the others are kept.
    While phase 1 (`after`) still has changes, phase 2 waits for a later run: it retires nobody; nor does it in
    a member account (see the module docstring)."""
    p = rb.params
    wait = not after.is_empty or part(rb) == MEMBER
    signed_in = {} if wait else signed_in
    retire_list = {} if wait else p["retire_iam_users"]
    plan = plan_retire(spec, inventory, state, signed_in, retire_iam_users=retire_list,
                       grace_days=p["retire_grace_days"], now=datetime.now(timezone.utc), caller_arn=rb.caller_arn,
                       accounts=targets(rb))  # fmt: skip
    if part(rb) == MEMBER:
        print("Phase 2 retires nobody in a member account: its evidence is the management account's instance and "
              "CloudTrail, which this account cannot read.")  # fmt: skip
    elif not after.is_empty:
        print(f"Phase 1 has {len(after.changes)} change(s) to make first: phase 2 runs in a later run, once people "
              "have signed in through Identity Center.")  # fmt: skip
    rb.write(records.RETIRE_PLAN, plan)
    return plan


def retire(rb, plan: RetirePlan, inventory: Inventory, state: CenterState) -> ApplyResult | None:
    """Phase 2 applied, like phase 1; the outcome in retire_result.json."""

    def go() -> ApplyResult:
        chosen = planfile.bind(rb, f"{STEP}/retire", plan)
        return _execute(rb, chosen, inventory, state, records.RETIRE_RESULT)

    return rb.carry_out(f"Retire IAM users: {plan.summary_line()}", go, ready=not plan.is_empty, step=STEP)


# --- 04 -----------------------------------------------------------------------------------------------
def verification(rb, spec: Spec, inventory: Inventory) -> Verification:
    """04 in this mode: the mode's plan must be empty and every path the spec's (core/identity_center_verify.py);
    in a member account, its policies and its roles' trusts."""
    if part(rb) == MEMBER:
        return verify_member(spec, inventory, home_region(rb))
    state = read_state(rb)
    return verify_center(spec, inventory, state, targets(rb), center_addresses(spec, inventory, state))


def grants(rb, inventory: Inventory) -> list:
    """01's paths through Identity Center, next to the IAM ones (none read in a member account)."""
    if part(rb) == MEMBER:
        return []
    return center_grants(read_state(rb), inventory, rb.params["roles"], rb.account_id)


# --- reports -------------------------------------------------------------------------------------------
def trust_frame(rb, spec: Spec, inventory: Inventory) -> pd.DataFrame:
    """Each role: whether its trust admits the permission set's reserved role, and why (01 and 07), written to
    role_trust_identity_center.csv."""
    region = home_region(rb)
    rows = []
    for key, role in spec.roles.items():
        trust = (inventory.roles.get(role) or {}).get("AssumeRolePolicyDocument")
        verdict = trust_admits_reserved_role(decode_document(trust) if trust else {}, rb.account_id,
                                             permission_set_name(role), region, inventory.partition)  # fmt: skip
        rows.append({"role_key": key, "role": role, "permission_set": permission_set_name(role),
                     "admits_identity_center": "yes" if verdict.admits else "no",
                     "why": verdict.why if trust else "the role does not exist"})  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(records.ROLE_TRUST_CENTER.columns))
    rb.write(records.ROLE_TRUST_CENTER, frame)
    return frame


def kept_frame(plan: RetirePlan) -> pd.DataFrame:
    """Phase 2's kept users and why, one row each."""
    rows = [{"user": user, "kept because": why} for user, why in plan.kept]
    return pd.DataFrame(rows, columns=["user", "kept because"])


def users_frame(rb, spec: Spec, inventory: Inventory, state: CenterState, signed_in: dict[str, str]) -> pd.DataFrame:
    """Each spec user: their Identity Center user, their IAM user, the roles Identity Center gives them, and
    their last sign-in; written to identity_center_users.csv."""
    grants = center_grants(state, inventory, spec.roles, rb.account_id)
    held = {}
    for g in grants:
        held.setdefault(g.user, set()).add(g.role_key)
    rows = []
    for name in spec.users:
        iam_user = inventory.user_named(name)
        retired = (Inventory.tags(iam_user or {}) or {}).get("iamrunbook:retired-at")
        status = ("retired " + retired[:10]) if retired else ("signed in" if name in signed_in else "not signed in yet")
        rows.append({"user": name, "identity_center_user": "yes" if name in state.users else "no",
                     "iam_user": (iam_user or {}).get("UserName", "none"),
                     "roles": ", ".join(sorted(held.get(name, ()))) or "none",
                     "last_sign_in": signed_in.get(name, "none since phase 1"), "status": status})  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(records.CENTER_USERS.columns))
    rb.write(records.CENTER_USERS, frame)
    return frame
