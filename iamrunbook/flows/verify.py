"""04, verify: read the account afresh and compare it with the spec (core/verify.py), written to verification.json.

After an apply any problem fails the run; plan-only, the problems say which of them an apply would fix.
"""

from __future__ import annotations

from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError
from iamrunbook.core.changes import Change
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.migration import Holder, plan_migration
from iamrunbook.core.spec import Spec
from iamrunbook.core.verify import Verification, summary, verify

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()


def run(rb) -> Verification:
    """04's check, from a fresh read, written to verification.json. After an apply any problem fails it."""
    spec, inventory = rb.spec(), rb.inventory()
    if spec.settings.identity_center is not None:  # grant_via: identity_center: the instance too
        from iamrunbook.flows.center import verification as center_verification

        verification = center_verification(rb, spec, inventory)
    else:
        verification = verify(spec, inventory, also_pending=migration_steps(rb, spec, inventory))
    rb.write(records.VERIFICATION, verification.record())
    if rb.apply and not verification.ok:
        raise RunbookError(
            f"verification after apply found {len(verification.problems)} problem(s):\n"
            + "\n".join(f"- {p.line()}" for p in verification.problems)
        )
    print("verified: the account matches the spec" if verification.ok else summary(verification))
    return verification


def migration_steps(rb, spec: Spec, inv: Inventory) -> tuple[Change, ...]:
    """What 02 would still do to this account (nothing when it is refused): an apply of the chain makes it."""
    name = rb.params["legacy_policy_name"]
    policy = inv.local_policy(name)
    if policy is None:
        return ()
    holders = [Holder(kind, entity) for kind, entity in inv.holders(policy["Arn"])]
    mplan = plan_migration(spec, inv, name, holders, rb.params["legacy_detach_unmanaged"])
    return () if mplan.blocked else mplan.steps
