"""The orchestrator restarts while jobs are in flight: nothing is lost."""
from __future__ import annotations

import threading

import pytest
from cod_helpers import busy, stdout_of, tool_job, wait_for

from cod_reference.client import APIError, Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job


def test_orchestrator_restart_with_jobs_in_flight(tmp_path) -> None:
    with Devstack(data_dir=tmp_path, computes=2, port=0, heartbeat_interval_s=0.3) as stack:
        with Client(port=stack.port) as client:
            ids = [client.submit(wasm_job(busy(10**9)))["JobID"] for _ in range(3)]
            ids.append(client.submit(tool_job("args", "after"))["JobID"])
            count = tool_job("env", "BACALHAU_PARTITION_INDEX")
            count["Count"] = 2
            ids.append(client.submit(count)["JobID"])
            # results reported while it is down wait in the transport for the new orchestrator
            stack.restart_orchestrator(downtime_s=0.5)
            jobs = [client.wait(job_id, timeout=30) for job_id in ids]
            assert [j["State"]["StateType"] for j in jobs] == ["Completed"] * 5, [j["State"] for j in jobs]
            for job in jobs:
                execs = client.executions(job["ID"])
                done = [e for e in execs if e["ComputeState"]["StateType"] == "Completed"]
                assert len(done) == job["Count"]
            assert sorted(stdout_of(client, jobs[-1])) == ["BACALHAU_PARTITION_INDEX=0\n",
                                                           "BACALHAU_PARTITION_INDEX=1\n"]
    # and a devstack started again on the same data dir still knows every job
    with Devstack(data_dir=tmp_path, computes=1, port=0) as again:
        with Client(port=again.port) as client:
            assert {j["ID"] for j in client.list_jobs()} == set(ids)


def test_api_while_the_orchestrator_is_down(tmp_path) -> None:
    with Devstack(data_dir=tmp_path, computes=0, port=0) as stack, Client(port=stack.port) as client:
        job_id = client.submit(tool_job("args"))["JobID"]  # no compute node: it fails at once
        restart = threading.Thread(target=stack.restart_orchestrator, kwargs={"downtime_s": 2.0})
        restart.start()
        try:
            with pytest.raises(APIError, match="orchestrator is not running") as down:
                wait_for(lambda: client.nodes() and False, timeout=5, what="the API to answer 503")
            assert down.value.status == 503
            assert client.wait(job_id, timeout=30)["State"]["StateType"] == "Failed"  # waits out the restart
        finally:
            restart.join()
