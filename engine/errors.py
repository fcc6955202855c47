"""Error classes shared by modules that must not import each other (a leaf: imports nothing)."""


class BackendError(RuntimeError):
    """The requested backend cannot run here (e.g. no usable CUDA GPU or driver)."""


class UsageError(ValueError):
    """A bad argument: reported as one line, exit code 2."""
