"""Implicit differentiation of the regularized programs' solutions, from their KKT conditions.

The solvers iterate in a ``lax.while_loop``, which reverse mode cannot differentiate; and it
should not: the derivative of a solution is a property of the solution, not of the iterations.
At a solution of the regularized program (DESIGN.md, "Implicit differentiation")

    min ℓ(f, y) + β Σ_b ‖w_b‖  s.t.  S_j ⊙ X w_b ≥ 0,   f = Σ_j D_j ⊙ X (u_j - v_j),

with the blocks ``w_b`` running over ``u_j`` (``σ_b = +1``) and ``v_j`` (``σ_b = -1``), the
*active set* is fixed: the active blocks ``‖w_b‖ > 0`` and, inside them, the tight cone rows
(multiplier ``ν_bi > 0``, so ``S_ji x_iᵀ w_b = 0``). On it the KKT conditions are the gradient
``F(z, θ) = ∇_z L_T(z; θ) = 0`` of the restricted Lagrangian

    L_T(W, ν; X, y, β) = ℓ(f, y) + β Σ_{b active} ‖w_b‖ - Σ_{(b,i) tight} ν_bi S_ji x_iᵀ w_b

in ``z = (active blocks, tight multipliers)`` and the data ``θ = (X, y, β)``; the implicit function
theorem gives ``∂z/∂θ = -(∂_z F)⁻¹ ∂_θ F``. Reverse mode solves the adjoint system
``(∂_z F)ᵀ λ = z̄`` (``∂_z F`` is the symmetric KKT matrix ``[[H, -Aᵀ], [-A, 0]]``, ``H`` the
Hessian of ``L_T`` in the blocks, ``A`` the tight rows) and returns ``θ̄ = -∇_θ ⟨F(z, θ), λ⟩``.
The system is solved matrix-free: the tight rows are eliminated block by block (each block's
projector onto the null space of its tight rows, from a ``d × d`` eigendecomposition) and the
projected Hessian is inverted by preconditioned conjugate gradients (block-Jacobi preconditioner,
``d × d`` per block). Nothing of size ``n × n`` or ``(pd)²`` is formed.

Convention where the derivative does not exist (the generalized Jacobian with the active set
fixed, as cvxpylayers and diffcp do): a block at zero stays at zero (derivative 0), a cone row
with zero multiplier stays inactive, and the multipliers of rows outside the active blocks (not
unique) get no derivative. :func:`convexrelu.active_set` reports the set used and whether the solution is
*degenerate* (a block or row whose primal and dual slacks are both near zero, or dependent
tight rows), where the derivative is one element of the generalized Jacobian only.

Forward mode (``jax.jvp``) is not defined (the rule is a ``jax.custom_vjp``); a solution whose
status is not optimal refuses to be differentiated (``eqx.error_if``, under ``jit`` too).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._programs import (
    cone_values,
    convex_fit,
    convex_loss,
    dual_blocks,
    loss_of_program,
    negative_loss_gradient,
)
from ._solution import RESULTS, ConvexSolution

SIGNS = (1.0, -1.0)
"""``σ_b``: the sign of the ``u`` blocks (index 0) and the ``v`` blocks (index 1) in the fit."""

AMBIGUOUS = 1e-3
"""A block or row whose normalized primal and dual slacks are both below this is degenerate."""


class ActiveSet(eqx.Module):
    """The active set of a solution, fixed by the implicit derivative.

    Attributes:
        blocks: ``(2, p)`` active blocks (index 0: ``u_j``, index 1: ``v_j``).
        rows: ``(2, p, n)`` tight cone rows of the active blocks.
        degenerate: scalar bool: some block or row is neither clearly active nor clearly
            inactive, or some block's tight rows are linearly dependent; the derivative is then
            the one with this active set fixed, an element of the generalized Jacobian.
    """

    blocks: Bool[Array, "2 p"]
    rows: Bool[Array, "2 p n"]
    degenerate: Bool[Array, ""]


def _safe_norm(W: Array) -> Array:
    # ‖w‖ over the last axis with a zero-safe gradient (blocks at zero are differentiated here)
    sq = jnp.sum(W * W, axis=-1)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _safe_div(a: Array, b: Array) -> Array:
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


def _identify(X, y, D, W, r, nu, beta):
    """The active set by strict complementarity: a block is active when its normalized norm
    ``‖w_b‖ / w_s`` exceeds its normalized dual slack ``1 - ‖g_b‖/β``, with the scale
    ``w_s = max(max_b ‖w_b‖, max |y| / max_i ‖x_i‖)``; a row of an active block is tight when its
    normalized multiplier ``ν_bi ‖x_i‖/β`` exceeds its normalized slack
    ``S_ji x_iᵀ w_b / (‖x_i‖ ‖w_b‖)``. Returns ``(blocks, rows, ambiguous)``."""
    wn = _safe_norm(W)
    xn = _safe_norm(X)
    wrel = _safe_div(wn, jnp.maximum(jnp.max(wn), _safe_div(jnp.max(jnp.abs(y)), jnp.max(xn))))
    slack = jnp.clip(1.0 - _safe_norm(dual_blocks(X, D, r, nu)) / beta, 0.0, 1.0)
    blocks = (wrel > slack) & (wn > 0)
    c = cone_values(X, D, W[0], W[1])
    crel = jnp.clip(_safe_div(c, xn * wn[..., None]), 0.0, 1.0)
    nurel = jnp.maximum(nu, 0.0) * xn / beta
    live = blocks[..., None] & (xn > 0)
    rows = live & (nurel > crel)
    ambiguous = jnp.any(jnp.maximum(wrel, slack) < AMBIGUOUS) | jnp.any(
        live & (jnp.maximum(nurel, crel) < AMBIGUOUS)
    )
    return blocks, rows, ambiguous


class KKTSystem(eqx.Module):
    """The reduced KKT matrix of a regularized solution, as the arrays its matrix-free products use.

    ``Q`` projects each block onto the span of its tight rows (``G_b G_b⁺``, ``G_b = A_bᵀA_b``),
    ``Gpinv`` is ``G_b⁺`` and ``Minv`` the block-Jacobi preconditioner; all ``(2, p, d, d)``.
    """

    X: Array
    D: Array
    h: Array  # ∇²_f ℓ (diagonal), (n,)
    unit: Array  # w_b / ‖w_b‖, (2, p, d)
    inv_norm: Array  # 1/‖w_b‖ on active blocks, 0 elsewhere, (2, p)
    beta: Array
    blocks: Array
    rows: Array
    Q: Array
    Gpinv: Array
    Minv: Array


def _loss_curvature(f, y, loss: str):
    """The diagonal of ``∇²_f ℓ``: 1 (squared) or ``σ(y f) σ(-y f) y²`` (logistic)."""
    if loss == "squared":
        return jnp.ones_like(f)
    s = jax.nn.sigmoid(-y * f)
    return s * (1.0 - s) * y * y


def _pseudo_inverse(G):
    """``(G G⁺, G⁺, rank)`` of symmetric PSD ``(..., d, d)`` matrices (eigenvalues below
    ``10⁻² √eps`` of the largest, or all when ``G = 0``, count as zero)."""
    evals, vecs = jnp.linalg.eigh(G)
    top = jnp.max(evals, axis=-1, keepdims=True)
    keep = evals > jnp.maximum(top, 0.0) * (1e-2 * jnp.finfo(G.dtype).eps ** 0.5)
    keep = keep & (top > 0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, evals, 1.0), 0.0)
    Q = jnp.einsum("...ik,...k,...jk->...ij", vecs, keep.astype(G.dtype), vecs)
    Gpinv = jnp.einsum("...ik,...k,...jk->...ij", vecs, inv, vecs)
    return Q, Gpinv, jnp.sum(keep, axis=-1)


def kkt_system(X, y, D, W, nu, r, beta, loss: str) -> tuple[KKTSystem, ActiveSet]:
    """The :class:`KKTSystem` and :class:`ActiveSet` of the solution ``(W = [U, V], ν, r)``."""
    dt = X.dtype
    blocks, rows, ambiguous = _identify(X, y, D, W, r, nu, beta)
    Df = D.astype(dt)
    wn = _safe_norm(W)
    inv_norm = jnp.where(blocks, _safe_div(jnp.ones_like(wn), wn), 0.0)
    unit = W * inv_norm[..., None]
    h = _loss_curvature(convex_fit(X, D, W[0], W[1]), y, loss)
    G = jnp.einsum("bpn,nd,ne->bpde", rows.astype(dt), X, X)
    Q, Gpinv, rank = _pseudo_inverse(G)
    dependent = jnp.any(jnp.sum(rows, axis=-1) > rank)
    eye = jnp.eye(X.shape[1], dtype=dt)
    C = jnp.einsum("pn,nd,ne->pde", Df * h, X, X)
    tangential = eye - unit[..., :, None] * unit[..., None, :]
    K = C[None] + beta * inv_norm[..., None, None] * tangential
    P = eye - Q
    M = P @ K @ P + Q
    ridge = jnp.finfo(dt).eps * jnp.trace(M, axis1=-2, axis2=-1)[..., None, None] + jnp.finfo(dt).tiny
    M = jnp.where(blocks[..., None, None], M + ridge * eye, eye)
    system = KKTSystem(
        X=X, D=Df, h=h, unit=unit, inv_norm=inv_norm, beta=beta, blocks=blocks, rows=rows, Q=Q,
        Gpinv=Gpinv, Minv=jnp.linalg.inv(M),
    )
    return system, ActiveSet(blocks=blocks, rows=rows, degenerate=ambiguous | dependent)


def _apply(M, v):
    """Block-wise ``M_b v_b`` for ``(2, p, d, d)`` and ``(2, p, d)``."""
    return jnp.einsum("bpij,bpj->bpi", M, v)


def _project(sys: KKTSystem, v):
    """Onto the tangent space: zero on inactive blocks, orthogonal to the tight rows."""
    return jnp.where(sys.blocks[..., None], v - _apply(sys.Q, v), 0.0)


def _hessian(sys: KKTSystem, v):
    """``H v``: ``σ_b Xᵀ(D_j ⊙ ∇²ℓ δf) + β (I - ŵŵᵀ) v_b / ‖w_b‖`` on the active blocks."""
    v = jnp.where(sys.blocks[..., None], v, 0.0)
    df = jnp.sum(sys.D.T * (sys.X @ (v[0] - v[1]).T), axis=1)
    q = (sys.D * (sys.h * df)) @ sys.X
    tangential = v - sys.unit * jnp.sum(sys.unit * v, axis=-1, keepdims=True)
    out = jnp.stack([SIGNS[0] * q, SIGNS[1] * q]) + sys.beta * sys.inv_norm[..., None] * tangential
    return jnp.where(sys.blocks[..., None], out, 0.0)


def _signed_rows(sys: KKTSystem):
    return jnp.where(sys.rows, 2.0 * sys.D - 1.0, 0.0)


def _rows_pinv(sys: KKTSystem, c):
    """``A⁺ c = G⁺ Aᵀ c`` for a ``(2, p, n)`` row vector ``c``."""
    return _apply(sys.Gpinv, (_signed_rows(sys) * c) @ sys.X)


def _rows_pinv_transpose(sys: KKTSystem, v):
    """``(Aᵀ)⁺ v = A G⁺ v`` for a ``(2, p, d)`` block vector ``v``."""
    return _signed_rows(sys) * (_apply(sys.Gpinv, v) @ sys.X.T)


def _cg_options(sys: KKTSystem):
    dt = sys.X.dtype
    tol = 1e-11 if jnp.finfo(dt).bits >= 64 else 1e-6
    return tol, int(min(4 * sys.unit.size + 20, 2000))


def adjoint_solve(sys: KKTSystem, gW, gnu):
    """Solve ``[[H, -Aᵀ], [-A, 0]] (λ_W, λ_ν) = (gW, gν)`` on the active set.

    ``λ_W = P t - A⁺ gν`` with ``(P H P) t = P (gW + H A⁺ gν)`` by preconditioned CG, then
    ``λ_ν = (Aᵀ)⁺ (H λ_W - gW)``. Inactive components are zero.
    """
    gnu = jnp.where(sys.rows, gnu, 0.0)
    a = _rows_pinv(sys, gnu)
    gW = jnp.where(sys.blocks[..., None], gW, 0.0)
    rhs = _project(sys, gW + _hessian(sys, a))
    tol, maxiter = _cg_options(sys)
    t, _ = jax.scipy.sparse.linalg.cg(
        lambda v: _project(sys, _hessian(sys, _project(sys, v))),
        rhs,
        tol=tol,
        atol=0.0,
        maxiter=maxiter,
        M=lambda v: _project(sys, _apply(sys.Minv, v)),
    )
    lam_W = _project(sys, t) - a
    lam_nu = _rows_pinv_transpose(sys, _hessian(sys, lam_W) - gW)
    return lam_W, lam_nu


def restricted_lagrangian(W, nu, X, y, beta, D, active: ActiveSet, loss: str):
    """``L_T(W, ν; X, y, β)``: the Lagrangian with the active set fixed (module docstring)."""
    Wa = jnp.where(active.blocks[..., None], W, 0.0)
    f = convex_fit(X, D, Wa[0], Wa[1])
    pen = jnp.sum(jnp.where(active.blocks, _safe_norm(Wa), 0.0))
    cones = jnp.sum(jnp.where(active.rows, nu, 0.0) * cone_values(X, D, Wa[0], Wa[1]))
    return convex_loss(f, y, loss) + beta * pen - cones


def stationary_multipliers(sys: KKTSystem, active: ActiveSet, W, X, y, beta, D, loss: str):
    """The tight rows' multipliers that make the active blocks stationary, in least squares:
    ``ν = (Aᵀ)⁺ ∇_W (ℓ + β Σ ‖w_b‖)`` (a first-order solver's own ``ν`` is less accurate than its
    blocks, and ``⟨F, λ⟩`` uses them)."""
    zero = jnp.zeros(active.rows.shape, W.dtype)
    grad = jax.grad(restricted_lagrangian)(W, zero, X, y, beta, D, active, loss)
    return _rows_pinv_transpose(sys, grad)


def _dual(W, X, y, D, loss: str):
    """The solution's dual ``r = -∇_f ℓ`` as a function of the blocks and data."""
    return negative_loss_gradient(convex_fit(X, D, W[0], W[1]), y, loss)


