"""``python -m client_tk``: start the Parley desktop client (Tk, dark theme)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m client_tk", description="Parley desktop client")
    parser.add_argument("--server", default="http://127.0.0.1:8008", help="homeserver URL")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where this device keeps its encrypted local store")
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed TLS certificate (dev)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    from client_tk.app import ParleyApp
    app = ParleyApp(server=args.server, data_dir=args.data_dir, insecure=args.insecure)
    app.window.mainloop()


if __name__ == "__main__":
    main()
