"""ADMM with an exact Woodbury linear solve, for every convex program (one instance; ``jax.vmap``
batches it): the logistic-loss program, warm starts, and the continuation of a stalled
interior-point run.

With ``z = (U, V)`` stacked as ``2p`` blocks ``z_b ∈ R^d`` (on the scaled data of
:mod:`convexrelu._scaling`), each program is

    min  h(t) + F(w) + I_{≥0}(s)   s.t.  z = t,  G z = s,  A z = w,

where ``h(t) = β Σ_b ‖t_b‖`` (``β = 1`` for the max-margin program), ``G z = (S_j ⊙ X z_b)_b`` (the
cone constraints, ``S = 2D - 1``), ``A z = Σ_j D_j ⊙ X (u_j - v_j)`` (the fit), and ``F`` the
indicator of ``y ⊙ w ≥ 1`` (max-margin) or the loss ``ℓ(w, y)``. Over-relaxed ADMM (α = 1.6)
alternates

1. ``z``-step: ``(σ_t I + σ_s GᵀG + σ_w AᵀA) z = rhs``. Because ``S_j ⊙ S_j = 1``,
   ``G_bᵀG_b = XᵀX`` for every block, so ``σ_t I + σ_s GᵀG = I_{2p} ⊗ B``, ``B = σ_t I + σ_s XᵀX``
   (one ``d × d`` inverse), and ``A (I ⊗ B⁻¹) Aᵀ = 2 H ⊙ (DᵀD)``, ``H = X B⁻¹ Xᵀ``; by Woodbury
   the solve needs one ``n × n`` Cholesky factor of ``C = σ_w⁻¹ I + 2 H ⊙ (DᵀD)``. The ``D_j X``
   blocks are never formed: an iteration costs six masked matmuls of size ``n × p × d``.
2. prox steps: block soft-thresholding (``t``), clipping (``s``), and for ``w`` the projection
   onto ``y ⊙ w ≥ 1``, the closed-form squared-loss prox, or a safeguarded scalar Newton
   solve for the logistic prox.
3. scaled multiplier updates; the multipliers give the duals ``μ = -y ⊙ σ_w λ_w`` and
   ``ν = -σ_s λ_s``.

The penalty ``ρ`` (``σ_t = σ_s = σ_w = ρ``) is rebalanced OSQP-style (Stellato et al. 2020)
from the relative primal and dual residuals; re-factoring costs ``O(n²d + n³)``. The map
``x ↦ T(x)`` of ``check_every`` ADMM steps is accelerated by :mod:`convexrelu._anderson`. Every
``check_every`` iterations the candidate is scored on the original data
(:func:`convexrelu._scaling.score`). For the max-margin program the successive differences of
the multipliers converge to a Farkas ray when the program is infeasible (OSQP §3.4); such a ray,
checked with :func:`convexrelu.max_margin_infeasibility`, ends the loop with status infeasible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from . import _programs as prog
from ._anderson import AndersonState, anderson_init, anderson_restart, anderson_step
from ._scaling import Candidate, ScaledProblem, SolverResult, accept_farkas, score
from ._solution import RESULTS, RUNNING

MAX_ITERS = 50_000
_RHO0 = 1.0
_ADAPT = 2.0  # re-balance ρ when the residual ratio leaves [1/_ADAPT, _ADAPT]
_ALPHA = 1.6  # over-relaxation (Boyd et al. 2011, §3.4.3; OSQP's default)
_RHO_MIN, _RHO_MAX = 1e-6, 1e6
_NEWTON_STEPS = 40  # safeguarded Newton steps of the logistic prox


class AdmmProblem(eqx.Module):
    """The scaled problem with ADMM's constants: the signs ``S = 2D - 1`` and ``DᵀD``."""

    data: ScaledProblem
    S: Array
    DtD: Array
    tol: Array
    infeasible_tol: Array
    max_iters: Array
    check_every: int = eqx.field(static=True)
    progress: Callable | None = eqx.field(static=True, default=None)


class AdmmFactor(eqx.Module):
    """The linear solve at penalty ``ρ``: ``B⁻¹``, ``X_s B⁻¹`` and the capacitance's Cholesky factor."""

    Binv: Array  # (d, d)
    XB: Array  # (n, d)
    L: Array  # (n, n)


class AdmmIterate(eqx.Module):
    """The ADMM variables and their scaled multipliers."""

    t: Array  # (2, p, d)
    s: Array  # (2, p, n)
    w: Array  # (n,)
    lt: Array
    ls: Array
    lw: Array


class AdmmState(eqx.Module):
    """The loop state: the (accelerated) iterate, the penalty and its factor, the best candidate."""

    x: Array  # the AdmmIterate flattened: the fixed-point variable Anderson acceleration works on
    rho: Array
    factor: AdmmFactor
    k: Array
    status: Array
    since: Array  # checks since the last ρ update
    refactor: Array  # factor ρ at the next step (the one place the factor is computed)
    best: Candidate
    anderson: AndersonState


