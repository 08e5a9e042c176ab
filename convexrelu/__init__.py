"""convexrelu: the convex geometry of two-layer ReLU networks, in JAX.

Re-exports only (STYLE.md §1). The optional ``bridge`` (cvxpy, cvxpylayers) and ``plotting``
(matplotlib) submodules are not imported here: ``from convexrelu import bridge``.
"""

from . import datasets as datasets
from ._losses import (
    exponential_loss as exponential_loss,
    log_loss as log_loss,
    logistic_loss as logistic_loss,
    neuron_alignment as neuron_alignment,
    normalized_margin as normalized_margin,
    regularized_objective as regularized_objective,
    smoothed_margin as smoothed_margin,
    squared_loss as squared_loss,
)
from ._network import (
    Network as Network,
    balance as balance,
    forward as forward,
    init_network as init_network,
    neuron_patterns as neuron_patterns,
    param_norm_sq as param_norm_sq,
)
from ._solution import ConvexSolution as ConvexSolution, status_name as status_name
# --- patterns (issue 2) ---
# --- train (issue 2) ---
# --- programs and certificates (issue 3) ---
# --- solver (issue 3) ---
# --- maps (issue 3) ---

__version__ = "0.1.0"
