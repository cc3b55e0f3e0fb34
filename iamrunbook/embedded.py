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
import http
import io
import itertools
import json
import os
import re
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache, lru_cache
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import boto3
import regex
from botocore.config import Config
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.model import OperationNotFoundError
from moto.core.config import default_user_config
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from .log import logger

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
#: Obviously fake credentials: the embedded server accepts any, real AWS none of these.
FAKE_ACCESS_KEY_ID = "embedded-fake-access-key-id"
FAKE_SECRET_ACCESS_KEY = "embedded-fake-not-a-secret"
#: A request carrying this header is the test's own plumbing: not logged, never faulted, no hooks.
INTERNAL_HEADER = "X-Embedded-Aws-Internal"
REDACTED = "<redacted>"

#: Action prefixes that only read. Everything else changes the account (STS aside, see `is_mutating`).
READ_PREFIXES = ("Get", "List", "Describe", "Generate", "Simulate", "Lookup", "Search", "Decode", "Head")
#: Services whose calls never change the account: STS only hands out temporary credentials.
READ_ONLY_SERVICES = frozenset({"sts"})
#: Query-protocol services whose parameters are checked against botocore's model like AWS does.
STRICT_SERVICES = frozenset({"iam", "sts"})
#: Parameter names whose values are secrets (lower case substrings), besides `sensitive` model shapes.
SECRET_NAME_PARTS = (
    "password", "secret", "privatekey", "sessiontoken", "securitytoken", "authenticationcode",
    "tokencode", "samlassertion", "webidentitytoken",
)  # fmt: skip

_log = logger.getChild("embedded")


# --------------------------------------------------------------------------- records


def is_mutating(service: str, action: str | None, method: str = "POST") -> bool:
    """True for a call that changes the account: not a read, not an STS credential call.

    Generate* (credential report, last-accessed report) starts a report job but changes no entity, so
    it counts as a read. A REST call without an action name is judged by its HTTP method.
    """
    if service in READ_ONLY_SERVICES:
        return False
    if not action:
        return method.upper() not in ("GET", "HEAD", "OPTIONS")
    return not action.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class Call:
    """One request the server answered, with secret parameter values replaced by `REDACTED`."""

    seq: int
    service: str
    action: str | None
    params: Mapping[str, Any] = field(hash=False)
    status: int
    error_code: str | None = None
    injected: bool = False
    method: str = "POST"
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc), compare=False)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def mutating(self) -> bool:
        return is_mutating(self.service, self.action, self.method)


@dataclass
class Fault:
    """An injected error: the `at`-th matching call and the next `times - 1` ones (None: all after)."""

    action: str | None
    at: int
    code: str
    status: int
    times: int | None
    message: str
    seen: int = 0
    fired: int = 0

    def matches(self, service: str, action: str | None, mutating: bool) -> bool:
        if self.action is None:
            return mutating
        return self.action in (action, f"{service}:{action}")

    def due(self) -> bool:
        """Called after counting the current call in `seen`."""
        if self.seen < self.at:
            return False
        return self.times is None or self.seen < self.at + self.times


def _default_message(code: str) -> str:
    if code in ("Throttling", "ThrottlingException"):
        return "Rate exceeded (injected by EmbeddedAws)"
    return f"{code} (injected by EmbeddedAws)"


# --------------------------------------------------------------------------- botocore models


@cache
def _botocore_session():
    import botocore.session

    return botocore.session.get_session()


@lru_cache(maxsize=64)
def _service_model(signing_name: str):
    """botocore's model for a service by its signing name, or None when botocore doesn't know it."""
    try:
        return _botocore_session().get_service_model(signing_name)
    except (UnknownServiceError, DataNotFoundError):
        return None


