"""Where arrays live and which kernels run: "cpu" (numpy + numba) or "cuda" (numba.cuda)."""
from __future__ import annotations

import numpy as np

from .errors import BackendError

__all__ = ["BACKENDS", "BackendError", "CPUBackend", "get_backend"]

BACKENDS = ("cpu", "cuda")


class CPUBackend:
    name = "cpu"

    def zeros(self, shape, dtype=np.float32) -> np.ndarray:
        return np.zeros(shape, dtype)

    def to_device(self, array: np.ndarray, dtype=np.float32) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return np.asarray(array)

    def copy_into(self, target, source: np.ndarray) -> None:
        np.copyto(target, source)

    def add_into(self, target, source) -> None:
        np.add(target, source, out=target)

    def stage(self, array: np.ndarray, slot: str, dtype=np.float32) -> np.ndarray:
        """A host batch as this backend's array (the CUDA backend reuses a buffer per slot)."""
        return self.to_device(array, dtype)

    def synchronize(self) -> None:
        pass


def get_backend(name: str):
    if name == "cpu":
        return CPUBackend()
    if name == "cuda":
        from .kernels.cuda.runtime import CUDABackend

        return CUDABackend()
    raise BackendError(f"unknown backend {name!r} (choose one of {', '.join(BACKENDS)})")
