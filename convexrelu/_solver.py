"""Native JAX solvers of the convex programs: entry points, and ADMM with an exact linear solve.

The default method for the max-margin and squared-loss programs is the primal-dual
interior-point method of :mod:`convexrelu._ipm` (Mehrotra predictor-corrector, Nesterov-Todd
scaling, Woodbury normal equations); ADMM (below) solves the logistic-loss program, warm starts
(``init=``), and takes over from an IPM run that stalls numerically.

ADMM algorithm (one instance; ``jax.vmap`` batches it). With ``z = (U, V)`` stacked as ``2p`` blocks
``z_b ∈ R^d``, write each program as

    min  h(t) + F(w) + I_{≥0}(s)   s.t.  z = t,  G z = s,  A z = w,

where ``h(t) = β Σ_b ‖t_b‖`` (``β = 1`` for the max-margin program), ``G z = (S_j ⊙ X z_b)_b``
(the cone constraints, ``S = 2D - 1``), ``A z = Σ_j D_j ⊙ X (u_j - v_j)`` (the fit), and ``F`` the
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
``x ↦ T(x)`` of ``check_every`` ADMM steps is accelerated by safeguarded type-II Anderson
acceleration (memory 5; an extrapolation whose fixed-point residual grew is rejected, as in
SCS 3, O'Donoghue 2021). Every
``check_every`` iterations the candidate ``(U, V, μ, ν)`` is scored by
:func:`convexrelu._programs.optimality` on the original data, and the loop stops when the
relative duality gap and the relative constraint violation are both ``≤ tol``. For the
max-margin program the successive differences of the multipliers converge to a Farkas ray
when the program is infeasible (OSQP §3.4); such a ray, checked with
:func:`convexrelu._programs.max_margin_infeasibility`, ends the loop with status
``infeasible``.

Data are rescaled internally (``X / s_x`` with ``s_x`` the RMS row norm, squared-loss targets
by their RMS) and the results mapped back exactly.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from . import _programs as prog
from ._cache import solver_jit
from ._ipm import host_gram, ipm_solve
from ._solution import (
    INFEASIBLE,
    MAX_ITERS,
    NUMERICAL_ERROR,
    SUCCESS,
    ConvexSolution,
    status_name,
)
from ._threads import one_blas_thread
from ._validation import check_patterns, check_targets, check_X, check_Xy, check_y, is_concrete

_RUNNING = -1
_W = (1.0, 1.0, 1.0)  # relative penalties of the z = t, G z = s and A z = w constraints
_RHO0 = 1.0
_AA_MEMORY = 5  # Anderson memory
_AA_REG = (1e-10, 1e-5)  # Tikhonov regularization of its least squares (float64, float32)
_ADAPT = 2.0  # re-balance ρ when the residual ratio leaves [1/_ADAPT, _ADAPT]
_ALPHA = 1.6  # over-relaxation (Boyd et al. 2011, §3.4.3; OSQP's default)
_RHO_MIN, _RHO_MAX = 1e-6, 1e6
_ADMM_MAX_ITERS = 50_000
_IPM_MAX_ITERS = 500
_METHODS = ("auto", "ipm", "admm")


class _Fac(eqx.Module):
    Binv: Array  # (d, d)
    XB: Array  # (n, d) = Xs B⁻¹
    L: Array  # (n, n) Cholesky factor of the capacitance matrix


class _Vars(eqx.Module):
    t: Array  # (2, p, d)
    s: Array  # (2, p, n)
    w: Array  # (n,)
    lt: Array  # scaled multipliers
    ls: Array
    lw: Array


def _sig(rho):
    return rho * _W[0], rho * _W[1], rho * _W[2]


def _factor(Xs, DtD, rho) -> _Fac:
    d = Xs.shape[1]
    n = Xs.shape[0]
    st, ss, sw = _sig(rho)
    B = st * jnp.eye(d, dtype=Xs.dtype) + ss * (Xs.T @ Xs)
    cB = jax.scipy.linalg.cho_factor(B, lower=True)
    Binv = jax.scipy.linalg.cho_solve(cB, jnp.eye(d, dtype=Xs.dtype))
    Binv = 0.5 * (Binv + Binv.T)
    XB = Xs @ Binv
    C = jnp.eye(n, dtype=Xs.dtype) / sw + 2.0 * (XB @ Xs.T) * DtD
    C = 0.5 * (C + C.T)
    L = jnp.linalg.cholesky(C)
    return _Fac(Binv, XB, L)


def _logistic_prox(v, y, sigma):
    """``argmin_w softplus(-y w) + σ/2 (w - v)²`` elementwise (safeguarded Newton on ``q = y w``).

    With ``a = y v`` the optimality condition ``φ(q) = -sigmoid(-q) + σ (q - a) = 0`` is increasing
    in ``q`` and brackets its root in ``[a, a + 1/σ]``.
    """
    a = y * v
    lo = a
    hi = a + 1.0 / sigma
    q = a + 0.5 / sigma

    def body(_, c):
        q, lo, hi = c
        sm = jax.nn.sigmoid(-q)
        phi = -sm + sigma * (q - a)
        dphi = sm * (1.0 - sm) + sigma
        lo = jnp.where(phi < 0, q, lo)
        hi = jnp.where(phi >= 0, q, hi)
        qn = q - phi / dphi
        qn = jnp.where((qn > lo) & (qn < hi), qn, 0.5 * (lo + hi))
        return qn, lo, hi

    q, _, _ = jax.lax.fori_loop(0, 40, body, (q, lo, hi))
    return y * q


def _prox_w(v, y, rho, program):
    if program == "max-margin":
        return y * jnp.maximum(y * v, 1.0)
    if program == "regularized-squared":
        return (y + rho * v) / (1.0 + rho)
    return _logistic_prox(v, y, rho)


def _step(v: _Vars, Xs, y, Df, S, beta_s, rho, fac: _Fac, program):
    """One over-relaxed ADMM iteration; returns the new variables and ``(z, Gz, Az)``.

    z-step: with ``K = I ⊗ B``, ``r₁ = ρ[(t - λ_t) + Gᵀ(s - λ_s)]``, ``q = ρ(w - λ_w)`` and
    ``C = I/ρ + A K⁻¹ Aᵀ``, Woodbury gives ``z = K⁻¹r₁ + K⁻¹Aᵀ c`` with
    ``c = C⁻¹(q/ρ - A K⁻¹ r₁)``.
    """
    st, ss, sw = _sig(rho)
    z0 = st * (v.t - v.lt) @ fac.Binv + ss * (S * (v.s - v.ls)) @ fac.XB  # K⁻¹ r₁, (2, p, d)
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
    thr = beta_s / st
    t = vt * jnp.maximum(0.0, 1.0 - thr / jnp.maximum(nt, thr))  # block soft-threshold
    vs = _ALPHA * Gz + (1.0 - _ALPHA) * v.s + v.ls
    s = jnp.maximum(vs, 0.0)
    vw = _ALPHA * Az + (1.0 - _ALPHA) * v.w + v.lw
    w = _prox_w(vw, y, sw, program)
    return _Vars(t, s, w, vt - t, vs - s, vw - w), (z, Gz, Az)


class _Carry(eqx.Module):
    x: Array  # the ADMM state (_Vars) flattened: the fixed-point variable Anderson accelerates
    rho: Array
    fac: _Fac
    k: Array
    status: Array
    since: Array  # checks since the last ρ update
    U: Array
    V: Array
    dual: Array
    cone_dual: Array
    opt: prog.Optimality
    # Anderson acceleration (type II, safeguarded) of the map x ↦ T(x) = check_every ADMM steps
    dX: Array  # (m, N) differences of iterates
    dG: Array  # (m, N) differences of residuals g = T(x) - x
    x_prev: Array
    g_prev: Array
    count: Array  # valid columns in dX, dG
    idx: Array  # next column to overwrite
    fx_base: Array  # T(x) of the last accepted base point (fallback when AA is rejected)
    gn_base: Array  # ‖g‖ there
    aa_used: Array


def _candidate(vars: _Vars, rho, X, y, D, beta, sx, sy, program):
    """Map the scaled ADMM iterate to the original problem's ``(U, V, dual, ν)``."""
    st, ss, sw = _sig(rho)
    nu_s = jnp.maximum(-ss * vars.ls, 0.0)
    if program == "max-margin":
        U, V = vars.t[0] / sx, vars.t[1] / sx
        m = jnp.min(y * prog.convex_fit(X, D, U, V))
        c = jnp.where(m > 0, 1.0 / jnp.where(m > 0, m, 1.0), 1.0)  # exact margin feasibility
        U, V = c * U, c * V
        mu = jnp.maximum(-y * sw * vars.lw, 0.0) / sx
        return U, V, mu, nu_s / sx
    U, V = vars.t[0] * (sy / sx), vars.t[1] * (sy / sx)
    loss = prog._loss_of(program)
    f = prog.convex_fit(X, D, U, V)
    if loss == "squared":  # best rescaling of the candidate along its ray (closed form)
        ff = jnp.sum(f * f)
        c = (jnp.sum(f * y) - beta * prog.group_norm(U, V)) / jnp.where(ff > 0, ff, 1.0)
        c = jnp.where(ff > 0, jnp.maximum(c, 0.0), 1.0)
        U, V, f = c * U, c * V, c * f
    r = prog.negative_loss_gradient(f, y, loss)
    return U, V, r, nu_s * sy


