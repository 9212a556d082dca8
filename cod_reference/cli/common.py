"""What the cod sub-commands share: the API flags, the usage error, a handler's client."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..client import Client
from ..errors import CodError

Handler = Callable[[argparse.Namespace], int]
ClientHandler = Callable[[argparse.Namespace, Client], int]


class Parser(argparse.ArgumentParser):
    """cod's parsers (sub-commands inherit the class): no abbreviated long options, so that
    ``job get --output json`` is refused instead of meaning ``--output-dir json``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


class UsageError(CodError):
    """A bad flag value or an unreadable file: one line, exit status 1."""


def api_flags() -> argparse.ArgumentParser:
    """Where the orchestrator is: a parent of every command that talks to it."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--api-host", help="orchestrator host (env COD_API_HOST, default 127.0.0.1)")
    flags.add_argument("--api-port", help="orchestrator port (env COD_API_PORT, default 1234)")
    return flags


def with_client(handler: ClientHandler) -> Handler:
    """A handler that gets a client of the orchestrator named by ``--api-host``/``--api-port``."""
    def run(args: argparse.Namespace) -> int:
        with Client(args.api_host, args.api_port) as client:
            return handler(args, client)
    return run
