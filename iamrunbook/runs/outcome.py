"""What a run left behind, read from its records: pending changes, problems no apply fixes, the exit code.

Exit codes follow `terraform plan -detailed-exitcode`, with one rule of our own: 0 converged; 2 a plan-only
run with changes an apply would make; 1 an error, a refused safety check, or a problem no apply can fix
(a path to a role that the runbook does not own), in both modes, so that a scheduled job that applies on
2 never loops on something applying cannot change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.base.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_PENDING

SUCCEEDED = "succeeded"
#: How many lines of each list of problems or changes the operator is shown (the rest are in the run folder).
SHOWN = 20


@dataclass(frozen=True)
class Assessment:
    """What the records of a run say: `pending`, what an apply would still do (exit 2 in a plan-only run);
    `problems`, what no apply fixes (exit 1 in both modes); `details`, the lines an operator reads."""

    pending: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    details: tuple[str, ...] = ()


def _shown(lines: Sequence[str], where: str) -> list[str]:
    """At most SHOWN lines, then where the rest are."""
    shown = [f"    {line.strip()}" for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"    ... and {len(lines) - SHOWN} more (see {where})")
    return shown


def _migration(run_dir: Path, apply: bool, found: dict[str, list[str]]) -> None:
    mplan = records.read(run_dir, records.LEGACY_PLAN)
    if mplan is None or mplan.nothing_to_migrate:
        return
    if mplan.blocked:
        found["problems"].append("legacy migration refused: " + " ".join(" ".join(mplan.problems()).split()))
        found["details"] += [f"legacy migration refused ({records.LEGACY_PLAN.name}):"]
        problem_lines = [p for text in mplan.problems() for p in text.splitlines()]
        found["details"] += _shown(problem_lines, str(run_dir / records.LEGACY_PLAN.name))
    elif mplan.steps and not apply:
        found["pending"].append(f"legacy migration: {len(mplan.steps)} step(s) pending")
        found["details"] += [
            found["pending"][-1] + ":",
            *_shown(mplan.lines(), str(run_dir / records.LEGACY_PLAN.name)),
        ]


def assess(run_dir: Path, apply: bool = False) -> Assessment:
    """Read the run's records (records.py) and sort what they hold into pending and problems."""
    found: dict[str, list[str]] = {"pending": [], "problems": [], "details": []}
    _migration(run_dir, apply, found)
    plan = records.read(run_dir, records.PLAN)
    if plan is not None and plan.changes and not apply:
        found["pending"].append(f"plan: {len(plan.changes)} change(s) pending")
        found["details"] += [
            found["pending"][-1] + ":",
            *_shown(plan.lines(), str(run_dir / records.PLAN.name)),
            f"    {plan.summary_line()}",
        ]
    for record, label in ((records.CENTER_PLAN, "Identity Center"), (records.RETIRE_PLAN, "retire IAM users")):
        center = records.read(run_dir, record)
        if center is not None and center.changes and not apply:
            found["pending"].append(f"{label}: {len(center.changes)} change(s) pending")
            found["details"] += [found["pending"][-1] + ":", *_shown(center.lines(), str(run_dir / record.name)),
                                 f"    {center.summary_line()}"]  # fmt: skip
    verification = records.read(run_dir, records.VERIFICATION)
    if verification is not None and not verification.ok:
        from iamrunbook.core.verify import problem_line

        found["pending"].append(f"verification: {len(verification.problems)} problem(s)")
        planned = {c.address for c in plan.changes} if plan is not None and not apply else set()
        lines = [problem_line(p) for p in verification.problems if p.get("subject") not in planned]
        said = f" ({len(verification.problems) - len(lines)} of them the plan's changes above)" if planned else ""
        found["details"] += [found["pending"][-1] + said + (":" if lines else ""),
                             *_shown(lines, str(run_dir / records.VERIFICATION.name))]  # each thing said once
        found["problems"] += [f"no apply fixes: {problem_line(p)}" for p in verification.unfixable]
    offboard = records.read(run_dir, records.OFFBOARD)
    if offboard is not None and offboard.exists and not offboard.applied:
        found["pending"].append(f"offboarding of {offboard.user} pending")
        found["details"].append(found["pending"][-1])
    return Assessment(*(tuple(found[k]) for k in ("pending", "problems", "details")))


def pending_changes(run_dir: Path, apply: bool = False) -> list[str]:
    """What the notebooks' records say is still to do (plan, verification, offboarding)."""
    return list(assess(run_dir, apply).pending)


def decide_exit(runs: Sequence, apply: bool, pending: Sequence[str], problems: Sequence[str] = ()) -> int:
    """1: a notebook failed, or a problem no apply fixes; 2: plan only with changes pending; else 0."""
    if any(r.status != SUCCEEDED for r in runs) or problems:
        return EXIT_ERROR
    if not apply and pending:
        return EXIT_PENDING
    return EXIT_OK
