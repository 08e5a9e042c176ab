"""An unregularized intercept, profiled out: the regularized programs with the squared and the
logistic loss (ReLU, every method, and gated), and the max-margin program
(:func:`profile_margin_intercept`, a bracketing search certified by balanced multipliers).

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


MAX_MARGIN_OUTER = 60
"""Solves at most of the max-margin program's intercept search."""
MARGIN_INNER_FRACTION = 0.5
"""Each max-margin solve's tolerance, as a fraction of the requested one: the interior point's
floating-point floor on a max-margin program can lie near 1e-7 (teacher data, n = 60, all 3 542
patterns: at 2.5e-7 it stalls and hands off to ADMM for 15 000 iterations, at 5e-7 it finishes in 46)."""


def _balanced(a, b):
    """Multipliers ``(μ, ν)`` with ``yᵀμ = 0`` from two points on either side, each ``(h, solution,
    ray)`` with ``h = yᵀμ`` of opposite signs: a convex combination of two dual points, or a dual
    point plus a multiple of a Farkas ray (whose dual blocks ``g`` are zero: it keeps dual
    feasibility); two rays combine to a ray with ``yᵀμ = 0`` (``1ᵀμ = 1``), a Farkas ray of the
    intercept program. ``None`` for one point (``h = 0``)."""
    (ha, sa, ray_a), (hb, sb, ray_b) = a, b
    if ha == hb:  # one point with yᵀμ = 0 (already balanced)
        return None
    if ray_a and ray_b:  # a ray of the intercept program: 1ᵀμ = 1
        wa, wb = -hb / (ha - hb), ha / (ha - hb)
        mu = wa * sa.dual + wb * sb.dual
        total = jnp.sum(mu)
        return mu / total, (wa * sa.cone_dual + wb * sb.cone_dual) / total
    if ray_a:
        (ha, sa, ray_a), (hb, sb, ray_b) = b, a
    wa, wb = (1.0, -ha / hb) if ray_b else (-hb / (ha - hb), ha / (ha - hb))
    return wa * sa.dual + wb * sb.dual, wa * sa.cone_dual + wb * sb.cone_dual


