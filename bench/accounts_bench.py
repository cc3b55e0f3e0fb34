"""Benchmark: `iamrunbook run --accounts` across an Organization, one account at a time and several at once.

    python bench/accounts_bench.py [--accounts 20] [--users 200] [--parallel 1 4] [--out bench/out]

The embedded AWS (strict, with Organizations) runs in this process, holding a management account and
--accounts members. Each member gets the three roles, their three Assume*Policy policies and --users
users holding 1-3 of them (bench.py's population, a different seed per account), matching a spec of
its own, so the drift check must find nothing. Then, for each --parallel value, the fan-out runs as an
operator runs it, in a subprocess: `iamrunbook run --accounts accounts.yaml 04_verify` with
`accounts: from_organization`.

Measured per --parallel value:
- wall time, and the speed-up over the first value; the CPU seconds of the fan-out and all its children
  (on a machine with few cores the work per account, mostly starting Python and a kernel, bounds it);
- memory: the fan-out process's own max RSS and its children's (getrusage in that process at its end:
  the largest account process or kernel), and the peak of the whole process tree's RSS summed, sampled
  every 0.2 s with the number of kernels alive at once;
- read calls per member account, from the server's call log (the account each call acted in), against
  ceil(U/1000) + 4, plus the one AssumeRole that entered it (logged in the management account); no
  call may change anything.

Targets (PASS/FAIL lines; exit 1 if one fails): every account exit 0; read calls within the limit in
every account; no mutating call; at most --parallel kernels at once; the tree's peak at most the
parent's plus two processes (an account's and its kernel's) per parallel slot. Output: a table on
stdout and `accounts_results.csv` in --out. Timings depend on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout: use the package next to it
    sys.path.insert(0, str(REPO))

from iamrunbook.base.names import (
    DEFAULT_ROLES,
    policy_arn,
    policy_description,
    policy_document,
    user_tags,
)  # noqa: E402
from iamrunbook.base.names import policy_name as assume_policy_name  # noqa: E402
from iamrunbook.sandbox import EmbeddedAws  # noqa: E402
from iamrunbook.sandbox.calls import ACCOUNT_ID, REGION  # noqa: E402
from iamrunbook.sandbox.org import ACCESS_ROLE, ADMIN_POLICY_ARN  # noqa: E402
from iamrunbook.sandbox.seed import seed_roles  # noqa: E402

NOTEBOOK = "04_verify"  # the scheduled drift check: one sweep and the spec, 0 when the account matches
SAMPLE_SECONDS = 0.2
MIB = 1024 * 1024
#: the fan-out process: the CLI as typed, then its own and its children's max RSS on one line (KiB on Linux)
WRAPPER = (
    "import json, resource, sys\n"
    "from iamrunbook.cli.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "ru = {w: resource.getrusage(getattr(resource, 'RUSAGE_' + w.upper())) for w in ('self', 'children')}\n"
    "usage = {w: u.ru_maxrss for w, u in ru.items()}\n"
    "usage['cpu'] = sum(u.ru_utime + u.ru_stime for u in ru.values())\n"
    "print('RUSAGE ' + json.dumps(usage), flush=True)\n"
    "sys.exit(code)\n"
)


def _bench_module():
    """bench.py, for its population (the same users, roles and seed as the single-account benchmark)."""
    spec = importlib.util.spec_from_file_location("iamrunbook_bench", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read_call_limit(users: int) -> int:
    return math.ceil(users / 1000) + 4


# --- the organization -----------------------------------------------------------------------------
def seed_member(aws: EmbeddedAws, org, root_id: str, name: str, mapping: dict) -> str:
    """A member as Organizations makes it, with the runbook's roles, policies and users matching `mapping`:
    roles and policies over (unlogged) HTTP, users and attachments straight into moto's backend."""
    status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
    account_id = status["AccountId"]
    iam = aws.client("iam", account_id=account_id, internal=True)
    iam.attach_role_policy(RoleName=ACCESS_ROLE, PolicyArn=ADMIN_POLICY_ARN)
    seed_roles(iam, DEFAULT_ROLES, account_id=account_id)
    arns = {}
    for key, role in DEFAULT_ROLES.items():
        document = json.dumps(policy_document(account_id, role))
        iam.create_policy(PolicyName=assume_policy_name(role), PolicyDocument=document,
                          Description=policy_description(role))  # fmt: skip
        arns[key] = policy_arn(account_id, assume_policy_name(role))
    backend = aws.iam_backend(account_id)
    for user_name, entry in mapping.items():
        tags = user_tags(user_name, entry["description"], tuple(entry["roles"]))
        user = backend.create_user(REGION, user_name, "/", [{"Key": k, "Value": v} for k, v in tags.items()])
        for key in entry["roles"]:
            backend.get_policy(arns[key]).attach_to(user)
    return account_id


