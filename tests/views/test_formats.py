"""The three view formats of one trace, without a browser: chrome-trace, folded, html."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from adapter_traces import make_span, sample_trace

from observe_sdk.adapters import registry
from observe_sdk.trace import Trace, new_trace_id
from observe_sdk.views import chrome_trace, folded_stacks, folded_text, render_html, view_data

ROOT = Path(__file__).resolve().parents[2]


def test_chrome_trace_has_a_complete_event_per_span_and_instants_for_logs_and_metrics() -> None:
    trace = sample_trace()
    doc = chrome_trace([trace])
    events = doc["traceEvents"]
    spans = {e["name"]: e for e in events if e["ph"] == "X"}
    assert set(spans) == {"run", "main", "statsd", "log_write", "grow", "crash"}
    run, main = spans["run"], spans["main"]
    assert run["args"]["user"] == "alice" and run["args"]["wasm.span.kind"] == "manual"
    assert main["args"]["function.raw_name"] == "raw_main"
    assert run["ts"] <= main["ts"] and main["ts"] + main["dur"] <= run["ts"] + run["dur"]
    assert main["dur"] == 90.0                                   # microseconds
    assert spans["crash"]["args"]["error.message"] == "trap: unreachable"
    instants = [e for e in events if e["ph"] == "i"]
    assert {e["name"] for e in instants} == {"log ERROR", "log INFO", "metric"}
    assert next(e for e in instants if e["name"] == "metric")["args"]["metric.value"] == "vowels.count:1|c|#lang:en"
    assert [e["args"] for e in events if e["ph"] == "C"] == [{"pages": 2}]
    assert {(e["pid"], e["tid"]) for e in events} == {(1, 1)}
    assert doc["otherData"]["spans"] == 6


def test_chrome_trace_puts_each_trace_on_its_own_track() -> None:
    first, second = sample_trace("a.wasm"), sample_trace("b.wasm")
    events = chrome_trace([first, second])["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {1: "a.wasm", 2: "b.wasm"}
    assert sum(1 for e in events if e["ph"] == "X" and e["pid"] == 2) == 6


def test_folded_stacks_sum_self_time_per_stack() -> None:
    # a(0..100) -> b(10..40), b(50..70) -> c(55..60): self a = 50, b = 45, c = 5
    c = make_span("c", 55, 60)
    a = make_span("a", 0, 100, make_span("b", 10, 40), make_span("b", 50, 70, c))
    trace = Trace(trace_id=new_trace_id(), roots=[a])
    assert dict(folded_stacks([trace])) == {"a": 50_000, "a;b": 45_000, "a;b;c": 5_000}
    assert folded_text([trace]) == "a 50\na;b 45\na;b;c 5\n"


def test_folded_frames_cannot_break_the_format() -> None:
    trace = Trace(trace_id=new_trace_id(), roots=[make_span("x;y\nz", 0, 3)])
    assert folded_text([trace]) == "x y z 3\n"


def _decode(data: dict) -> list[tuple[str, int, int, int]]:
    """(name, parent row, start, duration) per row, as the page's script decodes them."""
    rows, clock = [], 0
    for i, (p, s, d, n) in enumerate(zip(data["p"], data["s"], data["d"], data["n"], strict=True)):
        clock += s
        rows.append((data["ids"][n][0], i - p if p else -1, clock, d))
    return rows


def test_view_data_keeps_the_tree_times_and_details() -> None:
    trace = sample_trace()
    data = view_data([trace])
    rows = _decode(data)
    names = [r[0] for r in rows]
    assert names == ["run", "main", "statsd", "log_write", "grow", "crash"]
    assert [names[r[1]] if r[1] >= 0 else None for r in rows] == [None, "run", "main", "main", "main", None]
    assert rows[1][3] == 90_000 and rows[1][2] - rows[0][2] == 10_000
    extra = data["x"]
    assert extra["0"]["tags"] == ["user:alice", "region:eu"]
    assert extra["2"]["metrics"][0][1:] == ["statsd", "vowels.count:1|c|#lang:en"]
    assert extra["3"]["logs"][0][1:] == ["ERROR", "Vowels Counted: 3"]
    assert extra["4"]["alloc"] == 2 and extra["5"]["error"] == "trap: unreachable"
    assert data["tracks"][0]["events"]["logs"][0][1:] == ["INFO", "starting"]
    assert data["ids"][1] == ["main", "raw_main", data["ids"][1][2], 0]


def test_html_is_one_file_that_fetches_nothing_and_escapes_names() -> None:
    trace = Trace(trace_id=new_trace_id(), roots=[make_span("</script><b>x", 0, 5)], module_name="m<1>.wasm")
    page = render_html([trace])
    assert "</script><b>" not in page and "m&lt;1&gt;.wasm" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)     # no CDN, no remote anything
    embedded = page.split('type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["ids"][0][0] == "</script><b>x"


def test_adapters_are_registered_and_write_their_file(tmp_path) -> None:
    for name, suffix in (("chrome-trace", "json"), ("folded", "folded"), ("html", "html")):
        assert name in registry.names()
        out = tmp_path / f"trace.{suffix}"
        adapter = registry.create(name, out=str(out))
        adapter.submit(sample_trace())
        assert adapter.shutdown(5).complete
        text = out.read_text()
        assert text and ("run" in text)
    assert json.loads((tmp_path / "trace.json").read_text())["otherData"]["spans"] == 6


def test_unwritable_out_is_one_clear_error(tmp_path) -> None:
    import pytest

    with pytest.raises(ValueError, match="cannot write to .*nowhere"):
        registry.create("html", out=str(tmp_path / "nowhere" / "trace.html"))


def test_observe_sdk_run_writes_an_html_view(tmp_path) -> None:
    out = tmp_path / "trace.html"
    proc = subprocess.run([sys.executable, "-m", "observe_sdk", "run", "guest-examples/build/vowels.instr.wasm",
                           "--adapter", "html", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text().split('type="application/json">', 1)[1].split("</script>", 1)[0])
    names = {i[0] for i in data["ids"]}
    assert {"main", "run", "statsd", "log_write"} <= names


def test_without_out_the_document_owns_stdout() -> None:
    proc = subprocess.run([sys.executable, "-m", "observe_sdk", "run", "guest-examples/build/vowels.instr.wasm",
                           "--adapter", "chrome-trace"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["otherData"]["spans"] > 10        # only the document: it parses
    assert "Vowels: 3" in proc.stderr
