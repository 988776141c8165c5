"""perf.*: latency and error budgets, compression, caching of static assets.

perf.latency_budget is ACTIVE (needs --prodready-active), although the catalogue first
listed it as passive: it sends N requests (50 by default, up to 10,000) at bounded
concurrency, which is load, and the default run promises production a bounded handful of
requests per check. Its requests are not declared as `probes=` (the plugin would prefetch
them in a passive run) and each is a distinct probe (X-Prodready-Seq), never retried
(`expect_refusal`: a retried 503 would hide an error and its latency).

Percentiles are exact, computed from the raw samples with the nearest-rank method (the
smallest sample with at least p% of the samples at or below it; always a latency that
was measured, never an interpolation or a histogram bucket). A sample is the time from
sending the request to receiving the response headers (the client's `elapsed_ms`).
Transport errors have no latency: they count as errors, not as samples.

perf.compression and perf.static_caching are passive and judge ordinary GETs: the client
sends `Accept-Encoding: gzip, deflate` (requests' default; br/zstd too when brotli or
zstandard are installed) on every request.
"""

from __future__ import annotations

import math
import re
import secrets
import statistics
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.checks.common import base_probes
from pytest_prodready.config import Settings
from pytest_prodready.evidence import Exchange
from pytest_prodready.exceptions import CannotJudge, ConfigError
from pytest_prodready.family import Family
from pytest_prodready.target import SEQ_HEADER, Probe

DEFAULT_P95_MS = 500.0
DEFAULT_ERROR_RATE = 0.01
DEFAULT_REQUESTS = 50
DEFAULT_WARMUP = 5
HISTOGRAM_BINS = 12

# k6's threshold expressions for http_req_duration (p(N), avg, med, min, max) and
# http_req_failed (rate), e.g. "p(95)<200", "avg<=100", "rate<0.01".
THRESHOLD = re.compile(r"\s*(p\(\s*(\d{1,2}(?:\.\d{1,3})?|100)\s*\)|avg|med|min|max|rate)\s*(<=|<)\s*"
                       r"(\d{1,9}(?:\.\d{1,6})?)\s*")


def threshold(value: Any, key: str) -> str:
    text = schema.string(value, key)
    if not THRESHOLD.fullmatch(text):
        raise ConfigError(key, f"{schema.show(text)} is not a k6-style threshold; write e.g. "
                               "'p(95)<200', 'p(99)<=500', 'avg<100', 'max<1000' (ms) or 'rate<0.01'")
    return text.strip()


LATENCY_ENTRY = schema.Table({
    "p50_ms": schema.number(0, 60_000), "p95_ms": schema.number(0, 60_000),
    "p99_ms": schema.number(0, 60_000), "requests": schema.integer(1, 10_000),
    "max_error_rate": schema.number(-1e-9, 1.0),
    "concurrency": schema.integer(1, 64, "and at most max_concurrency"),
    "warmup": schema.integer(0, 1000),
    "thresholds": schema.list_of(threshold),
    "runner": schema.one_of("in-process", "locust"),
})

# Locust's distributed mode (runner = "locust"): the master and `workers` local workers are
# started by the check; `expect_workers` above `workers` waits for workers started elsewhere
# (`prodready locust-worker --master-host ...`).
LOCUST = schema.Table({
    "workers": schema.integer(0, 64, "worker processes started here; default 2"),
    "expect_workers": schema.integer(1, 1024, "all workers the master waits for; default: workers"),
    "bind_host": schema.hostname,  # default 127.0.0.1 (locustrun.DEFAULTS)
    "bind_port": schema.integer(0, 65535, "the master's port; default 0, a free one"),
    "max_seconds": schema.integer(5, 3600, "the whole Locust run; default 300"),
})


# -- the statistics ----------------------------------------------------------------------------
def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of raw samples: exact, and always one of the samples."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def histogram(samples: Sequence[float], bins: int = HISTOGRAM_BINS) -> list[tuple[float, float, int]]:
    """Equal-width bins over [min, max]: (low, high, count)."""
    if not samples:
        return []
    low, high = min(samples), max(samples)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for sample in samples:
        counts[min(int((sample - low) / width), bins - 1)] += 1
    return [(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts)]


