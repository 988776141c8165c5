"""A registered secret is masked in every encoding a target or a report can show it in.

The forms are computed here independently of the Masker (with the standard library's own
encoders), then looked for in what the Masker lets through: first on text, then in the
evidence of exchanges with a real server on loopback that echoes the secrets it knows.
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from conftest import webapp_values
from flask import Flask, Response, request

from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.masking import MASK, Masker, strip_control, trie_pattern
from pytest_prodready.target import Probe, Target
from tests.targets.webapp import serve_app

# Canaries: '/', '+' and '=' inside and at the end, non-ASCII (BMP and beyond), several
# cookies in one secret, a secret with its scheme.
SLASHY = "tokCANARY/ab+cd=ef12-9Qx"
TRAILING = "tokCANARY/ab+cd="  # the known bug: its percent form leaked the part before '='
NON_ASCII = "pässwörd-Ωmega-7781-🔑"
COOKIES = "sid=ck-canary-abc123; csrftoken=csrf-canary-def456"
COOKIE_VALUES = ("ck-canary-abc123", "csrf-canary-def456")
BEARER = "Bearer brr-canary-77Qx/Zp9+w=="
BEARER_VALUE = "brr-canary-77Qx/Zp9+w=="
CANARIES = (SLASHY, TRAILING, NON_ASCII, COOKIES, BEARER)
# Every value a reader must never be able to read, alone: the canaries and their parts.
VALUES = (SLASHY, TRAILING, NON_ASCII, COOKIES, *COOKIE_VALUES, BEARER, BEARER_VALUE)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def numeric_entities(value: str, fmt: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else fmt.format(ord(c)) for c in value)


def forms_of(value: str) -> dict[str, str]:
    """The encodings of `value` a target can echo, by name (computed without the Masker)."""
    raw = value.encode("utf-8")
    json_ascii = json.dumps(value)[1:-1]
    forms = {
        "raw": value,
        "base64": b64(raw),
        "base64 unpadded": b64(raw).rstrip("="),
        "urlsafe base64": b64url(raw),
        "urlsafe base64 unpadded": b64url(raw).rstrip("="),
        "percent": quote(value, safe=""),
        "percent lower": lower_hex(quote(value, safe="")),
        "percent path": quote(value),
        "quote_plus": quote_plus(value),
        "quote_plus lower": lower_hex(quote_plus(value)),
        "json": json_ascii,
        "json unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "json slash": json_ascii.replace("/", "\\/"),
        "json upper \\u": re.sub(r"\\u[0-9a-f]{4}", lambda m: "\\u" + m.group()[2:].upper(), json_ascii),
        "html": html.escape(value),
        "html decimal": numeric_entities(value, "&#{:d};"),
        "html hex": numeric_entities(value, "&#x{:X};"),
        "html hex lower": numeric_entities(value, "&#x{:x};"),
        "percent of base64": quote(b64(raw), safe=""),
        "json slash of base64": b64(raw).replace("/", "\\/"),
    }
    if not value.isascii():
        forms["utf-8 read as latin-1"] = raw.decode("latin-1")
    return forms


def stable_middle(blob: str, prefix_len: int, value_len: int) -> str:
    """The characters of base64(prefix + value + ...) that depend on `value` alone."""
    return blob[-(-8 * prefix_len // 6): 8 * (prefix_len + value_len) // 6]


def windows(text: str, size: int = 8) -> set[str]:
    return {text[i:i + size] for i in range(len(text) - size + 1)}


PREFIXES = ((b"user:", b""), (b"", b":x"), (b"a", b"bc"), (b'{"t":"', b'"}'), (b"ab", b""))


def embedded(value: str) -> dict[str, tuple[str, str]]:
    """`value` inside longer base64 blobs, at all three alignments: name -> (blob, the part of
    it that encodes `value` alone and must go)."""
    raw = value.encode("utf-8")
    out: dict[str, tuple[str, str]] = {}
    for prefix, suffix in PREFIXES:
        for encode in (b64, b64url):
            blob = encode(prefix + raw + suffix)
            out[f"{encode.__name__}({prefix!r} + value + {suffix!r})"] = (
                blob, stable_middle(blob, len(prefix), len(raw)))
    return out


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(CANARIES)


@pytest.mark.parametrize("value", VALUES)
def test_every_form_of_every_secret_is_masked(masker: Masker, value: str) -> None:
    for name, form in forms_of(value).items():
        for context in (f"{form}", f"echo: {form}.", f'{{"echo": "{form}", "n": 1}}',
                        f"/next?to={form}&page=2", f'<input value="{form}">', f"x{form}y"):
            shown = masker.text(context)
            assert form not in shown, (value, name, context, shown)
            assert MASK in shown, (value, name, context, shown)


def test_a_secret_with_slash_plus_and_equals_is_masked_whole(masker: Masker) -> None:
    # The known bug: only the part after '=' was registered, the rest of the form stayed.
    assert masker.text("back to /cb?next=tokCANARY%2Fab%2Bcd%3D&x=1") == "back to /cb?next=****&x=1"
    assert masker.text("next=tokCANARY%2Fab%2Bcd%3Def12-9Qx;") == "next=****;"
    assert masker.text("tokCANARY%2fab%2bcd%3d") == MASK
    assert masker.text(json.dumps({"t": SLASHY}).replace("/", "\\/")) == '{"t": "****"}'


@pytest.mark.parametrize("value", VALUES)
def test_a_secret_inside_a_longer_base64_blob_is_masked_at_every_alignment(
        masker: Masker, value: str) -> None:
    for name, (blob, middle) in embedded(value).items():
        shown = masker.text(f"you sent Basic {blob} (decoded: ...)")
        # Nothing of the part that encodes the secret is left, not even 8 characters of it.
        left = [w for w in windows(middle) if w in shown]
        assert not left, (value, name, blob, shown)
        assert MASK in shown


def test_the_alignment_technique_holds_for_any_surrounding_bytes() -> None:
    rng = random.Random(8)
    secret = "k3y-" + "".join(rng.choices("abcdefXYZ0123/+=", k=20))
    masker = Masker([secret])
    for _ in range(300):
        before, after = rng.randbytes(rng.randrange(0, 12)), rng.randbytes(rng.randrange(0, 12))
        for encode in (b64, b64url):
            blob = encode(before + secret.encode() + after)
            middle = stable_middle(blob, len(before), len(secret))
            shown = masker.text(blob)
            assert not [w for w in windows(middle) if w in shown], (before, after, blob, shown)


def test_each_cookie_and_the_value_after_a_scheme_is_masked_on_its_own(masker: Masker) -> None:
    assert set(COOKIE_VALUES) | {COOKIES, BEARER_VALUE} <= masker.secrets
    assert masker.text(f"Cookie: {COOKIES}") == "Cookie: ****"
    # The target shows one cookie of the two, or the cookies in another order.
    assert masker.text("csrftoken=csrf-canary-def456") == "csrftoken=****"
    assert masker.text("csrftoken=csrf-canary-def456; sid=ck-canary-abc123") == "csrftoken=****; sid=****"
    assert masker.text(json.dumps({"sid": "ck-canary-abc123"})) == '{"sid": "****"}'
    assert masker.text(f"token: {b64(b'ck-canary-abc123')}") == "token: ****"
    # The names and the scheme are not secrets.
    assert masker.text("Authorization: Bearer brr-canary-77Qx/Zp9+w==") == "Authorization: ****"
    assert masker.text('{"access_token": "brr-canary-77Qx/Zp9+w=="}') == '{"access_token": "****"}'
    assert masker.text("sid, csrftoken, Bearer") == "sid, csrftoken, Bearer"
    # Separators: ',' and whitespace as well as ';'.
    other = Masker(["a=first-cookie-1,b=second-cookie-2", "Token  spaced-value-9"])
    assert other.text("second-cookie-2 first-cookie-1 spaced-value-9") == "**** **** ****"


def test_ordinary_text_is_unchanged(masker: Masker) -> None:
    text = (
        "GET /api/agents?page=2&sort=name HTTP/1.1\nHost: example.com\tAccept: */*\n"
        "Authorization: Bearer (none)\nSet-Cookie: sid=; Path=/; HttpOnly\n"
        '{"user": "alice", "tok": "tok", "id": 1234, "url": "https:\\/\\/example.com\\/a+b=c"}\n'
        "<p>You\u2019re seeing this error because DEBUG = True &amp; &#47;admin&#x2F; is public.</p>"
        "<br>&nbsp;at app.views.index (views.py:12)\n"
        f"blob: {b64(b'an unrelated payload of bytes, nothing secret in it at all')}\n"
        f"base64 of the prefix alone: {b64(b'tokCANARY')} {b64(b'user:')}\n"
        "Grüße — naïve café, 東京, emoji 🔑; percent %2F %2B %3D; password=; csrftoken\n"
    )
    assert masker.text(text) == text


def test_short_values_and_short_encoded_fragments_are_not_registered() -> None:
    masker = Masker(["abc", "Qx7z"])
    assert "abc" not in masker.secrets and masker.text("abc") == "abc"
    assert masker.text("Qx7z") == MASK  # 4 characters: masked as it is
    # base64("Qx7z") is "UXg3eg==": the padded form is 8 characters and is masked; the
    # unpadded form and the alignment fragments ("UXg3e", "eDd6", "FFeDd6"...) are too short to
    # mean anything and are left alone, like common text.
    assert masker.text("UXg3eg==") == MASK
    assert masker.text("UXg3eg UXg3e Rdeg") == "UXg3eg UXg3e Rdeg"
    assert all(len(form) >= Masker.MIN_SECRET_LEN for form in masker.forms)
    encoded = {form for form in masker.forms if form not in {"Qx7z"}}
    assert all(len(form) >= 8 for form in encoded), encoded


def test_bidi_zero_width_and_control_characters_are_stripped() -> None:
    invisible = ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                 "\u200b\u200c\u200d\u200e\u200f\u2028\u2029\ufeff")
    assert strip_control(f"ad{invisible}min") == "admin"
    assert strip_control("a\x00b\x1bc\x7fd\x9be") == "a\\x00b\\x1bc\\x7fd\\x9be"
    assert strip_control("\x1b[31mred\x1b[0m\tand\nnew") == "red\tand\nnew"
    assert strip_control("Grüße — café 東京 🔑") == "Grüße — café 東京 🔑"
    masker = Masker([SLASHY])
    # A secret split by a zero-width character or an escape sequence is still masked.
    assert masker.text(f"x {SLASHY[:5]}\u200b{SLASHY[5:]} y") == "x **** y"
    assert masker.text(f"x {SLASHY[:5]}\x1b[0m{SLASHY[5:]} y") == "x **** y"
    assert masker.text(f"\u202e{SLASHY}\u202c") == MASK


def test_a_trie_prefers_the_longest_form_and_escapes_metacharacters() -> None:
    pattern = re.compile(trie_pattern(["abcd", "abcdef", "ab.d", "a+b", "xy", "abc(d)"]))
    assert pattern.sub("#", "abcdefg abcdx abXd ab.d a+b aab abc(d) xyz") == "#g #x abXd # # aab # #z"
    assert pattern.fullmatch("abcdef") and not pattern.fullmatch("abcde")
    # A long secret (a private key a target shows) does not exhaust the recursion limit.
    key = "".join(random.Random(1).choices("ABCDEFGHIJ0123456789+/", k=5000))
    assert Masker([key]).text(f"-----BEGIN KEY-----\n{key}\n") == "-----BEGIN KEY-----\n****\n"


def test_many_secrets_compile_once_and_mask_together() -> None:
    secrets = [f"secret-{i:02d}-{'x/+=' * (i % 3)}-tail" for i in range(40)]
    masker = Masker(secrets)
    text = " | ".join(f"{s} {b64(s.encode())} {json.dumps(s)}" for s in secrets)
    shown = masker.text(text)
    assert not any(s in shown or b64(s.encode()) in shown for s in secrets), shown
    assert shown.count(MASK) == 3 * len(secrets)


# -- a real server that echoes the secrets in every encoding ----------------------------------
def echo_app() -> Flask:
    """Echoes the credential it received (Authorization or Cookie), and the non-ASCII secret
    a debug page would show, in one encoding per path in its body, and in all of them in its
    headers (a non-ASCII form as raw UTF-8 bytes, which an HTTP client reads as Latin-1)."""
    app = Flask("masking_echo")

    def received() -> list[str]:
        auth = request.headers.get("Authorization", "")
        cookie = request.headers.get("Cookie", "")
        echoed = [NON_ASCII]
        if auth:
            echoed += [auth, auth.partition(" ")[2]]
        if cookie:
            echoed += [cookie, *(part.partition("=")[2] for part in cookie.split("; "))]
        return echoed

    @app.route("/echo/<int:index>")
    def echo(index: int) -> Response:
        values = received()
        shown = []
        for value in values:
            forms = list(forms_of(value).values()) + list(embedded_blobs(value))
            shown.append(forms[index % len(forms)])
        response = Response("debug page\n" + "\n".join(f"seen: {form}" for form in shown) + "\n",
                            200, mimetype="text/plain")
        for v, value in enumerate(values):
            for f, form in enumerate([*forms_of(value).values(), *embedded_blobs(value)]):
                response.headers[f"X-Echo-{v}-{f}"] = form.encode("utf-8").decode("latin-1")
        return response

    return app


def embedded_blobs(value: str) -> Iterator[str]:
    raw = value.encode("utf-8")
    yield f"Basic {b64(b'user:' + raw)}"
    yield b64url(b'{"sub":"' + raw + b'"}')
    yield b64(b"x" + raw + b"yz")


def forbidden(values: tuple[str, ...]) -> dict[str, str]:
    """What must not appear in any output: every form, and 8 characters of any blob's middle."""
    out = {f"{value!r} {name}": form for value in values for name, form in forms_of(value).items()}
    for value in values:
        raw = value.encode("utf-8")
        for prefix, suffix, encode in ((b"user:", b"", b64), (b'{"sub":"', b'"}', b64url),
                                       (b"x", b"yz", b64)):
            middle = stable_middle(encode(prefix + raw + suffix), len(prefix), len(raw))
            out |= {f"{value!r} in {prefix!r}+...: {w}": w for w in windows(middle)}
    return out


