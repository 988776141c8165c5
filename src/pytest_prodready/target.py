"""The target client: the only way the plugin talks to a system under test.

One `requests.Session` with timeouts, retries for idempotent methods only (urllib3's
Retry), a host allowlist checked on every hop, a hard request budget, a body-size cap,
and a per-run probe cache so a response fetched once feeds every check that needs it.
"""

from __future__ import annotations

import copy
import http.client
import http.cookiejar
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

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
from pytest_prodready.config import Settings, defaults
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import BudgetExceeded, CannotJudge, OffAllowlist, TargetUnreachable
from pytest_prodready.masking import SECRET_HEADERS, Masker
from pytest_prodready.runshare import Budget, RunShare
from pytest_prodready.urls import Destination, UnsafeURL, destination, host_of

if TYPE_CHECKING:
    from pytest_prodready.leaks import Leak

__all__ = ["Budget", "Probe", "Target", "describe_error"]

USER_AGENT = f"pytest-prodready/{__version__} (production-readiness check)"
# Headers that make one of our requests distinct, and findable in the target's logs: a
# sequence number (a burst, a latency sample) and a probe's purpose (a control after attacks).
SEQ_HEADER = "X-Prodready-Seq"
PROBE_HEADER = "X-Prodready-Probe"
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REDIRECTS = 5
RETRY_AFTER_CAP_S = 5.0  # we honour Retry-After, but never let a target park us for long
# A retry starts only if this much of the exchange deadline is left once its wait is over:
# the last second of the deadline is for an answer, not for a retry the deadline would cut.
RETRY_MIN_LEFT_S = 1.0
CHUNK = 16 * 1024  # small chunks bound what one step of a gzip bomb can inflate to
# OpenSSL's reasons when an https:// URL reaches a port that speaks plain HTTP.
PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "UNKNOWN_PROTOCOL")


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
    # A request a correct target ACCEPTS (the signed webhook control): sent at most once
    # per run, by one process, never retried.
    once: bool = False
    # A refusal is the answer, not a hiccup (a rate-limit probe, a latency sample): never
    # retried, and its 429 does not count towards the run's Throttle (the checker is not
    # being rate-limited; the check is measuring the limiter). Sent like any other probe.
    expect_refusal: bool = False
    # The request's point is to carry none of the run's credentials (an anonymous call, or a
    # made-up token in place of the real one): a configured request header named like the
    # credential header (`auth.header`, default Authorization) is not sent with it. A team
    # that passes its API credential as `--header "Authorization: ..."` gets it on every
    # other request, and auth.required still asks what an anonymous caller gets. The
    # probe's own headers are made up, not secrets: they may go over unverified TLS.
    anonymous: bool = False

    def __repr__(self) -> str:
        # Header names only: probes carry forged tokens and webhook signatures.
        names = ", ".join(name for name, _ in self.headers)
        return f"<Probe {self.method} {self.path} headers=[{names}]>"

    @classmethod
    def of(cls, method: str, path: str, headers: dict[str, str] | None = None,
           body: bytes = b"", credential: str | None = None, follow_redirects: bool = True,
           once: bool = False, expect_refusal: bool = False, anonymous: bool = False) -> Probe:
        return cls(method.upper(), path, tuple(sorted((headers or {}).items())), body,
                   credential, follow_redirects, once, expect_refusal, anonymous)

    @classmethod
    def get(cls, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Probe:
        return cls.of("GET", path, headers, **kw)

    @classmethod
    def endpoint(cls, endpoint: str, headers: dict[str, str] | None = None, **kw: Any) -> Probe:
        """A probe from a normalised 'METHOD /path' config entry."""
        method, _, path = endpoint.partition(" ")
        return cls.of(method, path, headers, **kw)


class Throttle:
    """The run's patience with a target that rate-limits the checker itself.

    Each probe backing off on its own made a 1,000-endpoint sweep against a 100/minute
    limiter run for more than 13 minutes at under 1% CPU. So the back-off is bounded per
    run: at most `wait_budget_s` of Retry-After/backoff sleeping in all, and once
    `give_up_after` probes have still ended on 429, the rest are not sent (they report
    "rate limited, cannot judge"). Cancelling (Ctrl-C) wakes every sleeper at once.
    """

    def __init__(self, wait_budget_s: float, give_up_after: int = 5) -> None:
        self.wait_budget_s = wait_budget_s
        self.give_up_after = give_up_after
        self.waited_s = 0.0
        self.refused = 0
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def allow_wait(self, seconds: float) -> bool:
        with self._lock:
            if self.waited_s + seconds > self.wait_budget_s:
                return False
            self.waited_s += seconds
            return True

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.cancelled.wait(seconds)

    def record(self, status: int | None) -> None:
        if status == 429:
            with self._lock:
                self.refused += 1

    @property
    def gave_up(self) -> bool:
        return self.refused >= self.give_up_after


class _BudgetedRetry(Retry):
    """urllib3's Retry, charging each retry to the run's budget, within the exchange deadline.

    Never retried: a timeout (connect or read: retrying would multiply the time a check can
    hang; a reset or a 503 is worth one more try, a target that does not answer is not),
    any retry whose wait (backoff or Retry-After) would leave less than RETRY_MIN_LEFT_S of
    the exchange deadline, and a 429 once the run's back-off allowance (Throttle) is
    spent. Then the last answer (a 503, a 429) is returned as it is, or the last error
    raised. A Retry-After urllib3 cannot parse (a year 99999999999 overflows) is ignored.
    """

    budget: Budget | None = None
    throttle: Throttle | None = None

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
        status = getattr(response, "status", "?")
        out_of_time = deadline.remaining() - wait < RETRY_MIN_LEFT_S
        out_of_patience = (status == 429 and self.throttle is not None
                           and not self.throttle.allow_wait(wait))
        if out_of_time or out_of_patience:
            reason = error or ResponseError(f"no time left to retry after status {status}")
            raise MaxRetryError(_pool, url or "", reason) from error
        if self.budget is not None:
            self.budget.charge()
        return new

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            return float(super().parse_retry_after(retry_after))
        except Exception:  # InvalidHeader, OverflowError, ValueError: a hostile header
            return 0.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(max(value, 0.0), RETRY_AFTER_CAP_S)

    def sleep(self, response: Any = None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        seconds = wait if wait else self.get_backoff_time()
        if self.throttle is not None:
            self.throttle.sleep(seconds)
        elif seconds > 0:
            time.sleep(seconds)


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
    if isinstance(exc, requests.exceptions.SSLError) or first(ssl.SSLError):
        inner = first(ssl.SSLError)
        reason = str(getattr(inner, "verify_message", None) or getattr(inner, "reason", None)
                     or inner or text)
        if any(r in reason.upper() for r in PLAIN_HTTP_REASONS):
            return ("TLS handshake failed: the port answers in plain HTTP, not TLS (did you mean "
                    "http://?)"), "connect"
        hint = ("; if the target uses a private CA, set tls.ca_bundle"
                if "VERIFY" in text.upper() else "")
        return f"TLS handshake failed: {reason}{hint}", "connect"
    if (too_long := first(http.client.LineTooLong)) is not None:
        return f"malformed response: a line too long ({too_long})", "read"
    if first(http.client.RemoteDisconnected) is not None:  # a BadStatusLine, a reset too
        return "the target closed the connection without a response", "read"
    if (status := first(http.client.BadStatusLine)) is not None:
        line = str(status)
        if line.startswith(("\x15\x03", "\x16\x03")):
            return "the port speaks TLS, not plain HTTP (did you mean https://?)", "read"
        if line.startswith("SSH-"):
            return "the port speaks SSH, not HTTP; check the URL's port", "read"
        return f"malformed response: bad status line {line[:100]!r}", "read"
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


# How many transport failures in a row (no answer in between) make the run stop sending:
# a full wave of concurrent probes, at least three.
BREAKER_MIN = 3


class _Untrusted(Exception):
    """The certificate did not verify; carries OpenSSL's reason, in full."""


def _untrusted_reason(exc: BaseException) -> str | None:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or cause.reason or cause)
    return None


def _insecure_context() -> ssl.SSLContext:
    """For fetching from a target whose certificate did not verify: nothing is verified and
    weak keys are accepted (an RSA-1024 leaf is a finding for tls.cert_strength, not a reason
    to judge nothing else). Only used after a verified handshake failed, and never with a
    credential."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


class _InsecureAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = _insecure_context()
        super().init_poolmanager(*args, **kwargs)


class _UnverifiedHTTPSConnection(deadline.DeadlineHTTPSConnection):
    """Marks its (deliberately unverified) connections so urllib3 does not warn per request:
    the evidence of every such exchange says it was fetched without verification."""

    def connect(self) -> None:
        super().connect()
        self.is_verified = True


class _UnverifiedPool(deadline.DeadlineHTTPSConnectionPool):
    ConnectionCls = _UnverifiedHTTPSConnection


@dataclass
class Target:
    """A system under test: base URL, settings, and the safe client that reaches it."""

    settings: Settings
    masker: Masker = field(default_factory=Masker)
    # Run-wide state shared with the other xdist workers (budget, once-only probes, breaker).
    share: RunShare = field(default_factory=RunShare)
    budget: Budget = field(init=False)
    throttle: Throttle = field(init=False)
    session: requests.Session = field(init=False)
    # Why the target's certificate did not verify, once a handshake found out: from then on
    # probes without credentials are fetched unverified (said so in their evidence).
    untrusted: str | None = field(init=False, default=None)
    cancelled: bool = field(init=False, default=False)
    _sessions: dict[tuple[bool, bool], requests.Session] = field(init=False, default_factory=dict)
    _cache: dict[Probe, Future[Exchange]] = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = field(init=False, default=None)
    _inflight: set[deadline.Watch] = field(init=False, default_factory=set)
    _failures_in_a_row: int = field(init=False, default=0)
    _hosts: tuple[Settings, frozenset[str]] | None = field(init=False, default=None)
    _leaks: dict[int, tuple[Exchange, list[Leak]]] = field(init=False, default_factory=dict)
    _plans: dict[tuple[str, str, int], tuple[Settings, dict[str, Probe]]] = field(
        init=False, default_factory=dict)

    def __repr__(self) -> str:
        return f"Target({self.masker.url(self.base_url)!r})"

    def __post_init__(self) -> None:
        from pytest_prodready import family

        for secret in self.settings.secrets.values():
            self.masker.add(secret)
        for name in family.secret_headers():
            self.masker.add_secret_header(name)
        self.budget = self.share.budget(int(self.settings.get("request_budget")))
        self.throttle = Throttle(wait_budget_s=3 * self.timeout)
        self.session = self._session(retrying=True, insecure=False)

    @classmethod
    def from_url(cls, base_url: str, **values: Any) -> Target:
        """A target for scripts and one-off checks, with the default safety settings.

        `values` are config keys, checked and normalised like a config file's (a bare
        path becomes 'GET /path', a bad value raises ConfigError naming the key)."""
        from pytest_prodready import schema

        checked = schema.validate_table({**values, "base_url": base_url})
        return cls(Settings(values={**defaults(), **checked}, secrets={}, sources={}))

    # -- configuration -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def timeout(self) -> float:
        return float(self.settings.get("timeout_s"))

    @property
    def allowed_hosts(self) -> frozenset[str]:
        if self._hosts is not None and self._hosts[0] is self.settings:
            return self._hosts[1]
        from pytest_prodready import family

        hosts = {host_of(self.base_url)}
        hosts |= {h.lower().strip("[]") for h in self.settings.get("allowed_hosts", [])}
        # Hosts a family's settings name (tls.http_url, tls.hosts...) are part of the target
        # by the user's own word.
        hosts |= family.hosts(self.settings)
        allowed = frozenset(h.lower() for h in hosts if h)
        self._hosts = (self.settings, allowed)
        return allowed

    @property
    def retries_every_method(self) -> bool:
        """Whether a POST/PUT/PATCH/DELETE that hit a reset, a 429 or a 5xx is retried too.

        In passive mode (the default) every such request is one a correct target must
        refuse (a forged token, a bad signature, a malformed body): sending it again
        changes nothing a correct target keeps, and not retrying it would turn a hiccup
        into a "cannot judge" or, for a 503, into a false failure. A request a correct
        target accepts (Probe.once) is never retried; in active mode nothing with a body is.
        """
        return not self.settings.active

    def url_for(self, path: str) -> str:
        """An absolute URL for a probe path; paths are appended to the base URL's own path."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)

    def _session(self, *, retrying: bool, insecure: bool) -> requests.Session:
        """The session for a kind of request, made on first use.

        retrying: urllib3 retries hiccups (a once-only probe has none); insecure: after the
        certificate failed to verify, for probes without credentials.
        """
        key = (retrying, insecure)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = self._make_session(retrying, insecure)
            return self._sessions[key]

    def _make_session(self, retrying: bool, insecure: bool) -> requests.Session:
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
        if insecure:
            session.verify = False
        elif bundle:
            session.verify = str(bundle)
        retries = int(self.settings.get("retries")) if retrying else 0
        retry_class = type("BudgetedRetry", (_BudgetedRetry,),
                           {"budget": self.budget, "throttle": self.throttle})
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
        adapter_class = _InsecureAdapter if insecure else requests.adapters.HTTPAdapter
        adapter = adapter_class(max_retries=retry, pool_connections=4, pool_maxsize=pool)
        # Connections whose sockets a deadline can cut (see deadline.py).
        classes = dict(deadline.POOL_CLASSES)
        if insecure:
            classes["https"] = _UnverifiedPool
        adapter.poolmanager.pool_classes_by_scheme = classes
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

    def prefetch(self, probes: Iterable[Probe], on_done: Callable[[int, int], None] | None = None) -> None:
        """Warm the cache; errors are kept in the cache for the checks to report.

        `on_done(done, total)` is called as each probe completes (the progress line)."""
        pool = self._executor()
        futures = [pool.submit(self.fetch, p) for p in dict.fromkeys(probes)]
        for done, fut in enumerate(as_completed(futures) if on_done is not None else futures, 1):
            fut.exception()
            if on_done is not None:
                on_done(done, len(futures))

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

    def planned(self, check_id: str, subject: str,
                make: Callable[[], dict[str, Probe]]) -> dict[str, Probe]:
        """A check's probes for a subject, planned once per run (per settings): the prefetch
        and the judge get the very same Probe objects, so nothing is planned or sent twice
        (a signed webhook's timestamp, a forged token's random key...)."""
        key = (check_id, subject, id(self.settings))
        with self._lock:
            known = self._plans.get(key)
            if known is not None and known[0] is self.settings:
                return known[1]
        plan = make()
        with self._lock:
            self._plans.setdefault(key, (self.settings, plan))
            return self._plans[key][1]

    def scoped(self, **values: Any) -> Target:
        """This target with some settings overridden, sharing its session, cache and budget.
        The overrides are checked and normalised like a config file's keys (from_url)."""
        from pytest_prodready import schema

        view = copy.copy(self)
        view.settings = self.settings.with_values(**schema.validate_table(values))
        return view

    def guard(self, host: str) -> None:
        """For non-HTTP probes (TLS handshakes, TCP ports): allowlist check, then budget charge.

        Every connection a check opens goes through here or through `send`, so the safety
        rules hold for every family, not only the HTTP ones.
        """
        if host.lower().strip("[]") not in self.allowed_hosts:
            raise OffAllowlist(f"refused to connect to {host!r}: it is not the target's host nor "
                               "in allowed_hosts")
        self.budget.charge()

    def _destination(self, url: str) -> Destination:
        """Where `url` really connects (see urls.py), refused when off the allowlist."""
        try:
            dest = destination(url)
        except UnsafeURL as exc:
            raise OffAllowlist(f"refused to send a request to {self.masker.url(url)!r}: {exc}") from None
        if dest.host not in self.allowed_hosts:
            raise OffAllowlist(
                f"refused to send a request to {dest.host!r}: it is not the target's host nor in "
                "allowed_hosts")
        return dest

    def handover(self, probe: Probe, count: int) -> tuple[str, dict[str, str], bool | str]:
        """The first hop of `probe` for a sender outside this client (the Locust runner):
        (URL, headers, TLS verify), after the same allowlist and URL checks as `send`, with
        `count` requests taken from the run's budget at once. The outside sender must not
        follow redirects: only this client knows which hosts a credential may reach."""
        url = self.url_for(probe.path)
        stop = self._not_sending()
        if stop:
            raise CannotJudge(stop)
        dest = self._destination(url)
        headers = {"User-Agent": USER_AGENT,
                   **self._request_headers(dest, dict(probe.headers), anonymous=probe.anonymous),
                   **dict(probe.headers)}
        self.budget.charge(count)
        bundle = self.settings.get("tls.ca_bundle")
        return dest.url, headers, str(bundle) if bundle else True

    def send(self, probe: Probe) -> Exchange:
        """Send one probe now (no cache). Nothing but the run's own stops escapes from here:
        whatever the HTTP stack raises on hostile input becomes a named transport error."""
        if probe.once:
            return self._send_once_per_run(probe)
        return self._send_guarded(probe)

    def _send_guarded(self, probe: Probe) -> Exchange:
        url = self.url_for(probe.path)
        stop = self._not_sending()
        if stop:
            return Exchange(method=probe.method, url=url, request_headers=(), masker=self.masker,
                            error=stop, error_kind="connect")
        try:
            exchange = self._send(probe, url)
        except (BudgetExceeded, OffAllowlist, KeyboardInterrupt):
            raise
        except Exception as exc:  # the boundary: a bug or a hostile answer, never a crash
            exchange = Exchange(method=probe.method, url=url, request_headers=(), masker=self.masker,
                                error=f"the client failed on this exchange ({type(exc).__name__}: "
                                      f"{str(exc)[:200]})", error_kind="read")
        self._breaker(exchange)
        if not probe.expect_refusal:
            self.throttle.record(exchange.status)
        self._discover(exchange)
        return exchange

    def _send_once_per_run(self, probe: Probe) -> Exchange:
        # The key leaves out header values and the body: two workers build the same request
        # with their own timestamps and signatures, and it is still one delivery per run.
        key = repr((probe.method, probe.path, sorted(k.lower() for k, _ in probe.headers),
                    len(probe.body), probe.credential)).encode()

        def portable() -> dict[str, Any]:
            exchange = self._send_guarded(probe)
            return {f.name: getattr(exchange, f.name) for f in fields(exchange) if f.name != "masker"}

        state = self.share.once(key, portable, wait_s=self.exchange_deadline * 2 + 5)
        if state is None:
            return Exchange(method=probe.method, url=self.url_for(probe.path), request_headers=(),
                            masker=self.masker, error="another worker of this run sent this "
                            "request and its answer did not arrive in time", error_kind="read")
        return Exchange(**state, masker=self.masker)

    def _not_sending(self) -> str:
        """Why no request is sent any more in this run ('' when requests go out)."""
        if self.cancelled:
            return "not sent: the run was interrupted"
        tripped = self.share.tripped()
        if tripped:
            return f"not sent: {tripped}"
        if self.throttle.gave_up:
            return (f"not sent: the target is rate-limiting the checker ({self.throttle.refused} "
                    "probes still got 429 after backing off); cannot judge. Lower max_concurrency, "
                    "or allow-list the checker's address for the run")
        return ""

    def _breaker(self, exchange: Exchange) -> None:
        """Stop the run's requests after a wave of transport failures with no answer between."""
        failed = exchange.status is None and not exchange.error.startswith("not sent")
        with self._lock:
            self._failures_in_a_row = self._failures_in_a_row + 1 if failed else 0
            count = self._failures_in_a_row
        threshold = max(BREAKER_MIN, int(self.settings.get("max_concurrency")))
        if failed and count >= threshold and not self.share.tripped():
            self.share.trip(f"the target stopped answering ({count} exchanges in a row failed; "
                            f"the last: {self.masker.text(exchange.error)})")

    def _discover(self, exchange: Exchange) -> None:
        """Secrets the target shows (a key in a page, a DSN in an error) join the masker at
        fetch time, before anything is rendered: the order of the checks never matters."""
        from pytest_prodready.leaks import find_leaks, values_to_mask

        for value in values_to_mask(self.leaks_in(exchange), exchange.text):
            self.masker.add(value)
        # A session cookie is no leak to report, but a secret-shaped one is masked wherever
        # the target echoes it.
        for cookie in exchange.header_all("Set-Cookie"):
            for leak in find_leaks(cookie):
                self.masker.add(leak.value)

    def leaks_in(self, exchange: Exchange) -> list[Leak]:
        """The credentials a response shows (leaks.response_leaks), scanned once per exchange:
        the client's masking and exposure.secrets_in_responses read the same findings."""
        from pytest_prodready.leaks import response_leaks

        key = id(exchange)
        with self._lock:
            known = self._leaks.get(key)
        if known is not None and known[0] is exchange:
            return known[1]
        found = response_leaks(exchange.headers, exchange.text) if exchange.status is not None else []
        with self._lock:
            self._leaks[key] = (exchange, found)  # holds the exchange: its id stays its own
        return found

    def _send(self, probe: Probe, url: str) -> Exchange:
        """The probe and the redirects it follows, within one deadline."""
        headers = own = dict(probe.headers)
        secret_headers = self.credential_headers(probe.credential) if probe.credential else {}
        method, body = probe.method, probe.body
        redirects: list[tuple[int, str]] = []
        hops: list[Exchange] = []
        dest = self._destination(url)
        headers = {**self._request_headers(dest, headers, secret_headers, anonymous=probe.anonymous),
                   **headers}
        # One deadline for the probe, its redirects included: six slow hops must not make
        # six deadlines.
        until = time.monotonic() + self.exchange_deadline
        while True:
            sent = {**headers, **secret_headers}
            exchange, location = self._send_one(method, dest.url, sent, body, until,
                                                retrying=not (probe.once or probe.expect_refusal),
                                                credentialed=bool(secret_headers) or any(
                                                    self._carries_secret(k) for k in headers
                                                    if not (probe.anonymous and k in own)))
            exchange = _replace(exchange, redirects=tuple(redirects), hops=tuple(hops))
            if location is None or not probe.follow_redirects or exchange.status is None:
                return exchange
            try:
                next_dest = destination(urljoin(dest.url, location))
            except UnsafeURL as exc:
                # Quoted as text, not parsed as a URL: a parser would show where it *thinks*
                # the Location goes, which is the very ambiguity that made us refuse it.
                return _replace(exchange, note=f"redirect to {self.masker.text(location)!r} not "
                                               f"followed: {exc}")
            if next_dest.host not in self.allowed_hosts:
                return _replace(exchange, note=f"redirect to {next_dest.host} not followed: it is "
                                               "outside the allowlist")
            if len(redirects) >= MAX_REDIRECTS:
                return _replace(exchange, note=f"stopped after {MAX_REDIRECTS} redirects (a loop?)")
            if until - time.monotonic() < RETRY_MIN_LEFT_S:
                return _replace(exchange, note=f"redirect to {self.masker.url(next_dest.url)} not "
                                               f"followed: the redirects took the "
                                               f"{self.exchange_deadline:g}s deadline")
            if not dest.same_origin(next_dest):
                # Another host (even an allowed one) or another port never receives our
                # credentials: neither the configured secret nor a check's own auth headers.
                secret_headers = {}
                headers = {k: v for k, v in headers.items() if not self._carries_secret(k)}
            redirects.append((int(exchange.status), next_dest.url))
            hops.append(_replace(exchange, redirects=(), hops=()))
            if exchange.status == 303 or (exchange.status in (301, 302) and method == "POST"):
                method, body = "GET", b""
            dest = next_dest

    def _carries_secret(self, header: str) -> bool:
        from pytest_prodready import family

        name = header.lower()
        custom = str(self.settings.get("auth.header") or "").lower()
        extra = {str(h["name"]).lower() for h in self.settings.get("request_headers") or ()}
        return (name in SECRET_HEADERS or name == custom or name in extra
                or name in family.secret_headers())

    def origin_headers(self, own: dict[str, str], *, anonymous: bool) -> dict[str, str]:
        """The configured `request_headers` (a staging gate's key...) for a request this
        client does not send itself to the base URL's origin (a WebSocket handshake), with
        `own` on top; on an anonymous one, never the credential header."""
        return {**self._request_headers(destination(self.base_url), own, anonymous=anonymous), **own}

    def _request_headers(self, dest: Destination, *own: dict[str, str],
                         anonymous: bool = False) -> dict[str, str]:
        """`request_headers` from config (each value from its env var, a secret), for a
        request to the base URL's own origin only, never where the probe sets that header
        itself, and never the credential header on an anonymous probe (Probe.anonymous).
        Other hosts and plain HTTP (tls.http_url) never receive them."""
        configured = self.settings.get("request_headers") or ()
        if not configured:
            return {}
        try:
            if not destination(self.base_url).same_origin(dest):
                return {}
        except UnsafeURL:
            return {}
        taken = {name.lower() for headers in own for name in headers}
        if anonymous:
            taken.add(str(self.settings.get("auth.header") or "Authorization").lower())
        out: dict[str, str] = {}
        for i, item in enumerate(configured):
            value = self.settings.secret(f"request_headers[{i}].value_env")
            if value is not None and str(item["name"]).lower() not in taken:
                out[str(item["name"])] = value
        return out

    def _send_one(self, method: str, url: str, headers: dict[str, str], body: bytes,
                  until: float, *, retrying: bool, credentialed: bool) -> tuple[Exchange, str | None]:
        """One hop; when the certificate does not verify, the same hop unverified (never with
        a credential: a secret goes only over TLS we could verify)."""
        try:
            return self._send_hop(method, url, headers, body, until, retrying=retrying,
                                  credentialed=credentialed)
        except _Untrusted as untrusted:
            with self._lock:
                self.untrusted = self.untrusted or str(untrusted)
        if credentialed:
            return Exchange(method=method, url=url, request_headers=tuple(self.masker.headers(headers)),
                            masker=self.masker, error_kind="connect",
                            error=(f"not sent: the certificate does not verify ({self.untrusted}), and "
                                   "credentials go only over verified TLS; set tls.ca_bundle to the "
                                   "CA that signed it")), None
        return self._send_hop(method, url, headers, body, until, retrying=retrying,
                              credentialed=False)

    def _send_hop(self, method: str, url: str, headers: dict[str, str], body: bytes,
                  until: float, *, retrying: bool, credentialed: bool) -> tuple[Exchange, str | None]:
        self.budget.charge()
        # A request that carries a secret always verifies the certificate (and is refused
        # above when it does not verify), whatever earlier probes found.
        insecure = self.untrusted is not None and url.startswith("https:") and not credentialed
        session = self._session(retrying=retrying, insecure=insecure)
        sent_headers = {"User-Agent": USER_AGENT, **headers}
        base: dict[str, Any] = dict(
            method=method, url=url, request_headers=tuple(self.masker.headers(sent_headers)),
            request_body=body, masker=self.masker)
        start = time.monotonic()
        retryable = retrying and (method in IDEMPOTENT or self.retries_every_method)
        retries_left = int(self.settings.get("retries")) if retryable else 0
        with deadline.deadline(until - start) as cut:
            with self._lock:
                self._inflight.add(cut)
            try:
                while True:
                    exchange, location, broken = self._attempt(session, method, url, headers, body,
                                                               base, start, cut)
                    # A response that broke off mid-body (a reset) is retried like one that
                    # broke before its status line, within the same deadline; urllib3's Retry
                    # only sees the latter, since the body is read after it hands it over.
                    if not broken or retries_left <= 0 or cut.remaining() < RETRY_MIN_LEFT_S:
                        break
                    retries_left -= 1
                    self.budget.charge()
            finally:
                with self._lock:
                    self._inflight.discard(cut)
        if insecure and exchange.status is not None:
            exchange = _replace(exchange, note="; ".join(filter(None, (
                exchange.note, f"fetched without certificate verification ({self.untrusted})"))))
        return exchange, location

    def _attempt(self, session: requests.Session, method: str, url: str, headers: dict[str, str],
                 body: bytes, base: dict[str, Any], start: float,
                 cut: deadline.Watch) -> tuple[Exchange, str | None, bool]:
        """One request (with urllib3's retries) and its body: (exchange, Location, broke off)."""
        try:
            # Straight to the adapter: Session.send would also prepare the *next* request of a
            # redirect (requests does so even with allow_redirects=False), and a hostile
            # Location (a double port, a latin-1 byte) raises there and loses the answer.
            prepared = session.prepare_request(requests.Request(
                method, url, headers=headers, data=body or None))
            response = session.get_adapter(url).send(
                prepared, stream=True, timeout=(self.timeout, self.timeout),
                verify=True if session.verify is None else session.verify, cert=None, proxies={})
        except (BudgetExceeded, OffAllowlist):
            raise
        except (requests.exceptions.RequestException, OSError, ValueError,
                http.client.HTTPException) as exc:
            reason = _untrusted_reason(exc)
            if reason is not None and session.verify is not False:
                raise _Untrusted(reason) from None
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
        except (requests.exceptions.RequestException, OSError, ValueError,
                http.client.HTTPException) as exc:
            error, _ = describe_error(exc, self.timeout)
            return b"".join(chunks), True, f"{size} bytes of the body: {error}", True
        return b"".join(chunks), False, "", False

    # -- lifecycle -----------------------------------------------------------------------
    def preflight(self) -> Exchange:
        """Fetch the target's page and an unknown path; stop the run when the target is
        effectively down: nothing answers, every exchange breaks or never finishes, or both
        answer 502/503/504. One clear message instead of a wall of verdicts."""
        page, missing = self.fetch_many([Probe.get(str(self.settings.get("page"))),
                                         Probe.get(PREFLIGHT_MISSING)])
        where = self.masker.url(self.base_url)
        if page.status is None and page.error_kind == "connect":
            untrusted = self.untrusted if page.error.startswith("not sent: ") else None
            raise TargetUnreachable(f"target {where} is unreachable: {page.error}. Check the URL, "
                                    "and that the service is up.", untrusted=untrusted)
        both = (page, missing)
        if all(ex.status is None for ex in both):
            if self._speaks_tls_instead():
                raise TargetUnreachable(f"target {where}: the port speaks TLS, not plain HTTP "
                                        "(did you mean https://?)")
            what = ("accepted the connection, but never answered" if "no response within"
                    in page.error else "answered, but broke every exchange")
            raise TargetUnreachable(f"target {where} {what}: {page.error}. Check the URL and that "
                                    "the service is healthy.")
        if all(ex.status is not None and ex.truncated and "still arriving" in ex.note for ex in both):
            raise TargetUnreachable(f"target {where} never finishes its responses ({page.note}); "
                                    "nothing can be judged.")
        if all(ex.status in (502, 503, 504) for ex in both):
            raise TargetUnreachable(f"target {where} answers {page.status} to everything (even after "
                                    "retrying): it is down or still starting. Run again once it is up.")
        return page

    def _speaks_tls_instead(self) -> bool:
        """For an http:// base URL whose every exchange broke: does its port complete a TLS
        handshake? OpenSSL resets a plain request without a word, so only asking tells."""
        try:
            dest = destination(self.base_url)
        except UnsafeURL:
            return False
        if dest.scheme != "http":
            return False
        import socket

        self.guard(dest.host)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((dest.host, dest.port), timeout=min(self.timeout, 3.0)) as raw, \
                    ctx.wrap_socket(raw, server_hostname=dest.host):
                return True
        except (OSError, ValueError):
            return False

    def cancel(self) -> None:
        """Stop now (Ctrl-C): in-flight exchanges are cut, waits end, nothing new is sent."""
        self.cancelled = True
        self.throttle.cancelled.set()
        with self._lock:
            inflight = list(self._inflight)
        for watch in inflight:
            watch.expire()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for session in self._sessions.values():
            session.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The unknown path the preflight asks next to the page (the same one errors.* and the
# soft-404 baseline use, so it costs no extra request in a full run).
PREFLIGHT_MISSING = "/prodready-nonexistent-3f9c1a7e"


def _replace(exchange: Exchange, **changes: Any) -> Exchange:
    from dataclasses import replace

    return replace(exchange, **changes)
