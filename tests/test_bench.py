"""observe-sdk bench: the configurations it runs, the table it prints, its errors."""
from __future__ import annotations

import json

import pytest

from observe_sdk.bench import Config, Guest, count_events, make_encoder, run_once
from observe_sdk.cli import main
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace
from sdk_helpers import GUESTS

FIB = GUESTS / "build" / "fib.instr.wasm"
FIB_PLAIN = GUESTS / "build" / "fib.wasm"


def test_one_run_in_process() -> None:
    guest = Guest(str(FIB), str(FIB_PLAIN), args=("12",), min_span_us=0)
    sample = run_once(guest, Config("wasm", "otel-stdout"))
    assert sample.spans > 12 and sample.events >= 2 * sample.spans
    assert sample.encoded_bytes > 0 and sample.exec_s > 0 and sample.assemble_s > 0 and sample.peak_rss_mib > 0
    plain = run_once(guest, Config("plain"))
    assert plain.spans == 0 and plain.encode_s == 0


def test_the_table_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", str(FIB), "--plain", str(FIB_PLAIN), "--rounds", "1", "--min-span-us", "0",
                 "--adapter", "otel-stdout", "--adapter", "otlp", "--json", "--", "10"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    rows = {row["config"]: row for row in data["rows"]}
    assert list(rows) == ["plain", "recorder python", "recorder wasm", "adapter otel-stdout", "adapter otlp"]
    assert rows["recorder wasm"]["spans"] == rows["recorder python"]["spans"] > 100    # fib(10): 177 calls
    assert rows["adapter otlp"]["encoded_bytes"] > 0 and rows["adapter otel-stdout"]["x_otlp_json_encode"] == 1.0
    assert all(row["peak_rss_mib"] > 0 and row["x_plain_process"] > 0 for row in rows.values())


def test_a_module_that_is_not_instrumented_is_instrumented_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", str(FIB_PLAIN), "--rounds", "1", "--adapter", "stdout", "--", "8"]) == 0
    out = capsys.readouterr().out
    assert "adapter stdout" in out and "recorder wasm" in out and "x JSON" in out


def test_bad_input_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"not wasm")
    assert main(["bench", str(junk)]) == 2
    assert "no \\0asm magic" in capsys.readouterr().err
    assert main(["bench", str(FIB), "--adapter", "no-such"]) == 2
    assert "unknown adapter(s) no-such; installed: " in capsys.readouterr().err
    assert main(["bench", str(FIB), "--invoke", "nope", "--adapter", "stdout"]) == 2   # refused before any run
    assert "no exported function 'nope'" in capsys.readouterr().err
    assert main(["bench", str(FIB), "--adapter", "no-such"]) == 2
    assert "unknown adapter(s) no-such; installed: " in capsys.readouterr().err
    assert main(["bench", str(FIB), "--plain", str(FIB_PLAIN), "--rounds", "1", "--adapter", "honeycomb",
                 "--", "5"]) == 0
    out = capsys.readouterr().out
    assert "adapter honeycomb      skipped: adapter honeycomb: the honeycomb adapter needs an API key" in out


def test_encoders_and_counts() -> None:
    guest = Guest(str(FIB), None, args=("6",), min_span_us=0)
    assert run_once(guest, Config("plain")).spans == 0      # no-op hooks
    encode, release = make_encoder("stdout")
    leaf = Span("leaf", "leaf", 2, 10, 20, events=[Log(3, "hi", 15), Allocation(1, 16)])
    trace = Trace(b"\x01" * 16, roots=[Metric(1, "m:1|c", 5), Span("main", "main", 1, 0, 30, events=[leaf])])
    assert encode(trace) > 0
    release()
    assert count_events(trace) == (2, 2 * 2 + 3)       # a metric, a log, an allocation
