"""Bad config is fuzzed: every input ends in success or a ConfigError that names the key.

Random TOML-like structures (nested tables and lists of strings, integers, floats, booleans,
dates and times; random keys mixed with the schema's own, so known keys get wrong types)
go through `config.validate`, and the same structures written out as TOML go through
`config.load_settings` with random command-line and environment overrides. Nothing else may
escape: no TypeError, no RecursionError, no OverflowError, and no message that repeats a
secret. Bounded so the module runs in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_prodready import config, schema
from pytest_prodready.exceptions import ConfigError

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz"
STRIPE_KEY = "sk_live_51HxQz8Kf3mPq7Lr2"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PASSWORD = "hunter2hunter2"  # secret-shaped only as a URL's password
SECRETS = (JWT, STRIPE_KEY, WHSEC, PASSWORD)
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _field_names(spec: Any) -> set[str]:
    """Every key name the schema knows (planned families included), at any depth."""
    if isinstance(spec, schema.Table):
        subs = [*spec.fields.values(), *spec.planned.values()]
        return set(spec.fields) | set(spec.planned) | {n for sub in subs for n in _field_names(sub)}
    if isinstance(spec, (schema.TableOf, schema.ArrayOf)):
        return _field_names(spec.item)
    if isinstance(spec, schema.MapOf):
        return _field_names(spec.value)
    return set()


KEYS = [*sorted(_field_names(schema.ROOT)), "production", "alice", "/api", "POST /api/login",
        "headers.csp", "headers.csp[/x", "x_env", "token", "", STRIPE_KEY]
INTERESTING = ["https://staging.example.com", "http://[::1", "http://h:99999", "ftp://x", "/api",
               "api", "GET /api", "FETCH /x", "POST /api/login", "5/minute", "high", "urgent",
               "2027-01-31", "2027-13-45", "PRODREADY_TOKEN", "not a name", "hmac-sha256", "stripe",
               "db.internal:5432", "db:0", "[::1]:443", "hex", "", " ", "\x1b[2J", "\x00", "X Bad: y",
               "X-Sig\n", "Bearer\r\n", "headers.csp", "headers.csp[/x", "tls.cert_valid[[::1]:443]",
               "cdn.example.com", "https://cdn.example.com", "*.example.com", "sha256=",
               "http://admin:hunter2hunter2@staging.example.com", *SECRETS]
scalars = st.one_of(
    st.sampled_from(INTERESTING), st.text(max_size=20), st.integers(), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True), st.dates(), st.datetimes(), st.times(),
    st.sampled_from([0, 1, 14, 64, 65, 300, 398, 1024, 65536, 100_000, 10**12, 2**63, -1]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A chain of lists or tables nested up to 40 levels: deeper than any setting."""
    node: Any = draw(scalars)
    for _ in range(draw(st.integers(0, 40))):
        node = [node] if draw(st.booleans()) else {draw(keys): node}
    return node


tables = st.dictionaries(keys, st.one_of(values, values, values, deep()), max_size=6)
# A profile table and a webhook table often enough that their insides are reached too.
configs = st.one_of(
    tables,
    st.builds(lambda t, p: {**t, "env": {"production": p}}, tables, tables),
    st.builds(lambda t, w: {**t, "webhooks": {"kommo": w}}, tables,
              st.fixed_dictionaries({"path": st.sampled_from(["/hook", "hook"]),
                                     "scheme": st.sampled_from(["hmac-sha256", "stripe", "nope"]),
                                     "secret_env": st.sampled_from(["KOMMO_SECRET", WHSEC, "a b"])},
                                    optional={"header": st.sampled_from(INTERESTING),
                                              "prefix": st.sampled_from(INTERESTING),
                                              "tolerance_s": st.integers()})),
)
environs = st.dictionaries(st.sampled_from(["PRODREADY_TOKEN", "KOMMO_SECRET", "x"]), st.text(max_size=5))


def _assert_clean(exc: ConfigError) -> None:
    message = str(exc)
    assert exc.problems and (exc.key, exc.problem) == exc.problems[0], message
    for secret in SECRETS:
        if secret == PASSWORD and f"'{PASSWORD}'" in message:
            continue  # a bare password quoted as a value is a word like any other (secret in a URL)
        assert secret not in message, message
    assert not schema.looks_like_secret(message), message


