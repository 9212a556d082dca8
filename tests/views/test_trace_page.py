"""The HTML trace view and our chrome-trace output, in headless Chromium (one session for the module).

What a person would see: the bars of known spans, nested and as wide as their durations;
the details of a clicked span; search; spans below a pixel merged and counted. And the
chrome-trace file opened in a real viewer, speedscope, served from 127.0.0.1.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adapter_traces import at, make_span
from views_browser import ROOT, wait_for

from observe_sdk.abi import LogLevel, MetricFormat
from observe_sdk.trace import Allocation, Log, Metric, Span, Trace, new_trace_id
from observe_sdk.views import chrome_trace_json, folded_text, render_html

SPEEDSCOPE = Path(os.environ.get("VIEWS_SPEEDSCOPE",
                                 ROOT / ".views-tools" / "node_modules" / "speedscope" / "dist" / "release"))


def known_trace() -> Trace:
    """run 0..1000 us { parse 100..400 { lex 150..250 }, emit 500..900 (fails) }, with a tag, a log, a metric
    and memory growth (a counter event in chrome-trace)."""
    lex = make_span("lex", 150, 250, Log(LogLevel.WARN, "odd token", at(200)), tags=["tokens:12"])
    parse = make_span("parse", 100, 400, lex, Allocation(2, at(300)))
    emit = make_span("emit", 500, 900, Metric(MetricFormat.STATSD, "emitted:1|c", at(600)), error="trap: unreachable")
    run = make_span("run", 0, 1000, parse, emit, manual=True, tags=["job:42"])
    return Trace(trace_id=new_trace_id(), roots=[run], module_name="known.wasm", errors=["trap: unreachable"],
                 start_ns=run.start_ns, end_ns=run.end_ns)


def fib_trace(n: int) -> Trace:
    """The spans of a recursive fib(n): every call a span, 100 ns of its own work before each child."""
    clock = at(0)

    def call(k: int) -> Span:
        nonlocal clock
        span = Span("fib", "fib", 1, clock, 0)
        for child in ((k - 1, k - 2) if k > 1 else ()):
            clock += 100
            span.events.append(call(child))
        clock += 100
        span.end_ns = clock
        return span

    root = call(n)
    return Trace(trace_id=new_trace_id(), roots=[root], module_name="fib.wasm", start_ns=root.start_ns,
                 end_ns=root.end_ns)


def open_page(browser: Any, path: Path) -> None:
    browser.get(path.as_uri())
    wait_for(browser, "window.traceView && window.traceView.ready", what="the trace view's script")


def bars(browser: Any) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in browser.execute_script("return window.traceView.timelineBars()") if not b["merged"]}


def click_bar(browser: Any, canvas_id: str, bar: dict[str, Any]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = browser.find_element("id", canvas_id)
    size = canvas.size
    # offsets are from the element's centre
    x = bar["x"] + bar["w"] / 2 - size["width"] / 2
    y = bar["y"] + bar["h"] / 2 - size["height"] / 2
    ActionChains(browser).move_to_element_with_offset(canvas, int(x), int(y)).click().perform()


def test_bars_nest_and_are_as_wide_as_their_spans(browser: Any, shots: Path, tmp_path: Path) -> None:
    page = tmp_path / "known.html"
    page.write_text(render_html([known_trace()]))
    open_page(browser, page)
    seen = bars(browser)
    run, parse, lex, emit = seen["run"], seen["parse"], seen["lex"], seen["emit"]
    assert parse["y"] == lex["y"] - lex["h"] == run["y"] + run["h"] and emit["y"] == parse["y"]
    for child, parent in ((parse, run), (emit, run), (lex, parse)):
        assert parent["x"] - 0.5 <= child["x"] and child["x"] + child["w"] <= parent["x"] + parent["w"] + 0.5
    assert parse["w"] / run["w"] == pytest.approx(0.3, rel=0.01)
    assert emit["w"] / parse["w"] == pytest.approx(4 / 3, rel=0.01)
    assert lex["x"] - parse["x"] == pytest.approx(parse["w"] / 6, rel=0.02)
    flame = {b["name"]: b for b in browser.execute_script("return window.traceView.flameBars()")}
    assert flame["parse"]["y"] == flame["run"]["y"] + flame["run"]["h"] == flame["emit"]["y"]
    assert flame["emit"]["w"] / flame["run"]["w"] == pytest.approx(0.4, rel=0.01)
    assert "Faults (2)" in browser.find_element("id", "faults").text   # the trace's fault and the failed span
    browser.save_screenshot(str(shots / "trace-known.png"))


def test_clicking_a_span_shows_its_details(browser: Any, shots: Path) -> None:
    click_bar(browser, "timeline", bars(browser)["lex"])
    details = browser.find_element("id", "details")
    wait_for(browser, "document.querySelector('#details h3') && "
             "document.querySelector('#details h3').textContent === 'lex'", what="details of lex")
    text = details.text
    for expected in ("raw_lex", "100.0 µs", "tokens:12", "WARN odd token", "parse ← run"):
        assert expected in text, (expected, text)
    click_bar(browser, "timeline", bars(browser)["emit"])
    wait_for(browser, "document.querySelector('#details h3').textContent === 'emit'")
    assert "Error: trap: unreachable" in details.text and "emitted:1|c" in details.text
    assert "self time 400.0 µs" in details.text
    browser.save_screenshot(str(shots / "trace-details.png"))


def test_search_greys_out_the_rest(browser: Any) -> None:
    box = browser.find_element("id", "search")
    box.send_keys("pars")
    wait_for(browser, "document.getElementById('matches').textContent === '1 match'")
    box.clear()
    box.send_keys("\ue00c")     # Escape


def test_a_big_trace_merges_what_is_below_a_pixel(browser: Any, shots: Path, tmp_path: Path) -> None:
    page = tmp_path / "big.html"
    page.write_text(render_html([fib_trace(21)]))     # 35,421 spans
    open_page(browser, page)
    stats = browser.execute_script("return window.traceView.stats()")
    assert stats["merged"] > 30_000 and stats["bars"] + stats["blocks"] < 5_000
    status = browser.find_element("id", "status").text
    assert f"{stats['merged']:,} spans below a pixel merged" in status
    browser.execute_script("window.traceView.select(35420)")
    wait_for(browser, "document.querySelector('#details h3') !== null")
    assert browser.execute_script("return window.traceView.stats()")["bars"] > 0
    browser.save_screenshot(str(shots / "trace-big.png"))


@pytest.fixture(scope="module")
def speedscope(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not (SPEEDSCOPE / "index.html").is_file():
        pytest.skip(f"speedscope is not installed in {SPEEDSCOPE} (make test installs it: mk/views.mk)")
    root = tmp_path_factory.mktemp("speedscope")
    shutil.copytree(SPEEDSCOPE, root, dirs_exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()
    server.server_close()


def test_speedscope_reads_our_chrome_trace(browser: Any, speedscope: tuple[str, Path], shots: Path) -> None:
    url, root = speedscope
    (root / "known.json").write_text(chrome_trace_json([known_trace()]))
    browser.get(f"{url}/index.html#profileURL=/known.json&title=known")
    wait_for(browser, "document.title === 'known - speedscope'", what="speedscope to load the profile")
    browser.save_screenshot(str(shots / "speedscope-timeline.png"))
    browser.find_element("tag name", "body").send_keys("3")      # the sandwich view: a table of frames
    wait_for(browser, "document.body.innerText.includes('Symbol Name')", what="speedscope's sandwich table")
    text = browser.find_element("tag name", "body").text
    lines = text.splitlines()
    # each row: total, self, name {args}; parse: 300 us total, 200 us self
    parse = next(i for i, line in enumerate(lines) if line.startswith("parse {"))
    assert lines[parse - 2].startswith("300.00µs") and lines[parse - 1].startswith("200.00µs")
    assert any(line.startswith("lex {") and '"tokens":"12"' in line for line in lines)
    browser.save_screenshot(str(shots / "speedscope-sandwich.png"))


def test_empty_and_several_traces_load_without_script_errors(browser: Any, tmp_path: Path) -> None:
    empty = Trace(trace_id=new_trace_id(), roots=[Log(LogLevel.INFO, "no spans at all", at(5))],
                  module_name="empty.wasm", start_ns=at(0), end_ns=at(10))
    page = tmp_path / "empty.html"
    page.write_text(render_html([empty]))
    open_page(browser, page)
    assert browser.execute_script("return window.traceView.spanCount") == 0
    assert "0 spans" in browser.find_element("id", "summary").text
    page = tmp_path / "two.html"
    page.write_text(render_html([known_trace(), fib_trace(5)]))
    open_page(browser, page)
    tracks = browser.execute_script("return window.traceView.timelineBars()")
    assert {b["name"] for b in tracks} == {"run", "parse", "lex", "emit", "fib"}
    fib_top = min(b["y"] for b in tracks if b["name"] == "fib")
    assert fib_top > max(b["y"] for b in tracks if b["name"] != "fib")      # its own track, below the first
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def test_spans_that_outlive_their_parent_are_drawn_and_clickable(browser: Any, tmp_path: Path) -> None:
    # a network's asynchronous spans: submit returns at 100 us, its execution runs on to 900 us,
    # and a second root's short span sits on the same row, under the execution
    late = make_span("late", 400, 420)
    first = make_span("submit", 0, 100, make_span("execution", 50, 900), manual=True)
    second = make_span("poll", 380, 440, late, manual=True)
    page = tmp_path / "async.html"
    page.write_text(render_html([Trace(trace_id=new_trace_id(), roots=[first, second], module_name="async")]))
    open_page(browser, page)
    seen = bars(browser)
    assert seen["execution"]["y"] == seen["late"]["y"]
    assert seen["execution"]["w"] / seen["late"]["w"] == pytest.approx(850 / 20, rel=0.02)
    click_bar(browser, "timeline", seen["late"])
    wait_for(browser, "(document.querySelector('#details h3') || {}).textContent === 'late'")
    flame = {b["name"]: b for b in browser.execute_script("return window.traceView.flameBars()")}
    assert flame["execution"]["w"] <= flame["submit"]["w"] + 0.5    # the parent is as wide as what it started


def test_wheel_zooms_around_the_pointer_and_drag_pans(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    page = tmp_path / "zoom.html"
    page.write_text(render_html([known_trace()]))
    open_page(browser, page)
    canvas = browser.find_element("id", "timeline")
    before = bars(browser)["lex"]
    centre_x = before["x"] + before["w"] / 2
    origin = ScrollOrigin.from_element(canvas, int(centre_x - canvas.size["width"] / 2),
                                       int(before["y"] + before["h"] / 2 - canvas.size["height"] / 2))
    ActionChains(browser).scroll_from_origin(origin, 0, -400).perform()      # wheel up: zoom in
    zoomed = wait_for(browser, f"(window.traceView.timelineBars().find(b => b.name === 'lex') || {{w: 0}}).w "
                               f"> {before['w'] * 1.5} && window.traceView.timelineBars().find(b => b.name === 'lex')",
                      what="lex wider after the wheel")
    assert zoomed["x"] <= centre_x <= zoomed["x"] + zoomed["w"]              # still under the pointer
    ActionChains(browser).move_to_element_with_offset(canvas, 0, 0).click_and_hold().move_by_offset(120, 0) \
        .release().perform()
    moved = wait_for(browser, "window.traceView.timelineBars().find(b => b.name === 'lex' && "
                              f"b.x > {zoomed['x'] + 60})", what="lex moved right with the drag")
    assert moved["x"] - zoomed["x"] == pytest.approx(120, abs=3) and moved["w"] == pytest.approx(zoomed["w"])


def test_speedscope_reads_our_folded_stacks(browser: Any, speedscope: tuple[str, Path]) -> None:
    url, root = speedscope
    (root / "known.folded").write_text(folded_text([known_trace()]))
    browser.get(f"{url}/index.html#profileURL=/known.folded&title=folded")
    wait_for(browser, "document.title === 'folded - speedscope'", what="speedscope to load the stacks")
    browser.find_element("tag name", "body").send_keys("3")
    wait_for(browser, "document.body.innerText.includes('Symbol Name')", what="speedscope's sandwich table")
    lines = browser.find_element("tag name", "body").text.splitlines()
    # weights are our microseconds: run 1000 in total, parse 300 in total and 200 of its own
    parse = lines.index("parse")
    assert lines[parse - 2].startswith("300 ") and lines[parse - 1].startswith("200 "), lines[parse - 2:parse + 1]
    assert "lex" in lines and "emit" in lines
