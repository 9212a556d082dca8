"""Pause the cyclic garbage collector while building large, acyclic object graphs.

Assembling or encoding a trace allocates hundreds of thousands of small
objects and no cycles; letting the collector scan them repeatedly costs more
than the work itself (2-3x, measured in benchmarks/bench_core.py).

When the pause ends, what was allocated meanwhile is still young in the
collector's eyes: its next passes would walk the whole trace again, and the
full collections it then triggers walk the host's whole heap too (a host with
a 300,000-object heap paid 4x the assembly and text encoding of a 242,000-span
trace for them).  So the objects are moved to the oldest generation on the way
out (``gc.freeze()`` then ``gc.unfreeze()``: two list splices, no scan), where
the trace is freed by reference counting as usual.  A host that froze objects
itself (``gc.freeze()`` before forking workers) is left as it is: unfreezing
would undo that.
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
