"""`convdesigner import SOURCE --out MODEL.h5`: ONNX or Keras (.h5, .keras) to a model file."""
from __future__ import annotations

from pathlib import Path

from ..modelfile import ModelFile, save_model
from . import InteropError
from ._build import Builder


def read_source(source: str | Path) -> ModelFile:
    """The source as an unsaved model: graph (laid out left to right), weights, and a data spec
    holding the input normalisation the source applied."""
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
    graph = builder.finish(last, name)
    return ModelFile(graph, builder.weights, data_spec=builder.data_spec(graph))


def import_model(source: str | Path, out: str | Path) -> None:
    model = read_source(source)
    save_model(out, model.graph, model.weights, data_spec=model.data_spec)