def _ravel(v: AdmmIterate) -> Array:
    return jnp.concatenate([a.ravel() for a in (v.t, v.s, v.w, v.lt, v.ls, v.lw)])


def _unravel(x: Array, p: int, n: int, d: int) -> AdmmIterate:
    sizes = (2 * p * d, 2 * p * n, n, 2 * p * d, 2 * p * n, n)
    shapes = ((2, p, d), (2, p, n), (n,), (2, p, d), (2, p, n), (n,))
    parts, a = [], 0
    for size, shape in zip(sizes, shapes):
        parts.append(x[a : a + size].reshape(shape))
        a += size
    return AdmmIterate(*parts)


def factor(Xs, DtD, rho) -> AdmmFactor:
    """``B = ρ(I + X_sᵀX_s)``, ``C = I/ρ + 2 (X_s B⁻¹ X_sᵀ) ⊙ DᵀD`` and the Cholesky factor of ``C``."""
    n, d = Xs.shape
    B = rho * jnp.eye(d, dtype=Xs.dtype) + rho * (Xs.T @ Xs)
    Binv = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(B, lower=True), jnp.eye(d, dtype=Xs.dtype))
    Binv = 0.5 * (Binv + Binv.T)
    XB = Xs @ Binv
    C = jnp.eye(n, dtype=Xs.dtype) / rho + 2.0 * (XB @ Xs.T) * DtD
    return AdmmFactor(Binv, XB, jnp.linalg.cholesky(0.5 * (C + C.T)))


class _Bracket(NamedTuple):
    q: Array
    lo: Array
    hi: Array


def logistic_prox(v, y, sigma):
    """``argmin_w softplus(-y w) + σ/2 (w - v)²`` elementwise (safeguarded Newton on ``q = y w``).

    With ``a = y v`` the optimality condition ``φ(q) = -sigmoid(-q) + σ (q - a) = 0`` is increasing
    in ``q`` and brackets its root in ``[a, a + 1/σ]``.
    """
    a = y * v

    def newton(_, b: _Bracket) -> _Bracket:
        sm = jax.nn.sigmoid(-b.q)
        phi = -sm + sigma * (b.q - a)
        lo = jnp.where(phi < 0, b.q, b.lo)
        hi = jnp.where(phi >= 0, b.q, b.hi)
        qn = b.q - phi / (sm * (1.0 - sm) + sigma)
        return _Bracket(jnp.where((qn > lo) & (qn < hi), qn, 0.5 * (lo + hi)), lo, hi)

    b = jax.lax.fori_loop(0, _NEWTON_STEPS, newton, _Bracket(a + 0.5 / sigma, a, a + 1.0 / sigma))
    return y * b.q


def _prox_w(v, y, rho, program, offset):
    """The prox of the w-term, with the fit's fixed ``offset`` o: the projection onto
    ``y ⊙ (w + o) ≥ 1`` (max-margin); ``prox_{ℓ(· + o)}(v) = prox_ℓ(v + o) - o`` (logistic)."""
    if program == "max-margin":
        return y * jnp.maximum(y * v, 1.0 - y * offset)
    if program == "regularized-squared":
        return (y + rho * v) / (1.0 + rho)
    return logistic_prox(v + offset, y, rho) - offset


def admm_iteration(v: AdmmIterate, prob: AdmmProblem, rho, fac: AdmmFactor):
    """One over-relaxed ADMM iteration; returns the new variables and ``(z, Gz, Az)``.

    z-step: with ``K = I ⊗ B``, ``r₁ = ρ[(t - λ_t) + Gᵀ(s - λ_s)]``, ``q = ρ(w - λ_w)`` and
    ``C = I/ρ + A K⁻¹ Aᵀ``, Woodbury gives ``z = K⁻¹r₁ + K⁻¹Aᵀ c`` with
    ``c = C⁻¹(q/ρ - A K⁻¹ r₁)``.
    """
    data, S = prob.data, prob.S
    Xs, Df = data.Xs, data.Df
    z0 = rho * (v.t - v.lt) @ fac.Binv + rho * (S * (v.s - v.ls)) @ fac.XB  # K⁻¹ r₁, (2, p, d)
    a0 = jnp.sum(Df * ((z0[0] - z0[1]) @ Xs.T), axis=0)  # A K⁻¹ r₁
    c = jax.scipy.linalg.cho_solve((fac.L, True), (v.w - v.lw) - a0)
    P = (Df * c) @ fac.XB  # (p, d)
    z = z0 + jnp.stack([P, -P])
    Xz = z @ Xs.T  # (2, p, n)
    Gz = S * Xz
    Az = jnp.sum(Df * (Xz[0] - Xz[1]), axis=0)
    # over-relaxation, then the prox steps and the multiplier updates
    vt = _ALPHA * z + (1.0 - _ALPHA) * v.t + v.lt
    nt = jnp.linalg.norm(vt, axis=-1, keepdims=True)
    thr = data.beta_s / rho
    t = vt * jnp.maximum(0.0, 1.0 - thr / jnp.maximum(nt, thr))  # block soft-threshold
    vs = _ALPHA * Gz + (1.0 - _ALPHA) * v.s + v.ls
    s = jnp.maximum(vs, 0.0)
    vw = _ALPHA * Az + (1.0 - _ALPHA) * v.w + v.lw
    w = _prox_w(vw, data.ys, rho, data.program, data.offset)
    return AdmmIterate(t, s, w, vt - t, vs - s, vw - w), (z, Gz, Az)


