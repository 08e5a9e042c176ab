"""β_max, the smallest regularization whose solution is zero, and the warm-started regularization path.

At ``W = 0`` the loss gradient is ``-g``, ``g = -∇_f ℓ(0, y)`` (``y`` for the squared loss, ``y/2``
for the logistic loss). Zero is optimal iff every block's subdifferential condition holds
(DESIGN.md):

* ReLU program: ``max_{u ∈ K_j, ‖u‖ ≤ 1} ±gᵀ D_j X u = ‖Π_{K_j}(±Xᵀ D_j g)‖ ≤ β`` for every ``j``, so
  ``β_max = max_j max(‖Π_{K_j}(Xᵀ D_j g)‖, ‖Π_{K_j}(-Xᵀ D_j g)‖)``. The projections are exact
  (Lawson & Hanson NNLS, :func:`convexrelu.nnls`); their multipliers ``η`` are the cone duals ``ν``
  that certify the zero solution with a zero gap.
* gated program: ``β_max = max_j ‖Xᵀ D_j g‖``.

The path solves from ``β_max`` down a geometric grid, each solve warm-started from the previous
solution (ADMM for the ReLU program, the matrix-free solver for its softmax loss, R-FISTA for the
gated one); ``β ≥ β_max`` gives the zero
solution with status optimal, without a solve.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ._cones import nnls
from ._gated import GatedNetwork, GatedSolution, gated_dual_norm, gated_fit, gated_forward, gated_optimality, solve_gated
from ._intercept import zero_intercept
from ._programs import negative_loss_gradient, optimality
from ._solution import RESULTS, ConvexSolution, status_name
from ._solver import solve_regularized
from ._validation import SOFTMAX_INTERCEPT, check_loss_targets, check_outputs, check_patterns, check_X

MODELS = ("relu", "gated")


def _check_problem(X, y, D, loss, model):
    """``(X, y, D)`` checked; softmax targets one-hot ``(n, c)`` come back as ``(c, n)``."""
    if loss not in ("squared", "logistic", "softmax"):
        raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    X = check_X(X)
    return X, check_loss_targets(y, X.shape[0], loss, dtype=X.dtype), check_patterns(D, X.shape[0])


def _block_projection(X, pattern, h):
    """``(‖Π_K(h)‖, η)`` with ``Π_K(h) = h + Aᵀη``, ``A = (2D - 1) ⊙ X``, ``η = argmin_{η≥0} ½‖Aᵀη + h‖²``."""
    A = (2.0 * pattern.astype(X.dtype) - 1.0)[:, None] * X
    eta, _ = nnls(A.T, -h)
    return jnp.linalg.norm(h + A.T @ eta), eta


@jax.jit
def relu_zero_certificate(
    X: Float[Array, "n d"], D: Bool[Array, "p n"], g: Float[Array, "*c n"]
) -> tuple[Float[Array, "*c 2 p"], Float[Array, "*c 2 p n"]]:
    """``‖Π_{K_j}(±Xᵀ(D_j ⊙ g))‖`` (index 0: ``+``, 1: ``-``) and the cone multipliers ``ν`` that
    attain them: with ``(g, ν)`` the ReLU program's dual blocks have exactly these norms. With ``c``
    outputs (``g (c, n)``) each output's, on a leading axis."""
    if g.ndim == 2:
        return jax.vmap(relu_zero_certificate, (None, None, 0))(X, D, g)
    H = (D.astype(X.dtype) * g) @ X
    proj = jax.vmap(_block_projection, in_axes=(None, 0, 0))
    n0, e0 = proj(X, D, H)
    n1, e1 = proj(X, D, -H)
    return jnp.stack([n0, n1]), jnp.stack([e0, e1])


