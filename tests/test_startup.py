"""Having the plugin installed costs almost nothing until --prodready is given."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("cryptography", "jwt", "dns", "prometheus_client", "pytest_prodready.checks",
         "pytest_prodready.report.render", "requests")


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """The pytest11 entry point module imports no check family, crypto or HTTP stack."""
    code = ("import sys, pytest_prodready.plugin; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_without_prodready_imports_nothing_heavy(pytester) -> None:  # type: ignore[no-untyped-def]
    """A plain unit-test run in a project with the plugin installed stays cheap."""
    pytester.makepyfile(test_plain=f"""
        import sys
        def test_nothing_heavy_loaded():
            assert [m for m in {HEAVY!r} if m in sys.modules] == []
    """)
    result = pytester.runpytest_subprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_public_api_is_importable_from_the_package() -> None:
    """`from pytest_prodready import run_check` works as the docs say, and each name of
    __all__ resolves (lazily: importing the package alone stays cheap)."""
    import pytest_prodready

    assert set(pytest_prodready.__all__) == {*pytest_prodready._EXPORTS, "__version__"}
    for name in pytest_prodready.__all__:
        assert getattr(pytest_prodready, name) is not None
    code = ("import sys, pytest_prodready; from pytest_prodready import run_check; "
            "print(callable(run_check))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
