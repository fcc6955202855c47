"""Kernels: cpu/ (numba @njit) and cuda/ (numba.cuda), one file per module family."""
