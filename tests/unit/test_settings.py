"""Settings: safe defaults in local, and a production start that refuses unsafe values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from app.settings import (
    DEFAULT_SQLITE_URL,
    ApiSettings,
    AuthSettings,
    DatabaseSettings,
    Environment,
    OAuthSettings,
    OutboxSettings,
    RedisSettings,
    Settings,
    SmtpSettings,
    get_settings,
)
from tests.support import setting_variables

STRONG_SECRET = "s" * 32
POSTGRES = "postgresql+psycopg://app@db.internal/app"


def production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "secret_key": STRONG_SECRET,
        "trusted_hosts": ["api.example.com"],
        "database": DatabaseSettings(_env_file=None, url=POSTGRES),
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No variable or `.env` of the machine running the tests leaks into these settings."""
    monkeypatch.chdir(tmp_path)
    for name in setting_variables():
        monkeypatch.delenv(name, raising=False)


def test_local_defaults_to_sqlite_and_a_random_secret_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="SECRET_KEY is not set"):
        first = Settings(_env_file=None)
    with pytest.warns(UserWarning, match="SECRET_KEY is not set"):
        second = Settings(_env_file=None)

    assert first.environment is Environment.LOCAL
    assert first.database.url == DEFAULT_SQLITE_URL
    assert first.database.is_sqlite
    assert len(first.secret_key.get_secret_value()) >= 32
    assert first.secret_key != second.secret_key


def test_test_environment_gets_a_random_secret_silently() -> None:
    settings = Settings(_env_file=None, environment="test")

    assert not settings.secret_key_configured
    assert len(settings.secret_key.get_secret_value()) >= 32


def test_a_configured_secret_is_kept_and_never_printed() -> None:
    settings = Settings(_env_file=None, environment="test", secret_key="my-very-secret-value")

    assert settings.secret_key_configured
    assert settings.secret_key.get_secret_value() == "my-very-secret-value"
    assert "my-very-secret-value" not in repr(settings)


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("TRUSTED_HOSTS", "api.example.com, *.example.org,")
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("REDIS_HEALTH_REQUIRED", "true")
    monkeypatch.setenv("API_VERSIONS", "v1,v2")

    settings = Settings(_env_file=None)

    assert settings.trusted_hosts == ["api.example.com", "*.example.org"]
    assert settings.database.url == POSTGRES
    assert settings.redis.url == "redis://cache:6379/0"
    assert settings.redis.health_required
    assert settings.api.versions == ["v1", "v2"]


def test_production_accepts_a_safe_configuration() -> None:
    settings = production()

    assert settings.environment is Environment.PRODUCTION


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"database": DatabaseSettings(_env_file=None, url=DEFAULT_SQLITE_URL)}, "DATABASE_URL"),
        ({"secret_key": "short"}, "SECRET_KEY"),
        ({"secret_key": "changeme"}, "SECRET_KEY"),
        ({"secret_key": "é" * 15}, "SECRET_KEY"),  # 30 bytes, though only 15 characters
        ({"trusted_hosts": []}, "TRUSTED_HOSTS"),
        ({"trusted_hosts": ["*"]}, "TRUSTED_HOSTS"),
        (
            {"auth": AuthSettings(_env_file=None, argon2_memory_kib=1024)},
            "AUTH_ARGON2_MEMORY_KIB",
        ),
        ({"auth": AuthSettings(_env_file=None, argon2_time_cost=1)}, "AUTH_ARGON2_TIME_COST"),
        (
            {"smtp": SmtpSettings(_env_file=None, password="pw", security="none")},
            "SMTP_SECURITY",
        ),
    ],
)
def test_production_refuses_unsafe_settings_naming_the_culprit(
    overrides: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ValidationError, match=setting):
        production(**overrides)


def test_production_refuses_to_run_without_a_configured_secret() -> None:
    values: dict[str, Any] = {
        "environment": "production",
        "trusted_hosts": ["api.example.com"],
        "database": DatabaseSettings(_env_file=None, url=POSTGRES),
    }

    with pytest.raises(ValidationError, match="SECRET_KEY: must be set"):
        Settings(_env_file=None, **values)


