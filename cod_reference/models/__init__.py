"""The typed model shared by every role of the network: one shape of a job everywhere.

- :mod:`.spec`: the job spec (:class:`Job`, :class:`Task`, inputs, resources, timeouts);
- :mod:`.records`: :class:`Execution`, :class:`Evaluation`, :class:`NodeInfo`/:class:`NodeState`;
- :mod:`.parse`: what users submit, checked once at the edge (bounds in :mod:`.limits`,
  YAML decoding in :mod:`.documents`);
- :mod:`.serialize`: the JSON of the API, the stores and the messages (Bacalhau's names);
- :mod:`.units` sizes, CPU amounts, data URLs; :mod:`.paths` node allow-lists;
  :mod:`.builders` spec documents built in code.

States are the enums of :mod:`cod_reference.states`.
"""
from .builders import wasm_job
from .documents import DocumentError, load_document
from .parse import SpecError, load_job_text, parse_job, tarball_problem
from .paths import AllowedPath, holds_path
from .records import (
    APPROVED,
    CONNECTED,
    DISCONNECTED,
    ComputeError,
    Evaluation,
    Execution,
    ExecutionStatus,
    NodeInfo,
    NodeState,
    PublishedResult,
    Removal,
    Removed,
    RunOutput,
    RunResult,
)
from .serialize import (
    allocation_from_dict,
    allocation_to_dict,
    compute_error_from_dict,
    evaluation_to_dict,
    execution_from_dict,
    execution_to_dict,
    job_from_dict,
    job_to_dict,
    node_info_from_dict,
    node_info_to_dict,
    node_state_from_dict,
    node_state_to_dict,
    removal_from_dict,
    removal_to_dict,
    report_from_dict,
    report_to_dict,
    run_result_from_dict,
    spec_to_dict,
)
from .spec import (
    CONSTRAINT_OPERATORS,
    DEFAULT_CPU,
    DEFAULT_MEMORY,
    DEFAULT_NAMESPACE,
    Allocation,
    Constraint,
    InputSource,
    Job,
    JobStatus,
    JobType,
    NetworkType,
    PublisherType,
    Resources,
    ResultPath,
    SourceType,
    Task,
    Timeouts,
    WasmEngine,
)
from .units import TARBALL_TYPES, decode_data_url, encode_data_url, parse_cpu, parse_size

__all__ = [
    "APPROVED", "CONNECTED", "CONSTRAINT_OPERATORS", "DEFAULT_CPU", "DEFAULT_MEMORY", "DEFAULT_NAMESPACE",
    "DISCONNECTED", "TARBALL_TYPES", "Allocation", "AllowedPath", "ComputeError", "Constraint", "DocumentError",
    "Evaluation", "Execution", "ExecutionStatus", "InputSource", "Job", "JobStatus", "JobType", "NetworkType",
    "NodeInfo", "NodeState", "PublishedResult", "PublisherType", "Removal", "Removed", "Resources", "ResultPath",
    "RunOutput", "RunResult", "SourceType", "SpecError", "Task", "Timeouts", "WasmEngine", "allocation_from_dict",
    "allocation_to_dict", "compute_error_from_dict", "decode_data_url", "encode_data_url", "evaluation_to_dict",
    "execution_from_dict", "execution_to_dict", "holds_path", "job_from_dict", "job_to_dict", "load_document",
    "load_job_text", "node_info_from_dict", "node_info_to_dict", "node_state_from_dict", "node_state_to_dict",
    "parse_cpu", "parse_job", "parse_size", "removal_from_dict", "removal_to_dict", "report_from_dict",
    "report_to_dict", "run_result_from_dict", "spec_to_dict", "tarball_problem", "wasm_job",
]
