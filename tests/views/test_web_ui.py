"""The orchestrator's web UI in headless Chromium (one session for the module): jobs, a job, nodes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from views_browser import wait_for

from cod_reference.models import wasm_job

# counts for far longer than any test runs; the test stops it
FOREVER = (b'(module (func (export "_start") (local $i i64) (loop $l (local.set $i (i64.add (local.get $i) '
           b'(i64.const 1))) (br_if $l (i64.lt_u (local.get $i) (i64.const 1000000000000000))))))')


def state_in_list(job_id: str) -> str:
    return f"(document.querySelector('#jobs tr[data-job=\"{job_id}\"] [data-state]') || {{}}).textContent"


def test_the_page_and_its_files_are_served(views_stack: Any) -> None:
    page = httpx.get(views_stack.url + "/", timeout=10)
    assert page.status_code == 200 and "/ui/app.js" in page.text
    assert httpx.get(views_stack.url + "/ui/app.js", timeout=10).status_code == 200
    assert httpx.get(views_stack.url + "/ui/nothing.js", timeout=10).status_code == 404


def test_jobs_page_shows_a_job_changing_state(browser: Any, views_stack: Any, views_client: Any,
                                               vowels_job: str, shots: Path) -> None:
    browser.get(views_stack.url + "/#/jobs")
    wait_for(browser, f"{state_in_list(vowels_job)} === 'Completed'", what="the vowels job, Completed")
    spec = wasm_job(FOREVER, name="views-forever")
    spec["Labels"] = {"suite": "views"}
    job_id = views_client.submit(spec)["JobID"]
    wait_for(browser, f"{state_in_list(job_id)} === 'Running'", what="the new job, Running, without a reload")
    rows = browser.execute_script("return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.job)")
    assert rows.index(job_id) < rows.index(vowels_job)               # newest first
    browser.save_screenshot(str(shots / "webui-jobs.png"))
    views_client.stop(job_id, "the test is done with it")
    wait_for(browser, f"{state_in_list(job_id)} === 'Stopped'", what="the job, Stopped, without a reload")
    browser.find_element("id", "f-name").send_keys("vowels")
    wait_for(browser, "document.querySelectorAll('#jobs tbody tr[data-job]').length === 1")
    browser.find_element("id", "f-name").clear()
    browser.find_element("id", "f-label").send_keys("suite=views\n")
    wait_for(browser, "[...document.querySelectorAll('#jobs tbody tr[data-job]')].map(r => r.dataset.name)"
                      ".join() === 'views-forever'", what="only the labelled job")


def test_job_page_shows_output_and_the_trace(browser: Any, views_stack: Any, vowels_job: str, shots: Path) -> None:
    browser.get(f"{views_stack.url}/#/jobs/{vowels_job}")
    wait_for(browser, "document.getElementById('stdout').textContent.includes('Vowels: 3')", what="the job's output")
    assert "views-vowels" in browser.find_element("id", "job-title").text
    assert "Completed" in browser.find_element("id", "executions").text
    assert "EntryModule" in browser.find_element("id", "spec").text
    assert browser.find_element("id", "history").text.count("\n") >= 3
    wait_for(browser, "document.querySelector('#results a[data-download$=\".tar.gz\"]')", what="the result's link")
    frame = wait_for(browser, "document.querySelector('iframe.trace')", what="the trace view")
    assert "chrome-trace" in browser.find_element("id", "trace-note").text
    browser.execute_script("arguments[0].scrollIntoView()", frame)
    browser.switch_to.frame(frame)
    try:
        wait_for(browser, "window.traceView && window.traceView.ready", what="the trace view's script")
        names = {b["name"] for b in browser.execute_script("return window.traceView.timelineBars()")}
        assert {"submit", "execution", "call"} <= names
        search = browser.find_element("id", "search")     # the guest's spans, found as a person would
        search.send_keys("log_write")
        wait_for(browser, "document.getElementById('matches').textContent === '1 match'")
        search.send_keys("\n")
        wait_for(browser, "(document.querySelector('#details h3') || {}).textContent === 'log_write'")
        details = browser.find_element("id", "details").text
        assert "ERROR Vowels Counted: 3" in details and "call" in details and "execution" in details
    finally:
        browser.switch_to.default_content()
    browser.save_screenshot(str(shots / "webui-job.png"))


def test_nodes_page(browser: Any, views_stack: Any, shots: Path) -> None:
    browser.get(views_stack.url + "/#/nodes")
    wait_for(browser, "document.querySelectorAll('#nodes tr[data-node]').length === 3", what="three nodes")
    text = browser.find_element("id", "nodes").text
    assert "node-1" in text and "node-2" in text and "CONNECTED" in text and "env=devstack" in text
    browser.save_screenshot(str(shots / "webui-nodes.png"))


def test_with_a_token_the_page_asks_for_it_and_then_shows_the_jobs(browser: Any, tmp_path: Path) -> None:
    from cod_reference.devstack import Devstack

    with Devstack(data_dir=tmp_path / "stack", computes=1, port=0, auth_token="s3cret") as stack:
        assert httpx.get(stack.url + "/", timeout=10).status_code == 200        # the page holds no data
        assert httpx.get(stack.url + "/api/v1/orchestrator/jobs", timeout=10).status_code == 401
        browser.get(stack.url + "/#/nodes")
        wait_for(browser, "!document.getElementById('login').hidden", what="the token prompt after a 401")
        assert "401" in browser.find_element("id", "error").text
        browser.find_element("id", "token").send_keys("s3cret\n")
        wait_for(browser, "document.querySelectorAll('#nodes tr[data-node]').length === 2", what="the nodes")
        browser.execute_script("localStorage.removeItem('cod-token')")
        browser.get(stack.url + "/?token=s3cret#/jobs")                          # or once in the address
        wait_for(browser, "document.getElementById('count').textContent === '0 of 0 jobs'", what="the jobs")
        assert "token" not in browser.current_url


def test_a_job_whose_logs_retention_removed_shows_the_kept_heads_and_says_so(browser: Any, tmp_path: Path) -> None:
    from cod_reference.client import Client
    from cod_reference.compute.policy import NodePolicy
    from cod_reference.devstack import Devstack

    hello = (b'(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
             b' (memory (export "memory") 1) (data (i32.const 16) "hello from before\\n")'
             b' (func (export "_start") (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4)'
             b' (i32.const 18)) (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))')
    with Devstack(data_dir=tmp_path / "stack", computes=0, port=0, heartbeat_interval_s=0.2) as stack, \
            Client(port=stack.port) as client:
        stack.add_compute(policy=NodePolicy(retention_s=0.5, retention_sweep_s=0.1))
        job_id = client.submit(wasm_job(hello))["JobID"]
        assert client.wait(job_id, timeout=30, interval=0.05)["State"]["StateType"] == "Completed"
        browser.get(f"{stack.url}/#/jobs/{job_id}")
        wait_for(browser, "!document.getElementById('logs-note').hidden", what="the note that the logs were removed")
        note = browser.find_element("id", "logs-note").text
        assert "were removed by node node-1's retention (older than 0.5s)" in note and "all of it" in note, note
        assert browser.find_element("id", "stdout").text == "hello from before"
        assert not browser.find_elements("id", "error")
