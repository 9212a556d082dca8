"""Fixtures of the view tests: the adapter tests' traces, one devstack and a finished guest job."""
from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))   # adapter_traces

ROOT = Path(__file__).resolve().parents[2]
VOWELS = ROOT / "guest-examples" / "build" / "vowels.instr.wasm"


@pytest.fixture(scope="session")
def views_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cod_reference.devstack import Devstack

    stack = Devstack(data_dir=tmp_path_factory.mktemp("views-stack"), computes=2, port=0,
                     heartbeat_interval_s=0.5)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def views_client(views_stack: Any) -> Iterator[Any]:
    from cod_reference.client import Client

    with Client(port=views_stack.port) as client:
        yield client


@pytest.fixture(scope="session")
def vowels_job(views_client: Any) -> str:
    """The ID of a completed job that ran the vowels example, with its whole trace stored."""
    from cod_reference.models import wasm_job

    job_id = views_client.submit(wasm_job(VOWELS.read_bytes(), name="views-vowels"))["JobID"]
    job = views_client.wait(job_id, timeout=60, interval=0.05)
    assert job["State"]["StateType"] == "Completed", job["State"]
    deadline = time.monotonic() + 10    # the last spans are exported a moment after the job ends
    while not {"publish", "execution"} <= {s["name"] for s in views_client.trace(job_id, "records")["Spans"]}:
        assert time.monotonic() < deadline, "the job's publish and execution spans were never stored"
        time.sleep(0.05)
    return str(job_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium, one per test module."""
    from views_browser import chromium

    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the views' screenshots go."""
    from views_browser import screenshot_dir

    return screenshot_dir(tmp_path_factory)