def beta_max(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    loss: Literal["squared", "logistic", "softmax"] = "squared",
    model: Literal["relu", "gated"] = "relu",
    intercept: bool = False,
) -> Float[Array, ""]:
    """The smallest β whose regularized solution is zero, exactly (not estimated).

    With ``g = -∇_f ℓ(0, y)``: ``max_j max(‖Π_{K_j}(Xᵀ D_j g)‖, ‖Π_{K_j}(-Xᵀ D_j g)‖)`` for the ReLU
    program (``model="relu"``; exact cone projections by NNLS) and ``max_j ‖Xᵀ D_j g‖`` for the gated
    program (``model="gated"``). For every ``β ≥ β_max`` the solution is zero; below it, it is not.
    With an unregularized intercept (``intercept=True``) ``g`` is taken at the intercept's own
    optimum for ``W = 0``: ``b = mean(y)``, ``g = y - mean(y)`` (squared loss), or the log-odds
    ``b = log(n₊/n₋)``, ``g = y ⊙ σ(-y b)`` (logistic loss). With ``c`` outputs
    (targets ``(n, c)``; ``loss="softmax"``: one-hot, ``g = Y - 1/c``, the softmax at the zero fit)
    every output's blocks are bounded alike: ``β_max`` is the largest over the outputs.

    Args:
        X: data ``(n, d)``. y: targets ``(n,)`` (labels ±1 for the logistic loss).
        D: patterns ``(p, n)``. loss: ``"squared"``, ``"logistic"`` or ``"softmax"``. model: ``"relu"`` or ``"gated"``.
        intercept: the program has an unregularized intercept.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels, NaN, loss or model.

    Example:
        >>> b = cr.beta_max(X, y, D, loss="squared")
        >>> cr.solve_regularized(X, y, D, beta=b)   # U = V = 0
    """
    if loss == "softmax" or jnp.ndim(y) == 2:  # c outputs: each its own blocks, the largest of their bounds
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        X = check_X(X)
        Y = check_outputs(y, X.shape[0], loss, dtype=X.dtype)
        D = check_patterns(D, X.shape[0])
        if loss == "softmax":
            if intercept:
                raise ValueError(SOFTMAX_INTERCEPT)
            G = _zero_gradient(Y, "softmax", False)  # Y - 1/c: the outputs are coupled only through the loss
            if model == "gated":
                return gated_dual_norm(X, D, G)
            return jnp.max(relu_zero_certificate(X, D, G)[0])
        return jnp.max(jnp.stack([beta_max(X, Y[k], D, loss=loss, model=model, intercept=intercept) for k in range(Y.shape[0])]))
    X, y, D = _check_problem(X, y, D, loss, model)
    g = _zero_gradient(y, loss, intercept)
    if model == "gated":
        return gated_dual_norm(X, D, g)
    norms, _ = relu_zero_certificate(X, D, g)
    return jnp.max(norms)


def _zero_gradient(y, loss: str, intercept: bool):
    """``g = -∇_f ℓ`` at the zero network, at its optimal intercept ``b₀`` when there is one:
    ``y - mean(y)`` (squared), ``y ⊙ σ(-y b₀)`` with the log-odds ``b₀ = log(n₊/n₋)`` (logistic;
    then ``1ᵀg = 0``)."""
    b0 = zero_intercept(y, loss) if intercept else 0.0
    return negative_loss_gradient(jnp.full_like(y, b0), y, loss)


def _relu_zero_solution(X, y, D, beta, loss, nu) -> ConvexSolution:
    """The zero solution of the ReLU program, certified by ``g`` and the projections' ``ν`` (``c``
    softmax outputs: blocks ``(c, p, d)``)."""
    program = f"regularized-{loss}"
    Z = jnp.zeros(y.shape[:-1] + (D.shape[0], X.shape[1]), X.dtype)
    g = negative_loss_gradient(jnp.zeros_like(y), y, loss)
    b = jnp.asarray(beta, X.dtype)
    opt = optimality(X, y, D, Z, Z, g, nu, program=program, beta=b)
    return ConvexSolution(
        U=Z, V=Z, patterns=D, value=opt.value, dual=g, cone_dual=nu, gap=opt.gap, residual=opt.residual,
        status=jnp.asarray(RESULTS.optimal, jnp.int32), iterations=jnp.zeros((), jnp.int32), beta=b, program=program,
    )


