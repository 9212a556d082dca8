"""Keep Python's faulthandler from turning guest traps into process crashes.

wasmtime turns a guest trap (``unreachable`` is a ``ud2`` instruction, an
out-of-bounds access a SIGSEGV) into a ``Trap`` exception with signal handlers
it installs when the first Engine is made.  If :mod:`faulthandler` is enabled
*after* that, its handlers sit on top: a guest trap then prints "Fatal Python
error: Illegal instruction" and kills the host.  Enabled *before* (``python -X
faulthandler``, or at start-up) it is harmless, since wasmtime passes the
faults that are not its own on to it.

:func:`guard_trap_handlers` finds the first case (Linux, glibc: the handler's
owner is looked up with ``dladdr``) and disables faulthandler, with one warning.
"""
from __future__ import annotations

import ctypes
import faulthandler
import logging
import signal
import sys

log = logging.getLogger("observe_sdk")

# the signals wasmtime handles on Linux (SIGBUS is left to whoever had it)
_TRAP_SIGNALS = (signal.SIGILL, signal.SIGSEGV, signal.SIGFPE)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _handler_owner(libc: ctypes.CDLL, signum: int) -> str | None:
    """The file of the shared object whose function handles ``signum`` now."""
    act = ctypes.create_string_buffer(256)  # larger than any struct sigaction
    if libc.sigaction(signum, None, act) != 0:
        return None
    handler = ctypes.c_void_p.from_buffer(act).value  # sa_handler/sa_sigaction is the first field
    if not handler or handler in (1,):  # SIG_DFL, SIG_IGN
        return None
    info = _DlInfo()
    if not libc.dladdr(ctypes.c_void_p(handler), ctypes.byref(info)) or not info.dli_fname:
        return None
    fname: bytes = info.dli_fname
    return fname.decode(errors="replace")


def guard_trap_handlers() -> None:
    """Disable faulthandler when it would take guest traps for fatal errors."""
    if not faulthandler.is_enabled() or not sys.platform.startswith("linux"):
        return
    import ctypes.util  # here: it imports subprocess, which a run without faulthandler never needs

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
        owners = {_handler_owner(libc, s) for s in _TRAP_SIGNALS}
    except (OSError, AttributeError, ValueError):
        return
    if any(owner and "wasmtime" not in owner and _is_python(owner) for owner in owners):
        # faulthandler restores the handlers it found when it was enabled: wasmtime's
        faulthandler.disable()
        log.warning("faulthandler was enabled after wasmtime installed its trap handlers, so every guest "
                    "trap would kill the process; it is now disabled (enable it before the first "
                    "wasmtime.Engine, e.g. with python -X faulthandler, to keep it)")


def _is_python(owner: str) -> bool:
    name = owner.rsplit("/", 1)[-1]
    return "python" in name or owner == sys.executable or name.startswith("_faulthandler")
