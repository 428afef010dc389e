"""Every setting of the service, read from the environment (and `.env`) in one place."""

from __future__ import annotations

import secrets
import warnings
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, Request
from limits import parse_many
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/app.db"
# Where `make frontend` builds the single-page frontend.
BUILT_FRONTEND_DIR = Path(__file__).with_name("frontend")
MIN_SECRET_BYTES = 32
# Values copied from tutorials and `.env.example` files; never acceptable in production.
OWASP_ARGON2_MEMORY_KIB = 19 * 1024
OWASP_ARGON2_TIME_COST = 2
KNOWN_DEFAULT_SECRETS = frozenset({"changeme", "change-me", "secret", "secret-key", "dev", "test"})


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class InsecureSettingsError(ValueError):
    """Production was asked to start with a setting that is unsafe there."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", extra="ignore", case_sensitive=False
    )


def _check_rate_limit(value: str) -> str:
    if len(parse_many(value)) != 1:  # raises ValueError for anything `limits` cannot read
        raise ValueError("one limit per policy, such as 10/minute")
    return value


def _split_csv(value: Any) -> Any:
    """Accept `a,b,c` from the environment as well as a real list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


class DatabaseSettings(BaseSettings):
    """`DATABASE_*`: where the data lives and how connections are pooled."""

    model_config = _group("DATABASE_")

    url: str = DEFAULT_SQLITE_URL
    # Connections held open, and a cap on the database work of one process. Overflow
    # connections are closed as soon as they are returned, so under a steady load above the
    # pool size each request would pay for a new connection: the cap lives in the pool.
    pool_size: int = Field(default=20, ge=1)
    max_overflow: int = Field(default=0, ge=0)
    pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # PostgreSQL only: give up on an unreachable server instead of hanging (libpq minimum 2).
    connect_timeout_seconds: int = Field(default=5, ge=2)
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class RedisSettings(BaseSettings):
    """`REDIS_*`: optional. Readiness can require it."""

    model_config = _group("REDIS_")

    url: str | None = None
    health_required: bool = False

    @model_validator(mode="after")
    def _required_needs_url(self) -> RedisSettings:
        if self.health_required and not self.url:
            raise ValueError("REDIS_HEALTH_REQUIRED=true needs REDIS_URL")
        return self


class ApiSettings(BaseSettings):
    """`API_*`: versioning."""

    model_config = _group("API_")

    versions: CsvList = Field(default_factory=lambda: ["v1"], min_length=1)
    default_version: str = "v1"

    @field_validator("versions", mode="before")
    @classmethod
    def _parse_versions(cls, value: Any) -> Any:
        return _split_csv(value)

    @model_validator(mode="after")
    def _default_is_supported(self) -> ApiSettings:
        if self.default_version not in self.versions:
            msg = f"API_DEFAULT_VERSION {self.default_version!r} is not in API_VERSIONS"
            raise ValueError(msg)
        return self


