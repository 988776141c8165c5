"""Evidence: one request and what came back, bounded, and rendered only through a Masker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_prodready.masking import Masker

# How much of a body a failure message or a report shows. The client keeps more
# (max_body_bytes) so the checks can judge the whole of a reasonable page.
EXCERPT_CHARS = 600


@dataclass(frozen=True)
class Exchange:
    """A request sent to the target and the response seen (or the transport error)."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes = b""
    status: int | None = None
    reason: str = ""
    # Raw header lines in order, duplicates kept (several Set-Cookie lines matter).
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    elapsed_ms: float = 0.0
    error: str = ""
    error_kind: str = ""  # 'connect' (nothing answered) or 'read' (it broke mid-way)
    # Redirects followed on the way, as (status, location) pairs; a refused hop is noted.
    redirects: tuple[tuple[int, str], ...] = ()
    # The responses of those redirects, in order (a login flow sets its cookie on a 302).
    hops: tuple[Exchange, ...] = ()
    note: str = ""
    masker: Masker = field(default_factory=Masker, repr=False, compare=False)

    def __repr__(self) -> str:
        # Shown by pytest's assertion rewriting and `-l`: never the raw exchange.
        return f"<Exchange {self.request_line} -> {self.status_line}>"

    # -- reading the response -------------------------------------------------------------
    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, case-insensitively (None when absent)."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def responses(self) -> tuple[Exchange, ...]:
        """The redirects' responses and this one: every answer this probe saw."""
        return (*self.hops, self)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.masker.url(self.url)}"

    @property
    def where(self) -> str:
        """'METHOD /path' (masked, without query): how messages name an exchange."""
        return f"{self.method} {urlsplit(self.masker.url(self.url)).path or '/'}"

    @property
    def status_line(self) -> str:
        if self.status is None:
            return f"no response: {self.masker.text(self.error)}"
        return f"{self.status} {self.masker.text(self.reason)}".rstrip()

    # -- output ---------------------------------------------------------------------------
    def excerpt(self, limit: int = EXCERPT_CHARS) -> str:
        # Mask the whole body before cutting: a secret straddling the cut would otherwise
        # survive as an unrecognised prefix.
        text = self.masker.text(self.text)
        cut = len(text) > limit or self.truncated
        return text[:limit] + (" …[truncated]" if cut else "")

    def render(self, *, body: bool = True) -> str:
        """A readable, masked transcript of the exchange for failure messages."""
        m = self.masker
        lines = [f"> {self.request_line}"]
        lines += [f"> {k}: {v}" for k, v in m.headers(self.request_headers)]
        if self.request_body:
            lines.append("> " + m.text(self.request_body.decode("utf-8", "replace"))[:200])
        for i, (status, location) in enumerate(self.redirects):
            lines.append(f"  (redirect {status} -> {m.url(location)})")
            if i < len(self.hops):
                lines += [f"  < {k}: {v}" for k, v in m.headers(self.hops[i].headers)
                          if k.lower() == "set-cookie"]
        lines.append(f"< {self.status_line}" + (f"  ({self.elapsed_ms:.0f} ms)" if self.status else ""))
        lines += [f"< {k}: {v}" for k, v in m.headers(self.headers)]
        if body and self.body:
            lines.append("< " + self.excerpt().replace("\n", "\n< "))
        if self.note:
            lines.append(f"  note: {m.text(self.note)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A masked, JSON-ready form for reports and xdist transport."""
        m = self.masker
        return {
            "request": {
                "method": self.method,
                "url": m.url(self.url),
                "headers": dict(m.headers(self.request_headers)),
            },
            "response": {
                "status": self.status,
                "reason": m.text(self.reason),
                "headers": [[k, v] for k, v in m.headers(self.headers)],
                "body_excerpt": self.excerpt(),
                "elapsed_ms": round(self.elapsed_ms, 1),
                "error": m.text(self.error),
                "redirects": [[s, m.url(loc)] for s, loc in self.redirects],
                # What the client did to the exchange (body cut at the cap, redirect not
                # followed...): the reason a check judged what it judged.
                "note": m.text(self.note),
                "truncated": self.truncated,
            },
        }
