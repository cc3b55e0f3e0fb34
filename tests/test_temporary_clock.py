"""Temporary grants on the embedded AWS, on a clock the test sets: AWS itself ends the grant at `until`
(the AssumeRole call is refused before any scheduled run), and the next run tidies it away."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core.access import effective_access
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import GrantSettings, load_spec
from iamrunbook.core.verify import verify
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import seed

START = datetime.now(timezone.utc).replace(second=0, microsecond=0)
UNTIL = START + timedelta(hours=4)


def spec_at(now: datetime, via: str = "user"):
    users = {"alice": {"description": "Alice", "roles": ["data_engineer"],
                       "temporary": [{"role": "admin", "until": UNTIL.strftime("%Y-%m-%dT%H:%M:00Z"),
                                      "reason": "INC-1234 restore the warehouse"}]}}  # fmt: skip
    return load_spec(users, settings=GrantSettings(grant_via=via), now=now)


def run(iam, sts, now: datetime, via: str = "user"):
    spec = spec_at(now, via)
    inventory = read_inventory(iam, sts)
    plan = make_plan(spec, inventory)
    apply_plan(iam, plan, inventory=inventory, spec=spec)
    return plan


@pytest.mark.parametrize("via", ["user", "group"])
def test_aws_ends_the_grant_at_until_and_the_next_run_removes_it(aws, iam, sts, via):
    roles = seed.seed_roles(iam)
    run(iam, sts, START, via)
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    alice = aws.client("sts", credentials=key)
    aws.clock.set(UNTIL - timedelta(seconds=1))
    alice.assume_role(RoleArn=roles["admin"], RoleSessionName="incident")  # valid: allowed
    aws.clock.set(UNTIL)  # DateLessThan is strict: at `until` AWS denies, before any run
    with pytest.raises(ClientError, match="AccessDenied"):
        alice.assume_role(RoleArn=roles["admin"], RoleSessionName="incident")
    alice.assume_role(RoleArn=roles["data_engineer"], RoleSessionName="work")  # the permanent grant stays

    later = spec_at(UNTIL)
    drift = verify(later, read_inventory(iam, sts))
    assert any("AWS already denies it" in p.message for p in drift.problems)
    tidy = run(iam, sts, UNTIL, via)
    assert {c.kind for c in tidy.changes} >= {"delete_policy"}
    assert all(c.role_key == "admin" for c in tidy.changes)  # nothing of data_engineer touched
    after = read_inventory(iam, sts)
    assert not [p for p in after.policies if "Until" in p] and not [g for g in after.groups if "Until" in g]
    assert make_plan(spec_at(UNTIL, via), after).is_empty
    grants = effective_access(after.details(), later.roles, after.account_id, now=UNTIL)
    assert {(g.user, g.role_key) for g in grants} == {("alice", "data_engineer")}
