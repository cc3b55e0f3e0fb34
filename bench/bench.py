"""Benchmark: what inventory + plan cost on a large account, next to the per-user loops they replace.

    python bench/bench.py [--users 100 1000 5000] [--out bench/out]

For each U it starts a fresh local moto server, seeds U users (the three roles, the three
Assume*Policy policies, every user holding 1-3 of them, chosen with a fixed random seed) and measures,
on that one server, side by side:

- inventory + plan: `sweep.read_inventory` + `plan.make_plan`, with a spec equal to the account
  (empty plan; wall time the median of --repeat runs, peak Python memory from one more run under
  tracemalloc so tracing does not slow the timed ones) and with one that differs (timed once);
- baseline (a), the manual runbook: list_users, then list_attached_user_policies and
  list_groups_for_user per user;
- baseline (b), a Terraform refresh replayed: GetUser per user, GetPolicy + GetPolicyVersion per
  policy, ListAttachedUserPolicies per attachment, one STS GetCallerIdentity, 10 at a time as
  `terraform plan` refreshes (--parallelism);
- apply: `apply.apply_plan` for plans of K changes (new users, roles granted and removed, descriptions
  changed), counting the mutating calls.

Then the chain `iamrunbook run` 01 -> 04 in plan-only mode on parameters/example.yaml, against a fresh
server seeded with the legacy account, is timed as a subprocess. The targets of issue 9 are checked at
the end (PASS/FAIL lines; the exit code is 1 if one fails). Output: a table on stdout, `results.csv`,
`targets.csv` and `bench.png` in --out.

How it measures, and why:
- Calls are counted with botocore event hooks on the measuring clients: `before-call` once per API
  call, `before-send` once per HTTP attempt, so retries show as attempts above calls; `after-call`
  adds the time spent in each operation (results.csv, call_seconds_by_operation).
- The server is plain moto (`ThreadedMotoServer` on 127.0.0.1) in a child process (`bench.py --serve`),
  not `iamrunbook.embedded.EmbeddedAws`: that one serves from inside the caller's process, where its
  allocations would land in the client's tracemalloc figure and its request threads would compete with
  the client for the GIL. Its strict checks guard correctness, which this does not measure (per call
  it cost about the same as plain moto here, 8-15 ms on a busy 2-core machine). Every measured call
  goes over HTTP through boto3 with the runbook's client config.
- moto answers GetAccountAuthorizationDetails and ListUsers in one page; AWS pages them (MaxItems at
  most 1000, 100 when not given). The server process makes those two operations page like AWS, so the
  call counts are the ones AWS would see. Items of the four detail lists are counted together, the
  reading that gives the most pages.
- AWS-managed policies are loaded into moto (about 1,600, as AWS has) and each role holds one
  (AdministratorAccess, AmazonS3ReadOnlyAccess, PowerUserAccess), as roles in real accounts do, so the
  inventory's sweep for the AWS-managed policies in use runs and is paid for.
  --no-aws-managed-policies gives a quicker, less real server.
- Seeding only: the roles and the three policies are created over HTTP; users, their tags and
  attachments are written straight into moto's backend inside the server process (5,000 users over
  HTTP would take minutes and measure nothing).
- Timings depend on the machine and on what else runs on it; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from a checkout: use the package next to it
    sys.path.insert(0, str(REPO))

from iamrunbook.aws.clients import CLIENT_CONFIG, paginate  # noqa: E402
from iamrunbook.aws.sweep import read_inventory  # noqa: E402
from iamrunbook.base.names import (
    DEFAULT_ROLES,
    policy_arn,
    policy_description,
    policy_document,
    policy_name,
    user_tags,
)
from iamrunbook.core.plan import Plan, make_plan  # noqa: E402
from iamrunbook.core.spec import Spec, load_spec  # noqa: E402
from iamrunbook.flows.apply import apply_plan  # noqa: E402
from iamrunbook.sandbox.seed import seed_legacy_account, seed_roles  # noqa: E402

READ_ACTIONS = (
    "sts:GetCallerIdentity",
    "iam:GetAccountAuthorizationDetails",
    "iam:ListUsers",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupsForUser",
    "iam:GetUser",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
)
WRITE_ACTIONS = (
    "iam:CreateRole",
    "iam:AttachRolePolicy",
    "iam:CreatePolicy",
    "iam:CreateUser",
    "iam:TagUser",
    "iam:AttachUserPolicy",
    "iam:DetachUserPolicy",
)

SEED = 20240611
DEFAULT_USERS = (100, 1000, 5000)
DEFAULT_APPLY_SIZES = (10, 100)
CHAIN_TARGET_SECONDS = 20.0
CHAIN_OK = (0, 2)  # `iamrunbook run` exit codes: converged, or plan only with changes pending
BASELINE_RATIO = 5  # inventory + plan at most 1/5 of baseline (a) ...
RATIO_USERS = 5000  # ... for 5,000 users
ROLE_KEYS = tuple(DEFAULT_ROLES)
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's account
#: moto's fake credentials: not a secret, they open nothing but the local server.
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
READ_PREFIXES = ("Get", "List")
#: role key -> the AWS-managed policy that gives the role its permissions
ROLE_PERMISSIONS = {
    "admin": "AdministratorAccess",
    "data_engineer": "AmazonS3ReadOnlyAccess",
    "infrastructure_admin": "PowerUserAccess",
}
AWS_MANAGED_ARN = "arn:aws:iam::aws:policy/"
EXAMPLE_PARAMS = REPO / "parameters" / "example.yaml"
RUNNER = REPO / "iamrunbook" / "runner.py"

INVENTORY_EQUAL = "inventory+plan (spec = account)"
INVENTORY_DIFFERENT = "inventory+plan (spec differs)"
BASELINE_MANUAL = "baseline a: per-user lists"
BASELINE_TERRAFORM = "baseline b: terraform refresh"
CHAIN = "chain 01-04 plan-only"


# --- the population -------------------------------------------------------------------------------
def make_population(users: int, seed: int = SEED) -> dict[str, dict]:
    """`iam_users` for U users, each holding 1-3 role keys; the same U and seed give the same mapping."""
    rng = random.Random(seed)
    mapping = {}
    for i in range(users):
        keys = set(rng.sample(ROLE_KEYS, rng.randint(1, len(ROLE_KEYS))))
        mapping[f"user-{i:05d}"] = {"description": f"Benchmark user {i}", "roles": _ordered(keys)}
    return mapping


def _ordered(keys: set[str]) -> list[str]:
    return [k for k in ROLE_KEYS if k in keys]


def attachment_count(mapping: Mapping[str, dict]) -> int:
    return sum(len(entry["roles"]) for entry in mapping.values())


def with_changes(mapping: Mapping[str, dict], k: int, label: str, seed: int = SEED) -> dict[str, dict]:
    """A copy of `mapping` whose plan against an account matching `mapping` has exactly `k` changes.

    Kinds of change: a new user with one role (create_user + attach), a role granted (tag_user for the
    Roles tag + attach), a role removed (tag_user + detach), a description changed (tag_user). Every
    user is touched at most once; `label` keeps new names unique across calls.
    """
    if k < 1:
        raise ValueError("k counts changes, from 1")
    rng = random.Random(f"{seed}-{label}-{k}")
    changed = {name: {"description": e["description"], "roles": list(e["roles"])} for name, e in mapping.items()}
    each = k // 8  # new users, grants and removals cost 2 changes each; descriptions take the rest
    names = list(mapping)
    rng.shuffle(names)
    gainers = [n for n in names if len(mapping[n]["roles"]) < len(ROLE_KEYS)][:each]
    losers = [n for n in names if len(mapping[n]["roles"]) > 1 and n not in gainers][:each]
    retagged = [n for n in names if n not in gainers and n not in losers][: k - 6 * each]
    if len(gainers) < each or len(losers) < each or len(retagged) < k - 6 * each:
        raise ValueError(f"{len(mapping)} users are too few for {k} changes")
    for name in gainers:
        missing = [key for key in ROLE_KEYS if key not in changed[name]["roles"]]
        changed[name]["roles"] = _ordered({*changed[name]["roles"], rng.choice(missing)})
    for name in losers:
        roles = changed[name]["roles"]
        roles.remove(rng.choice(roles))
    for name in retagged:
        changed[name]["description"] += f" changed {label}"
    for j in range(each):
        changed[f"new-{label}-{j:04d}"] = {"description": f"New user {j}", "roles": [rng.choice(ROLE_KEYS)]}
    return changed


def spec_of(mapping: Mapping[str, dict]) -> Spec:
    return load_spec(iam_users=mapping, roles=DEFAULT_ROLES)


# --- the server, in a child process ---------------------------------------------------------------
def _install_aws_paging() -> None:
    """Make moto page GetAccountAuthorizationDetails and ListUsers like AWS (Marker, MaxItems <= 1000)."""
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    def paged(original: Callable, lists: tuple[str, ...]) -> Callable:
        def handler(self: Any) -> ActionResult:
            result = original(self).result
            items = [(key, item) for key in lists for item in result[key]]
            start = int(self._get_param("Marker") or 0)
            size = max(1, min(int(self._get_param("MaxItems") or 100), 1000))
            page = items[start : start + size]
            out: dict[str, Any] = {key: [item for k, item in page if k == key] for key in lists}
            out["IsTruncated"] = start + size < len(items)
            if out["IsTruncated"]:
                out["Marker"] = str(start + size)
            return ActionResult(out)

        return handler

    details = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
    IamResponse.get_account_authorization_details = paged(IamResponse.get_account_authorization_details, details)
    IamResponse.list_users = paged(IamResponse.list_users, ("Users",))


def _seed_backend(users: list[list]) -> None:
    """Users, tags and attachments straight into moto's IAM backend (seeding only, never measured)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID]["aws"]
    for name, tags, arns in users:
        user = backend.create_user(REGION, name, "/", [{"Key": k, "Value": v} for k, v in tags.items()])
        for arn in arns:
            backend.get_policy(arn).attach_to(user)


