"""The house rule that engine/ never imports Qt or the designer, checked by importing every
engine module in a process where those imports fail."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib, pkgutil, sys
for blocked in ("PySide6", "pyqtgraph", "designer", "shiboken6"):
    sys.modules[blocked] = None  # any import of them now raises ImportError
import engine
for info in pkgutil.walk_packages(engine.__path__, "engine."):
    importlib.import_module(info.name)
print("ok")
"""


def test_engine_imports_without_qt_or_designer():
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
