"""Settings are read once from the environment, validated, and never reveal secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.settings import DEFAULT_DATABASE_URL, Settings, SettingsError


@pytest.fixture
def env(private_key_pem: str) -> dict[str, str]:
    return {
        "GITHUB_APP_ID": "1234",
        "GITHUB_PRIVATE_KEY": private_key_pem,
        "GITHUB_WEBHOOK_SECRET": "old-secret, new-secret",
    }


def test_defaults(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.app_id == 1234
    assert settings.webhook_secrets == ("old-secret", "new-secret")
    assert settings.api_url == "https://api.github.com"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")
    assert settings.workers == 2
    assert settings.sqlite_synchronous == "NORMAL"


def test_everything_set(env: dict[str, str], tmp_path: Path, private_key_pem: str) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(private_key_pem)
    env.update(
        GITHUB_PRIVATE_KEY="",
        GITHUB_PRIVATE_KEY_PATH=str(key_file),
        GITHUB_API_URL="http://127.0.0.1:9000/api/v3/",
        CONNECTOR_GATE_DATABASE_URL="postgresql://gate:pw@db:5432/gate",
        CONNECTOR_GATE_OSV_URL="http://osv.internal",
        CONNECTOR_GATE_PUBLIC_URL="https://gate.example.com",
        CONNECTOR_GATE_WORKERS="4",
        CONNECTOR_GATE_WORK_DIR=str(tmp_path / "work"),
        CONNECTOR_GATE_SQLITE_SYNCHRONOUS="full",
    )
    settings = Settings.from_env(env)
    assert settings.private_key == private_key_pem
    assert settings.api_url == "http://127.0.0.1:9000/api/v3"
    assert settings.workers == 4
    assert settings.work_dir == tmp_path / "work"
    assert settings.sqlite_synchronous == "FULL"


def test_an_inline_key_with_escaped_newlines_is_accepted(
    env: dict[str, str], private_key_pem: str
) -> None:
    env["GITHUB_PRIVATE_KEY"] = private_key_pem.replace("\n", "\\n")
    assert Settings.from_env(env).private_key == private_key_pem


def test_repr_hides_secrets_key_and_database_password(env: dict[str, str]) -> None:
    env["CONNECTOR_GATE_DATABASE_URL"] = "postgresql://gate:hunter2hunter2@db/gate"
    text = repr(Settings.from_env(env))
    for secret in ("old-secret", "new-secret", "PRIVATE KEY", "hunter2hunter2"):
        assert secret not in text
    assert "app_id=1234" in text


def _ec_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"GITHUB_APP_ID": ""}, "GITHUB_APP_ID"),
        ({"GITHUB_APP_ID": "12a"}, "GITHUB_APP_ID"),
        ({"GITHUB_APP_ID": "0"}, "GITHUB_APP_ID"),
        ({"GITHUB_PRIVATE_KEY": ""}, "GITHUB_PRIVATE_KEY"),
        ({"GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nnope\n"}, "GITHUB_PRIVATE_KEY"),
        ({"GITHUB_PRIVATE_KEY": _ec_key()}, "GITHUB_PRIVATE_KEY"),
        ({"GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "GITHUB_PRIVATE_KEY_PATH"),
        ({"GITHUB_WEBHOOK_SECRET": " , "}, "GITHUB_WEBHOOK_SECRET"),
        ({"GITHUB_API_URL": "ftp://x"}, "GITHUB_API_URL"),
        ({"CONNECTOR_GATE_DATABASE_URL": "mysql://db/x"}, "CONNECTOR_GATE_DATABASE_URL"),
        ({"CONNECTOR_GATE_DATABASE_URL": "sqlite://x.db"}, "CONNECTOR_GATE_DATABASE_URL"),
        ({"CONNECTOR_GATE_WORKERS": "-1"}, "CONNECTOR_GATE_WORKERS"),
        ({"CONNECTOR_GATE_SQLITE_SYNCHRONOUS": "OFF"}, "CONNECTOR_GATE_SQLITE_SYNCHRONOUS"),
        ({"CONNECTOR_GATE_JOB_LEASE_SECONDS": "0"}, "CONNECTOR_GATE_JOB_LEASE_SECONDS"),
    ],
)
def test_invalid_settings_name_the_variable_not_the_value(
    env: dict[str, str], changes: dict[str, str], variable: str
) -> None:
    env.update(changes)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    for value in changes.values():
        if len(value) > 3:
            assert value not in str(raised.value)
