"""pytest-prodready: production-readiness assertions against a live URL, as pytest tests.

PYTEST_DONT_REWRITE: the plugin relies on no assert rewriting, and the `prodready` console
script imports this package before pytest starts, which would otherwise warn.
"""

from __future__ import annotations

__version__ = "0.1.0"
