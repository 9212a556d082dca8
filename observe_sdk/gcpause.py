"""Pause the cyclic garbage collector while building large, acyclic object graphs.

Assembling or encoding a trace allocates hundreds of thousands of small
objects and no cycles; letting the collector scan them repeatedly costs more
than the work itself (2-3x, measured in benchmarks/bench_core.py).
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
            gc.enable()