def _finite(v: _Vars):
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(v)]))


@solver_jit(static_argnames=("program", "check_every"))
def _solve(X, y, D, beta, init, tol, infeasible_tol, max_iters, program: str, check_every: int):
    dtype = X.dtype
    n, d = X.shape
    p = D.shape[0]
    Df = D.astype(dtype)
    S = 2.0 * Df - 1.0
    sx = jnp.sqrt(jnp.sum(X * X) / n)
    sx = jnp.where(sx > 0, sx, 1.0)
    Xs = X / sx
    if program == "regularized-squared":
        sy = jnp.sqrt(jnp.mean(y * y))
        sy = jnp.where(sy > 0, sy, 1.0)
    else:
        sy = jnp.ones((), dtype)
    ys = y / sy
    beta_s = jnp.ones((), dtype) if program == "max-margin" else beta / (sx * sy)
    DtD = Df.T @ Df
    rho0 = jnp.asarray(_RHO0, dtype)
    fac0 = _factor(Xs, DtD, rho0)

    if init is None:
        vars0 = _Vars(
            jnp.zeros((2, p, d), dtype), jnp.zeros((2, p, n), dtype), jnp.zeros((n,), dtype),
            jnp.zeros((2, p, d), dtype), jnp.zeros((2, p, n), dtype), jnp.zeros((n,), dtype),
        )
    else:
        U0, V0, dual0, nu0 = init
        if program == "max-margin":
            t = jnp.stack([U0, V0]) * sx
            yw = -y * jnp.maximum(dual0, 0.0) * sx
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
        st0, ss0, sw0 = _sig(rho0)
        vars0 = _Vars(t, s, w, yt / st0, ysl / ss0, yw / sw0)

    def score(vars, rho):
        U, V, dual, nu = _candidate(vars, rho, X, y, D, beta, sx, sy, program)
        opt = prog.optimality(X, y, D, U, V, dual, nu, program=program, beta=beta)
        return U, V, dual, nu, opt

    U0_, V0_, du0, nu0_, opt0 = score(vars0, rho0)
    x0, unravel = jax.flatten_util.ravel_pytree(vars0)
    N = x0.shape[0]
    mem = _AA_MEMORY
    carry0 = _Carry(
        x0, rho0, fac0, jnp.zeros((), jnp.int32), jnp.asarray(_RUNNING, jnp.int32),
        jnp.zeros((), jnp.int32), U0_, V0_, du0, nu0_, opt0,
        jnp.zeros((mem, N), dtype), jnp.zeros((mem, N), dtype), x0, jnp.zeros_like(x0),
        jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), x0, jnp.asarray(jnp.inf, dtype),
        jnp.zeros((), bool),
    )

    def cond(c: _Carry):
        return c.status == _RUNNING

    def body(c: _Carry):
        rho, fac = c.rho, c.fac

        def plain(_, v):
            return _step(v, Xs, ys, Df, S, beta_s, rho, fac, program)[0]

        x = c.x
        v_old = jax.lax.fori_loop(0, check_every - 1, plain, unravel(x))
        v_new, (z, Gz, Az) = _step(v_old, Xs, ys, Df, S, beta_s, rho, fac, program)
        k = c.k + check_every
        U, V, dual, nu, opt = score(v_new, rho)
        converged = (opt.gap <= tol) & (opt.residual <= tol)
        finite = _finite(v_new) & jnp.isfinite(opt.value)
        status = jnp.where(converged, SUCCESS, _RUNNING)
        if program == "max-margin":
            # Farkas ray from the multipliers' successive difference (OSQP §3.4)
            _, ss, sw = _sig(rho)
            mu_r = jnp.maximum(-ys * sw * (v_new.lw - v_old.lw), 0.0)
            nu_r = jnp.maximum(-ss * (v_new.ls - v_old.ls), 0.0)
            eps = prog.max_margin_infeasibility(X, y, D, mu_r, nu_r)
            infeas = (status == _RUNNING) & (eps <= infeasible_tol)
            tot = jnp.sum(mu_r)
            tot = jnp.where(tot > 0, tot, 1.0)
            dual = jnp.where(infeas, mu_r / tot, dual)
            nu = jnp.where(infeas, nu_r / tot, nu)
            inf_ = jnp.asarray(jnp.inf, dtype)
            opt = prog.Optimality(
                jnp.where(infeas, inf_, opt.value),
                jnp.where(infeas, inf_, opt.dual_value),
                jnp.where(infeas, eps, opt.gap),
                opt.residual,
            )
            status = jnp.where(infeas, INFEASIBLE, status)
        status = jnp.where((status == _RUNNING) & (k >= max_iters), MAX_ITERS, status)
        status = jnp.where(finite, status, NUMERICAL_ERROR)
        # OSQP-style penalty update from the relative primal and dual residuals
        q_new = (v_new.t, v_new.s, v_new.w)
        q_old = (v_old.t, v_old.s, v_old.w)
        Mz = (z, Gz, Az)
        sq = lambda ts: sum(jnp.sum(a * a) for a in ts)  # noqa: E731
        tiny = jnp.finfo(dtype).tiny
        rp = jnp.sqrt(sq([a - b for a, b in zip(Mz, q_new)]) / jnp.maximum(jnp.maximum(sq(Mz), sq(q_new)), tiny))
        rd = jnp.sqrt(sq([a - b for a, b in zip(q_new, q_old)]) / jnp.maximum(sq((v_new.lt, v_new.ls, v_new.lw)), tiny))
        ratio = jnp.sqrt(rp / jnp.maximum(rd, tiny))
        adapt = (status == _RUNNING) & (c.since >= 2) & ((ratio > _ADAPT) | (ratio < 1.0 / _ADAPT)) & jnp.isfinite(ratio)
        rho_new = jnp.where(adapt, jnp.clip(rho * ratio, _RHO_MIN, _RHO_MAX), rho)
        # Anderson acceleration, safeguarded: an extrapolated point whose residual grew is
        # rejected and the plain step from the last accepted point taken instead (SCS 3).
        fx = jax.flatten_util.ravel_pytree(v_new)[0]
        g = fx - x
        gn = jnp.sqrt(jnp.sum(g * g))
        reject = c.aa_used & ~(gn <= c.gn_base)
        upd = ~reject & (c.k > 0)
        dX = jnp.where(upd, c.dX.at[c.idx].set(x - c.x_prev), c.dX)
        dG = jnp.where(upd, c.dG.at[c.idx].set(g - c.g_prev), c.dG)
        count = jnp.where(upd, jnp.minimum(c.count + 1, mem), c.count)
        idx = jnp.where(upd, (c.idx + 1) % mem, c.idx)
        valid = jnp.arange(mem, dtype=jnp.int32) < count
        Gram = dG @ dG.T
        scale = jnp.maximum(jnp.max(jnp.diag(Gram)), tiny)
        Gram = jnp.where(valid[:, None] & valid[None, :], Gram, 0.0)
        Gram = Gram + jnp.diag(jnp.where(valid, _AA_REG[dtype == jnp.float32] * scale, 1.0))
        gamma = jnp.where(valid, jnp.linalg.solve(Gram, jnp.where(valid, dG @ g, 0.0)), 0.0)
        x_aa = fx - gamma @ (dX + dG)
        use_aa = ~reject & (count > 0) & jnp.all(jnp.isfinite(x_aa))
        x_next = jnp.where(reject, c.fx_base, jnp.where(use_aa, x_aa, fx))
        # a new penalty changes the map: restart from the plain step, rescale the multipliers,
        # forget the history
        f = rho / rho_new
        v_ad = unravel(fx)
        v_ad = eqx.tree_at(lambda v: (v.lt, v.ls, v.lw), v_ad, (v_ad.lt * f, v_ad.ls * f, v_ad.lw * f))
        x_next = jnp.where(adapt, jax.flatten_util.ravel_pytree(v_ad)[0], x_next)
        reset = adapt | reject
        count = jnp.where(reset, 0, count)
        keep = ~reject
        fac_new = jax.lax.cond(adapt, lambda: _factor(Xs, DtD, rho_new), lambda: fac)
        since = jnp.where(adapt, 0, c.since + 1)
        return _Carry(
            x_next, rho_new, fac_new, k, status.astype(jnp.int32), since, U, V, dual, nu, opt,
            dX, dG, jnp.where(keep, x, c.x_prev), jnp.where(keep, g, c.g_prev),
            jnp.where(reset, 0, count), jnp.where(reset, 0, idx),
            jnp.where(keep, fx, c.fx_base), jnp.where(keep, gn, c.gn_base),
            use_aa & ~adapt,
        )

    c = jax.lax.while_loop(cond, body, carry0)
    return c.U, c.V, c.dual, c.cone_dual, c.opt, c.status, c.k


