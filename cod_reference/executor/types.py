"""The seam between the compute node and the Wasm executor.

The compute node builds an :class:`ExecutionRequest` from a job's task (module bytes,
argv, environment, mounts, limits) and hands it to
:meth:`cod_reference.executor.wasm.WasmExecutor.run`, which blocks until the guest has
finished and returns an :class:`ExecutionOutcome`. These types are plain dataclasses with
no wasmtime objects in them, so they can be built, logged and compared freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ERROR_KINDS", "ExecutionOutcome", "ExecutionRequest", "Mount"]

#: The values :attr:`ExecutionOutcome.error_kind` may take (besides ``None``): the five of
#: the seam, plus "output" (stdout or stderr grew past the executor's cap), "disk" (the
#: writable mounts grew past ``max_written_bytes``), "request" (the
#: request itself is unusable: a missing mount path, a negative timeout...) and "internal"
#: (a bug in the executor; logged with its traceback).
ERROR_KINDS = ("trap", "timeout", "memory", "module", "cancelled", "output", "disk", "request", "internal")


@dataclass
class Mount:
    """A host directory or file made visible to the guest.

    ``guest_path`` is where the guest sees it (e.g. ``/inputs`` or ``/outputs/result.txt``);
    ``readonly`` mounts refuse writes, creation and removal. A mount whose host path is a
    single file exposes only that file.
    """

    host_path: str
    guest_path: str
    readonly: bool = True


@dataclass
class ExecutionRequest:
    """Everything needed to run one execution of a Wasm job."""

    execution_id: str
    #: The entry module (binary .wasm; WAT text is accepted too).
    module: bytes
    #: Exported function called after instantiation; takes and returns nothing.
    entrypoint: str = "_start"
    #: argv[1:]; argv[0] is supplied by the executor.
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: Inputs read-only, result paths writable.
    mounts: list[Mount] = field(default_factory=list)
    #: ``(module name, bytes)``: instantiated first, in order, and linked by name.
    import_modules: list[tuple[str, bytes]] = field(default_factory=list)
    #: Cap on all the guest's linear memories and tables together, in bytes (``None``: no cap).
    memory_limit_bytes: int | None = None
    #: Cap on the bytes in the writable mounts while the guest runs, checked about once a
    #: second (``None``: no cap); past it the guest is stopped (error kind ``"disk"``).
    max_written_bytes: int | None = None
    #: Wall-clock limit on the whole execution (``None``: no limit).
    timeout_s: float | None = None
    #: Full stdout/stderr are kept in these files ("" = a temporary file, deleted afterwards).
    stdout_path: str = ""
    stderr_path: str = ""
    #: How many leading bytes of each stream are returned in the outcome.
    output_head_bytes: int = 4096
    #: The entry module's name in the guest's trace (``wasm.module``) when its name section has
    #: none: the file name (``""``: the executor's ``argv0``).
    module_name: str = ""


@dataclass
class ExecutionOutcome:
    """What happened when an :class:`ExecutionRequest` ran."""

    #: The guest's exit code; ``None`` when it did not run to an exit (trap, timeout,
    #: compile error, memory cap, cancellation). A normal return from the entrypoint is 0.
    exit_code: int | None
    stdout_head: str
    stderr_head: str
    stdout_truncated: bool
    stderr_truncated: bool
    #: One clear line: "trap: ...", "timeout after 2.0s", "memory limit of 64 MiB
    #: exceeded", "invalid module: ...", "cancelled"; ``None`` when the guest exited
    #: (with any code). With "memory", ``exit_code`` is kept when the guest exited.
    error: str | None
    #: one of :data:`ERROR_KINDS`, or None
    error_kind: str | None
    duration_s: float

    @property
    def succeeded(self) -> bool:
        """True when the guest ran to an exit with code 0."""
        return self.error is None and self.exit_code == 0
