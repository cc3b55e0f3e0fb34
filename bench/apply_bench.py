"""Benchmark of apply at scale (issue 20): the parallel executor against real-AWS latency.

    python bench/apply_bench.py [--users 5000] [--sizes 1000 5000] [--latency-ms 100] [--out bench/out]

One server, the strict embedded AWS (`EmbeddedAws`) with `latency_ms` on every call, in a child process
(its own CPU and GIL: the 8-16 client threads do not compete with it), seeded with U users in the
benchmark's population (bench.py). On it, one after another:

- apply of K changes (bench.py's mix: new users, roles granted and removed, descriptions changed), one
  fresh plan per row: sequential (parallelism 1) and parallelism 4, 8 and 16. Wall time against the
  ideal K x latency / parallelism; API calls and HTTP attempts counted with botocore events as bench.py
  does (retries = attempts - calls); the server's count of successful mutating calls, which must be K.
  Sequential runs only at the smallest K unless --sequential-all: the larger K's figure is extrapolated
  from it and says so;
- the same apply at parallelism 8 with the server throttling at `--max-tps` (20): wall time against the
  K / max_tps floor, the server's throttles and the client's retries;
- reading the account: inventory + plan against bench.py's Terraform-refresh replay (GetUser per user,
  GetPolicy + GetPolicyVersion per policy, ListAttachedUserPolicies per attachment, 10 at a time), at the
  same latency, side by side;
- the adoption of a U-user account (users exist untagged, without the runbook's policies): inventory,
  plan, the simulator's proof, apply at parallelism 8, verify (a fresh read and plan) - each step's share.

The client uses the runbook's apply client (`aws.apply_client`: adaptive retries, one shared client).
Output: a table on stdout and apply_results.csv in --out.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench  # noqa: E402 - bench/bench.py: the population, the changes, the counting, the Terraform replay
from iamrunbook.aws import clients as aws_edge  # noqa: E402
from iamrunbook.aws.sweep import read_inventory  # noqa: E402
from iamrunbook.base.names import DEFAULT_ROLES, policy_arn, policy_document, policy_name, user_tags  # noqa: E402
from iamrunbook.core.plan import make_plan  # noqa: E402
from iamrunbook.core.simulate import ensure_safe  # noqa: E402
from iamrunbook.core.verify import verify  # noqa: E402
from iamrunbook.flows.apply import apply_plan  # noqa: E402

READ_ACTIONS = bench.READ_ACTIONS
WRITE_ACTIONS = bench.WRITE_ACTIONS
PARALLELISM = (1, 4, 8, 16)
TARGET_RATIO = 1.3  # parallelism 8 within 1.3x of the ideal


# --- the server, in a child process ---------------------------------------------------------------
def serve() -> int:
    """The child: the embedded AWS on 127.0.0.1, answering JSON lines (seed, pace, stats, stop)."""
    from iamrunbook.sandbox import EmbeddedAws

    server = EmbeddedAws(load_aws_managed_policies=False).start()
    print(json.dumps({"env": server.env()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "stop":
            break
        if op == "seed":
            _seed(server, request["users"])
        elif op == "pace":
            server.set_pacing(**request)
        elif op == "reset":
            server.reset()
        mutating = [c for c in server.calls if c.mutating]
        server.clear_calls()
        stats = {"ok_mutating": sum(c.ok for c in mutating), "throttled": server.throttled}
        print(json.dumps(stats), flush=True)
    server.stop()
    return 0


def _seed(server, users: list[list]) -> None:
    """Users, tags and attachments straight into moto's backend (seeding only, never measured)."""
    backend = server.iam_backend()
    for name, tags, arns in users:
        user = backend.create_user(bench.REGION, name, "/", [{"Key": k, "Value": v} for k, v in tags.items()])
        for arn in arns:
            backend.get_policy(arn).attach_to(user)


class Server:
    """The embedded AWS in a child process; `ask` sends one request and returns the calls since the last."""

    def __init__(self) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve"]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.env: dict[str, str] = json.loads(self._proc.stdout.readline())["env"]

    def ask(self, op: str, **args: Any) -> dict:
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the server process ended (exit code {self._proc.wait()})")
        return json.loads(line)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
            self._proc.stdin.close()
            self._proc.wait(timeout=30)


def connect(server: Server, parallelism: int) -> bench.Clients:
    """The runbook's apply client (and an STS client) for the server, their calls counted."""
    os.environ.update(server.env)
    session = boto3.Session(region_name=bench.REGION)
    counter = bench.CallCounter()
    iam = counter.watch(aws_edge.apply_client(session, parallelism))
    return bench.Clients(iam, counter.watch(aws_edge.client(session, "sts")), counter)


