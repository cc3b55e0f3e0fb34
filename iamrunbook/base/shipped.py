"""Where the notebooks and example parameters are: the checkout's top-level folders, else the installed copies."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """A folder the project ships: the checkout's top-level one, else the installed package's copy."""
    checkout = PACKAGE.parent / name
    return checkout if checkout.is_dir() else PACKAGE / name