def _score(prob: AdmmProblem, v: AdmmIterate, rho):
    """Score the iterate's candidate (:func:`convexrelu._scaling.score`); ``μ_s = max(-y σ_w λ_w, 0)``,
    ``ν_s = max(-σ_s λ_s, 0)``."""
    mu_s = jnp.maximum(-prob.data.y * rho * v.lw, 0.0)
    return score(prob.data, v.t[0], v.t[1], mu_s, jnp.maximum(-rho * v.ls, 0.0), prob.tol)


def warm_iterate(prob: AdmmProblem, init, rho) -> AdmmIterate:
    """The ADMM variables of a previous solution ``init = (U, V, dual, ν)`` on the scaled data."""
    data, S = prob.data, prob.S
    Xs, Df, sx, sy = data.Xs, data.Df, data.sx, data.sy
    U0, V0, dual0, nu0 = init
    if data.program == "max-margin":
        t = jnp.stack([U0, V0]) * sx
        yw = -data.y * jnp.maximum(dual0, 0.0) * sx
        ysl = -jnp.maximum(nu0, 0.0) * sx
    else:
        t = jnp.stack([U0, V0]) * (sx / sy)
        yw = -dual0 / sy
        ysl = -jnp.maximum(nu0, 0.0) / sy
    Xt = t @ Xs.T
    s = jnp.maximum(S * Xt, 0.0)
    w = jnp.sum(Df * (Xt[0] - Xt[1]), axis=0)
    Aty = (Df * yw) @ Xs
    yt = -((S * ysl) @ Xs + jnp.stack([Aty, -Aty]))
    return AdmmIterate(t, s, w, yt / rho, ysl / rho, yw / rho)


def unscored(Zu, dual, cone_dual) -> Candidate:
    """A placeholder candidate (zero blocks, infinite gap): every run of the loop scores its own."""
    inf = jnp.asarray(jnp.inf, Zu.dtype)
    zero = jnp.zeros_like(Zu)
    return Candidate(zero, zero, jnp.zeros_like(dual), jnp.zeros_like(cone_dual), prog.Optimality(inf, -inf, inf, inf))


def init_state(prob: AdmmProblem, init, active) -> AdmmState:
    """The first state: from zero, or from ``init``; the loop runs only when ``active``. The penalty
    ``ρ`` is factored at the first step."""
    Xs = prob.data.Xs
    (n, d), p, dtype = Xs.shape, prob.S.shape[0], Xs.dtype
    rho = jnp.asarray(_RHO0, dtype)
    if init is None:
        zp, zs, zn = jnp.zeros((2, p, d), dtype), jnp.zeros((2, p, n), dtype), jnp.zeros((n,), dtype)
        v = AdmmIterate(zp, zs, zn, zp, zs, zn)
    else:
        v = warm_iterate(prob, init, rho)
    x = _ravel(v)
    status = jnp.where(active, RUNNING, RESULTS.numerical_error).astype(jnp.int32)
    empty = AdmmFactor(jnp.zeros((d, d), dtype), jnp.zeros((n, d), dtype), jnp.zeros((n, n), dtype))
    return AdmmState(
        x=x, rho=rho, factor=empty, k=jnp.zeros((), jnp.int32), status=status, since=jnp.zeros((), jnp.int32),
        refactor=jnp.asarray(True), best=unscored(v.t[0], v.w, v.s), anderson=anderson_init(x),
    )


def _farkas(prob: AdmmProblem, cand: Candidate, status, v_new: AdmmIterate, v_old: AdmmIterate, rho):
    """The multipliers' successive difference as a Farkas ray (OSQP §3.4), accepted when it passes."""
    data = prob.data
    mu_r = jnp.maximum(-data.ys * rho * (v_new.lw - v_old.lw), 0.0)
    nu_r = jnp.maximum(-rho * (v_new.ls - v_old.ls), 0.0)
    eps = prog.max_margin_infeasibility(data.X, data.y, data.D, mu_r, nu_r, data.offset)
    return accept_farkas(cand, status, eps, mu_r, nu_r, prob.infeasible_tol)


