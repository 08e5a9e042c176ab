"""The gated ReLU program (Mishkin, Sahiner & Pilanci, ICML 2022; scnn's ``ConvexGatedReLU``).

Fixed gates ``g_j`` define the patterns ``D_j = 1[X g_j ≥ 0]``; the program is the group lasso

    min_W  ℓ(Σ_j D_j X w_j, y) + β Σ_j ‖w_j‖,         W = (w_1, …, w_p) ∈ R^{p×d},

with no cone constraints. Its network is ``f(x) = Σ_j 1[xᵀg_j ≥ 0] xᵀw_j``.

Dual: with ``r`` the dual variable (``r = -∇_f ℓ`` at the optimum),

    max -ℓ*(-r)  s.t.  ‖Xᵀ(D_j ⊙ r)‖ ≤ β  for every j,

and any ``r`` scaled by ``t ≤ β / max_j ‖Xᵀ(D_j ⊙ r)‖`` is feasible, so :func:`gated_dual_objective`
of any ``r`` is a lower bound on the optimum (weak duality). These pure functions are the one
definition of the gated program's optimality (STYLE.md §7): the solver stops on them and the tests
verify with them.

Solver: accelerated proximal gradient with a backtracking line search on the quadratic upper
bound, a growing step between iterations, and restarts when the step makes an obtuse angle with
the gradient mapping (R-FISTA, the method of scnn), stopping on the relative duality gap.

Map back to ReLU (:func:`gated_to_relu`): ``w_j = u_j - v_j`` with ``u_j, v_j ∈ K_j`` keeps the fit
on ``X`` (the ReLU of a vector in ``K_j`` acts on ``X`` as ``D_j``). With ``A = (2D_j - 1) ⊙ X``
the choice ``v_j = z``, ``u_j = w_j + z`` needs ``A z ≥ max(0, -A w_j)``; the least-norm such
``z`` is a least-distance program, solved exactly by Lawson & Hanson's NNLS reduction (ch. 23).
It exists whenever ``K_j`` has an interior point (every pattern of a gate in general position);
it may not when ``K_j`` is flat (a pattern realized only with ties ``x_iᵀg = 0``) and ``w_j`` is not
in its span, and it raises then.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._cones import nnls
from ._implicit import attach_gradients, refuse_derivatives
from ._intercept import profile_intercept, require_concrete
from ._jit import solver_jit
from ._programs import (
    Optimality,
    cone_violation,
    conjugate_bound,
    convex_loss,
    duality_gap,
    loss_domain,
    negative_loss_gradient,
    optimality,
)
from ._solution import RESULTS, RUNNING, ConvexSolution, stack_outputs, status_name
from ._validation import (
    SOFTMAX_INTERCEPT,
    check_beta,
    check_outputs,
    check_patterns,
    check_targets,
    check_X,
    check_y,
    is_concrete,
)


MAX_ITERS = 20_000
BACKTRACK = 0.7  # line-search shrink factor of the step
GROW = 1.25  # step growth after every iteration (scnn's Lassplore factor)
MAX_BACKTRACKS = 60


# ----------------------------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------------------------


class GatedSolution(eqx.Module):
    """A solution of the gated ReLU program.

    Attributes:
        W: the blocks ``w_j``, shape ``(p, d)``.
        patterns: the gates' patterns ``D_j``, boolean ``(p, n)``.
        value: the primal objective ``ℓ(f, y) + β Σ‖w_j‖``.
        dual: the dual variable ``r = -∇_f ℓ`` at ``W`` (its scaled copy is dual feasible).
        gap: relative duality gap ``|primal - dual| / max(1, |primal|, |dual|)``.
        status: a :class:`convexrelu.RESULTS` code; iterations: iterations used.
        beta: the regularization strength. program: ``"gated-squared"`` or ``"gated-logistic"``.
        intercept: the unregularized intercept ``b`` of the fit (``intercept=True``), else 0.
    """

    W: Float[Array, "p d"]
    patterns: Bool[Array, "p n"]
    value: Float[Array, ""]
    dual: Float[Array, " n"]
    gap: Float[Array, ""]
    status: Int[Array, ""]
    iterations: Int[Array, ""]
    beta: Float[Array, ""]
    program: str = eqx.field(static=True, default="gated-squared")
    intercept: Float[Array, ""] | float = 0.0

    @property
    def ok(self) -> bool:
        """True when every problem in the (possibly batched) solution reached optimality."""
        return bool(np.all(np.asarray(self.status) == RESULTS.optimal))

    @property
    def status_name(self) -> str | list:
        """The status as text (a nested list of texts for a batch)."""
        return status_name(self.status)


class GatedNetwork(eqx.Module):
    """The gated ReLU network ``f(x) = Σ_j 1[xᵀg_j ≥ 0] xᵀw_j``.

    Attributes:
        gates: ``g_j`` as rows, shape ``(p, d)``. W: the blocks ``w_j``, shape ``(p, d)``, or
            ``(c, p, d)`` for ``c`` outputs (each output its own neurons on the shared gates).
    """

    gates: Float[Array, "p d"]
    W: Float[Array, "*c p d"]


def gated_forward(net: GatedNetwork, X: Float[Array, "n d"]) -> Float[Array, "*c n"]:
    """The gated network's output ``Σ_j 1[X g_j ≥ 0] ⊙ X w_j``, shape ``(n,)`` (``(c, n)`` for
    ``c`` outputs); works on any ``X``."""
    return gated_fit(X, (X @ net.gates.T >= 0).T, net.W)


# ----------------------------------------------------------------------------------------------
# the program: objective, dual, gap (the one definition of its optimality)
# ----------------------------------------------------------------------------------------------


def gated_fit(X: Float[Array, "n d"], D: Bool[Array, "p n"], W: Float[Array, "*c p d"]) -> Float[Array, "*c n"]:
    """``f = Σ_j D_j ⊙ X w_j`` (``D`` boolean or 0/1 floats), cost ``O(npd)``, no ``D_j X`` blocks.
    Blocks ``(c, p, d)`` of ``c`` outputs give fits ``(c, n)``."""
    return jnp.sum(D.astype(X.dtype).T * (X @ jnp.swapaxes(W, -1, -2)), axis=-1)


def gated_adjoint(X: Float[Array, "n d"], D: Bool[Array, "p n"], a: Float[Array, "*c n"]) -> Float[Array, "*c p d"]:
    """The adjoint of :func:`gated_fit`: row ``j`` is ``Xᵀ(D_j ⊙ a)`` (per output for ``a (c, n)``)."""
    return (D.astype(X.dtype) * a[..., None, :]) @ X


def gated_objective(X, y, D, W, *, beta, loss: Literal["squared", "logistic"] = "squared", offset=0.0) -> Float[Array, ""]:
    """``ℓ(Σ_j D_j X w_j + offset, y) + β Σ_j ‖w_j‖`` (``offset``: an intercept ``b``, held fixed)."""
    return convex_loss(gated_fit(X, D, W) + offset, y, loss) + beta * jnp.sum(jnp.linalg.norm(W, axis=-1))


def gated_dual_norm(X, D, r) -> Float[Array, ""]:
    """``max_j ‖Xᵀ(D_j ⊙ r)‖`` over every output's blocks: ``r`` is dual feasible where it is at most
    β; at the zero network's ``r = -∇_f ℓ`` it is β_max, the smallest β whose solution is zero."""
    return jnp.max(jnp.linalg.norm(gated_adjoint(X, D, r), axis=-1))


