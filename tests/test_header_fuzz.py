"""Hostile response headers never crash the client, and never print the token (issue 8.2).

A 429 with `Retry-After: Mon, 01 Jan 99999999999 00:00:00 GMT` once raised OverflowError
inside urllib3's Retry-After parsing and escaped the probe; pytest then printed the
request's headers, raw token included, in its traceback. Here a real loopback server
(a bare socket, so every byte is ours) answers with response heads drawn by hypothesis:
Retry-After (absurd years, negative, huge, garbage), Location (garbage, huge, control
characters, other hosts, the token echoed back), Content-Length (negative, huge,
non-numeric, duplicated, conflicting), Set-Cookie (thousands of attributes, garbage,
more lines than http.client takes), Content-Encoding (gzip, br, deflate, unknown, none of
them matching the body), with statuses 200/301/302/429/503. For every example, fetching a
credentialed probe returns an Exchange (a status or a named error) and never raises, and
neither its rendering nor its JSON form holds the token.

Then the same 429 through pytest itself: a user's test using `prodready_target`, run with
`-vv --tb=long -l -rA --junitxml`, prints the token nowhere.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from conftest import TOKEN_ENV, make_target, webapp_toml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_prodready.evidence import Exchange
from pytest_prodready.target import Probe
from tests.targets.recorder import Listener
from tests.targets.webapp import VALID_TOKEN

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
# Where the server writes back the Authorization value it received: a target that echoes
# the caller's token into its headers (a debug header, a redirect, a cookie).
ECHO = "{AUTH}"
OVERFLOWING_RETRY_AFTER = "Mon, 01 Jan 99999999999 00:00:00 GMT"


def token_forms(token: str) -> list[str]:
    """The token as a target could echo it: raw, base64, percent-encoded."""
    return [token, base64.b64encode(token.encode()).decode(), quote(token, safe="")]


# -- the server ------------------------------------------------------------------------------
@dataclass
class Scripted:
    """A loopback server answering every request with `response` (the ECHO filled in)."""

    response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # The recorder's listener: one thread per connection, each answered once.
        self.listener = Listener("127.0.0.1", 0, self._handle, self.stop)
        self.port = self.listener.port
        self.url = f"http://127.0.0.1:{self.port}"

    def _handle(self, conn: socket.socket, _port: int) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 1 << 20:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        auth = b""
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"authorization":
                auth = value.strip()
        with self.lock:
            self.requests += 1
            response = self.response
        # One answer per connection, then close: whatever Content-Length says, the
        # client is never left waiting for bytes that will not come.
        conn.sendall(response.replace(ECHO.encode(), auth))
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)

    def answer(self, response: bytes) -> None:
        with self.lock:
            self.response = response

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


# -- the strategies -----------------------------------------------------------------------
def _text(alphabet: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, max_size=max_size)


LATIN1 = st.characters(max_codepoint=0xFF)
CONTROLS = st.sampled_from([chr(c) for c in (*range(0, 32), 127)])
ABSURD_YEARS = st.one_of(st.sampled_from([0, 1, 1969, 1970, 2038, 9999, 10000, 99999999999,
                                          -1, -99999999999, 2**63, 10**30]),
                         st.integers(min_value=10**4), st.integers(max_value=1900))
DAYS = st.sampled_from(["Mon", "Tue", "Sun", "Xyz", ""])
MONTHS = st.sampled_from(["Jan", "Feb", "Dec", "Foo", "13"])


@st.composite
def retry_after_dates(draw: st.DrawFn) -> str:
    """HTTP dates in the distant past or absurdly far away (never a wait of a few seconds)."""
    return (f"{draw(DAYS)}, {draw(st.integers(-5, 99)):02d} {draw(MONTHS)} {draw(ABSURD_YEARS)} "
            f"{draw(st.integers(0, 99)):02d}:00:00 {draw(st.sampled_from(['GMT', 'UTC', '+9999', '']))}")


RETRY_AFTER = st.one_of(
    st.just(OVERFLOWING_RETRY_AFTER),
    retry_after_dates(),
    st.integers(max_value=0).map(str),
    st.integers(min_value=10**6).map(str),  # capped by the client: it never waits long
    st.sampled_from(["1e309", "inf", "-inf", "nan", "NaN", "0x10", "1_000", " 5", "5 ", "١٢",
                     "-0", "+1e400", "9" * 400, "", " ", ECHO, f"Bearer {ECHO}"]),
    _text(LATIN1, 40),
)


def _location(port: int) -> st.SearchStrategy[str]:
    self_url = f"http://127.0.0.1:{port}"
    return st.one_of(
        st.sampled_from([
            "/", "/ok", "//", "///", "http://", "http://[", "http://[::1", "http://:80/",
            f"{self_url}/loop", f"{self_url}/?token={ECHO}", f"http://127.0.0.2:{port}/",
            f"http://127.0.0.2:{port}/?t={ECHO}", "http://example.invalid/",
            f"http://{ECHO}@127.0.0.2:{port}/", f"http://u:{ECHO}@127.0.0.1:{port}/",
            f"http://127.0.0.1:{port}:{port}/", f"http://127.0.0.1:{port}\\@127.0.0.2:{port}/",
            "http://127.0.0.1:99999/", "http://127.0.0.1:-1/", "http://127.0.0.1:\uff10/",
            "https://127.0.0.1:1/", "ftp://127.0.0.1/", "javascript:alert(1)", "data:,x",
            "http://\uff11\uff12\uff17.\uff10.\uff10.\uff12/", "http://xn--/", "http://" + "a" * 300 + "/",
            "http://" + ".".join(["a" * 63] * 5) + "/", "\\\\evil", "\x00", "%", "%zz",
            ECHO, "/" + "a/" * 20_000,
        ]),
        _text(LATIN1, 200),
        st.builds(lambda a, b: f"http://127.0.0.{a}{b}/", CONTROLS, st.integers(0, 9)),
        st.builds(lambda n: "/" + "x" * n, st.integers(1, 60_000)),
    )


CONTENT_LENGTHS = st.one_of(
    st.just("correct"), st.just("absent"),
    st.integers(max_value=-1).map(str), st.integers(min_value=10**9).map(str),
    st.sampled_from(["abc", "", " ", "1e3", "0x10", "+5", "5 5", "5,5", "-0", "9" * 100, ECHO]),
    st.just("duplicate"), st.just("conflicting"),
)


def _set_cookie() -> st.SearchStrategy[list[str]]:
    one = st.one_of(
        st.builds(lambda n: "sid=x; " + "; ".join(f"a{i}=b" for i in range(n)), st.integers(1, 5000)),
        st.sampled_from([f"sid={ECHO}; Secure; HttpOnly", "=", ";;;;", "sid", "sid=x; Max-Age=9" * 50,
                         "sid=x; Expires=Mon, 01 Jan 99999999999 00:00:00 GMT",
                         "sid=x; Max-Age=99999999999999999999999", "sid=x; Domain=..; Path=" + "/" * 1000]),
        _text(LATIN1, 100),
    )
    return st.one_of(st.lists(one, max_size=4),
                     st.integers(90, 150).map(lambda n: [f"c{i}=v" for i in range(n)]))


ENCODINGS = st.sampled_from(["", "gzip", "br", "deflate", "zstd", "compress", "identity",
                             "gzip, gzip", "gzip, br", "x-unknown", "GZIP", " gzip "])


def _body(encoding: str) -> st.SearchStrategy[bytes]:
    """A body that does not match its Content-Encoding (or, sometimes, does)."""
    plain = st.binary(max_size=2000)
    if encoding.strip().lower() == "gzip":
        return st.one_of(plain, st.binary(max_size=200).map(lambda b: gzip.compress(b)[:-4]),
                         st.binary(max_size=200).map(gzip.compress))
    if encoding == "deflate":
        return st.one_of(plain, st.binary(max_size=200).map(lambda b: zlib.compress(b)[: len(b) // 2]))
    return plain


@dataclass(frozen=True)
class Response:
    """A drawn response head and body, and the bytes it makes on the wire."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_length: str

    def wire(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} Hostile"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.content_length == "correct":
            lines.append(f"Content-Length: {len(self.body)}")
        elif self.content_length == "duplicate":
            lines += [f"Content-Length: {len(self.body)}"] * 2
        elif self.content_length == "conflicting":
            lines += [f"Content-Length: {len(self.body)}", f"Content-Length: {len(self.body) + 7}"]
        elif self.content_length != "absent":
            lines.append(f"Content-Length: {self.content_length}")
        lines.append("Connection: close")
        head = "\r\n".join(lines) + "\r\n\r\n"
        try:
            raw = head.encode("latin-1")
        except UnicodeEncodeError:
            raw = head.encode("utf-8")
        return raw + self.body


