"""Where a URL really goes: decided by the parser that opens the connection.

`urllib.parse.urlsplit` and urllib3 read hostile URLs differently: for
`http://127.0.0.2:80\\@127.0.0.1/` the first says 127.0.0.1 and the second connects to
127.0.0.2. An allowlist decided by one parser and a connection opened by the other is a
credential sent to a stranger. So the destination of every request is the host and port
that requests/urllib3 will connect to (the prepared URL, read by urllib3's `parse_url`),
and a URL on which the two parsers disagree, or that carries userinfo, backslashes,
whitespace or control characters, is refused outright: no legitimate redirect needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeURL(ValueError):
    """A URL we refuse to send anything to (ambiguous, malformed, or with credentials)."""


@dataclass(frozen=True)
class Destination:
    """A URL as the connection will be opened: scheme, lower-case host, port, and the URL itself."""

    scheme: str
    host: str
    port: int
    url: str  # the prepared URL: what is sent, and what evidence shows

    def same_origin(self, other: Destination) -> bool:
        """Whether credentials may follow a hop from self to other.

        Same host and port, where an upgrade from http:80 to https:443 counts as the same
        (as requests decides for its own redirects).
        """
        if self.host != other.host:
            return False
        if (self.scheme, other.scheme) == ("http", "https"):
            return self.port == 80 and other.port == 443
        return self.scheme == other.scheme and self.port == other.port


def _bad_character(url: str) -> str | None:
    for char in url:
        if char == "\\":
            return "a backslash"
        if char.isspace() or not char.isprintable():
            return f"the character {char!r}"
    return None


def destination(url: str) -> Destination:
    """The destination of `url`, or UnsafeURL saying why we refuse it."""
    import requests
    from urllib3.util import parse_url

    bad = _bad_character(url)
    if bad:
        raise UnsafeURL(f"it contains {bad}")
    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
        final = str(prepared.url)
        theirs = parse_url(final)
        ours = urlsplit(final)
        ours_port = ours.port
    except (ValueError, requests.exceptions.RequestException, UnicodeError) as exc:
        raise UnsafeURL(f"it cannot be parsed ({type(exc).__name__})") from None
    scheme = (theirs.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL(f"its scheme {scheme!r} is not http or https")
    if theirs.auth is not None or "@" in (ours.netloc or ""):
        raise UnsafeURL("it carries a user name or password")
    host = (theirs.host or "").lower()
    if not host:
        raise UnsafeURL("it has no host")
    if host.strip("[]") != (ours.hostname or "").lower():
        raise UnsafeURL("URL parsers disagree on its host")
    port = theirs.port or DEFAULT_PORTS[scheme]
    if port != (ours_port or DEFAULT_PORTS[scheme]):
        raise UnsafeURL("URL parsers disagree on its port")
    return Destination(scheme, host.strip("[]"), port, final)


def host_of(url: str) -> str:
    """The host a URL connects to, or '' when it is unsafe (for allowlists built from config)."""
    try:
        return destination(url).host
    except UnsafeURL:
        return ""
