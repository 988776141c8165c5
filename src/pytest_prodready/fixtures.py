"""The plugin's fixtures, layered so a conftest can override any layer:
prodready_settings -> prodready_target (built from whatever settings the run uses).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_prodready.stash import RUNTIME

if TYPE_CHECKING:
    from pytest_prodready.config import Settings
    from pytest_prodready.runtime import Runtime
    from pytest_prodready.target import Target


def _runtime(request: pytest.FixtureRequest) -> Runtime:
    if RUNTIME not in request.config.stash:
        pytest.skip("live check: run with --prodready")
    return request.config.stash[RUNTIME]


@pytest.fixture(scope="session")
def prodready_settings(request: pytest.FixtureRequest) -> Settings:
    """The validated settings of this run (base URL, config values, no secret values shown)."""
    return _runtime(request).settings


@pytest.fixture(scope="session")
def prodready_target(request: pytest.FixtureRequest, prodready_settings: Settings) -> Target:
    """The target: base URL plus the safe client (timeouts, allowlist, budget, masking).

    Built from `prodready_settings`, so a conftest that overrides the settings fixture gets
    a target for its settings (sharing nothing with the run's own target).
    """
    runtime = _runtime(request)
    if prodready_settings is runtime.settings:
        return runtime.target()
    from pytest_prodready.target import Target

    target = Target(prodready_settings, share=runtime.share)
    request.addfinalizer(target.close)
    return target