@st.composite
def responses(draw: st.DrawFn, port: int) -> Response:
    status = draw(st.sampled_from([200, 301, 302, 429, 503]))
    headers: list[tuple[str, str]] = []
    if status in (429, 503) or draw(st.booleans()):
        headers.append(("Retry-After", draw(RETRY_AFTER)))
    if status in (301, 302) or draw(st.booleans()):
        headers.append(("Location", draw(_location(port))))
    headers += [("Set-Cookie", cookie) for cookie in draw(_set_cookie())]
    encoding = draw(ENCODINGS)
    if encoding:
        headers.append(("Content-Encoding", encoding))
    headers = draw(st.permutations(headers))
    return Response(status, tuple(headers), draw(_body(encoding)), draw(CONTENT_LENGTHS))


# -- the properties -----------------------------------------------------------------------
def assert_no_token(exchange: Exchange) -> None:
    rendered = str(exchange.render())
    dumped = json.dumps(exchange.to_dict())
    for shown, text in (("render()", rendered), ("to_dict()", dumped), ("repr()", repr(exchange))):
        for form in token_forms(VALID_TOKEN):
            assert form not in text, f"the token ({form!r}) is in the exchange's {shown}:\n{text[:3000]}"


@FUZZ
@given(data=st.data())
def test_hostile_headers_never_crash_a_credentialed_probe(scripted: Scripted, data: st.DataObject) -> None:
    response = data.draw(responses(scripted.port), label="response")
    scripted.answer(response.wire())
    # One retry, not two: the Retry-After of the first answer is still parsed and honoured
    # (capped), and no example waits for a second backoff.
    target = make_target(scripted.url, timeout_s=2, retries=1)
    try:
        exchange = target.fetch(Probe.get("/fuzz", credential="auth.token_env"))
    finally:
        target.close()
    assert isinstance(exchange, Exchange)
    assert exchange.status is not None or exchange.error, exchange.render()
    assert_no_token(exchange)


