"""The ``cod`` command line run in-process against a stack's API, as the CLI tests' fixtures use it."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from cod_reference.cli import main


def cod_cli(port: int, capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """``cod(*args) -> (exit status, stdout, stderr)`` against the API on ``port``."""
    monkeypatch.setenv("COD_API_PORT", str(port))

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call
