"""A transport between nodes living in one process (the devstack).

Messages are serialized to JSON and back on the way, so anything that works here also
works over a network transport; each subscriber has its own mailbox and delivery thread,
so a slow handler delays only its own node.
"""
from __future__ import annotations

import logging
import threading
from collections import deque

from .base import Handler, Transport
from .messages import Message

log = logging.getLogger(__name__)


class _Mailbox:
    """Pending wire messages of one node; a thread delivers them while a handler is set."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.pending: deque[str] = deque()
        self.cond = threading.Condition()
        self.handler: Handler | None = None
        self.busy = False
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        while True:
            with self.cond:
                while self.handler is not None and not self.pending:
                    self.cond.wait()
                handler = self.handler
                if handler is None:
                    self.thread = None
                    self.cond.notify_all()
                    return
                wire = self.pending.popleft()
                self.busy = True
            try:
                handler(Message.from_json(wire))
            except Exception:  # a handler bug must not stop delivery to this node
                log.exception("handler of %s failed on a message", self.node_id)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()


class InProcessTransport(Transport):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boxes: dict[str, _Mailbox] = {}

    def _box(self, node_id: str) -> _Mailbox:
        with self._lock:
            box = self._boxes.get(node_id)
            if box is None:
                box = self._boxes[node_id] = _Mailbox(node_id)
            return box

    def subscribe(self, node_id: str, handler: Handler) -> None:
        box = self._box(node_id)
        with box.cond:
            if box.handler is not None:
                raise ValueError(f"{node_id!r} is already subscribed")
            while box.thread is not None:  # an old delivery thread is still winding down
                box.cond.wait()
            box.handler = handler
            box.thread = threading.Thread(target=box.run, name=f"cod-transport-{node_id}", daemon=True)
            box.thread.start()

    def unsubscribe(self, node_id: str) -> None:
        box = self._box(node_id)
        with box.cond:
            box.handler = None
            box.cond.notify_all()
            if box.thread is threading.current_thread():
                return
            # wait for the message being handled, so nothing reaches the old handler afterwards
            while box.busy or box.thread is not None:
                if not box.cond.wait(timeout=10):
                    break

    def send(self, message: Message) -> None:
        wire = message.to_json()
        box = self._box(message.target)
        with box.cond:
            box.pending.append(wire)
            box.cond.notify_all()

    def close(self) -> None:
        for node_id in list(self._boxes):
            self.unsubscribe(node_id)
