"""An embedded AWS for the demo and the tests: moto, behind a middleware that behaves like real AWS.

moto accepts much that AWS refuses (a user named ``bad name!``, tag values with commas, deleting a policy
that is still attached). Code that only ever met a lenient fake breaks in a real account, so this server
refuses what AWS refuses. It also records every call (never a secret value), injects faults on demand
(throttling, 5xx) and runs callbacks after each mutating call, so tests can check invariants mid-run.

It answers IAM, STS, S3 (REST calls named by their operation), Organizations, CloudTrail's LookupEvents
and Identity Center (`identity_center`), for many accounts at once: a request acts in the account its access
key belongs to and AssumeRole is allowed only where AWS would allow it. It can be as slow as AWS and throttle
like it (`latency_ms`, `max_tps`). It listens on 127.0.0.1 only; kernels reach it through `env()`.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from iamrunbook.base.log import logger
from iamrunbook.sandbox import account_state
from iamrunbook.sandbox.accounts import Accounts
from iamrunbook.sandbox.assume import assume_role_check
from iamrunbook.sandbox.authorize import authorization_refusal
from iamrunbook.sandbox.calls import ACCOUNT_ID, REGION, Call, Fault, default_message
from iamrunbook.sandbox.clock import Clock
from iamrunbook.sandbox.cloudtrail import LookupRefused, lookup_events, seeded_call
from iamrunbook.sandbox.credentials import credential_report_result, login_profile_result, note_login_profile
from iamrunbook.sandbox.identity import ACCOUNT_HEADER, Caller, identify, invalid_credentials
from iamrunbook.sandbox.identity_center import IdentityCenter
from iamrunbook.sandbox.pacing import Pacer, Pacing, throttle_error
from iamrunbook.sandbox.rules import refusal, validation_refusal
from iamrunbook.sandbox.s3 import object_retention
from iamrunbook.sandbox.wire import (
    Request,
    Response,
    call_app,
    describe,
    error_code,
    error_response,
    json_response,
    query_response,
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


class EmbeddedAws:
    """moto on 127.0.0.1:<free port>, as strict as real AWS, with a call log, faults, hooks and pacing.

    Hooks (`on_mutation`) run in the server's request thread after a successful mutating call, before
    its response is sent. From a hook, read the account either through `client(service, internal=True)`
    (requests the log, faults, pacing and hooks ignore) or directly from `iam_backend()`. A plain client
    works for reads too, logged like any other (a hook's own mutating call would wait for its turn: use
    `internal`). Mutating calls reach moto one at a time, each followed by its hooks, so under concurrent
    clients too every hook sees exactly the account its call left. An exception in a hook is kept in
    `hook_errors` (the client's call still succeeds) and `raise_hook_errors()` re-raises it.

    `latency_ms` (+ random 0..`jitter_ms`) delays each answered call and `max_tps` throttles past a rate
    (see `pacing`); `pace_reads=False` paces mutating calls only. `set_pacing()`/`paced()` change them
    at runtime; `reset()` restores the constructor's. One server hosts many accounts (see `identity`).
    """

    def __init__(
        self,
        *,
        load_aws_managed_policies: bool = True,
        strict: bool = True,
        latency_ms: float = 0,
        jitter_ms: float = 0,
        max_tps: float | None = None,
        pace_reads: bool = True,
    ) -> None:
        self.load_aws_managed_policies = load_aws_managed_policies
        self.strict = strict
        self._default_pacing = Pacing(latency_ms, jitter_ms, max_tps, pace_reads)
        self._pacer = Pacer(self._default_pacing)
        self._accounts = Accounts(load_aws_managed_policies)
        self.identity_center = IdentityCenter(self._accounts.backend)  # settle_seconds: how async it is
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._moto_app: Callable | None = None
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._calls: list[Call] = []
        self._seeded: list[Call] = []
        self._revoked: set[str] = set()
        self._faults: list[Fault] = []
        self._hooks: list[Callable[[Call], None]] = []
        self._turn = threading.Lock()  # held by a mutating call from moto through its hooks
        self._hook_errors: list[BaseException] = []
        self.clock = Clock()  # aws:CurrentTime; tests set it (`aws.clock.set(when)`), reset() restores the real one

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
        """Empty every account (moto's reset); clear faults, calls, seeded events, hooks; default pacing."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own 127.0.0.1
            response.read()
        self._accounts.reset()
        self._accounts.backend(ACCOUNT_ID)
        self.identity_center.reset()
        self._pacer.configure(**vars(self._default_pacing))
        self._pacer.throttled = 0
        self.clock.set(None)
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._seeded.clear()
            self._revoked.clear()
            self._hooks.clear()
            self._hook_errors.clear()

    def iam_backend(self, account_id: str | None = None):
        """moto's IAM backend for an account (default: the main one): the state behind the server, in-process."""
        return self._accounts.backend(account_id)

    def client(
        self,
        service: str,
        *,
        account_id: str | None = None,
        internal: bool = False,
        credentials: Mapping[str, Any] | None = None,
    ):
        """A boto3 client for this server (standard retries, 5 attempts).

        `account_id`: act in that account as its administrator (moto's account header, fake key).
        `credentials`: sign with these instead, e.g. `create_access_key()["AccessKey"]` (a user's own key)
        or `assume_role()["Credentials"]`; the server then acts as that user or role session.
        `internal=True`: the request is unseen by the log, faults, pacing and hooks.
        """
        keys = {"aws_access_key_id": FAKE_ACCESS_KEY_ID, "aws_secret_access_key": FAKE_SECRET_ACCESS_KEY}
        if credentials is not None:
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials.get("SessionToken"),
            }
        client = boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
            **keys,
        )
        headers = {INTERNAL_HEADER: "1"} if internal else {}
        if account_id is not None:
            headers[ACCOUNT_HEADER] = account_id
        if headers:

            def mark(request: Any, **_: Any) -> None:
                for name, value in headers.items():
                    request.headers[name] = value

            client.meta.events.register("before-sign", mark)
        return client

    # -- pacing

    @property
    def pacing(self) -> Pacing:
        """The latency and rate limit in force."""
        return self._pacer.pacing

    @property
    def throttled(self) -> int:
        """How many calls the rate limit has throttled since the last reset."""
        return self._pacer.throttled

    def set_pacing(self, **changes: Any) -> Pacing:
        """Change latency_ms, jitter_ms, max_tps and/or reads now (`set_pacing(max_tps=20)`); returns the old."""
        return self._pacer.configure(**changes)

    @contextmanager
    def paced(self, **changes: Any) -> Iterator[Pacing]:
        """`with aws.paced(latency_ms=100):` ... the previous pacing is back afterwards."""
        previous = self.set_pacing(**changes)
        try:
            yield self.pacing
        finally:
            self._pacer.configure(**vars(previous))

    # -- seeded history

    def record_event(self, action: str, *, service: str = "sts", user: str | None = None, principal: str | None = None,
                     params: Mapping[str, Any] | None = None, when: datetime | None = None, days_ago: float = 0,
                     account_id: str | None = None) -> Call:  # fmt: skip
        """Add a back-dated CloudTrail event: not a call (not in `calls`, no hooks, no moto state).

        `user` names an IAM user of the account as the caller; `principal` any ARN (default: the fake
        key's). E.g. `record_event("AssumeRole", user="bob", params={"RoleArn": arn}, days_ago=30)`.
        """
        account_id = account_id or ACCOUNT_ID
        if user is not None and principal is None:
            found = self.iam_backend(account_id).users.get(user)
            principal = found.arn if found is not None else f"arn:aws:iam::{account_id}:user/{user}"
        moment = when or datetime.now(timezone.utc) - timedelta(days=days_ago)
        call = seeded_call(next(self._seq), service, action, params, moment, account_id, principal or "")
        with self._lock:
            self._seeded.append(call)
        return call

    @property
    def seeded_events(self) -> list[Call]:
        """The back-dated events `record_event` added since the last reset, oldest added first (a copy)."""
        return self._copy(self._seeded)

    def _copy(self, items: list) -> list:
        with self._lock:
            return list(items)

    # -- call log

    @property
    def calls(self) -> list[Call]:
        """Every call answered since the last reset/clear, oldest first (a copy)."""
        return self._copy(self._calls)

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
        return self._copy(self._hook_errors)

    def raise_hook_errors(self) -> None:
        """Re-raise the first exception a hook raised (e.g. a broken invariant), then forget them all."""
        with self._lock:
            errors, self._hook_errors[:] = list(self._hook_errors), []
        if errors:
            raise errors[0]

    def _run_hooks(self, call: Call) -> None:
        """In the call's turn (`_wsgi`): no other mutating call reaches moto until every hook has run."""
        for hook in self._copy(self._hooks):
            try:
                hook(call)
            except BaseException as exc:  # noqa: BLE001 - kept and re-raised in the test's thread
                _log.error("on_mutation hook failed after %s: %r", call.action, exc)
                with self._lock:
                    self._hook_errors.append(exc)

    # -- the WSGI middleware in front of moto

    def _refusal(self, request: Request, caller: Caller) -> tuple[str, str, int] | None:
        """What real AWS would refuse and moto would not: bad credentials, bad parameters, the IAM rules."""
        if not caller.valid:
            return invalid_credentials(request.protocol, request.service)
        if request.problems:
            return validation_refusal(request.problems)
        if (denied := authorization_refusal(caller, request.service, request.action, request.params,
                                            self.iam_backend, self.identity_center.tags_of)) is not None:  # fmt: skip
            return denied
        if request.service == "iam":
            return refusal(self.iam_backend(caller.account_id), request.action, request.params)
        if request.service == "sts" and request.action == "AssumeRole":
            return assume_role_check(caller, request.params, self.iam_backend, self.clock.now())
        return None

    def _own_answer(self, request: Request, caller: Caller) -> Response | None:
        """Actions the sandbox answers itself, where moto has none or answers unlike AWS."""
        key = (request.service, request.action)
        if key == ("cloudtrail", "LookupEvents"):
            with self._lock:
                history = self._calls + self._seeded
            try:
                return json_response(lookup_events(history, request.params, caller.account_id))
            except LookupRefused as refused:
                return error_response(request, refused.code, str(refused), 400)
        if key == ("s3", "GetObjectRetention"):
            return object_retention(request, caller.account_id)
        if key in account_state.ANSWERS:
            return account_state.answer(request, self.iam_backend(caller.account_id))
        if request.service != "iam" or not isinstance(request.params, dict):
            return None
        backend = self.iam_backend(caller.account_id)
        if key == ("iam", "GetCredentialReport") and backend.credential_report:
            created = self._accounts.created(caller.account_id)
            return query_response(request, credential_report_result(backend, caller.account_id, created))
        if key == ("iam", "GetLoginProfile"):
            user = backend.users.get(request.params.get("UserName") or caller.user_name or "")
            if user is not None and user.password is not None:
                return query_response(request, login_profile_result(user))
        return None

    def _paced(self, request: Request) -> tuple[Response | None, bool]:
        """Before moto: past the rate, throttled at once; else the latency, then a due fault (injected)."""
        if not self._pacer.admit(request.mutating):
            return error_response(request, *throttle_error(request.service)), False
        self._pacer.delay(request.mutating)
        fault = self._due_fault(request)
        if fault is None:
            return None, False
        return error_response(request, fault.code, fault.message, fault.status), True

    def _answer(self, request: Request, environ: dict, caller: Caller) -> Response:
        refused = self._refusal(request, caller) if self.strict else None
        if refused is not None:
            return error_response(request, *refused)
        moto = partial(call_app, self._moto_app, request, environ)
        response = self._own_answer(request, caller) or self.identity_center.answer(request, caller.account_id, moto)
        response = response or moto()
        if response.status < 400 and request.service == "iam":
            note_login_profile(self.iam_backend(caller.account_id), request.action, request.params)
            if request.action == "DeleteAccessKey":  # AWS refuses a deleted key; moto forgets it
                self._revoked.add(str(request.params.get("AccessKeyId")))
        return response

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        assert self._moto_app is not None
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._moto_app(environ, start_response)
        started = time.time()
        request = describe(environ, read_body(environ))
        internal = environ.get("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")) == "1"
        caller = identify(environ, self._revoked)
        self.iam_backend(caller.account_id)  # a new account gets AWS's managed policies before moto answers
        response, injected = (None, False) if internal else self._paced(request)
        turn = self._turn if response is None and request.mutating and not internal else nullcontext()
        with turn:  # one mutating call at a time reaches moto and runs the hooks
            response = response or self._answer(request, environ, caller)
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
                    time=datetime.fromtimestamp(started, timezone.utc),
                    account_id=caller.account_id,
                    principal=caller.arn,
                    started=started,
                    ended=time.time(),
                )
                with self._lock:
                    self._calls.append(call)
                if call.ok and call.mutating:
                    self._run_hooks(call)
        start_response(status_line(response.status), response.headers)
        return [response.body]
