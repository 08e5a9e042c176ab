"""Implicit differentiation of the convex programs' solutions, from their KKT conditions.

The solvers iterate in a ``lax.while_loop``, which reverse mode cannot differentiate; and it
should not: the derivative of a solution is a property of the solution, not of the iterations.
Every program here is, with the blocks ``w_b`` running over ``u_j`` (``σ_b = +1``) and ``v_j``
(``σ_b = -1``) and the fit ``f = Σ_j D_j ⊙ X (u_j - v_j)`` (DESIGN.md, "Implicit differentiation"),

    min  φ(W; X, y, β)   s.t.   y ⊙ f ≥ 1 (max-margin only),   S_j ⊙ X w_b ≥ 0 (cones),

with ``φ = ℓ(f, y) + β Σ_b ‖w_b‖`` (regularized, and gated: only the ``u`` blocks, no cones) or
``φ = Σ_b ‖w_b‖`` (max-margin). At a solution the *active set* is fixed: the active blocks
``‖w_b‖ > 0``, the tight margins (multiplier ``μ_i > 0``, so ``y_i f_i = 1``) and, inside the
active blocks, the tight cone rows (``ν_bi > 0``, so ``S_ji x_iᵀ w_b = 0``). On it the KKT
conditions are the gradient ``F(z, θ) = ∇_z L_T(z; θ) = 0`` of the restricted Lagrangian

    L_T(W, μ, ν; X, y, β) = φ(W; X, y, β) - Σ_{i tight} μ_i (y_i f_i - 1) - Σ_{(b,i) tight} ν_bi S_ji x_iᵀ w_b

in ``z = (active blocks, tight margins' μ, tight rows' ν)`` and the data ``θ = (X, y, β)``; the
implicit function theorem gives ``dz = -(∂_z F)⁻¹ ∂_θF dθ``. That is the whole rule: a
``jax.custom_jvp`` whose tangent solves the symmetric KKT system

    K = [[H, -Bᵀ, -Aᵀ], [-B, 0, 0], [-A, 0, 0]]

(``H`` the Hessian of ``L_T`` in the blocks, ``B`` the tight margin rows ``σ_b y_i D_ji x_i``, ``A``
the tight cone rows) inside ``jax.lax.custom_linear_solve``. The solve is transposable (``K`` is
symmetric), so ``jax.jvp`` uses it forwards and ``jax.grad``/``jax.vjp`` get the adjoint from
JAX's linearize-and-transpose: one rule, one linear solve per derivative, in either mode. The
value's derivative is the envelope theorem, ``d value = ⟨∇_θ L_T, dθ⟩`` (what the chain rule
through ``z`` gives in exact arithmetic, without amplifying the solution's stationarity error),
so :func:`convexrelu.value_gradient` is a consequence of the same rule.

The solve is matrix-free (nothing of size ``(pd)²`` is formed). The cone rows are eliminated
block by block (each block's projector onto the null space of its tight rows, from a ``d × d``
eigendecomposition); the margin rows, which couple the blocks, through their ``n × n`` Gram
``B P Bᵀ`` (max-margin only, one ``n × n`` eigendecomposition); the rest by preconditioned
conjugate gradients on the projected Hessian ``Π H Π`` (block-Jacobi preconditioner, ``d × d``
per block). One product with ``H`` costs two passes over the data, ``O(npd)``, like one product
of the solver's own normal equations; the setup is ``O(p(n d² + d³))`` (plus ``O(pn²d + n³)``
for the margins). A backward pass costs one CG solve (its iteration count is at most the
dimension of the active set's tangent space, in practice tens), not a new solve of the program.

Convention where the derivative does not exist (the generalized Jacobian with the active set
fixed, as cvxpylayers and diffcp do): a block at zero stays at zero (derivative 0), a margin or
cone row with zero multiplier stays inactive, and the multipliers of inactive constraints get no
derivative. :func:`convexrelu.active_set` reports the set used and whether the solution is
*degenerate* (a block, margin or row whose primal and dual slacks are both near zero, dependent
tight rows or margins, or more active blocks than equations pin down), where the derivative is
one element of the generalized Jacobian only. A solution whose status is not optimal refuses to
be differentiated (``eqx.error_if``, under ``jit`` too). Max-margin labels are ±1, not real
numbers, so max-margin solutions have no derivative in ``y`` (nor ``β``): only in ``X``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._programs import cone_values, convex_fit, convex_loss, dual_blocks, negative_loss_gradient
from ._solution import RESULTS, ConvexSolution

SIGNS = (1.0, -1.0)
"""``σ_b``: the sign of the ``u`` blocks (index 0) and the ``v`` blocks (index 1) in the fit."""

AMBIGUOUS = 1e-3
"""A block, margin or row whose normalized primal and dual slacks are both below this is degenerate."""


class Kind(NamedTuple):
    """What a program's KKT system has: its loss (``None``: the max-margin objective ``Σ‖w_b‖``),
    margin constraints, cone constraints, and block groups (2: ``u`` and ``v``; 1: gated ``w``)."""

    loss: str | None
    margins: bool
    cones: bool
    groups: int


KINDS = {
    "max-margin": Kind(None, True, True, 2),
    "regularized-squared": Kind("squared", False, True, 2),
    "regularized-logistic": Kind("logistic", False, True, 2),
    "gated-squared": Kind("squared", False, False, 1),
    "gated-logistic": Kind("logistic", False, False, 1),
}


class ActiveSet(eqx.Module):
    """The active set of a solution, fixed by the implicit derivative.

    Attributes:
        blocks: ``(2, p)`` active blocks (index 0: ``u_j``, index 1: ``v_j``; gated: ``w_j``, none).
        rows: ``(2, p, n)`` tight cone rows of the active blocks.
        margins: ``(n,)`` tight margin constraints ``y_i f_i = 1`` (max-margin; none otherwise).
        degenerate: scalar bool: some block, margin or row is neither clearly active nor clearly
            inactive, some tight rows or margins are linearly dependent, or there are more active
            blocks than equations (samples, or tight margins) to pin them down; the derivative is
            then the one with this active set fixed, an element of the generalized Jacobian.
    """

    blocks: Bool[Array, "2 p"]
    rows: Bool[Array, "2 p n"]
    margins: Bool[Array, " n"]
    degenerate: Bool[Array, ""]


def _safe_norm(W: Array) -> Array:
    # ‖w‖ over the last axis with a zero-safe gradient (blocks at zero are differentiated here)
    sq = jnp.sum(W * W, axis=-1)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _safe_div(a: Array, b: Array) -> Array:
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


def _weight(beta, kind: Kind):
    """The penalty's weight: ``β``, or 1 for the max-margin objective."""
    return jnp.ones_like(beta) if kind.loss is None else beta


