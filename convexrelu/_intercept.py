"""An unregularized intercept, profiled out: the regularized programs with the squared and the
logistic loss (ReLU, every method, and gated).

The program with an intercept ``b`` (DESIGN.md) is

    min_{W, b}  ℓ(Σ_j D_j X w_j + b 1, y) + β R(W)         (R: the group norm, cones as before)

How ``b`` enters. For a fixed ``b`` this is the program without intercept with ``b`` a fixed
offset of the fit (for the squared loss: the target ``y - b``). Its optimal value ``V(b)`` is convex
in ``b`` (a partial minimization of a jointly convex function) with ``V'(b) = -1ᵀ r(b)``,
``r = -∇_f ℓ`` the dual variable. So ``b*`` is the root of the nonincreasing function
``h(b) = 1ᵀ r(b)``, whose slope lies in ``[-n L, 0]`` with ``L`` the loss' curvature bound (1
squared, ¼ logistic: ``V`` curves at most as ``b ↦ ℓ(f + b)`` does). :func:`profile_intercept`
finds it by safeguarded secant steps: a step ``h/(nL)`` never passes the root, a secant step may,
and once the root is bracketed false position (bisection after two trials on one side) keeps the
bracket. Every solve is an existing solver with the offset, so every method (interior point,
ADMM, matrix-free, R-FISTA) gets the intercept through one mechanism.

The certificate. The dual of the intercept program is the dual without intercept plus the
constraint ``1ᵀ r = 0`` (``ℓ(· + o)*(s) = ℓ*(s) - sᵀo`` and ``o = b 1``). The centred ``r̃``
satisfies it (``r - mean(r)`` for the squared loss; for the logistic loss the larger class's part
shrunk to balance the other's, which keeps it in the conjugate's domain ``0 ≤ y ⊙ r̃ ≤ 1``), and
the existing dual bound of ``r̃`` is a lower bound on the intercept program. A solution is optimal when the relative gap between the primal
at ``(W, b)`` and that bound, and the violation, are within ``tol``: the same certificate as
every solve.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._solution import RESULTS
from ._validation import is_concrete

MAX_OUTER = 40
"""Solves at most, one per trial intercept."""
INNER_FRACTION = 0.25
"""Each solve's tolerance, as a fraction of the requested one (the centring costs a little gap)."""


def _next_intercept(points: list[tuple[float, float]], slope: float) -> float:
    """The next trial ``b`` from the ``(b, h(b))`` evaluated so far (``h`` nonincreasing, ``|h'| ≤ slope``)."""
    b, h = points[-1]
    safe = b + h / slope  # never past the root
    lo = [p for p in points if p[1] > 0]  # the root lies above these b
    hi = [p for p in points if p[1] < 0]  # ... and below these
    if lo and hi:  # bracketed: false position, or bisection after two trials on one side
        (b0, h0), (b1, h1) = max(lo), min(hi)
        if len(points) >= 2 and (points[-1][1] > 0) == (points[-2][1] > 0):
            return 0.5 * (b0 + b1)
        return b0 - h0 * (b1 - b0) / (h1 - h0)
    if len(points) >= 2:
        bp, hp = points[-2]
        if h != hp:
            secant = b - h * (b - bp) / (h - hp)
            if np.isfinite(secant) and (secant - b) * h > 0:  # toward the root, at least the safe step
                return max(secant, safe) if h > 0 else min(secant, safe)
    return safe


def zero_intercept(y, loss: str):
    """The intercept of the zero network: ``mean(y)`` (squared loss) or the log-odds
    ``log(n₊ / n₋)`` (logistic loss; 0 with one class only). Traceable."""
    if loss == "squared":
        return jnp.mean(y)
    pos, neg = jnp.sum(y > 0), jnp.sum(y < 0)
    return jnp.where((pos > 0) & (neg > 0), jnp.log(jnp.maximum(pos, 1) / jnp.maximum(neg, 1)), 0.0)


def require_concrete(*arrays) -> None:
    """The profile runs on the host, one solve per trial ``b``: refuse traced inputs."""
    if not all(is_concrete(jnp.asarray(a)) for a in arrays):
        raise ValueError("intercept=True solves on the host, one solve per trial intercept: call it outside jit, vmap and grad")


