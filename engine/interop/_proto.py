"""The few ONNX protobuf messages an export needs, encoded by hand (onnx.proto3's field numbers),
so that writing ONNX needs no package; the tests check the result with onnx.checker."""
from __future__ import annotations

import struct

import numpy as np

FLOAT, INT64 = 1, 7  # TensorProto.DataType
_ELEM = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, payload: bytes | str) -> bytes:
    payload = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _float(field: int, x: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", x)


def attribute(name: str, value) -> bytes:
    """AttributeProto for an int, a float, a string or a list of ints."""
    if isinstance(value, (list, tuple)):
        return _bytes(1, name) + b"".join(_int(8, int(v)) for v in value) + _int(20, 7)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, 3)
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, 1)
    return _bytes(1, name) + _int(3, int(value)) + _int(20, 2)


def node(op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs) -> bytes:
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, name) + _bytes(4, op_type)
            + b"".join(_bytes(5, attribute(k, v)) for k, v in attrs.items()))


def tensor(name: str, array: np.ndarray) -> bytes:
    array = np.asarray(array, order="C")
    return (b"".join(_int(1, d) for d in array.shape) + _int(2, _ELEM[array.dtype])
            + _bytes(8, name) + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes()))


def value_info(name: str, dims: list[int | str]) -> bytes:
    """A float tensor's ValueInfoProto; a str dim is symbolic (the batch axis)."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, FLOAT) + _bytes(2, shape)))


def model(name: str, nodes: list[bytes], initializers: list[bytes], inputs: list[bytes],
          outputs: list[bytes], opset: int, ir_version: int, producer: str, version: str) -> bytes:
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, name)
             + b"".join(_bytes(5, t) for t in initializers)
             + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))
    return (_int(1, ir_version) + _bytes(2, producer) + _bytes(3, version) + _bytes(7, graph)
            + _bytes(8, _bytes(1, "") + _int(2, opset)))