REFUSAL = (
    "cannot differentiate a convex solution whose status is not optimal (max_iters, infeasible or "
    "numerical_error): its KKT conditions do not hold; solve to optimality (raise max_iters)"
)


def _backward(program: str, res, cts):
    """The custom VJP rule: cotangents of ``(U, V, value, dual, cone_dual)`` to ``(X, y, β)``."""
    X, y, beta, D, U, V, dual, nu, status = res
    gU, gV, gval, gdual, gnu = cts
    loss = loss_of_program(program)
    W = jnp.stack([U, V])
    sys, active = kkt_system(X, y, D, W, nu, dual, beta, loss)
    nu = stationary_multipliers(sys, active, W, X, y, beta, D, loss)
    _, dual_vjp = jax.vjp(lambda W_, X_, y_: _dual(W_, X_, y_, D, loss), W, X, y)
    gW_dual, gX, gy = dual_vjp(gdual)
    lam_W, lam_nu = adjoint_solve(sys, jnp.stack([gU, gV]) + gW_dual, gnu)
    # the value by the envelope theorem, ∇_θ L_T at the solution: what the chain rule through z
    # gives in exact arithmetic, without amplifying the solution's stationarity error
    eX, ey, eb = jax.grad(restricted_lagrangian, argnums=(2, 3, 4))(W, nu, X, y, beta, D, active, loss)

    def pairing(X_, y_, b_):  # ⟨F(z, θ), λ⟩ = d/dε L_T(z + ελ; θ)
        return jax.jvp(
            lambda W_, nu_: restricted_lagrangian(W_, nu_, X_, y_, b_, D, active, loss), (W, nu), (lam_W, lam_nu)
        )[1]

    iX, iy, ib = jax.grad(pairing, argnums=(0, 1, 2))(X, y, beta)
    grads = (gX + gval * eX - iX, gy + gval * ey - iy, gval * eb - ib)
    optimal = status == RESULTS.optimal
    grads = eqx.error_if(grads, ~optimal, REFUSAL)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in grads]))
    grads = eqx.error_if(grads, optimal & ~finite, "implicit differentiation of the convex solution gave non-finite values")
    return (*grads, None, None, None, None, None, None, None)


