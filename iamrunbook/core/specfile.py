"""Writing an edited spec back to the file it came from, in that file's own format.

YAML (a parameters file) and Terraform tfvars are spliced, not regenerated: only `iam_users` is replaced,
so other parameters, variables and the comments outside it stay as the operator wrote them. A save is read
back and compared before it replaces the file, and the replacement is atomic (a temporary file renamed over
the old one), so a scheduled run never reads a half-written or different spec.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from iamrunbook.base.errors import RunbookError
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.spec import load_hcl, load_yaml
from iamrunbook.core.temporary import until_text

YAML_SUFFIXES = (".yaml", ".yml")
TFVARS_SUFFIXES = (".tfvars", ".hcl")


def normal_users(iam_users: Mapping[str, Any]) -> dict[str, dict]:
    """`iam_users` as it is saved and compared: description, roles and (when there are any) temporary grants,
    each until spelled 2026-12-31T18:00:00Z (YAML reads an unquoted timestamp as a datetime)."""
    normal = {}
    for name, e in iam_users.items():
        entry = {"description": e.get("description") or "", "roles": list(e.get("roles") or [])}
        temporary = [{**t, "until": until_text(t.get("until"))} if isinstance(t, Mapping) else t
                     for t in e.get("temporary") or ()]  # fmt: skip
        normal[name] = entry | ({"temporary": temporary} if temporary else {})
    return normal


def _yaml_block(iam_users: Mapping[str, Any]) -> str:
    """`iam_users:` as block YAML, role lists in flow style (`roles: [admin, data_engineer]`)."""
    text = yaml.safe_dump(
        {"iam_users": dict(iam_users)}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=4096
    )
    return text.rstrip("\n")


def _last_mark(node: yaml.Node) -> int:
    """Where the text of `node` ends: its last scalar or closing bracket, not the comments after it."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_mark(node.value[-1])
    return node.end_mark.index


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end


def _splice_users(
    text: str,
    region_start: int,
    spans: list[tuple[int, int]],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    render: Callable[[str, Mapping[str, Any]], list[str]],
) -> str | None:
    """`text` with the users of iam_users replaced one at a time, or None where that cannot be done.

    `spans` are the (key, end of entry) offsets of the users in `old`, in order, one per line range. A user
    whose entry did not change keeps its text, comments and all; a changed one is rendered anew under the
    comment lines above it; a removed one goes with them; a new one is appended after the last.
    """
    if not new or len(spans) != len(old):
        return None
    chunks: dict[str, tuple[str, str]] = {}
    start = region_start
    for name, (key, end) in zip(old, spans, strict=True):
        line = _line_start(text, key)
        if line < start or text[line:key].strip():
            return None  # two users share a line: nothing to keep apart
        chunks[name] = (text[start:line], text[line:end])
        start = end + 1
    indent = " " * (spans[0][0] - _line_start(text, spans[0][0]))
    out = []
    for name, entry in new.items():
        lead, body = chunks.get(name, ("", ""))
        if not body or old.get(name) != entry:
            body = "\n".join(indent + line for line in render(name, entry))
        out.append(lead + body)
    return text[:region_start] + "\n".join(out) + text[spans[-1][1] :]


def _yaml_entry(name: str, entry: Mapping[str, Any]) -> list[str]:
    return [line[2:] for line in _yaml_block({name: entry}).split("\n")[1:]]


