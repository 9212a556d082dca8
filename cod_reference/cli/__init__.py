"""``cod`` / ``python -m cod_reference``: run a devstack and talk to an orchestrator.

The client finds the orchestrator with ``--api-host``/``--api-port`` or
``COD_API_HOST``/``COD_API_PORT`` (default 127.0.0.1:1234). Errors are one line on
stderr and a non-zero exit status; a job that ends Failed or Stopped also exits non-zero
when waited for.

Layout: :mod:`.app` builds the parser and dispatches (each sub-command carries its handler
with ``set_defaults(func=...)``); :mod:`.jobs`, :mod:`.nodes` and :mod:`.stack` register
their commands; :mod:`.specs` turns files and flags into job specs; :mod:`.output` prints
tables, JSON and YAML; :mod:`.common` holds the flags and helpers they share.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

# What the cod extra adds (pyproject.toml); without them only a hint can be printed.
_COD_EXTRA_MODULES = frozenset({"yaml", "httpx", "fastapi", "uvicorn", "opentelemetry"})


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from .app import run
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _COD_EXTRA_MODULES:
            raise
        print(f"Error: the cod command needs the 'cod' extra ({exc.name} is not installed): "
              "pip install 'observe-sdk[cod]'", file=sys.stderr)
        return 2
    return run(argv)


__all__ = ["main"]
