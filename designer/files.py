"""Reading documents: graph JSON, and HDF5 model files through engine.modelfile (imported when
first needed). What a model file holds besides its graph comes back as an engine Session."""
from __future__ import annotations

from pathlib import Path

from engine import Graph, GraphFormatError
from engine.session import Session

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MODEL_SUFFIXES = (".h5", ".hdf5")


class FileProblem(Exception):
    """A file could not be read or written; the message is for the user."""


def is_model_file(path: Path) -> bool:
    if path.suffix.lower() in MODEL_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def read_model(path: str | Path):
    """The engine's ModelFile in path; every failure is one FileProblem."""
    path = Path(path)
    try:
        from engine.modelfile import load_model
    except ImportError as err:
        raise FileProblem(f"{path.name}: model files cannot be read here ({err})") from None
    try:
        return load_model(path)
    except Exception as err:  # a foreign or damaged file can fail a reader in any way
        raise FileProblem(f"{path.name}: {err}") from None


def load_document(path: str | Path) -> tuple[Graph, Session | None]:
    """The graph in path (.json graph or .h5 model) and, for a model, the whole model."""
    path = Path(path)
    if not path.is_file():
        raise FileProblem(f"{path}: no such file")
    if is_model_file(path):
        model = read_model(path)
        return model.graph, Session.from_model(model, path)
    try:
        return Graph.load_json(path), None
    except (GraphFormatError, OSError, UnicodeDecodeError) as err:
        raise FileProblem(str(err)) from None


def trained_epochs(path: Path) -> int | None:
    """How many epochs the model file at path was trained for (None: no readable model)."""
    if not path.is_file() or not is_model_file(path):
        return None
    try:
        model = read_model(path)
    except FileProblem:
        return None
    return len(model.history.get("epoch", []))