def _identify(X, y, D, W, dual, nu, beta, kind: Kind):
    """The active set by strict complementarity: a block is active when its normalized norm
    ``‖w_b‖ / w_s`` exceeds its normalized dual slack ``1 - ‖g_b‖/β`` (``β = 1`` for max-margin),
    with the scale ``w_s = max(max_b ‖w_b‖, max |y| / max_i ‖x_i‖)``; a row of an active block is
    tight when its normalized multiplier ``ν_bi ‖x_i‖/β`` exceeds its normalized slack
    ``S_ji x_iᵀ w_b / (‖x_i‖ ‖w_b‖)``; a margin when ``μ_i / max μ`` exceeds ``y_i f_i - 1``.
    Returns ``(blocks, rows, margins, ambiguous)``."""
    weight = _weight(beta, kind)
    nu = nu if kind.cones else jnp.zeros_like(nu)
    wn = _safe_norm(W)
    xn = _safe_norm(X)
    wrel = _safe_div(wn, jnp.maximum(jnp.max(wn), _safe_div(jnp.max(jnp.abs(y)), jnp.max(xn))))
    a = dual if kind.loss is not None else y * dual
    slack = jnp.clip(1.0 - _safe_norm(dual_blocks(X, D, a, nu)) / weight, 0.0, 1.0)
    blocks = (wrel > slack) & (wn > 0) & (jnp.arange(2)[:, None] < kind.groups)
    ambiguous = jnp.any((jnp.maximum(wrel, slack) < AMBIGUOUS) & (jnp.arange(2)[:, None] < kind.groups))
    rows = jnp.zeros(nu.shape, bool)
    if kind.cones:
        c = cone_values(X, D, W[0], W[1])
        crel = jnp.clip(_safe_div(c, xn * wn[..., None]), 0.0, 1.0)
        nurel = jnp.maximum(nu, 0.0) * xn / weight
        live = blocks[..., None] & (xn > 0)
        rows = live & (nurel > crel)
        ambiguous = ambiguous | jnp.any(live & (jnp.maximum(nurel, crel) < AMBIGUOUS))
    margins = jnp.zeros(y.shape, bool)
    if kind.margins:
        mu = jnp.maximum(dual, 0.0)
        murel = _safe_div(mu, jnp.max(mu))
        mslack = jnp.clip(y * convex_fit(X, D, W[0], W[1]) - 1.0, 0.0, 1.0)
        margins = murel > mslack
        ambiguous = ambiguous | jnp.any(jnp.maximum(murel, mslack) < AMBIGUOUS)
    return blocks, rows, margins, ambiguous


