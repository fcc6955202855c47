"""`convdesigner import SOURCE --out MODEL.h5`: ONNX or Keras (.h5, .keras) to a model file."""
from __future__ import annotations

from pathlib import Path

from ..graph import Graph
from . import InteropError
from ._build import Builder


def import_graph(source: str | Path) -> tuple[Builder, Graph]:
    """The source as a graph, and the builder that holds its weights and normalisation."""
    path = Path(source)
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .onnx import import_onnx

        builder, last, name = import_onnx(path, Builder)
    elif suffix in (".h5", ".hdf5", ".keras"):
        from .keras import import_keras

        builder, last, name = import_keras(path, Builder)
    else:
        raise InteropError(f"{path}: import reads .onnx files and Keras models (.h5, .keras)")
    return builder, builder.finish(last, name)


def import_model(source: str | Path, out: str | Path) -> None:
    builder, graph = import_graph(source)
    builder.save(graph, out, Path(source).name)
