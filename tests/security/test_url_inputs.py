"""Attacks through urlDownload inputs: the node's own network (SSRF), slow servers, endless bodies."""
from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sec_helpers import attack, everything_seen, wait

from cod_reference.client import Client
from cod_reference.compute.download import UrlGuard
from cod_reference.compute.policy import NodePolicy
from cod_reference.devstack import Devstack

PAYLOAD = b"downloaded payload\n"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    drip_closed = threading.Event()   # a dripping response found its client gone


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(query))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/drip.bin":   # a byte every 0.2 s, for ever: only the client can end it
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            try:
                for _ in range(3000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                self.server.drip_closed.set()
        elif path == "/endless.bin":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100_000):
                    self.wfile.write(b"y" * 65536)
            except OSError:
                pass
        elif path == "/file.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def url_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    """node-1 allows 127.0.0.1 (and at most 1 MiB a download); node-2 allows nothing."""
    stack = Devstack(data_dir=tmp_path_factory.mktemp("url-stack"), computes=0, port=0,
                     capacity={"CPU": 2.0, "Memory": 2 * 2**30}, heartbeat_interval_s=0.5)
    stack.start()
    stack.add_compute(policy=NodePolicy(allow_url_hosts=["127.0.0.1"], max_download_bytes=1 << 20))
    stack.add_compute()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def url_client(url_stack: Devstack) -> Iterator[Client]:
    with Client(port=url_stack.port) as client:
        yield client


def fetch_job(url: str, node: str, **kw: Any) -> dict[str, Any]:
    source = {"Source": {"Type": "urlDownload", "Params": {"URL": url}}, "Target": "/dl"}
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    doc = attack(f"cat /dl/{name}", inputs=[source], Publisher={"Type": "noop"}, **kw)
    doc["Constraints"] = [{"Key": "id", "Operator": "=", "Values": [node]}]
    return doc


def finish(client: Client, doc: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return client.wait(client.submit(doc)["JobID"], timeout=timeout, interval=0.05)


def test_an_allowed_host_is_fetched(url_client: Client, server: Server) -> None:
    job = finish(url_client, fetch_job(f"http://127.0.0.1:{server.server_port}/file.bin", "node-1"))
    assert job["State"]["StateType"] == "Completed", job["State"]
    assert "ok cat /dl/file.bin: downloaded payload" in everything_seen(url_client, job)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "169.254.169.254", "10.1.2.3",
                                  "192.168.0.1", "224.0.0.1", "[::ffff:127.0.0.1]"])
def test_the_nodes_own_network_is_refused(url_client: Client, server: Server, host: str) -> None:
    job = finish(url_client, fetch_job(f"http://{host}:{server.server_port}/file.bin", "node-2"))
    assert job["State"]["StateType"] == "Failed"
    seen = everything_seen(url_client, job)
    assert "which this node does not fetch from" in seen and "downloaded payload" not in seen


@pytest.mark.parametrize("location", ["http://127.0.0.2:{port}/file.bin", "http://169.254.169.254/latest/meta-data",
                                      "file:///etc/passwd", "http://localhost:{port}/file.bin"])
def test_a_redirect_out_of_the_allowance_is_refused(url_client: Client, server: Server, location: str) -> None:
    # node-1 allows 127.0.0.1 only: the redirect leads elsewhere
    target = urllib.parse.quote(location.format(port=server.server_port), safe="")
    job = finish(url_client, fetch_job(f"http://127.0.0.1:{server.server_port}/redirect?{target}", "node-1"))
    seen = everything_seen(url_client, job)
    if location.startswith("http://localhost"):   # resolves to 127.0.0.1, which is allowed (or ::1, which is not)
        assert "downloaded payload" in seen or "does not fetch from" in seen
        return
    assert job["State"]["StateType"] == "Failed"
    assert "does not fetch from" in seen or "only http and https" in seen


def test_a_dripping_download_ends_at_the_execution_timeout(url_client: Client, server: Server) -> None:
    t0 = time.monotonic()
    job = finish(url_client, fetch_job(f"http://127.0.0.1:{server.server_port}/drip.bin", "node-1",
                                       Timeouts={"ExecutionTimeout": 1}))
    assert job["State"]["StateType"] == "Failed"
    assert "timeout after 1s while preparing inputs" in everything_seen(url_client, job)
    assert time.monotonic() - t0 < 20   # not the minutes a byte every 0.2 s would take
    assert_capacity_free(url_client)


def test_stopping_a_job_ends_its_download(url_client: Client, server: Server) -> None:
    server.drip_closed.clear()
    job_id = url_client.submit(fetch_job(f"http://127.0.0.1:{server.server_port}/drip.bin", "node-1"))["JobID"]
    wait(lambda: url_client.get_job(job_id)["Job"]["State"]["StateType"] == "Running", "the job to run")
    wait(lambda: busy(url_client), "the download to hold capacity")
    url_client.stop(job_id)
    assert url_client.wait(job_id, timeout=10)["State"]["StateType"] == "Stopped"
    wait(server.drip_closed.is_set, "the node to hang up")
    assert_capacity_free(url_client)


def test_an_endless_body_stops_at_the_size_limit(url_client: Client, server: Server) -> None:
    job = finish(url_client, fetch_job(f"http://127.0.0.1:{server.server_port}/endless.bin", "node-1"))
    assert job["State"]["StateType"] == "Failed"
    assert "larger than the node's limit of 1 MiB" in everything_seen(url_client, job)


def test_url_guard_allowances() -> None:
    guard = UrlGuard(["127.0.0.0/8", "files.internal"])
    assert guard.addresses("http://127.0.0.5:1/x")[1] == ["127.0.0.5"]
    with pytest.raises(Exception, match="does not fetch from"):
        UrlGuard([]).addresses("http://127.0.0.5:1/x")
    with pytest.raises(Exception, match="only http and https"):
        guard.addresses("ftp://127.0.0.1/x")


def busy(client: Client) -> bool:
    node = next(n for n in client.nodes() if n["Info"]["NodeID"] == "node-1")
    return node["Info"]["AvailableCapacity"]["CPU"] < node["Info"]["MaxCapacity"]["CPU"]


def assert_capacity_free(client: Client) -> None:
    wait(lambda: not busy(client), "the node's capacity to be free again", timeout=3)


