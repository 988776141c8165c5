"""pytest-prodready: production-readiness assertions against a live URL, as pytest tests.

The library works without pytest: `Target.from_url(...)`, `run_check("cors.unknown_origin_rejected",
target)`, the webhook signer. Names are imported on first use (PEP 562), so the pytest entry
point, which imports this package in every pytest run, stays cheap.

PYTEST_DONT_REWRITE: the plugin relies on no assert rewriting, and the `prodready` console
script imports this package before pytest starts, which would otherwise warn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Target": "pytest_prodready.target",
    "Probe": "pytest_prodready.target",
    "Exchange": "pytest_prodready.evidence",
    "Masker": "pytest_prodready.masking",
    "Result": "pytest_prodready.checking",
    "Context": "pytest_prodready.checking",
    "run_check": "pytest_prodready.checking",
    "check": "pytest_prodready.checking",
    "CheckSpec": "pytest_prodready.checking",
    "Family": "pytest_prodready.family",
    "all_checks": "pytest_prodready.registry",
    "sign": "pytest_prodready.signing",
    "CheckFailure": "pytest_prodready.exceptions",
    "CannotJudge": "pytest_prodready.exceptions",
    "ConfigError": "pytest_prodready.exceptions",
}

__all__ = [
    "CannotJudge", "CheckFailure", "CheckSpec", "ConfigError", "Context", "Exchange", "Family", "Masker",
    "Probe", "Result", "Target", "__version__", "all_checks", "check", "run_check", "sign",
]

if TYPE_CHECKING:  # pragma: no cover
    from pytest_prodready.checking import CheckSpec, Context, Result, check, run_check
    from pytest_prodready.evidence import Exchange
    from pytest_prodready.exceptions import CannotJudge, CheckFailure, ConfigError
    from pytest_prodready.family import Family
    from pytest_prodready.masking import Masker
    from pytest_prodready.registry import all_checks
    from pytest_prodready.signing import sign
    from pytest_prodready.target import Probe, Target


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_prodready' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