def _gated_zero_solution(X, y, D, beta, loss) -> GatedSolution:
    Z = jnp.zeros(y.shape[:-1] + (D.shape[0], X.shape[1]), X.dtype)
    g = negative_loss_gradient(jnp.zeros_like(y), y, loss)
    b = jnp.asarray(beta, X.dtype)
    opt = gated_optimality(X, y, D, Z, g, beta=b, loss=loss)
    return GatedSolution(
        W=Z, patterns=D, value=opt.value, dual=g, gap=opt.gap, status=jnp.asarray(RESULTS.optimal, jnp.int32),
        iterations=jnp.zeros((), jnp.int32), beta=b, program=f"gated-{loss}",
    )


# ----------------------------------------------------------------------------------------------
# predictions and scores of a path's solutions
# ----------------------------------------------------------------------------------------------


def predict(sol, X: Float[Array, "n d"], *, gates: Float[Array, "p d"] | None = None) -> Float[Array, " n"]:
    """The network output of a solution on any data ``X``.

    ReLU program (:class:`convexrelu.ConvexSolution`): ψ's network, ``Σ_j (X u_j)_+ - (X v_j)_+``
    (equal to the convex fit on the training data, where ``u_j, v_j ∈ K_j``). Gated program
    (:class:`GatedSolution`): the gated network of ``gates`` (``(p, d)``, the gates of its patterns).
    Plus the solution's ``intercept`` (0 without one). ``c`` outputs give ``(c, n)``.
    """
    if isinstance(sol, GatedSolution):
        if gates is None:
            raise ValueError("a gated solution predicts on new data through its gates: pass gates=(p, d)")
        return gated_forward(GatedNetwork(gates=jnp.asarray(gates, X.dtype), W=sol.W), X) + sol.intercept
    return jnp.sum(jax.nn.relu(sol.U @ X.T), axis=-2) - jnp.sum(jax.nn.relu(sol.V @ X.T), axis=-2) + sol.intercept


def score(f, y, metric: str) -> float:
    """Accuracy of ``sign(f)`` against labels ±1 (``metric="accuracy"``), of the largest of ``c``
    outputs ``f (c, n)`` against one-hot ``y (c, n)``, or R² (``"r2"``)."""
    f, y = np.asarray(f, np.float64), np.asarray(y, np.float64)
    if metric == "accuracy" and f.ndim == 2:
        return float(np.mean(np.argmax(f, axis=0) == np.argmax(y, axis=0)))
    if metric == "accuracy":
        return float(np.mean(np.where(f >= 0, 1.0, -1.0) == y))
    ss = float(np.sum((y - y.mean()) ** 2))
    return float(1.0 - np.sum((y - f) ** 2) / ss) if ss > 0 else float("nan")


def active_neurons(sol, *, rtol: float = 1e-4) -> int:
    """Blocks (``w_j``, or ``u_j`` and ``v_j``) with norm above ``rtol`` × the largest: the
    neurons of the network the solution defines."""
    blocks = [sol.W] if isinstance(sol, GatedSolution) else [sol.U, sol.V]
    norms = np.concatenate([np.linalg.norm(np.asarray(B), axis=-1) for B in blocks])
    top = float(norms.max(initial=0.0))
    return 0 if top == 0 else int(np.sum(norms > rtol * top))


def _group_norm(sol) -> float:
    blocks = [sol.W] if isinstance(sol, GatedSolution) else [sol.U, sol.V]
    return float(sum(np.linalg.norm(np.asarray(B), axis=-1).sum() for B in blocks))


