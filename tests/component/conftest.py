"""The wasi:otel guest component, built once (and cached) for the whole run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from component_guest import CACHE_DIR, otel_guest_path


@pytest.fixture(scope="session")
def component_cache_dir() -> Path:
    return CACHE_DIR


@pytest.fixture(scope="session")
def otel_guest_path_fixture() -> Path:
    return otel_guest_path()


@pytest.fixture(scope="session")
def otel_guest(otel_guest_path_fixture: Path) -> Any:
    import wasmtime

    from observe_sdk.component.run import compile_component

    engine = wasmtime.Engine()
    return engine, compile_component(engine, otel_guest_path_fixture.read_bytes(), CACHE_DIR)
