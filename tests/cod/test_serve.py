"""``cod serve``: its usage errors, and a hybrid node that starts its own nats-server."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cod_helpers import ROOT, run, tool_job, wait_for

from cod_reference.cli import main
from cod_reference.client import APIError, Client
from cod_reference.netutil import free_port


@pytest.mark.parametrize("argv, error", [
    (["serve"], "cod serve needs --orchestrator, --compute or both"),
    (["serve", "--compute"], "a compute node needs --orchestrators nats://HOST:PORT"),
    (["serve", "--orchestrator", "--disconnect-timeout", "0"], "must be positive"),
    (["serve", "--compute", "--orchestrators", "nats://127.0.0.1:1", "--labels", "zone"], "--labels 'zone'"),
    (["serve", "--compute", "--orchestrators", "nats://127.0.0.1:1", "--node-id", "a.b"], "node id 'a.b'"),
    (["serve", "--orchestrator", "--nats-user", "u"], "a NATS user needs a password"),
])
def test_usage_errors(argv: list[str], error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--data-dir", str(tmp_path)]) != 0
    assert error in capsys.readouterr().err


def test_a_hybrid_node_with_its_own_nats_server(tmp_path: Path) -> None:
    api, nats = free_port(), free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "cod_reference", "serve", "--orchestrator", "--compute",
                             "--node-id", "hybrid-1", "--data-dir", str(tmp_path), "--api-port", str(api),
                             "--nats-port", str(nats), "--nats-token", "t0ken"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert first.startswith("cod serve: orchestrator + compute (hybrid-1)"), first
        with Client(port=api) as client:
            def connected() -> bool:
                try:
                    return any(n["Info"]["NodeID"] == "hybrid-1" and n["Connection"] == "CONNECTED"
                               for n in client.nodes())
                except APIError:
                    return False

            wait_for(connected, timeout=30, what="the hybrid node's compute side to join")
            job = run(client, tool_job("args", "hybrid"))
            assert job["State"]["StateType"] == "Completed", job["State"]
            names = {s["name"] for s in wait_for(lambda: client.trace(job["ID"], "records")["Spans"],
                                                 what="the job's spans")}
            assert {"submit", "execution"} <= names
            assert client.metrics()["cod.transport.dropped"][0]["value"] == 0
        assert (tmp_path / "orchestrator" / "nats-store" / "jetstream").is_dir()  # JetStream under its data dir
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        if proc.stdout:
            proc.stdout.close()
    with pytest.raises(OSError):  # its nats-server went with it
        socket.create_connection(("127.0.0.1", nats), timeout=1).close()