# The hostile heads worth naming: each alone, against the same probe, as fixed cases.
NAMED = {
    "overflowing Retry-After": ("429", [("Retry-After", OVERFLOWING_RETRY_AFTER)]),
    "overflowing Retry-After on 503": ("503", [("Retry-After", OVERFLOWING_RETRY_AFTER)]),
    "year 10**30 Retry-After": ("429", [("Retry-After", "Mon, 01 Jan 1" + "0" * 30 + " 00:00:00 GMT")]),
    "negative Retry-After": ("429", [("Retry-After", "-99999999999999999999")]),
    "huge Retry-After": ("429", [("Retry-After", "9" * 400)]),
    "1e309 Retry-After": ("429", [("Retry-After", "1e309")]),
    "echoed token Retry-After": ("429", [("Retry-After", f"Bearer {ECHO}")]),
    "echoed token Location": ("302", [("Location", f"http://127.0.0.2:1/?t={ECHO}")]),
    "echoed token userinfo Location": ("302", [("Location", f"http://u:{ECHO}@127.0.0.1:1/")]),
    "double port Location": ("302", [("Location", "http://127.0.0.1:1:2/")]),
    "fullwidth solidus Location": ("302", [("Location", "http://127.0.0.2:1\uff0f@127.0.0.1:1/")]),
    "latin-1 Location": ("302", [("Location", "/caf\xe9")]),
    "negative Content-Length": ("200", [("Content-Length", "-1")]),
    "conflicting Content-Length": ("200", [("Content-Length", "1"), ("Content-Length", "2")]),
    "gzip that is not gzip": ("200", [("Content-Encoding", "gzip")]),
    "150 Set-Cookie lines": ("200", [("Set-Cookie", f"c{i}=v") for i in range(150)]),
    "5000 cookie attributes": ("200", [("Set-Cookie",
                                         "sid=x; " + "; ".join(f"a{i}=b" for i in range(5000)))]),
    "echoed token cookie": ("200", [("Set-Cookie", f"sid={ECHO}; Secure")]),
}


