"""One scenario of :mod:`bench.client` in this process: ``python bench/client_scenarios.py NAME DIR``.

Prints one JSON object with the scenario's figures.  The events are the worker's (built here),
posted on the bridge queue the way the worker posts them, so the Tk side does all its real work:
the conversation list, the message view, the alerts.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ME = "@me:bench.test"
ROOMS = 1000
PROBE_MS = 5


class Probe:
    """An ``after`` ticker: the longest gap between its ticks is the longest stall of the loop."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.last: float | None = None
        self.longest = 0.0
        self.running = True
        root.after(PROBE_MS, self.tick)

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now
        if self.running:
            self.root.after(PROBE_MS, self.tick)


def pump(root: Any, until: Any, limit_s: float = 600.0) -> None:
    deadline = time.monotonic() + limit_s
    while not until():
        root.update()
        if time.monotonic() > deadline:
            raise RuntimeError("scenario did not finish")
        time.sleep(0.001)


def setup(folder: Path) -> tuple[Any, list[Any]]:
    from client_tk import bridge as b
    from client_tk.app import ParleyApp
    app = ParleyApp(data_dir=folder)
    app.window.geometry("1000x680+0+0")
    app.bus.publish(b.LoggedIn(ME, "BENCH"))
    now = int(time.time() * 1000) - 3_600_000
    rooms = [b.RoomInfo(f"!r{i:04d}:bench.test", f"Conversation {i:04d}", i % 3 == 0,
                        (ME, f"@p{i}:bench.test"), (), ME, 0, i % 97 == 0, peer=f"@p{i}:bench.test",
                        last_ts=now + i * 1000, preview=f"the last message of {i}", last_sender=f"@p{i}:bench.test")
             for i in range(ROOMS)]
    app.bridge.post(b.RoomsSnapshot(tuple(rooms), ()))
    pump(app.window, lambda: app.screen.room_list.renders >= 1 and not app.bridge.events.qsize())
    app.window.update()
    return app, rooms


def messages(room_id: str, count: int, start: int, sender: str = "@p1:bench.test") -> tuple[Any, ...]:
    from client_tk.core.events import Message
    return tuple(Message(f"$e{room_id[2:7]}{start + i}", room_id, sender if i % 3 else ME, "DEV",
                         int(time.time() * 1000) + i, "text",
                         f"message {start + i} " + "lorem ipsum dolor sit amet " * (i % 4))
                 for i in range(count))


def open_chat(app: Any, room_id: str, history: int) -> Any:
    from client_tk import bridge as b
    app.screen.room_list.select(room_id)
    app.bridge.post(b.HistoryLoaded(room_id, messages(room_id, history, 0)))
    view = app.screen.conversation.messages
    pump(app.window, lambda: view.loaded)
    return view


def arrive(app: Any, rooms: list[Any], total: int, in_open: int) -> None:
    """``total`` messages arrive: ``in_open`` in the open chat, the rest spread over the others,
    with a fresh snapshot every 50 (the worker coalesces its snapshots every 50 ms).  They are
    built and posted on a thread of their own, as the worker thread posts them (built on the Tk
    thread, the bench's own work counted as stalls of the client)."""
    import dataclasses
    import threading

    from client_tk import bridge as b
    from client_tk.core.events import MessageReceived
    current = app.screen.conversation.room.room_id
    others = [r for r in rooms if r.room_id != current]

    def produce() -> None:  # on its own thread, as the worker does: the Tk loop only consumes
        unread: dict[str, int] = {}
        now = int(time.time() * 1000)
        for i in range(total):
            room = current if i < in_open else others[i % len(others)].room_id
            [message] = messages(room, 1, 100_000 + i)
            app.bridge.post(MessageReceived(dataclasses.replace(message, ts=now + i), own=False))
            if room != current:
                unread[room] = unread.get(room, 0) + 1
            if i % 50 == 49:
                fresh = tuple(dataclasses.replace(r, unread=unread.get(r.room_id, 0), last_ts=now + i)
                              if r.room_id in unread else r for r in rooms)
                app.bridge.post(b.RoomsSnapshot(fresh, ()))
                if i % 500 == 499:  # a sync batch's worth at a time, as the worker posts them
                    while app.bridge.events.qsize() >= 100:
                        time.sleep(0.005)

    producer = threading.Thread(target=produce, name="bench-producer")
    producer.start()
    view = app.screen.conversation.messages
    pump(app.window, lambda: not producer.is_alive() and not app.bridge.events.qsize() and not view._queue)
    producer.join()
    app.window.update()


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(name: str, folder: Path) -> dict[str, float]:
    if name == "bare":
        import tkinter as tk
        root = tk.Tk()
        root.geometry("1000x680")
        probe = Probe(root)
        began = time.monotonic()
        pump(root, lambda: time.monotonic() - began > 2.0)
        return {"bare_tk_ms": round(probe.longest * 1000, 1)}
    app, rooms = setup(folder)
    if name == "rss":
        open_chat(app, rooms[-1].room_id, 2000)
        arrive(app, rooms, 18_000, 0)
        return {"rss_mb": round(rss_mb(), 1)}
    if name == "arrive":
        open_chat(app, rooms[-1].room_id, 50)
        probe = Probe(app.window)
        arrive(app, rooms, 2000, 1000)
        return {"stall_arrive_ms": round(probe.longest * 1000, 1)}
    if name == "open":
        open_chat(app, rooms[-1].room_id, 20)
        probe = Probe(app.window)
        open_chat(app, rooms[500].room_id, 2000)
        app.window.update()
        return {"stall_open_ms": round(probe.longest * 1000, 1)}
    if name == "click":
        import statistics
        samples = []
        for i in (100, 300, 500, 700, 900):
            row = rooms[i].room_id
            app.screen.room_list.yview("moveto", str(app.screen.room_list.order_ids().index(row) / ROOMS))
            app.window.update()
            began = time.perf_counter()
            open_chat(app, row, 50)
            app.window.update_idletasks()
            samples.append(time.perf_counter() - began)
        return {"open_chat_ms": round(statistics.median(samples) * 1000, 1)}
    raise SystemExit(f"unknown scenario {name}")


if __name__ == "__main__":
    result = main(sys.argv[1], Path(sys.argv[2]))
    print(json.dumps(result), flush=True)
    os._exit(0)  # the figures are out; no need to wait for a worker that was never logged in