def _forward(X, y, beta, D, U, V, value, dual, nu, status):
    return (U, V, value, dual, nu), (X, y, beta, D, U, V, dual, nu, status)


def _make_rule(program: str):
    @jax.custom_vjp
    def attach(X, y, beta, D, U, V, value, dual, nu, status):
        return U, V, value, dual, nu

    attach.defvjp(_forward, lambda res, cts: _backward(program, res, cts))
    return attach


_RULES = {p: _make_rule(p) for p in ("regularized-squared", "regularized-logistic")}


def attach_gradients(sol: ConvexSolution, X: Float[Array, "n d"], y: Float[Array, " n"], beta) -> ConvexSolution:
    """``sol`` with its ``U, V, value, dual, cone_dual`` differentiable in ``X, y, β``.

    The values are unchanged; their reverse-mode derivatives are the implicit ones of the module
    docstring. ``sol`` must have been computed from ``(X, y, β)`` held constant
    (``jax.lax.stop_gradient``). Max-margin solutions are returned unchanged.
    """
    if sol.program not in _RULES:
        return sol
    dt = X.dtype
    outs = _RULES[sol.program](
        X, y.astype(dt), jnp.asarray(beta).astype(dt), sol.patterns, sol.U, sol.V, sol.value, sol.dual,
        sol.cone_dual, sol.status,
    )
    return eqx.tree_at(lambda s: (s.U, s.V, s.value, s.dual, s.cone_dual), sol, outs)


