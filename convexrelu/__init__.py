"""convexrelu: the convex geometry of two-layer ReLU networks, in JAX.

Re-exports only (STYLE.md §1). The optional ``bridge`` (cvxpy, cvxpylayers) and ``plotting``
(matplotlib) submodules are not imported here: ``from convexrelu import bridge``.
"""

from . import datasets as datasets
from ._jit import enable_compilation_cache as enable_compilation_cache
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
from ._solution import RESULTS as RESULTS, ConvexSolution as ConvexSolution, status_name as status_name
from ._patterns import (
    enumerate_patterns as enumerate_patterns,
    merge_patterns as merge_patterns,
    pattern_bound as pattern_bound,
    pattern_count as pattern_count,
    sample_patterns as sample_patterns,
)
from ._train import (
    TrainHistory as TrainHistory,
    TrainResult as TrainResult,
    TrainState as TrainState,
    train as train,
    train_many as train_many,
)
from ._programs import (
    Optimality as Optimality,
    constraint_violation as constraint_violation,
    convex_fit as convex_fit,
    duality_gap as duality_gap,
    lagrangian as lagrangian,
    max_margin_dual_objective as max_margin_dual_objective,
    max_margin_infeasibility as max_margin_infeasibility,
    max_margin_objective as max_margin_objective,
    optimality as optimality,
    regularized_dual_objective as regularized_dual_objective,
    regularized_primal_objective as regularized_primal_objective,
)
from ._solver import solve_max_margin as solve_max_margin, solve_regularized as solve_regularized
from ._sensitivity import (
    solution_lagrangian as solution_lagrangian,
    value_derivative_beta as value_derivative_beta,
    value_gradient as value_gradient,
)
from ._implicit import ActiveSet as ActiveSet, active_set as active_set
from ._cones import cone_projection as cone_projection, nnls as nnls
from ._certificates import (
    DualCertificate as DualCertificate,
    KKTCertificate as KKTCertificate,
    RegularizedCertificate as RegularizedCertificate,
    dual_certificate as dual_certificate,
    kkt_certificate as kkt_certificate,
    regularized_certificate as regularized_certificate,
)
from ._maps import (
    is_minimal as is_minimal,
    is_nearly_minimal as is_nearly_minimal,
    prune as prune,
    split as split,
    to_convex as to_convex,
    to_network as to_network,
)
from ._geometry import (
    DualSpikes as DualSpikes,
    DualTrajectory as DualTrajectory,
    EllipsoidPoints as EllipsoidPoints,
    ExtremePoint as ExtremePoint,
    PolarBoundary as PolarBoundary,
    dual_spikes as dual_spikes,
    dual_trajectory as dual_trajectory,
    is_extreme_point as is_extreme_point,
    polar_boundary as polar_boundary,
    rectified_ellipsoid as rectified_ellipsoid,
)
from ._crosscheck import (
    Check as Check,
    CrosscheckReport as CrosscheckReport,
    CrosscheckRun as CrosscheckRun,
    crosscheck as crosscheck,
)
from ._gated import (
    GatedNetwork as GatedNetwork,
    GatedSolution as GatedSolution,
    cone_decomposition as cone_decomposition,
    gated_dual_objective as gated_dual_objective,
    gated_fit as gated_fit,
    gated_forward as gated_forward,
    gated_objective as gated_objective,
    gated_optimality as gated_optimality,
    gated_to_relu as gated_to_relu,
    solve_gated as solve_gated,
)
from ._path import (
    RegularizationPath as RegularizationPath,
    active_neurons as active_neurons,
    beta_max as beta_max,
    regularization_path as regularization_path,
)

from ._sweep import (
    SweepError as SweepError,
    SweepSpec as SweepSpec,
    load_spec as load_spec,
    sweep as sweep,
)

from ._hostpool import widen_intra_op_pool as _widen_intra_op_pool

_widen_intra_op_pool()  # importing convexrelu starts no JAX backend: see _hostpool (an XLA:CPU deadlock)

__version__ = "0.1.0"