def seed_policies(iam) -> dict[str, str]:
    """The roles and their Assume*Policy policies, over HTTP; role key -> policy ARN."""
    bench.seed_roles(iam, DEFAULT_ROLES, account_id=bench.ACCOUNT_ID)
    for role in DEFAULT_ROLES.values():
        document = json.dumps(policy_document(bench.ACCOUNT_ID, role))
        iam.create_policy(PolicyName=policy_name(role), PolicyDocument=document)
    return {key: policy_arn(bench.ACCOUNT_ID, policy_name(role)) for key, role in DEFAULT_ROLES.items()}


# --- rows -----------------------------------------------------------------------------------------
@dataclass
class Row:
    scenario: str
    changes: int = 0
    parallelism: int | str = ""
    seconds: float = 0.0
    calls: int = 0
    retries: int = 0
    server_ok_mutating: int | str = ""
    throttled: int | str = ""
    reference: str = ""
    note: str = ""
    shares: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "changes": self.changes,
            "parallelism": self.parallelism,
            "seconds": round(self.seconds, 1),
            "calls": self.calls,
            "retries": self.retries,
            "server_ok_mutating": self.server_ok_mutating,
            "throttled": self.throttled,
            "reference": self.reference,
            "note": self.note,
        }


def timed_apply(server: Server, clients: bench.Clients, plan, parallelism: int) -> tuple[Row, Any]:
    clients.counter.clear()
    server.ask("stats")  # forget the planning's calls
    started = time.perf_counter()
    result = apply_plan(clients.iam, plan, max_deletions=len(plan.changes), parallelism=parallelism)
    seconds = time.perf_counter() - started
    calls, attempts, _ = clients.counter.snapshot()
    stats = server.ask("stats")
    row = Row("apply", len(plan.changes), parallelism, seconds, sum(calls.values()),
              sum(attempts.values()) - sum(calls.values()), stats["ok_mutating"], stats["throttled"])  # fmt: skip
    if not result.ok or len(result.done) != len(plan.changes):
        raise AssertionError(f"apply did not finish: {result.error}")
    return row, result


def apply_rows(server: Server, users: int, sizes: list[int], latency_s: float, sequential_all: bool) -> list[Row]:
    """Every K at every parallelism, each on a fresh plan of K changes; sequential measured at the smallest K
    (and extrapolated) unless `sequential_all`."""
    mapping = bench.make_population(users)
    clients = connect(server, max(PARALLELISM))
    arns = seed_policies(clients.iam)
    server.ask("seed", users=[[n, user_tags(n, e["description"], tuple(e["roles"])), [arns[k] for k in e["roles"]]]
                              for n, e in mapping.items()])  # fmt: skip
    rows, per_change = [], None
    for k in sizes:
        for p in PARALLELISM:
            if p == 1 and per_change is not None and not sequential_all:
                rows.append(Row("apply", k, 1, per_change * k, reference=f"ideal {k * latency_s:.0f} s",
                                note=f"extrapolated from K={sizes[0]} sequential, not measured"))  # fmt: skip
                continue
            mapping = bench.with_changes(mapping, k, label=f"k{k}p{p}")
            server.ask("pace", latency_ms=0)
            plan = make_plan(bench.spec_of(mapping), read_inventory(clients.iam, clients.sts))
            server.ask("pace", latency_ms=latency_s * 1000)
            row, _ = timed_apply(server, connect(server, p), plan, p)
            ideal = k * latency_s / p
            row.reference = f"ideal {ideal:.1f} s, {row.seconds / ideal:.2f}x"
            if p == 1:
                per_change = row.seconds / k
            rows.append(row)
            print(f"  apply K={k} parallelism {p}: {row.seconds:.1f} s ({row.reference})", flush=True)
    return rows + throttled_row(server, mapping, sizes[0], latency_s) + read_rows(server, mapping)


def throttled_row(server: Server, mapping: dict, k: int, latency_s: float, max_tps: float = 20) -> list[Row]:
    clients = connect(server, 8)
    target = bench.with_changes(mapping, k, label=f"tps{k}")
    server.ask("pace", latency_ms=0)
    plan = make_plan(bench.spec_of(target), read_inventory(clients.iam, clients.sts))
    server.ask("pace", latency_ms=latency_s * 1000, max_tps=max_tps)
    row, _ = timed_apply(server, clients, plan, 8)
    server.ask("pace", max_tps=None)
    floor = k / max_tps
    row.scenario = f"apply, max_tps={max_tps:g}"
    row.reference = f"floor {floor:.0f} s, {row.seconds / floor:.2f}x"
    mapping.clear()
    mapping.update(target)
    print(f"  apply K={k} at max_tps={max_tps:g}: {row.seconds:.1f} s ({row.reference})", flush=True)
    return [row]


