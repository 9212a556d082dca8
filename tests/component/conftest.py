"""The wasi:otel guest component, built once (and cached) for the whole run."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "guest-examples" / "component" / "build.py"


@pytest.fixture(scope="session")
def otel_guest_path() -> Path:
    spec = importlib.util.spec_from_file_location("otel_guest_build", BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path: Path = module.build()
    return path


@pytest.fixture(scope="session")
def component_cache_dir() -> Path:
    """wasmtime's serialized form of compiled components, kept between runs (compiling takes seconds)."""
    path = ROOT / ".cache" / "observe-sdk"
    os.environ["OBSERVE_SDK_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def otel_guest(otel_guest_path: Path, component_cache_dir: Path) -> Any:
    import wasmtime

    from observe_sdk.component.run import compile_component

    engine = wasmtime.Engine()
    return engine, compile_component(engine, otel_guest_path.read_bytes(), component_cache_dir)
