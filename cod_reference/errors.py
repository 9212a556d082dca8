"""The root of cod_reference's errors: ``except CodError`` catches every error it raises on purpose.

Each error is defined next to the code that raises it (a spec that does not parse in
:mod:`.models.parse`, a mount that cannot be made in :mod:`.executor.mounts`, ...) and
derives from :class:`CodError`; errors about a value the caller passed are also
:class:`ValueError` (or :class:`LookupError` for an unknown name), as before.
"""
from __future__ import annotations


class CodError(Exception):
    """The root of cod_reference's errors."""
