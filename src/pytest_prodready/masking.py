"""Secret masking: every string that leaves the plugin passes through a Masker.

Two layers: known values (env values named in config, tokens handed to helpers) are
replaced wherever they occur, and well-known secret carriers (Authorization, Cookie,
signature headers, token-ish query parameters) are masked by name whatever they hold.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
        "x-hub-signature",
        "x-hub-signature-256",
        "stripe-signature",
        "x-slack-signature",
        "webhook-signature",
        "x-signature",
        "x-webhook-signature",
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
_TEXT_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s:@]*:)(?P<value>[^/?#\s@]+)(?=@)")
# Control characters and ANSI escape sequences sent by a target must not reach a terminal.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?")
# Every other control character (C0 but tab and newline, DEL, C1) is shown as a visible
# escape; str.translate does it at C speed (a regex callback per character took 0.5 s for a
# 1 MiB binary body, at every rendering of its evidence).
_VISIBLE = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}


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
    return _ANSI.sub("", text).translate(_VISIBLE)


class Masker:
    """Replaces registered secret values, and masks secret-carrying headers and params."""

    # Values shorter than this are not masked by value: masking "1" everywhere would make
    # output unreadable and protects nothing a 1-character secret could protect.
    MIN_SECRET_LEN = 4

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._secret_headers: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a value to mask everywhere (and its common encodings)."""
        if not secret or len(secret) < self.MIN_SECRET_LEN:
            return
        with self._lock:
            variants = {secret, secret.strip()}
            # A "Bearer x" or "name=value" secret may appear by its value part alone.
            for sep in (" ", "="):
                _, _, tail = secret.partition(sep)
                if tail and len(tail) >= self.MIN_SECRET_LEN:
                    variants.add(tail)
            self._secrets |= {v for v in variants if len(v) >= self.MIN_SECRET_LEN}
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def add_secret_header(self, name: str) -> None:
        """Mask this header's value by name too, like Authorization (e.g. a custom signature)."""
        with self._lock:
            self._secret_headers |= {name.strip().lower()}

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def text(self, value: str) -> str:
        """Mask known secret values and URL secrets in free text; strip control sequences."""
        pattern = self._pattern
        if pattern is not None:
            value = pattern.sub(MASK, value)
        return strip_control(mask_url_secrets(value))

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
