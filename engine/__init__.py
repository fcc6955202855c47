"""convdesigner's numeric engine: graphs, modules, numba kernels, training. Never imports Qt."""
import os

# numba's OpenMP workers, BLAS and the engine's own worker threads take turns on the same cores.
# OpenMP's default spin after each parallel region (300,000 rounds) starves the others (a lenet5
# step took 60 ms instead of 8); no spin at all (OMP_WAIT_POLICY=PASSIVE) makes every parallel
# region pay a futex wake-up (the optimizer's ten small updates of lenet5 took 0.65 ms instead
# of 0.06). A short spin keeps back-to-back regions cheap. Read when the OpenMP runtime loads.
# ENGINE_SPINCOUNT marks the setting as the engine's, so that a child process that inherits it
# does not take it for the user's choice (user_openmp_env drops it for PyTorch's processes).
ENGINE_SPINCOUNT = "CONVDESIGNER_GOMP_SPINCOUNT"
OPENMP_CHOSEN_BY_USER = "OMP_WAIT_POLICY" in os.environ or (
    "GOMP_SPINCOUNT" in os.environ
    and os.environ["GOMP_SPINCOUNT"] != os.environ.get(ENGINE_SPINCOUNT))
if not OPENMP_CHOSEN_BY_USER:
    os.environ["GOMP_SPINCOUNT"] = os.environ[ENGINE_SPINCOUNT] = "1000"


def user_openmp_env() -> dict:
    """This process's environment without the engine's OpenMP spin setting (for a child that runs
    PyTorch with the user's OpenMP settings)."""
    env = dict(os.environ)
    if env.pop(ENGINE_SPINCOUNT, None) == env.get("GOMP_SPINCOUNT"):
        env.pop("GOMP_SPINCOUNT", None)
    return env


from . import losses  # noqa: E402
from .graph import Graph, GraphError, GraphFormatError, GraphValidationError  # noqa: E402
from .network import Network, compile_network  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Graph", "GraphError", "GraphFormatError", "GraphValidationError", "Network",
           "compile_network", "losses", "__version__"]