class KKTSystem(eqx.Module):
    """The KKT matrix ``K`` of a solution on its active set, as the arrays its matrix-free products use.

    ``Q`` projects each block onto the span of its tight rows (``G_b G_b⁺``, ``G_b = A_bᵀA_b``),
    ``Gpinv`` is ``G_b⁺`` and ``Minv`` the block-Jacobi preconditioner, all ``(2, p, d, d)``;
    ``Mpinv`` is the pseudo-inverse of the tight margins' Gram ``B P Bᵀ`` (``(n, n)``; max-margin
    only, else ``None``).
    """

    X: Array
    y: Array
    D: Array
    h: Array  # ∇²_f ℓ (diagonal), (n,); 0 for max-margin
    unit: Array  # w_b / ‖w_b‖, (2, p, d)
    inv_norm: Array  # 1/‖w_b‖ on active blocks, 0 elsewhere, (2, p)
    weight: Array  # β, or 1 (max-margin)
    blocks: Array
    rows: Array
    margins: Array
    Q: Array
    Gpinv: Array
    Minv: Array
    Mpinv: Array | None


def _loss_curvature(f, y, loss: str | None):
    """The diagonal of ``∇²_f ℓ``: 1 (squared), ``σ(y f) σ(-y f) y²`` (logistic), 0 (max-margin)."""
    if loss is None:
        return jnp.zeros_like(f)
    if loss == "squared":
        return jnp.ones_like(f)
    s = jax.nn.sigmoid(-y * f)
    return s * (1.0 - s) * y * y


def _pseudo_inverse(G):
    """``(G G⁺, G⁺, rank, eigenvectors kept)`` of symmetric PSD ``(..., k, k)`` matrices
    (eigenvalues below ``10⁻² √eps`` of the largest, or all when ``G = 0``, count as zero)."""
    evals, vecs = jnp.linalg.eigh(G)
    top = jnp.max(evals, axis=-1, keepdims=True)
    keep = evals > jnp.maximum(top, 0.0) * (1e-2 * jnp.finfo(G.dtype).eps ** 0.5)
    keep = keep & (top > 0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, evals, 1.0), 0.0)
    Q = jnp.einsum("...ik,...k,...jk->...ij", vecs, keep.astype(G.dtype), vecs)
    Gpinv = jnp.einsum("...ik,...k,...jk->...ij", vecs, inv, vecs)
    return Q, Gpinv, jnp.sum(keep, axis=-1), vecs * keep[..., None, :].astype(G.dtype)


def _margin_gram(X, y, Df, blocks, margins, basis):
    """``B P Bᵀ`` of the tight margins: ``y_i y_k Σ_{b active} D_bi D_bk x_iᵀ (I - Q_b) x_k``, with
    ``Q_b = E_b E_bᵀ`` (``basis``), formed as ``(XXᵀ) ⊙ (Σ_b D_b D_bᵀ) - Σ_b (D_b ⊙ XE_b)(D_b ⊙ XE_b)ᵀ``."""
    Db = jnp.where(blocks[..., None], Df[None], 0.0)  # (2, p, n)
    counts = jnp.einsum("bpn,bpm->nm", Db, Db)
    XE = Db[..., None] * jnp.einsum("nd,bpdk->bpnk", X, basis)
    G = (X @ X.T) * counts - jnp.einsum("bpnk,bpmk->nm", XE, XE)
    m = jnp.where(margins, y, 0.0)
    return m[:, None] * G * m[None, :]


