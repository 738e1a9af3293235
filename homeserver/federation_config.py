"""The ``[federation]`` section of the configuration (kept apart from config.py for size)."""

from __future__ import annotations

from dataclasses import dataclass

from common.identifiers import is_valid_server_name


@dataclass(frozen=True)
class FederationConfig:
    """The server-server API (docs/FEDERATION.md)."""

    enabled: bool = True
    # "host:port" of the federation listener (TLS); empty: no listener of its own.
    listener: str = ""
    # Its certificate and key; empty: the [tls] ones.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # PEM file of the CAs trusted for outgoing requests; empty: the system's trust store.
    ca_file: str = ""
    # Dev only: skip certificate verification of other servers.
    verify_tls: bool = True
    # Where to reach servers instead of discovering them, comma-separated
    # "name=host:port" (or "name=http://host:port", dev only), e.g. for tests.
    overrides: str = ""
    # What /.well-known/matrix/server delegates to ("host:port"); empty: this
    # server's name with the federation listener's port, or 404 without one.
    well_known_server: str = ""
    # Only these servers may federate (comma-separated, * and ? wildcards); empty: all
    # but those in admin.server_deny_list.
    allow_list: str = ""
    # Our signing key's advertised validity (valid_until_ts = now + this).
    key_validity_hours: int = 24
    # Notaries asked for a server's keys when it cannot be reached itself (comma-separated).
    trusted_key_servers: str = ""
    # Limits of incoming requests: body bytes of /send, requests per origin and minute.
    max_transaction_bytes: int = 4 * 1024 * 1024
    requests_per_minute_per_origin: int = 6000
    # Outgoing requests: time allowed per request, backoff between retries of a destination.
    request_timeout_ms: int = 30_000
    retry_min_ms: int = 1_000
    retry_max_ms: int = 3_600_000
    # A sender's claim on a destination's queue (other instances take over after it).
    sender_lease_ms: int = 60_000

    def override_map(self) -> dict[str, str]:
        """``server name -> "host:port"`` or ``"http://host:port"`` from ``overrides``."""
        out: dict[str, str] = {}
        for entry in self.overrides.split(","):
            if entry.strip():
                name, _, target = entry.strip().partition("=")
                out[name.strip().lower()] = target.strip()
        return out

    def problems(self, dev_mode: bool) -> list[str]:
        found: list[str] = []
        for name, target in self.override_map().items():
            address = target.removeprefix("http://").removeprefix("https://")
            if not is_valid_server_name(name) or ":" not in address or not address.rsplit(":", 1)[1].isdigit():
                found.append(f"federation.overrides: {name}={target} is not name=host:port")
            if target.startswith("http://") and not dev_mode:
                found.append("federation.overrides: plain http:// destinations need dev_mode = true")
        if self.listener and (":" not in self.listener or not self.listener.rsplit(":", 1)[1].isdigit()):
            found.append("federation.listener must be empty or host:port")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            found.append("federation.tls_cert_file and federation.tls_key_file must be set together")
        if not self.verify_tls and not dev_mode:
            found.append("federation.verify_tls = false needs dev_mode = true")
        if self.key_validity_hours < 1 or self.key_validity_hours > 24 * 7:
            found.append("federation.key_validity_hours must be between 1 and 168")
        if self.max_transaction_bytes < 65536:
            found.append("federation.max_transaction_bytes must be at least 65536")
        if not 0 < self.retry_min_ms <= self.retry_max_ms:
            found.append("federation.retry_min_ms must be positive and at most retry_max_ms")
        if self.request_timeout_ms < 100 or self.sender_lease_ms < 1000:
            found.append("federation.request_timeout_ms must be >= 100, sender_lease_ms >= 1000")
        return found