@cache
def _pattern(java_pattern: str):
    """Compile an AWS model pattern. Java's \\w and \\d are ASCII-only; the `regex` package has \\p{L}."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(java_pattern):
        char = java_pattern[i]
        if char == "\\" and i + 1 < len(java_pattern):
            nxt = java_pattern[i + 1]
            if nxt in "wd":
                body = "A-Za-z0-9_" if nxt == "w" else "0-9"
                out.append(body if in_class else f"[{body}]")
            else:
                out.append(java_pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return regex.compile("".join(out))


_MISSING = object()


def _scalar(shape, raw: str) -> Any:
    if shape.type_name in ("integer", "long"):
        try:
            return int(raw)
        except ValueError:
            return raw
    if shape.type_name == "boolean" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def _indices(flat: Mapping[str, str], prefix: str) -> list[int]:
    found = set()
    for key in flat:
        if key.startswith(prefix + "."):
            head = key[len(prefix) + 1 :].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _from_query(shape, flat: Mapping[str, str], prefix: str) -> Any:
    """Rebuild the value botocore serialized under `prefix` (Tags.member.1.Key ...), or _MISSING."""
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = _from_query(member, flat, f"{prefix}.{key}" if prefix else key)
            if value is not _MISSING:
                out[name] = value
        return out if out or not prefix else _MISSING
    if kind == "list":
        if shape.serialization.get("flattened"):
            item_prefix = prefix
        else:
            item_prefix = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        indices = _indices(flat, item_prefix)
        if not indices:
            return [] if prefix in flat else _MISSING
        items = (_from_query(shape.member, flat, f"{item_prefix}.{i}") for i in indices)
        return [item for item in items if item is not _MISSING]
    if kind == "map":
        entry = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out = {}
        for i in _indices(flat, entry):
            key = flat.get(f"{entry}.{i}.{key_name}")
            if key is not None:
                out[key] = _from_query(shape.value, flat, f"{entry}.{i}.{value_name}")
        return out if out else _MISSING
    if prefix not in flat:
        return _MISSING
    return _scalar(shape, flat[prefix])


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _violations(shape, value: Any, path: str) -> list[str]:
    """AWS-worded constraint violations of one value ('Value ... at 'tags.1.member.value' ...')."""
    problems: list[str] = []
    meta = shape.metadata
    kind = shape.type_name
    shown = "Value" if meta.get("sensitive") or not isinstance(value, str) else f"Value '{value}'"
    where = f"{shown} at '{path}' failed to satisfy constraint: Member must"
    if kind == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if name not in value:
                sub = f"{path}.{_camel(name)}" if path else _camel(name)
                problems.append(f"Value null at '{sub}' failed to satisfy constraint: Member must not be null")
        for name, item in value.items():
            sub = f"{path}.{_camel(name)}" if path else _camel(name)
            problems.extend(_violations(shape.members[name], item, sub))
    elif kind == "list" and isinstance(value, list):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where} have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where} have length less than or equal to {meta['max']}")
        for i, item in enumerate(value, 1):
            problems.extend(_violations(shape.member, item, f"{path}.{i}.member"))
    elif kind == "string" and isinstance(value, str):
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where} have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where} have length less than or equal to {meta['max']}")
        if "pattern" in meta and not _pattern(meta["pattern"]).fullmatch(value):
            problems.append(f"{where} satisfy regular expression pattern: {meta['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{where} satisfy enum value set: [{', '.join(shape.enum)}]")
    elif kind in ("integer", "long") and isinstance(value, int):
        if "min" in meta and value < meta["min"]:
            problems.append(f"{where} have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            problems.append(f"{where} have value less than or equal to {meta['max']}")
    return problems


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SECRET_NAME_PARTS)


def _redact(value: Any, shape=None, name: str = "") -> Any:
    """A copy of `value` with every secret replaced: by model (`sensitive`) and by parameter name."""
    if shape is not None and shape.metadata.get("sensitive"):
        return REDACTED
    if isinstance(value, str) and name and _is_secret_name(name) and value.lower() not in ("true", "false"):
        return REDACTED  # PasswordResetRequired=true or MinimumPasswordLength=14 are no secrets
    if isinstance(value, dict):
        members = shape.members if shape is not None and shape.type_name == "structure" else {}
        return {key: _redact(item, members.get(key), str(key)) for key, item in value.items()}
    if isinstance(value, list):
        member = shape.member if shape is not None and shape.type_name == "list" else None
        return [_redact(item, member) for item in value]
    return value


def _redact_flat(flat: Mapping[str, str]) -> dict[str, str]:
    """Flat query parameters of an unknown action, with secret-named ones replaced."""
    return {key: _redact(value, None, key.rsplit(".", 1)[-1]) for key, value in flat.items()}


# --------------------------------------------------------------------------- requests and responses


@dataclass(frozen=True)
class _Request:
    service: str
    action: str | None
    protocol: str
    method: str
    params: Any  # real values: for validation and conflict checks only, never stored
    logged: Mapping[str, Any]  # what the call log keeps
    problems: tuple[str, ...] = ()
    api_version: str = ""

    @property
    def mutating(self) -> bool:
        return is_mutating(self.service, self.action, self.method)


def _read_body(environ: dict) -> bytes:
    """Read the request body and put it back for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _signing_name(environ: dict) -> str:
    """The service from the SigV4 credential scope: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    match = re.search(r"Credential=[^/]*/[^/]*/[^/]*/([^/]*)/", environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1).lower() if match else ""


def _describe(environ: dict, body: bytes) -> _Request:
    service = _signing_name(environ)
    method = environ.get("REQUEST_METHOD", "POST")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        model = _service_model(service) if service else None
        shape = _input_shape(model, action)
        return _Request(service, action, "json", method, params, _redact(params, shape))
    flat = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "")
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        flat.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    action = flat.pop("Action", None)
    flat.pop("Version", None)
    if not action:
        return _Request(service, None, "rest", method, {}, {})
    model = _service_model(service) if service else None
    shape = _input_shape(model, action)
    api_version = model.metadata.get("apiVersion", "") if model is not None else ""
    if shape is None:
        return _Request(service, action, "query", method, flat, _redact_flat(flat), api_version=api_version)
    params = _from_query(shape, flat, "")
    problems = tuple(_violations(shape, params, "")) if service in STRICT_SERVICES else ()
    return _Request(service, action, "query", method, params, _redact(params, shape), problems, api_version)


def _input_shape(model, action: str):
    if model is None:
        return None
    try:
        return model.operation_model(action).input_shape
    except OperationNotFoundError:
        return None


@dataclass(frozen=True)
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _error_response(request: _Request, code: str, message: str, status: int) -> _Response:
    """An error shaped the way botocore parses it for the request's protocol."""
    request_id = uuid.uuid4().hex
    if request.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    else:
        namespace = f"https://{request.service or 'iam'}.amazonaws.com/doc/{request.api_version or '2010-05-08'}/"
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return _Response(status, headers, body)


