"""Repo-level test wiring: real local targets and ready-made settings for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from tests.targets.webapp import ALLOWED_ORIGIN, METRICS_TOKEN, VALID_TOKEN, Served, serve

from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.target import Target

pytest_plugins = ["pytester"]

# The config a team would write for tests.targets.webapp (secrets come from these env vars).
TOKEN_ENV = "PRODREADY_TEST_TOKEN"
METRICS_TOKEN_ENV = "PRODREADY_TEST_METRICS_TOKEN"


def webapp_values(url: str) -> dict[str, Any]:
    return {
        **DEFAULTS,
        "base_url": url,
        "allowed_origins": [ALLOWED_ORIGIN],
        "protected": ["GET /api/agents", "POST /api/chat"],
        "health": ["/api/health"],
        "auth": {"token_env": TOKEN_ENV},
        "metrics": {"path": "/metrics", "token_env": METRICS_TOKEN_ENV},
        "errors": {"json_endpoints": ["POST /api/chat"]},
    }


def webapp_toml(url: str, extra: str = "") -> str:
    """The same config as a prodready.toml, for pytester runs."""
    return f"""
base_url = "{url}"
allowed_origins = ["{ALLOWED_ORIGIN}"]
protected = ["/api/agents", "POST /api/chat"]
health = ["/api/health"]

[auth]
token_env = "{TOKEN_ENV}"

[metrics]
path = "/metrics"
token_env = "{METRICS_TOKEN_ENV}"

[errors]
json_endpoints = ["POST /api/chat"]
{extra}
"""


def make_target(url: str, **values: Any) -> Target:
    """A Target for the webapp at `url`, with its secrets, and any settings overridden."""
    settings = Settings(values={**webapp_values(url), **values},
                        secrets={"auth.token_env": VALID_TOKEN, "metrics.token_env": METRICS_TOKEN},
                        sources={})
    return Target(settings)


@pytest.fixture(scope="session")
def good_app() -> Iterator[Served]:
    """The well-configured webapp, shared by the session (read-only: do not inspect its log)."""
    with serve() as served:
        yield served


@pytest.fixture
def webapp() -> Iterator[Callable[..., Served]]:
    """Factory: webapp('cors_reflect', 'env_served', delay_ms=0) serves one with those defects."""
    with ExitStack() as stack:
        yield lambda *defects, delay_ms=0: stack.enter_context(serve(defects, delay_ms))


@pytest.fixture
def target_for() -> Iterator[Callable[..., Target]]:
    """Factory: target_for(served_or_url, **settings) -> a Target, closed after the test."""
    made: list[Target] = []

    def factory(served: Served | str, **values: Any) -> Target:
        url = served if isinstance(served, str) else served.url
        target = make_target(url, **values)
        made.append(target)
        return target

    yield factory
    for target in made:
        target.close()


@pytest.fixture
def webapp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env vars the webapp's config names, set to its real tokens."""
    monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
    monkeypatch.setenv(METRICS_TOKEN_ENV, METRICS_TOKEN)