# ----------------------------------------------------------------------------------------------
# the path
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RegularizationPath:
    """What :func:`regularization_path` returns: one entry per β, largest first.

    Attributes:
        betas: the β grid, decreasing. beta_max: :func:`beta_max`. model, loss: the program.
        metric: ``"accuracy"`` or ``"r2"``. solutions: the solutions (ConvexSolution or GatedSolution).
        objective, gap: primal value and relative duality gap. status: status names.
        active: active neurons (:func:`active_neurons`). group_norm: ``Σ‖·‖`` of the blocks.
        train_score, val_score: the metric on the training and validation data (``None`` without).
        times: wall seconds of each solve (the first includes compilation).
    """

    betas: np.ndarray
    beta_max: float
    model: str
    loss: str
    metric: str
    solutions: list
    objective: np.ndarray
    gap: np.ndarray
    status: list
    active: np.ndarray
    group_norm: np.ndarray
    train_score: np.ndarray
    val_score: np.ndarray | None
    times: np.ndarray

    def to_json(self) -> dict:
        """Plain JSON types (the solutions' arrays left out)."""
        out = {k: getattr(self, k) for k in ("beta_max", "model", "loss", "metric", "status")}
        for k in ("betas", "objective", "gap", "active", "group_norm", "train_score", "val_score", "times"):
            v = getattr(self, k)
            out[k] = None if v is None else np.asarray(v).tolist()
        return out


def _grid(betas, num, min_ratio, bmax):
    if betas is None:
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"num must be a positive int, got {num!r}")
        if not (0 < min_ratio < 1):
            raise ValueError(f"min_ratio must be in (0, 1), got {min_ratio!r}")
        grid = np.geomspace(bmax, min_ratio * bmax, num)
        grid[0] = bmax  # exactly: the zero solution
        return grid
    b = np.asarray(betas, np.float64)
    if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"betas must be a non-empty 1-D sequence of positive numbers, got {betas!r}")
    return np.sort(b)[::-1]


def _validation_data(X_val, y_val, model, gates, d, loss, dtype):
    if X_val is None and y_val is None:
        return None, None
    if X_val is None or y_val is None:
        raise ValueError("pass both X_val and y_val, or neither")
    X_val = check_X(X_val, name="X_val").astype(dtype)
    if X_val.shape[1] != d:
        raise ValueError(f"X_val has {X_val.shape[1]} features, X has {d}")
    y_val = check_loss_targets(y_val, X_val.shape[0], loss, name="y_val", dtype=dtype)
    if model == "gated" and gates is None:
        raise ValueError("model='gated' predicts on X_val through its gates: pass gates=(p, d)")
    return X_val, y_val


def _path_metric(metric, y, loss):
    if loss == "softmax" and metric == "r2":
        raise ValueError("the softmax loss is scored by accuracy (metric='auto' or 'accuracy'), not r2")
    if metric == "auto" and loss == "softmax":
        return "accuracy"
    if metric == "auto":
        labels = bool(np.all(np.isin(np.asarray(y), (-1.0, 1.0))))
        return "accuracy" if loss == "logistic" or labels else "r2"
    if metric not in ("accuracy", "r2"):
        raise ValueError(f"metric must be 'auto', 'accuracy' or 'r2', got {metric!r}")
    return metric


def _solve_at(model, X, y, D, beta, loss, init, options, zero):
    """One point of the path: the zero solution when ``β ≥ β_max``, else a (warm-started) solve."""
    if zero is not None:
        return zero
    if model == "gated":
        return solve_gated(X, y, D, beta=beta, loss=loss, init=init, throw=False, **options)
    return solve_regularized(X, y, D, beta=beta, loss=loss, init=init, throw=False, **options)


