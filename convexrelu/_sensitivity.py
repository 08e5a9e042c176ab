"""Sensitivity of the convex programs' optimal values to the data, by the envelope theorem.

For a convex program whose data enter the objective and constraints smoothly, the derivative of
the optimal value with respect to the data is the partial derivative of the Lagrangian at a
primal-dual optimal pair, holding the primal and dual variables fixed (envelope theorem; e.g.
Boyd & Vandenberghe §5.6, Rockafellar & Wets Thm 10.58 under uniqueness of the multipliers).
For the max-margin program of DESIGN.md (Wang & Pilanci, arXiv 2110.06488),

    L(U, V, μ, ν; X) = Σ_j ‖u_j‖ + ‖v_j‖ − μᵀ(y ⊙ f(X) − 1)
                       − Σ_j ν⁰_jᵀ (S_j ⊙ X u_j) − Σ_j ν¹_jᵀ (S_j ⊙ X v_j),

with ``f(X) = Σ_j D_j ⊙ X(u_j − v_j)`` and ``S_j = 2D_j − 1``; for the regularized program
(Pilanci & Ergen, arXiv 2002.10553) the first two terms are ``ℓ(f(X), y) + β Σ_j ‖u_j‖ + ‖v_j‖``.
So ``∂P*/∂X = ∇_X L`` and, for the regularized program, ``∂P*/∂β = Σ_j ‖u_j‖ + ‖v_j‖``.

Both need only a :class:`~convexrelu.ConvexSolution` (from the native solver or the cvxpy bridge):
its ``U, V``, its margin multipliers ``dual`` and its cone multipliers ``cone_dual``. They are
cheap (one gradient of a closed-form function) and agree with differentiating through the solver
(``convexrelu.bridge.optimal_value``), which the tests check.
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float

from ._programs import group_norm, lagrangian
from ._solution import ConvexSolution
from ._validation import check_patterns, check_targets, check_X, check_y


def solution_lagrangian(sol: ConvexSolution, X: Float[Array, "n d"], y: Float[Array, " n"]) -> Float[Array, ""]:
    """The Lagrangian of ``sol``'s program at its primal ``(U, V)`` and dual ``(μ, ν)``, as a function of ``X``.

    Max-margin: ``Σ‖u_j‖+‖v_j‖ − μᵀ(y ⊙ f(X) − 1) − Σ_j ν⁰_jᵀ(S_j ⊙ Xu_j) − ν¹_jᵀ(S_j ⊙ Xv_j)``.
    Regularized: ``ℓ(f(X), y) + β Σ‖u_j‖+‖v_j‖ − Σ_j ν⁰_jᵀ(S_j ⊙ Xu_j) − ν¹_jᵀ(S_j ⊙ Xv_j)``
    (the loss's multiplier ``r = −∇_f ℓ`` is implicit: ``f`` enters ``ℓ`` directly). This is
    :func:`convexrelu.lagrangian` evaluated at the solution's fields.

    At an optimal primal-dual pair it equals the optimal value; its gradient in ``X`` is
    ``∂P*/∂X`` (envelope theorem). Differentiable in ``X`` (and ``y``); no input checks (see
    :func:`value_gradient`).
    """
    dt = X.dtype
    beta = None if sol.program == "max-margin" else sol.beta.astype(dt)
    return lagrangian(
        X, y, sol.patterns, sol.U.astype(dt), sol.V.astype(dt), sol.dual.astype(dt),
        sol.cone_dual.astype(dt), program=sol.program, beta=beta,
    )


def _check_solution_data(sol: ConvexSolution, X, y):
    X = check_X(X)
    n, d = X.shape
    if sol.U.shape != (sol.patterns.shape[0], d):
        raise ValueError(f"solution blocks U have shape {sol.U.shape}, expected (p, {d}) for X of shape {X.shape}")
    check_patterns(sol.patterns, n)
    if sol.program == "regularized-squared":
        y = check_targets(y, n, dtype=X.dtype)
    else:
        y = check_y(y, n, dtype=X.dtype)
    return X, y


def value_gradient(sol: ConvexSolution, X: Float[Array, "n d"], y: Float[Array, " n"]) -> Float[Array, "n d"]:
    """``∂P*/∂X``: the derivative of the optimal value with respect to the data, from the duals.

    By the envelope theorem ``∂P*/∂X = ∇_X L(U, V, μ, ν; X)`` at the solution (see
    :func:`solution_lagrangian`). For the max-margin program this is

        ``∂P*/∂X = −Σ_j (D_j ⊙ y ⊙ μ)(u_j − v_j)ᵀ − Σ_j (S_j ⊙ ν⁰_j) u_jᵀ + (S_j ⊙ ν¹_j) v_jᵀ``,

    and for the regularized program the first term has ``r = −∇_f ℓ`` in place of ``y ⊙ μ``.
    Valid where the optimal value is differentiable (unique multipliers, which holds for data
    in general position). Since ``γ* = 1/(2P*)``, ``∂γ*/∂X = −2γ*² ∂P*/∂X``.

    Args:
        sol: a solution of the max-margin or regularized program for ``(X, y, sol.patterns)``
            (from ``convexrelu.solve_max_margin`` or ``convexrelu.bridge.solve_with_cvxpy``).
        X: the data ``(n, d)`` the program was solved for.
        y: the labels ``(n,)`` (±1; real targets allowed for the squared loss).

    Returns:
        ``(n, d)`` array, the gradient of the optimal value.

    Raises:
        ValueError: shapes inconsistent with ``sol``, labels not ±1, NaN entries.

    Example:
        >>> sol = bridge.solve_with_cvxpy(X, y, D)
        >>> G = value_gradient(sol, X, y)   # ≈ jax.grad(lambda X: bridge.optimal_value(X, y, D))(X)
    """
    X, y = _check_solution_data(sol, X, y)
    return jax.grad(solution_lagrangian, argnums=1)(sol, X, y)


def value_derivative_beta(sol: ConvexSolution) -> Float[Array, ""]:
    """``∂P*/∂β = Σ_j ‖u_j‖ + ‖v_j‖`` for the regularized program (envelope theorem).

    Raises:
        ValueError: for a max-margin solution (which has no ``β``).
    """
    if sol.program == "max-margin":
        raise ValueError("value_derivative_beta is defined for the regularized program; got a max-margin solution")
    return group_norm(sol.U, sol.V)
