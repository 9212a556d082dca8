from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI runs the property tests on fixed seeds: a failure there is reproducible,
# never a one-off draw (locally, every run explores new examples).
settings.register_profile("ci", derandomize=True, deadline=None, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Note: nothing here may create a wasmtime Engine at import time.  Conftests
# load before pytest enables faulthandler, whose SIGILL handler would then
# replace the one wasmtime installs with its first Engine, and a guest's trap
# (wasm `unreachable` is a ud2 instruction) would kill the test process.


@pytest.fixture
def guest_factory(tmp_path: Path):
    """Make an observed guest: ``guest_factory(wasm, adapter, options, **kw)``."""
    from sdk_helpers import Guest

    def make(wasm: bytes, adapter: Any, options: Any = None, **kw: Any) -> Guest:
        return Guest(wasm, adapter, options, tmp=tmp_path, **kw)
    return make
