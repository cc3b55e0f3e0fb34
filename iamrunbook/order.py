"""The safe order of a plan (placeholder: the kind table; the simulated order replaces it)."""

from __future__ import annotations

from .changes import RANK, Change


def safe_order(changes: list[Change], inventory, spec) -> list[Change]:
    return sorted(changes, key=lambda c: RANK[c.kind])
