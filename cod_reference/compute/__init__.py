"""The compute node: bids on executions, runs them through the Wasm executor, publishes results.

:mod:`.node` is the node itself; :mod:`.inputs` prepares a job's input sources,
:mod:`.publisher` publishes its outputs, :mod:`.store` keeps the node's
executions (SQLite) and :mod:`.reconcile` answers the orchestrator's view of them.
"""
