"""A transport over NATS with JetStream: nodes in separate processes, on separate machines.

Subjects follow Bacalhau's NCL layout (``pkg/transport/nclprotocol/subjects.go``), under ``cod``:

- ``cod.global.compute.<node>.in.msgs``: orchestrator -> compute node (JetStream)
- ``cod.global.compute.<node>.out.msgs``: compute node -> orchestrator (JetStream)
- ``cod.global.compute.<node>.out.ctrl``: heartbeats (core NATS: only the latest one matters)

Each JetStream subject is read by exactly one durable consumer (the node's own, or the
orchestrator's for every ``out.msgs``) of a work-queue stream, so what is sent to a node that is
down waits for it. A message is acknowledged only after its handler returned (at-least-once:
handlers must be idempotent, and a message being handled when a process dies comes again), and it
is published with its id as ``Nats-Msg-Id``, so a publish retried after a lost acknowledgement is
stored once. Headers carry the message type and the W3C trace context. ``send`` never blocks: one
publisher task stores messages in order and retries while the server is unreachable.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import api

from .base import Handler, Transport
from .messages import HEARTBEAT, ORCHESTRATOR, Message

log = logging.getLogger(__name__)

STREAM = "COD_MESSAGES"
PREFIX = "cod.global.compute"
TYPE_HEADER = "Cod-Type"
#: how long a message waits for a node that does not come back (reconciliation settles its executions)
MAX_AGE_S = 7 * 86400.0
TRACE_HEADERS = ("traceparent", "tracestate")
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

T = TypeVar("T")


def inbox_subject(node_id: str) -> str:
    return f"{PREFIX}.{node_id}.in.msgs"


def outbox_subject(node_id: str) -> str:
    return f"{PREFIX}.{node_id}.out.msgs"


def control_subject(node_id: str) -> str:
    return f"{PREFIX}.{node_id}.out.ctrl"


def check_node_id(node_id: str) -> str:
    if not NODE_ID.match(node_id):
        raise ValueError(f"node id {node_id!r} must be 1-64 letters, digits, '-' or '_' (it names NATS subjects)")
    return node_id


def subject_for(message: Message) -> str:
    """Where ``message`` travels: to a compute node's inbox, or out of the sender's outbox."""
    if message.target == ORCHESTRATOR:
        source = check_node_id(message.source)
        return control_subject(source) if message.type == HEARTBEAT else outbox_subject(source)
    return inbox_subject(check_node_id(message.target))


@dataclass
class _Delivery:
    """One subscriber: its NATS subscriptions and the thread that runs its handler, one message at a time."""

    node_id: str
    handler: Handler
    subscriptions: list[Subscription] = field(default_factory=list)
    inbox: queue.SimpleQueue[Msg | None] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None
    closed: bool = False
    #: the orchestrator's heartbeats: a thread of their own, so a backlog of results cannot delay them
    control: _Delivery | None = None


class NatsTransport(Transport):
    def __init__(self, servers: str | list[str], *, client_options: dict[str, Any] | None = None,
                 connect_timeout_s: float = 15.0, ack_wait_s: float = 30.0, name: str = "cod") -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.ack_wait_s = ack_wait_s
        #: messages that could not be delivered to the server before close, and malformed ones received
        self.dropped = 0
        self._options = dict(client_options or {})
        self._name = name
        self._deliveries: dict[str, _Delivery] = {}
        self._lock = threading.Lock()
        self._reconnect_listeners: list[Callable[[], None]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cod-nats", daemon=True)
        self._thread.start()
        self._outbox: asyncio.Queue[tuple[str, bytes, dict[str, str]]] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._closing = False
        self._last_error: Exception | None = None
        try:
            self._run(self._connect(connect_timeout_s), timeout=connect_timeout_s + 5)
        except BaseException:
            self._stop_loop()
            raise

    # ------------------------------------------------------------------ the event loop

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _connect(self, timeout_s: float) -> None:
        # the client retries forever (a node may start before NATS): give up after timeout_s with the last error
        try:
            self._nc = await asyncio.wait_for(nats.connect(
                servers=self.servers, name=self._name, connect_timeout=2, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=0.25, error_cb=self._on_error,
                disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect, **self._options), timeout_s)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            why = self._last_error or exc
            hint = (" (check --nats-token / --nats-user and --nats-password)"
                    if "authorization" in str(why).lower() else "")
            raise ConnectionError(f"cannot connect to NATS at {', '.join(self.servers)}: "
                                  f"{str(why) or type(why).__name__}{hint}") from None
        self._js = self._nc.jetstream()
        await self._ensure_stream()
        self._outbox = asyncio.Queue()
        self._publisher = asyncio.ensure_future(self._publish_loop())

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc
        if not self._closing:
            log.debug("NATS: %s", exc)

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("NATS connection lost; reconnecting to %s", ", ".join(self.servers))

    async def _on_reconnect(self) -> None:
        log.info("NATS connection re-established")
        try:  # a server that lost its store (no JetStream dir) needs the stream and consumers again
            await self._ensure_stream()
            for delivery in list(self._deliveries.values()):
                await self._ensure_consumer(delivery.node_id)
        except Exception:
            log.exception("could not restore the JetStream stream after reconnecting")
        for listener in list(self._reconnect_listeners):
            threading.Thread(target=listener, name="cod-nats-reconnected", daemon=True).start()

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(name=STREAM, subjects=[inbox_subject("*"), outbox_subject("*")],
                                  retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
                                  duplicate_window=120.0, max_age=MAX_AGE_S)
        try:
            await self._js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            try:
                await self._js.add_stream(config)
            except nats.js.errors.BadRequestError:
                pass  # another node created it first

    # ------------------------------------------------------------------ receiving

    def _consumer(self, node_id: str) -> tuple[str, str]:
        """The durable consumer name and the subject it reads for ``node_id``."""
        if node_id == ORCHESTRATOR:
            return "orchestrator", outbox_subject("*")
        return f"compute-{check_node_id(node_id)}", inbox_subject(node_id)

    async def _ensure_consumer(self, node_id: str) -> str:
        durable, subject = self._consumer(node_id)
        deliver = f"_cod.deliver.{durable}"
        config = api.ConsumerConfig(durable_name=durable, deliver_subject=deliver, filter_subject=subject,
                                    ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s,
                                    deliver_policy=api.DeliverPolicy.ALL, max_ack_pending=10_000)
        try:
            await self._js.add_consumer(STREAM, config)
        except nats.js.errors.BadRequestError:  # it exists with other settings (e.g. an older ack wait)
            await self._js.delete_consumer(STREAM, durable)
            await self._js.add_consumer(STREAM, config)
        return deliver

    def subscribe(self, node_id: str, handler: Handler) -> None:
        with self._lock:
            if node_id in self._deliveries:
                raise ValueError(f"{node_id!r} is already subscribed")
            delivery = self._deliveries[node_id] = _Delivery(node_id, handler)
        delivery.thread = threading.Thread(target=self._deliver, args=(delivery,), name=f"cod-nats-{node_id}",
                                           daemon=True)
        delivery.thread.start()
        try:
            self._run(self._subscribe(delivery))
        except BaseException:
            self.unsubscribe(node_id)
            raise

    async def _subscribe(self, delivery: _Delivery) -> None:
        deliver = await self._ensure_consumer(delivery.node_id)

        async def received(msg: Msg) -> None:
            delivery.inbox.put(msg)

        delivery.subscriptions.append(await self._nc.subscribe(deliver, cb=received, pending_msgs_limit=-1))
        if delivery.node_id == ORCHESTRATOR:
            control = delivery.control = _Delivery(delivery.node_id, delivery.handler)
            control.thread = threading.Thread(target=self._deliver, args=(control,), name="cod-nats-control",
                                              daemon=True)
            control.thread.start()

            async def heartbeat(msg: Msg) -> None:
                control.inbox.put(msg)

            delivery.subscriptions.append(await self._nc.subscribe(control_subject("*"), cb=heartbeat))
        await self._nc.flush()

    def _deliver(self, delivery: _Delivery) -> None:
        while True:
            msg = delivery.inbox.get()
            if msg is None:
                return
            if delivery.closed:  # unsubscribed: give it back for the next subscriber, now
                if msg.reply:
                    self._spawn(msg.nak())
                continue
            try:
                message = decode(msg)
            except ValueError as exc:
                self.dropped += 1
                log.warning("dropped a malformed message on %s: %s", msg.subject, exc)
                message = None
            if message is not None:
                try:
                    delivery.handler(message)
                except Exception:  # a handler bug must not stop delivery to this node
                    log.exception("handler of %s failed on a %s message", delivery.node_id, message.type)
            if msg.reply:
                self._spawn(msg.ack())

    def unsubscribe(self, node_id: str) -> None:
        with self._lock:
            delivery = self._deliveries.pop(node_id, None)
        for d in (delivery, delivery and delivery.control):
            if d is None:
                continue
            d.closed = True
            if d.subscriptions and not self._loop.is_closed() and self._nc.is_connected:
                try:  # a message lost in between would wait ack_wait on the server before coming again
                    self._run(self._unsubscribe(d.subscriptions), timeout=5)
                except Exception:
                    log.debug("unsubscribe of %s failed", node_id, exc_info=True)
            d.inbox.put(None)
            if d.thread is not None and d.thread is not threading.current_thread():
                d.thread.join(timeout=10)

    async def _unsubscribe(self, subscriptions: list[Subscription]) -> None:
        for sub in subscriptions:  # drained: what the server sent before it saw this comes back now, NAKed
            await sub.drain()

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        self._reconnect_listeners.append(listener)

    # ------------------------------------------------------------------ sending

    def send(self, message: Message) -> None:
        subject = subject_for(message)
        headers = {TYPE_HEADER: message.type, "Nats-Msg-Id": message.id}
        headers.update({k: v for k, v in message.trace_context.items() if k in TRACE_HEADERS})
        body = message.to_json().encode()
        if message.type == HEARTBEAT:
            self._spawn(self._publish_core(subject, body, headers))
        else:
            assert self._outbox is not None
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, (subject, body, headers))

    async def _publish_core(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            await self._nc.publish(subject, body, headers=headers)
        except Exception as exc:  # a lost heartbeat is replaced by the next one
            log.debug("heartbeat not sent: %s", exc)

    async def _publish_loop(self) -> None:
        assert self._outbox is not None
        while True:
            subject, body, headers = await self._outbox.get()
            delay = 0.05
            while True:
                try:
                    await self._js.publish(subject, body, headers=headers, timeout=2.0)
                    break
                except (nats.errors.MaxPayloadError, nats.js.errors.BadRequestError) as exc:
                    self.dropped += 1  # it would never be stored: retrying would block every later message
                    log.error("dropped a %s message for %s: %s", headers.get(TYPE_HEADER), subject, exc)
                    break
                except (TimeoutError, nats.errors.Error) as exc:
                    if self._closing and self._nc.is_closed:
                        self.dropped += 1
                        break
                    log.debug("publish to %s failed (%s); retrying", subject, exc)
                    await asyncio.sleep(delay)
                    delay = min(1.0, delay * 2)
            self._outbox.task_done()

    def pending(self) -> int:
        """Messages sent but not yet stored by the server."""
        return self._outbox.qsize() if self._outbox is not None else 0

    # ------------------------------------------------------------------ closing

    def close(self, flush_timeout_s: float = 5.0) -> None:
        if self._loop.is_closed():
            return
        for node_id in list(self._deliveries):
            self.unsubscribe(node_id)
        if self._outbox is not None:
            try:
                self._run(asyncio.wait_for(self._outbox.join(), flush_timeout_s), timeout=flush_timeout_s + 1)
            except Exception:
                left = self.pending()
                if left:
                    self.dropped += left
                    log.warning("%d message(s) were not stored in NATS before closing", left)
        self._closing = True
        try:
            self._run(self._nc.close(), timeout=5)
        except Exception:
            log.debug("closing the NATS connection failed", exc_info=True)
        self._stop_loop()

    def _stop_loop(self) -> None:
        async def cancel_tasks() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        try:
            self._run(cancel_tasks(), timeout=2)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


def decode(msg: Msg) -> Message:
    """The message carried by a NATS message; the trace context of its headers wins over the body's."""
    message = Message.from_json(msg.data)
    headers = msg.headers or {}
    trace = {k: headers[k] for k in TRACE_HEADERS if headers.get(k)}
    if trace:
        message.trace_context = trace
    return message
