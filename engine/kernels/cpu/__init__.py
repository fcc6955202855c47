"""CPU kernels (@njit, parallel, nogil, cached) and the Op classes that own their buffers."""