class AuthSettings(BaseSettings):
    """`AUTH_*`: token lifetimes, JWT claims and password hashing cost."""

    model_config = _group("AUTH_")

    access_token_minutes: int = Field(default=15, ge=1, le=60)
    # A session (refresh-token family) ends after this long whatever happens...
    refresh_absolute_days: int = Field(default=30, ge=1)
    # ...and earlier if it goes unused for this long.
    refresh_idle_days: int = Field(default=7, ge=1)
    # A rotated token presented again within this window is answered 401 without ending the
    # session: two tabs refreshing at once. Later, it is treated as theft (RFC 9700 4.14.2).
    refresh_reuse_grace_seconds: int = Field(default=5, ge=0, le=60)
    jwt_issuer: str = "fastapi-starter"
    jwt_audience: str = "fastapi-starter-api"
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=30)
    # OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
    argon2_time_cost: int = Field(default=OWASP_ARGON2_TIME_COST, ge=1)
    argon2_memory_kib: int = Field(default=OWASP_ARGON2_MEMORY_KIB, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Hashes computed at once; each holds `argon2_memory_kib` and a thread.
    password_hash_concurrency: int = Field(default=4, ge=1)


RateLimitString = Annotated[str, AfterValidator(_check_rate_limit)]
Strategy = Literal["fixed-window", "sliding-window-counter", "moving-window"]


class RateLimitSettings(BaseSettings):
    """`RATE_LIMIT_*`: one policy per route class, written as `limits` strings ("10/minute")."""

    model_config = _group("RATE_LIMIT_") | {"populate_by_name": True}

    enabled: bool = True
    # How requests are counted (bench/rate_limit_strategies.py measures them): fixed-window
    # lets a client double its limit across a window edge; sliding-window-counter keeps an
    # edge burst near the limit at the lowest cost, but over-admits a little for a steady
    # client; moving-window is exact and stores one entry per request, which is cheap at
    # the small limits of the auth classes.
    strategy: Strategy = "sliding-window-counter"  # read and write
    auth_strategy: Strategy = "moving-window"  # login, login_account, register, refresh, oauth
    # A slow or unreachable Redis gives up after this long (then fails open or closed).
    timeout_seconds: float = Field(default=0.5, gt=0)
    max_connections: int = Field(default=32, ge=1)
    key_prefix: str = "ratelimit"
    login: RateLimitString = "10/minute"  # per client IP
    login_account: RateLimitString = "20/hour"  # per submitted email, whatever the IP
    # `register` is a BaseSettings attribute: the field takes another name, the same variable.
    register_: RateLimitString = Field(default="10/hour", validation_alias="RATE_LIMIT_REGISTER")
    refresh: RateLimitString = "60/minute"
    oauth: RateLimitString = "20/minute"
    read: RateLimitString = "300/minute"
    write: RateLimitString = "60/minute"

    def limit_for(self, policy: str) -> str:
        return str(getattr(self, "register_" if policy == "register" else policy))


class OutboxSettings(BaseSettings):
    """`OUTBOX_*`: how recorded events are dispatched, retried and given up on."""

    model_config = _group("OUTBOX_")

    # How often the dispatcher looks for due events (worker cron, or the embedded relay);
    # a divisor of 60, so the cron ticks evenly.
    dispatch_interval_seconds: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] = 1
    # Events one claim takes: the first attempts among them go to one job together, and
    # each retry to a job of its own.
    batch_size: int = Field(default=100, ge=1, le=10_000)
    # A pass keeps claiming while claims come back full, up to this many claims, so a
    # backlog drains quickly.
    max_batches_per_pass: int = Field(default=50, ge=1)
    # How long a batch's job may run: each handler is cut off after half of it (a failed
    # attempt), and none starts after the first half (the rest go back uncounted). In the
    # worker, also ARQ's job timeout.
    job_timeout_seconds: int = Field(default=60, ge=1)
    # A queued event whose job has not finished by then is queued again (worker killed,
    # Redis flushed). Longer than the job timeout, so a running job is never reaped.
    visibility_timeout_seconds: int = Field(default=120, ge=2)
    max_attempts: int = Field(default=8, ge=1, le=30)
    # Retry n waits min(cap, base * 2^n) seconds, scaled by a random 50-100 %.
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_cap_seconds: float = Field(default=600.0, gt=0)
    queue_name: str = "outbox"
    # Without REDIS_URL there is no worker: the API process dispatches and handles events.
    relay_enabled: bool = True

    @model_validator(mode="after")
    def _jobs_end_before_their_lock(self) -> OutboxSettings:
        if self.job_timeout_seconds >= self.visibility_timeout_seconds:
            raise ValueError(
                "OUTBOX_VISIBILITY_TIMEOUT_SECONDS must be longer than OUTBOX_JOB_TIMEOUT_SECONDS"
            )
        return self


class SmtpSettings(BaseSettings):
    """`SMTP_*`: outgoing mail. Without a host, mail is written to the log instead."""

    model_config = _group("SMTP_")

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # "starttls" upgrades a plain connection (port 587); "tls" connects over TLS (465).
    security: Literal["starttls", "tls", "none"] = "starttls"
    timeout_seconds: float = Field(default=10.0, gt=0)
    sender: str = "no-reply@example.com"


TokenEndpointAuthMethod = Literal["client_secret_basic", "client_secret_post"]