def _splice_yaml(text: str, iam_users: Mapping[str, Any]) -> str:
    """`text` with its top-level `iam_users` replaced; every other key and comment stays as written, and so
    does each user's entry that did not change."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    block = _yaml_block(iam_users)
    if root is None:
        return f"{text.rstrip()}\n{block}\n" if text.strip() else block + "\n"
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise RunbookError("the file is not a block mapping of parameters; not rewriting it")
    for key, value in root.value:
        if key.value != "iam_users":
            continue
        if isinstance(value, yaml.MappingNode) and value.value and not value.flow_style:
            old = normal_users((load_yaml(text) or {}).get("iam_users") or {})
            spans = [(k.start_mark.index, _line_end(text, _last_mark(v))) for k, v in value.value]
            spliced = _splice_users(text, _line_end(text, key.end_mark.index) + 1, spans, old, iam_users, _yaml_entry)
            if spliced is not None:
                return spliced
        end = _line_end(text, max(_last_mark(value), key.end_mark.index))  # a comment after the value goes too
        return text[: key.start_mark.index] + block + text[end:]
    return f"{text.rstrip()}\n{block}\n"


def _tfvars_entry(name: str, entry: Mapping[str, Any]) -> list[str]:
    from iamrunbook.core.terraform import dump_tfvars

    lines = dump_tfvars({name: entry}).rstrip("\n").split("\n")
    return [line[2:] for line in lines[lines.index("iam_users = {") + 1 : -1]]


def _splice_tfvars(text: str, iam_users: Mapping[str, Any]) -> str:
    """`text` with its `iam_users = {...}` replaced (each unchanged user's entry kept as written) in
    dump_tfvars' rendering; other variables stay."""
    import hcl2

    from iamrunbook.core.terraform import dump_tfvars, load_tfvars

    rendered = dump_tfvars(iam_users)
    block = rendered[rendered.index("iam_users = ") :].rstrip("\n")
    body = hcl2.parses_to_tree(text).children[0]
    for node in body.children:
        if getattr(node, "data", None) != "attribute" or str(node.children[0].children[0]) != "iam_users":
            continue
        value = node.children[-1].children[0]
        if getattr(value, "data", None) == "object":
            elems = [c for c in value.children if getattr(c, "data", None) == "object_elem"]
            spans = [(e.meta.start_pos, _line_end(text, e.meta.end_pos)) for e in elems]
            region = _line_end(text, value.meta.start_pos) + 1
            closing = value.meta.end_pos - 1
            if spans and spans[-1][1] < closing:
                spliced = _splice_users(text, region, spans, normal_users(load_tfvars(text)), iam_users, _tfvars_entry)
                if spliced is not None:
                    return spliced
        return text[: node.meta.start_pos] + block + text[node.meta.end_pos :]
    return f"{text.rstrip()}\n\n{block}\n" if text.strip() else rendered


def spec_format(path: str | Path) -> str:
    """The format, "yaml" or "tfvars", from the file's extension; RunbookError for a file a spec cannot be saved to."""
    suffix = Path(path).suffix
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if suffix in TFVARS_SUFFIXES:
        return "tfvars"
    raise RunbookError(f"{path}: unknown extension; the spec is saved as .yaml/.yml or .tfvars")


def save_spec(path: str | Path, iam_users: Mapping[str, Any], roles: Mapping[str, str] | None = None) -> Path:
    """Write `iam_users` into the file it came from, keeping its format and everything else in it.

    YAML (a parameters file): only the top-level `iam_users` is replaced; `roles`, other keys and comments
    stay. tfvars: `iam_users = {...}` is rendered by terraform.dump_tfvars; other variables stay. A new file
    gets `roles` too (YAML) or only `iam_users` (tfvars). The result is read back and compared before it
    replaces the file, so a save never leaves a file that loads as a different spec.
    """
    from iamrunbook.core.terraform import dump_parameters_yaml, load_tfvars

    p = Path(path)
    iam_users = normal_users(iam_users)
    old = p.read_text(encoding="utf-8") if p.is_file() else None
    if spec_format(p) == "yaml":
        if old is None:
            new = dump_parameters_yaml(dict(DEFAULT_ROLES if roles is None else roles), iam_users)
            expected_rest: dict = {"roles": dict(DEFAULT_ROLES if roles is None else roles)}
        else:
            before = load_yaml(old, str(p)) or {}
            expected_rest = {k: v for k, v in before.items() if k != "iam_users"}
            new = _splice_yaml(old, iam_users)
        after = load_yaml(new, str(p))
        rest = {k: v for k, v in after.items() if k != "iam_users"}
        if normal_users(after.get("iam_users") or {}) != iam_users or rest != expected_rest:
            raise RunbookError(f"{p}: the rewritten file would not read back as the edited spec; not saved")
    else:
        before = {} if old is None else load_hcl(old, str(p))
        new = _splice_tfvars(old or "", iam_users)
        # python-hcl2 lists comments under `__comments__`: those inside the old iam_users go with it.
        rest_before = {k: v for k, v in before.items() if k != "iam_users" and not k.startswith("__")}
        rest_after = {k: v for k, v in load_hcl(new, str(p)).items() if k != "iam_users" and not k.startswith("__")}
        if normal_users(load_tfvars(new, str(p))) != iam_users or rest_after != rest_before:
            raise RunbookError(f"{p}: the rewritten file would not read back as the edited spec; not saved")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.saving")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, p)  # never a half-written spec file
    return p
