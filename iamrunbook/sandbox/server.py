"""An embedded AWS for the demo and the tests: moto, behind a middleware that behaves like real AWS.

moto accepts much that AWS refuses (a user named ``bad name!``, tag values with commas, deleting a policy
that is still attached). Code that only ever met a lenient fake breaks in a real account, so this server
refuses what AWS refuses. It also records every call (never a secret value), injects faults on demand
(throttling, 5xx) and runs callbacks after each mutating call, so tests can check invariants mid-run.

The server listens on 127.0.0.1 only. Notebook kernels reach it through the environment from `env()`.
moto keeps its state in this process: `iam_backend()` reads it directly.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.config import Config
from moto.core.config import default_user_config
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from ..log import logger
from .calls import ACCOUNT_ID, REGION, Call, Fault, default_message
from .cloudtrail import lookup_events
from .rules import refusal
from .wire import (
    Request,
    Response,
    describe,
    error_code,
    error_response,
    json_response,
    read_body,
    status_line,
)

#: Obviously fake credentials: the embedded server accepts any, real AWS none of these.
FAKE_ACCESS_KEY_ID = "embedded-fake-access-key-id"
FAKE_SECRET_ACCESS_KEY = "embedded-fake-not-a-secret"
#: A request carrying this header is the test's own plumbing: not logged, never faulted, no hooks.
INTERNAL_HEADER = "X-Embedded-Aws-Internal"

_log = logger.getChild("embedded")


# --------------------------------------------------------------------------- the server


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without a log line per request (noise in tests and in the demo)."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


_MOTO_CONFIG_LOCK = threading.Lock()
_AWS_POLICY_TEMPLATES: list[AWSManagedPolicy] = []


def _fresh_aws_managed_policies() -> list[AWSManagedPolicy]:
    """Unattached copies of moto's AWS-managed policies for our account, parsed once per process."""
    if not _AWS_POLICY_TEMPLATES:
        parsed = json.loads(aws_managed_policies_data)
        _AWS_POLICY_TEMPLATES.extend(
            AWSManagedPolicy.from_data(name, ACCOUNT_ID, REGION, data) for name, data in parsed.items()
        )
    fresh = []
    for template in _AWS_POLICY_TEMPLATES:
        policy = copy.copy(template)
        policy.attachment_count = 0
        policy.tags = {}
        policy.versions = [copy.copy(version) for version in template.versions]
        fresh.append(policy)
    return fresh


