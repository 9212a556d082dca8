"""The host side of the Observe ABI: from a guest's calls to a finished trace.

:mod:`.context` (:func:`~.context.observe`, :class:`~.context.TraceContext`) links a module
and finishes its traces; :mod:`.linking` defines the ABI's imports; :mod:`.recorder` (the
raw event log, the Python recorder) and :mod:`.wasm_recorder` (the in-wasm one) record;
:mod:`.wasi_stores` knows which stores have WASI; :mod:`.traps` says why a guest stopped;
:mod:`.signals` keeps faulthandler from turning traps into crashes.
"""