def _residual_ratio(v_new: AdmmIterate, v_old: AdmmIterate, Mz):
    """``sqrt(r_p / r_d)`` of the relative primal and dual residuals (OSQP's penalty rule)."""
    tiny = jnp.finfo(v_new.w.dtype).tiny
    q_new, q_old = (v_new.t, v_new.s, v_new.w), (v_old.t, v_old.s, v_old.w)

    def sq(ts):
        return sum(jnp.sum(a * a) for a in ts)

    rp = jnp.sqrt(sq([a - b for a, b in zip(Mz, q_new)]) / jnp.maximum(jnp.maximum(sq(Mz), sq(q_new)), tiny))
    rd = jnp.sqrt(sq([a - b for a, b in zip(q_new, q_old)]) / jnp.maximum(sq((v_new.lt, v_new.ls, v_new.lw)), tiny))
    return jnp.sqrt(rp / jnp.maximum(rd, tiny))


def _status(prob: AdmmProblem, cand: Candidate, status, v_new: AdmmIterate, v_old: AdmmIterate, rho, k):
    """The candidate and status after a check: infeasible (max-margin Farkas ray), max_iters, or a
    numerical error when the iterate or its value is not finite."""
    finite = jnp.all(jnp.isfinite(_ravel(v_new))) & jnp.isfinite(cand.opt.value)
    if prob.data.program == "max-margin":
        cand, status = _farkas(prob, cand, status, v_new, v_old, rho)
    status = jnp.where((status == RUNNING) & (k >= prob.max_iters), RESULTS.max_iters, status)
    return cand, jnp.where(finite, status, RESULTS.numerical_error).astype(jnp.int32)


def step(st: AdmmState, prob: AdmmProblem) -> AdmmState:
    """``check_every`` ADMM iterations, a score, a penalty update and an Anderson step."""
    data = prob.data
    p, (n, d) = prob.S.shape[0], data.Xs.shape
    rho = st.rho
    fac = jax.lax.cond(st.refactor, lambda: factor(data.Xs, prob.DtD, rho), lambda: st.factor)
    v_old = jax.lax.fori_loop(
        0, prob.check_every - 1, lambda _, v: admm_iteration(v, prob, rho, fac)[0], _unravel(st.x, p, n, d)
    )
    v_new, Mz = admm_iteration(v_old, prob, rho, fac)
    k = st.k + prob.check_every
    cand, status = _score(prob, v_new, rho)
    cand, status = _status(prob, cand, status, v_new, v_old, rho, k)
    ratio = _residual_ratio(v_new, v_old, Mz)
    adapt = (status == RUNNING) & (st.since >= 2) & ((ratio > _ADAPT) | (ratio < 1.0 / _ADAPT)) & jnp.isfinite(ratio)
    rho_new = jnp.where(adapt, jnp.clip(rho * ratio, _RHO_MIN, _RHO_MAX), rho)
    if prob.progress is not None:
        jax.debug.callback(prob.progress, k, cand.opt.gap)
    fx = _ravel(v_new)
    x_next, aa = anderson_step(st.anderson, st.x, fx, st.k == 0)
    # a new penalty changes the map: restart from the plain step with the multipliers rescaled
    f = rho / rho_new
    x_adapted = _ravel(eqx.tree_at(lambda v: (v.lt, v.ls, v.lw), v_new, (v_new.lt * f, v_new.ls * f, v_new.lw * f)))
    return AdmmState(
        x=jnp.where(adapt, x_adapted, x_next),
        rho=rho_new,
        factor=fac,
        k=k,
        status=status,
        since=jnp.where(adapt, 0, st.since + 1),
        refactor=adapt,
        best=cand,
        anderson=anderson_restart(aa, adapt),
    )


def admm_solve(
    data: ScaledProblem, init, tol, infeasible_tol, max_iters, check_every: int, active=True, progress=None
) -> SolverResult:
    """Run ADMM on a scaled problem from zero or ``init = (U, V, dual, ν)`` (finite arrays of the
    original program); it runs only when ``active`` (per problem under ``vmap``), else it returns
    its initial candidate with status ``numerical_error`` at once. ``progress`` (optional) is called
    as ``progress(iteration, gap)`` after every check."""
    S = 2.0 * data.Df - 1.0
    prob = AdmmProblem(data, S, data.Df.T @ data.Df, tol, infeasible_tol, max_iters, check_every, progress)
    st = jax.lax.while_loop(lambda s: s.status == RUNNING, lambda s: step(s, prob), init_state(prob, init, active))
    return SolverResult(st.best, st.status, st.k)