class EmbeddedAws:
    """moto on 127.0.0.1:<free port>, as strict as real AWS, with a call log, faults and hooks.

    Hooks (`on_mutation`) run in the server's request thread after a successful mutating call, before
    its response is sent. From a hook, read the account either through `client(service, internal=True)`
    (requests the log, faults and hooks ignore) or directly from `iam_backend()`. A plain client works
    too, but its calls are logged like any other. Hooks are not re-entered while one runs; an exception
    in a hook is kept in `hook_errors` (the client's call still succeeds) and `raise_hook_errors()`
    re-raises it.
    """

    def __init__(self, *, load_aws_managed_policies: bool = True, strict: bool = True) -> None:
        self.load_aws_managed_policies = load_aws_managed_policies
        self.strict = strict
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._moto_app: Callable | None = None
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._hooks: list[Callable[[Call], None]] = []
        self._hook_depth = 0
        self._hook_errors: list[BaseException] = []

    # -- lifecycle

    def start(self) -> EmbeddedAws:
        """Serve on 127.0.0.1 on a free port, from an empty account."""
        if self._server is not None:
            return self
        self._moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)
        self._thread.start()
        _log.debug("embedded AWS listening on %s", self.endpoint)
        self.reset()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server socket is bound to."""
        if self._server is None:
            raise RuntimeError("EmbeddedAws is not started")
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def endpoint(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (in this process or a notebook kernel) at this server only.

        The config and credentials files point at the null device so a developer's real profile
        (credential_process, SSO, endpoint overrides) can never be picked up.
        """
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def reset(self) -> None:
        """Empty the account (moto's POST /moto-api/reset); clear faults, call log, hooks, hook errors."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own 127.0.0.1
            response.read()
        self._init_iam_backend()
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._hooks.clear()
            self._hook_errors.clear()

    def _init_iam_backend(self) -> None:
        """Build the account's IAM backend now, with AWS-managed policies if configured.

        moto would rebuild its ~1,600 AWS-managed policies from JSON on every reset (0.2-1 s). Fresh
        copies of one parsed set cost a few milliseconds and start, like moto's, unattached. moto reads
        its own setting from a process-wide config; it is held off only while this backend is built,
        so other moto users in this process are unaffected.
        """
        with _MOTO_CONFIG_LOCK:
            iam_config = default_user_config.setdefault("iam", {})
            before = iam_config.get("load_aws_managed_policies", False)
            iam_config["load_aws_managed_policies"] = False
            try:
                backend = iam_backends[ACCOUNT_ID]["aws"]
            finally:
                iam_config["load_aws_managed_policies"] = before
            if self.load_aws_managed_policies:
                policies = _fresh_aws_managed_policies()
                backend.aws_managed_policies = policies
                backend.managed_policies.update((policy.arn, policy) for policy in policies)

    def iam_backend(self):
        """moto's IAM backend for the account: the state behind the server, read in-process."""
        return iam_backends[ACCOUNT_ID]["aws"]

    def client(self, service: str, *, internal: bool = False):
        """A boto3 client for this server (standard retries). `internal=True`: unseen by log, faults, hooks."""
        client = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )
        if internal:

            def mark(request: Any, **_: Any) -> None:
                request.headers[INTERNAL_HEADER] = "1"

            client.meta.events.register("before-sign", mark)
        return client

    # -- call log

    @property
    def calls(self) -> list[Call]:
        """Every call answered since the last reset/clear, oldest first (a copy)."""
        with self._lock:
            return list(self._calls)

    def mutating_calls(self) -> list[Call]:
        """Calls of actions that change the account, including failed and faulted attempts."""
        return [call for call in self.calls if call.mutating]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- faults

    def inject_fault(
        self,
        action: str | None = None,
        *,
        at: int = 1,
        code: str = "InternalFailure",
        status: int = 500,
        times: int | None = 1,
        message: str | None = None,
    ) -> Fault:
        """Answer the `at`-th matching call from now, and the next `times - 1`, with an AWS error.

        `action` is 'CreateUser' or 'iam:CreateUser'; None matches mutating calls. `times=None` keeps
        failing every matching call from the `at`-th on. Faulted calls never reach moto. Each fault
        counts the matching calls it sees; when several are due, the oldest answers.
        """
        if at < 1 or (times is not None and times < 1):
            raise ValueError("at and times count from 1")
        fault = Fault(action, at, code, status, times, message or default_message(code))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _due_fault(self, request: Request) -> Fault | None:
        chosen = None
        with self._lock:
            for fault in self._faults:
                if fault.matches(request.service, request.action, request.mutating):
                    fault.seen += 1
                    if chosen is None and fault.due():
                        fault.fired += 1
                        chosen = fault
        return chosen

    # -- hooks

    def on_mutation(self, callback: Callable[[Call], None]) -> Callable[[], None]:
        """Run `callback(call)` after each successful mutating call. Returns a function that removes it."""
        with self._lock:
            self._hooks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._hooks:
                    self._hooks.remove(callback)

        return remove

    @property
    def hook_errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._hook_errors)

    def raise_hook_errors(self) -> None:
        """Re-raise the first exception a hook raised (e.g. a broken invariant), then forget them all."""
        with self._lock:
            errors, self._hook_errors[:] = list(self._hook_errors), []
        if errors:
            raise errors[0]

    def _run_hooks(self, call: Call) -> None:
        with self._lock:
            if self._hook_depth or not self._hooks:
                return
            self._hook_depth += 1
            hooks = list(self._hooks)
        try:
            for hook in hooks:
                try:
                    hook(call)
                except BaseException as exc:  # noqa: BLE001 - kept and re-raised in the test's thread
                    _log.error("on_mutation hook failed after %s: %r", call.action, exc)
                    with self._lock:
                        self._hook_errors.append(exc)
        finally:
            with self._lock:
                self._hook_depth -= 1

    # -- the WSGI middleware in front of moto

    def _call_moto(self, request: Request, environ: dict) -> Response:
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list, exc_info: Any = None):
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        assert self._moto_app is not None
        try:
            result = self._moto_app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except NotImplementedError as exc:
            # Not retryable (501), so a caller that copes with a missing feature finds out at once.
            _log.warning("moto does not implement %s:%s", request.service, request.action)
            return error_response(request, "NotImplemented", f"Not implemented by moto: {exc}", 501)
        except Exception as exc:  # noqa: BLE001 - a moto bug answers like an AWS outage, not a traceback
            _log.warning("moto failed on %s:%s: %r", request.service, request.action, exc)
            return error_response(request, "InternalFailure", f"moto failed: {exc!r}", 500)
        return Response(int(captured["status"].split()[0]), captured["headers"], b"".join(chunks))

    def _answer(self, request: Request, environ: dict, internal: bool) -> tuple[Response, bool]:
        fault = None if internal else self._due_fault(request)
        if fault is not None:
            return error_response(request, fault.code, fault.message, fault.status), True
        if self.strict and request.problems:
            count = len(request.problems)
            message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(request.problems)
            return error_response(request, "ValidationError", message, 400), False
        if self.strict and request.service == "iam":
            refused = refusal(self.iam_backend(), request.action, request.params)
            if refused is not None:
                return error_response(request, *refused), False
        if request.service == "cloudtrail" and request.action == "LookupEvents":
            return json_response(lookup_events(self.calls, request.params)), False
        return self._call_moto(request, environ), False

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        assert self._moto_app is not None
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._moto_app(environ, start_response)
        request = describe(environ, read_body(environ))
        internal = environ.get("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")) == "1"
        response, injected = self._answer(request, environ, internal)
        if not internal:
            call = Call(
                seq=next(self._seq),
                service=request.service,
                action=request.action,
                params=request.logged,
                status=response.status,
                error_code=error_code(response),
                injected=injected,
                method=request.method,
            )
            with self._lock:
                self._calls.append(call)
            if call.ok and call.mutating:
                self._run_hooks(call)
        start_response(status_line(response.status), response.headers)
        return [response.body]
