"""How nodes talk: a transport interface, its messages, and an in-process implementation."""
from .base import Handler, Transport
from .inprocess import InProcessTransport
from .messages import Message, make_message

__all__ = ["Handler", "InProcessTransport", "Message", "Transport", "make_message"]