def _check_options(tol, max_iters, check_every, dtype, method="admm"):
    if max_iters is None:
        max_iters = _IPM_MAX_ITERS if method == "ipm" else _ADMM_MAX_ITERS
    if tol is None:
        tol = 1e-6 if jnp.finfo(dtype).bits >= 64 else 1e-4
    if not isinstance(tol, (int, float)) or not (0 < float(tol) < 1):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    if isinstance(max_iters, bool) or not isinstance(max_iters, (int, np.integer)) or max_iters < 1:
        raise ValueError(f"max_iters must be a positive int, got {max_iters!r}")
    if isinstance(check_every, bool) or not isinstance(check_every, (int, np.integer)) or check_every < 1:
        raise ValueError(f"check_every must be a positive int, got {check_every!r}")
    return float(tol), int(max_iters), int(check_every)


def _check_init(init, program, p, d, n, dtype):
    if init is None:
        return None
    if not isinstance(init, ConvexSolution):
        raise TypeError(f"init must be a ConvexSolution (a previous solve's result), got {type(init).__name__}")
    if init.U.shape != (p, d) or init.V.shape != (p, d) or init.dual.shape != (n,) or init.cone_dual.shape != (2, p, n):
        raise ValueError(
            f"init has U {init.U.shape}, dual {init.dual.shape}, cone_dual {init.cone_dual.shape}; "
            f"this problem needs U ({p}, {d}), dual ({n},), cone_dual (2, {p}, {n})"
        )
    if init.program != program:
        raise ValueError(f"init solves {init.program!r}, not {program!r}")
    arrs = (init.U, init.V, init.dual, init.cone_dual)
    # an infeasible or failed previous solve carries a ray or non-finite values: start cold then
    arrs = tuple(jnp.where(jnp.isfinite(a), a, 0.0).astype(dtype) for a in arrs)
    return arrs


