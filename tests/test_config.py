"""Bad config is one clear usage error that names the key, before any request is sent.

Each malformed config runs a real `pytest --prodready` (pytester) pointed at a real target
whose log must stay empty; a hypothesis test feeds random tables to the validator itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_prodready import config, schema
from pytest_prodready.errors import ConfigError
from tests.targets.webapp import Served, serve

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLWJ5dGVz"
STRIPE_KEY = "sk_live_51HxQz8Kf3mPq7Lr2"
MISSING_ENV = "PRODREADY_TEST_SURELY_UNSET_TOKEN"
EMPTY_ENV = "PRODREADY_TEST_EMPTY_TOKEN"
BASE = 'base_url = "{url}"\n'


@dataclass(frozen=True)
class Case:
    id: str
    toml: str  # '{url}' is the live target's URL
    expect: tuple[str, ...]  # all of these in the one error line
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    file: str = "prodready"


CASES = [
    Case("unknown-key", BASE + "max_concurency = 8\n",
         ("max_concurency: unknown key", "did you mean 'max_concurrency'?")),
    Case("unknown-nested-key", BASE + '[metrics]\npaths = "/metrics"\n',
         ("metrics.paths: unknown key", "did you mean 'path'?")),
    Case("unknown-key-in-profile", BASE + '[env.production]\nbase_ur = "https://api.example.com"\n',
         ("env.production.base_ur", "did you mean 'base_url'?")),
    Case("string-for-max_concurrency", BASE + 'max_concurrency = "8"\n',
         ("max_concurrency: expected an integer, got a string '8'",)),
    Case("int-for-base_url", "base_url = 8080\n", ("base_url: expected a string, got an integer 8080",)),
    Case("max_concurrency-out-of-range", BASE + "max_concurrency = 0\n",
         ("max_concurrency: 0 is out of range",)),
    Case("nan-timeout", BASE + "timeout_s = nan\n", ("timeout_s: nan is not a finite number",)),
    Case("ftp-base_url", 'base_url = "ftp://files.example.com"\n',
         ("base_url: 'ftp://files.example.com' is not an http(s) URL",)),
    Case("unparsable-base_url", 'base_url = "http://[::1"\n',
         ("base_url: 'http://[::1' is not a valid URL",)),
    Case("port-out-of-range", 'base_url = "http://127.0.0.1:99999"\n',
         ("base_url: 'http://127.0.0.1:99999' is not a valid URL",)),
    Case("bad-url-on-command-line", BASE, ("--prodready-url / PRODREADY_URL", "'staging.example.com'"),
         args=("--prodready-url", "staging.example.com")),
    Case("origin-with-a-path", BASE + 'allowed_origins = ["https://app.example.com/login"]\n',
         ("allowed_origins[0]", "is an origin, so it has no path")),
    Case("relative-path", BASE + 'health = ["/api/health", "api/ready"]\n',
         ("health[1]: 'api/ready' must be a path starting with '/'",)),
    Case("unknown-method-in-protected", BASE + 'protected = ["/api/agents", "FETCH /api/chat"]\n',
         ("protected[1]: 'FETCH /api/chat': unknown method 'FETCH'",)),
    Case("bad-rate", BASE + '[rate_limits]\n"POST /api/login" = "5 per minute"\n',
         ('rate_limits."POST /api/login"', "is not a rate")),
    Case("bad-severity-in-fail-on-option", BASE, ("--prodready-fail-on", "'urgent' is not a severity"),
         args=("--prodready-fail-on", "urgent")),
    Case("bad-severity-in-fail-on-env", BASE, ("--prodready-fail-on", "'urgent' is not a severity"),
         env={"PRODREADY_FAIL_ON": "urgent"}),
    Case("bad-severity-in-severity-table", BASE + '[severity]\n"headers.csp" = "urgent"\n',
         ('severity."headers.csp"', "'urgent' is not a severity")),
    Case("unknown-check-in-severity-table", BASE + '[severity]\n"headers.cps" = "low"\n',
         ('severity."headers.cps"', "did you mean 'headers.csp'?")),
    Case("missing-env-var", BASE + f'[auth]\ntoken_env = "{MISSING_ENV}"\n',
         ("auth.token_env", f"environment variable {MISSING_ENV} is not set")),
    Case("empty-env-var", BASE + f'[metrics]\npath = "/metrics"\ntoken_env = "{EMPTY_ENV}"\n',
         ("metrics.token_env", f"environment variable {EMPTY_ENV} is empty"), env={EMPTY_ENV: ""}),
    Case("missing-env-var-of-an-identity", BASE + f'[identities.bob]\ntoken_env = "{MISSING_ENV}"\n',
         ("identities.bob.token_env", MISSING_ENV)),
    Case("value-not-an-env-name", BASE + '[auth]\ntoken_env = "tok-valid-3b8f1c9a7d2e!"\n',
         ("auth.token_env", "is not an environment variable name")),
    Case("jwt-literal", BASE + f'[identities.alice]\ntenant = "{JWT}"\n',
         ("identities.alice.tenant: this value looks like a secret",)),
    Case("stripe-key-literal", BASE + f'allowed_hosts = ["cdn.example.com", "{STRIPE_KEY}"]\n',
         ("allowed_hosts[1]: this value looks like a secret",)),
    Case("password-in-url", BASE + '[tls]\nhttp_url = "http://admin:hunter2hunter2@staging.example.com"\n',
         ("tls.http_url: this value looks like a secret",)),
    Case("token-under-auth", BASE + '[auth]\ntoken = "abc123def456"\n',
         ("auth.token:", "secrets never go in the config file", "'token_env'")),
    Case("invalid-toml", BASE + 'protected = ["/api/agents"\nhealth = []\n',
         ("prodready.toml is not valid TOML",)),
    Case("unknown-profile", BASE + '[env.production]\nbase_url = "https://api.example.com"\n',
         ("profile 'staging'", "--prodready-env", "profiles: production"),
         args=("--prodready-env", "staging")),
    Case("waiver-with-a-bad-date", BASE + '[[waivers]]\nid = "headers.csp"\nreason = "SEC-142"\n'
         'expires = "next spring"\n', ("waivers[0].expires: 'next spring' is not a date",)),
    Case("waiver-without-a-reason", BASE + '[[waivers]]\nid = "headers.csp"\n',
         ("waivers[0].reason: is required here",)),
    Case("waiver-for-an-unknown-check", BASE + '[[waivers]]\nid = "headers.cps"\nreason = "SEC-142"\n',
         ("waivers[0].id", "no check 'headers.cps'", "did you mean 'headers.csp'?")),
    Case("unknown-category-in-only", BASE, ("--prodready-only", "unknown category 'corss'"),
         args=("--prodready-only", "corss")),
    Case("missing-config-file", BASE, ("config file nowhere.toml not found",),
         args=("--prodready-config", "nowhere.toml")),
    Case("pyproject-prefix", BASE.replace("base_url", "[tool.prodready]\nbase_url") + "retries = 9\n",
         ("pyproject.toml", "tool.prodready.retries: 9 is out of range"), file="pyproject"),
]
SECRET_LITERALS = (JWT, STRIPE_KEY, "hunter2hunter2", "abc123def456")


@pytest.fixture(scope="module")
def target() -> Iterator[Served]:
    """One real target for the module: no bad config may ever reach it."""
    with serve() as served:
        yield served


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_is_a_one_line_usage_error_naming_the_key(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, target: Served, case: Case) -> None:
    monkeypatch.delenv(MISSING_ENV, raising=False)
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    pytester.makefile(".toml", **{case.file: case.toml.format(url=target.url)})
    pytester.makepyfile(test_smoke="def test_smoke():\n    pass\n")

    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", *case.args)

    out = "\n".join(result.outlines + result.errlines)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    lines = [line for line in result.errlines if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), out
    for expected in case.expect:
        assert expected in lines[0], out
    for secret in SECRET_LITERALS:
        assert secret not in out  # the refusal does not repeat the secret it refuses
    assert target.log == [], [f"{s.method} {s.path}" for s in target.log]


def test_good_config_of_the_same_shape_reaches_the_target(
        pytester: pytest.Pytester, target: Served) -> None:
    """Control: the harness above does reach the target when the config is fine."""
    pytester.makefile(".toml", prodready=BASE.format(url=target.url) + "max_concurrency = 8\n")
    result = pytester.runpytest("--prodready", "-p", "no:cacheprovider", "--prodready-only", "errors",
                                "-k", "not_found")
    assert result.ret == pytest.ExitCode.OK, "\n".join(result.outlines + result.errlines)
    assert target.log
    target.log.clear()


# -- fuzzing the validator ----------------------------------------------------------------
def _field_names(spec: Any) -> set[str]:
    """Every key name the schema knows, at any depth."""
    if isinstance(spec, schema.Table):
        return set(spec.fields) | {n for sub in spec.fields.values() for n in _field_names(sub)}
    if isinstance(spec, (schema.TableOf, schema.ArrayOf)):
        return _field_names(spec.item)
    if isinstance(spec, schema.MapOf):
        return _field_names(spec.value)
    return set()


KEYS = [*sorted(_field_names(schema.ROOT)),
        "production", "alice", "/api", "POST /api/login", "headers.csp", "x_env", ""]
INTERESTING = ["https://staging.example.com", "http://[::1", "http://h:99999", "ftp://x", "/api",
               "api", "GET /api", "FETCH /x", "POST /api/login", "5/minute", "high", "urgent",
               "2027-01-31", "2027-13-45", JWT, STRIPE_KEY, "PRODREADY_TOKEN", "not a name",
               "hmac-sha256", "db.internal:5432", "db:0", "hex", "", " ", "\x1b[2J", "\x00"]
scalars = st.one_of(
    st.sampled_from(INTERESTING), st.text(max_size=20), st.integers(), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True), st.dates(), st.datetimes(),
    st.times(), st.sampled_from([0, 1, 64, 65, 300, 65536, -1]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
tables = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=tables, environ=st.dictionaries(st.sampled_from(["PRODREADY_TOKEN", "x"]), st.text(max_size=5)))
def test_any_table_validates_or_is_a_config_error_naming_the_key(
        raw: dict[str, Any], environ: dict[str, str]) -> None:
    try:
        validated = config.validate(raw)
        config.resolve_secrets(validated, environ)
    except ConfigError as exc:
        assert exc.key, str(exc)  # always names where the problem is
        assert str(exc).startswith("prodready config: ")
        return
    # What validates is usable: known keys only, URLs and numbers the client can take.
    assert set(validated) <= set(schema.ROOT.fields)
    if "base_url" in validated:
        assert validated["base_url"].startswith(("http://", "https://"))
    for key in ("timeout_s",):
        if key in validated:
            assert 0 < validated[key] <= 300


VALIDATORS = [schema.url, schema.path, schema.origin, schema.endpoint, schema.host_port,
              schema.env_name, schema.severity, schema.date, schema.rate, schema.boolean,
              schema.integer(1, 64), schema.number(0, 300), schema.list_of(schema.endpoint)]


@settings(max_examples=200, deadline=None, database=None)
@given(validator=st.sampled_from(VALIDATORS), value=st.one_of(scalars, st.lists(scalars, max_size=3)))
def test_each_validator_returns_or_raises_config_error(validator: Any, value: Any) -> None:
    try:
        validator(value, "key.path")
    except ConfigError as exc:
        assert exc.key.startswith("key.path")


def test_only_the_schemas_env_keys_name_secrets() -> None:
    """A free key ending in '_env' (a rate-limited path) is not an environment variable name."""
    validated = config.validate({"rate_limits": {"/api/dev_env": "5/minute"},
                                 "auth": {"token_env": "PRODREADY_TOKEN"}})
    assert config.resolve_secrets(validated, {"PRODREADY_TOKEN": "s3cret-value"}) == {
        "auth.token_env": "s3cret-value"}


def test_dates_in_waivers_accept_toml_dates_and_strings() -> None:
    table = {"waivers": [{"id": "headers.csp", "reason": "r", "expires": dt.date(2027, 1, 31)},
                         {"id": "headers.hsts", "reason": "r", "expires": "2027-01-31"}]}
    validated = config.validate(table)
    assert [w["expires"] for w in validated["waivers"]] == [dt.date(2027, 1, 31)] * 2
