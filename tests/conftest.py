from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sdk_helpers import Guest


@pytest.fixture
def guest_factory(tmp_path: Path):
    """Make an observed guest: ``guest_factory(wasm, adapter, options, **kw)``."""
    def make(wasm: bytes, adapter: Any, options: Any = None, **kw: Any) -> Guest:
        return Guest(wasm, adapter, options, tmp=tmp_path, **kw)
    return make