@dataclass(frozen=True)
class Distribution:
    """The latency evidence of one endpoint: every raw sample and what was computed from it."""

    endpoint: str
    samples_ms: tuple[float, ...]
    errors: int
    sent: int
    warmup: int
    concurrency: int
    error_statuses: tuple[str, ...] = ()
    runner: str = "in-process"

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 0.0

    def p(self, q: float) -> float:
        return percentile(self.samples_ms, q)

    def stat(self, name: str) -> float:
        if name == "avg":
            return statistics.fmean(self.samples_ms)
        if name == "med":
            return self.p(50)
        if name == "min":
            return min(self.samples_ms)
        if name == "max":
            return max(self.samples_ms)
        if name == "rate":
            return self.error_rate
        return self.p(float(name[2:-1]))

    def summary(self) -> str:
        return (f"p50 {self.p(50):.1f} ms, p95 {self.p(95):.1f} ms, p99 {self.p(99):.1f} ms, "
                f"max {max(self.samples_ms):.1f} ms; {self.errors} errors in {self.sent} requests "
                f"({self.error_rate:.1%}); concurrency {self.concurrency}, {self.warmup} warm-up "
                f"requests excluded; {self.runner}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "latency", "endpoint": self.endpoint, "runner": self.runner, "requests": self.sent,
            "warmup": self.warmup, "concurrency": self.concurrency, "errors": self.errors,
            "error_rate": self.error_rate, "error_statuses": list(self.error_statuses),
            "percentile_method": "nearest-rank on raw samples",
            "p50_ms": self.p(50), "p95_ms": self.p(95), "p99_ms": self.p(99),
            "min_ms": min(self.samples_ms), "max_ms": max(self.samples_ms),
            "mean_ms": statistics.fmean(self.samples_ms),
            "samples_ms": [round(s, 3) for s in self.samples_ms],
            "histogram": [{"from_ms": round(lo, 3), "to_ms": round(hi, 3), "count": c}
                          for lo, hi, c in histogram(self.samples_ms)],
        }

    def render(self) -> str:
        lines = [f"latency of {self.endpoint}: {self.summary()}"]
        bins = histogram(self.samples_ms)
        top = max((c for _, _, c in bins), default=1) or 1
        for lo, hi, count in bins:
            lines.append(f"  {lo:8.1f} - {hi:8.1f} ms | {'#' * round(30 * count / top):<30} {count}")
        return "\n".join(lines)


# -- perf.latency_budget -----------------------------------------------------------------------
def latency_table(settings: Settings) -> dict[str, dict[str, Any]]:
    table = settings.get("latency") or {}
    return {schema.endpoint(key, "latency"): dict(value) for key, value in table.items()}


def sample_probe(endpoint: str, seq: str | None) -> Probe:
    """One measured request; `seq` makes each a distinct probe (the Locust runner numbers
    its own requests, and gets None)."""
    method = endpoint.partition(" ")[0]
    headers = {SEQ_HEADER: seq} if seq else {}
    body = b""
    if method in ("POST", "PUT", "PATCH"):
        headers["Content-Type"] = "application/json"
        body = b"{}"
    return Probe.endpoint(endpoint, headers, body=body, expect_refusal=True)


def measure(ctx: Context, endpoint: str, requests: int, warmup: int,
            concurrency: int) -> tuple[Distribution, list[Exchange]]:
    """Warm-up requests (discarded), then `requests` at `concurrency`: the raw distribution."""
    run = secrets.token_hex(4)
    target = ctx.target
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="prodready-perf") as pool:
        list(pool.map(target.fetch, [sample_probe(endpoint, f"{run}.-{i}") for i in range(1, warmup + 1)]))
        exchanges = list(pool.map(target.fetch, [sample_probe(endpoint, f"{run}.{i}")
                                                 for i in range(1, requests + 1)]))
    refused = [ex for ex in exchanges if ex.status == 429]
    if refused:
        ctx.exchanges.append(refused[0])
    if exchanges and exchanges[0].status is None and not any(ex.status for ex in exchanges):
        ctx.exchanges.append(exchanges[0])
    not_sent = [ex for ex in exchanges if ex.status is None and ex.error.startswith("not sent")]
    if not_sent:
        raise CannotJudge(f"{len(not_sent)} of {requests} requests to {endpoint} were not sent: "
                          f"{not_sent[0].error}")
    outcomes = [(ex.elapsed_ms, ex.status, "") if ex.status is not None else (None, None, ex.error)
                for ex in exchanges]
    return distribution_of(endpoint, outcomes, warmup, concurrency), exchanges


