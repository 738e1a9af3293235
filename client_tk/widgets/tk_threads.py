"""Tk objects are finalised on the Tk thread, never on the worker's or anyone else's.

``tkinter.Variable`` and ``tkinter.Image`` (``PhotoImage``...) have a ``__del__``
that calls into Tcl.  Python's cyclic garbage collector runs in whichever
thread happens to allocate when a collection is due — the asyncio worker
thread, or a homeserver thread in the tests — and a Tcl call from a thread
other than the interpreter's either waits for the Tk thread to service it or,
when the Tk thread is not inside ``mainloop()`` (``update()`` loops, tests),
sleeps up to one second per object before failing with "main thread is not
in main loop".  A collection that finds a few dozen variables of a closed
window therefore froze the thread it ran in for tens of seconds (seen as 30 s
read timeouts of a homeserver running beside the GUI in one process).

:func:`finalize_on_tk_thread` wraps those two finalizers once per process: on
the Tk thread they run as before; on any other thread the object is kept
(resurrected) in a queue that the Tk thread drains (:meth:`TkFinalizers.drain`,
called from the app's event pump and before every finalizer that runs on the
Tk thread).  Per PEP 442 a resurrected object's ``__del__`` is not called a
second time, so each Tcl name is released exactly once.
"""

from __future__ import annotations

import threading
import tkinter
from collections import deque
from collections.abc import Callable
from typing import Any

_ATTR = "_parley_tk_finalizers"
Finalizer = Callable[[Any], None]


class TkFinalizers:
    """The queue of Tk objects whose finalizer must run on :attr:`thread`."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread
        self._pending: deque[tuple[Finalizer, Any]] = deque()
        self.deferred = 0  # how many finalizers arrived from other threads (for tests)

    def wrap(self, original: Finalizer) -> Finalizer:
        def __del__(obj: Any) -> None:
            if threading.current_thread() is self.thread:
                self.drain()
                original(obj)
            else:
                self.deferred += 1
                self._pending.append((original, obj))  # resurrected until drained

        __del__.__wrapped__ = original  # type: ignore[attr-defined]
        return __del__

    def drain(self) -> int:
        """Run the deferred finalizers (Tk thread only); return how many ran."""
        if threading.current_thread() is not self.thread:
            return 0
        ran = 0
        while self._pending:
            original, obj = self._pending.popleft()
            try:
                original(obj)
            except (tkinter.TclError, RuntimeError):
                pass  # the interpreter is already gone: nothing left to release
            ran += 1
            del obj
        return ran

    @property
    def pending(self) -> int:
        return len(self._pending)


def finalize_on_tk_thread() -> TkFinalizers:
    """Install (once per process, from the Tk thread) and return the finalizer queue."""
    existing = getattr(tkinter, _ATTR, None)
    if isinstance(existing, TkFinalizers):
        return existing
    finalizers = TkFinalizers(threading.current_thread())
    for cls in (tkinter.Variable, tkinter.Image):
        cls.__del__ = finalizers.wrap(cls.__del__)  # type: ignore[method-assign]
    setattr(tkinter, _ATTR, finalizers)
    return finalizers
