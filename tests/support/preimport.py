"""Import, on the main thread, the modules that libraries would otherwise import lazily in a thread.

pytest rewrites (compiles from source) every module of a distribution that
registers a pytest plugin; anyio is one, and anyio >= 4.12 imports its
submodules on first attribute access.  The first ``anyio.open_file`` of a
homeserver running in a test thread therefore compiled ``anyio._core._fileio``
in that thread while the Tk thread was compiling too, and CPython 3.11 can fail
such concurrent compiles ("SystemError: AST constructor recursion depth
mismatch"), which turned a media download into a 500.  Importing them here,
once, before any server thread exists, leaves nothing to compile later.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

LAZY_PACKAGES = ("anyio",)


def preimport(packages: tuple[str, ...] = LAZY_PACKAGES) -> list[str]:
    """Import every submodule of ``packages``; return the names that could not be imported."""
    missing: list[str] = []
    for package_name in packages:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    importlib.import_module(info.name)
                except ImportError:  # optional backends (trio) that are not installed
                    missing.append(info.name)
    return missing
