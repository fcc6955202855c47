"""The CUDA backend: device arrays, one compute stream, pinned staging for batches, launch sizes.

Importing this module never touches the driver; CUDABackend() checks once that a GPU really runs
kernels here and raises BackendError with a one-line reason where it does not.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from ...errors import BackendError

try:
    from numba import cuda
    from numba.cuda.core import config as _cuda_config
except Exception as err:  # noqa: BLE001 - numba-cuda or the CUDA Python bindings missing
    cuda = None
    _IMPORT_ERROR: Exception | None = err
    SIMULATOR = False
else:
    _IMPORT_ERROR = None
    SIMULATOR = bool(_cuda_config.ENABLE_CUDASIM)

# The simulator runs every thread as a Python thread, so it gets few of them; grid-stride loops
# make every kernel correct for any launch size.
THREADS = 8 if SIMULATOR else 256
MAX_BLOCKS = 2 if SIMULATOR else 8192
REDUCE_THREADS = 8 if SIMULATOR else 256  # per block in one-block-per-channel reductions
# Stored where a float64 literal 0.0 would make a float32 kernel convert through float64 (slow
# on consumer GPUs). Only stored, never combined with math.* results: under the simulator those
# are Python floats, and numpy would round float32 + Python float to float32.
ZERO = np.float32(0)


def one_line(err: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(err)).strip(" :")
    return text or type(err).__name__


def launch(n: int) -> tuple:
    """(blocks, threads, stream) for a grid-stride kernel over n items."""
    return max(1, min(MAX_BLOCKS, -(-n // THREADS))), THREADS, stream()


_stream = None


def stream():
    """The one stream every kernel and copy of this process goes on (so they stay ordered)."""
    global _stream
    if _stream is None:
        _stream = cuda.stream()
    return _stream


def is_device(array) -> bool:
    return not isinstance(array, np.ndarray) and hasattr(array, "copy_to_host")


if cuda is not None:
    @cuda.jit(cache=True)
    def fill_kernel(x, value):
        for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
            x[i] = value

    @cuda.jit(cache=True)
    def cast_kernel(target, source):
        for i in range(cuda.grid(1), target.size, cuda.gridsize(1)):
            target[i] = source[i]

    @cuda.jit(cache=True)
    def add_kernel(target, source):
        for i in range(cuda.grid(1), target.size, cuda.gridsize(1)):
            target[i] += source[i]


def fill(array, value) -> None:
    flat = array.reshape(-1)
    fill_kernel[launch(flat.size)](flat, array.dtype.type(value))


_usable: str | None = None  # "" once checked and usable, else the reason


def _probe() -> str:
    """Why kernels cannot run here ("" when they can), as one line."""
    if cuda is None:
        return (f"the CUDA backend needs numba-cuda and the CUDA Python bindings "
                f"({one_line(_IMPORT_ERROR)}); install them with pip install 'numba-cuda[cu12]'")
    if SIMULATOR:
        return ""
    try:
        count = len(cuda.gpus)
    except Exception as err:  # noqa: BLE001 - the driver's own CudaSupportError and kin
        return f"no usable CUDA driver ({one_line(err)})"
    if not count:
        return "no CUDA GPU found"
    try:
        probe = cuda.device_array(1, np.float32)
        fill_kernel[1, 1](probe, np.float32(1))
        cuda.synchronize()
    except Exception as err:  # noqa: BLE001 - NVVM/NVRTC missing, GPU too old, out of memory
        return (f"a CUDA GPU is present but kernels cannot be compiled or run on it "
                f"({one_line(err)}); pip install 'numba-cuda[cu12]' brings the CUDA libraries")
    return ""


def ensure_usable() -> None:
    """Raise BackendError unless CUDA kernels can run in this process (checked once)."""
    global _usable
    if _usable is None:
        _usable = _probe()
    if _usable:
        raise BackendError(f"cannot use --device cuda: {_usable}. Use --device cpu instead.")


@dataclass
class _Staging:
    host: np.ndarray  # pinned
    device: object
    uploaded: object  # event recorded after the last upload left `host`


class CUDABackend:
    """Arrays live on the current CUDA device; every operation is queued on one stream.

    Nothing here waits for the GPU except to_host and synchronize, so a training step queues its
    kernels and only the metrics' scalars (and what the panels ask for) come back.
    """

    name = "cuda"

    def __init__(self):
        ensure_usable()
        self.stream = stream()
        self._staging: dict[str, _Staging] = {}

    def zeros(self, shape, dtype=np.float32):
        array = cuda.device_array(shape, dtype, stream=self.stream)
        fill(array, 0)
        return array

    def to_device(self, array, dtype=np.float32):
        """A new device array holding `array` (a device array of that dtype is returned as is)."""
        if is_device(array) and array.dtype == np.dtype(dtype):
            return array
        host = np.ascontiguousarray(self.to_host(array) if is_device(array) else array, dtype)
        return cuda.to_device(host, stream=self.stream)

    def to_host(self, array) -> np.ndarray:
        """A numpy copy of a device array, once the queued work that writes it is done."""
        if not is_device(array):
            return np.asarray(array)
        host = array.copy_to_host(stream=self.stream)
        self.stream.synchronize()
        return host

    def copy_into(self, target, source) -> None:
        """target[...] = source, where source is a host or a device array of target's size."""
        if is_device(source) and source.dtype != target.dtype:
            flat = target.reshape(-1)
            cast_kernel[launch(flat.size)](flat, source.reshape(-1))
        elif is_device(source):
            target.copy_to_device(source.reshape(target.shape), stream=self.stream)
        else:
            host = np.ascontiguousarray(source, target.dtype).reshape(target.shape)
            target.copy_to_device(host, stream=self.stream)

    def add_into(self, target, source) -> None:
        flat = target.reshape(-1)
        add_kernel[launch(flat.size)](flat, source.reshape(-1))

    def stage(self, array, slot: str, dtype=np.float32):
        """A host batch in this slot's reusable device buffer (no allocation once it is big
        enough). The upload goes through pinned memory on the stream, so it waits for the work
        that last read the buffer and the host does not wait for it."""
        if is_device(array):
            return array
        dtype = np.dtype(dtype)
        n = array.shape[0]
        entry = self._staging.get(slot)
        if (entry is None or entry.host.shape[1:] != array.shape[1:] or entry.host.shape[0] < n
                or entry.host.dtype != dtype):
            entry = _Staging(cuda.pinned_array(array.shape, dtype),
                             cuda.device_array(array.shape, dtype, stream=self.stream),
                             cuda.event())
            self._staging[slot] = entry
        else:
            entry.uploaded.synchronize()
        host, device = entry.host[:n], entry.device[:n]
        np.copyto(host, array, casting="unsafe")
        device.copy_to_device(host, stream=self.stream)
        entry.uploaded.record(self.stream)
        return device

    def synchronize(self) -> None:
        self.stream.synchronize()


@functools.cache
def multiprocessors() -> int:
    """How many SMs the GPU has (what split-K sizes its grids for)."""
    if SIMULATOR:
        return 2
    return cuda.get_current_device().MULTIPROCESSOR_COUNT
