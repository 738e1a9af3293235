"""``python -m homeserver.admin [--config FILE] COMMAND ...`` (see ``--help``)."""

from __future__ import annotations

import sys

from homeserver.admin.cli import main

if __name__ == "__main__":
    sys.exit(main())
