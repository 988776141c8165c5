"""Settings for a pytest run: a config file given on the command line is read from where the
user ran pytest, and the suite's node ids do not depend on where that file lives."""

from __future__ import annotations

import pytest


def test_a_relative_config_path_is_read_from_the_invocation_dir(pytester: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    configs = pytester.mkdir("configs") / "x"
    configs.mkdir()
    (configs / "prodready.toml").write_text('base_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    project = pytester.mkdir("proj")
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    monkeypatch.chdir(project)
    result = pytester.runpytest_subprocess("--prodready", "--prodready-config", "../configs/x/prodready.toml",
                                           "--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK, out + result.stderr.str()
    ids = [line for line in out.splitlines() if "::" in line]
    assert ids and all(line.startswith("prodready::") for line in ids), ids
