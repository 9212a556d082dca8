"""Build the wasi:otel Python guest with componentize-py (``python build.py [OUT]``).

The component is ~18 MB and takes ~10 s to build, so it is not committed: ``make
guests`` and the tests build it into ``guest-examples/build/component/`` and
rebuild only when ``app.py``, the WIT or componentize-py changed (a digest of
those is kept beside the output).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "build" / "component" / "otel_guest.wasm"


def source_digest() -> str:
    digest = hashlib.sha256(metadata.version("componentize-py").encode())
    for path in sorted([HERE / "app.py", *(HERE / "wit").rglob("*.wit")]):
        digest.update(path.relative_to(HERE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build(out: Path = DEFAULT_OUT) -> Path:
    """The built component, rebuilt only when its sources changed."""
    stamp = out.with_suffix(".digest")
    wanted = source_digest()
    if out.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.wasm")
    script = "import sys, componentize_py; sys.argv[0] = 'componentize-py'; sys.exit(componentize_py.script())"
    subprocess.run([sys.executable, "-c", script, "-q", "-d", str(HERE / "wit"), "-w", "otel-guest",
                    "componentize", "-p", str(HERE), "app", "-o", str(partial)], check=True, cwd=HERE)
    partial.replace(out)
    stamp.write_text(wanted)
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
