"""What every convex solver returns (the native solvers and the cvxpy bridge alike): the status
enumeration :class:`RESULTS` with its messages, and the record :class:`ConvexSolution`."""

from __future__ import annotations

import enum

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int


class RESULTS(enum.IntEnum):
    """The status of a convex solve: one enumeration, each member with its message.

    A solution's ``status`` is an int array of these codes (one per problem in a batch under
    ``jax.vmap``); members compare equal to their codes (``sol.status == RESULTS.optimal``).
    ``RESULTS.optimal.message`` says what the status means and what to do about it.
    """

    def __new__(cls, code: int, message: str):
        member = int.__new__(cls, code)
        member._value_ = code
        member.message = message
        return member

    optimal = 0, "the relative duality gap and the relative constraint violation are within tol"
    max_iters = 1, "the iteration limit was reached: raise max_iters or loosen tol"
    infeasible = (
        2,
        "the program is infeasible: no network on these patterns separates the data "
        "(a Farkas certificate is in .dual)",
    )
    unbounded = 3, "the program is unbounded"
    numerical_error = 4, "the iterates became non-finite or stopped moving: check the data's scale"
    inaccurate = (
        5,
        "the solve's precision could not certify the answer: its gap or violation (or Farkas "
        "residual), recomputed in float64, exceeds the tolerance (the float64 values are in .gap "
        "and .residual); solve in float64 (jax.config.update('jax_enable_x64', True)) or loosen tol",
    )


RUNNING = -1
"""The loop-internal code of a solve still in progress (never returned)."""


class ConvexSolution(eqx.Module):
    """A solution of one of the convex programs of DESIGN.md.

    Attributes:
        U, V: the positive and negative blocks ``u_j, v_j ∈ K_j``, shape ``(p, d)``.
        patterns: the activation patterns ``D_j``, boolean ``(p, n)``.
        value: the primal objective at ``(U, V)`` (``P*`` for the max-margin program).
        dual: the dual variable: ``μ ≥ 0`` of the margin constraints (max-margin), or the
            negative loss gradient ``r = -∇_f ℓ`` (regularized); for an infeasible max-margin
            problem, the normalized dual ray certifying infeasibility. Shape ``(n,)``.
        cone_dual: multipliers ``ν ≥ 0`` of the cone constraints ``(2D_j - 1) ⊙ X u_j ≥ 0``
            (index 0) and ``(2D_j - 1) ⊙ X v_j ≥ 0`` (index 1), shape ``(2, p, n)``. With ``dual``
            they give the Lagrangian, hence ``∂(value)/∂X`` by the envelope theorem.
        gap: relative duality gap ``|primal - dual| / max(1, |primal|, |dual|)`` (max-margin:
            ``max(1/s_x, …)``, ``s_x`` the RMS row norm; see :func:`convexrelu.optimality`).
        residual: relative constraint violation (margin and cone constraints).
        status: a :class:`RESULTS` code (0 optimal, 1 max_iters, 2 infeasible, 3 unbounded,
            4 numerical_error, 5 inaccurate); :func:`status_name` gives its text.
        iterations: iterations used.
        beta: the regularization strength (0 for the max-margin program).
        program: ``"max-margin"``, ``"regularized-squared"``, ``"regularized-logistic"`` or
            ``"regularized-softmax"`` (``c`` outputs: ``U, V (c, p, d)``, ``dual (c, n)``,
            ``cone_dual (c, 2, p, n)``, as for ``c`` stacked squared-loss outputs).
        intercept: the unregularized intercept ``b`` of the fit ``Σ_j D_j X(u_j - v_j) + b``
            (``solve_regularized(..., intercept=True)``); 0 for the programs without one.
    """

    U: Float[Array, "p d"]
    V: Float[Array, "p d"]
    patterns: Bool[Array, "p n"]
    value: Float[Array, ""]
    dual: Float[Array, " n"]
    cone_dual: Float[Array, "2 p n"]
    gap: Float[Array, ""]
    residual: Float[Array, ""]
    status: Int[Array, ""]
    iterations: Int[Array, ""]
    beta: Float[Array, ""]
    program: str = eqx.field(static=True, default="max-margin")
    intercept: Float[Array, ""] | float = 0.0

    @property
    def ok(self) -> bool:
        """True when every problem in the (possibly batched) solution reached optimality."""
        return bool(np.all(np.asarray(self.status) == RESULTS.optimal))

    @property
    def status_name(self) -> str | list:
        """The status as text (a nested list of texts for a batch)."""
        return status_name(self.status)


def status_name(status) -> str | list:
    """The :class:`RESULTS` name of a status code, or a nested list of names for an array of codes."""
    s = np.asarray(status)
    if s.ndim == 0:
        code = int(s)
        return RESULTS(code).name if code in RESULTS._value2member_map_ else f"unknown({code})"
    return [status_name(v) for v in s]


def stack_outputs(sols):
    """One solution of a program with ``c`` outputs whose programs separate, from the outputs'
    solutions ``sols`` (a :class:`ConvexSolution` or ``GatedSolution`` each, same patterns): the
    arrays stacked on a leading output axis (the patterns ``(p, n)`` kept once), ``value`` the
    sum, ``gap`` (and ``residual``) the largest of the outputs' (each output's program is
    certified on its own), the iterations added up; the status optimal when every output's is,
    else the worst output's. Traceable (``jit``, ``vmap``, ``grad``)."""
    stacked = jax.tree.map(lambda *a: jnp.stack([jnp.asarray(x) for x in a]), *sols)
    codes = stacked.status
    worst = jnp.max(jnp.where(codes == RESULTS.optimal, -1, codes))
    status = jnp.where(worst < 0, RESULTS.optimal, worst).astype(jnp.int32)
    first = sols[0]
    out = eqx.tree_at(
        lambda t: (t.patterns, t.value, t.gap, t.status, t.iterations, t.beta),
        stacked,
        (first.patterns, jnp.sum(stacked.value), jnp.max(stacked.gap), status, jnp.sum(stacked.iterations), first.beta),
    )
    if hasattr(out, "residual"):
        out = eqx.tree_at(lambda t: t.residual, out, jnp.max(stacked.residual))
    return out
