"""Serving real targets cheaply: one server per defect set per module, and one-off Flask apps.

Starting a Werkzeug server is fast, but stopping one waits for its poll loop (up to 0.5 s),
so a module that reuses one server per defect set stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace

from pytest_prodready.target import Target
from tests.targets.webapp import Served, serve


@contextmanager
def served_pool() -> Iterator[Callable[..., Served]]:
    """A getter: get('spa', 'env_served') serves the webapp with those defects, once per set."""
    servers: dict[frozenset[str], Served] = {}
    with ExitStack() as stack:

        def get(*defects: str) -> Served:
            key = frozenset(defects)
            if key not in servers:
                servers[key] = stack.enter_context(serve(sorted(key)))
            return servers[key]

        yield get


def without_secrets(target: Target, *keys: str) -> Target:
    """A new Target like `target`, as if the env vars behind `keys` were not configured.

    The caller closes it (use it as a context manager).
    """
    secrets = {k: v for k, v in target.settings.secrets.items() if k not in keys}
    return Target(replace(target.settings, secrets=secrets))