def serve(load_aws_managed_policies: bool) -> int:
    """The child process: moto on 127.0.0.1, answering seed requests as JSON lines on stdin/stdout."""
    import logging

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true" if load_aws_managed_policies else "false"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    _install_aws_paging()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(json.dumps({"endpoint": f"http://{host}:{port}"}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "stop":
            break
        started = time.perf_counter()
        _seed_backend(request["users"])
        print(json.dumps({"ok": True, "seconds": time.perf_counter() - started}), flush=True)
    server.stop()
    return 0


class MotoProcess:
    """A moto server in a child process: its own CPU and GIL, and none of its memory in our tracemalloc."""

    def __init__(self, load_aws_managed_policies: bool = True) -> None:
        self.load_aws_managed_policies = load_aws_managed_policies
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", str(int(load_aws_managed_policies))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.endpoint: str = self._reply()["endpoint"]

    def _reply(self) -> dict:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the moto server process ended (exit code {self._proc.wait()})")
        return json.loads(line)

    def seed_users(self, users: list[list]) -> float:
        self._proc.stdin.write(json.dumps({"op": "seed_users", "users": users}) + "\n")
        self._proc.stdin.flush()
        return self._reply()["seconds"]

    def env(self) -> dict[str, str]:
        """What points boto3 in a subprocess (and its notebook kernels) at this server, and nowhere else."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> MotoProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- counting calls -------------------------------------------------------------------------------
class CallCounter:
    """API calls (before-call), HTTP attempts (before-send) and time in calls, by 'service:Operation'.

    Thread-safe: the Terraform replay calls from several threads.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._lock = threading.Lock()

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._on_call)
        client.meta.events.register("before-send", self._on_send)
        client.meta.events.register("after-call", self._on_done)
        return client

    @staticmethod
    def _key(event_name: str) -> str:
        _, service, operation = event_name.split(".", 2)
        return f"{service}:{operation}"

    # Handlers return None: a value from before-call or before-send would replace the call itself.
    def _on_call(self, event_name: str, context: dict, **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        with self._lock:
            self.calls[self._key(event_name)] += 1

    def _on_send(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.attempts[self._key(event_name)] += 1

    def _on_done(self, event_name: str, context: dict, **_: Any) -> None:
        elapsed = time.perf_counter() - context.get("bench_started", time.perf_counter())
        with self._lock:
            self.seconds[self._key(event_name)] += elapsed

    def snapshot(self) -> tuple[Counter, Counter, Counter]:
        with self._lock:
            return Counter(self.calls), Counter(self.attempts), Counter(self.seconds)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.attempts.clear()
            self.seconds.clear()


def is_read(key: str) -> bool:
    return key.split(":", 1)[1].startswith(READ_PREFIXES)


@dataclass
class Clients:
    iam: Any
    sts: Any
    counter: CallCounter


def connect(endpoint: str) -> Clients:
    """IAM and STS clients for the server, with the runbook's retry config, their calls counted."""
    session = boto3.Session(region_name=REGION, **FAKE_CREDENTIALS)
    counter = CallCounter()
    iam = counter.watch(session.client("iam", endpoint_url=endpoint, config=CLIENT_CONFIG))
    sts = counter.watch(session.client("sts", endpoint_url=endpoint, config=CLIENT_CONFIG))
    return Clients(iam, sts, counter)


# --- seeding --------------------------------------------------------------------------------------
def seed_account(server: MotoProcess, clients: Clients, mapping: Mapping[str, dict]) -> float:
    """Roles and policies over HTTP, users and attachments through the backend; returns seconds.

    Each role also gets an AWS-managed permissions policy, as roles in real accounts have, when the
    server holds them: the inventory then makes its second sweep, for the AWS-managed policies in use.
    """
    started = time.perf_counter()
    seed_roles(clients.iam, DEFAULT_ROLES, account_id=ACCOUNT_ID)
    if server.load_aws_managed_policies:
        for key, role in DEFAULT_ROLES.items():
            clients.iam.attach_role_policy(RoleName=role, PolicyArn=AWS_MANAGED_ARN + ROLE_PERMISSIONS[key])
    arns = {}
    for key, role in DEFAULT_ROLES.items():
        name = policy_name(role)
        clients.iam.create_policy(
            PolicyName=name,
            PolicyDocument=json.dumps(policy_document(ACCOUNT_ID, role)),
            Description=policy_description(role),
        )
        arns[key] = policy_arn(ACCOUNT_ID, name)
    users = [
        [name, user_tags(name, e["description"], tuple(e["roles"])), [arns[k] for k in e["roles"]]]
        for name, e in mapping.items()
    ]
    server.seed_users(users)
    clients.counter.clear()
    return time.perf_counter() - started


# --- what is measured -----------------------------------------------------------------------------
@dataclass
class Row:
    users: int
    scenario: str
    calls: Counter = field(default_factory=Counter)
    attempts: Counter = field(default_factory=Counter)
    #: seconds spent inside calls, by operation (summed over threads: may exceed `seconds`)
    call_seconds: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    peak_mib: float | None = None
    changes: int | None = None
    exit_code: int | None = None
    note: str = ""

    @property
    def read_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if is_read(op))

    @property
    def mutating_calls(self) -> int:
        return sum(n for op, n in self.calls.items() if not is_read(op))

    @property
    def retries(self) -> int:
        return sum(self.attempts.values()) - sum(self.calls.values())

    def by_operation(self) -> str:
        return " ".join(f"{op}={n}" for op, n in sorted(self.calls.items()))

    def seconds_by_operation(self) -> str:
        return " ".join(f"{op}={s:.3f}" for op, s in sorted(self.call_seconds.items()))


def inventory_and_plan(clients: Clients, spec: Spec) -> Plan:
    """The runbook's read path: one caller-identity call, the paginated sweep, then a pure plan."""
    return make_plan(spec, read_inventory(clients.iam, clients.sts))


def baseline_manual(clients: Clients) -> dict[str, dict]:
    """Baseline (a): what a hand-written runbook does, one pair of list calls per user."""
    found = {}
    for user in paginate(clients.iam, "list_users", "Users"):
        name = user["UserName"]
        found[name] = {
            "attached": [
                p["PolicyArn"]
                for p in paginate(clients.iam, "list_attached_user_policies", "AttachedPolicies", UserName=name)
            ],
            "groups": [g["GroupName"] for g in paginate(clients.iam, "list_groups_for_user", "Groups", UserName=name)],
        }
    return found


def baseline_terraform(clients: Clients, mapping: Mapping[str, dict], parallelism: int = 10) -> int:
    """Baseline (b): the reads the AWS provider makes to refresh a state holding `mapping`.

    aws_iam_user: GetUser; aws_iam_policy: GetPolicy + GetPolicyVersion (the default version);
    aws_iam_user_policy_attachment: ListAttachedUserPolicies on its user, looking for its ARN;
    the provider itself: one sts:GetCallerIdentity first. Resources refresh `parallelism` at a time,
    as `terraform plan` does (its -parallelism defaults to 10). Returns the attachments it found.
    """
    iam = clients.iam

    def user(name: str) -> int:
        iam.get_user(UserName=name)
        return 0

    def policy(role: str) -> int:
        found = iam.get_policy(PolicyArn=policy_arn(ACCOUNT_ID, policy_name(role)))["Policy"]
        iam.get_policy_version(PolicyArn=found["Arn"], VersionId=found["DefaultVersionId"])
        return 0

    def attachment(name: str, key: str) -> int:
        arn = policy_arn(ACCOUNT_ID, policy_name(DEFAULT_ROLES[key]))
        attached = paginate(iam, "list_attached_user_policies", "AttachedPolicies", UserName=name)
        return int(any(p["PolicyArn"] == arn for p in attached))

    refreshes = [partial(user, name) for name in mapping]
    refreshes += [partial(policy, role) for role in DEFAULT_ROLES.values()]
    refreshes += [partial(attachment, name, key) for name, entry in mapping.items() for key in entry["roles"]]
    clients.sts.get_caller_identity()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        return sum(pool.map(lambda refresh: refresh(), refreshes))


def measure(
    users: int, scenario: str, clients: Clients, work: Callable[[], Any], *, repeat: int = 1, memory: bool = False
) -> tuple[Row, Any]:
    """Run `work` `repeat` times (median wall time), plus once under tracemalloc if `memory`.

    Calls must be the same on every run; the row keeps those of the first.
    """
    row = Row(users, scenario)
    times = []
    result = None
    for attempt in range(repeat):
        clients.counter.clear()
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
        if attempt == 0:
            row.calls, row.attempts, row.call_seconds = clients.counter.snapshot()
        elif clients.counter.calls != row.calls:
            raise AssertionError(f"{scenario}: calls changed between runs: {row.calls} vs {clients.counter.calls}")
    row.seconds = statistics.median(times)
    if memory:
        tracemalloc.start()
        try:
            work()
            row.peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    clients.counter.clear()
    return row, result


def measure_apply(users: int, clients: Clients, mapping: Mapping[str, dict], k: int) -> tuple[Row, dict]:
    """Plan K changes against the account (not counted), then apply them (counted)."""
    target = with_changes(mapping, k, label=f"k{k}")
    plan = inventory_and_plan(clients, spec_of(target))
    if len(plan.changes) != k:
        raise AssertionError(f"the plan for K={k} has {len(plan.changes)} changes: {plan.summary_line()}")
    row, result = measure(users, f"apply K={k}", clients, lambda: apply_plan(clients.iam, plan))
    row.changes = len(result.done)
    kinds = Counter(c.kind for c in plan.changes)
    row.note = " ".join(f"{kind}={n}" for kind, n in sorted(kinds.items()))
    return row, target


def bench_users(
    users: int,
    *,
    repeat: int,
    apply_sizes: tuple[int, ...],
    parallelism: int = 10,
    load_aws_managed_policies: bool = True,
    echo: Callable[[str], None] = print,
) -> list[Row]:
    """Every measurement for one U, on one fresh server."""
    mapping = make_population(users)
    with MotoProcess(load_aws_managed_policies) as server:
        clients = connect(server.endpoint)
        seeded = seed_account(server, clients, mapping)
        echo(f"U={users}: seeded {users} users, {attachment_count(mapping)} attachments in {seeded:.1f}s")
        rows = []

        spec = spec_of(mapping)
        row, plan = measure(
            users, INVENTORY_EQUAL, clients, lambda: inventory_and_plan(clients, spec), repeat=repeat, memory=True
        )
        if not plan.is_empty:
            raise AssertionError(f"the spec equal to the account must plan nothing: {plan.summary_line()}")
        row.changes = 0
        rows.append(row)

        differs = spec_of(with_changes(mapping, max(8, users // 20), label="diff"))
        row, plan = measure(
            users,
            INVENTORY_DIFFERENT,
            clients,
            lambda: inventory_and_plan(clients, differs),
        )  # its calls and plan are the point; timed once, memory as above (the same sweep)
        row.changes = len(plan.changes)
        rows.append(row)

        row, found = measure(users, BASELINE_MANUAL, clients, lambda: baseline_manual(clients))
        if len(found) != users:
            raise AssertionError(f"baseline (a) saw {len(found)} users, not {users}")
        rows.append(row)

        row, found = measure(
            users, BASELINE_TERRAFORM, clients, lambda: baseline_terraform(clients, mapping, parallelism)
        )
        row.note = f"{parallelism} refreshes at a time"
        if found != attachment_count(mapping):
            raise AssertionError(f"baseline (b) found {found} of {attachment_count(mapping)} attachments")
        rows.append(row)

        current = mapping
        for k in apply_sizes:
            row, current = measure_apply(users, clients, current, k)
            rows.append(row)
        if apply_sizes:
            after = inventory_and_plan(clients, spec_of(current))
            if not after.is_empty:
                raise AssertionError(f"apply did not converge: {after.summary_line()}")
        for row in rows:
            echo(f"  {row.scenario:<32} {sum(row.calls.values()):>6} calls {row.seconds:>8.2f}s")
        return rows


# --- the chain ------------------------------------------------------------------------------------
def runner_command() -> list[str]:
    script = Path(sys.executable).parent / "iamrunbook"
    if script.exists():
        return [str(script)]
    found = shutil.which("iamrunbook")
    return [found] if found else [sys.executable, "-m", "iamrunbook"]


def bench_chain(out: Path, *, load_aws_managed_policies: bool = True) -> Row:
    """`iamrunbook run` (01 -> 04, plan only) on the example spec against a legacy account, timed.

    The run's own output goes to `out/chain.log`; its run folder to a scratch folder.
    """
    row = Row(0, CHAIN)
    if not RUNNER.exists():
        row.note = "not run: iamrunbook/runner.py is not there yet"
        row.seconds = math.nan
        return row
    with MotoProcess(load_aws_managed_policies) as server, tempfile.TemporaryDirectory(prefix="bench-") as runs:
        clients = connect(server.endpoint)
        seed_legacy_account(clients.iam, account_id=ACCOUNT_ID)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(server.env())
        command = [*runner_command(), "run", "-f", str(EXAMPLE_PARAMS), "--out", runs]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        row.seconds = time.perf_counter() - started
    log = out / "chain.log"
    log.write_text(
        f"$ {' '.join(command)}\nexit code {done.returncode}\n\n{done.stdout}\n--- stderr ---\n{done.stderr}",
        encoding="utf-8",
    )
    row.exit_code = done.returncode
    # 0: the account matches the spec; 2: plan only, changes pending (what a legacy account gives).
    row.note = f"exit code {done.returncode}" + ("" if done.returncode in CHAIN_OK else f"; see {log}")
    return row


# --- targets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def read_call_limit(users: int) -> int:
    return math.ceil(users / 1000) + 4


def check_targets(rows: list[Row], chain: Row | None) -> list[Target]:
    targets = []
    for row in rows:
        if row.scenario in (INVENTORY_EQUAL, INVENTORY_DIFFERENT):
            limit = read_call_limit(row.users)
            targets.append(
                Target(
                    f"read calls, U={row.users}, {row.scenario}",
                    row.read_calls <= limit and row.mutating_calls == 0,
                    f"{row.read_calls} read calls (limit ceil(U/1000)+4 = {limit}), {row.mutating_calls} mutating",
                )
            )
        if row.scenario.startswith("apply"):
            targets.append(
                Target(
                    f"one mutating call per change, U={row.users}, {row.scenario}",
                    row.mutating_calls == row.changes and row.read_calls == 0,
                    f"{row.changes} changes, {row.mutating_calls} mutating calls, {row.read_calls} reads, "
                    f"{row.retries} retries",
                )
            )
    by_key = {(row.users, row.scenario): row for row in rows}
    ours, theirs = by_key.get((RATIO_USERS, INVENTORY_EQUAL)), by_key.get((RATIO_USERS, BASELINE_MANUAL))
    if ours and theirs:
        targets.append(
            Target(
                f"inventory+plan at most 1/{BASELINE_RATIO} of baseline (a), U={RATIO_USERS}",
                ours.seconds * BASELINE_RATIO <= theirs.seconds,
                f"{ours.seconds:.2f}s vs {theirs.seconds:.2f}s (1/{theirs.seconds / ours.seconds:.0f})",
            )
        )
    else:
        targets.append(
            Target(
                f"inventory+plan vs baseline (a), U={RATIO_USERS}", False, f"not measured: add {RATIO_USERS} to --users"
            )
        )
    if chain is not None:
        targets.append(
            Target(
                f"chain 01-04 plan-only under {CHAIN_TARGET_SECONDS:.0f}s",
                chain.exit_code in CHAIN_OK and chain.seconds < CHAIN_TARGET_SECONDS,
                f"{chain.seconds:.1f}s, {chain.note}",
            )
        )
    return targets


# --- output ---------------------------------------------------------------------------------------
COLUMNS = (
    "users",
    "scenario",
    "read_calls",
    "mutating_calls",
    "http_attempts",
    "seconds",
    "peak_mib",
    "changes",
    "calls_by_operation",
    "call_seconds_by_operation",
    "note",
)


def row_values(row: Row) -> dict[str, Any]:
    return {
        "users": row.users,
        "scenario": row.scenario,
        "read_calls": row.read_calls,
        "mutating_calls": row.mutating_calls,
        "http_attempts": sum(row.attempts.values()),
        "seconds": round(row.seconds, 3),
        "peak_mib": "" if row.peak_mib is None else round(row.peak_mib, 1),
        "changes": "" if row.changes is None else row.changes,
        "calls_by_operation": row.by_operation(),
        "call_seconds_by_operation": row.seconds_by_operation(),
        "note": row.note,
    }


def table(rows: list[Row]) -> str:
    head = f"{'U':>6}  {'scenario':<32} {'reads':>7} {'writes':>7} {'seconds':>9} {'peak MiB':>9} {'changes':>8}"
    lines = [head, "-" * len(head)]
    for row in rows:
        peak = "" if row.peak_mib is None else f"{row.peak_mib:.1f}"
        changes = "" if row.changes is None else str(row.changes)
        users = str(row.users) if row.users else "-"
        lines.append(
            f"{users:>6}  {row.scenario:<32} {row.read_calls:>7} {row.mutating_calls:>7} "
            f"{row.seconds:>9.2f} {peak:>9} {changes:>8}"
        )
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row_values(row))


def write_targets(path: Path, targets: list[Target]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["target", "result", "detail"])
        for t in targets:
            writer.writerow([t.name, "PASS" if t.ok else "FAIL", t.detail])


def plot(path: Path, rows: list[Row]) -> None:
    """Calls and seconds against U, log scales, for inventory + plan and the two baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = (INVENTORY_EQUAL, BASELINE_MANUAL, BASELINE_TERRAFORM)
    fig, (calls_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for scenario in scenarios:
        points = sorted((r.users, sum(r.calls.values()), r.seconds) for r in rows if r.scenario == scenario)
        if not points:
            continue
        us, calls, seconds = zip(*points, strict=True)
        calls_ax.plot(us, calls, marker="o", label=scenario)
        time_ax.plot(us, seconds, marker="o", label=scenario)
    us = sorted({r.users for r in rows if r.users})
    if us:
        calls_ax.plot(
            us,
            [read_call_limit(u) for u in us],
            linestyle=":",
            color="black",
            zorder=3,
            label="target: ceil(U/1000)+4",
        )
    for ax, label in ((calls_ax, "API calls"), (time_ax, "seconds (wall)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("IAM users (U)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    calls_ax.set_title("API calls to read the account")
    time_ax.set_title("Wall time on a local moto server")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the command ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=list(DEFAULT_USERS),
        metavar="U",
        help="account sizes to measure (default: 100 1000 5000)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out", help="output folder")
    parser.add_argument(
        "--apply-sizes",
        type=int,
        nargs="*",
        default=list(DEFAULT_APPLY_SIZES),
        metavar="K",
        help="plan sizes for the apply measurement (default: 10 100)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of inventory + plan (median)")
    parser.add_argument(
        "--parallelism", type=int, default=10, help="baseline (b): refreshes at a time, as terraform -parallelism"
    )
    parser.add_argument(
        "--no-aws-managed-policies",
        action="store_true",
        help="a quicker, less real server: no AWS-managed policies, so no second sweep",
    )
    parser.add_argument("--no-chain", action="store_true", help="skip the `iamrunbook run` chain")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2:3] != ["0"])
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows: list[Row] = []
    for users in args.users:
        rows += bench_users(
            users,
            repeat=args.repeat,
            apply_sizes=tuple(args.apply_sizes),
            parallelism=args.parallelism,
            load_aws_managed_policies=not args.no_aws_managed_policies,
        )
    chain = None
    if not args.no_chain:
        chain = bench_chain(args.out, load_aws_managed_policies=not args.no_aws_managed_policies)
        print(f"  {CHAIN:<32} {chain.seconds:>8.2f}s  {chain.note}")
    all_rows = rows + ([chain] if chain else [])
    targets = check_targets(rows, chain)
    print()
    print(table(all_rows))
    print()
    for target in targets:
        print(target.line())
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    write_csv(args.out / "results.csv", all_rows)
    write_targets(args.out / "targets.csv", targets)
    plot(args.out / "bench.png", rows)
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'targets.csv'}, {args.out / 'bench.png'}")
    return 0 if all(t.ok for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
