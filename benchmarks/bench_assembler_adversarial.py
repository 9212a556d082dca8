"""The assembler against a hostile guest: manual spans and function spans interleaved so
that every exit would have to look past the other kind, side by side with a plain trace.

    .venv/bin/python benchmarks/bench_assembler_adversarial.py

- ``manual-under-functions``: N span-enters, K nested function enters, then N span-exits
  (each span-exit ends a manual span lying under K open function spans), then K exits.
- ``functions-under-manual``: K nested function enters, N span-enters, then K exits (each
  ends a function span lying under N open manual spans), then N span-exits.

Linear work shows as a time ratio near 4 between sizes N and 4N; quadratic as near 16.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: measure this checkout, not whatever is installed
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_core import time_assembly  # noqa: E402

from observe_sdk.abi import EventKind  # noqa: E402
from observe_sdk.assemble import assemble  # noqa: E402
from observe_sdk.host.recorder import EventLog  # noqa: E402
from observe_sdk.names import FunctionNames  # noqa: E402

ENTER, EXIT = int(EventKind.ENTER), int(EventKind.EXIT)
SPAN_ENTER, SPAN_EXIT = int(EventKind.SPAN_ENTER), int(EventKind.SPAN_EXIT)


def hostile_log(pattern: str, n: int) -> EventLog:
    """One of the two patterns with N = K = ``n``."""
    log = EventLog(10 * n)
    t = 0
    functions = range(1, n + 1)
    if pattern == "manual-under-functions":
        for _ in range(n):
            log.add(SPAN_ENTER, "m", t := t + 1)
        for f in functions:
            log.events += (ENTER, f, t := t + 1)
        for _ in range(n):
            log.events += (SPAN_EXIT, 0, t := t + 1)
        for f in reversed(functions):
            log.events += (EXIT, f, t := t + 1)
    elif pattern == "functions-under-manual":
        for f in functions:
            log.events += (ENTER, f, t := t + 1)
        for _ in range(n):
            log.add(SPAN_ENTER, "m", t := t + 1)
        for f in reversed(functions):
            log.events += (EXIT, f, t := t + 1)
        for _ in range(n):
            log.events += (SPAN_EXIT, 0, t := t + 1)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return log


def time_hostile(pattern: str, n: int) -> float:
    log = hostile_log(pattern, n)
    t0 = time.process_time()
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=0)
    elapsed = time.process_time() - t0
    assert sum(1 for _ in trace.spans()) == 2 * n and not trace.errors, trace.errors[:3]
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    print("assembler, hostile guests (CPU s; N = K; side by side in one run):")
    for pattern in ("manual-under-functions", "functions-under-manual"):
        small, large = time_hostile(pattern, n), time_hostile(pattern, 4 * n)
        print(f"  {pattern:24s} N={n:>7,}: {small:7.3f} s   N={4 * n:>7,}: {large:7.3f} s   ratio {large / small:5.1f}")
    asm, enc, spans = time_assembly()
    print(f"  plain 250,000-span trace: assemble {asm:.3f} s ({spans:,} spans kept)")


if __name__ == "__main__":
    main()
