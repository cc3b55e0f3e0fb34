"""Issue 25's rough edges, each with its test: what the CLI says once and whole, the review widget's message,
and where live run folders go."""

from __future__ import annotations

from iamrunbook.base import records
from iamrunbook.core.changes import Change
from iamrunbook.core.migration import MigrationPlan
from iamrunbook.core.plan import Plan
from iamrunbook.runs import outcome

ATTACH = 'aws_iam_user_policy_attachment.user_roles["bob/admin"]'


def test_a_plan_only_run_says_each_pending_change_once(tmp_path):
    records.write(tmp_path, records.PLAN, Plan((Change("attach", ATTACH, "grant AdminRole"),), "1", "c"))
    problems = [{"kind": "attach", "subject": ATTACH, "message": "bob lacks admin"},
                {"kind": "unexpected access", "subject": "b", "message": "b can assume AdminRole via x"}]  # fmt: skip
    records.write(tmp_path, records.VERIFICATION, records.VerificationRecord(False, problems, [], {}))
    details = "\n".join(outcome.assess(tmp_path).details)
    assert details.count(ATTACH) == 1 and "b can assume AdminRole via x" in details
    assert "verification: 2 problem(s) (1 of them the plan's changes above):" in details
    applied = "\n".join(outcome.assess(tmp_path, apply=True).details)  # applied: no plan lines, every problem
    assert ATTACH in applied and "(1 of them" not in applied


def test_a_refused_migration_is_named_whole(tmp_path):
    held = ("group ops (members: a, b)", "role deploy")
    plan = MigrationPlan("AssumeRolesPolicy", "arn:aws:iam::123456789012:policy/AssumeRolesPolicy", "1", "c",
                         unmanaged=held)  # fmt: skip
    records.write(tmp_path, records.LEGACY_PLAN, plan)
    (problem,) = outcome.assess(tmp_path).problems
    assert all(h in problem for h in held) and "legacy_detach_unmanaged: true" in problem and "\n" not in problem