def seed_organization(aws: EmbeddedAws, folder: Path, accounts: int, users: int) -> dict[str, str]:
    """The organization, its members and the project: accounts.yaml (from_organization) and one parameters
    file per member with its own spec. Returns member name -> account id."""
    population = _bench_module().make_population
    org = aws.client("organizations", internal=True)
    org.create_organization(FeatureSet="ALL")
    root_id = org.list_roots()["Roots"][0]["Id"]
    members = {}
    for i in range(accounts):
        name = f"member-{i:02d}"
        mapping = population(users, seed=1000 + i)
        members[name] = seed_member(aws, org, root_id, name, mapping)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"iam_users": mapping}), encoding="utf-8")
    (folder / "accounts.yaml").write_text(
        'defaults:\n  parameters_file: "{name}.yaml"\naccounts: from_organization\n', encoding="utf-8"
    )
    return members


# --- one fan-out ----------------------------------------------------------------------------------
@dataclass
class Row:
    parallel: int
    seconds: float = 0.0
    exit_code: int | None = None
    converged: int = 0
    parent_max_mib: float = 0.0
    children_max_mib: float = 0.0
    tree_peak_mib: float = 0.0
    cpu_seconds: float = 0.0
    kernels_at_once: int = 0
    reads_max: int = 0
    reads_by_account: dict = field(default_factory=dict)
    assume_roles: int = 0
    management_reads: int = 0
    mutating: int = 0


