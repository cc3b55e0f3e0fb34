"""Least privilege for whoever runs the runbook: the IAM policy a runner role needs, built from the code.

Every module that calls AWS declares READ_ACTIONS and WRITE_ACTIONS next to its calls; this module only
gathers them, so the printed policy cannot drift from what the code does (a test holds them together).
"""

from __future__ import annotations

import importlib
import json

#: modules whose declared actions the runbook needs, in runbook order
MODULES = ("notebook", "inventory", "access", "plan", "apply", "verify", "legacy", "offboard", "terraform", "editor")


def _declared(attr: str) -> set[str]:
    actions: set[str] = set()
    for name in MODULES:
        module = importlib.import_module(f"iamrunbook.{name}")
        actions.update(getattr(module, attr, ()))
    return actions


def required_actions(apply: bool = False) -> list[str]:
    """Read actions for a plan-only run; read and write actions for an apply run."""
    actions = _declared("READ_ACTIONS")
    if apply:
        actions |= _declared("WRITE_ACTIONS")
    return sorted(actions)


def runner_policy(apply: bool = False) -> dict:
    """An identity policy document for the runner role, one statement per service."""
    by_service: dict[str, list[str]] = {}
    for action in required_actions(apply):
        by_service.setdefault(action.split(":", 1)[0], []).append(action)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"Iamrunbook{service.capitalize()}{'Apply' if apply else 'Plan'}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            }
            for service, actions in sorted(by_service.items())
        ],
    }


def runner_policy_json(apply: bool = False) -> str:
    return json.dumps(runner_policy(apply), indent=2)
