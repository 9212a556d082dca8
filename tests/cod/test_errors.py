"""Every error cod_reference defines is a CodError (one root to catch), as observe_sdk's are ObserveErrors."""
from __future__ import annotations

import importlib
import pkgutil

import cod_reference
from cod_reference.errors import CodError


def test_every_public_error_is_a_cod_error() -> None:
    found = []
    for info in pkgutil.walk_packages(cod_reference.__path__, "cod_reference."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, BaseException) and not name.startswith("_") \
                    and value.__module__ == module.__name__:
                found.append(value)
    assert len(found) >= 15
    assert [e.__qualname__ for e in found if not issubclass(e, CodError)] == []