class TreeSampler(threading.Thread):
    """The summed RSS of a process and all its descendants, and how many kernels run, every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak_bytes = 0
        self.kernels = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                total, kernels = 0, 0
                for process in tree:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # it ended
                        total += process.memory_info().rss
                        kernels += any("ipykernel" in part for part in process.cmdline())
            except psutil.NoSuchProcess:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self.kernels = max(self.kernels, kernels)


def fan_out(aws: EmbeddedAws, folder: Path, members: dict[str, str], parallel: int, users: int) -> Row:
    """`iamrunbook run --accounts` in a subprocess, timed, sampled and counted."""
    row = Row(parallel)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(aws.env())
    out = folder / f"runs-parallel-{parallel}"
    argv = ["run", "--accounts", str(folder / "accounts.yaml"), NOTEBOOK, "--parallel", str(parallel),
            "--out", str(out)]  # fmt: skip
    aws.clear_calls()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", WRAPPER, *argv], env=env, cwd=folder, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    sampler = TreeSampler(process.pid)
    sampler.start()
    output, _ = process.communicate(timeout=3600)
    row.seconds = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    (folder / f"fan-out-parallel-{parallel}.log").write_text(output, encoding="utf-8")
    row.exit_code = process.returncode
    usage = json.loads(next(line for line in output.splitlines() if line.startswith("RUSAGE "))[7:])
    row.parent_max_mib, row.children_max_mib = usage["self"] / 1024, usage["children"] / 1024
    row.cpu_seconds = usage["cpu"]
    row.tree_peak_mib, row.kernels_at_once = sampler.peak_bytes / MIB, sampler.kernels
    count_calls(aws, members, row)
    (parent,) = [p for p in out.iterdir() if p.is_dir()]
    summary = json.loads((parent / "accounts_summary.json").read_text(encoding="utf-8"))
    row.converged = sum(1 for r in summary["accounts"] if r["outcome"] == "converged")
    return row


def count_calls(aws: EmbeddedAws, members: dict[str, str], row: Row) -> None:
    """Reads per member account (where each call acted), AssumeRoles (in the management account)."""
    calls = aws.calls
    ids = set(members.values())
    row.reads_by_account = {
        name: sum(1 for c in calls if c.account_id == account_id and not c.mutating)
        for name, account_id in members.items()
    }
    row.reads_max = max(row.reads_by_account.values())
    entered = [str(c.params.get("RoleArn", "")).split(":") for c in calls if c.action == "AssumeRole"]
    row.assume_roles = sum(1 for arn in entered if len(arn) > 4 and arn[4] in ids)
    row.management_reads = sum(1 for c in calls if c.account_id == ACCOUNT_ID and c.action != "AssumeRole")
    row.mutating = sum(1 for c in calls if c.mutating)


# --- targets and output ---------------------------------------------------------------------------
def targets(rows: list[Row], accounts: int, users: int) -> list[tuple[bool, str]]:
    limit = read_call_limit(users)
    found = []
    for row in rows:
        tag = f"--parallel {row.parallel}"
        found.append(
            (
                row.exit_code == 0 and row.converged == accounts,
                f"{tag}: exit code {row.exit_code}, {row.converged}/{accounts} accounts converged",
            )
        )
        found.append(
            (
                row.reads_max <= limit and row.assume_roles == accounts,
                f"{tag}: at most {row.reads_max} read calls in a member (limit ceil(U/1000)+4 = {limit}), "
                f"plus {row.assume_roles} AssumeRole for {accounts} accounts",
            )
        )
        found.append((row.mutating == 0, f"{tag}: {row.mutating} mutating calls"))
        found.append((row.kernels_at_once <= row.parallel, f"{tag}: at most {row.kernels_at_once} kernels at once"))
        bound = row.parent_max_mib + 2 * row.parallel * row.children_max_mib
        found.append((row.tree_peak_mib <= bound,
                      f"{tag}: process tree peak {row.tree_peak_mib:.0f} MiB <= parent {row.parent_max_mib:.0f} + "
                      f"2 x {row.parallel} x largest child {row.children_max_mib:.0f} = {bound:.0f} MiB"))  # fmt: skip
    return found


def table(rows: list[Row]) -> str:
    head = f"{'parallel':>8} {'seconds':>8} {'speed-up':>8} {'parent MiB':>10} {'child MiB':>9} {'tree MiB':>8} " \
           f"{'kernels':>7} {'reads/acct':>10} {'mgmt reads':>10} {'CPU s':>6} {'exit':>4}"  # fmt: skip
    lines = [head]
    for row in rows:
        speed = rows[0].seconds / row.seconds if row.seconds else math.nan
        lines.append(f"{row.parallel:>8} {row.seconds:>8.1f} {speed:>8.2f} {row.parent_max_mib:>10.0f} "
                     f"{row.children_max_mib:>9.0f} {row.tree_peak_mib:>8.0f} {row.kernels_at_once:>7} "
                     f"{row.reads_max:>10} {row.management_reads:>10} {row.cpu_seconds:>6.0f} "
                     f"{row.exit_code:>4}")  # fmt: skip
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        for row in rows:
            writer.writerow({**asdict(row), "reads_by_account": json.dumps(row.reads_by_account)})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20, help="member accounts (default 20)")
    parser.add_argument("--users", type=int, default=200, help="IAM users in each member (default 200)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 4], help="values to compare (default 1 4)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = []
    with EmbeddedAws() as aws, tempfile.TemporaryDirectory(prefix="iamrb-accounts-bench-") as scratch:
        started = time.perf_counter()
        members = seed_organization(aws, Path(scratch), args.accounts, args.users)
        print(f"seeded {args.accounts} members x {args.users} users in {time.perf_counter() - started:.1f} s")
        for parallel in args.parallel:
            rows.append(fan_out(aws, Path(scratch), members, parallel, args.users))
            print(f"  --parallel {parallel}: {rows[-1].seconds:.1f} s, exit code {rows[-1].exit_code}", flush=True)
    print()
    print(table(rows))
    print()
    found = targets(rows, args.accounts, args.users)
    for ok, line in found:
        print(f"{'PASS' if ok else 'FAIL'} {line}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    write_csv(args.out / "accounts_results.csv", rows)
    print(f"wrote {args.out / 'accounts_results.csv'}")
    return 0 if all(ok for ok, _ in found) else 1


if __name__ == "__main__":
    sys.exit(main())