def regularization_path(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    betas=None,
    num: int = 20,
    min_ratio: float = 1e-3,
    loss: Literal["squared", "logistic", "softmax"] = "squared",
    model: Literal["relu", "gated"] = "relu",
    X_val=None,
    y_val=None,
    gates=None,
    metric: Literal["auto", "accuracy", "r2"] = "auto",
    warm_start: bool = True,
    solver_options: dict | None = None,
    callback: Callable[[int, float, object], None] | None = None,
    intercept: bool = False,
) -> RegularizationPath:
    """Solve the regularized ReLU (or gated) program along a decreasing grid of β, warm-started.

    The default grid is ``num`` points from :func:`beta_max` down to ``min_ratio · β_max``,
    geometrically spaced. Every ``β ≥ β_max`` gets the zero solution, certified optimal (status
    optimal) without a solve; each other β is solved from the previous solution
    (``init=``: ADMM for the ReLU program, the matrix-free solver for its softmax loss, R-FISTA for
    the gated one; ``warm_start=False`` solves each from scratch, the interior point for the ReLU
    program with one output).

    Args:
        X, y, D: the data and patterns. betas: an explicit grid (solved largest first).
        num, min_ratio: the default grid. loss: ``"squared"``, ``"logistic"`` or ``"softmax"``
            (one-hot ``y (n, c)``, an output per class; scored by the accuracy of the largest output).
        model: ``"relu"`` (:func:`convexrelu.solve_regularized`) or ``"gated"`` (:func:`solve_gated`).
        X_val, y_val: validation data, scored with every solution (the gated model needs ``gates``,
            ``(p, d)``, the gates of ``D``). metric: ``"auto"``: accuracy for labels ±1 (or the
            logistic loss), R² otherwise.
        solver_options: keyword arguments of the solver (``tol``, ``max_iters``, ``method``, ...).
        callback: ``callback(k, beta, solution)`` after each solve (progress display).
        intercept: an unregularized intercept in every program (squared or logistic loss; ``β_max``
            at the zero network's own intercept, and every β solved).

    Returns:
        A :class:`RegularizationPath`.

    Raises:
        ValueError / TypeError: bad data, grid, options; ``β_max = 0`` with the default grid.

    Example:
        >>> path = cr.regularization_path(X, y, D, num=20, loss="squared")
        >>> path.betas, path.active, path.train_score
    """
    X, y, D = _check_problem(X, y, D, loss, model)
    if loss == "softmax" and intercept:
        raise ValueError(SOFTMAX_INTERCEPT)
    options = dict(solver_options or {})
    X_val, y_val = _validation_data(X_val, y_val, model, gates, X.shape[1], loss, X.dtype)
    metric = _path_metric(metric, y, loss)
    g = _zero_gradient(y, loss, intercept)
    if intercept:
        options["intercept"] = True
    if model == "gated":
        bmax, nu = float(gated_dual_norm(X, D, g)), None
    else:  # c softmax outputs: each output's projections, the largest norm over all
        norms, nu = relu_zero_certificate(X, D, g)
        bmax = float(jnp.max(norms))
    if betas is None and not bmax > 0:
        raise ValueError("beta_max is 0 (the zero network already fits y): pass an explicit betas grid")
    grid = _grid(betas, num, min_ratio, bmax)
    sols, times, prev = [], [], None
    for k, b in enumerate(grid):
        zero = None
        if b >= bmax and not intercept:
            zero = _gated_zero_solution(X, y, D, b, loss) if model == "gated" else _relu_zero_solution(X, y, D, b, loss, nu)
        t0 = time.perf_counter()
        sol = jax.block_until_ready(
            _solve_at(model, X, y.T if loss == "softmax" else y, D, float(b), loss, prev if warm_start else None, options, zero)
        )
        times.append(time.perf_counter() - t0)
        sols.append(sol)
        prev = sol
        if callback is not None:
            callback(k, float(b), sol)
    return _path_record(sols, grid, bmax, model, loss, metric, X, y, X_val, y_val, gates, times)


def _path_record(sols, grid, bmax, model, loss, metric, X, y, X_val, y_val, gates, times) -> RegularizationPath:
    def train_fit(s):
        return gated_fit(X, s.patterns, s.W) + s.intercept if model == "gated" else predict(s, X)

    return RegularizationPath(
        betas=np.asarray(grid), beta_max=bmax, model=model, loss=loss, metric=metric, solutions=sols,
        objective=np.array([float(s.value) for s in sols]), gap=np.array([float(s.gap) for s in sols]),
        status=[status_name(s.status) for s in sols], active=np.array([active_neurons(s) for s in sols]),
        group_norm=np.array([_group_norm(s) for s in sols]),
        train_score=np.array([score(train_fit(s), y, metric) for s in sols]),
        val_score=None if X_val is None else np.array([score(predict(s, X_val, gates=gates), y_val, metric) for s in sols]),
        times=np.asarray(times),
    )

