"""The orchestrator: job store, evaluation broker, scheduler, node manager and HTTP API."""
from .scheduler import SchedulerConfig
from .service import Orchestrator, OrchestratorConfig, StopError

__all__ = ["Orchestrator", "OrchestratorConfig", "SchedulerConfig", "StopError"]
