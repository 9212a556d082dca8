"""Admission: a flood of submissions cannot take the network down.

The attacks run against real networks on 127.0.0.1: a client submitting as fast as it can is
held to its token bucket (429 + Retry-After) while the API keeps answering and running jobs
finish; the cap of unfinished jobs refuses the next one with a message naming it and admits
again once jobs finish; the client waits out a 429 within its retry budget. Every loop is
bounded in count and in time, and nothing asserts how fast anything is.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_attacks import PREFIX, no_server_errors, refused

from cod_reference.api_guard import SubmitRateLimit, client_key
from cod_reference.cli import main
from cod_reference.cli.app import build_parser
from cod_reference.cli.stack import admission
from cod_reference.client import APIError, Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job
from cod_reference.models.limits import DEFAULT_MAX_UNFINISHED_JOBS, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE
from cod_reference.procstack import ORCHESTRATOR, ProcessDevstack

JOBS = f"{PREFIX}/jobs"
NOTHING = b'(module (func (export "_start")))'   # a job that ends at once
FINAL = ("Completed", "Failed", "Stopped")


def busy(iterations: int) -> bytes:
    """A module that counts to ``iterations`` (a few 10^9 a second) and returns."""
    return (f'(module (func (export "_start") (local $i i64) (loop $l '
            f'(local.set $i (i64.add (local.get $i) (i64.const 1))) '
            f'(br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))))').encode()


def quick(**kw: Any) -> dict[str, Any]:
    return wasm_job(NOTHING, Publisher={"Type": "noop"}, **kw)


def queued_forever(name: str) -> dict[str, Any]:
    """A job no node can take: it waits in the queue (unfinished, costing no node anything)."""
    doc = wasm_job(NOTHING, name=name, Publisher={"Type": "noop"}, Timeouts={"QueueTimeout": 300})
    doc["Constraints"] = [{"Key": "admission-test", "Operator": "=", "Values": ["no such node"]}]
    return doc


def state(client: Client, job_id: str) -> str:
    return str(client.get_job(job_id)["Job"]["State"]["StateType"])


def wait_until(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def too_many(response: httpx.Response, code: str, *words: str) -> int:
    """A 429 in the API's error shape with a whole number of seconds (at least 1) in Retry-After."""
    body = refused(response, 429, *words)
    assert body["Code"] == code, body
    after = response.headers.get("retry-after", "")
    assert after.isdigit() and int(after) >= 1, response.headers
    return int(after)


