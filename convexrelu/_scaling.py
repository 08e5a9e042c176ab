"""What both native algorithms do to the data and the iterate: scaling, the feasible candidate,
its score, and the acceptance of a Farkas certificate.

Both algorithms iterate on scaled data ``X_s = X / s_x`` (``s_x`` the RMS row norm) and, for the
squared loss, scaled targets ``y_s = y / s_y`` (``s_y`` their RMS), with ``β_s = β / (s_x s_y)``:
the scaled program's blocks are ``z = s_x / s_y · (u, v)``. An iterate is mapped back to a
*candidate* of the original program and scored there with :func:`convexrelu.optimality`, so the
stopping test and the reported gap are those of the original data.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from . import _programs as prog
from ._solution import RESULTS, RUNNING


class ScaledProblem(eqx.Module):
    """A problem's original data, its scaled copy and the scales (``s_y = 1`` unless squared loss)."""

    X: Array
    y: Array
    D: Array
    beta: Array
    Xs: Array
    ys: Array
    Df: Array  # D as floats of X's dtype
    beta_s: Array
    sx: Array
    sy: Array
    offset: Array  # a fixed offset o of the fit, ℓ(f + o, y) (logistic; the squared loss shifts y instead)
    program: str = eqx.field(static=True)


class Candidate(NamedTuple):
    """A point of the original program with its :class:`convexrelu.Optimality`."""

    U: Array
    V: Array
    dual: Array
    cone_dual: Array
    opt: prog.Optimality


class SolverResult(NamedTuple):
    """What each algorithm returns to the entry point: its best candidate, status and iterations."""

    candidate: Candidate
    status: Array
    iterations: Array


def scale_problem(X, y, D, beta, program: str, offset=0.0) -> ScaledProblem:
    """``X_s = X / s_x``, ``s_x = sqrt(Σ‖x_i‖² / n)`` (:func:`convexrelu._programs.rms`); for the squared loss ``y_s = y / s_y``,
    ``s_y = sqrt(mean y²)`` (a zero scale is taken as 1); ``β_s = β / (s_x s_y)`` (1 for max-margin).
    A fixed ``offset`` ``o`` of the fit (regularized programs: an intercept held fixed) is, for the
    squared loss, the target ``y - o`` (``y`` is that target from here on); the logistic loss keeps
    it, ``ℓ(f + o, y)``, and so do the max-margin program's margins ``y ⊙ (f + o) ≥ 1`` (the fit is
    unscaled: ``A_s z = A (u - v)``)."""
    dtype = X.dtype
    sx = prog.rms(X, X.shape[0])
    offset = jnp.asarray(offset, dtype)
    if program == "regularized-squared":
        y, offset = y - offset, jnp.zeros_like(offset)
        sy = prog.rms(y, y.shape[0])
    else:
        sy = jnp.ones((), dtype)
    beta_s = jnp.ones((), dtype) if program == "max-margin" else beta / (sx * sy)
    return ScaledProblem(X, y, D, beta, X / sx, y / sy, D.astype(dtype), beta_s, sx, sy, offset, program)


