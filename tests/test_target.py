"""The library's entry points take config keys the way a config file does: Target.from_url
and run_check's overrides are checked and normalised by the schema (a bare path is a GET,
a bad value is a ConfigError naming the key), so a script gets what pytest --prodready
would do with the same keys."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pytest_prodready.checking import run_check
from pytest_prodready.exceptions import ConfigError
from pytest_prodready.target import Target
from tests.checks.test_errors import DEBUG_HITS, SEARCH, framework  # noqa: F401 (fixture)


def test_from_url_normalises_like_a_config_file_and_the_check_finds_the_debug_page(
        framework: Callable[[str, bool], str]) -> None:  # noqa: F811
    """A bare path in errors.pages is 'GET /search' (it was sent as 'GET ?page[]=...')."""
    with Target.from_url(framework("flask", True), errors={"pages": [SEARCH.partition(" ")[2]]}) as target:
        assert target.settings.get("errors.pages") == [SEARCH]
        result = run_check("errors.no_stack_traces", target)
    assert result.outcome == "failed", result.message
    assert DEBUG_HITS["flask"][1] in result.message


@pytest.mark.parametrize(("values", "named"), [
    ({"timeout_s": -1}, "timeout_s: -1 is out of range"),
    ({"protected": ["api/agents"]}, "protected"),
    ({"max_concurrenccy": 4}, "did you mean 'max_concurrency'?"),
])
def test_a_bad_value_is_a_config_error_naming_the_key(values: dict[str, object], named: str) -> None:
    pattern = re.escape(named)
    with pytest.raises(ConfigError, match=pattern):
        Target.from_url("http://127.0.0.1:9", **values)
    with Target.from_url("http://127.0.0.1:9") as target, pytest.raises(ConfigError, match=pattern):
        run_check("auth.required", target, "GET /api/agents", **values)
