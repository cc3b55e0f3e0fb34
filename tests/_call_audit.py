"""A pytest plugin (tests/conftest.py lists it in `pytest_plugins`): every AWS action any embedded server
answers during the test session must be declared, so the runner policy (`iamrunbook permissions`) is
proven against everything the suite makes the runbook do, not only against one scripted run.

Declared means: by a runbook module (`permissions.MODULES`, what the runner policy is built from), by
`seed` (it builds the demo account; not the runbook), or by TEST_SETUP_ACTIONS below (actions only tests
send, to build account states the runbook must cope with or to exercise the server itself). Anything else
fails the session at its end, listing each action and the tests that sent it.

Under pytest-xdist every worker sends the actions its servers answered to the controller, which judges them all.

How calls are seen: EmbeddedAws keeps its call log until `reset()`/`clear_calls()`, so those two are
wrapped to read the log first, and every started server's remaining log is read at the session's end.
That covers the shared server, the demo's own and any a test starts. Only actions botocore knows are
audited: an action no client can call (a hand-made request in the server's own tests) is no permission.
"""

from __future__ import annotations

import functools
import importlib
from collections import defaultdict

import pytest

from iamrunbook.cli import permissions
from iamrunbook.sandbox import EmbeddedAws, seed
from iamrunbook.sandbox.wire import service_model as _service_model

#: Actions only tests send: to build account states (groups, roles holding policies, SSH keys, ...) and to
#: test the strict server's own rules. Keep it short; a runbook action belongs in its module instead.
TEST_SETUP_ACTIONS = frozenset(
    {
        # account states the runbook has to cope with, built by tests
        "iam:PutGroupPolicy",
        "iam:UploadServerCertificate",
        "securityhub:EnableSecurityHub",
        "securityhub:GetFindings",
        "iam:UpdateLoginProfile",
        "iam:UploadSSHPublicKey",
        "iam:UploadSigningCertificate",
        # tests reading back one thing the runbook did (the runbook itself reads with one sweep)
        "iam:GetGroup",
        "iam:GetPolicy",
        "iam:GetRolePolicy",
        "iam:GetUserPolicy",
        "iam:ListAttachedGroupPolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListPolicies",
        "iam:ListPolicyVersions",
        "iam:ListRolePolicies",
        "iam:ListUsers",
        "iam:UpdateAccountPasswordPolicy",
        "iam:UpdateAssumeRolePolicy",
        # the embedded AWS's other services, exercised by its own tests (tests/test_sandbox_*.py)
        "organizations:CreateAccount",
        "organizations:ListAccounts",
        "organizations:ListAccountsForParent",
        "organizations:ListChildren",
        "organizations:ListParents",
        "organizations:ListTagsForResource",
        "s3:CopyObject",
        "s3:CreateBucket",
        "s3:DeleteObject",
        "s3:GetObjectRetention",
        "s3:ListBuckets",
        "s3:ListObjectVersions",
        "s3:PutObjectRetention",
        "sts:AssumeRole",
        # Identity Center as the sandbox answers it (tests/test_sandbox_identity_center.py) and account states
        # with things the runbook never makes (AWS-managed policies and inline policies in a permission set)
        "iam:DeleteRole",
        "iam:TagRole",
        "identitystore:DeleteUser",
        "sso:AttachManagedPolicyToPermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
        "sso:UntagResource",
    }
)

#: grant_via: identity_center's own modules. Their actions are the runbook's, but outside the user and group
#: modes' runner policy (permissions.MODULES builds that one, and must not change); until the runner policy
#: has this mode, the audit counts them here.
CENTER_MODULES = ("aws.center_sweep", "aws.center_mutations")

_seen: dict[str, set[str]] = defaultdict(set)  # "service:Action" -> test node ids that sent it
_servers: list[EmbeddedAws] = []
_last_seq: dict[int, int] = {}
_current = {"test": "<outside any test>"}


def _known(service: str, action: str | None) -> bool:
    model = _service_model(service) if service else None
    return bool(action) and model is not None and action in model.operation_names


def _harvest(server: EmbeddedAws) -> None:
    """Record the calls logged since the last harvest (sequence numbers only grow, across resets too)."""
    last = _last_seq.get(id(server), 0)
    for call in server.calls:
        if call.seq > last and _known(call.service, call.action):
            _seen[f"{call.service}:{call.action}"].add(_current["test"])
        last = max(last, call.seq)
    _last_seq[id(server)] = last


def _read_log_first(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        _harvest(self)
        return method(self, *args, **kwargs)

    return wrapper


def _track(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self not in _servers:
            _servers.append(self)
        return method(self, *args, **kwargs)

    return wrapper


def declared() -> set[str]:
    from iamrunbook.runs.archive import ARCHIVE_OPERATIONS  # the archive's S3 calls, by API name

    runbook = set(permissions.required_actions(apply=True, security_hub_import=True))
    runbook |= {f"s3:{op}" for op in ARCHIVE_OPERATIONS}
    for name in CENTER_MODULES:
        module = importlib.import_module(f"iamrunbook.{name}")
        runbook |= set(module.READ_ACTIONS) | set(module.WRITE_ACTIONS)
    return runbook | set(seed.READ_ACTIONS) | set(seed.WRITE_ACTIONS)


def undeclared() -> dict[str, set[str]]:
    for server in _servers:
        _harvest(server)
    allowed = declared() | TEST_SETUP_ACTIONS
    return {action: tests for action, tests in sorted(_seen.items()) if action not in allowed}


def pytest_configure(config: pytest.Config) -> None:
    EmbeddedAws.reset = _read_log_first(EmbeddedAws.reset)
    EmbeddedAws.clear_calls = _read_log_first(EmbeddedAws.clear_calls)
    EmbeddedAws.start = _track(EmbeddedAws.start)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    for server in _servers:  # calls made before this test (e.g. by the last one's teardown)
        _harvest(server)
    _current["test"] = item.nodeid
    try:
        return (yield)
    finally:
        for server in _servers:
            _harvest(server)
        _current["test"] = "<outside any test>"


#: Under pytest-xdist each worker hands what its servers answered to the controller, which judges the union.
WORKER_OUTPUT = "aws_actions_seen"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """On the xdist controller: a worker's actions, merged."""
    for action, tests in getattr(node, "workeroutput", {}).get(WORKER_OUTPUT, {}).items():
        _seen[action].update(tests)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its exit status is not the session's, the controller judges
        for server in _servers:
            _harvest(server)
        workeroutput[WORKER_OUTPUT] = {action: sorted(tests) for action, tests in _seen.items()}
        return
    missing = undeclared()
    redundant = sorted(TEST_SETUP_ACTIONS & declared())
    if not (missing or redundant):
        return
    lines = ["AWS actions the embedded servers answered that no runbook module, seed or test list declares:"]
    for action, tests in missing.items():
        lines.append(f"  {action}  (sent by {', '.join(sorted(tests)[:3])}{' ...' if len(tests) > 3 else ''})")
    if redundant:
        lines.append(f"TEST_SETUP_ACTIONS lists actions the runbook declares itself: {', '.join(redundant)}")
    lines.append("Declare a runbook action in its module's READ_ACTIONS/WRITE_ACTIONS (tests/_call_audit.py).")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", "undeclared AWS actions: the session fails", red=True)
        reporter.write_line("\n".join(lines), red=True)
    else:
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
