"""The compute node's message handler: each message from the orchestrator goes to the part
that acts on it (Bacalhau's compute message handler)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from ..transport import messages as msg

log = logging.getLogger(__name__)

Action = Callable[[msg.Message], None]


class MessageHandler:
    def __init__(self, node_id: str, actions: dict[str, Action]) -> None:
        self.node_id = node_id
        self.actions = actions

    def __call__(self, message: msg.Message) -> None:
        action = self.actions.get(message.type)
        if action is None:
            log.warning("%s got unexpected message %s", self.node_id, message.type)
            return
        action(message)