def _error_code(response: _Response) -> str | None:
    if response.status < 400:
        return None
    for name, value in response.headers:
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    text = response.body.decode("utf-8", "replace")
    match = re.search(r"<Code>([^<]+)</Code>", text)
    if match:
        return match.group(1)
    try:
        return str(json.loads(text).get("__type", "")).rsplit("#", 1)[-1] or None
    except (ValueError, AttributeError):
        return None


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


# --------------------------------------------------------------------------- CloudTrail from the log

#: Which request parameter names which kind of resource, for CloudTrail's Resources list.
_RESOURCE_PARAMS = (
    ("UserName", "AWS::IAM::User"),
    ("RoleName", "AWS::IAM::Role"),
    ("GroupName", "AWS::IAM::Group"),
    ("PolicyArn", "AWS::IAM::Policy"),
    ("AccessKeyId", "AWS::IAM::AccessKey"),
)
CALLER_NAME = "moto"  # moto's caller identity is arn:aws:sts::123456789012:user/moto
_MAX_EVENTS = 50


def _event(call: Call) -> dict[str, Any]:
    params = call.params if isinstance(call.params, Mapping) else {}
    resources = [
        {"ResourceType": kind, "ResourceName": str(params[name])}
        for name, kind in _RESOURCE_PARAMS
        if isinstance(params.get(name), str)
    ]
    read_only = "false" if call.mutating else "true"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{CALLER_NAME}",
            "accountId": ACCOUNT_ID,
            "userName": CALLER_NAME,
        },
        "eventTime": call.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{call.service}.amazonaws.com",
        "eventName": call.action,
        "awsRegion": REGION,
        "requestParameters": {_camel(key): value for key, value in params.items()},
        "readOnly": call.mutating is False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT_ID,
    }
    return {
        "EventId": f"embedded-{call.seq:010d}",
        "EventName": call.action,
        "ReadOnly": read_only,
        "EventTime": call.time.timestamp(),
        "EventSource": f"{call.service}.amazonaws.com",
        "Username": CALLER_NAME,
        "Resources": resources,
        "CloudTrailEvent": json.dumps(detail, default=str),
    }


