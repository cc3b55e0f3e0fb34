"""The Terraform handoff's part for temporary grants: the addresses `terraform state list` shows for the grants
still valid, and the import blocks for what of them exists (templates/iam_users.tf.j2 holds the resources)."""

from __future__ import annotations

from iamrunbook.base.names import UNTIL_STAMP, temporary_policy_name
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import Spec
from iamrunbook.core.temporary_plan import pair_group, wanted_pairs


def _key(pair) -> str:
    return f"{pair[0]}/{pair[1].strftime(UNTIL_STAMP)}"


def has_temporary(spec: Spec) -> bool:
    """Whether the written configuration needs the temporary-grant resources at all."""
    return any(u.temporary for u in spec.users.values())


def data_keys(spec: Spec) -> list[tuple[str, str]]:
    """(data source name, key) of the policy documents: each role's, then each valid pair's."""
    return [*(("assume_role", k) for k in spec.roles), *(("temporary", _key(p)) for p in wanted_pairs(spec))]


def addresses(spec: Spec) -> list[str]:
    """The managed addresses of the grants valid at the spec's time (Terraform drops the others at plan)."""
    found = []
    for pair, users in wanted_pairs(spec).items():
        found.append(f'aws_iam_policy.temporary["{_key(pair)}"]')
        if spec.settings.via_group:
            found += [f'aws_iam_group.temporary["{_key(pair)}"]']
            found += [f'aws_iam_group_policy_attachment.temporary["{_key(pair)}"]']
            found += [f'aws_iam_user_group_membership.temporary["{u}/{_key(pair)}"]' for u in users]
        else:
            found += [f'aws_iam_user_policy_attachment.temporary["{u}/{_key(pair)}"]' for u in users]
    return found


def imports(spec: Spec, inv: Inventory) -> list[tuple[str, str]]:
    """(address, import id) of every valid grant's resource that exists in the account."""
    found = []
    for pair, users in wanted_pairs(spec).items():
        policy = inv.local_policy(temporary_policy_name(spec.roles[pair[0]], pair[1]))
        if policy is None:
            continue
        arn = policy["Arn"]
        found.append((f'aws_iam_policy.temporary["{_key(pair)}"]', arn))
        group = inv.group_named(pair_group(spec, pair)) if spec.settings.via_group else None
        if group is not None:
            found.append((f'aws_iam_group.temporary["{_key(pair)}"]', group["GroupName"]))
            if arn in Inventory.attached_arns(group):
                address = f'aws_iam_group_policy_attachment.temporary["{_key(pair)}"]'
                found.append((address, f"{group['GroupName']}/{arn}"))
        for name in users:
            user = inv.user_named(name)
            if user is None:
                continue
            if group is not None and group["GroupName"] in user.get("GroupList", []):
                address = f'aws_iam_user_group_membership.temporary["{name}/{_key(pair)}"]'
                found.append((address, f"{user['UserName']}/{group['GroupName']}"))
            elif not spec.settings.via_group and arn in Inventory.attached_arns(user):
                address = f'aws_iam_user_policy_attachment.temporary["{name}/{_key(pair)}"]'
                found.append((address, f"{user['UserName']}/{arn}"))
    return found