def kkt_system(X, y, D, W, dual, nu, beta, kind: Kind) -> tuple[KKTSystem, ActiveSet]:
    """The :class:`KKTSystem` and :class:`ActiveSet` of the solution ``(W = [U, V], dual, ν)``."""
    dt = X.dtype
    blocks, rows, margins, ambiguous = _identify(X, y, D, W, dual, nu, beta, kind)
    Df = D.astype(dt)
    weight = _weight(beta, kind)
    wn = _safe_norm(W)
    inv_norm = jnp.where(blocks, _safe_div(jnp.ones_like(wn), wn), 0.0)
    unit = W * inv_norm[..., None]
    h = _loss_curvature(convex_fit(X, D, W[0], W[1]), y, kind.loss)
    Q, Gpinv, rank, basis = _pseudo_inverse(jnp.einsum("bpn,nd,ne->bpde", rows.astype(dt), X, X))
    dependent = jnp.any(jnp.sum(rows, axis=-1) > rank)
    equations = jnp.sum(h > 0)
    Mpinv = None
    if kind.margins:
        _, Mpinv, mrank, _ = _pseudo_inverse(_margin_gram(X, y, Df, blocks, margins, basis))
        dependent = dependent | (jnp.sum(margins) > mrank)
        equations = jnp.sum(margins)
    underdetermined = jnp.sum(blocks) > equations
    eye = jnp.eye(X.shape[1], dtype=dt)
    C = jnp.einsum("pn,nd,ne->pde", Df * h, X, X)
    outer = unit[..., :, None] * unit[..., None, :]
    radial = 1.0 if kind.loss is None else 0.0  # max-margin: the margins, not H, pin ‖w_b‖
    K = C[None] + weight * inv_norm[..., None, None] * (eye - (1.0 - radial) * outer)
    P = eye - Q
    M = P @ K @ P + Q
    ridge = jnp.finfo(dt).eps * jnp.trace(M, axis1=-2, axis2=-1)[..., None, None] + jnp.finfo(dt).tiny
    M = jnp.where(blocks[..., None, None], M + ridge * eye, eye)
    system = KKTSystem(
        X=X, y=y, D=Df, h=h, unit=unit, inv_norm=inv_norm, weight=weight, blocks=blocks, rows=rows,
        margins=margins, Q=Q, Gpinv=Gpinv, Minv=jnp.linalg.inv(M), Mpinv=Mpinv,
    )
    degenerate = ambiguous | dependent | underdetermined
    return system, ActiveSet(blocks=blocks, rows=rows, margins=margins, degenerate=degenerate)


# ----------------------------------------------------------------------------------------------
# the operator's pieces: H, the cone rows A, the margin rows B, the projections
# ----------------------------------------------------------------------------------------------


def _apply(M, v):
    """Block-wise ``M_b v_b`` for ``(2, p, d, d)`` and ``(2, p, d)``."""
    return jnp.einsum("bpij,bpj->bpi", M, v)


def _active(sys: KKTSystem, v):
    return jnp.where(sys.blocks[..., None], v, 0.0)


def _hessian(sys: KKTSystem, v):
    """``H v``: ``σ_b Xᵀ(D_j ⊙ ∇²ℓ δf) + w (I - ŵŵᵀ) v_b / ‖w_b‖`` on the active blocks."""
    v = _active(sys, v)
    df = jnp.sum(sys.D.T * (sys.X @ (v[0] - v[1]).T), axis=1)
    q = (sys.D * (sys.h * df)) @ sys.X
    tangential = v - sys.unit * jnp.sum(sys.unit * v, axis=-1, keepdims=True)
    return _active(sys, jnp.stack([SIGNS[0] * q, SIGNS[1] * q]) + sys.weight * sys.inv_norm[..., None] * tangential)


def _signed_rows(sys: KKTSystem):
    return jnp.where(sys.rows, 2.0 * sys.D - 1.0, 0.0)


def _rows(sys: KKTSystem, v):
    """``A v``, ``(2, p, n)``: the tight rows ``S_ji x_iᵀ v_b``."""
    return _signed_rows(sys) * (v @ sys.X.T)


def _rows_transpose(sys: KKTSystem, c):
    """``Aᵀ c``, ``(2, p, d)``."""
    return (_signed_rows(sys) * c) @ sys.X


