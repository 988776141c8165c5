"""How long `pytest --prodready` takes to give its one run-level message against a target
that is effectively down (issue 8 item 10), whole process, start-up included.

Run: python benchmarks/bench_down_targets.py   (from the repo root, in the test venv)
Each behaviour is served on 127.0.0.1 by tests/targets/downtargets.py; timeout_s = 10, 40
protected endpoints, max_concurrency 8. Prints one JSON line per behaviour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.targets import downtargets as dt  # noqa: E402

CASES = {
    "all_503": lambda: dt.serve_raw(dt.answer_503),
    "reset": lambda: dt.serve_raw(dt.reset),
    "accept_and_hang": lambda: dt.serve_raw(dt.hang),
    "ssh_banner": lambda: dt.serve_raw(dt.ssh_banner),
    "http_to_tls_port": dt.serve_https_page,
    "https_to_plain_port": lambda: dt.serve_raw(dt.plain_http, scheme="https"),
}


def main() -> None:
    results = []
    for name, serve in CASES.items():
        with serve() as raw, tempfile.TemporaryDirectory() as tmp:
            scheme = "http" if name == "http_to_tls_port" else raw.scheme
            protected = [f"/api/r{i}" for i in range(40)]
            Path(tmp, "prodready.toml").write_text(
                f'base_url = "{scheme}://127.0.0.1:{raw.port}"\ntimeout_s = 10\n'
                f"protected = {json.dumps(protected)}\n", encoding="utf-8")
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pytest", "--prodready", "-p", "no:cacheprovider",
                                   "-q", "-p", "no:randomly"], cwd=tmp, capture_output=True, text=True,
                                  timeout=300, env={**os.environ, "PYTHONPATH": ""})
            seconds = time.monotonic() - start
            message = next((line for line in done.stdout.splitlines() if "target " in line), "")
            results.append({"behaviour": name, "seconds": round(seconds, 2), "exit": done.returncode,
                            "message": message.strip("! ")[:160]})
            print(json.dumps(results[-1]))


if __name__ == "__main__":
    main()