def gated_dual_objective(X, y, D, r, *, beta, loss: Literal["squared", "logistic"] = "squared", offset=0.0) -> Float[Array, ""]:
    """A lower bound on the gated optimum from any ``r``: ``c = max_j ‖Xᵀ(D_j ⊙ r)‖ / β``, then
    :func:`conjugate_bound` (``r`` scaled by ``t ≤ 1/c`` is dual feasible). With a fixed ``offset``
    ``o`` in the fit the conjugate gains ``-t rᵀo`` (``ℓ(· + o)* (s) = ℓ*(s) - sᵀo``)."""
    r = loss_domain(r, y, loss)
    return conjugate_bound(r, y, gated_dual_norm(X, D, r) / beta, loss, offset)


def gated_optimality(X, y, D, W, r, *, beta, loss: Literal["squared", "logistic"] = "squared", offset=0.0) -> Optimality:
    """Primal value, dual bound of ``r``, relative gap (the residual is 0: no constraints); with a
    fixed ``offset`` (intercept) in the fit."""
    value = gated_objective(X, y, D, W, beta=beta, loss=loss, offset=offset)
    dval = gated_dual_objective(X, y, D, r, beta=beta, loss=loss, offset=offset)
    return Optimality(value, dval, duality_gap(value, dval), jnp.zeros((), X.dtype))


