"""CUDA kernels (numba-cuda @cuda.jit) and the Op classes that keep their buffers on the device."""
