"""The target client: the only way the plugin talks to a system under test.

One `requests.Session` with timeouts, retries for idempotent methods only (urllib3's
Retry), a host allowlist checked on every hop, a hard request budget, a body-size cap,
and a per-run probe cache so a response fetched once feeds every check that needs it.
"""

from __future__ import annotations

import copy
import http.client
import http.cookiejar
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from pytest_prodready import __version__, deadline
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.errors import BudgetExceeded, OffAllowlist, TargetUnreachable
from pytest_prodready.evidence import Exchange
from pytest_prodready.masking import SECRET_HEADERS, Masker

USER_AGENT = f"pytest-prodready/{__version__} (production-readiness check)"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REDIRECTS = 5
RETRY_AFTER_CAP_S = 5.0  # we honour Retry-After, but never let a target park us for long
# A retry starts only if this much of the exchange deadline is left once its wait is over:
# the last second of the deadline is for an answer, not for a retry the deadline would cut.
RETRY_MIN_LEFT_S = 1.0
CHUNK = 16 * 1024  # small chunks bound what one step of a gzip bomb can inflate to


@dataclass(frozen=True)
class Probe:
    """One request a check needs. Frozen and hashable: it is the probe cache's key.

    `credential` names a secret by its config key (e.g. 'auth.token_env'); the client adds
    it at send time, so probes, cache keys and evidence never hold the raw value.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    credential: str | None = None
    follow_redirects: bool = True

    def __repr__(self) -> str:
        # Header names only: probes carry forged tokens and webhook signatures.
        names = ", ".join(name for name, _ in self.headers)
        return f"<Probe {self.method} {self.path} headers=[{names}]>"

    @classmethod
    def of(cls, method: str, path: str, headers: dict[str, str] | None = None,
           body: bytes = b"", credential: str | None = None, follow_redirects: bool = True) -> Probe:
        return cls(method.upper(), path, tuple(sorted((headers or {}).items())), body,
                   credential, follow_redirects)

    @classmethod
    def get(cls, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Probe:
        return cls.of("GET", path, headers, **kw)

    @classmethod
    def endpoint(cls, endpoint: str, headers: dict[str, str] | None = None, **kw: Any) -> Probe:
        """A probe from a normalised 'METHOD /path' config entry."""
        method, _, path = endpoint.partition(" ")
        return cls.of(method, path, headers, **kw)


class Budget:
    """A hard cap on requests per run, shared by every thread of the run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def charge(self) -> None:
        with self._lock:
            if self.spent >= self.limit:
                raise BudgetExceeded(
                    f"request budget of {self.limit} requests reached (request_budget); "
                    "raise it in the config, or narrow the run with --prodready-only or -k")
            self.spent += 1


class _BudgetedRetry(Retry):
    """urllib3's Retry, charging each retry to the run's budget, within the exchange deadline.

    Never retried: a timeout (connect or read: retrying would multiply the time a check can
    hang; a reset or a 503 is worth one more try, a target that does not answer is not),
    and any retry whose wait (backoff or Retry-After) would leave less than
    RETRY_MIN_LEFT_S of the exchange deadline. Then the last answer (a 503, a 429) is
    returned as it is, or the last error raised.
    """

    budget: Budget | None = None

    def increment(self, method: str | None = None, url: str | None = None,  # type: ignore[override]
                  response: Any = None, error: Exception | None = None, _pool: Any = None,
                  _stacktrace: Any = None) -> Retry:
        if isinstance(error, ReadTimeoutError):
            raise error
        if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
            raise MaxRetryError(_pool, url or "", error) from error
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = new.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = new.get_backoff_time()
        if deadline.remaining() - wait < RETRY_MIN_LEFT_S:
            reason = error or ResponseError(f"no time left to retry after status "
                                            f"{getattr(response, 'status', '?')}")
            raise MaxRetryError(_pool, url or "", reason) from error
        if self.budget is not None:
            self.budget.charge()
        return new

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, RETRY_AFTER_CAP_S)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3 reasons, args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), *current.args, current.__cause__,
                   current.__context__]
        todo += [w for w in wrapped if isinstance(w, BaseException)]


