"""The docs site: generated references up to date and complete, `mkdocs build --strict` clean,
and the live progress line a terminal sees while probes prefetch (and nobody else sees)."""

from __future__ import annotations

import inspect
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_prodready import assertions, config, schema
from pytest_prodready.progress import PREFIX, ProgressLine, host_label
from pytest_prodready.registry import all_checks

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = ("reference/config.md", "reference/helpers.md", "catalogue.md")


# -- the generated pages --------------------------------------------------------------------
@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT, timeout=60)
    return out


@pytest.mark.parametrize("page", GENERATED)
def test_generated_pages_are_up_to_date(regenerated: Path, page: str) -> None:
    fresh = (regenerated / page).read_text(encoding="utf-8")
    committed = (DOCS / page).read_text(encoding="utf-8")
    assert committed == fresh, f"docs/{page} is stale: run python scripts/gen_docs.py"


def test_the_catalogue_page_is_what_the_cli_prints(regenerated: Path) -> None:
    printed = subprocess.run([sys.executable, "-m", "pytest_prodready.cli", "catalogue"],
                             check=True, capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert (regenerated / "catalogue.md").read_text(encoding="utf-8") == printed


def test_every_check_id_is_in_the_catalogue(regenerated: Path) -> None:
    page = (regenerated / "catalogue.md").read_text(encoding="utf-8")
    # each row opens with the check's anchor (what reports link to), then its id
    missing = [cid for cid in all_checks() if f'| <a id="{cid}"></a>`{cid}` |' not in page]
    assert not missing and all_checks()


def _keys(spec: Any, key: str) -> Iterator[str]:
    """Every key path of the schema, written as the reference writes it (independent walk)."""
    if isinstance(spec, schema.Table):
        for name, sub in spec.fields.items():
            yield from _keys(sub, f"{key}.{name}" if key else name)
    elif isinstance(spec, schema.TableOf):
        yield from _keys(spec.item, f"{key}.NAME")
    elif isinstance(spec, schema.ArrayOf):
        yield key
        yield from _keys(spec.item, f"{key}[]")
    elif isinstance(spec, schema.MapOf) and isinstance(spec.value, schema.Table):
        yield key
        yield from _keys(spec.value, f'{key}."KEY"')
    else:
        yield key


def test_every_config_key_is_in_the_reference_with_its_default(regenerated: Path) -> None:
    page = (regenerated / "reference" / "config.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", page, re.M)}
    keys = [k for name, spec in schema.root().fields.items() if name != "env" for k in _keys(spec, name)]
    assert len(keys) > 100
    missing = [k for k in keys if k.replace("|", "\\|") not in rows]
    assert not missing, f"config keys missing from the reference: {missing}"
    assert "## `env`" in page  # profiles
    for key, value in config.defaults().items():
        shown = str(value).lower() if isinstance(value, bool) else (
            repr(value) if isinstance(value, (int, float)) else f'"{value}"')
        assert f"| `{shown}` |" in rows[key], (key, rows[key])


def test_every_example_in_the_config_reference_is_accepted(regenerated: Path) -> None:
    page = (regenerated / "reference" / "config.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", page, re.S)
    assert len(blocks) == len(schema.root().fields)
    for block in blocks:
        schema.validate_table(tomllib.loads(block))  # raises ConfigError, naming the key


def test_every_public_helper_is_in_the_reference(regenerated: Path) -> None:
    page = (regenerated / "reference" / "helpers.md").read_text(encoding="utf-8")
    helpers = [name for name, obj in vars(assertions).items() if inspect.isfunction(obj)
               and not name.startswith("_") and obj.__module__ == assertions.__name__]
    assert len(helpers) > 30
    missing = [name for name in helpers if f"## `{name}`" not in page]
    assert not missing, f"helpers missing from the reference: {missing}"
    for name in helpers:  # its signature, as Python would show it
        assert f"{name}(target" in page


