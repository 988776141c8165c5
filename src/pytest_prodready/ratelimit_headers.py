"""What a response says about rate limits: every header generation in use, and Retry-After.

Generations read (a malformed field is ignored and named in `problems`, never fatal):

- `X-RateLimit-Limit/Remaining/Reset` (and `X-Rate-Limit-*`): the de facto headers of
  GitHub, flask-limiter, express-rate-limit's legacy mode. The reset is a Unix time (GitHub,
  flask-limiter), a Unix time in milliseconds, or seconds from now (express): a value above
  10^9 is read as a time, anything smaller as seconds.
- `RateLimit-Limit/Remaining/Reset` (draft-ietf-httpapi-ratelimit-headers up to -05):
  Limit may carry policies (`10, 10;w=1, 1000;w=3600`): the first number is the quota, a
  `w` on the item with that quota is its window. Reset is seconds from now.
- `RateLimit: limit=10, remaining=3, reset=30` (drafts -06/-07, express-rate-limit's
  `draft-7` mode), with `RateLimit-Policy: 10;w=60`.
- `RateLimit-Policy: "default";q=100;w=60` and `RateLimit: "default";r=50;t=30` (drafts -08
  and later: Structured Field lists of items, q quota, w window, r remaining, t reset).

`Retry-After` (seconds, or an HTTP date) takes precedence over any advertised reset.
The structured fields are parsed with a small, tolerant RFC 8941 subset (items with
parameters, dictionaries of integers): no maintained library for them is a dependency here.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# An epoch above this is a point in time, not a number of seconds (2001-09-09).
EPOCH_THRESHOLD = 1_000_000_000
_NUMBER = re.compile(r"-?\d{1,15}(\.\d{1,6})?")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")


@dataclass(frozen=True)
class Policy:
    """One advertised limit: a quota per window, what is left, and when it resets."""

    generation: str  # 'X-RateLimit', 'RateLimit (draft 3)', 'RateLimit (draft 7)', 'RateLimit-Policy'
    limit: int | None = None
    remaining: int | None = None
    window_s: float | None = None
    reset_s: float | None = None  # seconds from the response
    name: str = ""

    def describe(self) -> str:
        parts = []
        if self.limit is not None:
            parts.append(f"quota {self.limit}" + (f" per {self.window_s:g}s" if self.window_s else ""))
        if self.remaining is not None:
            parts.append(f"{self.remaining} remaining")
        if self.reset_s is not None:
            parts.append(f"reset in {self.reset_s:g}s")
        label = f"{self.generation}{f' {self.name!r}' if self.name else ''}"
        return f"{label}: {', '.join(parts) or 'nothing usable'}"


@dataclass(frozen=True)
class Advertisement:
    """Everything one response advertises about its rate limits."""

    policies: tuple[Policy, ...] = ()
    retry_after_s: float | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def any(self) -> bool:
        return bool(self.policies) or self.retry_after_s is not None

    @property
    def limit(self) -> int | None:
        """The tightest advertised quota."""
        limits = [p.limit for p in self.policies if p.limit is not None]
        return min(limits) if limits else None

    @property
    def remaining(self) -> int | None:
        left = [p.remaining for p in self.policies if p.remaining is not None]
        return min(left) if left else None

    @property
    def window_s(self) -> float | None:
        tight = [p for p in self.policies if p.limit == self.limit and p.window_s]
        return tight[0].window_s if tight else None

    @property
    def reset_s(self) -> float | None:
        """When the client may try again: Retry-After when sent, else the soonest reset."""
        if self.retry_after_s is not None:
            return self.retry_after_s
        resets = [p.reset_s for p in self.policies if p.reset_s is not None]
        return min(resets) if resets else None

    def describe(self) -> str:
        parts = [p.describe() for p in self.policies]
        if self.retry_after_s is not None:
            parts.append(f"Retry-After {self.retry_after_s:g}s")
        return "; ".join(parts) or "no rate-limit headers"


def _int(text: str) -> int | None:
    text = text.strip()
    if not re.fullmatch(r"\d{1,15}", text):
        return None
    return int(text)


def _number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(value: str, now: float) -> float | None:
    """Seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3); None when malformed."""
    text = value.strip()
    if re.fullmatch(r"\d{1,12}", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    try:
        return max(when.timestamp() - now, 0.0)
    except (OverflowError, OSError, ValueError):
        return None


def _reset(value: str, now: float) -> float | None:
    number = _number(value)
    if number is None:
        return None
    if number > EPOCH_THRESHOLD * 1000:  # milliseconds since the epoch
        number /= 1000
    if number > EPOCH_THRESHOLD:
        return max(number - now, 0.0)
    return number


# -- a tolerant subset of RFC 8941 (Structured Field Values) -----------------------------------
def _split_members(text: str) -> list[str]:
    """Split a list on commas outside quoted strings."""
    out, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    out.append("".join(current).strip())
    return [m for m in out if m]


def _bare(text: str) -> Any:
    """A bare item: integer/decimal, string, token, byte sequence or boolean; None when malformed."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in ("?0", "?1"):
        return text == "?1"
    if len(text) >= 2 and text[0] == text[-1] == ":" and re.fullmatch(r":[A-Za-z0-9+/=]*:", text):
        return text  # a byte sequence (the draft's pk= partition key): kept as written
    if _TOKEN.fullmatch(text):
        return text
    return None