def _event_matches(event: dict[str, Any], attribute: Mapping[str, Any]) -> bool:
    key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
    if key in ("ResourceName", "ResourceType"):
        return any(resource[key] == value for resource in event["Resources"])
    return str(event.get(key, "")) == value


def lookup_events(calls: Iterable[Call], params: Mapping[str, Any]) -> dict[str, Any]:
    """CloudTrail LookupEvents, answered from the call log (moto 5.2.5 does not implement it).

    Successful IAM and STS calls become management events, newest first, filtered by the one
    LookupAttribute AWS allows, StartTime/EndTime (epoch seconds), and paged by MaxResults/NextToken.
    Parameters appear as the call log keeps them: secrets redacted.
    """
    events = [_event(call) for call in calls if call.ok and call.action and call.service in ("iam", "sts")]
    events.reverse()
    for attribute in params.get("LookupAttributes") or []:
        events = [event for event in events if _event_matches(event, attribute)]
    if params.get("StartTime") is not None:
        events = [event for event in events if event["EventTime"] >= float(params["StartTime"])]
    if params.get("EndTime") is not None:
        events = [event for event in events if event["EventTime"] <= float(params["EndTime"])]
    start = int(params.get("NextToken") or 0)
    size = max(1, min(int(params.get("MaxResults") or _MAX_EVENTS), _MAX_EVENTS))
    page: dict[str, Any] = {"Events": events[start : start + size]}
    if start + size < len(events):
        page["NextToken"] = str(start + size)
    return page


def _json_response(payload: dict[str, Any]) -> _Response:
    body = json.dumps(payload, default=str).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-RequestId", uuid.uuid4().hex),
        ("Content-Length", str(len(body))),
    ]
    return _Response(200, headers, body)


# --------------------------------------------------------------------------- AWS rules moto skips


def _name_taken(existing: Iterable[str], name: str) -> bool:
    lowered = name.lower()
    return any(other.lower() == lowered for other in existing)


_CREATES: dict[str, tuple[str, Callable[[Any], Iterable[str]]]] = {
    "CreateUser": ("User", lambda backend: backend.users.keys()),
    "CreateGroup": ("Group", lambda backend: backend.groups.keys()),
    "CreateRole": ("Role", lambda backend: (role.name for role in backend.roles.values())),
}


