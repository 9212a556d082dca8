"""``cod job trace --format ...`` and the API's trace formats: the network's spans and the guest's in one view."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cod_cli import cod_cli
from cod_reference.traceview import records_to_trace


@pytest.fixture()
def cod(views_stack: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return cod_cli(views_stack.port, capsys, monkeypatch)


def test_records_become_one_trace_with_the_guest_inside_call(views_client: Any, vowels_job: str) -> None:
    records = views_client.trace(vowels_job, "records")["Spans"]
    trace = records_to_trace(records, "job x")
    spans = list(trace.spans())
    assert len(spans) == len(records)
    by_name = {s.name: s for s in spans}
    call = by_name["call"]
    guest = {s.name for s in call.walk()}
    assert {"main", "run", "statsd", "log_write"} <= guest
    assert not by_name["main"].manual and by_name["main"].raw_name == "main" and by_name["main"].function_index
    assert by_name["run"].manual and "vowels:3" in next(s for s in spans if s.name == "printf" and s.manual).tags
    log_write = by_name["log_write"]
    assert [(e.severity, e.message) for e in log_write.events if hasattr(e, "message")] == \
        [("ERROR", "Vowels Counted: 3")]
    # the network's spans enclose the guest's: submit is a root, call is below execution
    stack = []
    s = call
    parents = {c.span_id: p for p in spans for c in p.children}
    while s is not None:
        stack.append(s.name)
        s = parents.get(s.span_id)
    assert "execution" in stack and stack[-1] == "submit"


def test_job_trace_formats(cod: Any, vowels_job: str, tmp_path: Path) -> None:
    code, out, _ = cod("job", "trace", vowels_job)
    assert code == 0 and "\n  submit  " in out and "log_write" in out
    code, out, _ = cod("job", "trace", vowels_job, "--format", "folded")
    assert code == 0
    stacks = dict(line.rsplit(" ", 1) for line in out.splitlines())
    assert any(s.startswith("submit;") and s.endswith(";call;_start.command_export;_start;__original_main;"
                                                     "__main_void;main;run;emit_log;write_log;log_write")
               for s in stacks)
    code, out, _ = cod("job", "trace", vowels_job, "--format", "chrome-trace", "--out", str(tmp_path / "t.json"))
    assert code == 0 and "written to" in out
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    names = {e["name"] for e in events if e["ph"] == "X"}
    assert {"submit", "execution", "call", "main", "log_write"} <= names
    assert any(e["ph"] == "i" and e["name"] == "log ERROR" for e in events)
    code, out, _ = cod("job", "trace", vowels_job, "--format", "html", "--out", str(tmp_path / "t.html"))
    assert code == 0
    page = (tmp_path / "t.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "log_write" in page
    code, out, _ = cod("job", "trace", vowels_job, "--format", "json")
    assert code == 0 and json.loads(out)["resourceSpans"]


def test_api_serves_the_views(views_client: Any, views_stack: Any, vowels_job: str) -> None:
    import httpx

    base = f"{views_stack.url}/api/v1/orchestrator/jobs/{vowels_job}/trace"
    page = httpx.get(base, params={"format": "html"}, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "views-vowels" in page.text
    folded = httpx.get(base, params={"format": "folded"}, timeout=30)
    assert ";log_write " in folded.text
    bad = httpx.get(base, params={"format": "svg"}, timeout=30)
    assert bad.status_code == 400


def test_demo_prints_the_tree_writes_the_page_and_names_the_web_ui(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cod_reference.demo import main as demo

    assert demo(["--html", str(tmp_path / "trace.html"), "--computes", "1"]) == 0
    out = capsys.readouterr().out
    assert "log_write" in out and "Vowels: 3" in out
    assert f"the trace view (timeline, flame graph, span details; one file, works offline): {tmp_path}" in out
    assert "== web UI: http://127.0.0.1:" in out and "COD_DEMO_KEEP=1 make demo" in out
    assert "log_write" in (tmp_path / "trace.html").read_text()


def _record(span_id: str, parent: str, name: str, start: int, end: int) -> dict[str, Any]:
    return {"traceId": "ab" * 16, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
            "startTimeUnixNano": start, "endTimeUnixNano": end, "attributes": {}, "events": [],
            "status": {"code": 0, "message": ""}, "service": "cod", "scope": "test"}


def test_a_corrupt_store_loses_no_span() -> None:
    records = [_record("a", "", "root", 0, 100), _record("b", "c", "loop1", 10, 20),
               _record("c", "b", "loop2", 30, 40), _record("d", "zz", "orphan", 50, 60),
               _record("a", "", "again", 70, 80)]
    trace = records_to_trace(records)
    names = sorted(s.name for s in trace.spans())
    assert names == ["again", "loop1", "loop2", "orphan", "root"]
    assert [s.name for s in trace.root_spans] == ["root", "loop1", "orphan", "again"]
