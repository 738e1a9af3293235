"""``python -m homeserver [--config FILE]``: serve the homeserver with Hypercorn.

HTTP/1.1 and HTTP/2 are both served: h2c on a plain port, ALPN h2 over TLS
when a certificate is configured.  SIGINT/SIGTERM shut down gracefully: the
homeserver's long-polls answer at once and requests in flight complete.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from hypercorn.config import Config as HypercornConfig

from homeserver.api.metrics import metrics_app
from homeserver.app import create_app
from homeserver.config import Config, ConfigError, load_config
from homeserver.logs import configure_logging
from homeserver.serving import serve_bounded, without_lifespan
from homeserver.tls import ensure_dev_certificate

logger = logging.getLogger("homeserver")


def federation_hypercorn_config(config: Config, main: HypercornConfig) -> HypercornConfig | None:
    """The federation listener (``[federation] listener``): TLS only, with its own or the [tls] certificate."""
    fed = config.federation
    if not fed.listener or not fed.enabled:
        return None
    hc = HypercornConfig()
    hc.bind = [fed.listener]
    hc.keep_alive_max_requests = main.keep_alive_max_requests
    hc.graceful_timeout = main.graceful_timeout
    hc.accesslog = None
    hc.errorlog = main.errorlog
    hc.alpn_protocols = ["h2", "http/1.1"]
    hc.certfile = fed.tls_cert_file or main.certfile
    hc.keyfile = fed.tls_key_file or main.keyfile
    return hc


def hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [f"{listener.host}:{listener.port}" for listener in config.listeners]
    # Hypercorn closes an HTTP/2 connection after this many requests, failing
    # requests still in flight on it; a chat client keeps one connection open.
    hc.keep_alive_max_requests = 1_000_000
    hc.graceful_timeout = 10.0
    hc.accesslog = None
    # Hypercorn's own "-" adds a second handler: its lines would print twice.
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.alpn_protocols = ["h2", "http/1.1"]
    cert, key = config.tls.cert_file, config.tls.key_file
    if not cert and config.tls.autogenerate:
        cert, key = ensure_dev_certificate(config.data_path, config.server_name)
    if cert:
        hc.certfile = cert
        hc.keyfile = key
    return hc


async def run(config: Config) -> None:
    app = create_app(config)
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.set)

    async def trigger() -> None:
        await shutdown.wait()
        logger.info("shutting down: answering open long-polls")
        app.state.hs.services.notifier.wake_all()

    hc = hypercorn_config(config)
    if config.admin.json_logs:
        # Hypercorn's own lines go through the JSON handler too.
        hc.errorlog = logging.getLogger("hypercorn.error")
    if not hc.certfile:
        logger.warning("TLS is off: serving plain HTTP (h2c and HTTP/1.1); use a TLS proxy or set [tls]")
    if config.dev_mode:
        logger.warning("DEV MODE: insecure development settings are allowed")
    logger.info("Parley homeserver %s (instance %s) listening on %s", config.server_name, config.instance,
                ", ".join(hc.bind))
    # The app's start-up and shut-down run once, around all listeners (not once per listener).
    served = without_lifespan(app)
    servers = [serve_bounded(served, hc, trigger)]
    fed_hc = federation_hypercorn_config(config, hc)
    if fed_hc is not None:
        logger.info("federation listener on https://%s", config.federation.listener)
        servers.append(serve_bounded(served, fed_hc, shutdown.wait))
    if config.admin.metrics_listener:
        metrics_hc = HypercornConfig()
        metrics_hc.bind = [config.admin.metrics_listener]
        metrics_hc.accesslog = None
        metrics_hc.errorlog = hc.errorlog
        logger.info("metrics on http://%s/metrics", config.admin.metrics_listener)
        servers.append(serve_bounded(metrics_app(app.state.hs), metrics_hc, shutdown.wait))
    async with app.router.lifespan_context(app):
        await asyncio.gather(*servers)
    logger.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homeserver", description="Parley homeserver")
    parser.add_argument("--config", "-c", type=Path, help="TOML configuration file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # Everything the server creates (database, media, keys) is private to its user.
    os.umask(0o077)
    configure_logging(config.log_level, config.admin.json_logs, config.instance)
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
