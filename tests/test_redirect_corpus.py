"""Credentials never cross hosts through a URL parser differential (issue 8.1).

The allowlist holds 127.0.0.1 only. A redirector there answers `/r?i=N` with a 302 whose
Location is the N-th form of a corpus aimed at 127.0.0.2, a recording host that is NOT
allowed (tests/targets/recorder.py): the spellings on which URL parsers disagree, from
Orange Tsai's "A New Era of SSRF" (backslashes, `#@`, `?@`, `;@`, several `@`, a port
then more), from the Claroty/Snyk "Exploiting URL Parsing Confusion" paper (slashes and
backslashes, userinfo, control characters) and the usual SSRF filter bypasses (decimal,
octal, hex and short IPv4, IPv4-mapped IPv6, fullwidth and enclosed digits, ideographic
full stops, percent-encoded hosts). `P` is the recording host's port, `R` the target's.

For each form and each way a probe carries a secret (the configured credential, an
explicit `Authorization: Bearer`, a webhook signature header):

- the recording host receives nothing carrying the secret, in any header or in the
  request line (raw, base64 or percent-encoded);
- it receives nothing at all, even from a probe without credentials (127.0.0.2 is not in
  the allowlist: no request goes there);
- the evidence (render(), to_dict()) does not show a Location that connects to 127.0.0.2
  as one that goes to 127.0.0.1, and every URL it says was requested is read the same by
  urllib.parse and by the client's connecting parser;
- the target's 302 is reported as the answer it is (a status, a note saying why the
  redirect was not followed), not as "no response".
"""

from __future__ import annotations

import ast
import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlparse, urlsplit

import pytest
import requests

from pytest_prodready.evidence import Exchange
from pytest_prodready.target import Probe, Target
from tests.targets.recorder import FOREIGN_HOST, TARGET_HOST, Recorded, Seen, serve_recorder
from tests.targets.webapp import VALID_TOKEN

# A webhook signature a check would send (its value is a secret too).
SIGNATURE = "sha256=5f0c2b7e9a41d3c8b6e2f1a09d7c4e3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d"


@dataclass(frozen=True)
class Form:
    """One spelling of a Location aimed at 127.0.0.2; {P} and {R} are filled in."""

    id: str
    location: str

    def fill(self, recorded: Recorded) -> str:
        return (self.location.replace("{P}", str(recorded.foreign_port))
                .replace("{R}", str(recorded.target_port)))