def _refusal(backend, action: str | None, params: Any) -> tuple[str, str, int] | None:
    """(code, message, status) when real AWS would refuse this call and moto would not."""
    if not isinstance(params, dict):
        return None
    if action == "DeletePolicy":
        policy = backend.managed_policies.get(params.get("PolicyArn", ""))
        if policy is None:
            return None
        holders = itertools.chain(backend.users.values(), backend.groups.values(), backend.roles.values())
        if any(policy.arn in holder.managed_policies for holder in holders):
            return "DeleteConflict", "Cannot delete a policy attached to entities.", 409
        if len(policy.versions) > 1:
            return (
                "DeleteConflict",
                "This policy has more than one version. Before you delete a policy, you must delete the "
                "policy's versions. The default version is deleted with the policy.",
                409,
            )
    elif action == "DeleteUser":
        user = backend.users.get(params.get("UserName", ""))
        if user is None:
            return None
        remaining = [
            (any(user in group.users for group in backend.groups.values()), "remove users from group"),
            (bool(user.policies), "delete policies"),
            (bool(user.managed_policies), "detach all policies"),
            (bool(user.access_keys), "delete access keys"),
            (bool(user.ssh_public_keys), "delete SSH public keys"),
            (bool(user.mfa_devices), "delete MFA device"),
            (user.password is not None, "delete login profile"),
            (bool(user.signing_certificates), "delete signing certificates"),
            (bool(getattr(user, "service_specific_credentials", None)), "delete service specific credentials"),
        ]
        for present, what in remaining:
            if present:
                return "DeleteConflict", f"Cannot delete entity, must {what} first.", 409
    elif action == "DeleteGroup":
        group = backend.groups.get(params.get("GroupName", ""))
        if group is None:
            return None
        for present, what in (
            (bool(group.users), "remove users from group"),
            (bool(group.managed_policies), "detach all policies"),
            (bool(group.policies), "delete policies"),
        ):
            if present:
                return "DeleteConflict", f"Cannot delete entity, must {what} first.", 409
    elif action == "DeleteVirtualMFADevice":
        device = backend.virtual_mfa_devices.get(params.get("SerialNumber", ""))
        if device is not None and device.user is not None:
            return "DeleteConflict", "MFA device is in use; deactivate it before deleting it.", 409
    elif action in _CREATES:
        # IAM names are unique regardless of case: 'Bob' and 'bob' cannot both exist.
        kind, existing = _CREATES[action]
        name = params.get(f"{kind}Name", "")
        if name and _name_taken(existing(backend), name):
            return "EntityAlreadyExists", f"{kind} with name {name} already exists.", 409
    return None


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
        fault = Fault(action, at, code, status, times, message or _default_message(code))
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _due_fault(self, request: _Request) -> Fault | None:
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

    def _call_moto(self, request: _Request, environ: dict) -> _Response:
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
            return _error_response(request, "NotImplemented", f"Not implemented by moto: {exc}", 501)
        except Exception as exc:  # noqa: BLE001 - a moto bug answers like an AWS outage, not a traceback
            _log.warning("moto failed on %s:%s: %r", request.service, request.action, exc)
            return _error_response(request, "InternalFailure", f"moto failed: {exc!r}", 500)
        return _Response(int(captured["status"].split()[0]), captured["headers"], b"".join(chunks))

    def _answer(self, request: _Request, environ: dict, internal: bool) -> tuple[_Response, bool]:
        fault = None if internal else self._due_fault(request)
        if fault is not None:
            return _error_response(request, fault.code, fault.message, fault.status), True
        if self.strict and request.problems:
            count = len(request.problems)
            message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(request.problems)
            return _error_response(request, "ValidationError", message, 400), False
        if self.strict and request.service == "iam":
            refused = _refusal(self.iam_backend(), request.action, request.params)
            if refused is not None:
                return _error_response(request, *refused), False
        if request.service == "cloudtrail" and request.action == "LookupEvents":
            return _json_response(lookup_events(self.calls, request.params)), False
        return self._call_moto(request, environ), False

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        assert self._moto_app is not None
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._moto_app(environ, start_response)
        request = _describe(environ, _read_body(environ))
        internal = environ.get("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")) == "1"
        response, injected = self._answer(request, environ, internal)
        if not internal:
            call = Call(
                seq=next(self._seq),
                service=request.service,
                action=request.action,
                params=request.logged,
                status=response.status,
                error_code=_error_code(response),
                injected=injected,
                method=request.method,
            )
            with self._lock:
                self._calls.append(call)
            if call.ok and call.mutating:
                self._run_hooks(call)
        start_response(_status_line(response.status), response.headers)
        return [response.body]


__all__ = [
    "ACCOUNT_ID",
    "REDACTED",
    "REGION",
    "Call",
    "EmbeddedAws",
    "Fault",
    "is_mutating",
    "lookup_events",
]
