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

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from homeserver.app import create_app
from homeserver.config import Config, ConfigError, load_config
from homeserver.tls import ensure_dev_certificate

logger = logging.getLogger("homeserver")


def hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [f"{listener.host}:{listener.port}" for listener in config.listeners]
    # Hypercorn closes an HTTP/2 connection after this many requests, failing
    # requests still in flight on it; a chat client keeps one connection open.
    hc.keep_alive_max_requests = 1_000_000
    hc.graceful_timeout = 10.0
    hc.accesslog = None
    hc.errorlog = "-"
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
    if not hc.certfile:
        logger.warning("TLS is off: serving plain HTTP (h2c and HTTP/1.1); use a TLS proxy or set [tls]")
    if config.dev_mode:
        logger.warning("DEV MODE: insecure development settings are allowed")
    logger.info("Parley homeserver %s (instance %s) listening on %s", config.server_name, config.instance,
                ", ".join(hc.bind))
    await serve(app, hc, shutdown_trigger=trigger)  # type: ignore[arg-type]


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
    logging.basicConfig(
        level=config.log_level.upper(),
        # The instance name tells apart the logs of several instances of one deployment.
        format=f"%(asctime)s {config.instance} %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
