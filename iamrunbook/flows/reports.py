"""Tables for people: the DataFrames notebooks show and write to the run folder.

Domain modules return data (inventories, grants, plans); this module turns it into tables, so what a
notebook shows and what its CSV side file holds come from one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.display import styled
from iamrunbook.base.names import is_aws_managed, name_from_arn, version_number
from iamrunbook.core.access import ASSUME_ROLE, VERDICTS, Grant, statement_covers
from iamrunbook.core.inventory import Inventory, decode_document, default_document
from iamrunbook.core.migration import GRANTING, Holder, affected_users, legacy_grants, role_arns
from iamrunbook.core.spec import Spec


# --- the account ------------------------------------------------------------------------------------
def users_frame(inv: Inventory) -> pd.DataFrame:
    rows = []
    for name, user in sorted(inv.users.items()):
        tags = Inventory.tags(user)
        rows.append(
            {
                "user": name,
                "managed": inv.is_managed(user),
                "description": tags.get("Description", ""),
                "attached_policies": ", ".join(sorted(name_from_arn(a) for a in Inventory.attached_arns(user))),
                "inline_policies": ", ".join(p["PolicyName"] for p in user.get("UserPolicyList", [])),
                "groups": ", ".join(user.get("GroupList", [])),
                "tags": "; ".join(f"{k}={v}" for k, v in sorted(tags.items())),
                "created": str(user.get("CreateDate", "")),
            }
        )
    return pd.DataFrame(rows, columns=records.USER_COLUMNS)


def attachments_frame(inv: Inventory) -> pd.DataFrame:
    rows = [
        {"kind": kind, "entity": name, "policy": name_from_arn(arn), "policy_arn": arn}
        for kind, entities in (("user", inv.users), ("group", inv.groups), ("role", inv.roles))
        for name, entity in sorted(entities.items())
        for arn in sorted(Inventory.attached_arns(entity))
    ]
    return pd.DataFrame(rows, columns=records.INVENTORY_ATTACHMENTS.columns)


def policies_frame(inv: Inventory) -> pd.DataFrame:
    rows = [
        {
            "policy": name_from_arn(arn),
            "arn": arn,
            "aws_managed": is_aws_managed(arn),
            "default_version": p.get("DefaultVersionId"),
            "versions": len(p.get("PolicyVersionList", [])),
            "attachments": len(inv.holders(arn)),
        }
        for arn, p in sorted(inv.policies.items())
    ]
    return pd.DataFrame(rows, columns=records.INVENTORY_POLICIES.columns)


def credentials_frame(inv: Inventory) -> pd.DataFrame:
    """Credential status per user from the credential report (no secrets are in the report)."""
    cols = records.CREDENTIAL_COLUMNS
    rows = [r for r in (inv.credential_report or []) if r.get("user") != "<root_account>"]
    return pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows], columns=cols)


# --- effective access -----------------------------------------------------------------------------
def access_matrix(grants: Iterable[Grant], users: Iterable[str], roles: Iterable[str]) -> pd.DataFrame:
    """users x role keys: 'yes' if any path is unconditional, 'conditional' if only conditional, else 'no'."""
    grants = list(grants)
    index = sorted(set(users) | {g.user for g in grants})
    columns = list(dict.fromkeys([*roles, *(g.role_key for g in grants)]))
    matrix = pd.DataFrame("no", index=pd.Index(index, name="user"), columns=columns)
    for g in grants:
        if VERDICTS.index(g.verdict) < VERDICTS.index(matrix.at[g.user, g.role_key]):
            matrix.at[g.user, g.role_key] = g.verdict
    return matrix


def access_paths(grants: Iterable[Grant]) -> pd.DataFrame:
    """The detail behind the matrix: one row per path."""
    columns = records.EFFECTIVE_ACCESS_PATHS.columns
    rows = [
        [g.user, g.role_key, g.role_name, g.shown, g.path, "; ".join(g.conditions)]  # "yes, until ..." if temporary
        for g in sorted(grants, key=lambda g: (g.user, g.role_key, g.path))
    ]
    return pd.DataFrame(rows, columns=columns)


_MATRIX_COLOURS = {
    "yes": "background-color: #2e7d32; color: white",
    "conditional": "background-color: #ffb300; color: black",
    "no": "background-color: #e0e0e0; color: #616161",
}
_DELTA_COLOURS = {
    "removed": "background-color: #c62828; color: white; font-weight: bold",
    "condition dropped": "background-color: #ffb300; color: black",
    "added": "background-color: #2e7d32; color: white",
}


def styled_matrix(matrix: pd.DataFrame):
    """The matrix as a heatmap for notebooks: green yes, amber conditional, grey no."""
    return styled(matrix).map(lambda v: _MATRIX_COLOURS.get(v, ""))


def styled_delta(delta: pd.DataFrame):
    """Removed access in red, widened (condition dropped) in amber, added in green: whole rows."""
    return styled(delta).apply(lambda row: [_DELTA_COLOURS.get(row["change"], "")] * len(row), axis=1)


# --- the legacy policy ------------------------------------------------------------------------------
def holders_frame(holders: Iterable[Holder], spec: Spec | None = None, inv: Inventory | None = None) -> pd.DataFrame:
    rows = []
    for h in holders:
        covered = h.kind == "user" and spec is not None and spec.user_named(h.name) is not None
        members = ""
        if h.kind == "group" and inv is not None:
            members = ", ".join(inv.group_members(h.name))
        rows.append({"kind": h.kind, "name": h.name, "in_spec": covered, "group_members": members})
    return pd.DataFrame(rows, columns=["kind", "name", "in_spec", "group_members"])


def grants_frame(policy: dict | None, inv: Inventory, roles: Mapping[str, str]) -> pd.DataFrame:
    rows = [
        {"role_key": key, "role": roles[key], "verdict": verdict, "conditions": "; ".join(conditions)}
        for key, (verdict, conditions) in legacy_grants(policy, inv, roles).items()
    ]
    return pd.DataFrame(rows, columns=["role_key", "role", "verdict", "conditions"])



def _listed(value) -> str:
    return ", ".join(str(v) for v in (value if isinstance(value, list) else [value]))


def _statement_list(doc: dict) -> list[dict]:
    statements = doc.get("Statement", [])
    return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]


def _beyond_assume_role(stmt: dict) -> bool:
    """True when a statement is about more than sts:AssumeRole: deleting the policy takes that away too."""
    if "Action" not in stmt:
        return True  # NotAction: everything but a few actions
    actions = stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]
    return any(str(a).lower() != ASSUME_ROLE.lower() for a in actions)


def statements_frame(policy: dict | None, inv: Inventory, roles: Mapping[str, str]) -> pd.DataFrame:
    """Every statement of the default version: what it says and which configured roles (keys) it covers.

    `other_roles`: roles in the account the spec does not configure that the statement reaches too (a
    wildcard, usually): after the migration nobody reaches them through this policy. `beyond_assume_role`:
    the statement is about other actions as well, which the deletion removes with no replacement.
    """
    cols = ["sid", "effect", "action", "resource", "condition", "covers", "other_roles", "beyond_assume_role"]
    if policy is None:
        return pd.DataFrame([], columns=cols)
    arns = role_arns(inv, roles)
    configured = set(roles.values())
    others = {name: r["Arn"] for name, r in sorted(inv.roles.items()) if name not in configured}
    rows = []
    for i, stmt in enumerate(_statement_list(default_document(policy))):
        action_key = "Action" if "Action" in stmt else "NotAction"
        resource_key = "Resource" if "Resource" in stmt else "NotResource"
        rows.append(
            {
                "sid": stmt.get("Sid", f"#{i + 1}"),
                "effect": stmt.get("Effect", ""),
                "action": f"{action_key}: {_listed(stmt.get(action_key, ''))}",
                "resource": f"{resource_key}: {_listed(stmt.get(resource_key, ''))}",
                "condition": json.dumps(stmt["Condition"], sort_keys=True) if stmt.get("Condition") else "",
                "covers": ", ".join(k for k, arn in arns.items() if statement_covers(stmt, ASSUME_ROLE, arn)),
                "other_roles": ", ".join(n for n, arn in others.items() if statement_covers(stmt, ASSUME_ROLE, arn)),
                "beyond_assume_role": _beyond_assume_role(stmt),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def policy_frame(policy: dict | None) -> pd.DataFrame:
    """One row per version of the policy: which is default, when made, and its document."""
    cols = ["version", "default", "created", "document"]
    if policy is None:
        return pd.DataFrame([], columns=cols)
    rows = [
        {
            "version": v["VersionId"],
            "default": bool(v.get("IsDefaultVersion")),
            "created": str(v.get("CreateDate", "")),
            "document": json.dumps(decode_document(v.get("Document")), sort_keys=True),
        }
        for v in sorted(policy.get("PolicyVersionList", []), key=version_number)
    ]
    return pd.DataFrame(rows, columns=cols)


DELTA_COLUMNS = records.LEGACY_DELTA.columns


def _delta_change(legacy: str, granted: bool) -> str:
    if legacy in GRANTING and not granted:
        return "removed"
    if legacy == "no" and granted:
        return "added"
    if legacy == "conditional" and granted:
        return "condition dropped"  # the Assume*Policy has no condition: wider than before
    return "kept" if granted else ""


def privilege_delta(spec: Spec, inv: Inventory, policy: dict | None, holders: Iterable[Holder]) -> pd.DataFrame:
    """For each user the legacy policy reaches (directly or through a group) and each configured role:
    what the legacy policy lets them assume versus what the spec grants, and the change the migration makes.
    Groups and roles holding it lose it outright; their rows name no user."""
    rows = []
    holders = list(holders)
    for user, group in affected_users(inv, holders).items():
        entry = spec.user_named(user)
        grants = legacy_grants(policy, inv, spec.roles, user=user)
        for key, role in spec.roles.items():
            verdict, conditions = grants[key]
            granted = entry is not None and key in entry.roles
            rows.append(
                {
                    "user": user,
                    "via": f"group {group}" if group else "attached",
                    "in_spec": entry is not None,
                    "role_key": key,
                    "role": role,
                    "legacy": verdict,
                    "conditions": "; ".join(conditions),
                    "spec": "yes" if granted else "no",
                    "change": _delta_change(verdict, granted),
                }
            )
    for h in holders:
        if h.kind != "role":
            continue
        for key, (verdict, conditions) in legacy_grants(policy, inv, spec.roles).items():
            rows.append(
                {
                    "user": "",
                    "via": str(h),
                    "in_spec": False,
                    "role_key": key,
                    "role": spec.roles[key],
                    "legacy": verdict,
                    "conditions": "; ".join(conditions),
                    "spec": "no",
                    "change": _delta_change(verdict, False),
                }
            )
    return pd.DataFrame(rows, columns=DELTA_COLUMNS)


# --- the spec and apply results ------------------------------------------------------------------------
def roles_frame(spec: Spec) -> pd.DataFrame:
    return pd.DataFrame(sorted(spec.roles.items()), columns=["role_key", "role_name"])


def spec_frame(spec: Spec) -> pd.DataFrame:
    """Who the spec grants which roles."""
    rows = [{"user": u.name, "description": u.description, "roles": ", ".join(u.roles)} for u in spec.users.values()]
    return pd.DataFrame(rows, columns=["user", "description", "roles"])


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """What an apply did: one row per change (address, kind, status)."""
    return pd.DataFrame(rows, columns=["address", "kind", "status"])
