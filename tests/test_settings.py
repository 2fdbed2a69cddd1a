"""Settings: every variable validated at start-up, errors name the variable, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.settings import Settings, SettingsError
from tests.conftest import ROOT, make_env


def env(**overrides: str) -> dict[str, str]:
    return make_env("mongodb://127.0.0.1:1/", "furusato", **overrides)


def test_valid_environment_is_read_with_defaults() -> None:
    values = env()
    del values["LINE_API_BASE_URL"]
    del values["MONGODB_DB"]
    settings = Settings.from_env(values)
    assert settings.line_api_base_url == "https://api.line.me"
    assert settings.mongodb_db == "furusato"
    assert settings.public_base_url == "http://127.0.0.1:8080"


def test_trailing_slash_of_urls_is_dropped() -> None:
    settings = Settings.from_env(env(PUBLIC_BASE_URL="https://furusato.example.jp/"))
    assert settings.public_base_url == "https://furusato.example.jp"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("LINE_CHANNEL_SECRET", "", "is not set"),
        ("LINE_CHANNEL_SECRET", "short", "too short"),
        ("LINE_CHANNEL_ACCESS_TOKEN", "   ", "is not set"),
        ("LINE_API_BASE_URL", "ftp://example.com", "http(s) URL"),
        ("LINE_API_BASE_URL", "not a url", "http(s) URL"),
        ("MONGODB_URI", "postgres://localhost", "mongodb://"),
        ("MONGODB_DB", "bad name/with slash", "letters, digits"),
        ("PUBLIC_BASE_URL", "", "is not set"),
        ("PUBLIC_BASE_URL", "https://x.example/?a=1", "query"),
        ("SESSION_SECRET", "x" * 10, "too short"),
        ("CARD_SIGNING_SECRET", "a" * 31 + "\x00", "control characters"),
        ("LOG_LEVEL", "LOUD", "must be one of"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**{variable: value}))
    assert caught.value.variable == variable
    assert variable in str(caught.value)
    assert words in str(caught.value)


def test_process_exits_2_with_one_line_naming_the_variable() -> None:
    values = {k: v for k, v in env().items() if k != "SESSION_SECRET"}
    values["PATH"] = os.environ["PATH"]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--port", "1"],
        env=values,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SESSION_SECRET" in lines[0] and "is not set" in lines[0]