CORPUS: tuple[Form, ...] = (
    # -- backslashes: urllib.parse reads them as data, urllib3 and WHATWG as separators
    Form("backslash-before-at", r"http://127.0.0.2:{P}\@127.0.0.1:{R}/metrics"),
    Form("two-backslashes-before-at", r"http://127.0.0.2:{P}\\@127.0.0.1:{R}/"),
    Form("percent-backslash-before-at", "http://127.0.0.2:{P}%5C@127.0.0.1:{R}/"),
    Form("fullwidth-backslash-before-at", "http://127.0.0.2:{P}\uff3c@127.0.0.1:{R}/"),
    Form("small-reverse-solidus-before-at", "http://127.0.0.2:{P}\ufe68@127.0.0.1:{R}/"),
    Form("backslash-separators", r"http:\\127.0.0.2:{P}/"),
    Form("backslash-separators-and-path", r"http:\\127.0.0.2:{P}\metrics"),
    Form("slash-backslash-scheme", "http:/\\127.0.0.2:{P}/"),
    Form("unc-backslashes", r"\\127.0.0.2:{P}/"),
    # -- protocol-relative and scheme-relative
    Form("protocol-relative", "//127.0.0.2:{P}/"),
    Form("protocol-relative-three-slashes", "///127.0.0.2:{P}/"),
    Form("backslash-slash-relative", r"\/127.0.0.2:{P}/"),
    Form("slash-backslash-relative", "/\\127.0.0.2:{P}/"),
    Form("scheme-one-slash", "http:/127.0.0.2:{P}/"),
    Form("scheme-no-slash", "http:127.0.0.2:{P}/"),
    # -- userinfo and the characters that end it early for one parser only
    Form("userinfo-target-at-foreign", "http://127.0.0.1:{R}@127.0.0.2:{P}/"),
    Form("userinfo-percent-at", "http://127.0.0.1:{R}%40@127.0.0.2:{P}/"),
    Form("userinfo-double-encoded-hash", "http://127.0.0.1:{R}%2523@127.0.0.2:{P}/"),
    Form("several-at-signs", "http://127.0.0.1@127.0.0.2:{P}@127.0.0.1:{R}/"),
    Form("hash-before-at", "http://127.0.0.1:{R}#@127.0.0.2:{P}/"),
    Form("query-before-at", "http://127.0.0.1:{R}?@127.0.0.2:{P}/"),
    Form("semicolon-before-at", "http://127.0.0.2:{P};@127.0.0.1:{R}/"),
    Form("percent-slash-before-at", "http://127.0.0.2:{P}%2F@127.0.0.1:{R}/"),
    Form("percent-hash-before-at", "http://127.0.0.2:{P}%23@127.0.0.1:{R}/"),
    Form("fullwidth-solidus-before-at", "http://127.0.0.2:{P}\uff0f@127.0.0.1:{R}/"),
    Form("division-slash-before-at", "http://127.0.0.2:{P}\u2215@127.0.0.1:{R}/"),
    Form("ideographic-stop-before-at", "http://127.0.0.2:{P}\u3002@127.0.0.1:{R}/"),
    Form("nul-before-at", "http://127.0.0.2:{P}\x00@127.0.0.1:{R}/"),
    Form("tab-before-at", "http://127.0.0.2:{P}\t@127.0.0.1:{R}/"),
    Form("orange-space-ampersand-hash", "http://127.0.0.1 &@127.0.0.2:{P}# @127.0.0.1:{R}/"),
    # -- ports: one parser keeps the first, another the last, another gives up
    Form("port-then-port", "http://127.0.0.2:{P}:{R}/"),
    Form("target-port-then-foreign-port", "http://127.0.0.1:{R}:{P}/"),
    Form("leading-zero-port", "http://127.0.0.2:0{P}/"),
    # -- whitespace and control characters inside the host
    Form("tab-in-host", "http://127.0.0.\t2:{P}/"),
    Form("folded-crlf-in-host", "http://127.0.0.\r\n 2:{P}/"),
    Form("bare-cr-in-host", "http://127.0.0.\r2:{P}/"),
    Form("percent-crlf-in-host", "http://127.0.0.%0d%0a2:{P}/"),
    Form("percent-nul-in-host", "http://127.0.0.2%00.127.0.0.1:{R}/"),
    Form("leading-space", " http://127.0.0.2:{P}/"),
    Form("latin-1-byte-in-path", "http://127.0.0.2:{P}/caf\xe9"),
    # -- other spellings of 127.0.0.2
    Form("plain-foreign", "http://127.0.0.2:{P}/"),
    Form("trailing-dot", "http://127.0.0.2.:{P}/"),
    Form("decimal", "http://2130706434:{P}/"),
    Form("octal", "http://0177.0.0.2:{P}/"),
    Form("octal-dword", "http://017700000002:{P}/"),
    Form("hex-dword", "http://0x7f000002:{P}/"),
    Form("hex-octet", "http://0x7f.0.0.2:{P}/"),
    Form("short-two-parts", "http://127.2:{P}/"),
    Form("short-three-parts", "http://127.0.2:{P}/"),
    Form("zero-padded", "http://127.000.000.002:{P}/"),
    Form("ipv6-mapped-dotted", "http://[::ffff:127.0.0.2]:{P}/"),
    Form("ipv6-mapped-hex", "http://[::ffff:7f00:2]:{P}/"),
    Form("ipv6-mapped-long", "http://[0:0:0:0:0:ffff:127.0.0.2]:{P}/"),
    Form("upper-case-scheme", "HTTP://127.0.0.2:{P}/"),
    Form("mixed-case-scheme", "hTtP://127.0.0.2:{P}/"),
    Form("fullwidth-digits", "http://\uff11\uff12\uff17.\uff10.\uff10.\uff12:{P}/"),
    Form("enclosed-digits", "http://\u2460\u2461\u2466.\u24ea.\u24ea.\u2461:{P}/"),
    Form("ideographic-full-stops", "http://127\u30020\u30020\u30022:{P}/"),
    Form("percent-encoded-host", "http://%31%32%37.0.0.2:{P}/"),
    # -- two Location headers (the header value breaks out of its line)
    Form("second-location-foreign", "http://127.0.0.1:{R}/\r\nLocation: http://127.0.0.2:{P}/"),
    Form("first-location-foreign", "http://127.0.0.2:{P}/\r\nLocation: http://127.0.0.1:{R}/"),
)
assert len({form.id for form in CORPUS}) == len(CORPUS) >= 30


