"""Bounds on what a job submitter may send: every value a user controls has one.

A job spec comes from people the network does not trust; without bounds a 200 MB name,
a YAML alias bomb or a 500-deep document reaches the stores, the scheduler and the
logs. Exceeding a bound is a 4xx naming the field, never a crash.
"""
from __future__ import annotations

MAX_BODY_BYTES = 16 * 2**20     # an API request body, and a spec file (inline inputs travel inside it)
MAX_NAME = 255                  # job, namespace and task names; label, meta and env keys; result names
MAX_VALUE = 4096                # label, meta and env values; arguments; constraint values; paths
MAX_URL = 8192                  # urlDownload URLs (inline data URLs are bounded by the body)
MAX_ITEMS = 1000                # entries in any list or mapping of the spec
MAX_COUNT = 10_000              # partitions of one job: each scheduler pass walks them all
MAX_PRIORITY = 10**9
MAX_TIMEOUT_S = 365 * 86400     # a year
MAX_REF = MAX_NAME              # a job reference (ID, ID prefix or name) in a request
MAX_TOKEN = 2**62               # next_token and log offsets (SQLite integers are 64-bit)
MAX_PROBLEMS = 20               # problems listed in one error (the rest are counted)

MAX_YAML_DEPTH = 32             # nesting of a YAML/JSON document (a job spec needs 7)
MAX_YAML_SIZE = MAX_BODY_BYTES  # characters of a YAML document once its aliases are expanded

MAX_TARBALL_MEMBERS = 10_000    # entries of an inline tarball input
MAX_TARBALL_BYTES = 256 * 2**20  # its unpacked size

# Admission: how fast and how much one API takes in (the operator's flags; 0 turns one off)
DEFAULT_SUBMIT_RATE = 20.0      # job submissions a second per client address, sustained ...
DEFAULT_SUBMIT_BURST = 200      # ... after a burst of this many (a full bucket)
DEFAULT_MAX_UNFINISHED_JOBS = 10_000  # jobs Pending, Queued or Running at once, all clients together
MAX_RATE_CLIENTS = 10_000       # client addresses whose submission rate is remembered at once
