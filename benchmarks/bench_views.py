"""The HTML trace view of fib(25): file size, render time, and load time in headless Chromium.

    .venv/bin/python benchmarks/bench_views.py            # fib(25) at --min-span-us 0 and 20

Runs ``observe-sdk run guest-examples/build/fib.instr.wasm --adapter html`` at each
threshold, then opens the page in headless Chromium (tests/views/views_browser.py) and
reports the time from navigation until the page's own script has drawn its first frame
(``window.traceView.loadMs``), with how many bars it drew and how many spans it merged, and
how long one redraw (what each zoom or pan step costs) takes.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "views"))

from views_browser import chromium, wait_for  # noqa: E402

FIB = ROOT / "guest-examples" / "build" / "fib.instr.wasm"
# the mean time of a redraw, as after each wheel or drag step
FRAME_MS = """const v = window.traceView, t = performance.now();
for (let k = 0; k < 10; k++) v.draw();
return (performance.now() - t) / 10;"""


def build(out: Path, min_span_us: float) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "observe_sdk", "run", str(FIB), "--adapter", "html", "--out", str(out),
                    "--min-span-us", str(min_span_us), "--", "25"], cwd=ROOT, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pages = {us: Path(tmp) / f"fib25-{us:g}us.html" for us in (0.0, 20.0)}
        seconds = {us: build(path, us) for us, path in pages.items()}
        with chromium() as browser:
            for us, path in pages.items():
                browser.get(path.as_uri())
                wait_for(browser, "window.traceView && window.traceView.ready", timeout=120)
                load_ms = browser.execute_script("return window.traceView.loadMs")
                spans = browser.execute_script("return window.traceView.spanCount")
                stats = browser.execute_script("return window.traceView.stats()")
                frame_ms = browser.execute_script(FRAME_MS)
                print(f"fib(25) at {us:g} us: {spans:,} spans, {path.stat().st_size / 2**20:.1f} MiB, "
                      f"run + write {seconds[us]:.1f} s, load {load_ms / 1000:.2f} s in Chromium; first frame: "
                      f"{stats['bars']:,} bars, {stats['merged']:,} spans merged into {stats['blocks']:,} blocks; "
                      f"a frame (timeline + flame graph) {frame_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