def _rows_pinv(sys: KKTSystem, c):
    """``A⁺ c = G⁺ Aᵀ c``: the least-norm blocks with ``A v = c``."""
    return _apply(sys.Gpinv, _rows_transpose(sys, c))


def _rows_pinv_transpose(sys: KKTSystem, v):
    """``(Aᵀ)⁺ v = A G⁺ v``: the least-squares multipliers of ``Aᵀ c = v``."""
    return _rows(sys, _apply(sys.Gpinv, v))


def _margin_rows(sys: KKTSystem, v):
    """``B v``, ``(n,)``: ``y_i (Σ_b σ_b D_bi x_iᵀ v_b)`` on the tight margins."""
    v = _active(sys, v)
    return jnp.where(sys.margins, sys.y * convex_fit(sys.X, sys.D, v[0], v[1]), 0.0)


def _margin_rows_transpose(sys: KKTSystem, eta):
    """``Bᵀ η``, ``(2, p, d)``."""
    q = (sys.D * jnp.where(sys.margins, sys.y * eta, 0.0)) @ sys.X
    return _active(sys, jnp.stack([SIGNS[0] * q, SIGNS[1] * q]))


def _cone_project(sys: KKTSystem, v):
    """``P v``: zero on inactive blocks, orthogonal to each block's tight rows."""
    return _active(sys, v - _apply(sys.Q, v))


def _project(sys: KKTSystem, v):
    """``Π v``: onto the tangent space of the active set, ``P v - PBᵀ (BPBᵀ)⁺ BP v``."""
    v = _cone_project(sys, v)
    if sys.Mpinv is None:
        return v
    return v - _cone_project(sys, _margin_rows_transpose(sys, sys.Mpinv @ _margin_rows(sys, v)))


def _multipliers(sys: KKTSystem, rho):
    """The least-squares ``(μ, ν)`` of ``Bᵀμ + Aᵀν = ρ``: ``μ = (BPBᵀ)⁺ BP ρ``, ``ν = (Aᵀ)⁺(ρ - Bᵀμ)``."""
    if sys.Mpinv is None:
        mu = jnp.zeros(sys.margins.shape, rho.dtype)
    else:
        mu = sys.Mpinv @ _margin_rows(sys, _cone_project(sys, rho))
    return mu, _rows_pinv_transpose(sys, rho - _margin_rows_transpose(sys, mu))


def kkt_matvec(sys: KKTSystem, z):
    """``K z`` for ``z = (W, μ, ν)``: the KKT matrix on the active set, the identity elsewhere."""
    W, mu, nu = z
    Wa = _active(sys, W)
    mu_t = jnp.where(sys.margins, mu, 0.0)
    nu_t = jnp.where(sys.rows, nu, 0.0)
    KW = _hessian(sys, Wa) - _margin_rows_transpose(sys, mu_t) - _rows_transpose(sys, nu_t)
    KW = jnp.where(sys.blocks[..., None], KW, W)
    return KW, jnp.where(sys.margins, -_margin_rows(sys, Wa), mu), jnp.where(sys.rows, -_rows(sys, Wa), nu)


def _cg_options(sys: KKTSystem):
    tol = 1e-11 if jnp.finfo(sys.X.dtype).bits >= 64 else 1e-6
    return tol, int(min(4 * sys.unit.size + 20, 2000))