def outputs(exchange: Exchange) -> str:
    data = exchange.to_dict()
    return "\n".join((exchange.render(), json.dumps(data), json.dumps(data, ensure_ascii=False),
                      repr(exchange)))


@pytest.mark.parametrize(("credential", "values"), [
    ("auth.token_env", (SLASHY, NON_ASCII)),
    ("identities.alice.cookie_env", (COOKIES, *COOKIE_VALUES, NON_ASCII)),
])
def test_a_real_target_echoing_secrets_in_every_encoding_shows_none_of_them(
        credential: str, values: tuple[str, ...]) -> None:
    with serve_app(echo_app()) as url:
        settings = Settings(
            values={**webapp_values(url), "identities": {"alice": {"cookie_env": "ALICE_COOKIE"}}},
            secrets={"auth.token_env": SLASHY, "metrics.token_env": NON_ASCII,
                     "identities.alice.cookie_env": COOKIES},
            sources={})
        with Target(settings) as target:
            count = len(forms_of(NON_ASCII)) + 3
            exchanges = target.fetch_many(Probe.get(f"/echo/{i}", credential=credential)
                                          for i in range(count))
    must_not = forbidden(values)
    for exchange in exchanges:
        assert exchange.status == 200, exchange.render()
        # The target really echoed the secrets (a test that sees no secret proves nothing).
        seen = exchange.text + "\n".join(v for _, v in exchange.headers)
        assert any(form in seen for form in forms_of(values[0]).values()), exchange.url
        shown = outputs(exchange)
        leaks = {name: form for name, form in must_not.items() if form in shown}
        assert not leaks, (exchange.url, leaks, shown)
        assert MASK in shown
