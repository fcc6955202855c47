import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))

# tests/cuda runs in its own process under the CUDA simulator (see the Makefile's test target).
collect_ignore = ["cuda"]