def distribution_of(endpoint: str, outcomes: Sequence[tuple[float | None, int | None, str]],
                    warmup: int, concurrency: int, runner: str = "in-process") -> Distribution:
    """The distribution of measured requests (elapsed ms or None, status or None, error),
    whichever runner sent them; a throttled or unanswered run cannot be judged."""
    requests = len(outcomes)
    refused = sum(1 for _, status, _ in outcomes if status == 429)
    if refused:
        raise CannotJudge(f"{refused} of {requests} requests to {endpoint} were rate limited (429): "
                          "the latency of a throttled run says nothing of the budget; cannot judge. "
                          "Lower the concurrency or the number of requests, or allow-list the checker")
    samples = tuple(ms for ms, status, _ in outcomes if status is not None and ms is not None)
    if not samples:
        raise CannotJudge(f"none of the {requests} requests to {endpoint} got an answer: "
                          f"{outcomes[0][2] if outcomes else 'none sent'}")
    errors = [(status, error) for _, status, error in outcomes if status is None or status >= 400 or error]
    statuses = tuple(sorted({str(status) if status else error[:60] for status, error in errors}))
    return Distribution(endpoint, samples, len(errors), requests, warmup, concurrency, statuses, runner)


def measure_with_locust(ctx: Context, endpoint: str, requests: int, warmup: int,
                        concurrency: int) -> Distribution:
    """The same measurement on Locust's distributed mode (locustrun.py, locustfile.py)."""
    from pytest_prodready import locustrun

    samples, shape = locustrun.run(ctx.target, sample_probe(endpoint, None), endpoint, requests,
                                   warmup, concurrency, ctx.settings)
    measured = [(s.elapsed_ms, s.status, s.error) for s in samples if not s.warmup]
    return distribution_of(endpoint, measured, warmup, concurrency, runner=shape)


def _latency_subjects(settings: Settings) -> list[str]:
    return list(latency_table(settings))


@check("perf.latency_budget", title="p95 (and p99 where set) within budget, error rate within budget, "
                                    "over N bounded requests",
       severity="high", mode="active", needs=("latency",), subjects=_latency_subjects,
       remediation="Find what the slow requests wait on (database queries, upstream calls, cold "
                   "caches, too few workers) and fix it, or agree a realistic budget in [latency].")