def probe_for(index: int, carrier: str) -> Probe:
    path = f"/r?i={index}"
    if carrier == "credential":
        return Probe.get(path, credential="auth.token_env")
    if carrier == "bearer-header":
        return Probe.get(path, {"Authorization": f"Bearer {VALID_TOKEN}"})
    if carrier == "signature-header":
        return Probe.get(path, {"X-Hub-Signature-256": SIGNATURE})
    return Probe.get(path)


CARRIERS = ("credential", "bearer-header", "signature-header")
SECRETS = (VALID_TOKEN, SIGNATURE, SIGNATURE.removeprefix("sha256="))


def encodings(secret: str) -> list[str]:
    return [secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe=""),
            base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")]


# -- servers and targets ----------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_servers() -> Iterator[Recorded]:
    with serve_recorder() as recorded:
        recorded.locations = [form.fill(recorded) for form in CORPUS]
        yield recorded


@pytest.fixture
def recorded(corpus_servers: Recorded) -> Recorded:
    """The servers, with nothing recorded yet for this test."""
    corpus_servers.clear()
    return corpus_servers


@pytest.fixture
def fetch(recorded: Recorded, target_for: Callable[..., Target]) -> Callable[[int, str], Exchange]:
    """fetch(index, carrier): the form's probe, through a fresh target on the redirector."""

    def run(index: int, carrier: str) -> Exchange:
        return target_for(recorded.url, timeout_s=2).fetch(probe_for(index, carrier))

    return run


