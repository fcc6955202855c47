"""What the Train panel trains on and where: a loaded dataset with its split (DataInfo), the
split of a data choice, the built-in dataset that fits an Input, and the devices found."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from engine.data import GENERATED, Dataset, generate
from engine.session import DataProblem


@dataclass
class DataInfo:
    """A loaded dataset and its split, as the Train panel previews them; problem says why it
    cannot train the model (None when it can)."""

    dataset: Dataset
    train_range: tuple[int, int]
    val_range: tuple[int, int]
    train_counts: np.ndarray
    val_counts: np.ndarray
    problem: DataProblem | None = None


@cache
def _generated_shape(name: str) -> tuple[int, ...]:
    return generate(name, 4).input_shape


def builtin_dataset_for(shape) -> str | None:
    """The built-in generated dataset whose samples fit an Input shape, if one does."""
    return next((name for name in GENERATED if _generated_shape(name) == tuple(shape)), None)


def find_devices() -> tuple[list[tuple[str, str]], str]:
    """[(device id, label)] with the CPU first and each CUDA GPU found, and a sentence saying why
    there is no GPU ("" when there is one)."""
    from engine.threads import available_cores

    found = [("cpu", f"CPU ({available_cores()} cores)")]
    try:
        from engine.devices import cuda_devices
    except ImportError:
        cuda_devices = None
    try:
        if cuda_devices is not None:
            gpus = list(cuda_devices())
        else:
            from numba import cuda

            gpus = list(cuda.gpus) if cuda.is_available() else []
    except Exception as err:  # a broken driver can fail detection in any way
        return found, f"No GPU: CUDA detection failed ({err})."
    for index, gpu in enumerate(gpus):
        name = gpu.get("name") if isinstance(gpu, dict) else getattr(gpu, "name", gpu)
        if isinstance(name, bytes):
            name = name.decode()
        found.append((f"cuda:{index}", f"GPU {index}: {name}"))
    if len(found) == 1:
        return found, ("No GPU: no NVIDIA GPU with a working CUDA driver was found, so training "
                       "runs on the CPU.")
    return found, ""