# ----------------------------------------------------------------------------------------------
# R-FISTA
# ----------------------------------------------------------------------------------------------


class GatedProblem(NamedTuple):
    """One gated problem as the solver sees it (``Df``: the patterns as 0/1 floats)."""

    X: Array
    y: Array
    Df: Array
    beta: Array
    tol: Array
    max_iters: Array
    offset: Array  # a fixed intercept in the fit (0: none), () or (c, 1)


class FistaState(NamedTuple):
    """R-FISTA's iterate: ``W`` the proximal iterate, ``Z`` the extrapolated point and their fits
    ``fW``, ``fZ`` (the fit is linear: ``fZ`` is extrapolated like ``Z``, one pass over the data
    saved per iteration), ``t`` the momentum parameter, ``step`` the step size, with the last
    check's dual, value and gap."""

    W: Array
    Z: Array
    fW: Array
    fZ: Array
    t: Array
    step: Array
    iterations: Array
    status: Array
    value: Array
    dual: Array
    gap: Array


class LineSearch(NamedTuple):
    """One backtracking search: the trial step, its point, its loss and whether it is accepted."""

    step: Array
    W: Array
    fit: Array
    loss: Array
    accepted: Array
    tries: Array


def _group_prox(V: Array, threshold: Array) -> Array:
    """``prox_{τ Σ‖·‖}``: block soft thresholding ``v_j · max(0, 1 - τ/‖v_j‖)``."""
    norms = jnp.linalg.norm(V, axis=-1, keepdims=True)
    return V * jnp.maximum(0.0, 1.0 - threshold / jnp.where(norms > 0, norms, 1.0))


def loss_divergence(fw: Array, fz: Array, y: Array, loss: str) -> Array:
    """The Bregman divergence ``ℓ(fw) - ℓ(fz) - ⟨∇ℓ(fz), fw - fz⟩`` of the loss, without the
    cancellation of that difference: ``½‖fw - fz‖²`` (squared); per sample, with ``a = -y fw``,
    ``b = -y fz``, ``softplus(a) - softplus(b) - σ(b)(a - b)`` where ``|a - b| > 10⁻³``, else its
    Taylor expansion ``s(1-s) δ²/2 + s(1-s)(1-2s) δ³/6`` (``s = σ(b)``, ``δ = a - b``; error
    ``O(δ⁴)``). Near the solution the line search compares quantities of size ``‖ΔW‖²``, far
    below the loss' own rounding: the loss values could not tell them apart."""
    if loss == "squared":
        return 0.5 * jnp.sum((fw - fz) ** 2)
    if loss == "softmax":  # the Bregman divergence of logsumexp: KL(softmax(fz) ‖ softmax(fw)) per sample
        lz, lw = jax.nn.log_softmax(fz, axis=0), jax.nn.log_softmax(fw, axis=0)
        return jnp.sum(jnp.exp(lz) * (lz - lw))
    a, b = -y * fw, -y * fz
    delta = a - b
    s = jax.nn.sigmoid(b)
    taylor = s * (1.0 - s) * delta**2 * (0.5 + (1.0 - 2.0 * s) * delta / 6.0)
    exact = jax.nn.softplus(a) - jax.nn.softplus(b) - s * delta
    return jnp.sum(jnp.where(jnp.abs(delta) > 1e-3, exact, taylor))