def differentiable_solve(run: Callable[..., ConvexSolution], X, y, D, beta, program: str, **options) -> ConvexSolution:
    """``run(X, y, D, beta, program, **options)`` on the data held constant, with the implicit
    derivatives of :func:`attach_gradients` attached: the solvers' entry points call this so
    that ``jax.grad``/``jax.vjp`` reach ``X``, ``y`` and ``β`` without entering the solver loop."""
    sg = jax.lax.stop_gradient
    sol = run(sg(X), sg(y), D, sg(beta), program, **options)
    return attach_gradients(sol, X, y, beta)


def active_set(sol: ConvexSolution, X: Float[Array, "n d"], y: Float[Array, " n"]) -> ActiveSet:
    """The active set that the implicit derivative of a regularized solution fixes, with the
    ``degenerate`` flag (see :class:`convexrelu.ActiveSet`).

    Raises:
        ValueError: for a max-margin solution.
    """
    loss = loss_of_program(sol.program)
    dt = X.dtype
    W = jnp.stack([sol.U, sol.V]).astype(dt)
    _, active = kkt_system(
        X, jnp.asarray(y).astype(dt), sol.patterns, W, sol.cone_dual.astype(dt), sol.dual.astype(dt),
        sol.beta.astype(dt), loss,
    )
    return active
