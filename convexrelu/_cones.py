"""Nonnegative least squares and the Euclidean projection onto a pattern's cone.

The cone of an activation pattern ``D`` is ``K = {u : S ⊙ X u ≥ 0}`` with ``S = 2D - 1``. It is
polyhedral, so Moreau's decomposition ``Π_K(g) = g - Π_{K°}(g)`` with the polar cone
``K° = {-(S ⊙ X)ᵀ η : η ≥ 0}`` turns the projection into the nonnegative least squares problem
``min_{η ≥ 0} ½ ‖g + (S ⊙ X)ᵀ η‖²``, solved exactly (up to rounding) by Lawson & Hanson's
active-set method; then ``Π_K(g) = g + (S ⊙ X)ᵀ η*``.

Used by the dual certificates (``max_{u ∈ K, ‖u‖ ≤ 1} gᵀu = ‖Π_K(g)‖``) and by the maps
between convex solutions and networks (pruning projects solver output back onto its cones).

Reference: Lawson & Hanson, "Solving Least Squares Problems" (1974), ch. 23.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._validation import check_patterns, check_X

# ----------------------------------------------------------------------------------------------
# Nonnegative least squares (Lawson & Hanson 1974, ch. 23), one problem; vmap for batches.
# ----------------------------------------------------------------------------------------------


class _NNLSProblem(NamedTuple):
    """``min_{z ≥ 0} ½ ‖B z - b‖²`` and the tolerance on the gradient for adding a variable."""

    B: Array
    b: Array
    add_tol: Array


class _NNLSState(NamedTuple):
    """The active-set iterate: ``z`` is zero off the ``passive`` set (the free variables)."""

    z: Array
    passive: Array
    iterations: Array
    done: Array


def _least_squares_on(problem: _NNLSProblem, passive: Array) -> Array:
    """Minimum-norm ``argmin_z ‖B z - b‖`` over the passive variables, zero elsewhere (SVD)."""
    zero = jnp.zeros((), problem.B.dtype)
    Bp = jnp.where(passive[None, :], problem.B, zero)
    z = jnp.linalg.lstsq(Bp, problem.b)[0]  # min-norm: zero on the masked columns
    return jnp.where(passive, z, zero)


def _descent_direction(problem: _NNLSProblem, z: Array) -> Array:
    """``-∇ ½‖B z - b‖² = Bᵀ(b - B z)``; positive entries can decrease the objective."""
    return problem.B.T @ (problem.b - problem.B @ z)


def _nnls_running(max_iter: int, state: _NNLSState) -> Array:
    return (~state.done) & (state.iterations < max_iter)


def _nnls_step(problem: _NNLSProblem, state: _NNLSState) -> _NNLSState:
    """One Lawson–Hanson iteration.

    Solve the least squares problem on the passive set, ``s``. If ``s > 0`` there, accept it and
    add the variable with the largest positive ``Bᵀ(b - B s)`` (done when none exceeds
    ``add_tol``). Otherwise step from ``z`` towards ``s`` until the first passive variable reaches
    zero, ``z + α (s - z)`` with ``α = min_{s_k ≤ 0} z_k / (z_k - s_k)``, and drop the variables
    that hit zero.
    """
    dtype = problem.B.dtype
    eps = jnp.finfo(dtype).eps
    z, passive = state.z, state.passive
    s = _least_squares_on(problem, passive)
    feasible = jnp.all(jnp.where(passive, s > 0, True))
    # Infeasible: step from z towards s until the first passive variable reaches zero.
    neg = passive & (s <= 0)
    ratio = jnp.where(neg, z / jnp.where(neg, z - s, 1.0), jnp.inf)
    alpha = jnp.clip(jnp.min(ratio), 0.0, 1.0)
    z_back = z + alpha * (s - z)
    drop = passive & (z_back <= 10 * eps * jnp.maximum(jnp.max(jnp.abs(z_back)), 1.0))
    drop = drop | (neg & (ratio <= alpha))
    z_back = jnp.where(drop, jnp.zeros((), dtype), z_back)
    # Feasible: accept s, then add the variable with the largest positive gradient.
    w = jnp.where(passive, -jnp.inf, _descent_direction(problem, s))
    j = jnp.argmax(w)
    add = w[j] > problem.add_tol
    return _NNLSState(
        z=jnp.where(feasible, jnp.maximum(s, 0.0), z_back),
        passive=jnp.where(feasible, passive.at[j].set(passive[j] | add), passive & ~drop),
        iterations=state.iterations + 1,
        done=feasible & ~add,
    )


def nnls(
    B: Float[Array, "k q"], b: Float[Array, " k"], *, max_iter: int | None = None
) -> tuple[Float[Array, " q"], Int[Array, ""]]:
    """Nonnegative least squares ``min_{z ≥ 0} ½ ‖B z - b‖²`` by Lawson & Hanson's active set.

    Each iteration solves the unconstrained least squares problem on the passive set (by SVD,
    so rank-deficient ``B`` is fine) and either accepts it, adding the most promising variable,
    or steps back to the boundary of the feasible set, dropping variables that hit zero. The
    answer is exact up to rounding (no first-order tolerance). Pure JAX, jit- and vmap-able.

    Args:
        B: matrix ``(k, q)``.
        b: right-hand side ``(k,)``.
        max_iter: iteration cap (keyword-only Python int); defaults to ``3 q + 30``.

    Returns:
        ``(z, iterations)``; ``z ≥ 0`` of shape ``(q,)``.

    Reference: Lawson & Hanson, "Solving Least Squares Problems" (1974), ch. 23.
    """
    k, q = B.shape
    max_iter = 3 * q + 30 if max_iter is None else int(max_iter)
    dtype = B.dtype
    eps = jnp.finfo(dtype).eps
    scale = jnp.maximum(jnp.max(jnp.abs(B)) * jnp.maximum(jnp.linalg.norm(b), jnp.max(jnp.abs(B))), eps)
    problem = _NNLSProblem(B=B, b=b, add_tol=10.0 * max(k, q) * eps * scale)
    init = _NNLSState(
        z=jnp.zeros((q,), dtype),
        passive=jnp.zeros((q,), bool),
        iterations=jnp.zeros((), jnp.int32),
        done=jnp.zeros((), bool),
    )
    final = jax.lax.while_loop(
        functools.partial(_nnls_running, max_iter), functools.partial(_nnls_step, problem), init
    )
    return final.z, final.iterations


# ----------------------------------------------------------------------------------------------
# Projection onto the cone K of a pattern.
# ----------------------------------------------------------------------------------------------


def project_onto_cone(X: Float[Array, "n d"], pattern: Bool[Array, " n"], g: Float[Array, " d"]) -> Float[Array, " d"]:
    """``Π_K(g) = g + Aᵀη*``, ``A = S ⊙ X``, ``η* = argmin_{η ≥ 0} ½‖Aᵀη + g‖²`` (no input checks).

    The unchecked core of :func:`cone_projection`, for callers that have validated ``X`` and
    ``pattern`` already and vmap over patterns or vectors. ``g`` must have ``X``'s dtype.
    """
    S = 2.0 * pattern.astype(X.dtype) - 1.0
    A = S[:, None] * X  # (n, d): K = {u : A u ≥ 0}
    eta, _ = nnls(A.T, -g)  # min_{η≥0} ½‖Aᵀη + g‖²
    return g + A.T @ eta


def cone_projection(
    X: Float[Array, "n d"], pattern: Bool[Array, " n"], g: Float[Array, " d"]
) -> Float[Array, " d"]:
    """Euclidean projection of ``g`` onto the cone ``K = {u : (2D - 1) ⊙ X u ≥ 0}``.

    Moreau's decomposition ``Π_K(g) = g - Π_{K°}(g)``, ``K° = {-(S ⊙ X)ᵀ η : η ≥ 0}``: with
    ``η* = argmin_{η ≥ 0} ½ ‖g + (S ⊙ X)ᵀ η‖²`` (exact active-set NNLS), ``Π_K(g) = g + (S ⊙ X)ᵀ η*``.
    Pure JAX; vmap over patterns or vectors.

    Args:
        X: data ``(n, d)``.
        pattern: activation pattern ``D`` (boolean ``(n,)``).
        g: the vector to project, ``(d,)``.

    Returns:
        ``Π_K(g)``, shape ``(d,)``.

    Raises:
        ValueError: on shape mismatches.
    """
    X = check_X(X)
    pattern = check_patterns(jnp.asarray(pattern)[None, :], X.shape[0], name="pattern")[0]
    g = jnp.asarray(g)
    if g.shape != (X.shape[1],):
        raise ValueError(f"g must have shape ({X.shape[1]},) to match X's d, got {g.shape}")
    return project_onto_cone(X, pattern, g.astype(X.dtype))
