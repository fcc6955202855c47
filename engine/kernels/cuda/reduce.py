"""Per-channel sums on the GPU: one block per channel, a tree over shared memory.

Used for bias gradients (Conv, Dense) and by BatchNorm's and the losses' sums. numba's kernel
cache keys a kernel on its own file only: after editing block_sum, clear the callers' caches.
"""
from __future__ import annotations

from numba import cuda

from .runtime import REDUCE_THREADS, SIMULATOR, stream

DEVICE_INLINE = {} if SIMULATOR else {"forceinline": True}


@cuda.jit(device=True, **DEVICE_INLINE)
def block_sum(partial, value):
    """The sum of `value` over the block's threads, returned to every thread. partial is a shared
    array of REDUCE_THREADS elements; every thread of the block must call this."""
    t = cuda.threadIdx.x
    partial[t] = value
    cuda.syncthreads()
    step = REDUCE_THREADS // 2
    while step > 0:
        if t < step:
            partial[t] += partial[t + step]
        cuda.syncthreads()
        step //= 2
    total = partial[0]
    cuda.syncthreads()  # partial may be reused right after
    return total


@cuda.jit(cache=True)
def channel_sum_kernel(x, out, channels, positions):
    """out[c] = sum over samples and positions of x [N, channels, positions] (flat)."""
    c = cuda.blockIdx.x
    partial = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    acc = cuda.local.array(1, dtype=x.dtype)
    acc[0] = 0
    count = x.size // channels
    for e in range(cuda.threadIdx.x, count, REDUCE_THREADS):
        acc[0] += x[((e // positions) * channels + c) * positions + e % positions]
    total = block_sum(partial, acc[0])
    if cuda.threadIdx.x == 0:
        out[c] = total


def channel_sum(x, out, channels: int, positions: int) -> None:
    """Launch channel_sum_kernel: out [channels] from x flat [N * channels * positions]."""
    channel_sum_kernel[channels, REDUCE_THREADS, stream()](x, out, channels, positions)
