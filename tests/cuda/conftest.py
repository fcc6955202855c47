"""The CUDA backend's tests, by default under numba's CUDA simulator (CI has no GPU).

The simulator must be chosen before numba.cuda is first imported, so these tests run in a pytest
process of their own (`pytest tests/cuda`; the main run ignores this folder). On a GPU machine,
`NUMBA_ENABLE_CUDASIM=0 pytest tests/cuda` runs the same tests on the hardware, plus the ones
marked `gpu`.

Under the simulator, host code is held to what real device arrays offer: a kernel given a numpy
array (which numba would silently copy both ways on a GPU) or numpy-only methods called on a
device array fail the test. CONVDESIGNER_RECORD_KERNELS=FILE writes every launched kernel's
signature to FILE, for compile_kernels.py to compile to PTX for real GPUs.
"""
import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
_WANT_SIMULATOR = os.environ["NUMBA_ENABLE_CUDASIM"] == "1"

import json  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from numba.cuda.core import config as _cuda_config  # noqa: E402

SIMULATOR = bool(_cuda_config.ENABLE_CUDASIM)
_MISMATCH = SIMULATOR != _WANT_SIMULATOR  # numba.cuda was imported before this file ran


def _real_gpu() -> bool:
    if SIMULATOR:
        return False
    from numba import cuda

    try:
        return cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken driver is no GPU
        return False


def pytest_configure(config):
    # the dropout hash wraps uint64 on purpose; numpy warns about that under the simulator
    config.addinivalue_line("filterwarnings", "ignore:overflow encountered:RuntimeWarning")


def pytest_collection_modifyitems(config, items):
    if _MISMATCH:
        skip = pytest.mark.skip(reason="numba.cuda was imported before the CUDA simulator could "
                                       "be enabled: run `pytest tests/cuda` as its own process")
        for item in items:
            item.add_marker(skip)
        return
    if not SIMULATOR and not _real_gpu():
        skip = pytest.mark.skip(reason="NUMBA_ENABLE_CUDASIM=0 but no usable CUDA GPU")
        for item in items:
            item.add_marker(skip)
        return
    if SIMULATOR:
        skip = pytest.mark.skip(reason="needs a real CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


# -- the simulator, made as strict as the hardware (and quicker) ------------------------------
def _barrier_blocks(kernel_module) -> None:
    """Run simulated blocks with a barrier instead of numba's loop that polls its threads while
    holding the GIL (several times faster).

    Stricter too: a block whose threads do not all reach a syncthreads fails after a minute
    instead of being released.
    """
    BlockThread, BlockManager = kernel_module.BlockThread, kernel_module.BlockManager
    original_run = BlockThread.run

    def thread_run(self):
        original_run(self)
        if self.exception is not None:
            self._manager.barrier.abort()

    def syncthreads(self):
        try:
            self._manager.barrier.wait()
        except threading.BrokenBarrierError:
            raise RuntimeError("another thread of the block failed, or not all of them reached "
                               "this syncthreads") from None

    def manager_run(self, grid_point, *args):
        def target():
            self._f(*args)

        threads = [BlockThread(target, self, grid_point, point, self._debug)
                   for point in np.ndindex(*self._block_dim)]
        self.barrier = threading.Barrier(len(threads), timeout=60)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures = [t.exception for t in threads if t.exception is not None]
        if failures:
            first = next((f for f in failures if "another thread" not in str(f[0])), failures[0])
            raise first[0].with_traceback(first[1])

    BlockThread.run, BlockThread.syncthreads = thread_run, syncthreads
    BlockManager.run = manager_run


def _locked_shared_arrays(kernelapi) -> None:
    """numba's simulated cuda.shared.array checks and fills its table without a lock, so two
    threads starting together can each get a private "shared" array (a flaky wrong sum)."""
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        assert shape != 0 and alignment is None, "dynamic or aligned shared memory"
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        caller = traceback.extract_stack(sys._getframe())[-2][0:2]  # file and line
        with lock:
            return self._allocations.setdefault(caller, np.empty(shape, dtype))

    kernelapi.FakeCUDAShared.array = array


_DEVICE_ARRAY_ATTRIBUTES = {
    "dtype", "size", "ndim", "strides", "nbytes", "itemsize", "flags", "squeeze",
    # what numpy reads when asked for a copy (real device arrays have __array__)
    "__array_interface__", "__array_struct__", "__array__", "__array_priority__",
}
_recorded: set[tuple[str, str, str]] = set()


def _signature_of(arg) -> str:
    if hasattr(arg, "_numba_type_"):
        kind = arg._numba_type_
        assert kind.layout == "C", f"a kernel got a non-contiguous array ({kind})"
        return f"{kind.dtype}[{', '.join([':'] * (kind.ndim - 1) + ['::1'])}]"
    if isinstance(arg, (bool, np.bool_)):
        return "boolean"
    if isinstance(arg, (int, np.integer)):
        return "int64" if isinstance(arg, int) else str(np.dtype(type(arg)))
    if isinstance(arg, (float, np.floating)):
        return "float64" if isinstance(arg, float) else str(np.dtype(type(arg)))
    if isinstance(arg, tuple):
        kinds = {_signature_of(v) for v in arg}
        assert len(kinds) == 1, f"mixed tuple {arg!r}"
        return f"UniTuple({kinds.pop()}, {len(arg)})"
    raise TypeError(f"unexpected kernel argument {type(arg).__name__}")


@pytest.fixture(autouse=True, scope="session")
def strict_simulator():
    if not SIMULATOR or _MISMATCH:
        yield
        return
    from numba.cuda.simulator import kernel as kernel_module
    from numba.cuda.simulator import kernelapi
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    _barrier_blocks(kernel_module)
    _locked_shared_arrays(kernelapi)
    # every simulated thread is a Python thread: hand the GIL over often, not every 5 ms
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-3)
    original_getattr, original_call = FakeCUDAArray.__getattr__, FakeCUDAKernel.__call__

    def getattr_(self, name):
        if name not in _DEVICE_ARRAY_ATTRIBUTES:
            raise AttributeError(f"device arrays have no {name!r} on a real GPU")
        return original_getattr(self, name)

    def call(self, *args):
        if not self._device:
            for arg in args:
                if isinstance(arg, np.ndarray):
                    raise TypeError(f"{self.fn.__name__} was given a host array: on a GPU numba "
                                    f"would copy it to the device and back at every launch")
            signature = ", ".join(_signature_of(arg) for arg in args)
            _recorded.add((self.fn.__module__, self.fn.__name__, signature))
        return original_call(self, *args)

    FakeCUDAArray.__getattr__, FakeCUDAKernel.__call__ = getattr_, call
    yield
    FakeCUDAArray.__getattr__, FakeCUDAKernel.__call__ = original_getattr, original_call
    sys.setswitchinterval(switch_interval)
    target = os.environ.get("CONVDESIGNER_RECORD_KERNELS")
    if target:
        previous = json.loads(Path(target).read_text()) if Path(target).exists() else []
        rows = sorted({tuple(row) for row in previous} | _recorded)
        Path(target).write_text(json.dumps(rows, indent=1))
