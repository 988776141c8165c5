"""The `prodready` console script: `demo`, `check URL`, and `catalogue`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

# Options every CLI run passes to pytest (the plugin itself loads by its entry point).
BASE_ARGS = ["-p", "no:cacheprovider", "--prodready",
             "-q", "-rN", "--no-header", "--color=auto"]


def _run_pytest(workdir: Path, extra: list[str]) -> int:
    import pytest

    # An empty rootdir: no user's tests, conftest or pytest config gets mixed in.
    ini = workdir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n", encoding="utf-8")
    previous = os.getcwd()
    os.chdir(workdir)
    try:
        return int(pytest.main([*BASE_ARGS, "--rootdir", str(workdir), "-c", str(ini), *extra]))
    finally:
        os.chdir(previous)


def cmd_demo(args: argparse.Namespace) -> int:
    from pytest_prodready.demo.service import DemoServer

    with tempfile.TemporaryDirectory(prefix="prodready-demo-") as tmp, DemoServer(Path(tmp)) as server:
        workdir = Path(tmp)
        server.write_config()
        os.environ.update(server.env)  # the secrets reach the run by env var, never in the file
        print(f"prodready demo: a half-ready demo API is running on {server.url} (plain HTTP on "
              f"{server.http_url}), with a throwaway CA minted for this run")
        print("prodready demo: running the passive suite against it (the config is below)\n")
        print(server.config())
        extra = [f"--prodready-report={r}" for r in args.report]
        code = _run_pytest(workdir, extra)
        print("\nprodready demo: done. Failures above are the demo's planted defects, with the "
              "evidence and the fix for each.")
        # The demo succeeded if it produced a verdict; the verdict itself is NOT READY by design.
        return 0 if code in (0, 1) else code


def cmd_check(args: argparse.Namespace) -> int:
    url = args.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        print(f"prodready check: {url!r} is not an http(s) URL; e.g. "
              "prodready check https://staging.example.com/api/agents", file=sys.stderr)
        return 4
    base = f"{parts.scheme}://{parts.netloc}"
    page = parts.path or "/"
    with tempfile.TemporaryDirectory(prefix="prodready-check-") as tmp:
        workdir = Path(tmp)
        config = [f'base_url = "{base}"', f'page = "{page}"']
        if page != "/":
            config.append(f'cors_paths = ["{page}"]')
        (workdir / "prodready.toml").write_text("\n".join(config) + "\n", encoding="utf-8")
        extra = [f"--prodready-report={r}" for r in args.report]
        if args.only:
            extra.append(f"--prodready-only={args.only}")
        if args.fail_on:
            extra.append(f"--prodready-fail-on={args.fail_on}")
        return _run_pytest(workdir, extra)


def cmd_catalogue(_args: argparse.Namespace) -> int:
    from pytest_prodready.catalogue import markdown_catalogue

    print(markdown_catalogue())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prodready", description="Production-readiness checks.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the suite against an embedded, half-ready demo service")
    demo.add_argument("--report", action="append", default=[], help="also write a .json/.md/.html report")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check", help="run the passive suite against one URL, no config needed")
    check.add_argument("url")
    check.add_argument("--only", help="categories, e.g. 'cors,headers'")
    check.add_argument("--fail-on", choices=("critical", "high", "medium", "low"))
    check.add_argument("--report", action="append", default=[])
    check.set_defaults(func=cmd_check)
    cat = sub.add_parser("catalogue", help="print the check catalogue (Markdown)")
    cat.set_defaults(func=cmd_catalogue)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
