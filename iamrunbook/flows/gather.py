"""Gather (01): the account as it is, read once and recorded, before anything changes.

Each function reads what the inventory already holds (one sweep plus the credential report), writes its
table to the run folder and returns it for the notebook to show. Nothing here changes the account.
"""

from __future__ import annotations

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.display import table
from iamrunbook.core.access import MFA_ONLY, Grant, effective_access, expired_paths
from iamrunbook.core.inventory import Inventory
from iamrunbook.flows import reports

#: inventory.py declares the sweep and the credential report; GetRole reads each role's MaxSessionDuration
READ_ACTIONS: tuple[str, ...] = ("iam:GetRole",)
WRITE_ACTIONS: tuple[str, ...] = ()


def inventory(rb) -> Inventory:
    """The sweep and the credential report; users, attachments and policies go to the run folder."""
    inv = rb.inventory(with_credential_report=True)
    rb.write(records.INVENTORY_USERS, reports.users_frame(inv))
    rb.write(records.INVENTORY_ATTACHMENTS, reports.attachments_frame(inv))
    rb.write(records.INVENTORY_POLICIES, reports.policies_frame(inv))
    return inv


def legacy_holders(rb, inv: Inventory):
    """Who holds the bundled legacy policy (`legacy_policy_name`): the people 02 migrates."""
    name = rb.params["legacy_policy_name"]
    arn = (inv.local_policy(name) or {}).get("Arn")
    print(f"{name}: {arn or 'not in this account'}")
    holders = pd.DataFrame(inv.holders(arn) if arn else [], columns=["kind", "name"])
    rb.write(records.LEGACY_HOLDERS, holders)
    return table(holders, f"Nobody holds {name}: there is nothing to migrate.")


def credentials(rb, inv: Inventory):
    frame = reports.credentials_frame(inv)
    rb.write(records.INVENTORY_CREDENTIALS, frame)
    return table(frame, "The credential report lists no users.")


def access(rb, inv: Inventory) -> tuple[pd.DataFrame, list[Grant]]:
    """Who can assume each configured role, by any path: the matrix and every path behind it."""
    grants = effective_access(inv.details(), rb.params["roles"], inv.account_id)
    if rb.params["grant_via"] == "identity_center":  # and via Identity Center: user -> group -> permission set
        from iamrunbook.flows.center import grants as center_paths

        grants += center_paths(rb, inv)
    matrix = reports.access_matrix(grants, inv.users, rb.params["roles"])
    rb.write(records.EFFECTIVE_ACCESS, matrix.reset_index())
    grants += expired_paths(inv.details(), rb.params["roles"], inv.account_id)  # shown "no (expired ...)"
    rb.write(records.EFFECTIVE_ACCESS_PATHS, reports.access_paths(grants))
    return matrix, grants


def adopted(rb, inv: Inventory) -> pd.DataFrame:
    """The account as a spec (adopted_iam_users.yaml / .auto.tfvars): a starting point for `iam_users`."""
    from iamrunbook.core.terraform import write_adopted

    written = write_adopted(rb.run_dir, inv, rb.params["roles"])
    print(written[next(iter(written))].read_text(encoding="utf-8"))
    return pd.DataFrame([{"file": path.name} for path in written.values()])


def _trusted(role: dict) -> tuple[list[str], bool]:
    """Whom a role's trust policy lets assume it, and whether every such statement requires MFA."""
    from iamrunbook.core.access import describe_conditions, statements

    names, gated = [], []
    for stmt in statements(role.get("AssumeRolePolicyDocument", {})):
        if stmt.get("Effect") != "Allow":
            continue
        principal = stmt.get("Principal", {})
        values = principal.get("AWS", principal) if isinstance(principal, dict) else principal
        names += [str(v) for v in (values if isinstance(values, list) else [values])]
        gated.append(MFA_ONLY in describe_conditions("Allow", stmt.get("Condition")))
    return names, bool(gated) and all(gated)


def _session_hours(rb, role: str) -> float:
    """How long a session of `role` may last (MaxSessionDuration, 1-12 h; the sweep does not carry it): a
    temporary grant's session issued just before its until outlives it by up to this much."""
    return rb.iam.get_role(RoleName=role)["Role"].get("MaxSessionDuration", 3600) / 3600


def role_trust(rb, inv: Inventory) -> pd.DataFrame:
    """Each configured role: whom its trust policy trusts and whether it requires MFA, next to whether the
    spec's Assume*Policy requires it. The runbook does not own the roles and never edits their trust."""
    settings = rb.spec().settings
    rows = []
    for key, name in rb.params["roles"].items():
        role = inv.roles.get(name)
        trusts, mfa = _trusted(role) if role else ([], False)
        rows.append({"role_key": key, "role": name, "trusts": ", ".join(trusts) or "(role not in the account)",
                     "requires_mfa": mfa, "policy_requires_mfa": settings.mfa(key),
                     "max_session_hours": _session_hours(rb, name) if role else None})  # fmt: skip
    frame = pd.DataFrame(rows, columns=records.ROLE_TRUST.columns)
    rb.write(records.ROLE_TRUST, frame)
    if rb.params["grant_via"] == "identity_center":  # whether each trust admits the permission set's role
        from IPython.display import display

        from iamrunbook.flows.center import trust_frame

        display(table(trust_frame(rb, rb.spec(), inv), "No roles configured."))
    return frame


def cis_checks(rb, inv: Inventory):
    """The CIS AWS Foundations IAM section (flows/cis.py): account items, then users, then policies; the
    CSVs hold every row, the tables what fails."""
    from iamrunbook.flows.cis import checks

    return checks(rb, inv)
