"""02, the legacy migration: read the policy and its holders, back it up, plan (core/migration.py), then migrate.

Before any change the policy's every version and its holders go to `legacy_policy_backup.json`
(aws/legacy_backup.py), which `restore_legacy` turns back into the policy. Every step is idempotent, so a rerun
after an interruption finishes the job, and an account without the policy has nothing to migrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iamrunbook.aws import legacy_backup
from iamrunbook.aws.clients import apply_client
from iamrunbook.aws.executor import ApplyError, ApplyResult, execute
from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError
from iamrunbook.base.log import logger
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.migration import Holder, MigrationPlan, find_legacy, plan_migration, verify_migration
from iamrunbook.core.spec import Spec
from iamrunbook.flows.guard import record_outcome, refuse
from iamrunbook.runs import planfile

READ_ACTIONS: tuple[str, ...] = ()  # legacy_backup.py reads holders; mutations.py makes the steps
WRITE_ACTIONS: tuple[str, ...] = ()


def check_migration(mplan: MigrationPlan) -> None:
    refuse(mplan.problems())


# --- apply -------------------------------------------------------------------------------------------
@dataclass
class MigrationResult(ApplyResult):
    message: str = ""


def apply_migration(
    iam,
    mplan: MigrationPlan,
    *,
    backup_path: str | Path | None,
    progress: bool = False,
    inventory: Inventory | None = None,
    spec: Spec | None = None,
    parallelism: int = 1,
) -> MigrationResult:
    """Run the steps phase by phase, up to `parallelism` at once (executor.py, as apply). Refuses before any
    change when blocked, without a backup, or (given the inventory it was planned from and the spec) when
    the simulator finds a step that takes a role from someone who keeps it; stops at a failure with
    ApplyError naming the step. Every step is idempotent: run the notebook again."""
    if mplan.nothing_to_migrate:
        logger.info(mplan.summary_line())
        return MigrationResult(message=mplan.summary_line())
    check_migration(mplan)
    legacy_backup.check_backup(backup_path, mplan)
    if inventory is not None and spec is not None:
        from iamrunbook.core.simulate import ensure_safe

        ensure_safe(inventory, mplan.steps, spec, mplan.caller_arn)
    result = execute(iam, mplan.steps, MigrationResult(), desc="migration", progress=progress, parallelism=parallelism)
    result.message = (
        f"{mplan.legacy_name} is gone; {len(mplan.migrating_users)} user(s) moved to their Assume*Policy policies."
    )
    return result


# --- the flow 02 runs --------------------------------------------------------------------------------
@dataclass
class Migration:
    """What 02 reads before it changes anything: the spec, the account, the legacy policy and its holders."""

    spec: Spec
    inventory: Inventory
    name: str
    policy: dict | None
    holders: tuple[Holder, ...]

    @classmethod
    def read(cls, rb) -> Migration:
        spec, inventory, name = rb.spec(), rb.inventory(), rb.params["legacy_policy_name"]
        policy = find_legacy(inventory, name)
        return cls(spec, inventory, name, policy, legacy_backup.list_holders(rb.iam, (policy or {}).get("Arn")))

    def delta(self, rb):
        """The privilege delta (legacy_privilege_delta.csv), styled: red removed, amber condition dropped."""
        from iamrunbook.flows.reports import privilege_delta, styled_delta

        frame = privilege_delta(self.spec, self.inventory, self.policy, self.holders)
        rb.write(records.LEGACY_DELTA, frame)
        added = frame[frame["change"] == "added"]
        print("added access:", ", ".join(f"{r.user} -> {r.role}" for r in added.itertuples()) or "none")
        return styled_delta(frame)

    def backup(self, rb) -> Path | None:
        """Every version and holder of the policy, in the run folder, before any change."""
        path = legacy_backup.backup(rb.iam, self.policy, self.holders, rb.run_dir)
        print(f"backup: {path}" if path else "no legacy policy: nothing to back up")
        return path

    def plan(self, rb) -> MigrationPlan:
        mplan = plan_migration(self.spec, self.inventory, self.name, self.holders, rb.params["legacy_detach_unmanaged"])
        rb.write(records.LEGACY_PLAN, mplan)
        return mplan


def migrate(rb, m: Migration, mplan: MigrationPlan, backup_path: Path | None) -> MigrationResult | None:
    """02's change: the headless/live decision (rb.carry_out), the steps, the record, then a fresh check."""

    def go() -> MigrationResult:
        chosen = planfile.bind(rb, "02_delete_legacy_policy", mplan)  # the reviewed plan itself, when given
        parallelism = rb.params["apply_parallelism"]
        iam = apply_client(rb.session, parallelism)  # shared by the workers (executor.py)
        try:
            outcome = apply_migration(iam, chosen, backup_path=backup_path, progress=True, inventory=m.inventory,
                                      spec=m.spec, parallelism=parallelism)  # fmt: skip
        except ApplyError as exc:
            record_outcome(rb, records.LEGACY_RESULT, exc.result, rows_key="steps")
            raise
        record_outcome(rb, records.LEGACY_RESULT, outcome, rows_key="steps", message=outcome.message)
        print(outcome.message)
        check_after(rb, m, chosen)
        return outcome

    prompt = f"{mplan.summary_line()} Backup: {backup_path}. Confirm to migrate now, or cancel."
    ready = not (mplan.nothing_to_migrate or mplan.blocked)
    return rb.carry_out(f"Migrate away from {m.name}", go, prompt=prompt, ready=ready, step="02_delete_legacy_policy")


def check_after(rb, m: Migration, mplan: MigrationPlan) -> None:
    """Read the account again: the legacy policy must be gone and every migrated user hold their grants."""
    if mplan.nothing_to_migrate:
        return
    problems = verify_migration(m.spec, rb.inventory(), mplan)
    if problems:
        raise RunbookError("the migration did not reach its end state:\n" + "\n".join(problems))
    print(f"{m.name} is gone; every migrated user holds what the spec grants.")


def run(rb) -> tuple[MigrationPlan, MigrationResult | None]:
    """All of 02 in one call, as the notebook runs it cell by cell: read, back up, plan, migrate."""
    m = Migration.read(rb)
    backup_path = m.backup(rb)
    mplan = m.plan(rb)
    return mplan, migrate(rb, m, mplan, backup_path)