# Every hand-written page: its TOML is prodready config the schema accepts, its Python
# compiles and calls only helpers that exist (the generated helper reference shows
# signatures, not code).
HAND_WRITTEN = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")
                      if p.relative_to(DOCS).as_posix() not in GENERATED)


def prodready_table(block: str) -> dict[str, Any] | None:
    """A TOML block as the prodready table it configures; None for packaging snippets
    (a pyproject's [project] or [build-system] tables, e.g. a family's entry point)."""
    table = tomllib.loads(block)
    if "tool" in table:
        return dict(table["tool"].get("prodready", {}))
    return None if {"project", "build-system"} & set(table) else table


@pytest.mark.parametrize("page_name", HAND_WRITTEN)
def test_every_page_config_and_code_are_valid(page_name: str) -> None:
    page = (DOCS / page_name).read_text(encoding="utf-8")
    for block in re.findall(r"```toml\n(.*?)```", page, re.S):
        table = prodready_table(block)
        if table is not None:
            schema.validate_table(table)  # raises ConfigError, naming the key
    for block in re.findall(r"```python\n(.*?)```", page, re.S):
        compile(block, f"docs/{page_name}", "exec")
        for name in re.findall(r"\b(assert_[a-z0-9_]+)\(", block):
            assert hasattr(assertions, name), name


def test_the_quick_start_has_config_and_code() -> None:
    page = (DOCS / "index.md").read_text(encoding="utf-8")
    assert re.search(r"```toml\n", page) and re.search(r"```python\n", page)


def test_every_check_has_a_how_to() -> None:
    """One how-to per checklist scenario: every check id is explained on a how-to page."""
    how_tos = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("howto-*.md"))
    missing = [cid for cid in all_checks() if f"`{cid}`" not in how_tos]
    assert not missing, f"checks no how-to explains: {missing}"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in ("index.html", "catalogue/index.html", "reference/config/index.html",
                 "reference/helpers/index.html", "howto-tls/index.html"):
        assert (site / page).is_file(), page
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for md in [*DOCS.glob("*.md"), *DOCS.glob("decisions/*.md"), *DOCS.glob("reference/*.md")]:
        assert md.relative_to(DOCS).as_posix() in nav, f"{md} is not in mkdocs.yml's nav"


# -- the progress line ----------------------------------------------------------------------
class _Slow(BaseHTTPRequestHandler):
    """A plain site that answers every request after a short pause: the prefetch takes long
    enough for the progress line to be redrawn several times."""

    def _answer(self) -> None:
        time.sleep(0.03)
        body = b"<!doctype html><title>ok</title>" if self.path == "/" else b"not found"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def slow_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    folder = tmp_path_factory.mktemp("progress")
    (folder / "prodready.toml").write_text(
        f'base_url = "http://127.0.0.1:{server.server_address[1]}"\nmax_concurrency = 1\n', encoding="utf-8")
    yield folder
    server.shutdown()
    server.server_close()


def _run_in_pty(folder: Path, *args: str, env: dict[str, str] | None = None) -> bytes:
    """pytest --prodready in `folder` with a pseudo-terminal as stdout; the raw bytes it wrote."""
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS",
                                                              "PRODREADY_URL", "PRODREADY_CONFIG")}
    base.update({"COLUMNS": "120", "LINES": "50", "TERM": "xterm"}, **(env or {}))
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--prodready", "-p", "no:cacheprovider",
                             "--prodready-only", "headers,cors", *args],
                            stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary, cwd=folder,
                            env=base, start_new_session=True)
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(primary)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    assert re.search(rb"\d+ (passed|failed)", out), out.decode(errors="replace")
    return out


