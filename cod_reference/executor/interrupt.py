"""Stopping a running guest on timeout, cancellation or a limit, by epoch interruption.

The executor's engine has ``epoch_interruption`` on. Every store gets an epoch
deadline callback (wasmtime's C API, reached through wasmtime-py's ffi): when the
engine's epoch moves past the store's deadline, wasmtime calls it at the guest's next
function entry or loop back-edge, and it either lets the guest continue for one more
tick or, once this execution's :class:`Interrupter` has fired, returns an error that
unwinds the guest.

Because the epoch is shared by every store of the engine, firing one execution only
bumps it; each store decides for itself. One :class:`Watchdog` thread per engine
watches every running execution (deadlines, cancel events, limit checks), fires the
ones that must stop, and keeps bumping the epoch while a fired execution is still
running (so a store created a moment later, or a guest that was inside a host call, is
caught at its next check too). No thread is started per execution.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable

import wasmtime
from wasmtime import _ffi as ffi

__all__ = ["Interrupter", "Watchdog"]

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, ctypes.c_void_p))
_CONTINUE = 0            # WASMTIME_UPDATE_DEADLINE_CONTINUE
_POLL_S = 0.05           # how often the watchdog looks at cancel events / re-bumps the epoch
_LIMIT_POLL_S = 0.2      # how often it calls an execution's limit check
_MAX_WAIT_S = 3600.0     # longest single wait (a far deadline must not overflow the lock's timeout)
INTERRUPTED_MESSAGE = "cod: execution interrupted"


class Watchdog:
    """One thread that watches the running executions of one engine."""

    def __init__(self, engine: wasmtime.Engine) -> None:
        self.engine = engine
        self._cond = threading.Condition()
        self._active: set[Interrupter] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, interrupter: Interrupter) -> None:
        with self._cond:
            self._active.add(interrupter)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="cod-exec-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()

    def remove(self, interrupter: Interrupter) -> None:
        with self._cond:
            self._active.discard(interrupter)

    def close(self) -> None:
        """Stop the thread (executions still running are no longer watched)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                wait: float | None = None
                bump = False
                for interrupter in list(self._active):
                    if interrupter.poll(now):
                        bump = True
                    due = interrupter.next_poll(now)
                    if due is not None:
                        wait = due if wait is None else min(wait, due)
                if bump:
                    self.engine.increment_epoch()
                    wait = _POLL_S if wait is None else min(wait, _POLL_S)
                self._cond.wait(None if wait is None else min(wait, _MAX_WAIT_S))


class Interrupter:
    """Watches one execution's deadline, cancel event and limit; stops its stores when one fires.

    ``limit``, when given, is called a few times a second and returns a message when
    the execution must stop for another reason (say, too much output); the reason is then
    ``"limit"`` and the message is in :attr:`detail`.

    Use as a context manager around the execution; :attr:`reason` is ``"timeout"``,
    ``"cancelled"`` or ``"limit"`` once it fired, else ``None``.
    """

    def __init__(self, watchdog: Watchdog, timeout_s: float | None, cancel: threading.Event | None,
                 limit: Callable[[], str | None] | None = None) -> None:
        self.watchdog = watchdog
        self.timeout_s = timeout_s
        self.cancel = cancel
        self.limit = limit
        self.reason: str | None = None
        self.detail: str | None = None
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._next_limit_check = time.monotonic()
        self._fired = threading.Event()
        self._callbacks: list[object] = []   # keep the ctypes callbacks alive with their stores

    def __enter__(self) -> Interrupter:
        if self._deadline is not None or self.cancel is not None or self.limit is not None:
            self.watchdog.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.watchdog.remove(self)

    # -- deciding -----------------------------------------------------------------
    def check(self) -> str | None:
        """The reason to stop, if any (looks at the clock and the cancel event directly)."""
        if self.reason is None:
            if self.cancel is not None and self.cancel.is_set():
                self._fire("cancelled")
            elif self._deadline is not None and time.monotonic() >= self._deadline:
                self._fire("timeout")
        return self.reason

    def poll(self, now: float) -> bool:
        """The watchdog's look: also runs the limit check when it is due. True once fired."""
        if self.check() is None and self.limit is not None and now >= self._next_limit_check:
            self._next_limit_check = now + _LIMIT_POLL_S
            detail = self.limit()
            if detail is not None and self.reason is None:
                self.detail = detail
                self._fire("limit")
        return self.reason is not None

    def next_poll(self, now: float) -> float | None:
        """Seconds until this execution next needs the watchdog (None: only when woken)."""
        if self.reason is not None or self.cancel is not None:
            return _POLL_S
        due = None
        if self._deadline is not None:
            due = max(0.0, self._deadline - now)
        if self.limit is not None:
            until_limit = max(0.0, self._next_limit_check - now)
            due = until_limit if due is None else min(due, until_limit)
        return due

    def _fire(self, reason: str) -> None:
        self.reason = reason
        self._fired.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (a guest's sleep); True when this interrupter fired meanwhile."""
        if self.check() is not None:
            return True
        deadline = time.monotonic() + max(0.0, seconds)
        while True:  # in bounded steps: a guest may sleep "forever" (2^64 ns), past what a lock can wait
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.check() is not None
            if self._fired.wait(min(remaining, _MAX_WAIT_S)) or self.check() is not None:
                return True

    # -- the stores ----------------------------------------------------------------
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
