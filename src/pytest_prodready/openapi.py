"""OpenAPI 3.0/3.1 and Swagger 2 specs read for the auth sweep: the operations, whether each
declares security (or documents optional auth), and a concrete path for each.

Path parameters are filled from the spec itself: a parameter's `example`, its first
`examples` value, its schema's `example`, `default` or first `enum` value, else a value of
the schema's type and format (1 for integers, a UUID for format uuid, ...); required query
parameters are filled the same way. Local `$ref`s
(`#/components/...`, `#/parameters/...`) are followed; remote ones are not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
SAFE = frozenset({"GET", "HEAD"})
MAX_REF_DEPTH = 20


class SpecError(ValueError):
    """Not an OpenAPI/Swagger document this module can read."""


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str  # the spec's path, e.g. /orders/{orderId}
    path: str  # a concrete path to call (base path included, parameters filled)
    secured: bool  # declares a security requirement
    optional_auth: bool  # one of its alternatives is {} (anonymous allowed by the spec)
    operation_id: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def safe(self) -> bool:
        return self.method in SAFE


def parse_document(data: bytes | str) -> dict[str, Any]:
    """JSON, or YAML when PyYAML is installed."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        doc = json.loads(text)
    except ValueError:
        doc = load_yaml(text)
    if not isinstance(doc, dict) or not ("openapi" in doc or "swagger" in doc):
        raise SpecError("not an OpenAPI or Swagger document (no 'openapi' or 'swagger' key)")
    if not isinstance(doc.get("paths"), dict):
        raise SpecError("the spec has no 'paths' object")
    return doc


def load_yaml(text: str) -> Any:
    """yaml.safe_load's result, built straight from the parser's events.

    safe_load composes the whole node graph before it constructs a single object: for a
    10,000-operation spec that graph, not the document, is most of the memory (241 MiB
    against 58 MiB for the same spec as JSON). Here each scalar is resolved and constructed
    by PyYAML's own safe resolver and constructors as its event arrives, and no node is
    kept. Anchors, aliases and merge keys (<<) behave as in safe_load; so do tags it refuses.
    """
    try:
        import yaml
    except ImportError:
        raise SpecError("the spec is not JSON (a YAML spec needs PyYAML: pip install pyyaml)") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml's parser when built
    try:
        return _from_events(yaml, loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"the spec is neither JSON nor YAML: {exc}") from None
    except (TypeError, RecursionError) as exc:  # an unhashable key (a mapping as a key), a bomb
        raise SpecError(f"the spec is neither JSON nor YAML: {type(exc).__name__}: {exc}") from None
    finally:
        loader.dispose()


_MERGE = "tag:yaml.org,2002:merge"