def describe_error(exc: BaseException, timeout: float) -> tuple[str, str]:
    """A short human description of a transport error and its kind.

    'connect': nothing answered (DNS, refused, connect timeout, TLS never completed); at
    the preflight this stops the run. 'read': the target answered, then broke the exchange.
    The description names the innermost cause (a reset, a malformed status line...), which
    urllib3 and requests wrap two or three times.
    """
    causes = list(_causes(exc))
    text = str(exc)

    def first(*types: type[BaseException]) -> BaseException | None:
        return next((c for c in causes if isinstance(c, types)), None)

    if any(isinstance(c, TimeoutError) and "handshake" in str(c) for c in causes):
        return (f"TLS handshake did not complete within {timeout:g}s (the target accepted the "
                "connection, then stalled)"), "connect"
    if isinstance(exc, requests.exceptions.ConnectTimeout) or (
            first(ConnectTimeoutError) and not first(NewConnectionError)):
        return f"could not connect within {timeout:g}s (connect timeout)", "connect"
    if isinstance(exc, requests.exceptions.ReadTimeout) or first(ReadTimeoutError):
        return f"no response within {timeout:g}s (read timeout)", "read"
    if isinstance(exc, requests.exceptions.SSLError):
        hint = ("; if the target uses a private CA, set tls.ca_bundle"
                if "CERTIFICATE_VERIFY_FAILED" in text else "")
        return f"TLS handshake failed: {text[:200]}{hint}", "connect"
    if (too_long := first(http.client.LineTooLong)) is not None:
        return f"malformed response: a line too long ({too_long})", "read"
    if first(http.client.RemoteDisconnected) is not None:  # a BadStatusLine, a reset too
        return "the target closed the connection without a response", "read"
    if (status := first(http.client.BadStatusLine)) is not None:
        return f"malformed response: bad status line {str(status)[:100]!r}", "read"
    if (other := first(http.client.HTTPException)) is not None and "headers" in str(other):
        return f"malformed response: too many headers ({other})", "read"
    if first(ConnectionResetError) is not None:
        return "connection reset by the target", "read"
    lowered = text.lower()
    if first(NameResolutionError) or "name or service not known" in lowered \
            or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "the host name does not resolve (DNS)", "connect"
    if first(ConnectionRefusedError) or "refused" in lowered:
        return "connection refused (nothing listens on that port)", "connect"
    if first(NewConnectionError):
        return f"could not connect: {text[:200]}", "connect"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"connection broken mid-response: {text[:200]}", "read"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return f"response body could not be decoded: {text[:200]}", "read"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection broken: {text[:200]}", "read"
    return f"{type(exc).__name__}: {text[:200]}", "read"