@pytest.mark.parametrize("name", list(NAMED))
def test_named_hostile_head(scripted: Scripted, name: str) -> None:
    status, headers = NAMED[name]
    body = b"not what the headers promise"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    if not any(k == "Content-Length" for k, _ in headers):
        head += f"Content-Length: {len(body)}\r\n"
    head = f"HTTP/1.1 {status} Hostile\r\n{head}Connection: close\r\n\r\n"
    try:
        raw = head.encode("latin-1")
    except UnicodeEncodeError:
        raw = head.encode("utf-8")
    scripted.answer(raw + body)
    target = make_target(scripted.url, timeout_s=2)
    try:
        exchange = target.fetch(Probe.get("/named", credential="auth.token_env"))
        with_header = target.fetch(Probe.get("/named", {"Authorization": f"Bearer {VALID_TOKEN}"}))
    finally:
        target.close()
    for ex in (exchange, with_header):
        assert isinstance(ex, Exchange)
        assert ex.status is not None or ex.error, ex.render()
        assert_no_token(ex)
    if "Retry-After" in name or "Location" in name:
        # The target answered: the client says so (not "no response"), whatever the header;
        # a redirect it does not follow is its answer, with a note saying why.
        assert exchange.status == int(status), exchange.render()


# -- the same 429 through pytest ------------------------------------------------------------
USER_TEST = """
import logging

from pytest_prodready.target import Probe


def test_rate_limited_endpoint(prodready_target):
    exchange = prodready_target.fetch(Probe.get("/api/agents", credential="auth.token_env"))
    request_headers = dict(exchange.request_headers)
    print("sent", request_headers)
    logging.getLogger("user").warning("answer %s", exchange.to_dict())
    assert exchange.status == 200, exchange.render()
"""


@pytest.fixture
def lean_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """No unrelated plugins in the inner run (see tests/test_plugin.py), no outer settings."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest -p no:benchmark")
    for name in ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON",
                 "PRODREADY_SENSITIVE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("retry_after", [OVERFLOWING_RETRY_AFTER, f"Bearer {ECHO}"],
                         ids=["overflowing-date", "echoed-token"])
def test_overflowing_retry_after_prints_no_token_through_pytest(
        pytester: pytest.Pytester, scripted: Scripted, monkeypatch: pytest.MonkeyPatch,
        lean_runs: None, retry_after: str) -> None:
    scripted.answer(f"HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\n"
                    f"X-Echo: {ECHO}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nslow".encode())
    monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
    monkeypatch.setenv("PRODREADY_TEST_METRICS_TOKEN", "tok-metrics-91ad4c0e55")
    config = webapp_toml(scripted.url).replace(f'base_url = "{scripted.url}"',
                                               f'base_url = "{scripted.url}"\ntimeout_s = 2')
    assert "timeout_s = 2" in config
    pytester.makefile(".toml", prodready=config)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest("--prodready", "-vv", "--tb=long", "-l", "-rA",
                                "--junitxml=junit.xml", "-k", "rate_limited", "test_user.py")
    output = result.stdout.str() + result.stderr.str()
    junit_path = pytester.path / "junit.xml"
    junit = junit_path.read_text(encoding="utf-8") if junit_path.exists() else ""
    for form in token_forms(VALID_TOKEN):
        assert form not in output, f"the token ({form!r}) is in pytest's output:\n{output[-5000:]}"
        assert form not in junit, f"the token ({form!r}) is in the JUnit XML:\n{junit[-5000:]}"
    # The user's test fails on the 429: it is reported, nothing crashed the run.
    assert "OverflowError" not in output, output[-5000:]
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output[-5000:]
    assert "test_rate_limited_endpoint FAILED" in output
    assert "429" in output
    assert junit_path.exists()
