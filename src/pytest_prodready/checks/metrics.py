"""metrics.prometheus_valid: the metrics endpoint parses as Prometheus text with request metrics."""

from __future__ import annotations

import re

from pytest_prodready import schema
from pytest_prodready.checking import Context, check
from pytest_prodready.config import Settings
from pytest_prodready.family import Family
from pytest_prodready.target import Probe

REQUEST_METRIC = re.compile(r"(http|request|grpc_server_handled|grpc_server_handling)", re.IGNORECASE)


def metrics_probe(settings: Settings) -> Probe:
    credential = "metrics.token_env" if settings.secret("metrics.token_env") else None
    return Probe.get(str(settings.get("metrics.path")), credential=credential)


@check("metrics.prometheus_valid", title="metrics parse as Prometheus text and include request metrics",
       severity="medium", needs=("metrics.path",), probes=lambda s, _: [metrics_probe(s)],
       remediation="Expose Prometheus text format (e.g. prometheus_client) with HTTP request "
                   "counters and latency histograms.")
def prometheus_valid(ctx: Context) -> None:
    # Imported here: the parser is only needed when this check runs.
    from prometheus_client.parser import text_string_to_metric_families

    ex = ctx.fetch(metrics_probe(ctx.settings))
    path = ctx.settings.get("metrics.path")
    if ex.status in (401, 403) and not ctx.settings.secret("metrics.token_env"):
        ctx.skip(f"{path} is protected ({ex.status}); set metrics.token_env to check its content")
    if ex.status != 200:
        ctx.fail(f"{path} answered {ex.status}, expected 200", ex)
    try:
        families = list(text_string_to_metric_families(ex.text))
    except (ValueError, TypeError, IndexError) as exc:
        ctx.fail(f"{path} is not valid Prometheus text: {exc}", ex)
    if not families:
        ctx.fail(f"{path} has no metrics", ex)
    requests = sorted({f.name for f in families if REQUEST_METRIC.search(f.name)})
    if not requests:
        names = ", ".join(sorted(f.name for f in families)[:8])
        ctx.fail(f"{path} has {len(families)} metric families but no request metrics "
                 f"(e.g. http_requests_total); saw: {names}", ex)
    ctx.passed(f"{len(families)} metric families, request metrics: {', '.join(requests[:3])}")


FAMILY = Family(
    name="metrics",
    config={"metrics": schema.Table({"path": schema.path, "token_env": schema.env_name})},
)
