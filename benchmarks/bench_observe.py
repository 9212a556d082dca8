"""``observe-sdk bench``'s configurations under pytest-benchmark, which keeps their history.

    .venv/bin/python -m pytest benchmarks/bench_observe.py --benchmark-only --benchmark-autosave
    .venv/bin/python -m pytest benchmarks/bench_observe.py --benchmark-only --benchmark-compare
    .venv/bin/python -m observe_sdk bench guest-examples/build/fib.instr.wasm \\
        --plain guest-examples/build/fib.wasm --min-span-us 0 -- 25      # the same, as a table

fib(25) (242,785 calls) at a 0 us minimum span: the plain module, each recorder
(run + assembly), and the default recorder followed by each adapter's encode.
One round is one whole run, set up and timed in this process
(:func:`observe_sdk.bench.run_once`); each round's split times (exec,
assemble, encode) and counts are saved with it as ``extra_info``. Peak RSS per
configuration needs a process of its own: ``observe-sdk bench`` reports it.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from observe_sdk.bench import Config, Guest, default_configs, run_once

BUILD = Path(__file__).resolve().parent.parent / "guest-examples" / "build"
GUEST = Guest(str(BUILD / "fib.instr.wasm"), str(BUILD / "fib.wasm"), args=("25",), min_span_us=0)
CONFIGS = default_configs(["otel-stdout", "otlp", "datadog", "zipkin", "stdout", "opentelemetry"])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label.replace(" ", "-"))
def test_observe(benchmark: Any, config: Config) -> None:
    sample = benchmark.pedantic(run_once, args=(GUEST, config), rounds=3 if config.mode != "python" else 1)
    sample.peak_rss_mib = 0.0        # this process's, not the configuration's: see the module docs
    benchmark.extra_info.update(asdict(sample))
