"""Every error observe_sdk raises on purpose, under one root: :class:`ObserveError`.

``except observe_sdk.ObserveError`` catches them all.  Errors about a value the
caller passed are also :class:`ValueError` (or :class:`LookupError` for an
unknown name), so code that catches those keeps working::

    ObserveError
    ├── ModuleFormatError (ValueError)      the bytes are not a module we can read
    │   └── WasmFormatError                 ... with the section and byte offset
    ├── InstrumentError (ValueError)        well formed, but cannot be instrumented
    ├── RecorderUnavailable                 the in-wasm recorder cannot work here
    ├── GuestFault                          what a guest passed cannot be used
    ├── ExportError                         an adapter's export failed for good
    │   └── TransientExportError            ... or for now: retried with backoff
    │       └── BackendRefused              ... nothing listens at the address
    ├── StatsdError (ValueError)            a metric line that is not StatsD
    ├── UnknownAdapterError (LookupError)   no adapter of that name is installed
    └── CliError                            the command line cannot be carried out
"""
from __future__ import annotations


class ObserveError(Exception):
    """The root of observe_sdk's errors."""


# -- reading and instrumenting modules ------------------------------------

class ModuleFormatError(ObserveError, ValueError):
    """The bytes are not a WebAssembly module this reader understands."""


class WasmFormatError(ModuleFormatError):
    """The input is not a well-formed WebAssembly module (the instrumenter's full reader).

    ``section`` names the section being read (``"header"`` before any section) and
    ``offset`` is the byte offset in the module where the problem was found.
    """

    def __init__(self, message: str, *, section: str = "module", offset: int | None = None) -> None:
        self.reason = message
        self.section = section
        self.offset = offset
        where = f"{section} section" if section not in ("module", "header") else section
        if offset is not None:
            where += f" at byte offset {offset} (0x{offset:x})"
        super().__init__(f"malformed wasm: {message} ({where})")


class InstrumentError(ObserveError, ValueError):
    """The module is well formed but cannot (or must not) be instrumented."""


# -- the host ---------------------------------------------------------------

class RecorderUnavailable(ObserveError):
    """The in-wasm recorder cannot work with this store/linker; the message says why."""


class GuestFault(ObserveError):
    """What the guest passed cannot be used; recorded on the trace as an error, never raised into the guest."""


# -- adapters -----------------------------------------------------------------

class ExportError(ObserveError):
    """An export failed for good (the backend refused the payload): the batch is given up."""


class TransientExportError(ExportError):
    """Raised by :meth:`Adapter.export` when trying again later may succeed."""


class BackendRefused(TransientExportError):
    """Nothing listens at the backend's address (the connection was refused outright).

    Retried like any transient failure while the host runs; once :meth:`Adapter.shutdown`
    has begun, one more attempt is made and then the batch is given up: a backend that is
    not there rarely appears within the flush timeout, and the host should not wait it out.
    """


class StatsdError(ObserveError, ValueError):
    """A line that is not valid StatsD; the message names the line and the problem."""


class UnknownAdapterError(ObserveError, LookupError):
    """No adapter of that name is installed."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])


# -- the command line ---------------------------------------------------------

class CliError(ObserveError):
    """One clear line for stderr, and a non-zero exit."""
