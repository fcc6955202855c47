"""convdesigner's numeric engine: graphs, modules, numba kernels, training. Never imports Qt."""
from . import losses
from .graph import Graph, GraphError, GraphFormatError, GraphValidationError
from .network import Network, compile_network

__version__ = "0.1.0"
__all__ = ["Graph", "GraphError", "GraphFormatError", "GraphValidationError", "Network",
           "compile_network", "losses", "__version__"]