def _try_step(pr: GatedProblem, Z, fz, grad, step, loss: str, tries) -> LineSearch:
    """The proximal step of size ``step`` from ``Z`` and the quadratic-bound test
    ``ℓ(W) ≤ ℓ(Z) + ⟨∇, W - Z⟩ + ‖W - Z‖² / (2 step)``, as :func:`loss_divergence` ``≤ ‖W - Z‖² / (2 step)``."""
    W = _group_prox(Z - step * grad, step * pr.beta)
    fw = gated_fit(pr.X, pr.Df, W)
    lw = convex_loss(fw + pr.offset, pr.y, loss)
    dW = W - Z
    bound = jnp.sum(dW * dW) / (2.0 * step)
    accepted = loss_divergence(fw + pr.offset, fz + pr.offset, pr.y, loss) <= bound * (1.0 + 10 * jnp.finfo(pr.X.dtype).eps)
    return LineSearch(step=step, W=W, fit=fw, loss=lw, accepted=accepted & jnp.isfinite(lw), tries=tries)  # NaN: backtrack


def _line_search(pr: GatedProblem, Z, fz, step, loss: str) -> LineSearch:
    """Backtrack ``step ← 0.7 step`` from the current step until the quadratic bound holds."""
    grad = -gated_adjoint(pr.X, pr.Df, negative_loss_gradient(fz + pr.offset, pr.y, loss))
    first = _try_step(pr, Z, fz, grad, step, loss, jnp.zeros((), jnp.int32))

    def again(ls: LineSearch) -> LineSearch:
        return _try_step(pr, Z, fz, grad, ls.step * BACKTRACK, loss, ls.tries + 1)

    return jax.lax.while_loop(lambda ls: ~ls.accepted & (ls.tries < MAX_BACKTRACKS), again, first)


def _score(pr: GatedProblem, W: Array, status: Array, iterations: Array, loss: str):
    """The dual point of ``W`` and its :func:`gated_optimality`; the status it gives."""
    r = negative_loss_gradient(gated_fit(pr.X, pr.Df, W) + pr.offset, pr.y, loss)
    opt = gated_optimality(pr.X, pr.y, pr.Df, W, r, beta=pr.beta, loss=loss, offset=pr.offset)
    finite = jnp.isfinite(opt.value) & jnp.isfinite(opt.gap) & jnp.all(jnp.isfinite(W))
    new = jnp.where(
        ~finite,
        RESULTS.numerical_error,
        jnp.where(opt.gap <= pr.tol, RESULTS.optimal, jnp.where(iterations >= pr.max_iters, RESULTS.max_iters, status)),
    )
    return r, opt, new.astype(jnp.int32)


def _fista_step(pr: GatedProblem, loss: str, check_every: int, s: FistaState) -> FistaState:
    """One R-FISTA iteration: line search from ``Z``, the gradient-mapping restart test, the
    momentum update, the step growth, and every ``check_every`` iterations the gap."""
    ls = _line_search(pr, s.Z, s.fZ, s.step, loss)
    W = ls.W
    restart = jnp.sum((W - s.W) * (s.Z - W)) > 0  # the step makes an obtuse angle with the gradient mapping
    t_next = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t)))
    momentum = jnp.where(restart, 0.0, (s.t - 1.0) / t_next)
    Z = W + momentum * (W - s.W)
    fZ = ls.fit + momentum * (ls.fit - s.fW)
    it = s.iterations + 1
    check = (it % check_every == 0) | (it >= pr.max_iters)

    def scored(_):
        r, opt, st = _score(pr, W, s.status, it, loss)
        return r, opt.value, opt.gap, st

    def unscored(_):
        st = jnp.where(jnp.isfinite(ls.loss), s.status, RESULTS.numerical_error).astype(jnp.int32)
        return s.dual, s.value, s.gap, st

    r, value, gap, status = jax.lax.cond(check, scored, unscored, None)
    return FistaState(
        W=W, Z=Z, fW=ls.fit, fZ=fZ, t=jnp.where(restart, 1.0, t_next).astype(s.t.dtype), step=ls.step * GROW, iterations=it,
        status=status, value=value, dual=r, gap=gap,
    )