def _from_events(yaml: Any, loader: Any) -> Any:
    anchors: dict[str, Any] = {}
    # Open collections: [container, pending mapping key or _NO_KEY, merge values].
    stack: list[list[Any]] = []
    root: list[Any] = []
    documents = 0

    def scalar(event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if tag == _MERGE:
            return _MERGE_KEY
        constructor = loader.yaml_constructors.get(tag, loader.yaml_constructors[None])
        return constructor(loader, node)

    def add(value: Any) -> None:
        if not stack:
            root.append(value)
            return
        top = stack[-1]
        if isinstance(top[0], list):
            top[0].append(value)
        elif top[1] is _NO_KEY:
            top[1] = value
        else:
            if top[1] is _MERGE_KEY:
                top[2].extend(value if isinstance(value, list) else [value])
            else:
                top[0][top[1]] = value
            top[1] = _NO_KEY

    while not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise yaml.YAMLError("expected a single document in the stream")
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            container: Any = {} if isinstance(event, yaml.MappingStartEvent) else []
            if event.anchor is not None:
                anchors[event.anchor] = container
            stack.append([container, _NO_KEY, []])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            container, _, merges = stack.pop()
            for merged in merges:  # explicit keys win, then earlier merged maps
                if not isinstance(merged, dict):
                    raise yaml.YAMLError("a merge key (<<) takes a mapping or a list of mappings")
                for key, value in merged.items():
                    container.setdefault(key, value)
            add(container)
        elif isinstance(event, yaml.ScalarEvent):
            value = scalar(event)
            if event.anchor is not None:
                anchors[event.anchor] = value
            add(value)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise yaml.YAMLError(f"found undefined alias {event.anchor!r}")
            add(anchors[event.anchor])
    return root[0] if root else None


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_NO_KEY = _Marker("no key")
_MERGE_KEY = _Marker("<<")


def resolve(doc: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """Follow a local $ref (chains included)."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or depth > MAX_REF_DEPTH:
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        node, depth = target if target is not None else {}, depth + 1
    return node


def base_path(doc: Mapping[str, Any]) -> str:
    """Swagger 2's basePath, or the path of OpenAPI 3's first server URL."""
    if "swagger" in doc:
        raw = str(doc.get("basePath") or "")
    else:
        servers = doc.get("servers")
        first = servers[0] if isinstance(servers, list) and servers and isinstance(servers[0], dict) else {}
        url = str(first.get("url") or "")
        variables = first.get("variables")
        for name, var in (variables.items() if isinstance(variables, dict) else ()):
            if isinstance(var, dict):
                url = url.replace("{" + name + "}", str(var.get("default", "")))
        raw = urlsplit(url).path if "://" in url else url
    return raw.rstrip("/") if raw.startswith("/") else ""


def example_value(doc: Mapping[str, Any], param: Mapping[str, Any]) -> str:
    if "example" in param:
        return str(param["example"])
    if not isinstance(param, Mapping):
        return "prodready"
    examples = param.get("examples")
    if isinstance(examples, dict) and examples:
        first = resolve(doc, next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return str(first["value"])
    # Swagger 2 keeps type/default/enum on the parameter itself.
    schema = resolve(doc, param.get("schema")) if "schema" in param else param
    if not isinstance(schema, dict):
        schema = {}
    for key in ("example", "default"):
        if key in schema:
            return str(schema[key])
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return str(schema["examples"][0])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return str(schema["enum"][0])
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    fmt = schema.get("format", "")
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        return str(int(low) if isinstance(low, (int, float)) and low > 1 else 1)
    if kind == "boolean":
        return "true"
    return {"uuid": "00000000-0000-4000-8000-000000000001", "date": "2024-01-01",
            "date-time": "2024-01-01T00:00:00Z", "email": "prodready@example.com"}.get(fmt, "prodready")


def _parameters(doc: Mapping[str, Any], where: str, *lists: Any) -> dict[str, dict[str, Any]]:
    """Parameters `in: where` by name; an operation's own override its path item's."""
    out: dict[str, dict[str, Any]] = {}
    for items in lists:
        if not isinstance(items, list):
            continue
        for raw in items:
            param = resolve(doc, raw)
            if isinstance(param, dict) and param.get("in") == where and param.get("name"):
                out[str(param["name"])] = param
    return out


def query(doc: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]]) -> str:
    """The required query parameters, filled like path parameters ('' when none): a call
    that misses one is often refused with 400/422 before authentication is even looked at."""
    required = [(name, example_value(doc, p)) for name, p in params.items() if p.get("required")]
    return "?" + "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in required) if required else ""


def fill(doc: Mapping[str, Any], template: str, params: Mapping[str, Mapping[str, Any]]) -> str:
    out, rest = [], template
    while "{" in rest and "}" in rest.split("{", 1)[1]:
        head, _, tail = rest.partition("{")
        name, _, rest = tail.partition("}")
        param = params.get(name, {})
        out += [head, quote(example_value(doc, param), safe="")]
    return "".join(out) + rest


def _security(requirements: Any) -> tuple[bool, bool]:
    """(secured, optional) for a security requirement list."""
    if not isinstance(requirements, list) or not requirements:
        return False, False
    optional = any(isinstance(r, dict) and not r for r in requirements)
    secured = any(isinstance(r, dict) and r for r in requirements)
    return secured, optional


def operations(doc: Mapping[str, Any], under: str = "") -> list[Operation]:
    """Every operation of the spec, in document order. `under`: the path the base URL
    already has ('/api/v1' of https://host/api/v1), not repeated from the spec's base path."""
    base = base_path(doc)
    under = under.rstrip("/")
    if under and (base == under or base.startswith(under + "/")):
        base = base[len(under):]
    default = doc.get("security")
    found = []
    for template, item in (doc.get("paths") or {}).items():
        item = resolve(doc, item)
        if not isinstance(item, dict) or not str(template).startswith("/"):
            continue
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            secured, optional = _security(op.get("security", default))
            lists = (item.get("parameters"), op.get("parameters"))
            path = fill(doc, str(template), _parameters(doc, "path", *lists))
            path += query(doc, _parameters(doc, "query", *lists))
            found.append(Operation(method.upper(), str(template), base + path,
                                   secured, optional, str(op.get("operationId") or "")))
    return found
