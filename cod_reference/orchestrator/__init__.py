"""The orchestrator: job store, evaluation broker, scheduler, node manager and HTTP API."""
from .service import Orchestrator, OrchestratorConfig, StopError
from .scheduler import SchedulerConfig

__all__ = ["Orchestrator", "OrchestratorConfig", "SchedulerConfig", "StopError"]
