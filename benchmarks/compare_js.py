"""Our ``observe-sdk run`` next to Dylibso's JavaScript Observe SDK on node: the same job (issue #14).

    make bench-js                                   # once: builds the JS peer (needs node and npm)
    .venv/bin/python benchmarks/compare_js.py [--rounds N] [--json] [--timeout S]

The job is fib(25) (``guest-examples/build/fib.instr.wasm``), every span kept (ours:
``--min-span-us 0``; the JS SDK: ``spanFilter.minDurationMicroseconds = 0``), printed by each
SDK's stdout adapter, the output sent to /dev/null:

    ours  .venv/bin/observe-sdk run guest-examples/build/fib.instr.wasm --min-span-us 0 \\
              --adapter stdout --out /dev/null -- 25
    JS    node benchmarks/js_peer/run_fib.mjs guest-examples/build/fib.instr.wasm 25 > /dev/null

Each run is a whole process, start-up included. The rounds are interleaved (ours then JS, then JS
then ours, ...). Measured for each process: wall time, CPU time (its user + system time, from
``os.wait4``; a busy machine disturbs it far less than wall time) and peak RSS (``ru_maxrss``).
Printed: min / median of wall and CPU, the largest peak RSS, and ours ÷ JS.

Before timing, each side runs once with its output kept, and the lines are counted: a JS peer
that printed (nearly) no spans is an error, not a fast result. Without node or the built peer
the script says so and exits 0. Every process is killed after ``--timeout`` seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from child_process import run_measured

ROOT = Path(__file__).resolve().parent.parent
GUEST = "guest-examples/build/fib.instr.wasm"
GUEST_ARGS = ["25"]
OURS = ROOT / ".venv" / "bin" / "observe-sdk"
JS_PEER = ROOT / "benchmarks" / "js_peer"
JS_RUNNER = JS_PEER / "run_fib.mjs"
JS_PACKAGE = JS_PEER / "node_modules" / "@dylibso" / "observe-sdk-stdout"
JS_BUNDLE = JS_PACKAGE / "dist" / "esm" / "index.js"

# Ours prints a header "trace <id> module <name> (<N> spans)", then one line per span; the JS
# stdout adapter prints "<indent> Call to <name> took <N>ns" per span. The guest's own stdout
# ("fib(25) = 75025") goes to the same output on both sides.
OURS_HEADER = re.compile(r"^trace \S+ module .* \((\d+) spans\)$", re.M)
JS_SPAN = re.compile(r"^\s* Call to .* took -?[\d.e+]+ns$", re.M)
MIN_SPAN_SHARE = 0.99           # the JS peer must print at least this share of our spans


@dataclass
class Side:
    name: str
    timed: list[str]                                  # the command that is timed (output to /dev/null)
    checked: list[str]                                # the same, any --out to the file {out}
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    lines: int = 0
    spans: int = 0


def _missing() -> str | None:
    """Why the JS side cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not JS_BUNDLE.is_file():
        return f"the JS peer is not built ({JS_BUNDLE.relative_to(ROOT)} is missing): run `make bench-js` first"
    return None


def _check_output(sides: dict[str, Side], timeout: float) -> None:
    """Run each side once with its output kept: count its lines and spans (this is also the warm-up)."""
    with tempfile.TemporaryDirectory(prefix="compare-js-") as tmp:
        for side in sides.values():
            stdout, telemetry = Path(tmp) / f"{side.name}.stdout", Path(tmp) / f"{side.name}.telemetry"
            args = [arg.replace("{out}", str(telemetry)) for arg in side.checked]
            with open(stdout, "wb") as sink:
                run_measured(args, ROOT, timeout, stdout=sink)
            text = "".join(path.read_text(errors="replace") for path in (stdout, telemetry) if path.exists())
            side.lines = text.count("\n")
            if side.name == "ours":
                header = OURS_HEADER.search(text)
                side.spans = int(header.group(1)) if header else 0
            else:
                side.spans = len(JS_SPAN.findall(text))
    ours, js = sides["ours"], sides["js"]
    if ours.spans == 0:
        raise SystemExit(f"compare_js: our run printed no trace ({ours.lines} lines)")
    if js.spans < MIN_SPAN_SHARE * ours.spans:
        raise SystemExit(f"compare_js: the JS peer printed {js.spans} spans in {js.lines} lines, ours {ours.spans}: "
                         "it does not do the same job (is it broken? rebuild it with `make bench-js`)")


