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
"""

from __future__ import annotations

import gc


def tune_for_long_running_process() -> None:
    """Call once, after start-up imports and before serving."""
    gc.collect()
    gc.freeze()