def _assert_usable(validated: dict[str, Any]) -> None:
    """What validates is usable: known keys only, URLs and numbers the client can take."""
    assert set(validated) <= set(schema.ROOT.fields)
    if "base_url" in validated:
        assert validated["base_url"].startswith(("http://", "https://"))
    if "timeout_s" in validated:
        assert 0 < validated["timeout_s"] <= 300
    for key in ("request_budget", "max_body_bytes", "health_budget_ms"):
        if key in validated:
            assert 0 < validated[key] <= 64 * 1024 * 1024


@FUZZ
@given(raw=configs, environ=environs)
def test_any_table_validates_or_is_a_config_error_naming_the_key(
        raw: dict[str, Any], environ: dict[str, str]) -> None:
    try:
        validated = config.validate(raw)
        config.resolve_secrets(validated, environ)
    except ConfigError as exc:
        assert exc.key, str(exc)  # always names where the problem is
        assert all(key for key, _ in exc.problems), str(exc)
        assert str(exc).startswith("prodready config: ")
        _assert_clean(exc)
        return
    _assert_usable(validated)


# -- the same structures, written as TOML, through the whole loader ----------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False).replace("\x7f", "\\u007f")


def _document(raw: dict[str, Any]) -> str:
    return "".join(f"{_key(k)} = {_toml(v)}\n" for k, v in raw.items())


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


overrides = st.builds(
    config.Overrides,
    url=st.sampled_from([None, "https://staging.example.com", "staging.example.com", STRIPE_KEY]),
    profile=st.sampled_from([None, "production", "staging"]),
    fail_on=st.sampled_from([None, "high", "urgent", JWT]),
    fallback_url=st.sampled_from([None, "http://127.0.0.1:8000", "nope"]),
    blame=st.sampled_from([{}, {"url": "PRODREADY_URL (env)", "fail_on": "prodready_fail_on (ini)"}]),
)


@FUZZ
@given(raw=configs, given=overrides, environ=environs)
def test_any_file_loads_or_is_a_config_error_naming_the_key_or_the_file(
        folder: Path, raw: dict[str, Any], given: config.Overrides, environ: dict[str, str]) -> None:
    (folder / "prodready.toml").write_text(_document(raw), encoding="utf-8")
    try:
        loaded = config.load_settings(folder, given, environ=environ)
    except ConfigError as exc:
        # A file that does not parse is named by the file; everything else by its key.
        assert exc.key or "prodready.toml" in str(exc), str(exc)
        _assert_clean(exc)
        return
    _assert_usable({k: v for k, v in loaded.values.items() if k in schema.ROOT.fields})
    assert loaded.base_url == "" or loaded.base_url.startswith(("http://", "https://"))


@settings(max_examples=100, deadline=None, database=None)
@given(depth=st.integers(0, 3000), kind=st.sampled_from(["[", "{a = "]))
def test_nesting_of_any_depth_is_a_config_error_or_fine(folder: Path, depth: int, kind: str) -> None:
    close = "]" if kind == "[" else "}"
    inner = "1" if kind != "[" else ""
    (folder / "prodready.toml").write_text(f"page = {kind * depth}{inner}{close * depth}\n")
    with pytest.raises(ConfigError) as caught:
        config.load_settings(folder, config.Overrides())
    assert caught.value.key == "page" or "prodready.toml" in str(caught.value), str(caught.value)


# -- each validator on its own -------------------------------------------------------------------
VALIDATORS = [schema.url, schema.path, schema.origin, schema.endpoint, schema.host_port,
              schema.hostname, schema.env_name, schema.severity, schema.date, schema.rate,
              schema.boolean, schema.header_name, schema.header_value, schema.auth_scheme,
              schema.waiver_id, schema.check_id, schema.file_path, schema.bounded_text(10),
              schema.integer(1, 64), schema.number(0, 300), schema.list_of(schema.endpoint)]


@FUZZ
@given(validator=st.sampled_from(VALIDATORS), value=st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_each_validator_returns_or_raises_config_error(validator: Any, value: Any) -> None:
    try:
        validator(value, "key.path")
    except ConfigError as exc:
        assert exc.key.startswith("key.path")
        for secret in SECRETS:
            if secret == PASSWORD and value == PASSWORD:
                continue  # a bare password is a word like any other; it is secret in a URL
            assert secret not in str(exc)