def _centred(r, y, loss: str):
    """``r`` moved onto the intercept's dual constraint ``1ᵀr = 0``: ``r - mean(r)`` (squared
    loss); for the logistic loss the larger class's part of ``r`` shrunk to balance the other's
    (``r_i = y_i q_i`` with ``0 ≤ q ≤ 1``, so it stays in the conjugate's domain, where the
    subtraction of the mean could leave it)."""
    if loss != "logistic":
        return r - jnp.mean(r)
    pos, neg = jnp.sum(jnp.where(y > 0, r, 0.0)), -jnp.sum(jnp.where(y < 0, r, 0.0))
    keep = jnp.minimum(pos, neg)
    scale = jnp.where(y > 0, keep / jnp.where(pos > 0, pos, 1.0), keep / jnp.where(neg > 0, neg, 1.0))
    return r * scale


def _certified(sol, opt, tol: float) -> bool:
    return int(sol.status) == RESULTS.optimal and float(opt.gap) <= tol and float(opt.residual) <= tol


def profile_intercept(solve: Callable, certify: Callable, y, *, loss: str, tol: float):
    """Solve a program with an unregularized intercept (see the module docstring).

    Args:
        solve: ``solve(b, tol, init) -> solution`` (``throw=False``) with ``b`` a fixed offset of
            the fit, whose ``dual`` is ``r = -∇_f ℓ``; ``init`` is the previous solution.
        certify: ``certify(b, solution, r_centred) -> Optimality`` of the program with the offset
            ``b``, at the centred ``r`` (a bound of the intercept program; for the logistic loss the
            gap is taken as infinite where the centred ``r`` leaves the conjugate's domain).
        y: the targets. loss: ``"squared"`` or ``"logistic"``: the first ``b`` is the zero
            network's (:func:`zero_intercept`), and ``|h'| ≤ n L`` with the loss' curvature bound
            ``L`` (1 squared, ¼ logistic), so a step ``h / (n L)`` never passes the root.
        tol: the relative gap and violation to certify.

    Returns:
        The last solution with ``intercept = b``, ``value`` the primal at ``(W, b)``, ``dual`` the
        centred residual, its ``gap`` and ``residual``, the iterations of every solve, and the
        status: optimal when certified, else the last solve's status, ``inaccurate`` when ``b`` is
        pinned to rounding without a certificate, or ``max_iters`` after :data:`MAX_OUTER` solves.
        The caller raises on the status.
    """
    y = jnp.asarray(y)
    n = y.shape[0]
    points: list[tuple[float, float]] = []
    slope = n * (1.0 if loss == "squared" else 0.25)
    b, sol, total = float(zero_intercept(y, loss)), None, 0
    best, stalled = None, False
    for _ in range(MAX_OUTER):
        sol = solve(b, tol * INNER_FRACTION, sol)
        total += int(sol.iterations)
        r = sol.dual
        h = float(jnp.sum(r))
        rc = _centred(r, y, loss)
        opt = certify(b, sol, rc)
        if loss == "logistic":  # the bound holds for the intercept program only on the conjugate's domain
            inside = bool(jnp.all((y * rc >= 0) & (y * rc <= 1)))
            opt = opt._replace(gap=opt.gap if inside else jnp.asarray(jnp.inf, y.dtype))
        record = (b, sol, rc, opt)
        if best is None or float(opt.gap) < float(best[3].gap):
            best = record
        inner_ok = int(sol.status) == RESULTS.optimal
        if _certified(sol, opt, tol):
            best = record
            break
        if not inner_ok or not np.isfinite(h) or h == 0.0:
            break
        points.append((b, h))
        b_next = _next_intercept(points, slope)
        if abs(b_next - b) <= 4 * np.finfo(np.dtype(y.dtype)).eps * (1.0 + abs(b)):
            stalled = True  # b is pinned to rounding: the solves' precision cannot certify the gap
            break
        b = b_next
    b, sol, rc, opt = best
    if _certified(sol, opt, tol):
        status = RESULTS.optimal
    elif int(sol.status) != RESULTS.optimal:
        status = sol.status
    else:
        status = RESULTS.inaccurate if stalled else RESULTS.max_iters
    dt = y.dtype
    out = eqx.tree_at(
        lambda s: (s.value, s.dual, s.gap, s.status, s.iterations, s.intercept),
        sol,
        (
            jnp.asarray(opt.value, dt), rc, jnp.asarray(opt.gap, dt), jnp.asarray(status, jnp.int32),
            jnp.asarray(total, jnp.int32), jnp.asarray(b, dt),
        ),
    )
    if hasattr(out, "residual"):
        out = eqx.tree_at(lambda s: s.residual, out, jnp.asarray(opt.residual, dt))
    return out
