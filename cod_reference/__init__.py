"""cod_reference: a compute-over-data network in the style of Bacalhau that runs observed Wasm jobs.

Run a network and a job::

    python -m cod_reference devstack --computes 3 --port 1234      # each node its own process; Ctrl-C stops it
    python -m cod_reference wasm run guest-examples/build/hello.instr.wasm
    python -m cod_reference job run job.yaml --follow
    python -m cod_reference job describe|executions|history|logs|trace|get|stop ID
    python -m cod_reference job list;  python -m cod_reference node list
    python -m cod_reference.demo                                    # all of it in one go

Layout (Bacalhau's roles):

- :mod:`.models` the typed records every role shares (job spec, executions, evaluations,
  nodes; Bacalhau's field names), parsed once and bounded at the edge, serialized only at
  the stores and on the wire; :mod:`.states` the job and execution state machines.
- :mod:`.orchestrator` job store (SQLite), evaluation broker, scheduler, node manager;
  :mod:`.api` the HTTP API under ``/api/v1/orchestrator`` (OpenAPI at ``/docs``), behind
  :mod:`.api_guard` (body size, Host header, bearer token).
- :mod:`.compute` the compute node: message handler, bidder, executor buffer, runner,
  execution store, inputs, publisher; :mod:`.executor` the Wasm executor (wasmtime + WASI + observe_sdk).
- :mod:`.transport` the messages between nodes (JSON, with W3C trace context), an
  in-process transport and one over NATS with JetStream (:mod:`.natsserver` runs
  ``nats-server``); handshake and reconciliation in :mod:`.compute.reconcile` and
  :mod:`.orchestrator.reconcile`.
- :mod:`.serve` one node in a process (``cod serve --orchestrator|--compute``);
  :mod:`.procstack` the devstack of separate processes (docs/deploy.md).
- :mod:`.telemetry` OpenTelemetry spans and metrics of the network (``OTEL_*``), spans
  kept in the data dir when no collector is configured.
- :mod:`.devstack`, :mod:`.cli`, :mod:`.client`, :mod:`.demo`.

Decisions where Bacalhau has a quirk: a normal return from the entrypoint is exit code
0; a non-zero exit fails the execution (with the stderr tail) and is not retried on
another node (only node-side failures are); result paths are mounted at their ``Path``;
``job logs`` works for Wasm jobs; execution states are serialized as names; a job name
refers to the latest job of that name (re-submitting a name creates a new job).
"""
