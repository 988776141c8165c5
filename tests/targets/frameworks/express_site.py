"""Express (from npm, installed into ./express) run by node in a subprocess.

NODE_ENV=development gives finalhandler's development page (err.stack as HTML);
NODE_ENV=production only the status message. `npm install` runs once if node_modules is
missing (scripts/install-test-deps.sh installs node and npm where they are missing).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.targets.frameworks import HERE, serve_process

APP_DIR = HERE / "express"


def ensure_installed() -> None:
    """Install Express from package.json/package-lock.json unless node_modules is there."""
    from tests.targets.frameworks import npm_installed

    npm_installed(APP_DIR, "express")


@contextmanager
def serve(node_env: str) -> Iterator[str]:
    ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is missing: run scripts/install-test-deps.sh (installs node and npm)")
    with serve_process([node, "app.js"], env={"NODE_ENV": node_env}, cwd=APP_DIR) as url:
        yield url