def _raise_or_flag(sol: ConvexSolution, throw: bool) -> ConvexSolution:
    if not throw:
        return sol
    if is_concrete(sol.status):
        st = np.asarray(sol.status)
        if np.any(st != SUCCESS):
            names = sorted(set(np.atleast_1d(status_name(st)).ravel().tolist()) - {"optimal"})
            where = "" if st.ndim == 0 else f" in {int(np.sum(st != SUCCESS))} of {st.size} problems"
            if np.any(st == INFEASIBLE):
                raise ValueError(
                    f"the {sol.program} program is infeasible{where}: no network on these patterns "
                    "separates the data (a Farkas certificate is in .dual); pass throw=False to get it"
                )
            hint = {
                "max_iters": "raise max_iters or loosen tol",
                "numerical_error": "the iterates became non-finite; check the data's scale",
            }
            raise RuntimeError(
                f"convex solver stopped with status {names}{where} after {np.max(np.asarray(sol.iterations))} "
                f"iterations (gap {np.max(np.asarray(sol.gap)):.2e}, residual "
                f"{np.max(np.asarray(sol.residual)):.2e}); {'; '.join(hint.get(n_, '') for n_ in names)}; "
                "pass throw=False to inspect the result"
            )
        return sol
    value = eqx.error_if(
        sol.value,
        sol.status != SUCCESS,
        "convex solver did not reach optimality (infeasible, max_iters or numerical_error); "
        "pass throw=False and read .status",
    )
    return eqx.tree_at(lambda s: s.value, sol, value)