def _item(member: str) -> tuple[Any, dict[str, Any]] | None:
    """'value;k=v;k2' -> (value, params); None when malformed."""
    head, *params = _split_params(member)
    value = _bare(head)
    if value is None:
        return None
    out: dict[str, Any] = {}
    for param in params:
        key, eq, raw = param.partition("=")
        key = key.strip()
        if not _KEY.fullmatch(key):
            return None
        parsed = _bare(raw) if eq else True
        if parsed is None:
            return None
        out[key] = parsed
    return value, out


def _split_params(member: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in member:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _dictionary(text: str) -> dict[str, Any] | None:
    """'limit=10, remaining=3, reset=30' -> {'limit': 10, ...}; None when malformed."""
    out: dict[str, Any] = {}
    for member in _split_members(text):
        key, eq, raw = member.partition("=")
        key = key.strip().lower()
        if not eq or not _KEY.fullmatch(key):
            return None
        item = _item(raw)
        if item is None:
            return None
        out[key] = item[0]
    return out or None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None


# -- the generations ---------------------------------------------------------------------------
class _Reader:
    def __init__(self, headers: Iterable[tuple[str, str]], now: float) -> None:
        self.fields: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            # Repeated fields combine as a list (RFC 9110 5.3).
            self.fields[key] = f"{self.fields[key]}, {value}" if key in self.fields else value
        self.now = now
        self.problems: list[str] = []

    def get(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            if name.lower() in self.fields:
                return name, self.fields[name.lower()]
        return None

    def bad(self, name: str, value: str) -> None:
        self.problems.append(f"malformed {name}: {value[:80]!r} (ignored)")

    def x_ratelimit(self) -> Policy | None:
        got = {part: self.get(f"X-RateLimit-{part}", f"X-Rate-Limit-{part}")
               for part in ("Limit", "Remaining", "Reset")}
        if not any(got.values()):
            return None
        values: dict[str, Any] = {}
        for part, found in got.items():
            if found is None:
                continue
            name, raw = found
            # Some servers repeat the field per policy: the first member is the tightest.
            first = _split_members(raw)[0] if raw.strip() else ""
            parsed = _reset(first, self.now) if part == "Reset" else _int(first)
            if parsed is None:
                self.bad(name, raw)
            values[part] = parsed
        policy = Policy("X-RateLimit", values.get("Limit"), values.get("Remaining"),
                        reset_s=values.get("Reset"))
        return policy if policy != Policy("X-RateLimit") else None

    def draft3(self) -> Policy | None:
        found = {part: self.get(f"RateLimit-{part}") for part in ("Limit", "Remaining", "Reset")}
        if not any(found.values()):
            return None
        limit = window = remaining = reset = None
        if found["Limit"] is not None:
            name, raw = found["Limit"]
            members = _split_members(raw)
            first = _item(members[0]) if members else None
            limit = _count(first[0]) if first else None
            if limit is None:
                self.bad(name, raw)
            else:
                for member in members[1:]:
                    item = _item(member)
                    if item and item[0] == limit and "w" in item[1]:
                        window = _seconds(item[1]["w"])
        if found["Remaining"] is not None:
            name, raw = found["Remaining"]
            remaining = _int(raw)
            if remaining is None:
                self.bad(name, raw)
        if found["Reset"] is not None:
            name, raw = found["Reset"]
            reset = _number(raw)
            if reset is None:
                self.bad(name, raw)
        policy = Policy("RateLimit (draft 3)", limit, remaining, window, reset)
        return policy if policy != Policy("RateLimit (draft 3)") else None

    def policies(self) -> list[tuple[str, int | None, float | None]]:
        """RateLimit-Policy items: (name, quota, window). Draft 7 writes '10;w=60', later drafts
        '"default";q=10;w=60'."""
        found = self.get("RateLimit-Policy")
        if found is None:
            return []
        name, raw = found
        out: list[tuple[str, int | None, float | None]] = []
        for member in _split_members(raw):
            item = _item(member)
            if item is None:
                self.bad(name, raw)
                continue
            value, params = item
            if isinstance(value, str):
                quota, label = _count(params.get("q")), value
            else:
                quota, label = _count(value), ""
            window = _seconds(params.get("w"))
            if quota is None:
                self.bad(name, raw)
                continue
            out.append((label, quota, window))
        return out

    def combined(self) -> list[Policy]:
        """The `RateLimit` field: a dictionary (draft 6/7) or a list of named items (draft 8+)."""
        declared = self.policies()
        found = self.get("RateLimit")
        out: list[Policy] = []
        if found is not None:
            name, raw = found
            members = _split_members(raw)
            if members and "=" in members[0].split(";")[0]:
                fields = _dictionary(raw)
                if fields is None:
                    self.bad(name, raw)
                else:
                    window = next((w for _, q, w in declared if q == _count(fields.get("limit"))), None)
                    out.append(Policy("RateLimit (draft 7)", _count(fields.get("limit")),
                                      _count(fields.get("remaining")), window,
                                      _seconds(fields.get("reset"))))
                    declared = []
            else:
                for member in members:
                    item = _item(member)
                    if item is None or not isinstance(item[0], str):
                        self.bad(name, raw)
                        continue
                    label, params = item
                    quota, window = next(((q, w) for n, q, w in declared if n == label), (None, None))
                    out.append(Policy("RateLimit-Policy", quota, _count(params.get("r")), window,
                                      _seconds(params.get("t")), name=label))
                named = {p.name for p in out}
                declared = [d for d in declared if d[0] not in named]
        out += [Policy("RateLimit-Policy", q, None, w, None, name=n) for n, q, w in declared]
        return out


def read(headers: Iterable[tuple[str, str]], now: float | None = None) -> Advertisement:
    """Parse every rate-limit header generation of one response. `now`: the response's time
    (its Date header when it has one), for resets given as Unix times."""
    items = list(headers)
    if now is None:
        now = time.time()
        date = next((v for k, v in items if k.lower() == "date"), None)
        if date:
            try:
                parsed = email.utils.parsedate_to_datetime(date)
                now = parsed.timestamp() if parsed and parsed.tzinfo else now
            except (TypeError, ValueError, IndexError, OverflowError):
                pass
    reader = _Reader(items, now)
    policies = [p for p in (reader.x_ratelimit(), reader.draft3()) if p is not None]
    policies += reader.combined()
    retry_after = None
    found = reader.get("Retry-After")
    if found is not None:
        retry_after = parse_retry_after(found[1], now)
        if retry_after is None:
            reader.bad(*found)
    return Advertisement(tuple(policies), retry_after, tuple(reader.problems))