def test_redis_health_requirement_needs_a_url() -> None:
    with pytest.raises(ValidationError, match="REDIS_HEALTH_REQUIRED=true needs REDIS_URL"):
        RedisSettings(_env_file=None, health_required=True)


def test_default_api_version_must_be_supported() -> None:
    with pytest.raises(ValidationError, match="API_DEFAULT_VERSION 'v2' is not in API_VERSIONS"):
        ApiSettings(_env_file=None, versions=["v1"], default_version="v2")


def test_get_settings_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_log_level_is_case_insensitive_and_checked() -> None:
    assert Settings(_env_file=None, environment="test", log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="log_level"):
        Settings(_env_file=None, environment="test", log_level="chatty")


def test_outbox_jobs_must_end_before_their_lock() -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT_SECONDS must be longer"):
        OutboxSettings(_env_file=None, job_timeout_seconds=120, visibility_timeout_seconds=120)


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"google_client_id": "g"}, "OAUTH_GOOGLE_CLIENT_SECRET"),
        ({"github_client_id": "gh"}, "OAUTH_GITHUB_CLIENT_SECRET"),
        (
            {"apple_client_id": "a", "apple_team_id": "T", "apple_key_id": "K"},
            "OAUTH_APPLE_PRIVATE_KEY",
        ),
    ],
)
def test_a_provider_with_a_client_id_needs_the_rest(settings: dict[str, Any], missing: str) -> None:
    with pytest.raises(ValidationError, match=f"{missing} is needed with OAUTH_"):
        OAuthSettings(_env_file=None, **settings)


def test_generic_oidc_providers_are_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = {
        "name": "okta",
        "issuer": "https://e.okta.com",
        "client_id": "i",
        "client_secret": "s",
    }
    monkeypatch.setenv("OAUTH_OIDC_PROVIDERS", json.dumps([provider]))
    monkeypatch.setenv(
        "OAUTH_ALLOWED_REDIRECT_ORIGINS", "https://app.example.com, https://b.example.com"
    )

    oauth = OAuthSettings(_env_file=None)

    [okta] = oauth.oidc_providers
    assert (okta.name, okta.scopes) == ("okta", ["openid", "email", "profile"])
    assert okta.client_secret.get_secret_value() == "s"
    assert oauth.allowed_redirect_origins == ["https://app.example.com", "https://b.example.com"]


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_apple_key_may_spell_its_line_breaks_as_backslash_n() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP256R1()))
    one_line = pem.replace("\n", "\\n")

    oauth = OAuthSettings(_env_file=None, apple_private_key=one_line)

    assert oauth.apple_private_key is not None
    assert oauth.apple_private_key.get_secret_value() == pem


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("not a key", "is not a PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "must be the P-256 key"),
        (_pem(rsa.generate_private_key(65537, 2048)), "must be the P-256 key"),
    ],
)
def test_the_apple_key_must_be_a_p256_private_key(key: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OAuthSettings(_env_file=None, apple_private_key=key)


@pytest.mark.parametrize("names", [["okta", "okta"], ["google"]])
def test_generic_provider_names_are_unique_and_not_built_in(names: list[str]) -> None:
    providers = [
        {"name": name, "issuer": "https://i.example", "client_id": "i", "client_secret": "s"}
        for name in names
    ]
    with pytest.raises(ValidationError, match="each name once, and none of a built-in"):
        OAuthSettings(_env_file=None, oidc_providers=providers)


def test_the_server_and_metrics_directory_use_the_platform_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOST", "10.0.0.5")
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/run/metrics")

    settings = Settings(_env_file=None, environment="test")

    assert (settings.server.host, settings.server.port, settings.server.workers) == (
        "10.0.0.5",
        8080,
        4,
    )
    assert settings.metrics.multiprocess_dir == "/run/metrics"