def _initial_step(pr: GatedProblem, loss: str) -> Array:
    """``1/L`` from 8 power iterations on ``AᵀA`` (``A: W ↦ Σ_j D_j X w_j``); the loss' curvature is
    1 (squared), ¼ (logistic) or ½ (softmax). An underestimate of ``L`` is corrected by the line search."""
    V = jnp.ones(pr.y.shape[:-1] + pr.Df.shape[:1] + pr.X.shape[1:], pr.X.dtype)  # (c,) p, d

    def power(_, V):
        V = gated_adjoint(pr.X, pr.Df, gated_fit(pr.X, pr.Df, V))
        return V / jnp.maximum(jnp.linalg.norm(V), jnp.finfo(V.dtype).tiny)

    V = jax.lax.fori_loop(0, 8, power, V)
    L = jnp.linalg.norm(gated_fit(pr.X, pr.Df, V)) ** 2 * {"squared": 1.0, "logistic": 0.25, "softmax": 0.5}[loss]
    return 1.0 / jnp.maximum(L, jnp.finfo(pr.X.dtype).tiny)


@functools.partial(solver_jit, static_argnames=("loss", "check_every"))
def _solve_gated(X, y, D, beta, W0, tol, max_iters, offset, *, loss: str, check_every: int) -> FistaState:
    """One problem (``vmap`` batches it): score the start (``W = 0`` is optimal for ``β ≥ β_max``),
    then iterate until the gap is within ``tol``; ``offset`` a fixed intercept in the fit."""
    pr = GatedProblem(X=X, y=y, Df=D.astype(X.dtype), beta=beta, tol=tol, max_iters=max_iters, offset=offset)
    zero_it = jnp.zeros((), jnp.int32)
    r, opt, status = _score(pr, W0, jnp.asarray(RUNNING, jnp.int32), zero_it, loss)
    f0 = gated_fit(X, pr.Df, W0)
    init = FistaState(
        W=W0, Z=W0, fW=f0, fZ=f0, t=jnp.ones((), X.dtype), step=_initial_step(pr, loss), iterations=zero_it, status=status,
        value=opt.value, dual=r, gap=opt.gap,
    )
    step = functools.partial(_fista_step, pr, loss, check_every)
    return jax.lax.while_loop(lambda s: s.status == RUNNING, step, init)


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------


