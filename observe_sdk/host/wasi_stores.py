"""Which ``wasmtime.Store`` objects have WASI: the in-wasm recorder must know.

The in-wasm recorder reads the clock through WASI's ``clock_time_get``, and
wasmtime aborts the whole process (a Rust panic, no exception) when a WASI
function runs in a store that has no WASI context.  wasmtime offers no way to
ask a store whether it has one, so observe_sdk watches the stores being made:
while tracking is on, ``wasmtime.Store.__init__`` and ``Store.set_wasi`` are
wrapped to note, for each store, whether ``set_wasi`` was called on it.  The
notes are kept here, by weak reference; nothing is written onto the stores.

``import observe_sdk`` turns tracking on, so that ``recorder="auto"`` (the
default) picks the fast recorder for a store made afterwards with WASI.  To
leave ``wasmtime.Store`` untouched, set ``OBSERVE_SDK_TRACK_WASI=0`` in the
environment before the import, or call :func:`untrack_wasi_stores` (it restores
the original methods).  A store made while tracking is off is "unknown":
``recorder="auto"`` gives it the Python recorder, ``recorder="wasm"`` trusts
the caller that it has WASI.
"""
from __future__ import annotations

import functools
import threading
import weakref
from typing import Any

import wasmtime

ENV_SWITCH = "OBSERVE_SDK_TRACK_WASI"
"""``0`` in the environment when observe_sdk is imported: do not track stores."""

_has_wasi: weakref.WeakKeyDictionary[wasmtime.Store, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_originals: dict[str, Any] = {}


def track_wasi_stores() -> None:
    """Note, for every store made from now on, whether it has WASI (idempotent)."""
    with _lock:
        if _originals:
            return
        init, set_wasi = wasmtime.Store.__init__, wasmtime.Store.set_wasi

        @functools.wraps(init)
        def __init__(self: wasmtime.Store, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            _has_wasi[self] = False

        @functools.wraps(set_wasi)
        def set_wasi_tracked(self: wasmtime.Store, wasi: wasmtime.WasiConfig) -> None:
            set_wasi(self, wasi)
            _has_wasi[self] = True

        _originals.update(__init__=init, set_wasi=set_wasi)
        wasmtime.Store.__init__ = __init__  # type: ignore[method-assign]
        wasmtime.Store.set_wasi = set_wasi_tracked  # type: ignore[method-assign]


def untrack_wasi_stores() -> None:
    """Restore ``wasmtime.Store``'s own methods; stores made from now on are "unknown"."""
    with _lock:
        if not _originals:
            return
        wasmtime.Store.__init__ = _originals.pop("__init__")  # type: ignore[method-assign]
        wasmtime.Store.set_wasi = _originals.pop("set_wasi")  # type: ignore[method-assign]


def is_tracking() -> bool:
    return bool(_originals)


def store_has_wasi(store: wasmtime.Store) -> bool | None:
    """True or False as noted for ``store``; None when it was made while tracking was off."""
    return _has_wasi.get(store)


__all__ = ["ENV_SWITCH", "track_wasi_stores", "untrack_wasi_stores", "is_tracking", "store_has_wasi"]
