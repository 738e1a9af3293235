"""Homeserver configuration: a frozen object loaded from TOML, overridden by environment.

Every setting lives in a section of ``conf/homeserver.example.toml``.  An
environment variable ``PARLEY_<SECTION>_<KEY>`` (upper case) overrides the
file, e.g. ``PARLEY_SERVER_NAME`` (top-level ``server_name``),
``PARLEY_DATABASE_URL`` (``[database] url``) or
``PARLEY_RATE_LIMITS_LOGIN_PER_MINUTE``.  ``PARLEY_TEST_*`` is reserved for
the test suite and ignored here.  Insecure settings are refused
unless ``dev_mode`` is on.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
import os
import re
import socket
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.identifiers import is_valid_server_name
from homeserver.federation_config import FederationConfig
from homeserver.media_config import MediaConfig
from homeserver.push_config import PushConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """The configuration is invalid; the message says what to change."""


@dataclass(frozen=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 8008


@dataclass(frozen=True)
class DatabaseConfig:
    # Empty means "SQLite file under data_dir" (the embedded default).
    url: str = ""
    pool_min: int = 1
    pool_max: int = 10
    # MySQL: room-event writers claim stream positions (under their room's lock, on a
    # connection of their own) instead of sharing one row lock (storage/streams.py).
    # Off by default: concurrent writers of different rooms deadlock on the gap locks of
    # room_extremities (repeated, but a send can run out of repeats: docs/DEPLOYING.md).
    multi_writer: bool = False


@dataclass(frozen=True)
class TlsConfig:
    cert_file: str = ""
    key_file: str = ""
    # Dev only: generate a self-signed certificate when none is configured.
    autogenerate: bool = False


@dataclass(frozen=True)
class RegistrationConfig:
    enabled: bool = True
    # Allow m.login.dummy (registration without verifying an e-mail address).
    open: bool = False
    # Require the e-mail verification stage.
    require_email: bool = True
    # Verification codes are valid this long.
    code_ttl_seconds: int = 900
    code_max_attempts: int = 5
    # Shared-secret registration (/_synapse/admin/v1/register); empty = off.
    shared_secret: str = ""
    # Require a registration token (m.login.registration_token) to register.
    require_token: bool = False
    # Guest accounts (POST /register?kind=guest), limited to the spec's guest endpoints.
    allow_guests: bool = False


@dataclass(frozen=True)
class RateLimitConfig:
    enabled: bool = True
    register_per_minute: int = 3
    login_per_minute: int = 10
    # Failed logins per account and hour from all addresses together: a ceiling
    # on guessing from many addresses.  Failures per (account, address) are
    # limited by login_per_minute, so guesses from elsewhere do not lock the owner out.
    login_failures_per_account_per_hour: int = 100
    messages_per_minute: int = 20
    email_lookup_per_minute: int = 10
    pairing_per_minute: int = 10
    media_per_minute: int = 30
    # One-time keys one user may claim per device of another per hour (then the fallback key).
    one_time_key_claims_per_hour: int = 10


@dataclass(frozen=True)
class LimitsConfig:
    max_request_bytes: int = 65536
    max_image_bytes: int = 5 * 1024 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    max_avatar_bytes: int = 2 * 1024 * 1024
    # Bytes of media one user may keep uploaded (0: no quota).
    max_media_bytes_per_user: int = 1024 * 1024 * 1024
    max_room_name_length: int = 100
    max_sync_timeout_ms: int = 60_000
    # Each chunk of a request body must arrive within this many milliseconds.
    body_idle_timeout_ms: int = 20_000
    # Answers of POSTs sent with an Idempotency-Key are kept this long; a repeat that
    # meets the first attempt still running waits this long for it (then 409).
    idempotency_ttl_ms: int = 86_400_000
    idempotency_wait_ms: int = 10_000


@dataclass(frozen=True)
class RoomsConfig:
    # Room version of new rooms when createRoom names none (see conf/homeserver.example.toml).
    default_version: str = "11"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = ""
    port: int = 587
    username: str = ""
    password: str = ""
    sender: str = "parley@localhost"
    # "starttls", "tls" (implicit) or "none" (only for a local relay).
    security: str = "starttls"
    # Dev only: skip certificate verification of the SMTP server.
    verify_tls: bool = True


@dataclass(frozen=True)
class IdentityConfig:
    # Identity servers (host[:port], comma-separated, * and ? wildcards) that clients may
    # name as id_server to bind, unbind and invite by third-party identifier.
    # Empty: none (the endpoints answer that no identity server is used).
    allowed_servers: str = ""
    # Certificates (PEM) trusted for identity servers besides the system's (a private CA).
    ca_file: str = ""

    def allows(self, id_server: str) -> bool:
        patterns = [p.strip().lower() for p in self.allowed_servers.split(",") if p.strip()]
        return any(fnmatch.fnmatchcase(id_server.lower(), p) for p in patterns)


@dataclass(frozen=True)
class SecurityConfig:
    # scrypt cost exponent (N = 2**n); 15 needs 32 MiB per hash.
    password_scrypt_log_n: int = 15
    # Threads that hash passwords (each scrypt holds 2**log_n KiB while it runs);
    # more concurrent logins queue.
    password_hashing_threads: int = 2
    # Dev only: write e-mail verification codes to the log.
    log_verification_codes: bool = False
    login_challenge_ttl_seconds: int = 120


@dataclass(frozen=True)
class AdminConfig:
    # /metrics: "" serves it on the main listeners to loopback clients only;
    # "host:port" serves it (to anyone who can connect) on its own listener instead.
    metrics_listener: str = ""
    # Structured JSON log lines with a request id.
    json_logs: bool = False
    # Localpart of the account that sends server notices.
    server_notices_localpart: str = "server"
    # Delete local media neither downloaded nor uploaded for this many days (0 = keep forever).
    media_retention_local_days: int = 0
    # Purge messages older than a room's m.room.retention max_lifetime.
    retention_enabled: bool = False
    # The policy of rooms without m.room.retention, in days (0 = keep forever).
    retention_default_max_lifetime_days: int = 0
    # Servers refused everywhere (comma-separated, * and ? wildcards); applied with m.room.server_acl.
    server_deny_list: str = ""
    # /.well-known/matrix/support (spec, "Getting support"): whom users may contact.
    # All empty: the document answers 404, as the spec says for no information.
    support_email: str = ""
    support_matrix_id: str = ""
    support_page: str = ""


@dataclass(frozen=True)
class Config:
    server_name: str = "localhost"
    public_baseurl: str = ""
    dev_mode: bool = False
    log_level: str = "INFO"
    data_dir: str = "data"
    media_dir: str = ""
    redis_url: str = ""
    # This process's name in logs and /health (default: host name and process id).
    instance_name: str = ""
    # Comma-separated addresses/networks of load balancers whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    listeners: tuple[ListenerConfig, ...] = (ListenerConfig(),)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    push: PushConfig = field(default_factory=PushConfig)

    # ------------------------------------------------------------------ derived
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def media_path(self) -> Path:
        return Path(self.media_dir) if self.media_dir else self.data_path / "media"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite://{(self.data_path / 'homeserver.db').as_posix()}"

    @property
    def base_url(self) -> str:
        if self.public_baseurl:
            return self.public_baseurl.rstrip("/")
        listener = self.listeners[0]
        scheme = "https" if self.tls.cert_file or self.tls.autogenerate else "http"
        return f"{scheme}://{self.server_name}:{listener.port}"

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        items = [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)

    @property
    def instance(self) -> str:
        return self.instance_name or f"{socket.gethostname()}-{os.getpid()}"

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def _validate_support(self) -> None:
        admin = self.admin
        if admin.support_matrix_id and not re.fullmatch(r"@[!-9;-~]+:[A-Za-z0-9.:\[\]-]+", admin.support_matrix_id):
            raise ConfigError(f"admin.support_matrix_id {admin.support_matrix_id!r} is not a Matrix user id")
        if admin.support_email and not re.fullmatch(r"[^@\s]+@[^@\s]+", admin.support_email):
            raise ConfigError(f"admin.support_email {admin.support_email!r} is not an e-mail address")
        if admin.support_page and not admin.support_page.startswith(("https://", "http://")):
            raise ConfigError("admin.support_page must be an http(s) URL")

    def validate(self) -> None:
        """Refuse configurations that are unsafe or cannot work."""
        if not is_valid_server_name(self.server_name):
            raise ConfigError(f"server_name {self.server_name!r} is not a valid server name")
        if not self.listeners:
            raise ConfigError("at least one listener is required")
        for listener in self.listeners:
            if not 0 <= listener.port <= 65535:
                raise ConfigError(f"listener port {listener.port} is out of range")
        self._validate_support()
        insecure = []
        if self.tls.autogenerate:
            insecure.append("tls.autogenerate")
        if not self.smtp.verify_tls:
            insecure.append("smtp.verify_tls = false")
        if self.security.log_verification_codes:
            insecure.append("security.log_verification_codes")
        if self.security.password_scrypt_log_n < 14:
            insecure.append("security.password_scrypt_log_n < 14")
        if 0 < len(self.registration.shared_secret) < 16:
            insecure.append("registration.shared_secret shorter than 16 characters")
        if insecure and not self.dev_mode:
            raise ConfigError(
                "insecure settings are only allowed with dev_mode = true: "
                + ", ".join(insecure)
            )
        if self.federation.listener and not (self.federation.tls_cert_file or self.tls.cert_file
                                             or self.tls.autogenerate):
            raise ConfigError("federation.listener needs a certificate: federation.tls_cert_file/tls_key_file "
                              "or [tls] (other servers connect with TLS only)")
        if bool(self.tls.cert_file) != bool(self.tls.key_file):
            raise ConfigError("tls.cert_file and tls.key_file must be set together")
        if self.security.password_scrypt_log_n > 20 or self.security.password_scrypt_log_n < 10:
            raise ConfigError("security.password_scrypt_log_n must be between 10 and 20")
        if not 1 <= self.security.password_hashing_threads <= 64:
            raise ConfigError("security.password_hashing_threads must be between 1 and 64")
        if self.smtp.security not in ("starttls", "tls", "none"):
            raise ConfigError("smtp.security must be one of starttls, tls, none")
        if self.registration.require_email and not self.smtp.host and not (
            self.dev_mode and self.security.log_verification_codes
        ) and self.registration.enabled and not self.registration.open:
            raise ConfigError(
                "registration requires e-mail verification but no [smtp] host is set; "
                "set smtp.host, or registration.open = true, or (dev only) "
                "security.log_verification_codes = true"
            )
        for setting, value in (("admin.server_deny_list", self.admin.server_deny_list),
                               ("federation.allow_list", self.federation.allow_list)):
            for entry in value.split(","):
                if entry.strip() and not re.fullmatch(r"[A-Za-z0-9.:\[\]*?-]+", entry.strip()):
                    raise ConfigError(f"{setting}: {entry.strip()!r} is not a server name pattern")
        metrics_at = self.admin.metrics_listener
        if metrics_at and (":" not in metrics_at or not metrics_at.rsplit(":", 1)[1].isdigit()):
            raise ConfigError("admin.metrics_listener must be empty or host:port")
        if self.limits.max_request_bytes < 1024:
            raise ConfigError("limits.max_request_bytes must be at least 1024")
        if self.limits.body_idle_timeout_ms < 100:
            raise ConfigError("limits.body_idle_timeout_ms must be at least 100")
        if self.limits.idempotency_ttl_ms < 60_000 or not 0 <= self.limits.idempotency_wait_ms <= 60_000:
            raise ConfigError("limits.idempotency_ttl_ms must be at least 60000, "
                              "limits.idempotency_wait_ms between 0 and 60000")
        if self.limits.max_media_bytes_per_user < 0:
            raise ConfigError("limits.max_media_bytes_per_user must be 0 (no quota) or more")
        from homeserver.services.room_versions import ROOM_VERSIONS

        if self.rooms.default_version not in ROOM_VERSIONS:
            raise ConfigError(f"rooms.default_version must be one of {', '.join(ROOM_VERSIONS)}")
        for problem in [*self.media.problems(self.dev_mode), *self.federation.problems(self.dev_mode)]:
            raise ConfigError(problem)
        try:
            _ = self.trusted_proxy_networks
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {exc}") from None


# ---------------------------------------------------------------------- loading

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, (str, int)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: unsupported setting type")


def _build(cls: type[Any], data: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key}: expected a table")
            kwargs[name] = _build(typing.cast(type[Any], hint), value, key)
        elif typing.get_origin(hint) is tuple:
            item_cls = typing.get_args(hint)[0]
            if not isinstance(value, list):
                raise ConfigError(f"{key}: expected an array of tables")
            kwargs[name] = tuple(_build(item_cls, item, f"{key}[{i}]") for i, item in enumerate(value))
        else:
            kwargs[name] = _coerce(value, hint, key)
    return cls(**kwargs)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Map ``PARLEY_SECTION_KEY`` variables onto the nested settings dict."""
    overrides: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    sections = {
        name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)
    }
    for var, raw in environ.items():
        # PARLEY_TEST_* belongs to the test suite and CI, not to the server.
        if not var.startswith("PARLEY_") or var.startswith("PARLEY_TEST_"):
            continue
        key = var[len("PARLEY_"):].lower()
        if key in hints and key not in sections and key != "listeners":
            overrides[key] = raw
            continue
        if key.startswith("listen_"):
            continue  # handled below
        for section, section_cls in sections.items():
            prefix = section + "_"
            if key.startswith(prefix):
                sub = key[len(prefix):]
                names = {f.name for f in dataclasses.fields(typing.cast(Any, section_cls))}
                if sub in names:
                    overrides.setdefault(section, {})[sub] = raw
                    break
        else:
            raise ConfigError(f"unknown environment setting {var}")
    host = environ.get("PARLEY_LISTEN_HOST")
    port = environ.get("PARLEY_LISTEN_PORT")
    if host is not None or port is not None:
        listener: dict[str, Any] = {}
        if host is not None:
            listener["host"] = host
        if port is not None:
            listener["port"] = port
        overrides["listeners"] = [listener]
    return overrides


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read ``path`` (TOML, optional), apply ``PARLEY_*`` variables, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration file {path}: {exc}") from None
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    config = typing.cast(Config, _build(Config, data, ""))
    config.validate()
    return config


__all__ = ["Config", "ConfigError", "load_config"]
