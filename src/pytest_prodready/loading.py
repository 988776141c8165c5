"""Settings for a pytest run: each option from the command line, the environment, the ini
file or the config file (in that order), validated before any request is sent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_prodready.stash import RUN_FOLDER

if TYPE_CHECKING:
    from pytest_prodready.config import Settings
    from pytest_prodready.runshare import RunShare


def load_run_settings(config: pytest.Config) -> Settings:
    from pytest_prodready.config import Overrides, Problems, load_settings
    from pytest_prodready.exceptions import ConfigError
    from pytest_prodready.registry import all_checks, categories
    from pytest_prodready.schema import key_path

    blame: dict[str, str] = {}  # setting -> its source, as an error about it names it

    def pick(field: str, option: str, env: str, ini: str | None = None) -> tuple[str | None, str]:
        value = config.getoption(option)
        if value:
            blame[field] = "--" + option.replace("_", "-")
            return value, "command line"
        if os.environ.get(env):
            blame[field] = f"{env} (env)"
            return os.environ[env], f"env {env}"
        if ini and config.getini(ini):
            blame[field] = f"{ini} (ini)"
            return str(config.getini(ini)), f"ini {ini}"
        return None, ""

    url, url_src = pick("url", "prodready_url", "PRODREADY_URL")
    config_path, config_src = pick("config_path", "prodready_config", "PRODREADY_CONFIG", "prodready_config")
    # Typed on the command line or set in the environment: relative to where the user ran
    # pytest (an ini value stays relative to the rootdir, like pytest's own).
    config_dir = None if config_src.startswith("ini") else Path(config.invocation_params.dir)
    profile, _ = pick("profile", "prodready_env", "PRODREADY_ENV")
    fail_on, fail_src = pick("fail_on", "prodready_fail_on", "PRODREADY_FAIL_ON", "prodready_fail_on")
    sensitive, _ = pick("sensitive_url", "prodready_sensitive_url", "PRODREADY_SENSITIVE_URL")
    problems = Problems()  # every problem of the run, reported at once
    only_raw = config.getoption("prodready_only") or ""
    only = tuple(c.strip() for c in only_raw.split(",") if c.strip())
    known = categories()
    for name in only:
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.outside(ConfigError("--prodready-only", f"unknown category {name!r}; {hint}"
                                                             f"categories: {', '.join(known)}"))
    sources = {k: v for k, v in (("base_url", url_src), ("fail_on", fail_src)) if v}
    overrides = Overrides(
        url=url, config_path=config_path, profile=profile, fail_on=fail_on, only=only,
        active=bool(config.getoption("prodready_active")),
        force_active=bool(config.getoption("prodready_force_active")),
        sensitive_url=sensitive, fallback_url=_pytest_base_url(config), sources=sources, blame=blame,
        config_dir=config_dir)
    try:
        settings = load_settings(Path(config.rootpath), overrides)
    except ConfigError as exc:
        problems.absorb(exc)
        raise problems.error() from None
    # What needs the check registry is checked here, still before any request; these keys
    # are the file's, so the error names the file.
    problems.file, problems.prefix = settings.config_file, settings.config_prefix
    checks = all_checks()
    for check_id in settings.get("severity", {}) or {}:
        if check_id not in checks:
            problems.in_file(ConfigError(key_path("severity", check_id), _no_such_check(check_id, checks)))
    # Each family's own validation (a webhook table against its scheme's rules...).
    from pytest_prodready import family

    try:
        family.validate(settings)
    except ConfigError as exc:
        problems.in_file(exc)
    for i, waiver in enumerate(settings.get("waivers", []) or []):
        base_id = waiver["id"].split("[", 1)[0]
        if base_id not in checks:
            problems.in_file(ConfigError(f"waivers[{i}].id", _no_such_check(base_id, checks)))
    problems.raise_if_any()
    return settings


def _no_such_check(check_id: str, checks: Any) -> str:
    import difflib

    close = difflib.get_close_matches(check_id, list(checks), n=1)
    return f"no check {check_id!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def _pytest_base_url(config: pytest.Config) -> str | None:
    """pytest-base-url's --base-url / base_url ini, honoured when no prodready URL is given."""
    try:
        value = config.getoption("base_url")
    except ValueError:
        return None
    return str(value) if value else None


def run_share(config: pytest.Config) -> RunShare:
    """The run folder: made by the controller (or a plain run), handed to xdist workers."""
    import tempfile

    from pytest_prodready.runshare import RunShare

    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("prodready_run_dir"):
        return RunShare(Path(workerinput["prodready_run_dir"]))
    folder = Path(tempfile.mkdtemp(prefix="prodready-run-"))
    config.stash[RUN_FOLDER] = folder
    return RunShare(folder)
