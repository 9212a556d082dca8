"""Stopping a running guest on timeout or cancellation, by epoch interruption.

The executor's engine has ``epoch_interruption`` on. Every store gets an epoch
deadline callback (wasmtime's C API, reached through wasmtime-py's ffi): when the
engine's epoch moves past the store's deadline, wasmtime calls it at the guest's next
function entry or loop back-edge, and it either lets the guest continue for one more
tick or, once this execution's :class:`Interrupter` has fired, returns an error that
unwinds the guest.

Because the epoch is shared by every store of the engine, one execution's timer only
bumps it; each store decides for itself. An :class:`Interrupter` runs a small watcher
thread that fires at the deadline or when the cancel event is set, and then keeps
bumping the epoch until the execution is over (so a store created a moment later, or a
guest that was inside a host call, is caught at its next check too).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

import wasmtime
from wasmtime import _ffi as ffi

__all__ = ["Interrupter"]

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_CONTINUE = 0            # WASMTIME_UPDATE_DEADLINE_CONTINUE
_POLL_S = 0.05           # how often the watcher looks at the cancel event / re-bumps the epoch
_LIMIT_POLL_S = 0.2      # how often it calls the limit check
INTERRUPTED_MESSAGE = "cod: execution interrupted"


class Interrupter:
    """Watches one execution's deadline and cancel event; stops its stores when either fires.

    ``limit``, when given, is called by the watcher a few times a second and returns a
    message when the execution must stop for another reason (say, too much output); the
    reason is then ``"limit"`` and the message is in :attr:`detail`.

    Use as a context manager around the execution; :attr:`reason` is ``"timeout"``,
    ``"cancelled"`` or ``"limit"`` once it fired, else ``None``.
    """

    def __init__(self, engine: wasmtime.Engine, timeout_s: float | None,
                 cancel: threading.Event | None, limit: Callable[[], str | None] | None = None) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.cancel = cancel
        self.limit = limit
        self.reason: str | None = None
        self.detail: str | None = None
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._done = threading.Event()
        self._fired = threading.Event()
        self._thread: threading.Thread | None = None
        self._callbacks: list[object] = []   # keep the ctypes callbacks alive with their stores

    # -- the watcher -------------------------------------------------------
    def __enter__(self) -> Interrupter:
        if self._deadline is not None or self.cancel is not None or self.limit is not None:
            self._thread = threading.Thread(target=self._watch, name="cod-exec-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def check(self) -> str | None:
        """The reason to stop, if any (also checks the clock and the event directly)."""
        if self.reason is None:
            if self.cancel is not None and self.cancel.is_set():
                self.reason = "cancelled"
            elif self._deadline is not None and time.monotonic() >= self._deadline:
                self.reason = "timeout"
            if self.reason is not None:
                self._fired.set()
        return self.reason

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (a guest's sleep); True when this interrupter fired meanwhile."""
        if self.check() is not None:
            return True
        return self._fired.wait(max(0.0, seconds)) or self.check() is not None

    def _watch(self) -> None:
        next_limit_check = time.monotonic()
        while not self._done.is_set():
            if self.check() is not None:
                break
            if self.limit is not None and time.monotonic() >= next_limit_check:
                detail = self.limit()
                if detail is not None:
                    self.detail, self.reason = detail, "limit"
                    self._fired.set()
                    break
                next_limit_check = time.monotonic() + _LIMIT_POLL_S
            wait = _POLL_S if self.cancel is not None or self.limit is not None else None
            if self._deadline is not None:
                remaining = max(0.0, self._deadline - time.monotonic())
                wait = remaining if wait is None else min(wait, remaining)
            self._done.wait(wait)
        while not self._done.is_set():
            self.engine.increment_epoch()
            self._done.wait(_POLL_S)

    # -- the stores ----------------------------------------------------------
    def attach(self, store: wasmtime.Store) -> None:
        """Make ``store`` stop at the next epoch check after this interrupter fires."""

        @_CALLBACK
        def on_deadline(_ctx, _data, delta, kind):  # type: ignore[no-untyped-def]
            if self.reason is not None or self.check() is not None:
                err = ffi.wasmtime_error_new(INTERRUPTED_MESSAGE.encode())
                return ctypes.cast(err, ctypes.c_void_p).value or 0
            delta[0] = 1
            kind[0] = _CONTINUE
            return 0

        self._callbacks.append(on_deadline)
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), on_deadline, None, _NO_FINALIZER)
        store.set_epoch_deadline(1)