def profile_margin_intercept(
    solve: Callable, certify: Callable, farkas: Callable, y, *, tol: float, infeasible_tol: float,
    max_outer: int = MAX_MARGIN_OUTER,
):
    """The max-margin program with an unregularized intercept,
    ``min Σ‖u_j‖ + ‖v_j‖ s.t. y ⊙ (f + b) ≥ 1`` (cones as before), by a search on ``b``.

    For a fixed ``b`` it is the max-margin program with the offset ``b`` (margins ``y ⊙ f ≥ 1 - y b``).
    Its value ``P(b)`` is convex in ``b``, ``+∞`` where infeasible, with subgradient ``-yᵀμ(b)``
    (``μ`` the margin multipliers): a solve with ``yᵀμ > 0`` puts the root ``b*`` above ``b``, one
    with ``yᵀμ < 0`` below. An infeasible ``b`` comes with a Farkas ray ``(μ, ν)`` (dual blocks
    ``g = 0``, ``μᵀ(1 - y b) > 0``) that rules out every ``b'`` with ``1ᵀμ - b' yᵀμ > 0``, a
    half-line (``yᵀμ = 0``: no ``b`` is feasible, the intercept program is infeasible). The
    feasible ``b`` form an interval, so an infeasible ``b`` also bounds the root on the side its
    ray's ``yᵀμ`` says, exactly; the ray's cut ``1ᵀμ / yᵀμ`` (exact only for an exact ray) is where
    the next trial goes. The trial ``b`` expands from 0 (steps doubling) until the root is
    bracketed, then false position on ``yᵀμ`` between optimal solves (bisection after two trials
    on one side, or next to an infeasible end).

    The certificate: the intercept program's dual is the max-margin dual plus ``yᵀμ = 0``. Points
    on either side of the root combined to ``yᵀμ = 0`` (:func:`_balanced`) give a lower bound
    (:func:`convexrelu.max_margin_dual_objective` holds for any multipliers), the best feasible
    ``(U, V, b)`` the upper bound; optimal when their relative gap and the violation are within ``tol``.

    Args:
        solve: ``solve(b, tol) -> ConvexSolution`` of the program with the offset ``b`` (``throw=False``).
        certify: ``certify(b, solution, μ, ν) -> Optimality`` of ``solution``'s primal at ``b`` against
            the multipliers.
        farkas: ``farkas(μ, ν)``, the Farkas residual of a ray of the program without offset
            (:func:`convexrelu.max_margin_infeasibility`); two rays on either side combine to one
            with ``yᵀμ = 0``, infeasible when it is ``≤ infeasible_tol``.
        y: the labels ±1. tol: the relative gap and violation to certify.

    Returns:
        The best feasible solution with ``intercept = b``, ``dual, cone_dual`` the balanced
        multipliers of its certificate, its ``gap`` and ``residual``, the iterations of every solve,
        and the status: optimal; infeasible (the last solve's Farkas ray, ``yᵀμ = 0``);
        ``inaccurate`` when the bracket shrinks to rounding without a certificate; ``max_iters``
        after ``max_outer`` solves; else the failing solve's status. The caller raises on it.
    """
    y = jnp.asarray(y)
    eps = float(np.finfo(np.dtype(y.dtype)).eps)
    below = above = None  # (h, solution, ray) nearest the root on either side: h = yᵀμ > 0, < 0
    L, H = -np.inf, np.inf  # the root lies in [L, H]
    best, cert = None, None  # the feasible (b, solution) of least value; (Optimality, μ, ν) of it
    total, step, sides, status, b, sol, hint = 0, 1.0, [], None, 0.0, None, None
    for _ in range(max_outer):
        sol = solve(b, tol * MARGIN_INNER_FRACTION)
        total += int(sol.iterations)
        code, h = int(sol.status), float(jnp.sum(y * sol.dual))
        if code not in (RESULTS.optimal, RESULTS.infeasible):  # a stalled solve cannot steer the search
            status = code
            break
        ray = code == RESULTS.infeasible
        if ray and abs(h) <= 1e3 * eps * float(jnp.sum(sol.dual)):  # yᵀμ = 0: a Farkas ray of the intercept program
            status = RESULTS.infeasible
            break
        feasible = not ray and float(sol.residual) <= tol
        if feasible and (best is None or float(sol.value) < float(best[1].value)):
            best, cert = (b, sol), None
        # the feasible b form an interval and P is convex there: an infeasible b with yᵀμ > 0 (or an
        # optimal one, whose subgradient is -yᵀμ) has the root above it, yᵀμ < 0 below it
        if h >= 0 and b >= L:
            L, below = b, (h, sol, ray)
        if h <= 0 and b <= H:
            H, above = b, (h, sol, ray)
        hint = float(jnp.sum(sol.dual)) / h if ray else None  # the ray's own cut 1ᵀμ = b yᵀμ (up to its residual)
        sides.append(h > 0)
        if below is not None and above is not None and below[2] and above[2]:
            mu, nu = _balanced(below, above)
            if float(farkas(mu, nu)) <= infeasible_tol:  # no b is feasible
                status, sol = RESULTS.infeasible, eqx.tree_at(lambda t: (t.dual, t.cone_dual), sol, (mu, nu))
                break
        if best is not None:  # the best primal against the balanced multipliers (and μ = 0: bound 0)
            pairs = [(jnp.zeros_like(sol.dual), jnp.zeros_like(sol.cone_dual))]
            pairs += [(sol.dual, sol.cone_dual)] if not ray and h == 0.0 else []
            if below is not None and above is not None and not (below[2] and above[2]):
                pair = _balanced(below, above)
                pairs += [] if pair is None else [pair]
            for mu, nu in pairs:
                o = certify(best[0], best[1], mu, nu)
                if cert is None or float(o.gap) < float(cert[0].gap):
                    cert = (o, mu, nu)
            if cert is not None and float(cert[0].gap) <= tol and float(cert[0].residual) <= tol:
                status = RESULTS.optimal
                break
        if np.isfinite(L) and np.isfinite(H):
            if H - L <= 4 * eps * (1.0 + abs(L) + abs(H)):
                status = RESULTS.inaccurate
                break
            same = len(sides) >= 2 and sides[-1] == sides[-2]
            if not (below[2] or above[2] or same):  # both ends optimal solves: false position on yᵀμ
                b = L - below[0] * (H - L) / (above[0] - below[0])
            else:
                b = 0.5 * (L + H)
        elif np.isfinite(L):  # expand upwards, at least to the ray's cut
            b = max(L + step, hint if hint is not None else -np.inf)
            step *= 2.0
        else:
            b = min(H - step, hint if hint is not None else np.inf)
            step *= 2.0
    else:
        status = RESULTS.max_iters
    bb, out = (b, sol) if best is None or status == RESULTS.infeasible else best
    dt = y.dtype
    out = eqx.tree_at(
        lambda s: (s.status, s.iterations, s.intercept), out,
        (jnp.asarray(status, jnp.int32), jnp.asarray(total, jnp.int32), jnp.asarray(bb, dt)),
    )
    if cert is not None and status != RESULTS.infeasible:
        o, mu, nu = cert
        out = eqx.tree_at(
            lambda s: (s.dual, s.cone_dual, s.value, s.gap, s.residual), out,
            (mu, nu, jnp.asarray(o.value, dt), jnp.asarray(o.gap, dt), jnp.asarray(o.residual, dt)),
        )
    elif status != RESULTS.infeasible:  # no lower bound on the intercept program yet
        out = eqx.tree_at(lambda s: s.gap, out, jnp.asarray(jnp.inf, dt))
    return out
