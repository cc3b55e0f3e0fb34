"""Whether a role's trust policy admits Identity Center's reserved role: the last link of the mode's path.

user -> group -> assignment -> permission set -> `AWSReservedSSO_<PermissionSet>_<suffix>` in the target
account -> `Assume<Role>Policy` -> the role's trust. Provisioning gives the reserved role a new random suffix
whenever it is re-created, so a trust must admit it whatever the suffix: trusting the account (its root or
id) does; otherwise an Allow with `aws:PrincipalArn` matched by `ArnLike`/`StringLike` and a wildcard on
`aws-reserved/sso.amazonaws.com/`. Naming one reserved role by ARN breaks at the next re-creation. The
runbook never edits trust policies: it explains what a trust lacks, and refuses a plan that would hand users
a permission set whose role they could not assume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from iamrunbook.base.names import ASSUME_ROLE
from iamrunbook.core.access import _action_matches, _any_match, _as_list, _principal_kind, statements
from iamrunbook.core.identity_center import permission_set_name

RESERVED_PATH = "aws-reserved/sso.amazonaws.com/"
#: Two suffixes a reserved role might have: a trust must admit both to admit the permission set for good.
_SUFFIXES = ("0123456789abcdef", "fedcba9876543210")
_PRINCIPAL_ARN = "aws:principalarn"
_MATCHING = {"ArnLike": True, "StringLike": False, "ArnEquals": True, "StringEquals": False}


@dataclass(frozen=True)
class TrustVerdict:
    admits: bool
    why: str


def reserved_role_arn(account_id: str, permission_set: str, suffix: str, region: str = "us-east-1",
                      partition: str = "aws") -> str:  # fmt: skip
    """The ARN provisioning gives the reserved role (`<region>/` in the path outside us-east-1)."""
    where = RESERVED_PATH if region == "us-east-1" else f"{RESERVED_PATH}{region}/"
    return f"arn:{partition}:iam::{account_id}:role/{where}AWSReservedSSO_{permission_set}_{suffix}"


def _condition_admits(condition: Mapping, arns: tuple[str, ...]) -> tuple[bool, str]:
    """Every block must hold for every suffix; only aws:PrincipalArn can be proven for a reserved role."""
    for operator, block in condition.items():
        for key, values in (block or {}).items():
            if key.lower() != _PRINCIPAL_ARN or operator not in _MATCHING:
                return False, f"its condition {operator} {key} cannot be proven for an Identity Center session"
            listed = [str(v) for v in _as_list(values)]
            if operator.endswith("Like"):
                holds = all(_any_match(listed, arn, arn=_MATCHING[operator]) for arn in arns)
            else:  # an exact ARN cannot hold for every suffix
                holds = all(arn in listed for arn in arns)
            if not holds:
                return False, (f"its {operator} aws:PrincipalArn does not match {RESERVED_PATH}AWSReservedSSO_* "
                               "whatever the suffix (use ArnLike with a wildcard)")  # fmt: skip
    return True, ""


def trust_admits_reserved_role(trust, account_id: str, permission_set: str, region: str = "us-east-1",
                               partition: str = "aws") -> TrustVerdict:  # fmt: skip
    """Whether `trust` lets the permission set's reserved role (any suffix) call sts:AssumeRole, and why."""
    arns = tuple(reserved_role_arn(account_id, permission_set, s, region, partition) for s in _SUFFIXES)
    allowed, reasons = None, []
    for stmt in statements(trust):
        if not _action_matches(stmt, ASSUME_ROLE):
            continue
        kinds = {_principal_kind(stmt, arn, account_id) for arn in arns}
        if stmt.get("Effect") == "Deny":
            if kinds & {"any", "account"} and _condition_admits(stmt.get("Condition") or {}, arns)[0]:
                return TrustVerdict(False, "a Deny statement covers the reserved role")
            continue
        if "user" in kinds or "AWSReservedSSO_" in str(stmt.get("Principal")):
            reasons.append("it names one reserved role by ARN, which changes when the role is re-created")
            continue
        if not kinds & {"any", "account"} or None in kinds:
            continue
        ok, why = _condition_admits(stmt.get("Condition") or {}, arns)
        if ok:
            allowed = "the account" if "account" in kinds else "any principal"
        else:
            reasons.append(why)
    if allowed:
        return TrustVerdict(True, f"trusts {allowed}")
    why = "; ".join(dict.fromkeys(reasons)) or "no statement trusts the account or the reserved role"
    return TrustVerdict(False, why)


def unassumable_roles(granted: Mapping[str, str], trusts: Mapping[str, object], account_id: str,
                      region: str = "us-east-1", partition: str = "aws") -> list[str]:  # fmt: skip
    """One problem per granted role (role key -> role name) whose trust would not admit its permission set's
    reserved role: a plan holding such a grant must be refused."""
    problems = []
    for key, role in granted.items():
        verdict = trust_admits_reserved_role(trusts.get(role) or {}, account_id, permission_set_name(role),
                                             region, partition)  # fmt: skip
        if not verdict.admits:
            problems.append(
                f"roles.{key}: {role}'s trust policy in {account_id} does not admit Identity Center's "
                f"AWSReservedSSO_{permission_set_name(role)}_* role ({verdict.why}); trust the account, or allow "
                f'sts:AssumeRole with ArnLike aws:PrincipalArn "arn:{partition}:iam::{account_id}:role/'
                f'{RESERVED_PATH}*"; the runbook never edits trust policies'
            )
    return problems