def _pick_method(method, program, init):
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if method == "auto":
        return "admm" if (program == "regularized-logistic" or init is not None) else "ipm"
    if method == "ipm" and program == "regularized-logistic":
        raise ValueError("method='ipm' solves the max-margin and squared-loss programs; use 'admm' for the logistic loss")
    if method == "ipm" and init is not None:
        raise ValueError("method='ipm' does not warm start; use method='admm' (or 'auto') with init=")
    return method


def _run(X, y, D, beta, program, tol, max_iters, throw, init, check_every, infeasible_tol, method="auto"):
    n, d = X.shape
    p = D.shape[0]
    method = _pick_method(method, program, init)
    tol_, max_iters_, check_every = _check_options(tol, max_iters, check_every, X.dtype, method)
    init_arrs = _check_init(init, program, p, d, n, X.dtype)
    itol = tol_ if infeasible_tol is None else float(infeasible_tol)
    dt = X.dtype
    # the interior-point method's LAPACK on one BLAS thread (convexrelu._threads), unless its
    # capacitance GEMM runs on the host BLAS; waiting for a concrete status keeps the whole run
    # inside the limit (JAX dispatches asynchronously)
    limit = method == "ipm" and not host_gram(X, D)
    with one_blas_thread(limit):
        if method == "ipm":
            U, V, dual, nu, opt, status, k = ipm_solve(
                X, y, D, jnp.asarray(beta, dt), jnp.asarray(tol_, dt), jnp.asarray(itol, dt),
                jnp.asarray(max_iters_, jnp.int32), program,
            )
        else:
            U, V, dual, nu, opt, status, k = _solve(
                X, y, D, jnp.asarray(beta, dt), init_arrs, jnp.asarray(tol_, dt), jnp.asarray(itol, dt),
                jnp.asarray(max_iters_, jnp.int32), program, check_every,
            )
        if limit and is_concrete(status):
            jax.block_until_ready(status)
    sol = ConvexSolution(
        U=U, V=V, patterns=D, value=opt.value, dual=dual, cone_dual=nu, gap=opt.gap,
        residual=opt.residual, status=status, iterations=k, beta=jnp.asarray(beta, dt), program=program,
    )
    # a stalled interior-point run (e.g. a nearly infeasible max-margin program, whose Farkas ray
    # the IPM's dual iterate has not yet validated, or a tolerance below the IPM's floating-point
    # floor) is handed to ADMM, warm-started from the IPM's best candidate, which returns the
    # certificate or the optimum; only possible with concrete (not traced) status
    if method == "ipm" and is_concrete(status) and np.any(np.asarray(status) == NUMERICAL_ERROR):
        admm = _run(X, y, D, beta, program, tol, max_iters, False, sol, check_every, infeasible_tol, "admm")
        sol = eqx.tree_at(lambda s: s.iterations, admm, admm.iterations + k)
    return _raise_or_flag(sol, throw)


