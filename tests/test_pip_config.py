"""The user's pip configuration, as a sandboxed build sees it: variables, read-only paths, allowed hosts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from sandrun.pip_config import parse_config_list, read_pip_config, settings_from

LISTED = """\
global.cert='/etc/ssl/certs/ca-certificates.crt'
global.find-links='/srv/wheels'
install.find-links='/srv/install-wheels'
global.proxy='http://corp-proxy:3128'
:env:.find-links='/env/wheels'
:env:.default-timeout='180'
user.weird-section-line
not a setting
"""


def test_later_sections_win_and_env_variables_win_over_files() -> None:
    config = parse_config_list(LISTED)
    assert config["find-links"] == "/env/wheels"
    assert config["cert"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config["default-timeout"] == "180"
    assert "weird-section-line" not in config


def test_settings_become_variables_without_the_ones_sandrun_sets_itself(tmp_path: Path) -> None:
    settings = settings_from({"cert": "/x.pem", "proxy": "http://p:1", "cache-dir": "/c", "no-index": "1"})
    assert settings.env == {"PIP_CONFIG_FILE": os.devnull, "PIP_CERT": "/x.pem", "PIP_NO_INDEX": "1"}


def test_existing_local_paths_are_bound_and_a_simple_index_brings_its_parent(tmp_path: Path) -> None:
    (tmp_path / "pypi" / "simple").mkdir(parents=True)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "constraints.txt").write_text("")
    settings = settings_from(
        {
            "extra-index-url": f"file://{tmp_path}/pypi/simple https://mirror.test/simple",
            "find-links": f"{tmp_path}/wheels {tmp_path}/missing",
            "constraint": f"{tmp_path}/constraints.txt",
            "cert": "/usr/share/ca-certificates/x.crt",
            "no-index": f"{tmp_path}",  # not a path setting: never bound, whatever it says
        }
    )
    assert settings.paths == (tmp_path / "pypi", tmp_path / "wheels", tmp_path / "constraints.txt")
    assert settings.allow.destinations == {
        ("pypi.org", 443),
        ("files.pythonhosted.org", 443),
        ("mirror.test", 443),
    }


def test_an_index_url_replaces_the_default_index_hosts() -> None:
    settings = settings_from(
        {"index-url": "http://internal.test:8080/simple", "trusted-host": "internal.test"}
    )
    assert settings.allow.destinations == {
        ("internal.test", 8080),
        ("internal.test", 80),
        ("internal.test", 443),
    }
    assert settings.allow.explicit == {"internal.test"}


def test_the_real_configuration_is_read_through_sandruns_own_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.flags.isolated:
        pytest.skip("pip reads no variables in isolated mode")
    monkeypatch.setenv("PIP_RETRIES", "7")
    assert read_pip_config().env["PIP_RETRIES"] == "7"