def test_the_progress_line_is_drawn_in_place_and_erased_before_the_first_item(slow_site: Path) -> None:
    out = _run_in_pty(slow_site)
    drawn = rb"\r\x1b\[K" + re.escape(PREFIX.encode()) + rb" (\d+)/(\d+) \(127\.0\.0\.1:\d+\)"
    draws = re.findall(drawn, out)
    assert len(draws) >= 3, out.decode(errors="replace")
    done = [int(d) for d, _ in draws]
    totals = {int(t) for _, t in draws}
    assert len(totals) == 1 and done == sorted(done) and done[0] == 0 and done[-1] == totals.pop()
    # erased right after the last draw, before any test outcome is written
    last = out.rfind(PREFIX.encode())
    after = out[last:]
    assert re.match(rb"[^\r\n]*\r\x1b\[K\r?\n", after), after[:200]
    assert b"prodready" in after.split(b"\x1b[K", 1)[1]  # the first item's line follows
    assert out.index(b"collected") < out.index(PREFIX.encode())
    assert b"\n" not in out[out.index(PREFIX.encode()):last]  # one line, never scrolled


def test_nothing_of_the_line_is_left_on_the_screen(slow_site: Path, tmp_path: Path) -> None:
    """What a person sees at the end (tmux's rendered screen): no progress line left over."""
    assert shutil.which("tmux"), "tmux is missing: run scripts/install-test-deps.sh"
    socket = str(tmp_path / "tmux.sock")
    done_flag = tmp_path / "done"
    command = (f"cd {slow_site} && env -u CI {sys.executable} -m pytest --prodready -p no:cacheprovider "
               f"--prodready-only headers,cors; touch {done_flag}; sleep 30")
    subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-x", "150", "-y", "60", command], check=True)
    try:
        deadline = time.monotonic() + 60
        while not done_flag.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done_flag.exists()
        screen = subprocess.run(["tmux", "-S", socket, "capture-pane", "-p", "-S", "-200"],
                                check=True, capture_output=True, text=True).stdout
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], check=False)
    assert "collected" in screen and "prodready" in screen, screen
    assert PREFIX not in screen, screen


@pytest.mark.parametrize(("args", "env"), [((), {"CI": "true"}), (("-q",), {})], ids=["CI=true", "-q"])
def test_no_progress_line_in_ci_or_under_q(slow_site: Path, args: tuple[str, ...],
                                           env: dict[str, str]) -> None:
    out = _run_in_pty(slow_site, *args, env=env)
    assert PREFIX.encode() not in out


def test_no_progress_line_when_stdout_is_not_a_terminal(slow_site: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    done = subprocess.run([sys.executable, "-m", "pytest", "--prodready", "-p", "no:cacheprovider",
                           "--prodready-only", "headers"], capture_output=True, cwd=slow_site, env=env,
                          timeout=60)
    assert b"collected" in done.stdout and PREFIX.encode() not in done.stdout + done.stderr


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, content: str, *, flush: bool = False, **markup: bool) -> None:
        self.writes.append(content)


def test_redraws_are_throttled_but_the_last_is_always_drawn() -> None:
    now = [0.0]
    out = _Recorder()
    line = ProgressLine(out, ["a.example", "b.example:8443", "b.example:8443"], clock=lambda: now[0])
    line.start()
    line(1, 3)
    line(2, 3)  # within 100 ms of the last redraw: skipped
    now[0] = 1.0
    line(3, 3)
    line.clear()
    line.clear()  # once only
    assert out.writes == ["\r\x1b[Kprodready: probing 0/3 (a.example)",
                          "\r\x1b[Kprodready: probing 1/3 (b.example:8443)",
                          "\r\x1b[Kprodready: probing 3/3 (b.example:8443)", "\r\x1b[K"]


def test_host_label_never_shows_userinfo_or_path() -> None:
    assert host_label("https://user:pw@api.example.com:8443/x?token=1") == "api.example.com:8443"
    assert host_label("http://[::1]:8080/") == "[::1]:8080"
    assert host_label("https://api.example.com/") == "api.example.com"