class OidcProviderSettings(BaseModel):
    """One generic OpenID Connect provider (Keycloak, Okta, Auth0, Authentik...)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    display_name: str | None = None
    # The issuer URL; its `/.well-known/openid-configuration` describes the rest.
    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    # How the client authenticates at the token endpoint (the discovery document's
    # `token_endpoint_auth_methods_supported` lists what the provider takes).
    token_endpoint_auth_method: TokenEndpointAuthMethod = "client_secret_basic"  # noqa: S105 - a method name
    # Whether an address the provider marks `email_verified` may link to an existing account
    # with that address. Only for a provider that proves addresses itself and that no one
    # outside the organisation administers.
    trust_email: bool = False


class OAuthSettings(BaseSettings):
    """`OAUTH_*`: sign-in with external providers. A provider is on when its client id is set,
    and then every other setting it needs must be set too."""

    model_config = _group("OAUTH_")

    # With it, a finished sign-in answers 303 to this URL with a one-time code the frontend
    # exchanges for tokens; without it, the callback answers the token pair itself.
    frontend_callback_url: str | None = None
    # Origins a flow may send the browser back to (`redirect_to`); the callback URL's
    # origin is always allowed.
    allowed_redirect_origins: CsvList = Field(default_factory=list)
    # A flow must be finished within this long.
    flow_ttl_seconds: int = Field(default=600, ge=60, le=600)
    # Each call to a provider gives up after this long (then 504).
    http_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # The public origin providers send the browser back to, such as https://api.example.com:
    # the callback URL registered with each provider is
    # {this}/api/v1/auth/oauth/{provider}/callback. Defaults to the origin of the request.
    redirect_base_url: str | None = None

    # Each provider's server URLs default to the public service; change them only for another
    # deployment of it (a sovereign Microsoft cloud, GitHub Enterprise Server).
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    google_issuer: str = "https://accounts.google.com"
    microsoft_client_id: str | None = None
    microsoft_client_secret: SecretStr | None = None
    # common, organizations, consumers, or a tenant id.
    microsoft_tenant: str = Field(default="common", pattern=r"^[A-Za-z0-9.-]+$")
    # When set, only these tenants' accounts may sign in (for a multi-tenant
    # `microsoft_tenant`; a single tenant id allows that tenant alone anyway).
    microsoft_allowed_tenants: CsvList = Field(default_factory=list)
    microsoft_authority: str = "https://login.microsoftonline.com"
    apple_client_id: str | None = None  # the Services ID
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    apple_private_key: SecretStr | None = None  # the .p8 key's PEM text
    apple_issuer: str = "https://appleid.apple.com"
    facebook_client_id: str | None = None
    facebook_client_secret: SecretStr | None = None
    facebook_url: str = "https://www.facebook.com/v23.0"
    facebook_graph_url: str = "https://graph.facebook.com/v23.0"
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    # A JSON list of generic OpenID Connect providers, each named.
    oidc_providers: list[OidcProviderSettings] = Field(default_factory=list)

    @field_validator("allowed_redirect_origins", "microsoft_allowed_tenants", mode="before")
    @classmethod
    def _parse_lists(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("apple_private_key")
    @classmethod
    def _apple_key_is_p256(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # A one-line .env value may spell the PEM's line breaks as \n.
        pem = value.get_secret_value().replace("\\n", "\n")
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except ValueError as exc:
            raise ValueError("OAUTH_APPLE_PRIVATE_KEY is not a PEM private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("OAUTH_APPLE_PRIVATE_KEY must be the P-256 key Apple issued")
        return SecretStr(pem)

    @model_validator(mode="after")
    def _providers_are_complete(self) -> OAuthSettings:
        required = {
            "google": ("client_secret",),
            "microsoft": ("client_secret",),
            "apple": ("team_id", "key_id", "private_key"),
            "facebook": ("client_secret",),
            "github": ("client_secret",),
        }
        for provider, fields in required.items():
            if getattr(self, f"{provider}_client_id") is None:
                continue
            for field in fields:
                if getattr(self, f"{provider}_{field}") is None:
                    name = f"OAUTH_{provider}_{field}".upper()
                    raise ValueError(f"{name} is needed with OAUTH_{provider.upper()}_CLIENT_ID")
        names = [provider.name for provider in self.oidc_providers]
        clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & set(required)))
        if clashes:
            raise ValueError(
                "OAUTH_OIDC_PROVIDERS: each name once, and none of a built-in provider: "
                + ", ".join(clashes)
            )
        return self


class ServerSettings(BaseSettings):
    """`HOST`, `PORT`, `WEB_CONCURRENCY`: where and how `python -m app` serves (the names
    hosting platforms set)."""

    model_config = _group("") | {"populate_by_name": True}

    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, ge=1, le=65535, validation_alias="PORT")
    workers: int = Field(default=1, ge=1, validation_alias="WEB_CONCURRENCY")


class MetricsSettings(BaseSettings):
    """`METRICS_*`: Prometheus metrics, on `/metrics` and on the worker's own port."""

    model_config = _group("METRICS_") | {"populate_by_name": True}

    enabled: bool = True
    # When set, `/metrics` answers only `Authorization: Bearer <token>` (Prometheus's
    # `authorization` scrape setting); otherwise keep it off the public network.
    token: SecretStr | None = None
    # The worker has no HTTP server of its own: it serves its metrics here. In a container,
    # set the host to 0.0.0.0 so the scraper can reach it.
    worker_host: str = "127.0.0.1"
    worker_port: int = Field(default=9100, ge=1, le=65535)
    # prometheus_client's own variable: the directory where the processes of a multi-process
    # server write their values (`python -m app --workers N` makes one when it is unset).
    multiprocess_dir: str | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")


