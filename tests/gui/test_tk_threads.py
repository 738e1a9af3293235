"""Tk objects that another thread's garbage collection finds are released on the Tk thread.

Before :func:`finalize_on_tk_thread`, a collection on the worker (or a homeserver
thread in these tests) called ``Variable.__del__`` there: Tcl made that thread wait
up to a second per variable, then refused ("main thread is not in main loop") and
the Tcl variable leaked.
"""

from __future__ import annotations

import gc
import threading
import tkinter as tk
from collections.abc import Iterator
from typing import Any

import pytest

from client_tk.widgets.tk_threads import finalize_on_tk_thread


class _Holder:
    var: Any = None


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _exists(root: Any, name: str) -> bool:
    return bool(root.tk.getboolean(root.tk.call("info", "exists", name)))


def test_cyclic_tk_variables_collected_on_another_thread(tk_root: Any, no_automatic_gc: None) -> None:
    finalizers = finalize_on_tk_thread()
    names = []
    for i in range(20):  # each variable in a reference cycle: only the collector frees it
        holder = _Holder()
        holder.var = tk.StringVar(master=tk_root, value=f"draft {i}")
        holder.var.holder = holder  # type: ignore[attr-defined]
        names.append(str(holder.var))
    del holder
    assert all(_exists(tk_root, name) for name in names)
    before = finalizers.deferred

    collector = threading.Thread(target=gc.collect, name="not-the-tk-thread")
    collector.start()
    collector.join()

    assert finalizers.deferred - before == len(names)  # none ran on the wrong thread
    assert finalizers.pending >= len(names)
    assert finalizers.drain() >= len(names)
    assert not any(_exists(tk_root, name) for name in names)


def test_finalizers_on_the_tk_thread_run_at_once(tk_root: Any) -> None:
    finalizers = finalize_on_tk_thread()
    var = tk.StringVar(master=tk_root, value="x")
    name = str(var)
    del var  # no cycle: released by reference counting, on this thread
    assert not _exists(tk_root, name)
    assert finalize_on_tk_thread() is finalizers
