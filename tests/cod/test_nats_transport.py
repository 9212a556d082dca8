"""The NATS transport against a real nats-server: durability, order, de-duplication, restarts."""
from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cod_helpers import wait_for
from opentelemetry.sdk.trace import TracerProvider

from cod_reference import natsserver
from cod_reference.natsserver import NatsAuth, NatsServer
from cod_reference.netutil import free_port
from cod_reference.serve import batches_by_size
from cod_reference.transport import messages as msg
from cod_reference.transport.nats_transport import NatsTransport, subject_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path_factory.mktemp("nats") / "store", port=0).start()
    yield srv
    srv.stop()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[msg.Message] = []
        self.lock = threading.Lock()

    def __call__(self, message: msg.Message) -> None:
        with self.lock:
            self.messages.append(message)

    def payloads(self, key: str = "i") -> list[object]:
        with self.lock:
            return [m.payload.get(key) for m in self.messages]


def result(i: int, source: str = "node-a") -> msg.Message:
    return msg.make_message(msg.RUN_RESULT, source, msg.ORCHESTRATOR, {"i": i})


def test_subjects_follow_the_ncl_layout() -> None:
    assert subject_for(result(0, "n1")) == "cod.global.compute.n1.out.msgs"
    assert subject_for(msg.make_message(msg.HEARTBEAT, "n1", msg.ORCHESTRATOR, {})) == "cod.global.compute.n1.out.ctrl"
    assert subject_for(msg.make_message(msg.ASK_FOR_BID, msg.ORCHESTRATOR, "n1", {})) == "cod.global.compute.n1.in.msgs"
    with pytest.raises(ValueError, match="node id 'a.b'"):
        subject_for(result(0, "a.b"))


def test_messages_wait_for_their_node_and_arrive_in_order_once(server: NatsServer) -> None:
    sender, receiver = NatsTransport(server.url), NatsTransport(server.url)
    try:
        tracer = TracerProvider().get_tracer("t")
        with tracer.start_as_current_span("send") as span:
            first = msg.make_message(msg.ASK_FOR_BID, msg.ORCHESTRATOR, "node-b", {"i": 0})
        sender.send(first)
        sender.send(first)  # a publish retried after a lost acknowledgement: stored once
        for i in range(1, 50):
            sender.send(msg.make_message(msg.ASK_FOR_BID, msg.ORCHESTRATOR, "node-b", {"i": i}))
        wait_for(lambda: sender.pending() == 0, what="the messages to be stored")
        inbox = Inbox()
        receiver.subscribe("node-b", inbox)  # node-b was not there when they were sent
        wait_for(lambda: len(inbox.messages) >= 50, what="delivery")
        assert inbox.payloads() == list(range(50))
        trace_id = format(span.get_span_context().trace_id, "032x")
        assert inbox.messages[0].trace_context["traceparent"].split("-")[1] == trace_id
    finally:
        sender.close()
        receiver.close()


def test_a_message_sent_while_nats_is_down_arrives_after_its_restart(server: NatsServer) -> None:
    sender, receiver = NatsTransport(server.url), NatsTransport(server.url)
    inbox = Inbox()
    receiver.subscribe(msg.ORCHESTRATOR, inbox)
    try:
        sender.send(result(1))
        wait_for(lambda: inbox.payloads() == [1], what="the first result")
        server.stop()
        sender.send(result(2))  # kept by the sender until the server is back
        server.start()
        wait_for(lambda: inbox.payloads() == [1, 2], timeout=20, what="the result sent during the outage")
        assert sender.dropped == receiver.dropped == 0
    finally:
        sender.close()
        receiver.close()


def test_unsubscribed_messages_wait_for_the_next_subscriber(server: NatsServer) -> None:
    sender, receiver = NatsTransport(server.url), NatsTransport(server.url)
    try:
        first = Inbox()
        receiver.subscribe("node-c", first)
        receiver.unsubscribe("node-c")
        for i in range(3):
            sender.send(msg.make_message(msg.CANCEL_EXECUTION, msg.ORCHESTRATOR, "node-c", {"i": i}))
        wait_for(lambda: sender.pending() == 0, what="the messages to be stored")
        second = Inbox()
        receiver.subscribe("node-c", second)
        wait_for(lambda: second.payloads() == [0, 1, 2], what="delivery to the new subscriber")
        assert first.messages == []
    finally:
        sender.close()
        receiver.close()