def solve_max_margin(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    tol: float | None = None,
    max_iters: int | None = None,
    throw: bool = True,
    init: ConvexSolution | None = None,
    check_every: int = 10,
    infeasible_tol: float | None = None,
    method: Literal["auto", "ipm", "admm"] = "auto",
) -> ConvexSolution:
    """Solve the convex max-margin program on the patterns ``D`` (Wang & Pilanci 2021).

        P* = min Σ_j ‖u_j‖ + ‖v_j‖  s.t.  y ⊙ Σ_j D_j X (u_j - v_j) ≥ 1,  (2D_j - 1) ⊙ X u_j ≥ 0,
                                          (2D_j - 1) ⊙ X v_j ≥ 0.

    The best normalized margin of a network whose neurons use these patterns is ``1/(2P*)``.
    By default a primal-dual interior-point method with a structure-exploiting Woodbury
    normal-equation solve (:mod:`convexrelu._ipm`, 20-60 iterations); ``method="admm"`` (or a warm
    start ``init=``) selects ADMM with an exact Woodbury linear solve (the module docstring).
    Jitted, works in float32 and float64 and under ``jax.vmap`` (problems of the same shape).

    Args:
        X: data ``(n, d)``. y: labels ``(n,)`` in {-1, +1}. D: boolean patterns ``(p, n)``.
        tol: stop when the relative duality gap and the relative constraint violation
            (:func:`convexrelu._programs.optimality`) are both ``≤ tol``; default ``1e-6`` in
            float64, ``1e-4`` in float32.
        max_iters: iteration limit (status ``max_iters`` beyond it); default 500 for the
            interior-point method, 50 000 for ADMM.
        throw: raise on any status but ``optimal`` (``ValueError`` when infeasible,
            ``RuntimeError`` otherwise; ``EquinoxRuntimeError`` under ``jit``/``vmap``).
        init: a previous :class:`ConvexSolution` of a problem of the same shape (warm start;
            ADMM only: interior-point methods do not warm start, so ``"auto"`` picks ADMM).
        check_every: ADMM iterations between optimality checks (the IPM checks every iteration).
        method: ``"ipm"`` (interior point), ``"admm"``, or ``"auto"`` (default): the IPM unless
            ``init`` is given. An IPM run that stalls numerically (status ``numerical_error``,
            e.g. on a nearly infeasible program, or at a ``tol`` below its floating-point floor of
            about 1e-8) is continued by ADMM from the IPM's best candidate when the status is
            concrete (not under ``jit``/``vmap``); the iteration count then adds both.
        infeasible_tol: Farkas-residual threshold (default ``tol``): a multiplier ray with
            :func:`convexrelu._programs.max_margin_infeasibility` ``≤ infeasible_tol`` proves
            ``P* ≥ 1/(infeasible_tol · max_i ‖x_i‖)`` and is reported as infeasible.

    Returns:
        A :class:`ConvexSolution` with ``program="max-margin"``: ``U, V``, ``value = Σ‖u_j‖+‖v_j‖``
        (the candidate is rescaled to satisfy the margin constraints exactly), the margin
        multipliers ``μ`` in ``dual``, the cone multipliers ``ν`` in ``cone_dual``, the
        relative gap and violation. When infeasible: ``value = inf``, ``dual`` the normalized
        ray ``μ ≥ 0, 1ᵀμ = 1``, ``cone_dual`` its ``ν``, ``gap`` its Farkas residual.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels, NaN, options; infeasible program.
        RuntimeError: iteration limit or numerical failure (``throw=True``).

    Example:
        >>> sol = cr.solve_max_margin(X, y, D)
        >>> gamma_star = 1 / (2 * sol.value)
    """
    X, y = check_Xy(X, y)
    D = check_patterns(D, X.shape[0])
    return _run(X, y, D, 0.0, "max-margin", tol, max_iters, throw, init, check_every, infeasible_tol, method)


