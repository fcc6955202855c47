"""convdesigner's numeric engine: graphs, modules, numba kernels, training. Never imports Qt."""
import os

# numba's OpenMP workers, BLAS and the conv op's worker threads take turns on the same cores;
# OpenMP's default spin-wait after each parallel region starves the others (a lenet5 step took
# 60 ms instead of 8). Must be set before the OpenMP runtime loads.
OMP_WAIT_POLICY_CHOSEN_BY_USER = "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import losses  # noqa: E402
from .graph import Graph, GraphError, GraphFormatError, GraphValidationError  # noqa: E402
from .network import Network, compile_network  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Graph", "GraphError", "GraphFormatError", "GraphValidationError", "Network",
           "compile_network", "losses", "__version__"]