def _check_gated_options(tol, max_iters, check_every, init, p, d, dtype, outputs=()):
    """``(tol, max_iters, check_every, W0)`` with the defaults; raises on bad values."""
    if tol is None:
        tol = 1e-6 if jnp.finfo(dtype).bits >= 64 else 1e-4
    if not isinstance(tol, (int, float)) or not (0 < float(tol) < 1):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    max_iters = MAX_ITERS if max_iters is None else max_iters
    for name, v in (("max_iters", max_iters), ("check_every", check_every)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    shape = outputs + (p, d)
    if init is None:
        W0 = jnp.zeros(shape, dtype)
    else:
        W0 = init.W if isinstance(init, GatedSolution) else jnp.asarray(init)
        if W0.shape != shape:
            raise ValueError(f"init has W of shape {W0.shape}; this problem needs {shape}")
        W0 = jnp.where(jnp.isfinite(W0), W0, 0.0).astype(dtype)
    return float(tol), int(max_iters), int(check_every), W0


def _raise_on_status(sol: GatedSolution) -> GatedSolution:
    if not is_concrete(sol.status):
        value = eqx.error_if(sol.value, sol.status != RESULTS.optimal, "gated solver did not reach optimality; pass throw=False")
        return eqx.tree_at(lambda s: s.value, sol, value)
    st = np.asarray(sol.status)
    if np.all(st == RESULTS.optimal):
        return sol
    codes = sorted(set(st[st != RESULTS.optimal].ravel().tolist()))
    raise RuntimeError(
        f"gated solver stopped with status {[status_name(c) for c in codes]} after {np.max(np.asarray(sol.iterations))} "
        f"iterations (gap {np.max(np.asarray(sol.gap)):.2e}); {'; '.join(RESULTS(c).message for c in codes)}; "
        "pass throw=False to inspect the result"
    )


def solve_gated(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    beta,
    loss: Literal["squared", "logistic"] = "squared",
    tol: float | None = None,
    max_iters: int | None = None,
    throw: bool = True,
    init: GatedSolution | Array | None = None,
    check_every: int = 10,
    intercept: bool = False,
) -> GatedSolution:
    """Solve the gated ReLU program (Mishkin, Sahiner & Pilanci 2022) by R-FISTA.

        min_W ℓ(Σ_j D_j X w_j, y) + β Σ_j ‖w_j‖,

    ``ℓ = ½ Σ (f - y)²`` (``loss="squared"``, real targets) or ``Σ log(1 + e^{-y f})``
    (``loss="logistic"``, labels ±1). With ``c`` outputs (targets ``y`` of shape ``(n, c)``) every
    output has its own blocks on the shared gates (scnn's convention): ``W (c, p, d)``, fits and
    ``dual (c, n)``, the outputs on the leading axis; ``loss="squared"`` (real targets, the outputs
    separate) or ``loss="softmax"`` (one-hot targets, ``c ≥ 2``: the cross-entropy
    ``Σ_i logsumexp(f_·i) - ⟨y_·i, f_·i⟩``; with ``c = 2`` the binary logistic program of ``f₁ - f₂``).
    Multi-output solutions carry no implicit derivatives (differentiating them raises).
    Accelerated proximal gradient with a backtracking line
    search, a growing step and gradient-mapping restarts; every ``check_every`` iterations the
    dual point ``r = -∇_f ℓ`` is scaled to ``max_j ‖Xᵀ(D_j ⊙ r)‖ ≤ β`` and the solve stops when
    the relative duality gap (:func:`gated_optimality`) is within ``tol``. For ``β ≥ β_max``
    (:func:`convexrelu.beta_max` with ``model="gated"``) the start ``W = 0`` is certified at once.
    Jitted; float32 and float64; works under ``jax.vmap`` (e.g. over a grid of β).

    Args:
        X: data ``(n, d)``. y: targets ``(n,)`` (labels ±1 for the logistic loss), or ``(n, c)``
            (real for the squared loss, one-hot for ``loss="softmax"``).
        D: patterns ``(p, n)`` (boolean), e.g. ``cr.sample_patterns(X, num=p, key=key)``.
        beta: regularization strength, a positive scalar (may be traced).
        loss: ``"squared"``, ``"logistic"`` or ``"softmax"``.
        tol: relative gap to stop at; default 1e-6 in float64, 1e-4 in float32.
        max_iters: iteration limit (default 20 000). throw: raise unless optimal.
        init: a previous :class:`GatedSolution` (or ``W`` array) of the same shape: a warm start.
        check_every: iterations between gap evaluations (each costs one pass over the data).
        intercept: add an unregularized intercept ``b`` (squared and logistic loss): profiled out,
            one warm-started solve per trial ``b`` with ``b`` a fixed offset of the fit, certified by
            the centred dual's bound (:mod:`convexrelu._intercept`); ``sol.intercept`` (one per
            output, ``(c,)``, for squared ``(n, c)`` targets). On the host (not under ``jit``,
            ``vmap`` or ``grad``).

    Returns:
        A :class:`GatedSolution`; :class:`GatedNetwork` with the gates gives the network, and
        :func:`gated_to_relu` a ReLU program point with the same fit.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels, NaN, ``beta ≤ 0``, options.
        RuntimeError: iteration limit or numerical failure (``throw=True``).

    Example:
        >>> D, G = cr.sample_patterns(X, num=100, key=key, return_gates=True)
        >>> sol = cr.solve_gated(X, y, D, beta=1e-2)
        >>> f = cr.gated_forward(cr.GatedNetwork(gates=G, W=sol.W), X_new)
    """
    if loss not in ("squared", "logistic", "softmax"):
        raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")
    X = check_X(X)
    n, d = X.shape
    multi = loss == "softmax" or jnp.ndim(y) == 2
    if multi:
        y = check_outputs(y, n, loss, dtype=X.dtype)  # (c, n): the outputs on the leading axis
    else:
        y = (check_targets if loss == "squared" else check_y)(y, n, dtype=X.dtype)
    D = check_patterns(D, n)
    outputs = y.shape[:1] if multi else ()
    beta = check_beta(beta)
    tol, max_iters, check_every, W0 = _check_gated_options(tol, max_iters, check_every, init, D.shape[0], d, X.dtype, outputs)
    if intercept:
        return _gated_with_intercept(X, y, D, beta, loss, W0, tol=tol, max_iters=max_iters, throw=throw, check_every=check_every)
    dt = X.dtype
    sol = _run_gated(X, y, D, beta, W0, tol, max_iters, jnp.zeros((), dt), loss=loss, check_every=check_every)
    sol = _raise_on_status(sol) if throw else sol
    if multi:  # no implicit derivatives of c outputs yet: differentiating raises instead of a silent zero
        return eqx.tree_at(lambda t: t.value, sol, refuse_derivatives(sol.value, X, y, jnp.asarray(beta, dt)))
    return attach_gradients(sol, X, y, beta)


def _run_gated(X, y, D, beta, W0, tol, max_iters, offset, *, loss, check_every) -> GatedSolution:
    """R-FISTA on the data held constant (``offset``: a fixed intercept in the fit)."""
    dt = X.dtype
    sg = jax.lax.stop_gradient  # the derivatives are implicit (_implicit), not through the iterations
    b = sg(jnp.asarray(beta, dt))
    s = _solve_gated(
        sg(X), sg(y), D, b, sg(W0), jnp.asarray(tol, dt), jnp.asarray(max_iters, jnp.int32), jnp.asarray(offset, dt),
        loss=loss, check_every=check_every,
    )
    return GatedSolution(
        W=s.W, patterns=D, value=s.value, dual=s.dual, gap=s.gap, status=s.status, iterations=s.iterations,
        beta=b, program=f"gated-{loss}",
    )


def _gated_with_intercept(X, y, D, beta, loss, W0, *, tol, max_iters, throw, check_every):
    """:func:`solve_gated` with an unregularized intercept (:mod:`convexrelu._intercept`): each
    trial ``b`` one R-FISTA solve with ``b`` a fixed offset of the fit. ``c`` squared-loss outputs
    separate, one intercept each, then one joint certificate."""
    if loss == "softmax":
        raise ValueError(SOFTMAX_INTERCEPT)
    require_concrete(X, y, beta)

    def one(target, start):
        def solve(b, inner_tol, prev):
            return _run_gated(
                X, target, D, beta, start if prev is None else prev.W, inner_tol, max_iters, b, loss=loss,
                check_every=check_every,
            )

        def certify(b, sol, r):
            return gated_optimality(X, target, D, sol.W, r, beta=beta, loss=loss, offset=b)

        return profile_intercept(solve, certify, target, loss=loss, tol=tol)

    if y.ndim == 1:
        sol = one(y, W0)
        return _raise_on_status(sol) if throw else sol
    sol = stack_outputs([one(y[k], W0[k]) for k in range(y.shape[0])])  # the outputs' programs separate
    return _raise_on_status(sol) if throw else sol


# ----------------------------------------------------------------------------------------------
# back to ReLU: the cone decomposition
# ----------------------------------------------------------------------------------------------


def _least_distance_split(X, pattern, w):
    """``z = argmin ‖z‖ s.t. A z ≥ max(0, -A w)``, ``A = (2D - 1) ⊙ X``, by Lawson & Hanson's
    least-distance reduction: NNLS ``min_{η ≥ 0} ‖E η - e‖`` with ``E = [Aᵀ; bᵀ]``, ``e = (0, 1)``,
    residual ``ρ = E η - e``, ``z = -ρ_{:d} / ρ_d`` (infeasible when ``ρ = 0``)."""
    d = X.shape[1]
    A = (2.0 * pattern.astype(X.dtype) - 1.0)[:, None] * X
    b = jax.nn.relu(-(A @ w))
    E = jnp.concatenate([A.T, b[None, :]], axis=0)
    e = jnp.zeros((d + 1,), X.dtype).at[d].set(1.0)
    eta, _ = nnls(E, e)
    rho = E @ eta - e
    ok = rho[d] < 0
    z = jnp.where(ok, -rho[:d] / jnp.where(ok, rho[d], -1.0), 0.0)
    return jnp.where(jnp.any(b > 0), z, 0.0)


@jax.jit
def cone_decomposition(
    X: Float[Array, "n d"], D: Bool[Array, "p n"], W: Float[Array, "p d"]
) -> tuple[Float[Array, "p d"], Float[Array, "p d"], Float[Array, ""]]:
    """``w_j = u_j - v_j`` with ``u_j, v_j ∈ K_j`` (so ``Σ_j D_j X (u_j - v_j) = Σ_j D_j X w_j``):
    ``v_j = z_j``, ``u_j = w_j + z_j`` with the least-norm ``z_j`` (see the module docstring).

    Returns:
        ``(U, V, violation)``; ``violation`` is the relative cone violation
        (:func:`convexrelu.constraint_violation`): about the rounding error when the
        decomposition exists, large when it does not.
    """
    Z = jax.vmap(_least_distance_split, in_axes=(None, 0, 0))(X, D, W)
    U, V = W + Z, Z
    return U, V, cone_violation(X, D, U, V)


def gated_to_relu(sol: GatedSolution, X: Float[Array, "n d"], y: Float[Array, " n"], *, tol: float | None = None) -> ConvexSolution:
    """A point of the regularized ReLU program with the gated solution's fit on ``X``.

    Blocks are split by :func:`cone_decomposition`; the loss is unchanged and the penalty
    ``Σ ‖u_j‖ + ‖v_j‖ ≥ Σ ‖w_j‖``. The result is scored by :func:`convexrelu.optimality` with the
    gated dual (``ν = 0``, feasible for the ReLU dual too: the gated program is a relaxation), so its
    ``gap`` honestly bounds its distance to the ReLU optimum; ``status`` is ``optimal`` when that gap
    and the cone violation are within ``tol``, else ``max_iters`` (not certified: warm-start
    :func:`convexrelu.solve_regularized` from it). ``cr.to_network`` then gives the ReLU network.

    Raises:
        ValueError: the decomposition does not exist (cone violation above ``tol``: a pattern whose
            cone has no interior point and a block outside its span).
    """
    if not isinstance(sol, GatedSolution) or sol.W.ndim != 2:
        raise TypeError("gated_to_relu takes one (unbatched) GatedSolution")
    X = check_X(X)
    loss = sol.program.split("-", 1)[1]
    y = (check_targets if loss == "squared" else check_y)(y, X.shape[0], dtype=X.dtype)
    D = check_patterns(sol.patterns, X.shape[0])
    tol = (1e-6 if jnp.finfo(X.dtype).bits >= 64 else 1e-4) if tol is None else float(tol)
    U, V, violation = cone_decomposition(X, D, sol.W.astype(X.dtype))
    if float(violation) > tol:
        raise ValueError(
            f"no cone decomposition w_j = u_j - v_j, u_j, v_j ∈ K_j: relative cone violation {float(violation):.2e} > "
            f"tol {tol:g} (a pattern whose cone has no interior and a block outside its span)"
        )
    p, n = D.shape
    nu = jnp.zeros((2, p, n), X.dtype)
    program = f"regularized-{loss}"
    opt = optimality(X, y, D, U, V, sol.dual.astype(X.dtype), nu, program=program, beta=sol.beta)
    ok = (opt.gap <= tol) & (opt.residual <= tol)
    return ConvexSolution(
        U=U, V=V, patterns=D, value=opt.value, dual=sol.dual, cone_dual=nu, gap=opt.gap, residual=opt.residual,
        status=jnp.where(ok, RESULTS.optimal, RESULTS.max_iters).astype(jnp.int32),
        iterations=jnp.zeros((), jnp.int32), beta=sol.beta, program=program,
    )
