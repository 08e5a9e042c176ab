"""Reference solutions of the convex programs with cvxpy + Clarabel (for tests only).

These are the textbook formulations of DESIGN.md, written independently of the native solver
and of ``convexrelu.bridge`` so that the tests compare against an established conic solver.
"""

from __future__ import annotations

import numpy as np


def _blocks(X, D):
    import cvxpy as cp

    X = np.asarray(X, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)  # (p, n)
    p, d = D.shape[0], X.shape[1]
    U = cp.Variable((p, d))
    V = cp.Variable((p, d))
    S = 2.0 * D.T - 1.0  # (n, p) signs of the cone constraints
    fit = cp.sum(cp.multiply(D.T, X @ (U - V).T), axis=1)  # Σ_j D_j X (u_j - v_j)
    cones = [cp.multiply(S, X @ U.T) >= 0, cp.multiply(S, X @ V.T) >= 0]
    penalty = cp.sum(cp.norm(U, 2, axis=1)) + cp.sum(cp.norm(V, 2, axis=1))
    return U, V, fit, cones, penalty


def max_margin_reference(X, y, D):
    """``P* = min Σ ‖u_j‖ + ‖v_j‖ s.t. y ⊙ Σ_j D_j X (u_j - v_j) ≥ 1, u_j, v_j ∈ K_j``.

    Returns ``(P*, U, V, μ)`` with ``μ`` the margin constraints' multipliers, or raises
    ``RuntimeError`` when Clarabel does not report optimality.
    """
    import cvxpy as cp

    U, V, fit, cones, penalty = _blocks(X, D)
    margin = cp.multiply(np.asarray(y, dtype=np.float64), fit) >= 1
    prob = cp.Problem(cp.Minimize(penalty), [margin, *cones])
    prob.solve(solver=cp.CLARABEL)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"Clarabel status {prob.status}")
    return prob.value, U.value, V.value, margin.dual_value


def regularized_reference(X, y, D, *, beta, loss="squared"):
    """``min ℓ(Σ_j D_j X (u_j - v_j), y) + β Σ_j (‖u_j‖ + ‖v_j‖), u_j, v_j ∈ K_j``.

    ``loss`` is ``"squared"`` (``½ Σ (f - y)²``) or ``"logistic"`` (``Σ log(1 + e^{-y f})``).
    Returns ``(value, U, V)``.
    """
    import cvxpy as cp

    U, V, fit, cones, penalty = _blocks(X, D)
    y = np.asarray(y, dtype=np.float64)
    if loss == "squared":
        data = 0.5 * cp.sum_squares(fit - y)
    elif loss == "logistic":
        data = cp.sum(cp.logistic(-cp.multiply(y, fit)))
    else:
        raise ValueError(loss)
    prob = cp.Problem(cp.Minimize(data + beta * penalty), cones)
    prob.solve(solver=cp.CLARABEL)
    if prob.status != cp.OPTIMAL:
        raise RuntimeError(f"Clarabel status {prob.status}")
    return prob.value, U.value, V.value
