"""The compute node: bids on executions, runs them through the Wasm executor, publishes results.

Its parts, as in Bacalhau: :mod:`.node` wires them and owns the lifecycle and heartbeats;
:mod:`.handler` routes the orchestrator's messages; :mod:`.bidder` accepts or refuses;
:mod:`.buffer` queues accepted executions until capacity is free; :mod:`.runner` runs one
execution (:mod:`.inputs` prepares its input sources, :mod:`.publisher` its results);
:mod:`.store` keeps the node's executions (SQLite), :mod:`.reconcile` answers the
orchestrator's view of them, :mod:`.retention` clears old ones; :mod:`.config` is what
the operator sets.
"""
