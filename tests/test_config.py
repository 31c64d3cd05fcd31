"""Configuration: a bad file stops the program with one clear line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.core.config import ConfigError, Settings, load

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SEZIM_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=120)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[organization]\nnmae = "X"\n', "unknown key 'organization.nmae'"),
        ("[escalation]\nhigh_minutes = \"five\"\n", "'escalation.high_minutes'"),
        ('[database]\nurl = "mysql://u@h/db"\n', "'database.url'"),
        ('[database]\nurl = "not a url at all"\n', "'database.url'"),
        ('[organization]\ntimezone = "Mars/Olympus"\n', "'organization.timezone'"),
        ('[[roster]]\nmember = "A"\nrole = "lawyer"\ndays = ["mon"]\nstart = 09:00:00\n',
         "missing required key 'roster.0.end'"),
        ("[organization\n", "not valid TOML"),
        ('unknown_section = 1\n', "unknown key 'unknown_section'"),
    ],
)
def test_bad_config_names_the_key_and_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(path, environ={})
    message = str(err.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "content",
    ['[organization]\nnmae = "X"\n', '[database]\nurl = "mysql://u@h/db"\n',
     "[limits]\nmessages_per_minute = -3\n"],
)
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    for command in (["--config", str(path), "run"], ["db", "upgrade", "--config", str(path)]):
        result = run_cli(*command)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert str(path) in lines[0]
        assert "Traceback" not in result.stderr


def test_cli_config_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "env.toml"
    path.write_text('[telegram]\npoll_timeout = "soon"\n', encoding="utf-8")
    result = run_cli("run", env={"SEZIM_CONFIG": str(path)})
    assert result.returncode == 2
    assert "telegram.poll_timeout" in result.stderr


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load(tmp_path / "nope.toml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "sqlite+aiosqlite:///from-file.db"\n', encoding="utf-8")
    settings = load(path, environ={
        "SEZIM_DATABASE_URL": "sqlite+aiosqlite:///from-env.db",
        "SEZIM_BOT_TOKEN": "123456:" + "a" * 35,
        "SEZIM_SECRET_KEY": "k" * 40,
    })
    assert settings.database.url.endswith("from-env.db")
    assert settings.token == "123456:" + "a" * 35
    assert settings.secret_key == "k" * 40
    # Secrets never show in a printed settings object.
    assert "k" * 40 not in repr(settings)


def test_run_without_token_points_to_the_demo(tmp_path: Path) -> None:
    result = run_cli("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "SEZIM_BOT_TOKEN" in result.stderr
    assert "sezim-bot demo" in result.stderr


def test_run_refuses_a_placeholder_secret(tmp_path: Path) -> None:
    result = run_cli("run", cwd=tmp_path, env={"SEZIM_BOT_TOKEN": "123456:" + "a" * 35,
                                              "SEZIM_SECRET_KEY": "change-me"})
    assert result.returncode == 2
    assert "SEZIM_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def _keys(model: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        if name == "source":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Settings.__mro__[1]):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = ROOT / "config.example.toml"
    settings = load(example, environ={})
    assert settings.organization.hotline == "+996 312 512640"
    assert len(settings.regions) == 11
    text = example.read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    for key in sorted(_keys(Settings)):
        section, _, name = key.partition(".")
        if not name:
            assert section in parsed or f"[[{section}]]" in text, f"{key} undocumented"
            continue
        assert (name in parsed.get(section, {})) or f"# {name} =" in text, \
            f"{key} is not documented in config.example.toml"


def test_secrets_from_files_and_systemd_credentials(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k" * 40 + "\n", encoding="utf-8")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "bot_token").write_text("123456:" + "b" * 35, encoding="utf-8")
    (credentials / "database_password").write_text("s3cr3t pass\n", encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text('[database]\nurl = "postgresql+asyncpg://sezim@localhost/sezim"\n',
                    encoding="utf-8")
    settings = load(path, environ={"SEZIM_SECRET_KEY_FILE": str(key_file),
                                   "CREDENTIALS_DIRECTORY": str(credentials)})
    assert settings.secret_key == "k" * 40  # the newline is not part of it
    assert settings.token == "123456:" + "b" * 35
    from sqlalchemy.engine import make_url
    url = make_url(settings.database.url)
    assert (url.username, url.password, url.host) == ("sezim", "s3cr3t pass", "localhost")
    # The environment variable itself wins over its file.
    settings = load(path, environ={"SEZIM_SECRET_KEY_FILE": str(key_file),
                                   "SEZIM_SECRET_KEY": "e" * 40})
    assert settings.secret_key == "e" * 40


def test_a_secret_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SEZIM_SECRET_KEY_FILE: cannot read"):
        load(None, environ={"SEZIM_SECRET_KEY_FILE": str(tmp_path / "x")})
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        load(None, environ={"SEZIM_BOT_TOKEN_FILE": str(empty)})


@pytest.mark.parametrize("line", [
    '[telegram]\ntoken = "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n',
    '[security]\nsecret_key = "a-key-that-someone-committed-to-git-by-mistake"\n',
    '[database]\nurl = "postgresql+asyncpg://sezim:hunter2hunter2@localhost/sezim"\n',
])
def test_a_secret_in_the_config_file_stops_the_bot_with_one_line(tmp_path: Path,
                                                                  line: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(line, encoding="utf-8")
    result = run_cli("run", "--config", str(path),
                     env={"SEZIM_SECRET_KEY": "k" * 40, "SEZIM_BOT_TOKEN": ""})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "does not belong in the config" in lines[0] or "holds a password" in lines[0]
    for secret in ("AAAAAAAAAAAAAAAAAAAA", "someone-committed", "hunter2"):
        assert secret not in result.stderr + result.stdout
