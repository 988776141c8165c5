"""The run's keys in pytest's `config.stash` (session state never lives in module globals)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_prodready.runtime import Runtime

RUNTIME: pytest.StashKey[Runtime] = pytest.StashKey()
RUN_FOLDER = pytest.StashKey[Path]()
SUITE_NAME = "prodready"