def preconditioned_cg(op: Callable, b, precond: Callable, tol: float, maxiter: int, scale=None):
    """Preconditioned conjugate gradients for ``op(x) = b`` (``op`` and ``precond`` symmetric PSD on
    the space ``b`` lives in), from ``x = 0``, until ``‖r‖ ≤ tol · scale`` (``scale`` defaults to
    ``‖b‖``; a projected right-hand side passes the norm before projecting, so that one that the
    projection reduced to rounding noise stops at once). Returns the iterate of least
    residual and the iteration count: once the residual reaches the floor set by rounding (the
    projections' own accuracy), a further step can blow up, so the loop stops when the residual
    grows a hundredfold past its best."""
    bound = (tol * (jnp.linalg.norm(b) if scale is None else scale)) ** 2

    def step(s):
        x, r, z, p, rz, k, best, best_rr = s
        Ap = op(p)
        alpha = _safe_div(rz, jnp.vdot(p, Ap))
        x, r = x + alpha * p, r - alpha * Ap
        z = precond(r)
        rz_new = jnp.vdot(r, z)
        rr = jnp.vdot(r, r)
        better = rr < best_rr
        best, best_rr = jnp.where(better, x, best), jnp.where(better, rr, best_rr)
        return x, r, z, z + _safe_div(rz_new, rz) * p, rz_new, k + 1, best, best_rr

    def going(s):
        rr = jnp.vdot(s[1], s[1])
        return (s[5] < maxiter) & (rr > bound) & (rr <= 1e4 * s[7])

    z = precond(b)
    x0 = jnp.zeros_like(b)
    init = (x0, b, z, z, jnp.vdot(b, z), jnp.asarray(0, jnp.int32), x0, jnp.vdot(b, b))
    s = jax.lax.while_loop(going, step, init)
    return s[6], s[5]


def kkt_solve(sys: KKTSystem, rhs):
    """Solve ``K (W, μ, ν) = (gW, gμ, gν)``; returns the solution and the CG iteration count.

    ``W = a + Π t``: ``a`` the least-norm blocks with ``A a = -gν``, ``B a = -gμ``; ``t`` from
    ``(Π H Π) t = Π (gW - H a)`` by preconditioned CG; then ``(μ, ν)`` the least-squares
    multipliers of ``Bᵀμ + Aᵀν = H W - gW``. Inactive components are copied from ``rhs``.
    """
    gW, gmu, gnu = rhs
    a = -_rows_pinv(sys, jnp.where(sys.rows, gnu, 0.0))
    if sys.Mpinv is not None:
        eta = sys.Mpinv @ (-jnp.where(sys.margins, gmu, 0.0) - _margin_rows(sys, a))
        a = a + _cone_project(sys, _margin_rows_transpose(sys, eta))
    gWa = _active(sys, gW)
    tol, maxiter = _cg_options(sys)
    r0 = gWa - _hessian(sys, a)
    t, iterations = preconditioned_cg(
        lambda v: _project(sys, _hessian(sys, _project(sys, v))),
        _project(sys, r0),
        lambda v: _project(sys, _apply(sys.Minv, _project(sys, v))),
        tol,
        maxiter,
        scale=jnp.linalg.norm(r0),
    )
    W = _project(sys, t) + a
    mu, nu = _multipliers(sys, _hessian(sys, W) - gWa)
    out = (
        jnp.where(sys.blocks[..., None], W, gW),
        jnp.where(sys.margins, mu, gmu),
        jnp.where(sys.rows, nu, gnu),
    )
    return out, iterations


def _linear_solve(sys: KKTSystem, b):
    """``K⁻¹ b`` as a transposable linear map (``K`` symmetric): ``jax.lax.custom_linear_solve``.

    The right-hand side is raveled into one vector first: differentiating in some inputs only (β
    alone, say) leaves parts of ``b`` constant (zero), and JAX transposes the solve only when all
    of its right-hand side is linear in the tangents."""
    flat, unravel = jax.flatten_util.ravel_pytree(b)
    matvec = lambda v: jax.flatten_util.ravel_pytree(kkt_matvec(sys, unravel(v)))[0]  # noqa: E731
    solve = lambda _, rhs: jax.flatten_util.ravel_pytree(kkt_solve(sys, unravel(rhs))[0])[0]  # noqa: E731
    return unravel(jax.lax.custom_linear_solve(matvec, flat, solve, solve, symmetric=True))


# ----------------------------------------------------------------------------------------------
# the restricted Lagrangian and the custom JVP rule
# ----------------------------------------------------------------------------------------------


def restricted_lagrangian(W, mu, nu, X, y, beta, D, active: ActiveSet, kind: Kind):
    """``L_T(W, μ, ν; X, y, β)``: the Lagrangian with the active set fixed (module docstring)."""
    Wa = jnp.where(active.blocks[..., None], W, 0.0)
    f = convex_fit(X, D, Wa[0], Wa[1])
    pen = jnp.sum(jnp.where(active.blocks, _safe_norm(Wa), 0.0))
    objective = pen if kind.loss is None else convex_loss(f, y, kind.loss) + beta * pen
    margins = jnp.sum(jnp.where(active.margins, mu, 0.0) * (y * f - 1.0))
    cones = jnp.sum(jnp.where(active.rows, nu, 0.0) * cone_values(X, D, Wa[0], Wa[1]))
    return objective - margins - cones


