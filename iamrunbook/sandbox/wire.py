"""The wire between boto3 and moto: requests decoded against botocore's model, AWS-shaped responses.

Decoding a request also checks it the way AWS does (parameter patterns, lengths, enums, required members)
and makes the copy the call log keeps, with every secret replaced by `REDACTED`.
"""

from __future__ import annotations

import http
import io
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import regex
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.model import OperationNotFoundError

from iamrunbook.base.log import logger
from iamrunbook.sandbox.calls import is_mutating
from iamrunbook.sandbox.rest import operation_for, request_headers, rest_params

_log = logger.getChild("embedded")
REDACTED = "<redacted>"
#: Query-protocol services whose parameters are checked against botocore's model like AWS does.
STRICT_SERVICES = frozenset({"iam", "sts"})
#: Parameter names whose values are secrets (lower case substrings), besides `sensitive` model shapes.
SECRET_NAME_PARTS = (
    "password", "secret", "privatekey", "sessiontoken", "securitytoken", "authenticationcode",
    "tokencode", "samlassertion", "webidentitytoken",
)  # fmt: skip


@cache
def _botocore_session():
    import botocore.session

    return botocore.session.get_session()


#: Signing names that are not the service's model name (sso-admin signs as "sso"; the portal, "sso", does not).
_SIGNED_AS = {"sso": "sso-admin"}


@lru_cache(maxsize=64)
def service_model(signing_name: str):
    """botocore's model for a service by its signing name, or None when botocore doesn't know it."""
    signing_name = _SIGNED_AS.get(signing_name, signing_name)
    for name in dict.fromkeys((signing_name, signing_name.replace("-", ""))):  # access-analyzer: accessanalyzer
        try:
            return _botocore_session().get_service_model(name)
        except (UnknownServiceError, DataNotFoundError):
            continue
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


def camel(name: str) -> str:
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
                sub = f"{path}.{camel(name)}" if path else camel(name)
                problems.append(f"Value null at '{sub}' failed to satisfy constraint: Member must not be null")
        for name, item in value.items():
            sub = f"{path}.{camel(name)}" if path else camel(name)
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
class Request:
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


def read_body(environ: dict) -> bytes:
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


def describe(environ: dict, body: bytes) -> Request:
    service = _signing_name(environ)
    method = environ.get("REQUEST_METHOD", "POST")
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
        model = service_model(service) if service else None
        shape = _input_shape(model, action)
        return Request(service, action, "json", method, params, _redact(params, shape))
    flat = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    content_type = environ.get("CONTENT_TYPE", "")
    if body and content_type.startswith("application/x-www-form-urlencoded"):
        flat.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    action = flat.pop("Action", None)
    flat.pop("Version", None)
    if not action:
        return _describe_rest(environ, service, method, body)
    model = service_model(service) if service else None
    shape = _input_shape(model, action)
    api_version = model.metadata.get("apiVersion", "") if model is not None else ""
    if shape is None:
        return Request(service, action, "query", method, flat, _redact_flat(flat), api_version=api_version)
    params = _from_query(shape, flat, "")
    problems = tuple(_violations(shape, params, "")) if service in STRICT_SERVICES else ()
    return Request(service, action, "query", method, params, _redact(params, shape), problems, api_version)


def _describe_rest(environ: dict, service: str, method: str, body: bytes) -> Request:
    """A REST call (S3): named by its operation in botocore's model, its object body never logged."""
    model = service_model(service) if service else None
    if model is None or not model.protocol.startswith("rest"):
        return Request(service, None, "rest", method, {}, {})
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
    path, _, raw_query = raw.partition("?")
    query = dict(parse_qsl(raw_query or environ.get("QUERY_STRING", ""), keep_blank_values=True))
    headers = request_headers(environ)
    action, captured = operation_for(model, method, path, query, headers)
    if action is None:
        return Request(service, None, model.protocol, method, {}, {})
    operation = model.operation_model(action)
    params = rest_params(operation, captured, query, headers, body)
    return Request(service, action, model.protocol, method, params, _redact(params, operation.input_shape))


def _input_shape(model, action: str):
    if model is None:
        return None
    try:
        return model.operation_model(action).input_shape
    except OperationNotFoundError:
        return None


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_response(request: Request, code: str, message: str, status: int) -> Response:
    """An error shaped the way botocore parses it for the request's protocol."""
    request_id = uuid.uuid4().hex
    if request.protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    elif request.protocol == "rest-xml":  # S3: a bare <Error>
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    else:
        namespace = f"https://{request.service or 'iam'}.amazonaws.com/doc/{request.api_version or '2010-05-08'}/"
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    headers += [("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))]
    return Response(status, headers, body)


def error_code(response: Response) -> str | None:
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


def status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def json_response(payload: dict[str, Any]) -> Response:
    body = json.dumps(payload, default=str).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("x-amzn-RequestId", uuid.uuid4().hex),
        ("Content-Length", str(len(body))),
    ]
    return Response(200, headers, body)


def query_response(request: Request, result_xml: str) -> Response:
    """A query-protocol (IAM/STS) success answer wrapping `result_xml`, as botocore parses it."""
    action = request.action
    namespace = f"https://{request.service}.amazonaws.com/doc/{request.api_version or '2010-05-08'}/"
    body = (
        f'<{action}Response xmlns="{namespace}"><{action}Result>{result_xml}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4().hex}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()
    return Response(200, [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))], body)


def call_app(app, request: Request, environ: dict) -> Response:
    """Run a WSGI app (moto) on the request and collect its answer; moto's gaps and bugs answer like AWS."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list, exc_info: Any = None):
        captured["status"], captured["headers"] = status, list(headers)
        return chunks.append

    try:
        result = app(environ, start_response)
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
