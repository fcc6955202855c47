"""The CUDA GPUs this process can use: name, memory, compute capability (never raises).

`convdesigner info --devices` prints describe_devices(); the designer lists cuda_devices().
"""
from __future__ import annotations


def _cuda():
    """numba.cuda, or the one-line reason it cannot be imported."""
    try:
        from numba import cuda
    except Exception as err:  # noqa: BLE001 - numba-cuda or the CUDA Python bindings missing
        from .kernels.cuda.runtime import one_line

        return None, f"numba-cuda is not usable here ({one_line(err)})"
    return cuda, ""


def cuda_devices() -> list[dict]:
    """One dict per GPU: index, name, compute_capability "major.minor", multiprocessors,
    memory_total and memory_free in bytes (None where the driver would not say). Empty where
    there is no usable driver or GPU."""
    cuda, _ = _cuda()
    if cuda is None:
        return []
    try:
        gpus = list(cuda.gpus)
    except Exception:  # noqa: BLE001 - CudaSupportError: no driver
        return []
    devices = []
    for index, gpu in enumerate(gpus):
        try:
            with gpu:
                device = cuda.get_current_device()
                name = getattr(device, "name", "numba's CUDA simulator")
                name = name.decode() if isinstance(name, bytes) else name
                major, minor = device.compute_capability
                info = {"index": index, "name": str(name),
                        "compute_capability": f"{major}.{minor}",
                        "multiprocessors": int(getattr(device, "MULTIPROCESSOR_COUNT", 0)),
                        "memory_total": None, "memory_free": None}
                try:
                    free, total = cuda.current_context().get_memory_info()
                    info["memory_free"], info["memory_total"] = int(free), int(total)
                except Exception:  # noqa: BLE001 - the simulator has no memory info
                    pass
        except Exception as err:  # noqa: BLE001 - a GPU the driver lists but cannot open
            from .kernels.cuda.runtime import one_line

            info = {"index": index, "name": f"unusable GPU ({one_line(err)})",
                    "compute_capability": None, "multiprocessors": 0, "memory_total": None,
                    "memory_free": None}
        devices.append(info)
    return devices


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 2 ** 30:.1f} GiB"


def describe_devices() -> str:
    """A few lines for people: each GPU, or why there is none and what training will use."""
    cuda, reason = _cuda()
    if cuda is not None:
        from .kernels.cuda.runtime import SIMULATOR, one_line

        try:
            len(cuda.gpus)
        except Exception as err:  # noqa: BLE001 - CudaSupportError: no driver
            reason = f"no usable CUDA driver ({one_line(err)})"
    devices = cuda_devices()
    if not devices:
        reason = reason or "no CUDA GPU found"
        return f"No CUDA device: {reason}.\nTraining runs on the CPU (--device cpu)."
    lines = []
    for d in devices:
        lines.append(f"GPU {d['index']}: {d['name']}, compute capability "
                     f"{d['compute_capability']}, {d['multiprocessors']} multiprocessors, "
                     f"memory {_gib(d['memory_total'])} ({_gib(d['memory_free'])} free)")
    if SIMULATOR:
        lines.append("(NUMBA_ENABLE_CUDASIM=1: this is numba's CUDA simulator, not a GPU)")
    from .backend import BackendError
    from .kernels.cuda.runtime import ensure_usable

    try:
        ensure_usable()
    except BackendError as err:
        lines.append(str(err))
    else:
        lines.append("Use --device cuda to train on GPU 0 (CUDA_VISIBLE_DEVICES picks another).")
    return "\n".join(lines)