def test_token_auth(tmp_path: Path) -> None:
    srv = NatsServer(tmp_path / "store", port=0, auth=NatsAuth(token="s3cret")).start()
    try:
        with pytest.raises(Exception):  # noqa: B017 (nats-py raises its own authorization error)
            NatsTransport(srv.url, connect_timeout_s=1)
        ok = NatsTransport(srv.url, client_options=NatsAuth(token="s3cret").client_options())
        ok.close()
    finally:
        srv.stop()
    with pytest.raises(ValueError, match="either a NATS token or a user"):
        NatsAuth(token="t", user="u", password="p")


def test_user_password_and_tls(tmp_path: Path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    auth = NatsAuth(user="cod", password="pw", tls_cert=str(cert), tls_key=str(key))
    srv = NatsServer(tmp_path / "store", port=0, auth=auth).start()
    try:
        assert srv.url.startswith("tls://")
        client = NatsAuth(user="cod", password="pw", tls_ca=str(ca))
        transport = NatsTransport(srv.url, client_options=client.client_options())
        inbox = Inbox()
        transport.subscribe("node-t", inbox)
        transport.send(msg.make_message(msg.CANCEL_EXECUTION, msg.ORCHESTRATOR, "node-t", {"i": 1}))
        wait_for(lambda: inbox.payloads() == [1], what="a message over TLS")
        transport.close()
        with pytest.raises(ConnectionError, match="cannot connect to NATS"):  # the server's CA unknown
            NatsTransport(srv.url, client_options=NatsAuth(user="cod", password="pw").client_options(),
                          connect_timeout_s=1)
    finally:
        srv.stop()
    with pytest.raises(ValueError, match="needs a password"):
        NatsAuth(user="cod")


def make_certificates(where: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed (openssl)."""
    ca, ca_key, cert, key, csr = (where / n for n in ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr"))
    ext = where / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=cod-test-ca"],
                ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                 "-days", "1", "-extfile", ext]):
        subprocess.run(["openssl", *map(str, cmd)], check=True, capture_output=True)
    return ca, cert, key


def test_a_message_too_large_for_nats_is_dropped_and_counted_without_blocking_the_next(server: NatsServer) -> None:
    sender, receiver = NatsTransport(server.url), NatsTransport(server.url)
    try:
        inbox = Inbox()
        receiver.subscribe("node-big", inbox)
        sender.send(msg.make_message(msg.CANCEL_EXECUTION, msg.ORCHESTRATOR, "node-big", {"i": 0, "x": "x" * 2**21}))
        sender.send(msg.make_message(msg.CANCEL_EXECUTION, msg.ORCHESTRATOR, "node-big", {"i": 1}))
        wait_for(lambda: inbox.payloads() == [1], what="the message after the oversized one")
        assert sender.dropped == 1
    finally:
        sender.close()
        receiver.close()


def test_forwarded_spans_are_cut_under_the_payload_limit() -> None:
    records = [{"name": f"s{i}", "pad": "x" * 1000} for i in range(30)] + [{"name": "huge", "pad": "y" * 5000}]
    batches = list(batches_by_size(records, 3000))
    assert [r["name"] for b in batches for r in b] == [r["name"] for r in records]  # all, in order
    assert all(len(json.dumps(b, separators=(",", ":"))) <= 3001 for b in batches if len(b) > 1)
    assert batches[-1] == [records[-1]]  # larger than the limit on its own: sent alone


def test_a_picked_port_taken_before_nats_server_binds_it_is_replaced(tmp_path: Path, monkeypatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy, free_port()])
        monkeypatch.setattr(natsserver, "free_port", lambda host: next(ports))
        srv = natsserver.NatsServer(tmp_path / "store", port=0).start()
        try:
            assert srv.port != busy
            NatsTransport(srv.url).close()
        finally:
            srv.stop()
        with pytest.raises(RuntimeError, match="address already in use"):  # a port given by the user stays
            natsserver.NatsServer(tmp_path / "store2", port=busy).start()
