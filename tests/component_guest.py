"""The wasi:otel guest component (guest-examples/component), built once and cached.

componentize-py takes ~10 s to build it and wasmtime ~7 s to compile it; the build is kept
in guest-examples/build/component/ (rebuilt when its sources change) and the compiled form
in .cache/observe-sdk/ (wasmtime's serialization).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".cache" / "observe-sdk"
# every tool and node of the test run shares one cache of compiled components
os.environ.setdefault("OBSERVE_SDK_CACHE_DIR", str(CACHE_DIR))


@functools.cache
def otel_guest_path() -> Path:
    spec = importlib.util.spec_from_file_location("otel_guest_build", ROOT / "guest-examples/component/build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path: Path = module.build()
    return path
