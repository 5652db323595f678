"""CPython's garbage collector, set up for the long-running processes (relay, web).

`gc.freeze()` once start-up is done: the objects alive then (Django, the libraries, the URL
conf: most of a fresh process) go to the permanent generation and are never scanned
again, so a full collection scans only what the process made since. Measured in the
design load (`bench/run.py --scenario b`, 2026-12-01, pauses from `gc.callbacks`, one run
each): the relay's six full collections took 80-172 ms before (the last four 130-172 ms),
11-85 ms after (the first 85 ms, the rest 11-41 ms); every frame in flight waits out such
a pause. A web process's full collections are dominated by
its sockets' objects (made after start-up; 380-840 ms while 1,000 sockets connect), which
freezing does not reach. A larger first-generation threshold (50,000) was tried and
dropped: the web's younger collections grew to 60-140 ms.

Most of those sockets' objects turned out to be a copy of the course each socket kept (its
`Access` held the race with its course: 2.8 million lists in a web process of 1,000
sockets, 1.1 GiB; full collections grew to 0.2-1.3 s). Without it (`races.spectators.
access.spectator_access`), the same load: 330 MiB for both web processes, one full
collection per web process in the 30 s window, 42-61 ms (`gc.callbacks`, 2026-12-01).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def tune_for_long_running_process() -> None:
    """Call once, after start-up imports and before serving."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def collections_deferred() -> Iterator[None]:
    """Run a burst of short-lived objects (a frame parsed, encoded, merged and sent)
    without the collector, which runs again after it.

    While a web process handles a 1,000-athlete frame, the frame's thousands of dicts live
    long enough to be promoted by the young collections that its own allocations trigger;
    those promotions set off full collections, and a full collection walks every object of
    the process's sockets. Measured in the design load (scenario b, 2026-12-01,
    `gc.callbacks`) while each socket still held a copy of the course (the module docstring): full
    collections every ~3 s per web process, 388-564 ms each; a frame arriving meanwhile
    reached that process's spectators 100-490 ms after the other process's. What the
    deferral alone is worth without that copy was not measured separately; it is kept
    because it costs nothing. Objects freed by reference counting inside the block never
    reach the collector at all. Nesting and interleaved coroutines are safe: only the block
    that disabled the collector enables it again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
