"""An interruptible ``poll_oneoff`` for sleeping guests.

Epoch interruption stops a guest only while it runs Wasm code; a guest blocked in a
host call is out of its reach, and WASI's ``poll_oneoff`` is how guests sleep (C's
``sleep``, Rust's ``thread::sleep``, Go's ``time.Sleep``). So a guest sleeping for an
hour would hold its worker thread for an hour, whatever its timeout.

:func:`define_interruptible_sleep` shadows ``wasi_snapshot_preview1::poll_oneoff`` in an
execution's linker: a poll that only waits on relative clock timeouts (a plain sleep)
is served here, waiting on the execution's :class:`~.interrupt.Interrupter` so that a
timeout or cancellation ends it at once; any other poll (file descriptors, absolute
deadlines) goes to wasmtime's own implementation unchanged.
"""

from __future__ import annotations

import struct

import wasmtime

from ..errors import CodError
from .interrupt import Interrupter

__all__ = ["Interrupted", "define_interruptible_sleep"]

WASI = "wasi_snapshot_preview1"
_SUBSCRIPTION_SIZE = 48     # subscription_t: userdata u64, tag u8 @8, clock {id u32 @16, timeout u64 @24, ...}
_EVENT_SIZE = 32            # event_t: userdata u64, error u16 @8, type u8 @10, fd_readwrite @16
_TAG_CLOCK = 0
_FLAG_ABSTIME = 1
_ERRNO_SUCCESS = 0
_ERRNO_FAULT = 21
_MAX_SUBSCRIPTIONS = 4096


class Interrupted(CodError):
    """Raised out of the host call to unwind a sleeping guest that must stop."""


def define_interruptible_sleep(linker: wasmtime.Linker, store: wasmtime.Store, interrupter: Interrupter) -> None:
    """Shadow ``poll_oneoff`` (WASI must already be defined in ``linker`` and set on ``store``)."""
    original = linker.get(store, WASI, "poll_oneoff")
    if not isinstance(original, wasmtime.Func):  # pragma: no cover - wasmtime always defines it
        return
    i32 = wasmtime.ValType.i32()
    ty = wasmtime.FuncType([i32, i32, i32, i32], [i32])

    def poll_oneoff(caller: wasmtime.Caller, in_ptr: int, out_ptr: int, nsubs: int, nevents_ptr: int) -> int:
        memory = caller.get("memory")
        in_ptr, out_ptr, nevents_ptr = in_ptr & 0xFFFFFFFF, out_ptr & 0xFFFFFFFF, nevents_ptr & 0xFFFFFFFF
        if not isinstance(memory, wasmtime.Memory) or not 0 < nsubs <= _MAX_SUBSCRIPTIONS:
            return original(caller, in_ptr, out_ptr, nsubs, nevents_ptr)
        size = memory.data_len(caller)
        if in_ptr + nsubs * _SUBSCRIPTION_SIZE > size:
            return _ERRNO_FAULT
        raw = memory.read(caller, in_ptr, in_ptr + nsubs * _SUBSCRIPTION_SIZE)
        subs = []
        for i in range(nsubs):
            userdata, tag = struct.unpack_from("<QB", raw, i * _SUBSCRIPTION_SIZE)
            _clock_id, timeout_ns, _precision, flags = struct.unpack_from("<IxxxxQQH", raw, i * _SUBSCRIPTION_SIZE + 16)
            if tag != _TAG_CLOCK or flags & _FLAG_ABSTIME:
                return original(caller, in_ptr, out_ptr, nsubs, nevents_ptr)
            subs.append((userdata, timeout_ns))
        wait_ns = min(t for _, t in subs)
        if interrupter.wait(wait_ns / 1e9):
            raise Interrupted(interrupter.reason or "interrupted")
        due = [u for u, t in subs if t == wait_ns]
        if out_ptr + len(due) * _EVENT_SIZE > size or nevents_ptr + 4 > size:
            return _ERRNO_FAULT
        events = b"".join(struct.pack("<QHBxxxxxQHxxxxxx", u, _ERRNO_SUCCESS, _TAG_CLOCK, 0, 0) for u in due)
        memory.write(caller, events, out_ptr)
        memory.write(caller, struct.pack("<I", len(due)), nevents_ptr)
        return _ERRNO_SUCCESS

    linker.define_func(WASI, "poll_oneoff", ty, poll_oneoff, access_caller=True)