class TracingSettings(BaseSettings):
    """`OTEL_*`: OpenTelemetry's own variable names. Without an endpoint, nothing is traced."""

    model_config = _group("OTEL_")

    # The collector's OTLP/HTTP base URL, such as http://otel-collector:4318.
    exporter_otlp_endpoint: str | None = None
    service_name: str = "fastapi-starter"


class SentrySettings(BaseSettings):
    """`SENTRY_*`: error reports. Without a DSN, nothing is sent."""

    model_config = _group("SENTRY_")

    dsn: SecretStr | None = None
    # Defaults to ENVIRONMENT.
    environment: str | None = None
    # The deployed version, such as a git commit; Sentry groups regressions by it.
    release: str | None = None


class Settings(BaseSettings):
    """The service's configuration. Build it through `get_settings()`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    environment: Environment = Environment.LOCAL
    project_name: str = "FastAPI Starter"
    # A fresh random key unless one is configured; production refuses to start on it.
    secret_key: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(48)))
    trusted_hosts: CsvList = Field(default_factory=list)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # One JSON object per line, or aligned text for a terminal; by default JSON in
    # production and text elsewhere.
    log_format: Literal["json", "console"] | None = None
    # Behind a reverse proxy: read the client address from X-Forwarded-For, taking the entry
    # the nearest `trusted_proxy_count` proxies vouch for, never the client-supplied left end.
    trust_proxy_headers: bool = False
    trusted_proxy_count: int = Field(default=1, ge=1)
    # Redirect GET/HEAD over plain HTTP to HTTPS and refuse other methods (400).
    https_redirect: bool = False
    # Request bodies larger than this are refused with 413 before they are read whole.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Browser origins allowed to call the API (CORS); none by default. Never "*".
    cors_origins: CsvList = Field(default_factory=list)
    # Below Kubernetes' default 1 s probe timeout, so the probe sees our 503, not its own.
    ready_timeout_seconds: float = Field(default=0.8, gt=0)
    # On SIGTERM, `/ready` answers 503 at once and the server keeps serving this long before
    # it stops accepting connections, so load balancers take the instance out of rotation
    # first. In Kubernetes, a few seconds (the time endpoints take to update).
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=60)
    # Serve `/docs` and `/openapi.json`.
    docs_enabled: bool = True
    # The built single-page frontend, served at `/` when this folder holds its index.html.
    frontend_dir: Path = BUILT_FRONTEND_DIR

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    sentry: SentrySettings = Field(default_factory=SentrySettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)

    @field_validator("trusted_hosts", "cors_origins", mode="before")
    @classmethod
    def _parse_hosts(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("CORS_ORIGINS must list origins; '*' would let any site call the API")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_environment(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            self._refuse_insecure_production()
        elif self.environment is Environment.LOCAL and not self.secret_key_configured:
            warnings.warn(
                "SECRET_KEY is not set: using a random key for this process only; "
                "tokens will not survive a restart.",
                stacklevel=2,
            )
        return self

    @property
    def json_logs(self) -> bool:
        if self.log_format is None:
            return self.environment is Environment.PRODUCTION
        return self.log_format == "json"

    @property
    def secret_key_configured(self) -> bool:
        return "secret_key" in self.model_fields_set

    def _refuse_insecure_production(self) -> None:
        # OWASP Password Storage Cheat Sheet: argon2id with at least 19 MiB and 2 passes.
        if self.auth.argon2_memory_kib < OWASP_ARGON2_MEMORY_KIB:
            raise InsecureSettingsError(
                "AUTH_ARGON2_MEMORY_KIB", "below the OWASP minimum of 19 MiB"
            )
        if self.auth.argon2_time_cost < OWASP_ARGON2_TIME_COST:
            raise InsecureSettingsError("AUTH_ARGON2_TIME_COST", "below the OWASP minimum of 2")
        if self.smtp.password and self.smtp.security == "none":
            raise InsecureSettingsError("SMTP_SECURITY", "would send SMTP_PASSWORD in clear text")
        if self.database.is_sqlite:
            raise InsecureSettingsError("DATABASE_URL", "production needs PostgreSQL, not SQLite")
        secret = self.secret_key.get_secret_value()
        if not self.secret_key_configured:
            raise InsecureSettingsError("SECRET_KEY", "must be set in production")
        if secret.lower() in KNOWN_DEFAULT_SECRETS:
            raise InsecureSettingsError("SECRET_KEY", "is a well-known default value")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise InsecureSettingsError(
                "SECRET_KEY", f"must be at least {MIN_SECRET_BYTES} bytes in production"
            )
        if not self.trusted_hosts or "*" in self.trusted_hosts:
            raise InsecureSettingsError("TRUSTED_HOSTS", "must list the served host names")


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def _app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


# The settings the running application was built with (see `create_app`).
AppSettings = Annotated[Settings, Depends(_app_settings)]