def stationary_multipliers(sys: KKTSystem, active: ActiveSet, W, X, y, beta, D, kind: Kind):
    """The tight constraints' multipliers ``(μ, ν)`` that make the active blocks stationary, in
    least squares: ``Bᵀμ + Aᵀν = ∇_W φ`` (a solver's own multipliers are less accurate than its
    blocks, and ``∂_θ F`` and the envelope use them)."""
    mu0 = jnp.zeros(active.margins.shape, W.dtype)
    nu0 = jnp.zeros(active.rows.shape, W.dtype)
    return _multipliers(sys, jax.grad(restricted_lagrangian)(W, mu0, nu0, X, y, beta, D, active, kind))


REFUSAL = (
    "cannot differentiate a convex solution whose status is not optimal (max_iters, infeasible or "
    "numerical_error): its KKT conditions do not hold; solve to optimality (raise max_iters)"
)


class Primal(NamedTuple):
    """What the rule differentiates: the solution's arrays (held constant; ``W = [U, V]``)."""

    D: Array
    W: Array
    value: Array
    dual: Array
    nu: Array
    status: Array


def _outputs(sol: Primal):
    return sol.W, sol.value, sol.dual, sol.nu


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _attach(program: str, theta, sol: Primal):
    return _outputs(sol)


def _checked_system(program: str, theta, sol: Primal):
    """The KKT system at the solution, refusing (``eqx.error_if``) a non-optimal status or a
    non-finite system; the multipliers made stationary."""
    kind = KINDS[program]
    X, y, beta = theta
    sys, active = kkt_system(X, y, sol.D, sol.W, sol.dual, sol.nu, beta, kind)
    optimal = sol.status == RESULTS.optimal
    sys = eqx.error_if(sys, ~optimal, REFUSAL)
    finite = jnp.all(jnp.isfinite(sys.Minv)) & jnp.all(jnp.isfinite(sys.Gpinv)) & jnp.all(jnp.isfinite(sol.W))
    sys = eqx.error_if(sys, optimal & ~finite, "implicit differentiation of the convex solution met non-finite values")
    mu, nu = stationary_multipliers(sys, active, sol.W, X, y, beta, sol.D, kind)
    return sys, active, mu, nu


@_attach.defjvp
def _attach_jvp(program: str, primals, tangents):
    """``dz = -K⁻¹ ∂_θF dθ`` on the active set; ``d value = ⟨∇_θ L_T, dθ⟩`` (envelope)."""
    theta, sol = primals
    dtheta = tangents[0]
    kind = KINDS[program]
    sys, active, mu, nu = _checked_system(program, theta, sol)
    W, D = sol.W, sol.D

    def lagrangian(z, th):
        return restricted_lagrangian(*z, *th, D, active, kind)

    _, dF = jax.jvp(lambda th: jax.grad(lagrangian)((W, mu, nu), th), (theta,), (dtheta,))
    dW, dmu, dnu = jax.tree.map(jnp.negative, _linear_solve(sys, dF))
    dW = _active(sys, dW)
    dvalue = jax.jvp(lambda th: lagrangian((W, mu, nu), th), (theta,), (dtheta,))[1]
    if kind.loss is None:  # the dual is μ
        ddual = jnp.where(active.margins, dmu, 0.0)
    else:  # the dual is r = -∇_f ℓ(f(W; X), y)
        X, y, _ = theta
        fit = lambda W_, X_, y_: negative_loss_gradient(convex_fit(X_, D, W_[0], W_[1]), y_, kind.loss)  # noqa: E731
        ddual = jax.jvp(fit, (W, X, y), (dW, dtheta[0], dtheta[1]))[1]
    return _outputs(sol), (dW, dvalue, ddual, jnp.where(active.rows, dnu, 0.0))


def attach(program: str, X, y, beta, sol: Primal) -> tuple[Array, Array, Array, Array]:
    """``(W, value, dual, ν)`` of ``sol``, unchanged in value, with the implicit derivatives in
    ``(X, y, β)`` of the module docstring (``sol`` must not depend on them: stop its gradient)."""
    dt = X.dtype
    theta = (X, jnp.asarray(y).astype(dt), jnp.asarray(beta).astype(dt))
    return _attach(program, theta, sol)