def _node_version() -> str:
    done = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each side (default 5)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a process is killed (300)")
    opts = parser.parse_args(argv)
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")

    why = _missing()
    if why:
        print(f"compare_js: skipped: {why}")
        return 0
    if not OURS.exists():
        raise SystemExit(f"compare_js: {OURS.relative_to(ROOT)} is missing: run `make install` first")

    ours_args = [str(OURS.relative_to(ROOT)), "run", GUEST, "--min-span-us", "0", "--adapter", "stdout", "--out"]
    js_args = ["node", str(JS_RUNNER.relative_to(ROOT))]
    sides = {
        "ours": Side("ours", [*ours_args, os.devnull, "--", *GUEST_ARGS], [*ours_args, "{out}", "--", *GUEST_ARGS]),
        "js": Side("js", [*js_args, GUEST, *GUEST_ARGS], [*js_args, GUEST, *GUEST_ARGS]),
    }
    node = _node_version()
    load_before = os.getloadavg()[0]
    _check_output(sides, opts.timeout)
    for round_no in range(opts.rounds):
        order = list(sides.values())
        if round_no % 2:
            order.reverse()
        for side in order:
            wall, cpu, rss = run_measured(side.timed, ROOT, opts.timeout)
            side.wall.append(wall)
            side.cpu.append(cpu)
            side.rss_mib.append(rss)
        print(f"round {round_no + 1}/{opts.rounds} done", file=sys.stderr)
    load_after = os.getloadavg()[0]

    ours, js = sides["ours"], sides["js"]
    summary: dict[str, Any] = {
        "job": f"{GUEST} {' '.join(GUEST_ARGS)}, every span, stdout adapter, output to /dev/null",
        "rounds": opts.rounds,
        "node": node,
        "cores": os.cpu_count(),
        "load_1min": [round(load_before, 2), round(load_after, 2)],
    }
    for side in sides.values():
        summary[side.name] = {
            "command": " ".join(side.timed),
            "wall_s": side.wall, "cpu_s": side.cpu, "peak_rss_mib": side.rss_mib,
            "wall_min": min(side.wall), "wall_median": statistics.median(side.wall),
            "cpu_min": min(side.cpu), "cpu_median": statistics.median(side.cpu),
            "peak_rss_max": max(side.rss_mib), "output_lines": side.lines, "spans": side.spans,
        }
    summary["ours_over_js"] = {key: _ratio(summary["ours"][key], summary["js"][key])
                               for key in ("wall_min", "wall_median", "cpu_min", "cpu_median", "peak_rss_max")}
    if opts.json:
        print(json.dumps(summary, indent=2))
        return 0

    print(f"fib({GUEST_ARGS[0]}) at a 0 us minimum span, stdout adapter, output to /dev/null; "
          f"{opts.rounds} rounds, interleaved; node {node}")
    print(f"{'':22s} {'wall s min / med':>17s} {'CPU s min / med':>17s} {'peak RSS MiB':>13s} "
          f"{'output lines':>13s} {'spans':>9s}")
    def pair(values: dict[str, float], what: str, digits: int = 2) -> str:
        return f"{values[what + '_min']:8.{digits}f} / {values[what + '_median']:5.{digits}f}"

    for label, side in (("ours (observe-sdk run)", ours), ("JS SDK (node)", js)):
        s = summary[side.name]
        print(f"{label:22s} {pair(s, 'wall')} {pair(s, 'cpu')} {s['peak_rss_max']:13.0f} "
              f"{side.lines:13,d} {side.spans:9,d}")
    r = summary["ours_over_js"]
    print(f"{'ours ÷ JS':22s} {pair(r, 'wall')} {pair(r, 'cpu')} {r['peak_rss_max']:13.2f}")
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} cores"
          + ("; the machine was busy: wall times are noisy, CPU times less so" if max(load_before, load_after)
             > 0.75 * (os.cpu_count() or 1) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
