"""Benchmark: the read calls of one access review (06) do not grow with the number of users.

    python bench/review_bench.py [--users 100 1000] [--events 1000] [--out bench/out]

For each U a fresh embedded AWS (the sandbox: moto behind AWS's rules, with CloudTrail LookupEvents) gets the
three roles, their Assume*Policy policies and U users each granted 1-3 roles (fixed random seed), a console
password on every tenth user, and the same `--events` back-dated AssumeRole events spread over the users. Then
the notebook itself runs as a scheduled job would (`iamrunbook.cli.runner.run(["06_access_review"])`, a real
kernel) and the server's call log is counted by action: what the review asked AWS, nothing else. The target:
every action is called as often at the largest U as at the smallest (the events are the same), and no call is
a mutation. Output: a table on stdout and `review_calls.csv` in --out; exit code 1 if the target fails.

What the counts are made of, and what AWS would differ in:
- GetCallerIdentity: the notebook's account check and the inventory's;
- GetAccountAuthorizationDetails: one page here; AWS pages it at MaxItems 1000 (users, groups, roles and
  policies together), so about one call per 1,000 users: it grows by the thousand, never by the user;
- GenerateCredentialReport (polled until COMPLETE) + GetCredentialReport: one report for every user;
- the CIS account-level items: GetAccountSummary, GetAccountPasswordPolicy, ListVirtualMFADevices,
  ListServerCertificates and access-analyzer ListAnalyzers, once each per account (a page each here);
- LookupEvents: ceil(events / 50) pages of the one EventName=AssumeRole sweep (the events of the last 90
  days: about 3/4 of the seeded ones, back-dated 0-120 days), paced at two a second as AWS throttles it: it
  grows with what people did, never with how many they are.
A per-user review (GetLoginProfile, ListAccessKeys, GetAccessKeyLastUsed, ListMFADevices and a Username-
filtered LookupEvents for each user) would make at least 5 calls per user: 5,000 at U=1,000.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout: use the package next to it
    sys.path.insert(0, str(REPO))

from iamrunbook.base import names  # noqa: E402
from iamrunbook.cli import runner
from iamrunbook.sandbox import ACCOUNT_ID, EmbeddedAws, seed_assume_role_history  # noqa: E402
from iamrunbook.sandbox.demo import pointed_at  # noqa: E402
from iamrunbook.sandbox.seed import new_password, seed_roles  # noqa: E402

SEED = 20261203
DEFAULT_USERS = (100, 1000)
DEFAULT_EVENTS = 1000
ROLE_KEYS = tuple(names.DEFAULT_ROLES)


def population(users: int, seed: int = SEED) -> dict[str, list[str]]:
    """user -> the role keys granted, 1-3 each, the same for the same U and seed."""
    rng = random.Random(seed)
    grants = {}
    for i in range(users):
        chosen = set(rng.sample(ROLE_KEYS, rng.randint(1, 3)))
        grants[f"user-{i:05d}@example.com"] = [k for k in ROLE_KEYS if k in chosen]
    return grants


def seed_account(aws: EmbeddedAws, grants: dict[str, list[str]], events: int, seed: int = SEED) -> None:
    """Roles, policies and users over the server's internal client (unseen by the call log), then the
    AssumeRole history straight into the sandbox's trail."""
    iam = aws.client("iam", internal=True)
    seed_roles(iam, account_id=ACCOUNT_ID)
    for role in names.DEFAULT_ROLES.values():
        document = names.document_text(names.policy_document(ACCOUNT_ID, role))
        iam.create_policy(PolicyName=names.policy_name(role), PolicyDocument=document,
                          Description=names.policy_description(role))  # fmt: skip
    for n, (user, keys) in enumerate(grants.items()):
        tags = [{"Key": k, "Value": v} for k, v in names.user_tags(user, "bench user", tuple(keys)).items()]
        iam.create_user(UserName=user, Tags=tags)
        for key in keys:
            arn = names.policy_arn(ACCOUNT_ID, names.policy_name(names.DEFAULT_ROLES[key]))
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        if n % 10 == 0:
            iam.create_login_profile(UserName=user, Password=new_password())
    # The same events at every U (when, and which of the user's roles), spread over the users in turn: the
    # trail, and so the pages LookupEvents returns, do not depend on how many users there are.
    rng = random.Random(seed)
    people = list(grants)
    history = []
    for i in range(events):
        user, days, pick = people[i % len(people)], rng.uniform(0, 120), rng.randrange(3)
        history.append((user, names.DEFAULT_ROLES[grants[user][pick % len(grants[user])]], days))
    seed_assume_role_history(aws, history)


def measure(users: int, events: int, out: Path) -> dict:
    """One review of a fresh account of `users`: the calls it made, by action, and how long it took."""
    grants = population(users)
    with EmbeddedAws(load_aws_managed_policies=False) as aws, pointed_at(aws):
        seed_account(aws, grants, events)
        aws.clear_calls()
        spec = {u: {"description": "bench user", "roles": keys} for u, keys in grants.items()}
        started = time.monotonic()
        result = runner.run(["06_access_review"], {"iam_users": spec}, out=out)
        seconds = time.monotonic() - started
        calls = Counter(f"{c.service}:{c.action}" for c in aws.calls)
        mutating = len(aws.mutating_calls())
    return {"users": users, "events": events, "exit_code": result.exit_code, "seconds": round(seconds, 1),
            "calls": calls, "total": sum(calls.values()), "mutating": mutating}  # fmt: skip


def same_calls(rows: list[dict]) -> bool:
    """The target: every action as often at every U (the credential report's polling aside: it waits for
    AWS, not for users), and nothing but reads."""
    def counted(row: dict) -> Counter:
        return Counter({k: v for k, v in row["calls"].items() if k != "iam:GenerateCredentialReport"})

    return all(counted(r) == counted(rows[0]) and r["mutating"] == 0 and r["exit_code"] == 0 for r in rows)


def write_csv(path: Path, rows: list[dict]) -> None:
    actions = sorted({a for r in rows for a in r["calls"]})
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["users", "events", "seconds", "total_calls", "mutating", *actions])
        for r in rows:
            writer.writerow([r["users"], r["events"], r["seconds"], r["total"], r["mutating"],
                             *(r["calls"].get(a, 0) for a in actions)])  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=list(DEFAULT_USERS), help="account sizes")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="AssumeRole events in the trail")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="review-bench-") as runs:
        for users in args.users:
            rows.append(measure(users, args.events, Path(runs)))
            r = rows[-1]
            print(f"U={users:>6}  events={r['events']:>6}  {r['total']:>4} read calls  {r['mutating']} mutating  "
                  f"{r['seconds']:>6.1f} s  " + ", ".join(f"{a} {n}" for a, n in sorted(r["calls"].items())))
    ok = same_calls(rows)
    print(f"{'PASS' if ok else 'FAIL'} the review's calls do not grow with the users "
          f"({', '.join(str(r['total']) for r in rows)} calls at U={', '.join(str(r['users']) for r in rows)})")
    write_csv(args.out / "review_calls.csv", rows)
    print(f"wrote {args.out / 'review_calls.csv'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