def read_rows(server: Server, mapping: dict) -> list[Row]:
    """Inventory + plan and the Terraform refresh replay, on the same account at the same latency."""
    clients = connect(server, 10)
    rows = []
    for scenario, work in (
        ("inventory + plan", lambda: make_plan(bench.spec_of(mapping), read_inventory(clients.iam, clients.sts))),
        ("terraform refresh replay", lambda: bench.baseline_terraform(clients, mapping, 10)),
    ):
        clients.counter.clear()
        started = time.perf_counter()
        work()
        calls, attempts, _ = clients.counter.snapshot()
        note = "10 refreshes at a time (terraform -parallelism=10)" if "terraform" in scenario else ""
        rows.append(Row(scenario, 0, 10 if note else 1, time.perf_counter() - started, sum(calls.values()),
                        sum(attempts.values()) - sum(calls.values()), note=note))  # fmt: skip
        server.ask("stats")
        print(f"  {scenario}: {rows[-1].seconds:.1f} s, {rows[-1].calls} calls", flush=True)
    return rows


def adoption_row(server: Server, users: int, latency_s: float, parallelism: int = 8) -> Row:
    """Adopt U untagged users: inventory, plan, proof, apply, verify, each timed."""
    server.ask("reset")
    clients = connect(server, parallelism)
    bench.seed_roles(clients.iam, DEFAULT_ROLES, account_id=bench.ACCOUNT_ID)
    mapping = bench.make_population(users)
    server.ask("seed", users=[[name, {}, []] for name in mapping])
    spec = bench.spec_of(mapping)
    server.ask("pace", latency_ms=latency_s * 1000)
    server.ask("stats")
    clients.counter.clear()
    shares: dict[str, float] = {}

    def step(name: str, work):
        started = time.perf_counter()
        out = work()
        shares[name] = time.perf_counter() - started
        print(f"  adoption {name}: {shares[name]:.1f} s", flush=True)
        return out

    inventory = step("inventory", lambda: read_inventory(clients.iam, clients.sts))
    plan = step("plan", lambda: make_plan(spec, inventory))
    step("proof (simulator)", lambda: ensure_safe(inventory, plan.changes, spec, plan.caller_arn))
    result = step("apply", lambda: apply_plan(clients.iam, plan, max_deletions=0, parallelism=parallelism))
    found = step("verify", lambda: verify(spec, read_inventory(clients.iam, clients.sts)))
    if not result.ok or found.problems:
        raise AssertionError(f"the adoption did not converge: {found.problems[:3]}")
    calls, attempts, _ = clients.counter.snapshot()
    stats = server.ask("stats")
    total = sum(shares.values())
    row = Row(f"adoption of {users} users", len(plan.changes), parallelism, total, sum(calls.values()),
              sum(attempts.values()) - sum(calls.values()), stats["ok_mutating"], stats["throttled"],
              note=plan.summary_line(), shares=shares)  # fmt: skip
    row.reference = ", ".join(f"{name} {s:.1f} s ({100 * s / total:.0f}%)" for name, s in shares.items())
    return row


# --- output ---------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    head = "| scenario | K | parallelism | wall s | calls | retries | server ok writes | throttled | vs | note |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        v = r.values()
        lines.append("| " + " | ".join(str(v[c]) for c in v) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--serve"]:
        return serve()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000, help="account size (default 5000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], metavar="K", help="plan sizes")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the server's latency per call")
    parser.add_argument("--sequential-all", action="store_true", help="measure sequential at every K")
    parser.add_argument("--no-adoption", action="store_true", help="skip the whole adoption")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    latency_s = args.latency_ms / 1000
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; latency {args.latency_ms:g} ms")
    server = Server()
    try:
        rows = apply_rows(server, args.users, sorted(args.sizes), latency_s, args.sequential_all)
        if not args.no_adoption:
            rows.append(adoption_row(server, args.users, latency_s))
    finally:
        server.stop()
    print()
    print(table(rows))
    checks = [r for r in rows if r.scenario == "apply" and r.parallelism == 8]
    ok = all(r.seconds <= TARGET_RATIO * r.changes * latency_s / 8 for r in checks)
    ok &= all(r.server_ok_mutating in ("", r.changes) for r in rows if r.scenario.startswith("apply"))
    print(f"\n{'PASS' if ok else 'FAIL'}: parallelism 8 within {TARGET_RATIO}x of K x latency / 8, and one "
          "successful mutating call per change")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    with (args.out / "apply_results.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row("").values()))
        writer.writeheader()
        writer.writerows(r.values() for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
