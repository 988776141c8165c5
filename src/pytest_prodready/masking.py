"""Secret masking: every string that leaves the plugin passes through a Masker.

Two layers: known values (env values named in config, tokens handed to helpers) are
replaced wherever they occur, and well-known secret carriers (Authorization, Cookie,
signature headers, token-ish query parameters) are masked by name whatever they hold.

A known value is masked in every form a target can echo it in: raw, base64 (standard and
URL-safe, padded or not, and inside a longer base64 blob such as a Basic credential),
percent-encoded, JSON-escaped, HTML-escaped, and the Latin-1 reading of its UTF-8 bytes (how
an HTTP client decodes a header). All forms of all secrets are one compiled trie regex.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

MASK = "****"

# Header names whose values are credentials or signatures, compared lower-case.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
        "x-csrf-token",
        "x-signature",
        "x-amz-security-token",
    }
)

_SECRET_PARAM = re.compile(
    r"(token|key|secret|signature|sig|password|passwd|pwd|auth|session|code|credential)",
    re.IGNORECASE,
)
# The same carriers inside free text (messages, bodies, log lines): a token-ish query
# parameter after '?' or '&', and the password of a URL's userinfo.
_TEXT_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&?#\s\"'<>]+)=)(?P<value>[^&#\s\"'<>]+)")
# A backslash ends the authority for urllib3 (http://evil:80\@good/ goes to "evil"): such a
# URL has no password to mask, and masking "80\" would make it read as userinfo at "good".
_TEXT_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s:@\\]*:)(?P<value>[^/?#\s@\\]+)(?=@)")
# Control characters and ANSI escape sequences sent by a target must not reach a terminal.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?")
# Every other control character (C0 but tab and newline, DEL, C1) is shown as a visible
# escape; str.translate does it at C speed (a regex callback per character took 0.5 s for a
# 1 MiB binary body, at every rendering of its evidence).
_VISIBLE: dict[int, str | None] = {
    c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))
}
# Invisible characters that reorder or hide text (Trojan Source bidi controls, zero-width
# characters, line/paragraph separators, BOM) are removed: shown, they would make evidence
# read differently from what it is; left in, they could split a secret so no form matches.
_INVISIBLE = (*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
              *range(0x2066, 0x206A), 0x061C, 0x2028, 0x2029, 0xFEFF)
_VISIBLE.update(dict.fromkeys(_INVISIBLE))
# translate() leaves its fast path on non-ASCII text (50 ms for 1 MiB); a search for any
# character to change costs 1 ms, and most text has none.
_TO_CHANGE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_VISIBLE)) + "]")


def _mask_param(match: re.Match[str]) -> str:
    if _SECRET_PARAM.search(match["name"]):
        return match["head"] + MASK
    return match.group()


def mask_url_secrets(text: str) -> str:
    """Mask token-like query parameters and userinfo passwords of URLs inside free text."""
    if "=" in text:
        text = _TEXT_PARAM.sub(_mask_param, text)
    if "@" in text:
        text = _TEXT_USERINFO.sub(lambda m: m["head"] + MASK, text)
    return text


def strip_control(text: str) -> str:
    """Remove escape sequences and show other control characters as visible escapes."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return text.translate(_VISIBLE) if _TO_CHANGE.search(text) else text


# Encoded forms shorter than this are not registered: the stable middle of a short value's
# base64 would match ordinary text ("YWJj" is also just letters).
MIN_ENCODED_LEN = 8
_URLSAFE = str.maketrans("+/", "-_")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_JSON_U = re.compile(r"\\u[0-9a-f]{4}")
# Characters left as they are by every encoder below (what "needs" no escaping anywhere).
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
# Where a secret's value parts begin: "a=1; b=2", "Bearer x", "k=v, k2=v2".
_CHUNKS = re.compile(r"[;,]")


