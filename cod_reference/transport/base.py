"""The transport interface: how nodes send each other :class:`Message` objects."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from .messages import Message

Handler = Callable[[Message], None]


class Transport(ABC):
    """Delivers messages to the node they are addressed to, in the order they were sent.

    Messages for a node that is not (yet, or no longer) subscribed are kept and delivered
    when it subscribes again, like a durable stream: an orchestrator that restarts gets
    the results its compute nodes reported while it was down.
    """

    @abstractmethod
    def subscribe(self, node_id: str, handler: Handler) -> None:
        """Deliver messages addressed to ``node_id`` to ``handler`` (on a transport thread)."""

    @abstractmethod
    def unsubscribe(self, node_id: str) -> None:
        """Stop delivering to ``node_id``; later messages are kept for a new subscriber."""

    @abstractmethod
    def send(self, message: Message) -> None:
        """Queue ``message`` for its target; never blocks on the receiver."""

    def on_reconnect(self, listener: Callable[[], None]) -> None:  # noqa: B027 (optional, not abstract)
        """Call ``listener`` (on a thread of its own) whenever the connection to the other nodes comes
        back after it was lost; a transport without a connection never calls it."""

    def close(self) -> None:  # noqa: B027 (optional, not abstract)
        """Release threads and connections."""
