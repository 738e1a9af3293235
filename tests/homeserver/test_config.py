from __future__ import annotations

from pathlib import Path

import pytest

from homeserver.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_is_production_safe() -> None:
    config = load_config(ROOT / "conf" / "homeserver.example.toml", environ={})
    assert config.server_name == "example.org"
    assert not config.dev_mode
    assert config.rate_limits.login_per_minute == 10


def test_environment_overrides_file() -> None:
    config = load_config(
        ROOT / "conf" / "homeserver.example.toml",
        environ={"PARLEY_SERVER_NAME": "chat.test", "PARLEY_RATE_LIMITS_LOGIN_PER_MINUTE": "3",
                 "PARLEY_LISTEN_PORT": "9999"},
    )
    assert config.server_name == "chat.test"
    assert config.rate_limits.login_per_minute == 3
    assert config.listeners[0].port == 9999


def test_config_is_frozen() -> None:
    config = load_config(ROOT / "conf" / "homeserver.dev.toml", environ={})
    with pytest.raises(AttributeError):
        config.server_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"tls": {"autogenerate": True}},
        {"smtp": {"host": "mail.test", "verify_tls": False}},
        {"security": {"log_verification_codes": True}},
        {"security": {"password_scrypt_log_n": 10}},
    ],
)
def test_insecure_settings_refused_outside_dev_mode(overrides: dict[str, object]) -> None:
    base = {"registration": {"open": True}}
    with pytest.raises(ConfigError, match="dev_mode"):
        load_config(None, environ={}, overrides={**base, **overrides})
    load_config(None, environ={}, overrides={**base, **overrides, "dev_mode": True})


def test_insecure_setting_from_environment_refused() -> None:
    with pytest.raises(ConfigError, match="dev_mode"):
        load_config(None, environ={"PARLEY_SECURITY_LOG_VERIFICATION_CODES": "true",
                                   "PARLEY_REGISTRATION_OPEN": "true"})


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"PARLEY_NO_SUCH": "1"}, "unknown environment setting"),
        ({"PARLEY_LIMITS_MAX_REQUEST_BYTES": "lots"}, "expected an integer"),
        ({"PARLEY_SERVER_NAME": "bad name!"}, "not a valid server name"),
        ({"PARLEY_REGISTRATION_OPEN": "maybe"}, "expected true/false"),
    ],
)
def test_bad_settings_get_clear_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, environ={"PARLEY_REGISTRATION_OPEN": "true", **environ})


def test_email_registration_without_smtp_is_refused() -> None:
    with pytest.raises(ConfigError, match="smtp"):
        load_config(None, environ={})


def test_unknown_file_setting_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('dev_mode = true\n[registration]\nopen = true\nsurprise = 1\n')
    with pytest.raises(ConfigError, match="surprise"):
        load_config(path, environ={})


@pytest.mark.parametrize("limits", [{"body_idle_timeout_ms": 0}, {"max_media_bytes_per_user": -1}])
def test_hardening_limits_are_validated(limits: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        load_config(None, environ={}, overrides={"limits": limits})