def _solution_arrays(sol, dt):
    """``(W (2, p, d), ν (2, p, n), β)`` of a :class:`ConvexSolution` or a gated solution."""
    if sol.program.startswith("gated"):
        W = jnp.stack([sol.W, jnp.zeros_like(sol.W)]).astype(dt)
        return W, jnp.zeros((2, *sol.patterns.shape), dt), sol.beta.astype(dt)
    return jnp.stack([sol.U, sol.V]).astype(dt), sol.cone_dual.astype(dt), sol.beta.astype(dt)


def attach_gradients(sol, X: Float[Array, "n d"], y: Float[Array, " n"], beta):
    """``sol`` with its ``U, V, value, dual, cone_dual`` (a gated solution: ``W, value, dual``)
    differentiable (``jax.grad``, ``jax.vjp``, ``jax.jvp``) in ``X``, ``y`` and ``β`` (max-margin:
    in ``X`` only; its labels are ±1). A gated program is the same rule with one block group and
    no cone rows.

    The values are unchanged; their derivatives are the implicit ones of the module docstring.
    ``sol`` must have been computed from ``(X, y, β)`` held constant (``jax.lax.stop_gradient``).
    """
    dt = X.dtype
    if sol.program == "max-margin":  # labels are discrete: no derivative in y (nor β)
        y, beta = jax.lax.stop_gradient(y), jnp.zeros((), dt)
    W, nu, _ = _solution_arrays(sol, dt)
    primal = Primal(D=sol.patterns, W=W, value=sol.value, dual=sol.dual.astype(dt), nu=nu, status=sol.status)
    W, value, dual, nu = attach(sol.program, X, y, beta, primal)
    if sol.program.startswith("gated"):
        return eqx.tree_at(lambda s: (s.W, s.value, s.dual), sol, (W[0], value, dual))
    return eqx.tree_at(lambda s: (s.U, s.V, s.value, s.dual, s.cone_dual), sol, (W[0], W[1], value, dual, nu))


def differentiable_solve(run: Callable[..., ConvexSolution], X, y, D, beta, program: str, **options) -> ConvexSolution:
    """``run(X, y, D, beta, program, **options)`` on the data held constant, with the implicit
    derivatives of :func:`attach_gradients` attached: the solvers' entry points call this so that
    ``jax.grad``/``jax.vjp``/``jax.jvp`` reach ``X``, ``y`` and ``β`` without entering the solver loop."""
    sg = jax.lax.stop_gradient
    sol = run(sg(X), sg(y), D, sg(beta), program, **options)
    return attach_gradients(sol, X, y, beta)


@jax.custom_jvp
def refuse_derivatives(value, *inputs):
    """``value``; its derivative in ``inputs`` raises: solutions with ``c`` outputs carry no
    implicit derivatives yet, and a zero would be a silent wrong answer."""
    return value


@refuse_derivatives.defjvp
def _refuse_derivatives_jvp(primals, tangents):
    raise NotImplementedError(
        "derivatives of a solution with c outputs are not implemented: differentiate one output's "
        "program (a single target column, or the binary logistic program) instead"
    )


def active_set(sol: ConvexSolution, X: Float[Array, "n d"], y: Float[Array, " n"]) -> ActiveSet:
    """The active set that the implicit derivative of a solution fixes, with the ``degenerate``
    flag (see :class:`convexrelu.ActiveSet`): active blocks, tight cone rows, tight margins.

    Args:
        sol: a solution of any program (``solve_max_margin``, ``solve_regularized``, ``solve_gated``).
        X: the data ``(n, d)`` it was solved for. y: its labels or targets ``(n,)``.

    Returns:
        The :class:`convexrelu.ActiveSet`.
    """
    if sol.program not in KINDS:
        raise ValueError(f"active_set takes a solution of one output; {sol.program!r} has c outputs")
    dt = X.dtype
    W, nu, beta = _solution_arrays(sol, dt)
    _, active = kkt_system(X, jnp.asarray(y).astype(dt), sol.patterns, W, sol.dual.astype(dt), nu, beta, KINDS[sol.program])
    return active