def value_parts(secret: str, min_len: int) -> set[str]:
    """The secret, and the parts a target may show on their own: of each `;`/`,`-separated
    chunk, the value after a scheme word (`Bearer x`), and of a `name=value` the value (the
    name stays readable: `csrftoken=****`)."""
    parts = {secret, secret.strip()}
    for chunk in _CHUNKS.split(secret):
        words = chunk.split(None, 1)
        piece = words[-1] if words else ""
        _, eq, value = piece.partition("=")
        value = value.strip()
        # A base64 value's own padding ("x/Zp9+w==") is no name=value.
        parts.add(value if eq and len(value) >= min_len else piece)
    return {p for p in parts if len(p) >= min_len}


def _base64_forms(raw: bytes) -> set[str]:
    """Base64 of `raw` alone (padded and not), and the stable middle of its encoding at each
    of the three alignments it can have inside a longer blob (base64("user:" + token))."""
    whole = base64.b64encode(raw).decode("ascii")
    forms = {whole, whole.rstrip("=")}
    for offset in (0, 1, 2):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # Characters whose 6 bits all come from `raw`: none of the prefix, none of what follows.
        first = -(-8 * offset // 6)
        last = 8 * (offset + len(raw)) // 6
        forms.add(encoded[first:last])
    forms |= {form.translate(_URLSAFE) for form in forms}
    return {form for form in forms if len(form) >= MIN_ENCODED_LEN}


def _percent_forms(value: str) -> set[str]:
    forms = {quote(value, safe=safe) for safe in ("", "/", "-_.!~*'()")}  # + encodeURIComponent
    forms.add(quote_plus(value, safe=""))
    return forms | {_PERCENT.sub(lambda m: m.group().lower(), form) for form in forms}


def _json_forms(value: str) -> set[str]:
    ascii_ = json.dumps(value)[1:-1]
    every = "".join(c if c in _PLAIN else json.dumps(c)[1:-1] if not c.isascii() else f"\\u{ord(c):04x}"
                    for c in value)
    # Go escapes <, > and & for HTML safety.
    html_safe = ascii_.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    forms = {ascii_, json.dumps(value, ensure_ascii=False)[1:-1], every, html_safe}
    forms |= {_JSON_U.sub(lambda m: "\\u" + m.group()[2:].upper(), form) for form in forms}
    return forms | {form.replace("/", "\\/") for form in forms}  # PHP's json_encode


def _html_forms(value: str) -> set[str]:
    forms = {html.escape(value), html.escape(value, quote=False)}
    forms |= {form.encode("ascii", "xmlcharrefreplace").decode("ascii") for form in forms}
    for fmt in ("&#{:d};", "&#x{:x};", "&#x{:X};"):  # &#47; &#x2f; &#x2F;
        forms.add("".join(c if c in _PLAIN else fmt.format(ord(c)) for c in value))
    return forms


def encoded_forms(value: str) -> set[str]:
    """Every form of `value` a target or a report could show (see the module docstring)."""
    forms = {value, *_percent_forms(value), *_json_forms(value), *_html_forms(value)}
    if not value.isascii():
        raw = value.encode("utf-8")
        forms.add(raw.decode("latin-1"))  # a UTF-8 header read by http.client
        with contextlib.suppress(UnicodeEncodeError):  # a Latin-1 body read as UTF-8
            forms.add(value.encode("latin-1").decode("utf-8", errors="replace"))
    for b64 in _base64_forms(value.encode("utf-8")):
        # Base64's '+', '/', '=' in a URL or in PHP-style JSON.
        forms |= {b64, *_percent_forms(b64), b64.replace("/", "\\/")}
    # Text is stripped of control and invisible characters before it is masked.
    return {strip_control(form) for form in forms}


_Trie = dict[str, "_Trie"]


def trie_pattern(words: Iterable[str]) -> str:
    """One regex matching any of `words`, the longest at each position, shaped as a trie:
    at a position, the engine checks one character per branch point instead of trying
    every word (hundreds of forms against a 1 MiB body stay a single pass)."""
    root: _Trie = {}
    for word in words:
        if word:
            node = root
            for char in word:
                node = node.setdefault(char, {})
            node[""] = {}  # a word ends here
    return _emit(root)


def _emit(node: _Trie) -> str:
    branches = []
    for char in sorted(key for key in node if key):
        run, child = [char], node[char]
        while len(child) == 1 and "" not in child:  # a chain without a choice: one literal
            ((char, child),) = child.items()
            run.append(char)
        branches.append(re.escape("".join(run)) + _emit(child))
    if not branches:
        return ""
    return "(?:" + "|".join(branches) + (")?" if "" in node else ")")


class Masker:
    """Replaces registered secret values, and masks secret-carrying headers and params."""

    # Values shorter than this are not masked by value: masking "1" everywhere would make
    # output unreadable and protects nothing a 1-character secret could protect.
    MIN_SECRET_LEN = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._secret_headers: frozenset[str] = frozenset()
        # Compiled on first use after an add: registering many secrets costs one compile.
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a value to mask everywhere, its value parts, and all their encodings."""
        if not secret or len(secret) < self.MIN_SECRET_LEN:
            return
        parts = value_parts(secret, self.MIN_SECRET_LEN)
        with self._lock:
            new = parts - self._secrets
            if not new:
                return
            self._secrets |= new
            self._forms |= {form for part in new for form in encoded_forms(part)
                            if len(form) >= self.MIN_SECRET_LEN}
            self._pattern = None

    def add_secret_header(self, name: str) -> None:
        """Mask this header's value by name too, like Authorization (e.g. a custom signature)."""
        with self._lock:
            self._secret_headers |= {name.strip().lower()}

    @property
    def secrets(self) -> frozenset[str]:
        """The registered values and their value parts (not their encoded forms)."""
        return frozenset(self._secrets)

    @property
    def forms(self) -> frozenset[str]:
        """Every string masked by value: the secrets in all their encodings."""
        return frozenset(self._forms)

    def _compiled(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._forms:
            with self._lock:
                if self._pattern is None:
                    self._pattern = re.compile(trie_pattern(self._forms))
                pattern = self._pattern
        return pattern

    def text(self, value: str) -> str:
        """Strip control sequences and invisible characters, then mask known secret values
        (in every encoding) and URL secrets in free text.

        Stripping comes first: an escape sequence or a zero-width character inside a secret
        would otherwise hide it from the match and vanish afterwards, showing it whole.
        """
        value = strip_control(value)
        pattern = self._compiled()
        if pattern is not None:
            value = pattern.sub(MASK, value)
        return mask_url_secrets(value)

    def header(self, name: str, value: str) -> str:
        if name.lower() in SECRET_HEADERS or name.lower() in self._secret_headers:
            scheme, _, rest = value.partition(" ")
            if name.lower() in {"authorization", "proxy-authorization"} and rest:
                return f"{scheme} {MASK}"
            return MASK
        if name.lower() == "set-cookie":
            return self.set_cookie(value)
        return self.text(value)

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return [(strip_control(k), self.header(k, v)) for k, v in items]

    def set_cookie(self, value: str) -> str:
        """Keep the cookie's name and attributes (the evidence for cookies.flags), mask its value."""
        first, sep, attrs = value.partition(";")
        name, eq, _ = first.partition("=")
        return self.text(f"{name}{eq}{MASK if eq else ''}{sep}{attrs}")

    def url(self, url: str) -> str:
        """Mask token-like query parameters, userinfo passwords and known values in a URL."""
        try:
            parts = urlsplit(url)
        except ValueError:  # not a URL after all (a target's broken Location): mask it as text
            return self.text(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if _SECRET_PARAM.search(k) and v else v) for k, v in pairs], safe="*"
            )
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))
