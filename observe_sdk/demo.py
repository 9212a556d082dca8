"""``make demo`` before the network: run a guest example under observation, print its trace."""
from __future__ import annotations

import sys
from pathlib import Path

from .cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ["guest-examples/build/hello.instr.wasm", "guest-examples/build/vowels.wasm",
              "guest-examples/wat/nested.instr.wat"]


def main() -> int:
    for rel in CANDIDATES:
        path = ROOT / rel
        if path.exists():
            print(f"== observe-sdk run {rel}", flush=True)
            return cli_main(["run", str(path), "--min-span-us", "0"])
    print("observe-sdk: error: no guest example found; run `make guests`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
