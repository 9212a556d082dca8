import sys
from pathlib import Path

# the adapter tests' hand-built traces
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