@dataclass
class Target:
    """A system under test: base URL, settings, and the safe client that reaches it."""

    settings: Settings
    masker: Masker = field(default_factory=Masker)
    budget: Budget = field(init=False)
    session: requests.Session = field(init=False)
    _cache: dict[Probe, Future[Exchange]] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)

    def __repr__(self) -> str:
        return f"Target({self.masker.url(self.base_url)!r})"

    def __post_init__(self) -> None:
        for secret in self.settings.secrets.values():
            self.masker.add(secret)
        self.budget = Budget(int(self.settings.get("request_budget")))
        self.session = self._make_session()

    @classmethod
    def from_url(cls, base_url: str, **values: Any) -> Target:
        """A target for scripts and one-off checks, with the default safety settings."""
        from pytest_prodready import schema

        settings = Settings(values={**DEFAULTS, **values, "base_url": schema.url(base_url, "base_url")},
                            secrets={}, sources={})
        return cls(settings)

    # -- configuration -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def timeout(self) -> float:
        return float(self.settings.get("timeout_s"))

    @property
    def allowed_hosts(self) -> frozenset[str]:
        hosts = {urlsplit(self.base_url).hostname or ""}
        hosts |= {h.lower() for h in self.settings.get("allowed_hosts", [])}
        for key in ("tls.http_url",):
            value = self.settings.get(key)
            if value:
                hosts.add(urlsplit(value).hostname or "")
        # Extra endpoints named in config are part of the target by the user's own word.
        hosts |= {hp.rpartition(":")[0].strip("[]") for hp in self.settings.get("tls.hosts", []) or []}
        return frozenset(h.lower() for h in hosts if h)

    @property
    def retries_every_method(self) -> bool:
        """Whether a POST/PUT/PATCH/DELETE that hit a reset, a 429 or a 5xx is retried too.

        In passive mode (the default) every such request is one a correct target must
        refuse (a forged token, a bad signature, a malformed body), or the harmless ping of
        the webhook positive control: sending it again changes nothing a correct target
        keeps, and not retrying it would turn a hiccup into a "cannot judge" or, for a 503,
        into a false failure. In active mode they may change state: never retried.
        """
        return not self.settings.active

    def url_for(self, path: str) -> str:
        """An absolute URL for a probe path; paths are appended to the base URL's own path."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)

    def _make_session(self) -> requests.Session:
        session = requests.Session()
        # No proxies, .netrc or CA bundles from the environment: what is sent, and where,
        # is decided by the config alone.
        session.trust_env = False
        # No cookie jar either: a cookie the target sets must not ride along on later probes
        # (an "anonymous" call that carries a session is not anonymous). Checks that need a
        # cookie send it explicitly.
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        session.headers["User-Agent"] = USER_AGENT
        # A private CA (tls.ca_bundle, made absolute by the config loader) is what the
        # target's certificates chain to: trust it for every HTTPS probe, not only tls.*.
        bundle = self.settings.get("tls.ca_bundle")
        if bundle:
            session.verify = str(bundle)
        retries = int(self.settings.get("retries"))
        retry_class = type("BudgetedRetry", (_BudgetedRetry,), {"budget": self.budget})
        # Each kind of hiccup (a connection that fails, a response that breaks, a 429/5xx)
        # gets its own `retries`: a reset followed by a 503 is two hiccups, not an outage.
        # The exchange deadline and the budget bound the whole.
        retry = retry_class(
            total=None, connect=retries, read=retries, status=retries, other=retries, redirect=0,
            allowed_methods=None if self.retries_every_method else IDEMPOTENT,
            status_forcelist=(429, 502, 503, 504),
            backoff_factor=0.2, respect_retry_after_header=True, raise_on_status=False,
            raise_on_redirect=False,
        )
        pool = int(self.settings.get("max_concurrency"))
        adapter = requests.adapters.HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=pool)
        # Connections whose sockets a deadline can cut (see deadline.py).
        adapter.poolmanager.pool_classes_by_scheme = dict(deadline.POOL_CLASSES)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    # -- sending -------------------------------------------------------------------------
    def fetch(self, probe: Probe) -> Exchange:
        """The exchange for a probe, sent at most once per run (the probe cache)."""
        with self._lock:
            future = self._cache.get(probe)
            owner = future is None
            if future is None:
                future = self._cache[probe] = Future()
        if owner:
            try:
                future.set_result(self.send(probe))
            except BaseException as exc:
                future.set_exception(exc)
        return future.result()

    def fetch_many(self, probes: Iterable[Probe]) -> list[Exchange]:
        """Fetch probes concurrently (bounded by max_concurrency); results in input order."""
        unique = list(dict.fromkeys(probes))
        if len(unique) <= 1:
            return [self.fetch(p) for p in unique]
        pool = self._executor()
        futures = {p: pool.submit(self.fetch, p) for p in unique}
        return [futures[p].result() for p in unique]

    def prefetch(self, probes: Iterable[Probe]) -> None:
        """Warm the cache; errors are kept in the cache for the checks to report."""
        pool = self._executor()
        for fut in [pool.submit(self.fetch, p) for p in dict.fromkeys(probes)]:
            fut.exception()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=int(self.settings.get("max_concurrency")), thread_name_prefix="prodready")
            return self._pool

    def credential_headers(self, credential: str) -> dict[str, str]:
        """Headers that carry a configured secret (by its config key)."""
        secret = self.settings.secret(credential)
        if secret is None:
            raise KeyError(credential)
        if credential.endswith("cookie_env"):
            return {"Cookie": secret}
        if credential != "auth.token_env":
            return {"Authorization": f"Bearer {secret}"}
        header = self.settings.get("auth.header") or "Authorization"
        scheme = self.settings.get("auth.scheme", "Bearer")
        return {header: f"{scheme} {secret}".strip() if header.lower() == "authorization" else secret}

    def scoped(self, **values: Any) -> Target:
        """This target with some settings overridden, sharing its session, cache and budget."""
        view = copy.copy(self)
        view.settings = self.settings.with_values(**values)
        return view

    def guard(self, host: str) -> None:
        """For non-HTTP probes (TLS handshakes, TCP ports): allowlist check, then budget charge.

        Every connection a check opens goes through here or through `send`, so the safety
        rules hold for every family, not only the HTTP ones.
        """
        if host.lower() not in self.allowed_hosts:
            raise OffAllowlist(f"refused to connect to {host!r}: it is not the target's host nor "
                               "in allowed_hosts")
        self.budget.charge()

    def _check_allowed(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.allowed_hosts:
            raise OffAllowlist(
                f"refused to send a request to {host!r}: it is not the target's host nor in "
                "allowed_hosts")

    def send(self, probe: Probe) -> Exchange:
        """Send one probe now (no cache), following same-allowlist redirects by hand."""
        url = self.url_for(probe.path)
        headers = dict(probe.headers)
        secret_headers = self.credential_headers(probe.credential) if probe.credential else {}
        method, body = probe.method, probe.body
        redirects: list[tuple[int, str]] = []
        self._check_allowed(url)
        # One deadline for the probe, its redirects included: six slow hops must not make
        # six deadlines.
        until = time.monotonic() + self.exchange_deadline
        while True:
            exchange, location = self._send_once(method, url, {**headers, **secret_headers}, body,
                                                 until)
            exchange = _replace(exchange, redirects=tuple(redirects))
            if location is None or not probe.follow_redirects or exchange.status is None:
                return exchange
            try:
                next_url = urljoin(url, location)
                next_host = (urlsplit(next_url).hostname or "").lower()
                _same_origin(url, next_url)  # parses the port: a bad one raises here
            except ValueError:
                return _replace(exchange, note=f"redirect to {self.masker.url(location)!r} not "
                                               "followed: it is not a valid URL")
            if next_host not in self.allowed_hosts or urlsplit(next_url).scheme not in ("http", "https"):
                where = next_host or self.masker.url(next_url)
                return _replace(exchange, note=f"redirect to {where} not followed: it is "
                                               "outside the allowlist")
            if len(redirects) >= MAX_REDIRECTS:
                return _replace(exchange, note=f"stopped after {MAX_REDIRECTS} redirects (a loop?)")
            if until - time.monotonic() < RETRY_MIN_LEFT_S:
                return _replace(exchange, note=f"redirect to {self.masker.url(next_url)} not followed: "
                                               f"the redirects took the {self.exchange_deadline:g}s "
                                               "deadline")
            if not _same_origin(url, next_url):
                # Another host (even an allowed one) or another port never receives our
                # credentials: neither the configured secret nor a check's own auth headers.
                secret_headers = {}
                headers = {k: v for k, v in headers.items() if not self._carries_secret(k)}
            redirects.append((int(exchange.status), next_url))
            if exchange.status == 303 or (exchange.status in (301, 302) and method == "POST"):
                method, body = "GET", b""
            url = next_url

    def _carries_secret(self, header: str) -> bool:
        name = header.lower()
        custom = str(self.settings.get("auth.header") or "").lower()
        return name in SECRET_HEADERS or name == custom

    def _send_once(self, method: str, url: str, headers: dict[str, str], body: bytes,
                   until: float) -> tuple[Exchange, str | None]:
        self.budget.charge()
        sent_headers = {"User-Agent": USER_AGENT, **headers}
        base: dict[str, Any] = dict(
            method=method, url=url, request_headers=tuple(self.masker.headers(sent_headers)),
            request_body=body, masker=self.masker)
        start = time.monotonic()
        retryable = method in IDEMPOTENT or self.retries_every_method
        retries_left = int(self.settings.get("retries")) if retryable else 0
        with deadline.deadline(until - start) as cut:
            while True:
                exchange, location, broken = self._attempt(method, url, headers, body, base, start, cut)
                # A response that broke off mid-body (a reset) is retried like one that broke
                # before its status line, within the same deadline; urllib3's Retry only
                # sees the latter, since the body is read after it hands the response over.
                if not broken or retries_left <= 0 or cut.remaining() < RETRY_MIN_LEFT_S:
                    return exchange, location
                retries_left -= 1
                self.budget.charge()

    def _attempt(self, method: str, url: str, headers: dict[str, str], body: bytes,
                 base: dict[str, Any], start: float,
                 cut: deadline.Watch) -> tuple[Exchange, str | None, bool]:
        """One request (with urllib3's retries) and its body: (exchange, Location, broke off)."""
        try:
            response = self.session.request(
                method, url, headers=headers, data=body or None, stream=True,
                allow_redirects=False, timeout=(self.timeout, self.timeout))
        except (BudgetExceeded, OffAllowlist):
            raise
        except (requests.exceptions.RequestException, OSError, ValueError,
                http.client.HTTPException) as exc:
            error, kind = describe_error(exc, self.timeout)
            if cut.expired:
                error = (f"no complete response within {self.exchange_deadline:g}s: the target "
                         "kept the connection open without finishing its headers")
            return Exchange(**base, error=error, error_kind=kind,
                            elapsed_ms=(time.monotonic() - start) * 1000), None, False
        # The answer's latency: from the start of the attempt that got it, not from before
        # the retries (a Retry-After wait is the target's hiccup, not its response time).
        elapsed = (time.monotonic() - (cut.attempt_started or start)) * 1000
        if cut.expired:
            # http.client takes a cut-off header block for a complete one: never judge it.
            response.close()
            return Exchange(**base, error=(
                f"no complete response within {self.exchange_deadline:g}s: the target kept "
                "sending headers without finishing them"), error_kind="read",
                elapsed_ms=elapsed), None, False
        return self._finish(response, base, method, elapsed, cut)

    @property
    def exchange_deadline(self) -> float:
        """The hard limit for one probe: retries, redirects and body included (timeout_s + 1 s)."""
        return self.timeout + 1.0

    def _finish(self, response: requests.Response, base: dict[str, Any], method: str,
                elapsed: float, cut: deadline.Watch) -> tuple[Exchange, str | None, bool]:
        try:
            data, truncated, note, broken = self._read_body(response, method, cut.until)
            if cut.expired and truncated:
                # The deadline shut the socket: the body was still arriving, nothing broke.
                note, broken = (f"body still arriving after {self.exchange_deadline:g}s; cut "
                                f"({len(data)} bytes kept)"), False
            raw_headers = tuple((k, v) for k, v in response.raw.headers.items())
            status, reason = response.status_code, response.reason or ""
            if broken:
                # Half a response is no answer: a check must not judge an empty or partial
                # body as if it were the target's (a health page cut to nothing "passes").
                error = f"incomplete response: '{status} {reason}', then {note}"
                return Exchange(**base, headers=raw_headers, body=data, truncated=True,
                                elapsed_ms=elapsed, error=error, error_kind="read"), None, True
            exchange = Exchange(**base, status=status, reason=reason, headers=raw_headers, body=data,
                                truncated=truncated, elapsed_ms=elapsed, note=note)
            location = response.headers.get("Location") if response.is_redirect else None
            return exchange, location, False
        finally:
            response.close()

    def _read_body(self, response: requests.Response, method: str,
                   until: float) -> tuple[bytes, bool, str, bool]:
        """(body, truncated, note, broke off): the body up to the cap and the deadline."""
        if method == "HEAD":
            return b"", False, "", False
        cap = int(self.settings.get("max_body_bytes"))
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    return (b"".join(chunks)[:cap], True, f"body cut at {cap} bytes (max_body_bytes)",
                            False)
                if time.monotonic() > until:
                    return (b"".join(chunks), True,
                            f"body still arriving after {self.exchange_deadline:g}s; cut", False)
        except (requests.exceptions.RequestException, OSError) as exc:
            error, _ = describe_error(exc, self.timeout)
            return b"".join(chunks), True, f"{size} bytes of the body: {error}", True
        return b"".join(chunks), False, "", False

    # -- lifecycle -----------------------------------------------------------------------
    def preflight(self) -> Exchange:
        """Fetch the target's page once; raise TargetUnreachable when nothing answers."""
        exchange = self.fetch(Probe.get(str(self.settings.get("page"))))
        if exchange.status is None and exchange.error_kind == "connect":
            raise TargetUnreachable(
                f"target {self.masker.url(self.base_url)} is unreachable: {exchange.error}. "
                "Check --prodready-url / base_url, and that the service is up.")
        return exchange

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_origin(url: str, next_url: str) -> bool:
    """Whether credentials may follow a redirect: same host and port (as requests decides),
    where an upgrade from http to https on the default ports counts as the same."""
    a, b = urlsplit(url), urlsplit(next_url)
    if (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    default = {"http": 80, "https": 443}
    if (a.scheme, b.scheme) == ("http", "https"):
        return a.port in (None, 80) and b.port in (None, 443)
    return a.scheme == b.scheme and (a.port or default.get(a.scheme)) == (b.port or default.get(b.scheme))


def _replace(exchange: Exchange, **changes: Any) -> Exchange:
    from dataclasses import replace

    return replace(exchange, **changes)


def endpoints_of(entries: Sequence[str], methods: Iterable[str] | None = None) -> list[str]:
    """Config endpoints ('METHOD /path'), optionally only those with the given methods."""
    wanted = {m.upper() for m in methods} if methods else None
    return [e for e in entries if wanted is None or e.partition(" ")[0] in wanted]
