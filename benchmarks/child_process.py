"""One child process timed to its end, as the side-by-side comparisons measure it."""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def run_measured(args: list[str], cwd: str | Path, timeout: float,
                 stdout: Any = subprocess.DEVNULL) -> tuple[float, float, float]:
    """Run ``args`` in ``cwd`` to its end: (wall s, its user + system CPU s from ``wait4``, its peak RSS
    MiB). A failure or a run past ``timeout`` (killed) is a SystemExit with the tail of its stderr."""
    with tempfile.TemporaryFile() as stderr:
        wall = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - wall
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-15:]
            why = f"killed after {timeout:g} s" if wall >= timeout else f"exit status {proc.returncode}"
            raise SystemExit(f"{' '.join(args)} in {cwd}: {why}\n" + "\n".join(tail))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
