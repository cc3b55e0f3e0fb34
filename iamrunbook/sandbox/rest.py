"""REST requests (S3) named and decoded by botocore's model: method + URI template + query + headers.

A REST request carries no `Action`: `PUT /bucket/key` is PutObject, `PUT /bucket/key?retention` is
PutObjectRetention, `PUT /bucket/key` with `x-amz-copy-source` is CopyObject. The operation whose URI
template, literal query keys and required query/header members all match wins; the one that needs the most
of them is the most specific. Parameters are rebuilt from the URI, the query string and the headers as
boto3 names them; a blob payload (an object's body) is never read into them, an XML payload is.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class _Route:
    name: str
    method: str
    path: re.Pattern
    literals: tuple[tuple[str, str | None], ...]  # query key, value (None: any)
    required: tuple[tuple[str, str], ...]  # (location, wire name) the request must carry

    def score(self, method: str, path: str, query: dict, headers: dict) -> tuple[int, dict] | None:
        match = self.path.fullmatch(path) if method == self.method else None
        if match is None:
            return None
        for key, value in self.literals:
            if key not in query or (value is not None and query[key] != value):
                return None
        for location, name in self.required:
            if (location == "querystring" and name not in query) or (location == "header" and name not in headers):
                return None
        return len(self.literals) + len(self.required), {k: unquote(v) for k, v in match.groupdict().items()}


def _route(operation) -> _Route:
    path, _, literal = operation.http["requestUri"].partition("?")
    pattern = re.sub(r"\{(\w+)(\+?)\}", lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(2) else '[^/]+'})", path)
    parts = (part.partition("=") for part in literal.split("&") if part)
    literals = tuple((key, value if sep else None) for key, sep, value in parts)
    shape = operation.input_shape
    required = ()
    if shape is not None:
        required = tuple(
            (member.serialization["location"], member.serialization.get("name", name).lower())
            for name, member in shape.members.items()
            if name in shape.required_members and member.serialization.get("location") in ("querystring", "header")
        )
    return _Route(operation.name, operation.http["method"], re.compile(pattern.rstrip("/") + "/?"), literals, required)


@lru_cache(maxsize=8)
def _routes(model) -> tuple[_Route, ...]:
    return tuple(_route(model.operation_model(name)) for name in model.operation_names)


def operation_for(model, method: str, path: str, query: dict, headers: dict) -> tuple[str | None, dict]:
    """The operation a REST request calls, with the values its URI template captured (Bucket, Key)."""
    best: tuple[tuple[int, int], str, dict] | None = None
    for route in _routes(model):
        scored = route.score(method.upper(), path, query, headers)
        if scored is not None and (best is None or (scored[0], -len(route.name)) > best[0]):
            best = ((scored[0], -len(route.name)), route.name, scored[1])
    return (best[1], best[2]) if best else (None, {})


def _scalar(shape, raw: str) -> Any:
    if shape.type_name in ("integer", "long") and raw.lstrip("-").isdigit():
        return int(raw)
    if shape.type_name == "boolean" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _from_xml(shape, element) -> Any:
    """A structure/list/scalar from an XML request payload, guided by the shape (best effort)."""
    if shape.type_name == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            children = [child for child in element if _local(child.tag) == wire]
            if member.type_name == "list" and member.serialization.get("flattened"):
                out[name] = [_from_xml(member.member, child) for child in children] if children else None
            elif children:
                out[name] = _from_xml(member, children[0])
        return {key: value for key, value in out.items() if value is not None}
    if shape.type_name == "list":
        return [_from_xml(shape.member, child) for child in element]
    return _scalar(shape, element.text or "")


def _payload(shape, body: bytes) -> dict:
    name = shape.serialization.get("payload")
    member = shape.members.get(name) if name else None
    if member is None or member.type_name != "structure" or not body:
        return {}  # a blob payload (an object's body) is never decoded
    try:
        return {name: _from_xml(member, ElementTree.fromstring(body))}
    except ElementTree.ParseError:
        return {}


def rest_params(operation, captured: dict, query: dict, headers: dict, body: bytes) -> dict:
    """boto3-style parameters of a REST request: URI, query string, headers and an XML payload."""
    shape = operation.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri" and wire in captured:
            params[name] = captured[wire]
        elif location == "querystring" and wire in query:
            params[name] = _scalar(member, query[wire])
        elif location == "header" and wire.lower() in headers:
            params[name] = _scalar(member, headers[wire.lower()])
        elif location == "headers":
            prefix = wire.lower()
            found = {key[len(prefix) :]: value for key, value in headers.items() if key.startswith(prefix)}
            if found:
                params[name] = found
    params.update(_payload(shape, body))
    return params


def request_headers(environ: dict) -> dict[str, str]:
    """The request's headers, lower case, as a WSGI environ carries them."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH", "CONTENT_MD5"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers
