"""The `prodready` console script: `check URL`, `demo` and `catalogue`.

`check` and `demo` run pytest in this process with the plugin, in a temporary and empty
rootdir (no user's tests, conftest or pytest config mix in), but from the user's own
working directory: a relative `--report` or `--junitxml` lands where the command was typed.

What the user typed reaches the run as data, never as TOML built by string interpolation:
the URL's origin as `--prodready-url`, the rest in a prodready.toml written by `toml_dumps`
(every string escaped, and the file read back and compared with what was meant), and the
values of `--header` only through environment variables that the file names (`*_env`), so
no secret is ever written to disk.

By default the run is quiet (no per-failure evidence): a person reads the verdict, the
grade and the blockers with their fixes first. `-v` shows pytest's full output with the
evidence of every failure; the reports (`--report`) always keep everything.

Exit codes: 0 ready, 1 not ready, 2 usage or config error, 3 target unreachable,
4 internal error (a bug in prodready), 130 interrupted (Ctrl-C). See docs/cli.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest

from pytest_prodready import __version__

if TYPE_CHECKING:  # the CLI imports the plugin's modules only when it runs a command
    from pytest_prodready.exceptions import TargetUnreachable

EXIT_READY = 0
EXIT_NOT_READY = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

# Options every run passes to pytest (the plugin itself loads by its entry point).
BASE_ARGS = ["-p", "no:cacheprovider", "--prodready", "--prodready-suite", "-rN", "--no-header",
             "--color=auto"]
QUIET_ARGS = ["-qq", "--tb=no"]  # progress dots and the scorecard; no evidence dumps
VERBOSE_ARGS = ["-v"]  # every check by name, and each failure's evidence

# pytest-run settings of the plugin that `check` and `demo` do not take from the
# environment: their own command line says everything (a PRODREADY_ENV exported for
# `pytest --prodready` would otherwise pick a profile the temporary config does not have).
IGNORED_ENV = ("PRODREADY_URL", "PRODREADY_CONFIG", "PRODREADY_ENV", "PRODREADY_FAIL_ON")
# Where a CA bundle comes from when --ca-bundle is not given (and the config names none).
CA_ENV = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
HEADER_ENV = "PRODREADY_CHECK_HEADER_{}"  # the env var that carries the value of --header #i
# Headers the HTTP client sets itself; sending them twice makes an ambiguous request.
CLIENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field name
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters kept as typed in a URL's path and query: RFC 3986's reserved set and '%' (an
# escape the user typed stays as typed). Everything else (a quote, a backslash, a space,
# non-ASCII) is percent-encoded, as a browser sends it.
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


class UsageProblem(Exception):
    """Something the user typed cannot work; the message says what and how to fix it."""


# -- a TOML writer for the generated config ---------------------------------------------------
_SHORT_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r",
                  '"': '\\"', "\\": "\\\\"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

REPORT_HELP = ("also write the scorecard: .json, .md, .html, .sarif, or GitLab Code Quality "
               "(a .json named *codequality*, e.g. gl-code-quality-report.json); repeatable")


def toml_string(text: str) -> str:
    """A TOML basic string: quote, backslash and control characters escaped (TOML 1.0 forbids
    U+0000-U+001F and U+007F unescaped), everything else as it is."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("a lone surrogate cannot be written to TOML")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else toml_string(name)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} to TOML")


def toml_dumps(table: Mapping[str, Any]) -> str:
    """`table` as TOML (one `key = value` line per top-level key, inline tables below), read
    back and compared: a writer bug is an error here, never a different config."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    text = "".join(f"{_toml_key(str(key))} = {_toml_value(value)}\n" for key, value in table.items())
    if tomllib.loads(text) != _plain(table):
        raise ValueError("the generated config does not read back as written")
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- what the user typed ------------------------------------------------------------------------
def _shown(url: str) -> str:
    """The URL as messages show it: token-ish query parameters masked."""
    from pytest_prodready.masking import Masker

    return str(Masker().url(url))


def _encode(part: str) -> str:
    return quote(part.encode("utf-8", "surrogateescape"), safe=_URL_SAFE)


def split_target(url: str) -> tuple[str, str]:
    """(base URL, page) of the URL as typed: the page is the path and the query string.

    Refused, with the reason: anything but http(s), a URL with a user name or password
    (credentials in a URL end up in logs), and a host part that URL parsers read differently.
    """
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.schema import url as check_url
    from pytest_prodready.urls import UnsafeURL, destination

    text = url.strip()
    # Userinfo first, before anything quotes the URL back: it may hold a password.
    _scheme, sep, rest = text.partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""
    if "\\" in authority:
        raise UsageProblem("the host part of the URL contains a backslash; URL parsers disagree on "
                           "where such a URL goes, so nothing is sent to it. Write the URL with '/'")
    if "@" in authority:
        what = "a password" if ":" in authority.rpartition("@")[0] else "a user name"
        raise UsageProblem(
            f"the URL carries {what} (user:password@host), and it is refused: credentials in a URL "
            "end up in shell history, logs and reports. Give the URL without them, and pass a "
            "credential with --header 'Authorization: Basic ...' (from an env var: --header "
            "\"Authorization: Basic $CREDS\") or a bearer token with --token-env NAME")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise UsageProblem(f"{text!r} is not a valid URL ({exc}); e.g. prodready check "
                           "https://staging.example.com/api/agents") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageProblem(f"{text!r} is not an http(s) URL; e.g. prodready check "
                           "https://staging.example.com/api/agents")
    if any(c.isspace() or not c.isprintable() for c in parts.netloc):
        raise UsageProblem(f"the host part of {text!r} contains whitespace or control characters")
    base = f"{parts.scheme.lower()}://{parts.netloc}"
    page = _encode(parts.path or "/") + (f"?{_encode(parts.query)}" if parts.query else "")
    try:
        base = check_url(base, "the URL")
        destination(base + page)
    except ConfigError as exc:
        raise UsageProblem(exc.problem) from None
    except UnsafeURL as exc:
        raise UsageProblem(f"{_shown(base + page)} cannot be checked: {exc}") from None
    return base, page


def parse_header(text: str, index: int) -> tuple[str, str]:
    """'Name: value' -> (name, value). Messages never quote the value (it is a credential)."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        raise UsageProblem(f"--header #{index + 1} is not 'Name: value'; write e.g. "
                           "--header \"X-Staging-Key: $STAGING_KEY\"")
    if not _TOKEN.fullmatch(name):
        raise UsageProblem(f"--header {name!r}: not a valid header name (letters, digits and "
                           "!#$%&'*+-.^_`|~ only)")
    if name.lower() in CLIENT_HEADERS:
        raise UsageProblem(f"--header {name}: the HTTP client sets this header itself; it cannot "
                           "be given")
    if not value:
        raise UsageProblem(f"--header {name}: the value is empty (an unset variable in "
                           f"\"{name}: $VAR\"?)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise UsageProblem(f"--header {name}: the value contains a line break or another control "
                           "character")
    if any(ord(c) > 0xFF for c in value):
        raise UsageProblem(f"--header {name}: the value has characters outside Latin-1, which "
                           "HTTP headers cannot carry; percent- or base64-encode it")
    return name, value


def _ca_bundle(given: str | None, configured: bool) -> str | None:
    """An absolute CA bundle path: --ca-bundle, else (when the config names none)
    REQUESTS_CA_BUNDLE or SSL_CERT_FILE; checked to be a readable PEM bundle."""
    import ssl

    if given:
        source, value = "--ca-bundle", given
    elif configured:
        return None
    else:
        found = next(((var, os.environ[var]) for var in CA_ENV if os.environ.get(var)), None)
        if found is None:
            return None
        source, value = f"{found[0]} (environment)", found[1]
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise UsageProblem(f"{source}: {value} is not a file (looked at {path}); it must be a PEM "
                           "file of the CA certificate(s) the target's certificate chains to")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UsageProblem(f"{source}: {path} is not a PEM CA bundle ({exc})") from None
    return str(path)


def _only(value: str | None) -> list[str]:
    if not value:
        return []
    import difflib

    from pytest_prodready.registry import categories

    known = categories()
    names = [c.strip() for c in value.split(",") if c.strip()]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UsageProblem(f"--only: no category {name!r}; {hint}categories: {', '.join(known)}")
    if not names:
        raise UsageProblem("--only: name at least one category, e.g. --only tls,cors")
    return names


def _reports(paths: Sequence[str]) -> list[str]:
    """--report paths made absolute against the working directory, suffixes checked."""
    from pytest_prodready.report.render import FORMATS

    out = []
    for given in paths:
        path = Path(given).expanduser()
        if path.suffix.lower() not in FORMATS:
            raise UsageProblem(f"--report {given}: the format is chosen by the suffix; use one of "
                               f"{', '.join(FORMATS)}")
        out.append(str(path.absolute()))
    return out


def _config_message(exc: Exception, label: str) -> str:
    """A ConfigError's text without the plugin's prefix, attributed to `label`."""
    text = str(exc)
    head, sep, rest = text.partition(": ")
    if sep and head.startswith(("prodready config", "prodready")):
        text = rest
    return f"{label}: {text}" if label else text


def _user_config(path_text: str, base: str) -> tuple[dict[str, Any], Path]:
    """The prodready table of --config PATH, validated on its own (messages name the user's
    file and its keys), with its relative file paths made absolute."""
    from pytest_prodready.config import Overrides, load_settings, read_table
    from pytest_prodready.exceptions import ConfigError

    path = Path(path_text).expanduser().absolute()
    if not path.is_file():
        raise UsageProblem(f"--config {path_text}: no such file (looked at {path})")
    try:
        load_settings(path.parent, Overrides(url=base, config_path=str(path)))
        table = read_table(path, "tool.prodready" if path.name == "pyproject.toml" else "")
    except ConfigError as exc:
        raise UsageProblem(_config_message(exc, f"--config {path_text}")) from None
    table = _plain(table)
    _absolute_files(table, path.parent)
    for profile in (table.get("env") or {}).values():
        if isinstance(profile, dict):
            _absolute_files(profile, path.parent)
    return table, path


def _absolute_files(table: dict[str, Any], base: Path) -> None:
    """Relative file settings are read from the config file's folder: keep them pointing
    there once the table is written elsewhere."""
    tls = table.get("tls")
    if isinstance(tls, dict) and isinstance(tls.get("ca_bundle"), str):
        tls["ca_bundle"] = str(base / Path(tls["ca_bundle"]).expanduser())
    for hook in (table.get("webhooks") or {}).values():
        if isinstance(hook, dict) and isinstance(hook.get("payload_file"), str):
            hook["payload_file"] = str(base / Path(hook["payload_file"]).expanduser())


def check_config(args: argparse.Namespace, base: str, page: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The config table of a `check` run, and the environment it needs (header values)."""
    table: dict[str, Any] = {}
    if args.config:
        table, _ = _user_config(args.config, base)
    table.pop("base_url", None)  # the URL decides (passed as --prodready-url)
    table["page"] = page
    env: dict[str, str] = {}

    tls = dict(table.get("tls") or {})
    bundle = _ca_bundle(args.ca_bundle, configured=bool(tls.get("ca_bundle")))
    if bundle:
        tls["ca_bundle"] = bundle
    if tls:
        table["tls"] = tls

    if args.token_env:
        name = args.token_env
        if not _ENV_NAME.fullmatch(name):
            raise UsageProblem("--token-env takes the NAME of the environment variable that holds "
                               "the token (e.g. --token-env STAGING_TOKEN), not the token itself")
        if not os.environ.get(name):
            state = "is empty" if name in os.environ else "is not set"
            raise UsageProblem(f"--token-env {name}: the environment variable {name} {state}; "
                               f"export it first (export {name}=...)")
        table["auth"] = {**(table.get("auth") or {}), "token_env": name}

    given_headers = [parse_header(given, i) for i, given in enumerate(args.header)]
    names = [name.lower() for name, _ in given_headers]
    twice = next((name for name, _ in given_headers if names.count(name.lower()) > 1), None)
    if twice:
        raise UsageProblem(f"--header {twice} is given twice")
    # A --header replaces the config's header of the same name (the command line wins).
    headers = [h for h in table.get("request_headers") or []
               if not (isinstance(h, dict) and str(h.get("name", "")).lower() in names)]
    for i, (name, value) in enumerate(given_headers):
        var = HEADER_ENV.format(i)
        env[var] = value
        headers.append({"name": name, "value_env": var})
    if headers:
        table["request_headers"] = headers
    return table, env


# -- running pytest -----------------------------------------------------------------------------
class RunWatcher:
    """A pytest plugin for one CLI run: counts outcomes, and notices how the run stopped."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.reports = 0
        # the target could not be reached: why (Runtime.stopped, set by the plugin)
        self.stopped: TargetUnreachable | None = None
        self.keyboard = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports += 1
        if hasattr(report, "wasxfail") and report.skipped:
            self.counts["waived"] += 1
        elif report.when == "call" or not report.passed:
            self.counts[report.outcome] += 1

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Iterator[None]:
        # The plugin stops the run with pytest.exit() when the target does not answer,
        # before the first check: pytest would print it under an internal class name.
        from pytest_prodready.stash import RUNTIME

        try:
            return (yield)
        except pytest.exit.Exception:
            runtime = session.config.stash.get(RUNTIME, None)
            if self.reports or runtime is None or runtime.stopped is None:
                raise  # someone else's pytest.exit
            self.stopped = runtime.stopped
            return True  # type: ignore[return-value]  # firstresult: the loop is done

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.keyboard = isinstance(excinfo.value, KeyboardInterrupt)

    def summary(self) -> str:
        parts = [f"{self.counts[k]} {k}" for k in ("failed", "passed", "skipped", "waived") if self.counts[k]]
        return ", ".join(parts) or "nothing judged"


def _usage_errors(text: str, config_label: str = "") -> list[str]:
    """pytest's 'ERROR: ...' messages (its usage errors) in what it wrote to stderr; the
    plugin's config errors attributed to `config_label` (the user's --config)."""
    chunks = [c.strip() for c in re.split(r"^ERROR: ", text, flags=re.MULTILINE) if c.strip()]
    out = []
    for chunk in chunks:
        if chunk.startswith("usage:"):
            error = next((line.partition("error: ")[2] for line in chunk.splitlines()
                          if "error: " in line), chunk.splitlines()[-1])
            out.append(f"pytest did not accept the arguments after --: {error}")
        elif chunk.startswith("prodready"):
            out.append(_config_message(Exception(chunk), config_label))
        else:
            out.append(f"pytest: {chunk}")
    return out


def run_pytest(command: str, workdir: Path, config: Path, extra: Sequence[str], *,
               verbose: bool, config_label: str = "") -> tuple[int, RunWatcher, float]:
    """pytest with the plugin, rootdir `workdir`, from the current directory.

    Returns pytest's exit code, what the watcher saw, and the wall time. pytest's usage
    errors are reworded in the command's terms; anything else it wrote to stderr is passed on.
    """
    ini = workdir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n", encoding="utf-8")
    for name in IGNORED_ENV:
        os.environ.pop(name, None)
    args = [*BASE_ARGS, *(VERBOSE_ARGS if verbose else QUIET_ARGS), "--rootdir", str(workdir),
            "-c", str(ini), "--prodready-config", str(config), str(workdir), *extra]
    watcher = RunWatcher()
    sys.stdout.flush()
    real_stderr, tap = sys.stderr, io.StringIO()
    sys.stderr = tap
    started = time.monotonic()
    try:
        code = int(pytest.main(args, plugins=[watcher]))
    finally:
        sys.stderr = real_stderr
        sys.stdout.flush()
    elapsed = time.monotonic() - started
    if code == pytest.ExitCode.USAGE_ERROR and watcher.stopped is None:
        messages = _usage_errors(tap.getvalue(), config_label) or ["pytest refused to start"]
        for message in messages:
            say(command, message)
    else:
        real_stderr.write(tap.getvalue())
    return code, watcher, elapsed


def outcome_code(command: str, code: int, watcher: RunWatcher) -> int:
    """The command's exit code for pytest's, saying why when it is not a verdict."""
    if watcher.stopped is not None:
        message = str(watcher.stopped).removeprefix("target ")
        if watcher.stopped.untrusted:
            # Not down: every request carries a credential (--header), and a credential goes
            # only over TLS that verifies.
            say(command, f"{message.partition(' ')[0]}: its certificate does not verify "
                         f"({watcher.stopped.untrusted}), and the --header values are sent only over "
                         "verified TLS, so nothing was sent. Pass the CA that signed it: --ca-bundle PATH")
            return EXIT_USAGE
        say(command, message)
        return EXIT_UNREACHABLE
    if code == pytest.ExitCode.OK:
        return EXIT_READY
    if code == pytest.ExitCode.TESTS_FAILED:
        return EXIT_NOT_READY
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERRUPTED:
        if watcher.keyboard:
            return EXIT_INTERRUPTED
        return EXIT_NOT_READY  # stopped early (the request budget): readiness not shown
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        say(command, "nothing was checked: the selection (--only, or -k/-m after --) left no check")
        return EXIT_USAGE
    say(command, "prodready itself failed (the INTERNALERROR above); please report it with the "
                 "command you ran")
    return EXIT_INTERNAL


def say(command: str, message: str) -> None:
    print(f"prodready {command}: {message}", file=sys.stderr)


# -- the commands ---------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace, passthrough: list[str]) -> int:
    try:
        base, page = split_target(args.url)
        only = _only(args.only)
        reports = _reports(args.report)
        table, env = check_config(args, base, page)
        text = toml_dumps(table)
    except UsageProblem as exc:
        say("check", str(exc))
        return EXIT_USAGE
    shown = _shown(base + page)
    extra = ["--prodready-url", base, *(f"--prodready-report={r}" for r in reports)]
    if only:
        extra.append(f"--prodready-only={','.join(only)}")
    if args.fail_on:
        extra.append(f"--prodready-fail-on={args.fail_on}")
    os.environ.update(env)  # header values reach the run by env var only, never in the file
    with tempfile.TemporaryDirectory(prefix="prodready-check-") as tmp:
        workdir = Path(tmp)
        config = workdir / "prodready.toml"
        config.write_text(text, encoding="utf-8")
        problem = _validate_generated(workdir, config, base)
        if problem:
            say("check", problem)
            return EXIT_USAGE
        print(f"prodready check: {shown}: the passive suite"
              + (f" ({', '.join(only)})" if only else ""))
        code, watcher, elapsed = run_pytest(
            "check", workdir, config, [*extra, *passthrough], verbose=args.verbose,
            config_label=f"--config {args.config}" if args.config else "")
    result = outcome_code("check", code, watcher)
    if result in (EXIT_READY, EXIT_NOT_READY):
        verdict = "READY" if result == EXIT_READY else "NOT READY"
        hint = "" if args.verbose or not watcher.counts["failed"] else \
            " Each blocker above says what to fix; -v shows the requests and responses behind it."
        if result == EXIT_READY and not watcher.counts["passed"] and not watcher.counts["failed"]:
            # READY would read as "checked and fine": nothing was, and saying so is the answer.
            verdict = "nothing judged"
            hint = (" No check applied to this target as configured: add -- -rs to see each "
                    "skip's reason (e.g. 'set protected': give the endpoints with --config).")
        print(f"prodready check: {verdict}: {watcher.summary()} in {elapsed:.1f}s.{hint}")
    return result


def _validate_generated(workdir: Path, config: Path, base: str) -> str:
    """The generated config as the plugin will load it: a problem in check's words, or ''."""
    from pytest_prodready.config import Overrides, load_settings
    from pytest_prodready.exceptions import ConfigError

    try:
        load_settings(workdir, Overrides(url=base, config_path=str(config)))
    except ConfigError as exc:
        return _config_message(exc, "")
    return ""


def cmd_demo(args: argparse.Namespace, passthrough: list[str]) -> int:
    from pytest_prodready.demo.service import DemoServer

    try:
        reports = _reports(args.report)
    except UsageProblem as exc:
        say("demo", str(exc))
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="prodready-demo-") as tmp, DemoServer(Path(tmp)) as server:
        workdir = Path(tmp)
        config = server.write_config()
        os.environ.update(server.env)  # the secrets reach the run by env var, never in the file
        print(f"prodready demo: a half-ready demo API is running on {server.url} (plain HTTP on "
              f"{server.http_url}), with a throwaway CA minted for this run")
        if args.verbose:
            print("prodready demo: running the passive suite against it, with this config:\n")
            print(server.config())
        else:
            print("prodready demo: running the passive suite against it "
                  "(-v also shows its prodready.toml and the evidence of each failure)")
        extra = [f"--prodready-report={r}" for r in reports]
        code, watcher, elapsed = run_pytest("demo", workdir, config, [*extra, *passthrough],
                                            verbose=args.verbose)
    result = outcome_code("demo", code, watcher)
    if result not in (EXIT_READY, EXIT_NOT_READY):
        return result
    hint = "" if args.verbose else " -v shows the requests and responses behind each."
    print(f"prodready demo: done: {watcher.summary()} in {elapsed:.1f}s. The failures are the demo's "
          f"planted defects; each blocker above says how to fix it.{hint}")
    # The demo succeeded if it produced a verdict; the verdict itself is NOT READY by design.
    return EXIT_READY


def cmd_catalogue(args: argparse.Namespace, passthrough: list[str]) -> int:
    from pytest_prodready.catalogue import markdown_catalogue

    print(markdown_catalogue())
    return EXIT_READY


def cmd_init(args: argparse.Namespace, passthrough: list[str]) -> int:
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.init import InitError, init

    directory = Path(args.directory)
    try:
        written = init(directory, args.from_openapi)
    except InitError as exc:
        say("init", str(exc))
        return EXIT_USAGE
    except ConfigError as exc:  # our generator's bug, said plainly
        say("init", f"the generated config does not validate: {exc}")
        return EXIT_USAGE
    for path in written:
        print(f"prodready init: wrote {path}")
    print("prodready init: review the lines marked REVIEW, then run: pytest --prodready")
    return EXIT_READY


def cmd_locust_worker(args: argparse.Namespace, passthrough: list[str]) -> int:
    from pytest_prodready import locustrun

    if not locustrun.available():
        say("locust-worker", "Locust is not installed: pip install 'pytest-prodready[locust]'")
        return EXIT_USAGE
    command = locustrun.worker_command(args.master_host, args.master_port)
    print(f"prodready locust-worker: {' '.join(command[2:])}", flush=True)
    # Locust's own process (gevent): never imported here. Its exit code is the command's.
    return subprocess.call(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prodready", description="Production-readiness checks against a live URL.",
        epilog="Arguments after -- go to pytest as they are (check and demo), e.g. -- -k cors "
               "--junitxml=out.xml. Exit codes: 0 ready, 1 not ready, 2 usage or config error, "
               "3 target unreachable.")
    parser.add_argument("--version", action="version", version=f"prodready {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check", help="run the passive suite against one URL, no config file needed",
        description="Run the passive suite against URL (its path and query are the page checked).")
    check.add_argument("url", metavar="URL", help="e.g. https://staging.example.com/api/agents")
    check.add_argument("--ca-bundle", metavar="PATH",
                       help="trust this CA bundle (PEM) for the target; default: the config's "
                            "tls.ca_bundle, else $REQUESTS_CA_BUNDLE, else $SSL_CERT_FILE")
    check.add_argument("--header", metavar="'NAME: VALUE'", action="append", default=[],
                       help="send this header on every request to the target (repeatable); the "
                            "value is masked in all output, e.g. --header \"X-Gate: $GATE_KEY\"")
    check.add_argument("--token-env", metavar="NAME",
                       help="the environment variable holding a valid bearer token (auth.token_env)")
    check.add_argument("--config", metavar="PATH",
                       help="a prodready.toml (or pyproject.toml) whose settings the URL overrides")
    check.add_argument("--only", metavar="LIST", help="only these categories, e.g. 'tls,cors'")
    check.add_argument("--fail-on", choices=("critical", "high", "medium", "low"),
                       help="lowest severity whose failure makes the verdict NOT READY (default low)")
    check.add_argument("--report", metavar="PATH", action="append", default=[],
                       help=REPORT_HELP)
    check.add_argument("-v", "--verbose", action="store_true",
                       help="show every check and the evidence (requests, responses) of each failure")
    check.set_defaults(func=cmd_check)

    demo = sub.add_parser("demo", help="run the suite against an embedded, half-ready demo service")
    demo.add_argument("--report", metavar="PATH", action="append", default=[],
                      help=REPORT_HELP)
    demo.add_argument("-v", "--verbose", action="store_true",
                      help="show the demo's config, every check and each failure's evidence")
    demo.set_defaults(func=cmd_demo)

    init = sub.add_parser(
        "init", help="write a starter prodready.toml and tests/prodready/test_smoke.py",
        description="Write a starter prodready.toml (protected operations from an OpenAPI spec, "
                    "health endpoints guessed, auth and webhooks stubbed with *_env names) and "
                    "tests/prodready/test_smoke.py. Refuses to overwrite either file.")
    init.add_argument("--from-openapi", metavar="URL|FILE", default=None,
                      help="an OpenAPI 3 or Swagger 2 spec (JSON or YAML), a file or an http(s) URL")
    init.add_argument("--dir", dest="directory", metavar="DIR", default=".",
                      help="where to write (default: the current directory)")
    init.set_defaults(func=cmd_init)

    worker = sub.add_parser(
        "locust-worker", help="join a distributed latency run as a Locust worker (another machine)",
        description="Start a Locust worker for perf.latency_budget's distributed mode "
                    "(runner = \"locust\"): it connects to the master the check starts, receives "
                    "the measurement from it, and sends its raw samples back. Needs "
                    "pytest-prodready[locust] here too.")
    worker.add_argument("--master-host", required=True, metavar="HOST",
                        help="where the check's master listens ([perf.locust] bind_host)")
    worker.add_argument("--master-port", type=int, default=5557, metavar="PORT",
                        help="the master's port ([perf.locust] bind_port; default 5557)")
    worker.set_defaults(func=cmd_locust_worker)

    cat = sub.add_parser("catalogue", help="print the check catalogue (Markdown)")
    cat.set_defaults(func=cmd_catalogue)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, passthrough = args_list[:cut], args_list[cut + 1:]
    parser = build_parser()
    args = parser.parse_args(args_list)
    if passthrough and args.command not in ("check", "demo"):
        parser.error(f"arguments after -- go to pytest, which `{args.command}` does not run")
    return int(args.func(args, passthrough))


if __name__ == "__main__":
    sys.exit(main())