# ---------------------------------------------------------------------------------------- the bucket alone


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _passed(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def request(limiter: SubmitRateLimit, host: str = "10.0.0.1", method: str = "PUT",
            path: str = JOBS) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "client": (host, 50000)}
    asyncio.run(limiter(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), json.loads(sent[1]["body"])


def test_the_bucket_gives_a_burst_then_the_rate_and_says_when_to_come_back() -> None:
    clock = Clock()
    limiter = SubmitRateLimit(_passed, rate=2, burst=3, paths=(JOBS,), clock=clock)
    assert [request(limiter)[0] for _ in range(3)] == [200, 200, 200]
    status, headers, body = request(limiter)
    assert status == 429 and headers[b"retry-after"] == b"1"
    assert body["Code"] == "TooManyRequests" and body["Status"] == 429
    assert "too many job submissions from 10.0.0.1" in body["Message"] and "retry after 1 s" in body["Message"]
    assert request(limiter, "10.0.0.2")[0] == 200            # another address has its own bucket
    assert request(limiter, method="GET")[0] == 200           # listing jobs is not a submission
    assert request(limiter, path=f"{JOBS}/j-1/history")[0] == 200
    assert request(limiter, method="POST", path=JOBS + "/")[0] == 429  # POST, trailing slash: the same route
    clock.now += 0.5                                          # one token back (2 a second)
    assert [request(limiter)[0] for _ in range(2)] == [200, 429]
    slow = SubmitRateLimit(_passed, rate=0.1, burst=1, paths=(JOBS,), clock=clock)
    assert request(slow)[0] == 200
    status, headers, _ = request(slow)
    assert status == 429 and headers[b"retry-after"] == b"10"  # whole seconds, rounded up


def test_the_table_of_clients_stays_bounded_under_many_addresses() -> None:
    clock = Clock()
    limiter = SubmitRateLimit(_passed, rate=1, burst=5, paths=(JOBS,), max_clients=100, clock=clock)
    for i in range(5000):                                     # a spoofed-looking spread of sources
        limiter.take(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        assert len(limiter) <= 100
    clock.now += 5                                            # every bucket full again: the same as none
    limiter.take("10.9.9.9")
    assert len(limiter) == 1
    # one machine's IPv6 /64 is one client; an IPv4 address mapped into IPv6 is that address
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:10.0.0.1") == client_key("10.0.0.1") == "10.0.0.1"
    assert client_key(None) == "unknown"


@pytest.mark.parametrize("command", [["devstack"], ["serve", "--orchestrator"]])
def test_the_admission_flags(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert admission(parser.parse_args(command)) == {
        "submit_rate": DEFAULT_SUBMIT_RATE, "submit_burst": DEFAULT_SUBMIT_BURST,
        "max_unfinished_jobs": DEFAULT_MAX_UNFINISHED_JOBS}
    args = parser.parse_args([*command, "--submit-rate", "0.5", "--submit-burst", "7", "--max-unfinished-jobs", "0"])
    assert admission(args) == {"submit_rate": 0.5, "submit_burst": 7, "max_unfinished_jobs": 0}
    for bad in (["--submit-rate", "-1"], ["--submit-rate", "nan"], ["--submit-burst", "1.5"],
                ["--max-unfinished-jobs", "-3"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, *bad])
        assert bad[0] in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--submit-rate" in text and "(default 20; 0 = no limit)" in text
    assert "(default 200; 0 = no limit)" in text and "(default 10000; 0 = no limit)" in text


# ---------------------------------------------------------------------------------------- (a) a flood


@pytest.fixture(scope="module")
def flooded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessDevstack]:
    """A network of processes whose orchestrator (`cod serve`) takes 10 submissions at once, then 2 a second."""
    stack = ProcessDevstack(data_dir=tmp_path_factory.mktemp("admission-flood"), computes=1, port=0,
                            capacity={"CPU": 2.0, "Memory": 2**30}, heartbeat_interval_s=0.5,
                            submit_rate=2, submit_burst=10)
    stack.start()
    yield stack
    stack.stop()


def test_a_submission_flood_is_held_to_the_rate_and_the_network_keeps_working(flooded: ProcessDevstack) -> None:
    rate, burst = 2, 10
    with Client(port=flooded.port, timeout=30) as client:
        running = client.submit(wasm_job(busy(6 * 10**9), name="running-before", Publisher={"Type": "noop"}))["JobID"]
        wait_until(lambda: state(client, running) == "Running", "the job to run")
        stored_before = len(client.list_jobs(limit=10000))
        body = json.dumps({"Job": quick(name="flood")}).encode()
        statuses: list[int] = []
        refusals: list[httpx.Response] = []
        answers: list[str] = []
        failures: list[str] = []
        flooding = threading.Event()
        flooding.set()

        def watch() -> None:  # another client of the API while the flood goes on: it gets its answers
            with httpx.Client(base_url=flooded.url, timeout=30) as http:
                for _ in range(200):
                    if not flooding.is_set():
                        return
                    try:
                        alive = http.get("/api/v1/agent/alive")
                        listed = http.get(JOBS, params={"limit": 20})
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        return
                    if alive.json() != {"Status": "OK"} or listed.status_code != 200:
                        failures.append(f"{alive.status_code} {listed.status_code} {listed.text[:200]}")
                    answers.append("ok")
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        with httpx.Client(base_url=flooded.url, timeout=30,
                          headers={"content-type": "application/json"}) as http:
            watcher.start()
            started = time.monotonic()
            try:
                for _ in range(600):                          # bounded in count ...
                    if time.monotonic() - started > 8:        # ... and in time
                        break
                    response = http.put(JOBS, content=body)
                    statuses.append(response.status_code)
                    if response.status_code == 429 and len(refusals) < 50:
                        refusals.append(response)
            finally:
                elapsed = time.monotonic() - started
                flooding.clear()
                watcher.join(60)
        accepted = statuses.count(200)
        assert set(statuses) <= {200, 429} and statuses.count(429) > 0, sorted(set(statuses))
        for response in refusals:
            too_many(response, "TooManyRequests", "too many job submissions from 127.0.0.1", "retry after")
        assert accepted <= burst + rate * elapsed + 1, (accepted, elapsed)
        assert answers and not failures, failures  # liveness and the job list answered all through the flood
        # nothing more was stored than what was acknowledged, and the API still answers
        assert len(client.list_jobs(limit=10000)) - stored_before == accepted
        assert client.get_job(running)["Job"]["Name"] == "running-before"
        # the job that ran before the flood completes, and so do the flood's own jobs
        assert client.wait(running, timeout=120)["State"]["StateType"] == "Completed"
        for job in client.list_jobs(limit=accepted + 5, labels=""):
            if job["Name"] == "flood":
                assert client.wait(job["ID"], timeout=60)["State"]["StateType"] in FINAL
        # the node and the orchestrator are alive, and a client within its rate is served again
        assert flooded.alive(ORCHESTRATOR) and flooded.alive("node-1")
        assert all(n["Connection"] == "CONNECTED" for n in client.nodes())
        after = client.submit(quick(name="after-the-flood"), retry_s=30)["JobID"]
        assert client.wait(after, timeout=60)["State"]["StateType"] == "Completed"


# ---------------------------------------------------------------------------------------- (b) the cap


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    """A network that holds at most 5 unfinished jobs (and no rate limit: the cap alone is tested)."""
    with Devstack(data_dir=tmp_path_factory.mktemp("admission-cap"), computes=1, port=0,
                  capacity={"CPU": 2.0, "Memory": 2**30}, heartbeat_interval_s=0.5,
                  submit_rate=0, max_unfinished_jobs=5) as stack:
        yield stack


def test_the_cap_of_unfinished_jobs_refuses_the_next_and_admits_again(
        capped: Devstack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with Client(port=capped.port) as client, no_server_errors(), httpx.Client(base_url=capped.url) as http:
        running = client.submit(wasm_job(busy(6 * 10**9), name="cap-running", Publisher={"Type": "noop"}))["JobID"]
        first = client.submit(queued_forever("cap-q1"), idempotency_key="cap-q1")["JobID"]
        waiting = [first] + [client.submit(queued_forever(f"cap-q{i}"))["JobID"] for i in range(2, 5)]
        assert state(client, waiting[-1]) in ("Pending", "Queued")

        # the sixth unfinished job is refused, in the API's shape, naming the limit; nothing is stored
        stored = len(client.list_jobs(limit=10000))
        response = http.put(JOBS, json={"Job": quick(name="sixth")})
        too_many(response, "TooManyUnfinishedJobs", "5 unfinished jobs", "--max-unfinished-jobs 5")
        with pytest.raises(APIError, match="--max-unfinished-jobs 5") as err:
            client.submit(quick(name="sixth"))
        assert err.value.status == 429 and err.value.retry_after >= 1
        assert len(client.list_jobs(limit=10000)) == stored

        # an idempotent resubmission of a stored job still gets its job
        assert client.submit(queued_forever("cap-q1"), idempotency_key="cap-q1")["JobID"] == first

        # the CLI says why in one line
        module = tmp_path / "nothing.wat"
        module.write_bytes(NOTHING)
        monkeypatch.setenv("COD_API_PORT", str(capped.port))
        capsys.readouterr()
        assert main(["wasm", "run", str(module), "--no-wait"]) == 1
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and err_lines[0].startswith("Error: the network already has 5 unfinished jobs")

        # a job that finishes (stopped here) makes room for one more, and only one
        client.stop(waiting.pop(0))
        admitted = client.submit(queued_forever("cap-admitted"))["JobID"]
        waiting.append(admitted)
        too_many(http.put(JOBS, json={"Job": quick(name="seventh")}), "TooManyUnfinishedJobs")

        # so does one that completes by itself
        assert client.wait(running, timeout=120)["State"]["StateType"] == "Completed"
        done = client.submit(quick(name="after-completion"))["JobID"]
        assert client.wait(done, timeout=60)["State"]["StateType"] == "Completed"

        for job_id in waiting:
            client.stop(job_id)
        assert [state(client, j) for j in waiting] == ["Stopped"] * len(waiting)
        assert all(n["Connection"] == "CONNECTED" for n in client.nodes())


# ---------------------------------------------------------------------------------------- (c) the client


@pytest.fixture()
def slow(tmp_path: Any) -> Iterator[Devstack]:
    """A network that takes 2 submissions at once, then one every 2 s."""
    with Devstack(data_dir=tmp_path / "stack", computes=1, port=0, capacity={"CPU": 1.0, "Memory": 2**30},
                  heartbeat_interval_s=0.5, submit_rate=0.5, submit_burst=2) as stack:
        yield stack


def test_the_client_waits_out_a_429_within_its_budget(slow: Devstack, tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with Client(port=slow.port) as client:
        statuses: list[int] = []
        client._http.event_hooks["response"].append(lambda response: statuses.append(response.status_code))
        ids = [client.submit(quick(name=f"slow-{i}"))["JobID"] for i in range(2)]
        with pytest.raises(APIError, match="too many job submissions from 127.0.0.1") as err:
            client.submit(quick(name="refused"))        # no budget: the server's message at once
        assert err.value.status == 429 and err.value.retry_after == 2
        with pytest.raises(APIError, match="retry after 2 s"):
            client.submit(quick(name="refused"), retry_s=0.5)  # Retry-After is past the budget: no waiting
        statuses.clear()
        ids.append(client.submit(quick(name="waited"), retry_s=30)["JobID"])
        assert statuses[0] == 429 and statuses[-1] == 200 and set(statuses[:-1]) == {429}, statuses

        module = tmp_path / "nothing.wat"                # the bucket is empty again: the CLI says so in one line
        module.write_bytes(NOTHING)
        monkeypatch.setenv("COD_API_PORT", str(slow.port))
        capsys.readouterr()
        assert main(["wasm", "run", str(module), "--no-wait"]) == 1
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and err_lines[0].startswith("Error: too many job submissions from 127.0.0.1")

        assert [client.wait(j, timeout=60)["State"]["StateType"] for j in ids] == ["Completed"] * 3
        assert [j["Name"] for j in client.list_jobs()] == ["waited", "slow-1", "slow-0"]
