"""An unregularized intercept for the squared-loss programs (ReLU and gated), by profiling it out.

The program with an intercept ``b`` (DESIGN.md) is

    min_{W, b}  ½ ‖Σ_j D_j X w_j + b 1 - y‖² + β R(W)         (R: the group norm, cones as before)

How ``b`` enters. For a fixed ``b`` this is the program without intercept at the target
``y - b``; its optimal value ``V(b)`` is convex in ``b`` (a partial minimization of a jointly
convex function) with ``V'(b) = -1ᵀ r(b)``, ``r(b) = y - b - f*(b)`` the residual (the dual
variable). So ``b*`` is the root of the nonincreasing function ``h(b) = 1ᵀ r(b)``, whose slope lies
in ``[-n, 0]`` (``f*`` moves by at most as much as the target). :func:`profile_intercept` finds it
by safeguarded secant steps: from ``b₀ = mean(y)``, a step ``h/n`` never passes the root, a secant
step may, and once the root is bracketed the Illinois rule keeps the bracket. Every solve is the
existing solver at the shifted target, so every method (interior point, ADMM, matrix-free,
R-FISTA) gets the intercept through one mechanism.

The certificate. The dual of the intercept program is the dual without intercept plus the
constraint ``1ᵀ r = 0``. The centred residual ``r̃ = r - mean(r)`` satisfies it, and the existing
dual bound of ``r̃`` at the target ``y - b`` is ``t r̃ᵀ y - ½ t² ‖r̃‖²`` (``1ᵀ r̃ = 0``), a lower
bound on the intercept program. A solution is optimal when the relative gap between the primal
at ``(W, b)`` and that bound, and the violation, are within ``tol``: the same certificate as
every solve.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._solution import RESULTS

MAX_OUTER = 40
"""Solves at most, one per trial intercept."""
INNER_FRACTION = 0.25
"""Each solve's tolerance, as a fraction of the requested one (the centring costs a little gap)."""


def _next_intercept(points: list[tuple[float, float]], n: int) -> float:
    """The next trial ``b`` from the ``(b, h(b))`` evaluated so far (``h`` nonincreasing)."""
    b, h = points[-1]
    safe = b + h / n  # |h'| ≤ n: never past the root
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


def profile_intercept(
    solve: Callable, certify: Callable, y, *, tol: float, throw: bool, raise_on_status: Callable
):
    """Solve a squared-loss program with an unregularized intercept (see the module docstring).

    Args:
        solve: ``solve(target, tol, init) -> solution`` (``throw=False``) at the target ``y - b``,
            whose ``dual`` is the residual ``target - f``; ``init`` is the previous solution.
        certify: ``certify(target, solution, r_centred) -> Optimality`` of the program without
            intercept at ``target``.
        y: the targets. tol: the relative gap and violation to certify.
        throw: raise (via ``raise_on_status``) unless optimal.

    Returns:
        The last solution with ``intercept = b``, ``value`` the primal at ``(W, b)``, ``dual`` the
        centred residual, its ``gap`` and ``residual``, the iterations of every solve, and the
        status: optimal when certified, else the last solve's status or ``max_iters``.
    """
    y = jnp.asarray(y)
    n = y.shape[0]
    points: list[tuple[float, float]] = []
    b, sol, total = float(jnp.mean(y)), None, 0
    best = None
    for _ in range(MAX_OUTER):
        target = y - jnp.asarray(b, y.dtype)
        sol = solve(target, tol * INNER_FRACTION, sol)
        total += int(sol.iterations)
        r = sol.dual
        h = float(jnp.sum(r))
        rc = r - jnp.mean(r)
        opt = certify(target, sol, rc)
        record = (b, sol, rc, opt)
        if best is None or float(opt.gap) < float(best[3].gap):
            best = record
        inner_ok = int(sol.status) == RESULTS.optimal
        if inner_ok and float(opt.gap) <= tol and float(opt.residual) <= tol:
            best = record
            break
        if not inner_ok or not np.isfinite(h) or h == 0.0:
            break
        points.append((b, h))
        b = _next_intercept(points, n)
    b, sol, rc, opt = best
    certified = int(sol.status) == RESULTS.optimal and float(opt.gap) <= tol and float(opt.residual) <= tol
    status = RESULTS.optimal if certified else (sol.status if int(sol.status) != RESULTS.optimal else RESULTS.max_iters)
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
    return raise_on_status(out) if throw else out
