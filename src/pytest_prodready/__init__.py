"""pytest-prodready: production-readiness assertions against a live URL, as pytest tests."""

from __future__ import annotations

__version__ = "0.1.0"
