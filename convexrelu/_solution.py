"""The record every convex solver returns (native JAX solver and the cvxpy bridge alike)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

# Status codes (an int array, so that a batch of solutions under vmap carries one per problem).
SUCCESS = 0
MAX_ITERS = 1
INFEASIBLE = 2
UNBOUNDED = 3
NUMERICAL_ERROR = 4
STATUS_NAMES = {
    SUCCESS: "optimal",
    MAX_ITERS: "max_iters",
    INFEASIBLE: "infeasible",
    UNBOUNDED: "unbounded",
    NUMERICAL_ERROR: "numerical_error",
}

PROGRAMS = ("max-margin", "regularized-squared", "regularized-logistic")


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
        gap: relative duality gap ``|primal - dual| / max(1, |primal|, |dual|)``.
        residual: relative constraint violation (margin and cone constraints).
        status: int code, see :func:`status_name` (0 optimal, 1 max_iters, 2 infeasible,
            3 unbounded, 4 numerical_error).
        iterations: iterations used.
        beta: the regularization strength (NaN-free; 0 for the max-margin program).
        program: ``"max-margin"``, ``"regularized-squared"`` or ``"regularized-logistic"``.
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

    @property
    def ok(self) -> bool:
        """True when every problem in the (possibly batched) solution reached optimality."""
        return bool(np.all(np.asarray(self.status) == SUCCESS))

    @property
    def status_name(self) -> str | list:
        """The status as text (a nested list of texts for a batch)."""
        return status_name(self.status)


def status_name(status) -> str | list:
    """Text of a status code or array of codes."""
    s = np.asarray(status)
    if s.ndim == 0:
        return STATUS_NAMES.get(int(s), f"unknown({int(s)})")
    return [status_name(v) for v in s]


def active_blocks(sol: ConvexSolution, *, tol: float = 0.0):
    """Boolean masks ``(p,)`` of the nonzero ``u_j`` and ``v_j`` blocks (norm > ``tol``)."""
    return jnp.linalg.norm(sol.U, axis=-1) > tol, jnp.linalg.norm(sol.V, axis=-1) > tol