def solve_regularized(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    beta,
    loss: Literal["squared", "logistic"] = "squared",
    tol: float | None = None,
    max_iters: int | None = None,
    throw: bool = True,
    init: ConvexSolution | None = None,
    check_every: int = 10,
    method: Literal["auto", "ipm", "admm"] = "auto",
) -> ConvexSolution:
    """Solve the regularized convex program (Pilanci & Ergen 2020; Wang, Lacotte & Pilanci 2021).

        min ℓ(Σ_j D_j X (u_j - v_j), y) + β Σ_j ‖u_j‖ + ‖v_j‖  s.t.  u_j, v_j ∈ K_j,

    ``ℓ = ½ Σ (f - y)²`` (``loss="squared"``, real targets) or ``Σ log(1 + e^{-y f})``
    (``loss="logistic"``, labels ±1). Same options and guarantees as :func:`solve_max_margin`;
    ``method="auto"`` uses the interior-point method for the squared loss and ADMM for the
    logistic loss (and whenever ``init`` is given; ``method="ipm"`` with the logistic loss is a
    ``ValueError``). ``beta`` may be a traced scalar (``jax.vmap`` over a grid of β).

    Returns:
        A :class:`ConvexSolution` (``program = "regularized-<loss>"``) whose ``dual`` is
        ``r = -∇_f ℓ`` at the solution and ``cone_dual`` the cone multipliers ``ν``; the dual
        bound is :func:`convexrelu._programs.regularized_dual_objective`.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels/targets, NaN, ``beta ≤ 0``, options.
        RuntimeError: iteration limit or numerical failure (``throw=True``).

    Example:
        >>> sol = cr.solve_regularized(X, y, D, beta=1e-2, loss="squared")
    """
    if loss not in ("squared", "logistic"):
        raise ValueError(f"loss must be 'squared' or 'logistic', got {loss!r}")
    X = check_X(X)
    if loss == "squared":
        y = check_targets(y, X.shape[0], dtype=X.dtype)
    else:
        y = check_y(y, X.shape[0], dtype=X.dtype)
    D = check_patterns(D, X.shape[0])
    b = jnp.asarray(beta)
    if b.ndim != 0:
        raise ValueError(f"beta must be a scalar (vmap over a batch of β), got shape {b.shape}")
    if is_concrete(b) and not (np.isfinite(float(b)) and float(b) > 0):
        raise ValueError(f"beta must be a finite positive number, got {float(b)!r}")
    return _run(X, y, D, beta, f"regularized-{loss}", tol, max_iters, throw, init, check_every, None, method)