# -- how the URLs are read ------------------------------------------------------------------
def read_by_urllib(url: str) -> str | None:
    """The host urllib.parse (the allowlist's usual parser, and a reader's) sees."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def read_by_client(url: str) -> str | None:
    """The host requests connects to: its prepared URL (urllib3's parse_url), read by the
    adapter with urllib.parse.urlparse to pick the connection pool."""
    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        return urlparse(str(prepared.url)).hostname
    except (ValueError, requests.exceptions.RequestException, UnicodeError):
        return None


def joined(base: str, location: str) -> str:
    try:
        return urljoin(base, location)
    except ValueError:
        return location


def describe(seen: list[Seen]) -> str:
    """What the servers received, each secret replaced by its name (this file's failure
    messages must not print them either)."""
    lines = []
    for s in seen:
        text = s.text
        for name, secret in (("<TOKEN>", VALID_TOKEN), ("<SIGNATURE>", SIGNATURE)):
            text = text.replace(secret, name)
        lines.append(f"  on port {s.port}: {text!r}")
    return "\n".join(lines)


QUOTED_REDIRECT = re.compile(r"""redirect to (?P<q>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
BARE_REDIRECT = re.compile(r"""redirect to (?P<host>[^\s'"]+) not followed""")


def noted_targets(note: str) -> list[str]:
    """The redirect targets a note says were not followed (quoted URLs, or bare hosts)."""
    shown = []
    for match in QUOTED_REDIRECT.finditer(note):
        try:
            shown.append(str(ast.literal_eval(match["q"])))
        except (ValueError, SyntaxError):
            shown.append(match["q"][1:-1])
    shown += [f"http://{match['host']}/" for match in BARE_REDIRECT.finditer(note)]
    return shown


def shown_locations(exchange: Exchange) -> list[tuple[str, str, str]]:
    """(where, what the client received, what the evidence shows) for every Location header
    (rendered and serialised, in order) and for the target a note says was not followed."""
    received = [value for name, value in exchange.headers if name.lower() == "location"]
    data = exchange.to_dict()
    serialised = [value for name, value in data["response"]["headers"] if name.lower() == "location"]
    rendered = [line.partition(": ")[2] for line in exchange.render().splitlines()
                if line.lower().startswith("< location: ")]
    assert len(serialised) == len(rendered) == len(received), (
        f"the client received Location {received!r}; the evidence shows {serialised!r} and "
        f"renders {rendered!r}")
    pairs = [("to_dict() Location header", got, shown)
             for got, shown in zip(received, serialised, strict=True)]
    pairs += [("render() Location header", got, shown)
              for got, shown in zip(received, rendered, strict=True)]
    # The client follows the header's combined value (duplicates joined by ", ").
    combined = ", ".join(received)
    render_note = exchange.render().rpartition("  note: ")[2] if exchange.note else ""
    for where, note in (("to_dict() note", data["response"]["note"]), ("render() note", render_note)):
        pairs += [(where, combined, shown) for shown in noted_targets(note)]
    return pairs


def assert_honest_evidence(exchange: Exchange, recorded: Recorded, base: str) -> None:
    data = exchange.to_dict()
    json.dumps(data)  # the report form is JSON
    # Every URL the exchange requested reads the same for a reader and for the client.
    requested = [exchange.url, *(url for _, url in exchange.redirects)]
    for url in requested:
        assert read_by_urllib(url) == read_by_client(url), (
            f"the exchange requested {url!r}: urllib.parse reads its host as "
            f"{read_by_urllib(url)!r}, the client connects to {read_by_client(url)!r}")
    if recorded.foreign:
        shown = [data["request"]["url"], *(url for _, url in data["response"]["redirects"])]
        assert any(read_by_urllib(url) not in (None, TARGET_HOST) for url in shown), (
            f"127.0.0.2 was sent a request, but the evidence names only 127.0.0.1: {shown}\n"
            f"{describe(recorded.foreign)}")
    # A Location the client would connect to 127.0.0.2 with is not shown as one to 127.0.0.1.
    for where, received, shown in shown_locations(exchange):
        aimed = read_by_client(joined(base, received))
        if shown == received:
            continue  # the header verbatim, as the target sent it: honest, whatever it reads as
        if aimed not in (None, TARGET_HOST):
            assert read_by_urllib(joined(base, shown)) != TARGET_HOST, (
                f"the client reads the Location {received!r} as going to {aimed}, but the "
                f"evidence ({where}) shows it as {shown!r}, a URL to {TARGET_HOST}:\n"
                f"{exchange.render()}")


# -- the tests ----------------------------------------------------------------------------
INDEXED = [pytest.param(i, id=form.id) for i, form in enumerate(CORPUS)]


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("index", INDEXED)
def test_no_secret_reaches_the_foreign_host(
        index: int, carrier: str, recorded: Recorded, fetch: Callable[[int, str], Exchange]) -> None:
    exchange = fetch(index, carrier)
    leaked = [seen for seen in recorded.foreign
              if any(form in seen.text for secret in SECRETS for form in encodings(secret))]
    if leaked:
        pytest.fail(f"{FOREIGN_HOST} received the {carrier}'s secret after a redirect to "
                    f"{recorded.locations[index]!r}:\n{describe(leaked)}")
    rendered = exchange.render() + json.dumps(exchange.to_dict())
    shown = [name for name, secret in (("token", VALID_TOKEN), ("signature", SIGNATURE))
             if any(form in rendered for form in encodings(secret))]
    if shown:
        pytest.fail(f"the evidence shows the {' and the '.join(shown)} unmasked")


@pytest.mark.parametrize("index", INDEXED)
def test_nothing_reaches_the_foreign_host(
        index: int, recorded: Recorded, fetch: Callable[[int, str], Exchange]) -> None:
    """127.0.0.2 is not in the allowlist: not even a request without credentials goes there."""
    exchange = fetch(index, "none")
    if recorded.foreign:
        pytest.fail(f"{FOREIGN_HOST} (not allowed) was sent a request after a redirect to "
                    f"{recorded.locations[index]!r}:\n{describe(recorded.foreign)}\n{exchange.render()}")


@pytest.mark.parametrize("index", INDEXED)
def test_the_evidence_shows_the_real_destination(
        index: int, recorded: Recorded, fetch: Callable[[int, str], Exchange]) -> None:
    exchange = fetch(index, "credential")
    assert_honest_evidence(exchange, recorded, f"{recorded.url}/r?i={index}")


@pytest.mark.parametrize("index", INDEXED)
def test_the_redirect_is_reported_as_an_answer(
        index: int, recorded: Recorded, fetch: Callable[[int, str], Exchange]) -> None:
    """The target answered (a 302): the exchange says so, and why it went no further,
    rather than "no response" because the client choked on the Location."""
    exchange = fetch(index, "credential")
    assert recorded.redirector, "the target was never asked"
    assert exchange.status is not None, exchange.render()
    if exchange.status in (301, 302, 303, 307, 308):
        assert "not followed" in exchange.note or "stopped after" in exchange.note, exchange.render()