def latency_budget(ctx: Context) -> None:
    endpoint = ctx.subject
    entry = latency_table(ctx.settings)[endpoint]
    requests = int(entry.get("requests", DEFAULT_REQUESTS))
    warmup = int(entry.get("warmup", min(DEFAULT_WARMUP, requests)))
    concurrency = min(int(entry.get("concurrency", ctx.settings.get("max_concurrency"))),
                      int(ctx.settings.get("max_concurrency")))
    left = int(ctx.target.budget.limit) - int(ctx.target.budget.spent)
    if left < requests + warmup:
        raise CannotJudge(f"measuring {endpoint} takes {requests + warmup} requests ({warmup} warm-up), "
                          f"and the run's request budget has {left} left; raise request_budget")
    if entry.get("runner") == "locust":
        dist = measure_with_locust(ctx, endpoint, requests, warmup, concurrency)
        exchanges: list[Exchange] = []
    else:
        dist, exchanges = measure(ctx, endpoint, requests, warmup, concurrency)
    ctx.add_fact(dist)
    budgets: list[tuple[str, float, float, str]] = []  # (label, measured, limit, unit)
    for key, q in (("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)):
        if key in entry:
            budgets.append((f"p{q:g}", dist.p(q), float(entry[key]), "ms"))
    if "p95_ms" not in entry and not any(t.strip().startswith("p(95)") for t in entry.get("thresholds", [])):
        budgets.append(("p95", dist.p(95), DEFAULT_P95_MS, "ms"))
    budgets.append(("error rate", dist.error_rate, float(entry.get("max_error_rate", DEFAULT_ERROR_RATE)),
                    "rate"))
    over: list[str] = []
    within: list[str] = []
    for label, measured, limit, unit in budgets:
        shown = (f"{label} {measured:.1%} (at most {limit:.1%})" if unit == "rate"
                 else f"{label} {measured:.1f} ms (budget {limit:g} ms)")
        (over if measured > limit else within).append(shown)
    for expr in entry.get("thresholds", []):
        found = THRESHOLD.fullmatch(expr)
        assert found is not None  # validated with the config
        name, op, bound = found.group(1).replace(" ", ""), found.group(3), float(found.group(4))
        value = dist.stat(name)
        ok = value <= bound if op == "<=" else value < bound
        shown = f"{expr.strip()} (measured {value:.1%})" if name == "rate" else \
            f"{expr.strip()} (measured {value:.1f} ms)"
        (within if ok else over).append(shown)
    answered = [ex for ex in exchanges if ex.status is not None]
    slowest = [max(answered, key=lambda ex: ex.elapsed_ms)] if answered else []
    errored = [ex for ex in exchanges if ex.status is None or ex.status >= 400]
    evidence = [*slowest, *errored[:2]]
    ctx.exchanges.extend(ex for ex in evidence if ex not in ctx.exchanges)
    if over:
        errors = f" (errors: {', '.join(dist.error_statuses)})" if dist.errors else ""
        ctx.fail(f"{endpoint} is over budget: {'; '.join(over)}. Measured {dist.summary()}{errors}",
                 *evidence)
    ctx.passed(f"{endpoint} within budget: {'; '.join(within)}. Measured {dist.summary()}")


# -- perf.compression --------------------------------------------------------------------------
TEXT_TYPES = re.compile(r"^(text/|application/(json|javascript|xml|xhtml\+xml|ld\+json|manifest\+json|"
                        r"problem\+json|graphql-response\+json)|image/svg\+xml)", re.IGNORECASE)
COMPRESSED = frozenset({"gzip", "br", "zstd", "deflate", "compress", "x-gzip"})
MIN_COMPRESS_BYTES = 1024


def _compression_probes(settings: Settings, _subject: str) -> list[Probe]:
    extra = [Probe.get(p) for p in settings.get("perf.compress", []) or []]
    return list(dict.fromkeys(base_probes(settings) + extra))


@check("perf.compression", title="text responses over 1 KiB are compressed when the client accepts it",
       severity="low", probes=_compression_probes,
       remediation="Enable gzip or Brotli for text types (nginx 'gzip on; gzip_types ...', "
                   "Flask-Compress, compression() in Express, GZipMiddleware in Starlette).")
def compression(ctx: Context) -> None:
    judged: list[str] = []
    plain: list[Exchange] = []
    for ex in ctx.responses():
        ctype = (ex.header("Content-Type") or "").split(";")[0].strip()
        if ex.status != 200 or not TEXT_TYPES.match(ctype) or len(ex.body) <= MIN_COMPRESS_BYTES:
            continue
        encoding = (ex.header("Content-Encoding") or "").lower()
        codings = {c.strip() for c in encoding.split(",") if c.strip()}
        judged.append(f"{ex.where} ({ctype}, {len(ex.body)} bytes, {encoding or 'identity'})")
        if not codings & COMPRESSED:
            plain.append(ex)
    if not judged:
        ctx.skip("no text response over 1 KiB among the probed pages; list larger pages in "
                 "perf.compress")
    if plain:
        shown = ", ".join(f"{ex.where} ({len(ex.body)} bytes of "
                          f"{(ex.header('Content-Type') or '').split(';')[0]})" for ex in plain[:4])
        ctx.fail(f"{len(plain)} of {len(judged)} text responses over 1 KiB were sent uncompressed although "
                 f"the request accepted gzip: {shown}", *plain)
    ctx.passed(f"{len(judged)} text responses over 1 KiB were compressed: {'; '.join(judged[:3])}")


# -- perf.static_caching -----------------------------------------------------------------------
# A content hash in a file name: app.3f9c1a7e.js, main-AB12CD34.css, chunk.5f2b9c1d8e.js.
HEX_FINGERPRINT = re.compile(r"[.\-_~]([0-9a-fA-F]{8,64})[.\-_~]")
MIN_MAX_AGE_S = 86_400  # a day, for any static asset
IMMUTABLE_MAX_AGE_S = 30 * 86_400  # fingerprinted assets: at least 30 days (usually a year) + immutable


def fingerprinted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1].split("?")[0]
    if HEX_FINGERPRINT.search(name):
        return True
    # A mixed-case/digit hash of 8+ characters (webpack's [contenthash:base64], Vite's):
    # must contain a digit and a letter, before the extension.
    for part in re.split(r"[.\-_~]", name)[1:-1]:
        if len(part) >= 8 and re.search(r"\d", part) and re.search(r"[A-Za-z]", part):
            return True
    return False


def cache_directives(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        key, _, arg = part.strip().partition("=")
        if key:
            out.setdefault(key.strip().lower(), arg.strip().strip('"'))
    return out


def caching_problems(ex: Exchange, path: str) -> list[str]:
    if ex.status != 200:
        return [f"answered {ex.status}, not the asset"]
    problems = []
    # Several Cache-Control fields combine into one list (RFC 9110 5.3): nginx's `expires`
    # and an `add_header Cache-Control` make two.
    header = ", ".join(ex.header_all("Cache-Control")) or None
    directives = cache_directives(header or "")
    ages = [directives[k] for k in ("s-maxage", "max-age") if k in directives]
    age = max((int(a) for a in ages if a.isdigit()), default=None)
    if header is None:
        problems.append("no Cache-Control")
    elif "no-store" in directives or "no-cache" in directives or "private" in directives:
        which = [d for d in ("no-store", "no-cache", "private") if d in directives]
        problems.append(f"Cache-Control {header!r} forbids shared caching ({', '.join(which)})")
    elif age is None:
        problems.append(f"Cache-Control {header!r} has no max-age")
    if fingerprinted(path):
        if age is not None and age < IMMUTABLE_MAX_AGE_S:
            problems.append(f"max-age={age} is short for a fingerprinted name (at least "
                            f"{IMMUTABLE_MAX_AGE_S} s; usually 31536000)")
        if header is not None and "immutable" not in directives:
            problems.append("a fingerprinted name without 'immutable'")
    elif age is not None and age < MIN_MAX_AGE_S:
        problems.append(f"max-age={age} is shorter than a day")
    if ex.header("ETag") is None and ex.header("Last-Modified") is None:
        problems.append("no validator (ETag or Last-Modified)")
    return problems


def _static_paths(settings: Settings) -> list[str]:
    return list(settings.get("perf.static", []) or [])


@check("perf.static_caching", title="configured static assets carry long-lived Cache-Control",
       severity="low", needs=("perf.static",), probes=lambda s, _: [Probe.get(p) for p in _static_paths(s)],
       remediation="Serve fingerprinted assets with 'Cache-Control: public, max-age=31536000, immutable' "
                   "and others with a max-age of a day or more, with ETag or Last-Modified.")
def static_caching(ctx: Context) -> None:
    bad: list[tuple[str, list[str], Exchange]] = []
    good: list[str] = []
    for path in _static_paths(ctx.settings):
        ex = ctx.fetch(Probe.get(path))
        problems = caching_problems(ex, path)
        if problems:
            bad.append((path, problems, ex))
        else:
            good.append(f"{path} ({ex.header('Cache-Control')})")
    if bad:
        text = "; ".join(f"{path}: {', '.join(problems)}" for path, problems, _ in bad)
        ctx.fail(f"{len(bad)} of {len(bad) + len(good)} static assets are not cached for long: {text}",
                 *[ex for _, _, ex in bad])
    ctx.passed(f"{len(good)} static assets carry long-lived caching: {'; '.join(good[:3])}")


# -- the family ---------------------------------------------------------------------------------
def _locust_problems(settings: Settings, key: str, concurrency: int) -> list[tuple[str, str]]:
    locust = settings.get("perf.locust") or {}
    workers = int(locust.get("workers", 2))
    expected = int(locust.get("expect_workers", workers))
    problems = []
    if expected < workers:
        problems.append(("perf.locust.expect_workers",
                         f"{expected} is below workers ({workers}): the workers started here all connect"))
    if expected > workers and not locust.get("bind_port"):
        problems.append(("perf.locust.bind_port",
                         f"expect_workers ({expected}) waits for workers started elsewhere, which need "
                         "to know the master's port: set bind_port (e.g. 5557) and bind_host"))
    if concurrency < expected:
        # Locust spreads users over workers: a worker with no user would never send its share.
        problems.append((f'latency."{key}".concurrency',
                         f"{concurrency} is below the {expected} Locust workers; every worker needs "
                         "at least one user: raise concurrency (and max_concurrency) or use fewer workers"))
    return problems


def _validate(settings: Settings) -> None:
    problems: list[tuple[str, str]] = []
    limit = int(settings.get("max_concurrency") or 1)
    for key, entry in (settings.get("latency") or {}).items():
        concurrency = entry.get("concurrency")
        if concurrency is not None and concurrency > limit:
            problems.append((f'latency."{key}".concurrency',
                             f"{concurrency} is above max_concurrency ({limit}); lower it or raise "
                             "max_concurrency"))
        if entry.get("runner") == "locust":
            problems.extend(_locust_problems(settings, key, int(concurrency or limit)))
    if problems:
        raise schema.config_error(problems)


FAMILY = Family(
    name="perf",
    config={
        "latency": schema.MapOf(LATENCY_ENTRY, key_check=schema._endpoint_key),
        "perf": schema.Table({"compress": schema.list_of(schema.path),
                              "static": schema.list_of(schema.path), "locust": LOCUST}),
    },
    validate=_validate,
)
