"""openapi.operations_require_auth: a generated 200-operation spec served by a real Flask
app that counts every request; one secured operation is unprotected in the implementation.
Passive mode sends no unsafe method (the counting target proves it)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request

from pytest_prodready import openapi
from pytest_prodready.checking import Result, run_check
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.target import Target
from tests.targets.webapp import serve_app

CHECK = "openapi.operations_require_auth"
METHOD_MIX = ["get"] * 12 + ["post"] * 3 + ["put"] * 2 + ["delete"] * 2 + ["patch"]  # 20 per block
UNPROTECTED = "/api/v1/block7/items/{itemId}"  # the one GET whose handler forgot auth


def generated_spec(n_ops: int = 200, *, swagger: bool = False) -> dict[str, Any]:
    """n_ops secured operations (one path per operation), plus a public health check and an
    optional-auth operation. Path parameters carry examples, defaults, enums or only a type."""
    paths: dict[str, Any] = {}
    for i in range(n_ops):
        method = METHOD_MIX[i % len(METHOD_MIX)]
        block = i // len(METHOD_MIX)
        style = i % 4
        template = (f"/block{block}/items/{{itemId}}" if i % len(METHOD_MIX) == 0
                    else f"/block{block}/op{i}/{{itemId}}")
        if swagger:
            param = {"name": "itemId", "in": "path", "required": True, "type": "integer",
                     **({"default": 7} if style == 1 else {})}
        else:
            schema = ({"type": "integer", "default": 7} if style == 1 else
                      {"type": "string", "enum": ["alpha", "beta"]} if style == 2 else
                      {"type": "string", "format": "uuid"})
            param = {"name": "itemId", "in": "path", "required": True, "schema": schema,
                     **({"example": f"ex-{i}"} if style == 0 else {})}
        paths.setdefault(template, {})[method] = {"operationId": f"op{i}", "parameters": [param],
                                                  "responses": {"200": {"description": "ok"}}}
    paths["/health"] = {"get": {"operationId": "health", "security": [], "responses": {}}}
    paths["/feed"] = {"get": {"operationId": "feed", "security": [{}, {"bearer": []}], "responses": {}}}
    if swagger:
        return {"swagger": "2.0", "basePath": "/api/v1", "paths": paths,
                "securityDefinitions": {"bearer": {"type": "apiKey", "name": "Authorization",
                                                   "in": "header"}},
                "security": [{"bearer": []}]}
    return {"openapi": "3.1.0", "servers": [{"url": "https://api.example.com/api/v1"}], "paths": paths,
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]}


@dataclass
class Counting:
    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def methods(self) -> Counter[str]:
        return Counter(m for m, p in self.seen if p.startswith("/api/v1/"))


@contextmanager
def serve_api(spec: dict[str, Any], open_paths: tuple[str, ...] = (),
              delay_s: float = 0) -> Iterator[Counting]:
    """Serves the spec at /openapi.json; every /api/v1 call needs a Bearer token, except the
    concrete paths starting with one of `open_paths` (the defect). `delay_s`: added latency
    per /api/v1 call (the benchmark)."""
    state = Counting()
    app = Flask("openapi_sweep")

    @app.route("/openapi.json")
    def spec_json() -> Response:
        return Response(json.dumps(spec), mimetype="application/json")

    @app.route("/api/v1/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def api(rest: str) -> Response:
        with state.lock:
            state.seen.append((request.method, request.path))
        if delay_s:
            time.sleep(delay_s)
        if request.path.startswith(open_paths):
            return Response(json.dumps({"id": rest, "secret_note": "anyone can read this"}),
                            mimetype="application/json")
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return Response('{"error": "unauthorized"}', 401, mimetype="application/json")
        return Response("{}", mimetype="application/json")

    with serve_app(app) as url:
        state.url = url
        yield state


@pytest.fixture(scope="module")
def api() -> Iterator[Callable[..., Counting]]:
    """api(open=False, swagger=False): one counting server per variant for the module."""
    from contextlib import ExitStack

    servers: dict[tuple[bool, bool], Counting] = {}
    with ExitStack() as stack:

        def get(open_one: bool = False, swagger: bool = False) -> Counting:
            key = (open_one, swagger)
            if key not in servers:
                opened = ("/api/v1/block7/items/",) if open_one else ()
                servers[key] = stack.enter_context(serve_api(generated_spec(swagger=swagger), opened))
            return servers[key]

        yield get


def sweep(served: Counting, *, active: bool = False, source: str = "/openapi.json",
          **values: Any) -> Result:
    settings = Settings(values={**DEFAULTS, "base_url": served.url, "openapi": source, **values},
                        secrets={}, sources={}, active=active)
    with Target(settings) as target:
        return run_check(CHECK, target, source)


def test_spec_reading_fills_path_parameters_and_reads_security() -> None:
    ops = openapi.operations(generated_spec())
    assert len(ops) == 202
    by_id = {op.operation_id: op for op in ops}
    assert by_id["op0"].path == "/api/v1/block0/items/ex-0"  # example
    assert by_id["op1"].path == "/api/v1/block0/op1/7"  # schema default
    assert by_id["op2"].path == "/api/v1/block0/op2/alpha"  # first enum value
    assert by_id["op3"].path == "/api/v1/block0/op3/00000000-0000-4000-8000-000000000001"  # format
    assert not by_id["health"].secured
    assert by_id["feed"].secured and by_id["feed"].optional_auth
    assert sum(op.secured and not op.optional_auth for op in ops) == 200
    swagger = {op.operation_id: op for op in openapi.operations(generated_spec(swagger=True))}
    assert swagger["op1"].path == "/api/v1/block0/op1/7" and swagger["op0"].path.endswith("/items/1")


def test_resolve_follows_local_refs() -> None:
    doc = {"openapi": "3.0.3", "paths": {"/o/{id}": {"get": {
        "security": [{"k": []}], "parameters": [{"$ref": "#/components/parameters/Id"}]}}},
        "components": {"parameters": {"Id": {"name": "id", "in": "path",
                                             "schema": {"$ref": "#/components/schemas/Id"}}},
                       "schemas": {"Id": {"type": "integer", "example": 42}}}}
    [op] = openapi.operations(doc)
    assert op.path == "/o/42"


def test_the_base_urls_own_path_is_not_repeated() -> None:
    spec = generated_spec(2)
    assert openapi.operations(spec)[0].path == "/api/v1/block0/items/ex-0"
    assert openapi.operations(spec, under="/api/v1/")[0].path == "/block0/items/ex-0"
    assert openapi.operations(spec, under="/api")[0].path == "/v1/block0/items/ex-0"
    assert openapi.operations(spec, under="/other")[0].path == "/api/v1/block0/items/ex-0"


def test_required_query_parameters_are_filled() -> None:
    doc = {"swagger": "2.0", "paths": {"/search": {"get": {"security": [{"k": []}], "parameters": [
        {"name": "q", "in": "query", "required": True, "type": "string", "example": "a b"},
        {"name": "page", "in": "query", "type": "integer"},
        {"name": "limit", "in": "query", "required": True, "type": "integer", "default": 20}]}}}}
    [op] = openapi.operations(doc)
    assert op.path == "/search?q=a%20b&limit=20"


def test_sweep_finds_the_one_unprotected_operation_among_200(api: Callable[..., Counting]) -> None:
    served = api(open_one=True)
    result = sweep(served)
    assert result.outcome == "failed", result.message
    assert result.message.startswith("1 of the 120 operations probed that the spec secures answered "
                                     "an anonymous call with 2xx: GET /api/v1/block7/items/")
    assert "(op140)" in result.message
    [exchange] = result.exchanges
    assert exchange.status == 200 and "anyone can read this" in result.detail
    assert "Authorization" not in dict(exchange.request_headers)


def test_passive_sweep_sends_no_unsafe_method(api: Callable[..., Counting]) -> None:
    """The counting target saw GETs only; the 80 writes are named as not sent."""
    served = api()
    before = len(served.seen)
    result = sweep(served)
    assert result.outcome == "passed", result.message
    assert "120 of the 120 operations probed that the spec secures refused an anonymous call (401 x120)" \
        in result.message
    assert "80 state-changing operations not sent" in result.message
    assert "1 documented as optional-auth not probed" in result.message
    sent = Counter(m for m, p in served.seen[before:] if p.startswith("/api/v1/"))
    assert sent == Counter({"GET": 120})
    assert ("GET", "/api/v1/health") not in served.seen[before:]  # public by the spec: not probed


def test_active_sweep_sends_every_secured_operation(api: Callable[..., Counting]) -> None:
    served = api(swagger=True)
    before = len(served.seen)
    result = sweep(served, active=True)
    assert result.outcome == "passed", result.message
    assert "200 of the 200 operations probed" in result.message
    sent = Counter(m for m, p in served.seen[before:] if p.startswith("/api/v1/"))
    assert sent == Counter({"GET": 120, "POST": 30, "PUT": 20, "DELETE": 20, "PATCH": 10})


def test_allow_writes_and_configured_refusals(api: Callable[..., Counting]) -> None:
    served = api()
    result = sweep(served, openapi_sweep={"allow_writes": True, "refused": [403]})
    # 401 is not a refusal here: nothing was served, so no failure, but the pass says so.
    assert result.outcome == "passed", result.message
    assert "0 of the 200 operations probed" in result.message
    assert "200 answered without serving it (401 x200)" in result.message


def test_spec_from_a_yaml_file(api: Callable[..., Counting], tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "openapi.yaml"
    path.write_text(yaml.safe_dump(generated_spec()))
    result = sweep(api(open_one=True), source=f"file:{path}")  # an absolute file: file:
    assert result.outcome == "failed" and "(op140)" in result.message


def test_spec_source_config() -> None:
    from pytest_prodready.checks.openapi_sweep import spec_source

    assert spec_source("/openapi.json", "openapi") == "/openapi.json"
    assert spec_source("specs/api.yaml", "openapi") == "specs/api.yaml"
    with pytest.raises(ConfigError):
        spec_source("http://", "openapi")


def test_a_spec_that_is_not_openapi_cannot_judge(api: Callable[..., Counting]) -> None:
    result = sweep(api(), source="/api/v1/whatever")
    assert result.outcome == "error"
    assert "answered 401" in result.message


def test_helper_every_operation_requires_auth(api: Callable[..., Counting]) -> None:
    from pytest_prodready.assertions import assert_every_operation_requires_auth
    from pytest_prodready.exceptions import CheckFailure

    for served, fails in ((api(), False), (api(open_one=True), True)):
        with Target(Settings(values={**DEFAULTS, "base_url": served.url}, secrets={},
                             sources={})) as target:
            if fails:
                with pytest.raises(CheckFailure, match="op140"):
                    assert_every_operation_requires_auth(target, "/openapi.json")
            else:
                assert_every_operation_requires_auth(target, "/openapi.json")


def test_config_names_a_missing_spec_file_and_accepts_the_rest(tmp_path: Path) -> None:
    from pytest_prodready import family
    from pytest_prodready.config import Overrides, load_settings

    (tmp_path / "prodready.toml").write_text('base_url = "http://127.0.0.1:9"\nopenapi = "specs/api.yaml"\n')
    with pytest.raises(ConfigError, match="openapi"):
        family.validate(load_settings(tmp_path, Overrides(), environ={}))
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "api.yaml").write_text("openapi: 3.0.3\npaths: {}\n")
    settings = load_settings(tmp_path, Overrides(), environ={})
    family.validate(settings)
    assert settings.get("openapi") == "specs/api.yaml"
    (tmp_path / "prodready.toml").write_text('base_url = "http://127.0.0.1:9"\nopenapi = "/openapi.json"\n'
                                             '[openapi_sweep]\nrefused = [401]\nallow_writes = true\n')
    assert load_settings(tmp_path, Overrides(), environ={}).get("openapi_sweep.refused") == [401]


# -- a hostile spec (it comes from the target) ------------------------------------------
def _json_values() -> Any:
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(["$ref", "in", "name", "schema", "example",
                                                           "examples", "default", "enum", "type",
                                                           "required", "security", "parameters",
                                                           "get", "post", "url", "variables", "x"])
                                          | st.text(max_size=6), inner, max_size=5), max_leaves=25)


def test_any_shape_of_spec_gives_operations_or_a_spec_error() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(paths=st.dictionaries(st.sampled_from(["/a/{id}", "/b", "/{x}/{y}", "c", "/{"]), _json_values(),
                                 max_size=4),
           extra=st.dictionaries(st.sampled_from(["servers", "security", "basePath", "components"]),
                                 _json_values(), max_size=3),
           kind=st.sampled_from(["openapi", "swagger"]))
    def run(paths: dict[str, Any], extra: dict[str, Any], kind: str) -> None:
        doc = {kind: "3.0.0", "paths": paths, **extra}
        parsed = openapi.parse_document(json.dumps(doc))
        for op in openapi.operations(parsed):
            assert op.method in {m.upper() for m in openapi.METHODS} and op.path.startswith("/")

    run()


# -- FastAPI's own spec ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def fastapi_url() -> Iterator[str]:
    """A FastAPI app whose /openapi.json FastAPI generates. Routes depend on HTTPBearer;
    one uses HTTPBearer(auto_error=False) and never checks the result: the spec declares
    security there, and anyone gets the data (a real, common bug)."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from tests.targets.frameworks import serve_asgi

    bearer, lenient = HTTPBearer(), HTTPBearer(auto_error=False)

    def user(creds: HTTPAuthorizationCredentials = Depends(bearer)) -> str:  # noqa: B008
        if creds.credentials != "real-token":
            raise HTTPException(status_code=401, detail="invalid token")
        return "alice"

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders/{order_id}")
    def order(order_id: int, who: str = Depends(user)) -> dict[str, object]:
        return {"id": order_id, "owner": who}

    @app.get("/invoices")
    def invoices(page: int, who: str = Depends(user)) -> list[int]:
        return [page]

    @app.post("/orders")
    def create(who: str = Depends(user)) -> dict[str, str]:
        return {"created": who}

    @app.delete("/orders/{order_id}")
    def delete(order_id: int, who: str = Depends(user)) -> dict[str, int]:
        return {"deleted": order_id}

    @app.get("/reports/{year}")
    def report(year: int, creds: HTTPAuthorizationCredentials | None = Depends(lenient)) -> dict[str, int]:  # noqa: B008
        return {"year": year, "revenue": 1234567}  # forgot: if creds is None: raise 401

    with serve_asgi(app) as url:
        yield url


def test_fastapi_spec_sweep_finds_the_lenient_route(fastapi_url: str) -> None:
    settings = Settings(values={**DEFAULTS, "base_url": fastapi_url, "openapi": "/openapi.json"},
                        secrets={}, sources={})
    with Target(settings) as target:
        result = run_check(CHECK, target, "/openapi.json")
    assert result.outcome == "failed", result.message
    assert result.message.startswith("1 of the 3 operations probed that the spec secures answered an "
                                     "anonymous call with 2xx: GET /reports/1 (report_reports__year__get)")
    assert "1234567" in result.detail
    sent = [ex.request_line for ex in result.exchanges]
    assert not any(line.startswith(("POST", "DELETE")) for line in sent)
