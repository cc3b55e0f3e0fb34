"""What every notebook does first: validate parameters, connect, check the account, find the run folder.

A notebook calls `rb = start(globals())` and then works through `rb`. Side files go to the run folder
(`IAMRUNBOOK_RUN_DIR`, set by `iamrunbook run`; interactive sessions get a fresh folder under `runs/`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from . import aws
from .errors import SafetyError
from .inventory import Inventory, read_inventory
from .params import from_namespace, validate_params
from .progress import HEADLESS_ENV, headless  # noqa: F401 - re-exported for notebooks and the runner
from .spec import Spec, load_spec

READ_ACTIONS = ("sts:GetCallerIdentity",)
WRITE_ACTIONS: tuple[str, ...] = ()

RUN_DIR_ENV = "IAMRUNBOOK_RUN_DIR"
START_DIR_ENV = "IAMRUNBOOK_START_DIR"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")



def run_dir() -> Path:
    path = os.environ.get(RUN_DIR_ENV)
    if not path:
        path = str(Path("runs") / f"{utc_stamp()}-interactive")
        os.environ[RUN_DIR_ENV] = path  # every later notebook cell of this kernel writes to the same folder
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


@dataclass
class Runbook:
    params: dict[str, Any]
    session: Any
    identity: dict
    run_dir: Path
    _spec: Spec | None = field(default=None, repr=False)

    @property
    def iam(self):
        return aws.client(self.session, "iam")

    @property
    def sts(self):
        return aws.client(self.session, "sts")

    @property
    def account_id(self) -> str:
        return self.identity["Account"]

    @property
    def caller_arn(self) -> str:
        return self.identity["Arn"]

    @property
    def apply(self) -> bool:
        return bool(self.params["apply"])

    def spec(self) -> Spec:
        """The validated spec; relative iam_users_file paths are relative to where the run started."""
        if self._spec is None:
            p = self.params
            self._spec = load_spec(
                p["iam_users"], p["iam_users_file"], p["roles"], base_dir=os.environ.get(START_DIR_ENV)
            )
        return self._spec

    def inventory(self, *, with_credential_report: bool = False) -> Inventory:
        return read_inventory(self.iam, self.sts, with_credential_report=with_credential_report, progress=True)

    def write(self, name: str, content: Any) -> Path:
        """Write a side file into the run folder: text, bytes, JSON-able data or a DataFrame (CSV)."""
        path = self.run_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pd.DataFrame):
            content.to_csv(path, index=False)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content, indent=2, default=str) + "\n", encoding="utf-8")
        return path


def check_account(identity: Mapping[str, str], expected_account_id: str | None) -> None:
    if expected_account_id and identity["Account"] != str(expected_account_id):
        raise SafetyError(
            f"refused: these credentials are for account {identity['Account']}, but expected_account_id is "
            f"{expected_account_id}. Nothing was changed. Check aws_profile or the environment."
        )


def start(namespace: Mapping[str, Any]) -> Runbook:
    """Validate the notebook's parameters, connect, and refuse a wrong account before anything else."""
    params = validate_params(from_namespace(namespace))
    session = aws.make_session(params["aws_profile"], params["aws_region"])
    identity = aws.caller_identity(session)
    folder = run_dir()
    # Who ran it, for the run record (run.json) — written even when the account check refuses below.
    record = {"caller_arn": identity["Arn"], "account_id": identity["Account"]}
    (folder / "identity.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    check_account(identity, params["expected_account_id"])
    return Runbook(params, session, identity, folder)
