"""What a compute node's operator decides about the jobs it runs: the limits not in the job spec.

The operator is trusted; job submitters are not (docs/security.md). Every field has a
default that is safe for a node on a shared machine, and a ``cod devstack`` flag.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["NodePolicy", "parse_byte_size", "parse_count", "parse_duration", "parse_optional"]

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
T = TypeVar("T")


@dataclass
class NodePolicy:
    #: ExecutionTimeout of jobs that set none (and no TotalTimeout), in seconds (``--default-execution-timeout``)
    default_execution_timeout_s: float = 1800.0
    #: the longest any execution may run, whatever its ExecutionTimeout, in seconds
    #: (``--max-execution-timeout``; None: as long as the job says)
    max_execution_timeout_s: float | None = None
    #: executions running at once, whatever their CPU requests (``--max-running-executions``)
    max_running_executions: int = 32
    #: bytes an execution may write in its result paths (and read-write inputs), less when the
    #: job's ``Resources.Disk`` says so (``--max-result-size``)
    max_result_bytes: int = 10 * 2**30
    #: hosts, IP addresses or networks (CIDR) that ``urlDownload`` inputs may reach although they
    #: are loopback, link-local, private or multicast (``--allow-url-host``)
    allow_url_hosts: list[str] = field(default_factory=list)
    #: largest ``urlDownload`` input, in bytes (``--max-download-size``)
    max_download_bytes: int = 512 * 2**20
    #: longest time one ``urlDownload`` input may take, in seconds (``--download-timeout``)
    download_timeout_s: float = 300.0
    #: finished executions' outputs, logs and published results are removed after this many
    #: seconds (``--retention``; None keeps them)
    retention_s: float | None = 7 * 86400.0
    #: ... and the oldest are removed while they take more than this many bytes (``--retention-size``)
    retention_bytes: int | None = 10 * 2**30
    #: how often the node looks for finished executions to remove, in seconds (``--retention-sweep``)
    retention_sweep_s: float = 60.0
    #: what is kept on disk of each stream of a failed execution: its first and last half
    failed_stream_keep_bytes: int = 1 << 20


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``12h`` or ``7d``."""
    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _DURATION_UNITS else "s"
    number = raw[:-1] if raw[-1:] in _DURATION_UNITS else raw
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 12h or 7d") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{text!r} must be a positive duration")
    return value


def parse_count(text: str, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{text!r} must be at least {minimum}")
    return value


def parse_byte_size(text: str) -> int:
    """Bytes from ``512MiB`` and the like, refusing zero."""
    from ..models import parse_size  # the spec models only when a size is given

    value = parse_size(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be a positive size")
    return value


def parse_optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """``parse``, with ``none`` (or ``off``) meaning no limit."""
    def parse_or_none(text: str) -> T | None:
        return None if text.strip().lower() in ("none", "off") else parse(text)
    parse_or_none.__name__ = parse.__name__  # argparse names the type in its error message
    return parse_or_none
