"""Apply: execute a plan, one API call per change, in the plan's safe order (executor.py: phase by phase,
the changes of a phase on a bounded pool).

Safety checks run before the first change: mass deletions, the operator's own access, users who would
lose an MFA-required role for want of a device, and the simulator's step-by-step proof that nobody in the
spec loses a role they keep. A failure stops the run and says what was done and what was not; every
change is idempotent, so running the runbook again converges.
"""

from __future__ import annotations

from iamrunbook.aws import clients as aws
from iamrunbook.aws.executor import ApplyError, ApplyResult, execute
from iamrunbook.base import records
from iamrunbook.core.plan import Plan
from iamrunbook.flows.guard import check_safety, record_outcome, refuse
from iamrunbook.runs import planfile

__all__ = ["apply_confirmed", "apply_plan", "check_safety", "handoff", "prove_safe", "record_outcome", "record_plan",
           "refuse"]  # fmt: skip

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()  # mutations.py declares the calls each change makes


def prove_safe(
    plan: Plan, max_deletions: int, *, allow_without_mfa_device: bool = False, inventory=None, spec=None
) -> None:
    """Everything checked before a plan's first call: check_safety, then, given the inventory the plan was made
    from and its spec, the simulator's step-by-step proof (which then alone judges the operator's own user)."""
    simulated = inventory is not None and spec is not None
    check_safety(plan, max_deletions, allow_without_mfa_device=allow_without_mfa_device, simulated=simulated)
    if simulated:
        from iamrunbook.core.simulate import ensure_safe

        ensure_safe(inventory, plan.changes, spec, plan.caller_arn)


def apply_plan(
    iam,
    plan: Plan,
    *,
    max_deletions: int = 3,
    progress: bool = False,
    allow_without_mfa_device: bool = False,
    inventory=None,
    spec=None,
    parallelism: int = 1,
) -> ApplyResult:
    """Execute every change, phase by phase, up to `parallelism` at once (executor.py; the runbook's
    `apply_parallelism`, default 8); raise ApplyError (with the result) at a failure.

    Given the inventory the plan was made from and its spec (every flow of the runbook gives both), the
    simulator first proves the plan step by step: no step takes from a spec user a role they hold now
    and keep, or from the operator a role they hold (simulate.ensure_safe).
    """
    prove_safe(plan, max_deletions, allow_without_mfa_device=allow_without_mfa_device, inventory=inventory, spec=spec)
    return execute(iam, plan.changes, ApplyResult(), desc="apply", progress=progress, parallelism=parallelism)


STEP = "03_import_and_apply"


def apply_confirmed(rb, plan: Plan, inventory=None) -> ApplyResult | None:
    """03's apply step: the headless/live decision (rb.carry_out), the safety checks, the calls, the record.
    In a live session the role matrix editor shows instead (it plans from `inventory` as you type)."""

    if rb.spec().settings.identity_center is not None:  # the mode's plan; a Confirm, not the IAM editor, live
        from iamrunbook.flows import center

        return center.grant(rb, plan, inventory, center.read_state(rb), step=STEP)

    def go() -> ApplyResult:
        p = rb.params
        chosen = planfile.bind(rb, "03_import_and_apply", plan)  # the reviewed plan itself, when given
        try:
            iam = aws.apply_client(rb.session, p["apply_parallelism"])  # shared by the workers (executor.py)
            result = apply_plan(iam, chosen, max_deletions=p["max_deletions"], progress=True,
                                allow_without_mfa_device=p["allow_without_mfa_device"],
                                inventory=inventory, spec=rb.spec(), parallelism=p["apply_parallelism"])  # fmt: skip
        except ApplyError as exc:
            record_outcome(rb, records.APPLY_RESULT, exc.result)
            raise
        record_outcome(rb, records.APPLY_RESULT, result, summary=chosen.summary())
        return result

    def editor():
        return rb.frontend.edit_spec(rb, rb.spec(), inventory)

    if rb.params["reviewed_plan"] and not rb.headless:  # a live session applying a reviewed plan: no editing
        planfile.show(rb, plan)
        return rb.carry_out("Apply the reviewed plan", go, ready=not plan.is_empty, step=STEP)
    return rb.carry_out(plan.summary_line(), go, ready=not plan.is_empty, live=editor)


def record_plan(rb, spec, inventory) -> Plan:
    """03's plan, written to plan.json. In a plan-only run after 02 it is planned on the account as the
    migration will leave it (simulated), so that a reviewed chain applies without a spurious difference."""
    from iamrunbook.core.plan import make_plan

    if spec.settings.identity_center is not None:  # grant_via: identity_center plans the instance (flows/center.py)
        from iamrunbook.flows import center

        return center.record_plan(rb, spec, inventory, center.read_state(rb))
    migration = rb.read(records.LEGACY_PLAN)
    migrated = rb.read(records.LEGACY_RESULT)  # a live session may have confirmed 02 already: nothing to simulate
    if not rb.apply and migration is not None and migration.steps and not migration.blocked and not migrated:
        from iamrunbook.core.simulate import Simulation

        print(f"planned on the account as 02 will leave it ({migration.summary_line()})")
        inventory = Simulation(inventory, spec.roles).run(migration.steps).inventory()
    result = make_plan(spec, inventory)
    rb.write(records.PLAN, result)
    return result


def handoff(rb, spec, inventory, result: ApplyResult | None):
    """03's Terraform handoff into the run folder's terraform/, from the account as it is after the apply."""
    import pandas as pd

    from iamrunbook.core.terraform import write_terraform

    after = rb.inventory() if result is not None else inventory
    if spec.settings.identity_center is not None:
        from iamrunbook.flows import center

        if center.part(rb) == center.MEMBER:  # a member account holds only its Assume*Policy policies
            files = write_terraform(rb.run_dir / "terraform", spec, after, member=True)
        else:
            files = write_terraform(rb.run_dir / "terraform", spec, after, center=center.read_state(rb))
    else:
        files = write_terraform(rb.run_dir / "terraform", spec, after)
    return pd.DataFrame([{"file": path.relative_to(rb.run_dir).as_posix()} for path in files.values()])