def feasible_candidate(prob: ScaledProblem, Zu, Zv, mu_s, nu_s):
    """Map scaled blocks ``(Zu, Zv)`` and multipliers to ``(U, V, dual, ν)`` of the original program.

    Max-margin: ``(U, V) = c (Zu, Zv) / s_x`` with ``c = 1 / min_i y_i f_i`` when positive, so the
    margin constraints hold exactly (the objective is 1-homogeneous; with a fixed offset ``o`` the
    smallest ``c`` with ``c y ⊙ f ≥ 1 - y ⊙ o``, :func:`_margin_scale`); ``μ = μ_s / s_x``,
    ``ν = ν_s / s_x``. Regularized: ``(U, V) = (s_y / s_x)(Zu, Zv)``; for the squared loss the best
    point on that ray, ``c = max(0, (fᵀy - β Σ‖·‖) / fᵀf)`` (closed form); ``dual = r = -∇_f ℓ`` at
    the candidate's fit, ``ν = s_y ν_s``.
    """
    X, y, D = prob.X, prob.y, prob.D
    if prob.program == "max-margin":
        U, V = Zu / prob.sx, Zv / prob.sx
        c = _margin_scale(y * prog.convex_fit(X, D, U, V), 1.0 - y * prob.offset)
        return c * U, c * V, mu_s / prob.sx, nu_s / prob.sx
    loss = prog.loss_of_program(prob.program)
    U, V = Zu * (prob.sy / prob.sx), Zv * (prob.sy / prob.sx)
    f = prog.convex_fit(X, D, U, V)
    if loss == "squared":
        ff = jnp.sum(f * f)
        c = (jnp.sum(f * y) - prob.beta * prog.group_norm(U, V)) / jnp.where(ff > 0, ff, 1.0)
        c = jnp.where(ff > 0, jnp.maximum(c, 0.0), 1.0)
        U, V, f = c * U, c * V, c * f
    return U, V, prog.negative_loss_gradient(f + prob.offset, y, loss), nu_s * prob.sy


def _margin_scale(m, h):
    """The smallest ``c ≥ 0`` with ``c m ≥ h`` (margins ``m = y ⊙ f``, right-hand sides ``h = 1 - y ⊙ o``):
    ``1 / min m`` without an offset. Rows with ``h > 0`` need ``m > 0`` and bound ``c`` below, rows
    with ``h ≤ 0 > m`` bound it above; where no ``c`` satisfies all rows, ``1`` (the violation is
    then reported)."""
    need = h > 0
    safe = jnp.where(m != 0, m, 1.0)
    lo = jnp.max(jnp.where(need, jnp.where(m > 0, h / safe, jnp.inf), 0.0))
    hi = jnp.min(jnp.where(~need & (m < 0), h / safe, jnp.inf))
    return jnp.where(jnp.isfinite(lo) & (lo <= hi), lo, 1.0)


def score(prob: ScaledProblem, Zu, Zv, mu_s, nu_s, tol):
    """The :func:`feasible_candidate` and its optimality on the original data; status ``optimal``
    when its relative gap and violation are both ``≤ tol``, else running."""
    U, V, dual, nu = feasible_candidate(prob, Zu, Zv, mu_s, nu_s)
    opt = prog.optimality(prob.X, prob.y, prob.D, U, V, dual, nu, program=prob.program, beta=prob.beta, offset=prob.offset)
    status = jnp.where((opt.gap <= tol) & (opt.residual <= tol), RESULTS.optimal, RUNNING)
    return Candidate(U, V, dual, nu, opt), status.astype(jnp.int32)


def accept_farkas(cand: Candidate, status, eps, ray_mu, ray_nu, threshold, allowed=True):
    """Accept a multiplier ray ``(μ_r, ν_r) ≥ 0`` with Farkas residual ``eps`` as a certificate of
    infeasibility of the max-margin program when the solve is still running, ``eps ≤ threshold``
    and ``allowed``: the candidate becomes the normalized ray (``1ᵀμ = 1``) with value ``inf`` and
    ``gap = eps``, the status ``infeasible``."""
    infeas = (status == RUNNING) & (eps <= threshold) & allowed
    tot = jnp.sum(ray_mu)
    tot = jnp.where(tot > 0, tot, 1.0)
    inf = jnp.asarray(jnp.inf, eps.dtype)
    opt = cand.opt
    opt = prog.Optimality(
        jnp.where(infeas, inf, opt.value), jnp.where(infeas, inf, opt.dual_value),
        jnp.where(infeas, eps, opt.gap), opt.residual,
    )
    cand = Candidate(
        cand.U, cand.V, jnp.where(infeas, ray_mu / tot, cand.dual), jnp.where(infeas, ray_nu / tot, cand.cone_dual), opt
    )
    return cand, jnp.where(infeas, RESULTS.infeasible, status).astype(jnp.int32)
