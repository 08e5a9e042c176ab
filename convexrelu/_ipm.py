"""Primal-dual interior-point method for the max-margin and regularized (squared and logistic
loss) convex programs (one instance; ``jax.vmap`` batches it).

Conic form (CVXOPT ``coneqp`` and, for a smooth convex objective, ``cp``; Vandenberghe 2010, "The
CVXOPT linear and quadratic cone program solvers"; Domahidi, Chu & Boyd, ECOS, 2013). With ``2p``
blocks ``b`` (``u_j`` then ``v_j``), each carrying ``x_b = (t_b, z_b) ∈ R^{1+d}``, solve

    min φ(x) + cᵀx   s.t.   G x + s = h,   s ∈ K = R_+^{n_m} × R_+^{2p n} × Π_b SOC_{d+1},

* max-margin: ``c = (1 on t)``, ``φ = 0``; margin rows ``y ⊙ A z ≥ 1`` (``n_m = n``);
* regularized: ``c = (β on t)``, ``φ(x) = ℓ(A z)`` with the squared loss ``½‖A z - y‖²`` or the
  logistic loss ``Σ log(1 + e^{-y_i (A z)_i})``, no margin rows. Each iteration is a Newton step on
  ``φ`` inside the primal-dual method: ``∇φ = Aᵀ ℓ'(A z)`` enters the residual and the Hessian
  ``∇²φ = Aᵀ diag(ℓ'') A`` the normal equations (``ℓ'' = 1``: the squared loss's ``P = AᵀA``; for the
  logistic loss ``ℓ'' = σ(yf) σ(-yf)``, diagonal in the fit, so the same Woodbury structure holds);
* cone rows ``S_j ⊙ X z_b ≥ 0`` (``S = 2D - 1``) and second-order cones ``t_b ≥ ‖z_b‖``,

where ``A z = Σ_j D_j ⊙ X (u_j - v_j)`` is the fit. Mehrotra predictor-corrector with
Nesterov-Todd scaling ``W`` (``W s = W⁻¹ z = λ``); the step is found from the normal equations

    N Δx = (∇²φ + Gᵀ W² G) Δx = rhs,     N = Bdiag + Aᵀ Ω A,

because the cone rows and the cones act on one block each: ``B_b = W_b² + [0, 0; 0, Xᵀ diag(w_b) X]``
(``w_b`` the cone rows' scaling, ``S² = 1``; all ``2p`` blocks with one GEMM), and the margin rows
(``Ω = diag(z_m / s_m)``) and the loss's Hessian (``Ω = diag(ℓ'')``) couple the blocks only through
the ``n`` samples. Woodbury with the well-conditioned capacitance ``C = I + Ω½ A B⁻¹ Aᵀ Ω½`` (``≥ I``):

    N⁻¹ r = B⁻¹ r - B⁻¹ Aᵀ Ω½ C⁻¹ Ω½ A B⁻¹ r,
    A B⁻¹ Aᵀ = Σ_j diag(D_j) X (M_uj + M_vj) Xᵀ diag(D_j),   M_b = (B_b⁻¹)_zz,

``= F Fᵀ`` with ``F = [D_j ⊙ X R_jᵀ]_j``, ``M_uj + M_vj = R_jᵀ R_j`` (a QR): one GEMM of ``(n, p d)``
by its transpose (accumulated over chunks of patterns to bound memory; on the CPU, once large, a
symmetric rank-k update of the host BLAS, see :func:`_capacitance`), an ``n × n`` Cholesky factor
and batched ``(d+1) × (d+1)`` Cholesky factors: ``O(n² p d + p n d²)`` per iteration, memory
``O(np + pd² + n²)``. Woodbury is not backward stable: when ``B`` is nearly singular in a direction
that only ``AᵀΩA`` fixes (near-duplicate points of opposite labels: margins ``~1/ε``) it loses every
digit. A small program therefore factors ``N`` itself by Cholesky, at ``O((2p(d+1))³)`` per
iteration: from the start up to ``2p(d+1) = _DENSE_FROM_START``, and up to ``_DENSE_MAX`` once
Woodbury's refinement struggles (:func:`_dense`). The Newton equations are refined on their
unreduced form too (:func:`_newton`), since eliminating ``Δz`` multiplies any error by ``W²``.
Iterative refinement on ``N`` (to a thousandth of the stopping tolerance, or the floating-point
floor) recovers the accuracy Woodbury loses when ``B`` is ill-conditioned near
the optimum. The refinement also makes a mixed-precision capacitance safe: on the host path the
Gram starts in single precision and switches to the solve's precision for the rest of the solve
once a refinement struggles; the direction is always refined against ``N`` in the solve's
precision.

On the max-margin program (``φ = 0``) the primal ``(x, s)`` and the dual ``z`` take separate step
lengths. The iterate maps to a candidate of the original problem (multipliers ``μ = z_m``,
``ν = z_c``; :func:`convexrelu._scaling.feasible_candidate`), scored once the iterate's own
relative complementarity is within ``_SCORE_NEAR · tol``, every ``_SCORE_EVERY`` iterations and at
the last. For the max-margin program the dual iterate ``(z_m, z_c)`` of an infeasible problem
diverges along a Farkas ray, accepted by :func:`convexrelu._scaling.accept_farkas` once its
residual passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from . import _programs as prog
from ._programs import loss_of_program
from ._scaling import Candidate, ScaledProblem, SolverResult, accept_farkas, score
from ._solution import RESULTS, RUNNING

MAX_ITERS = 500
# the step goes _STEP of the way to the boundary (CVXOPT, ECOS: 0.99) and the centring is
# σ = (μ_aff / μ)^_SIGMA_POWER, μ_aff the complementarity after the affine step (Mehrotra 1992 uses
# the power 3): on these degenerate programs (the vanishing blocks' cones sit at their apex) a
# margin to the boundary and a small σ take fewer iterations
_STEP = 0.95
_SIGMA_POWER = 12
# max-margin (φ = 0, a linear cone program): the primal residual depends on (x, s) only and the
# dual residual on z only, so each takes its own step (as SDPT3 and LP interior-point codes do)
_STEP_SPLIT = 0.9
_SCORE_NEAR = 100.0
_SCORE_EVERY = 4
_REG = (1e-13, 1e-6)  # relative static regularization of the blocks (float64, float32)
_REFINE_MAX = 10  # at most this many iterative-refinement steps on the normal equations
_REFINE_TOL = 100.0  # ... stopping at a residual of max(_REFINE_TOL · eps, _REFINE_FRACTION · tol) · ‖rhs‖
_REFINE_FRACTION = 1e-3  # (a thousandth of the stopping tolerance: the gap and violation never see it)
_REFINE_RATE = 0.5  # ... or when a step shrinks the residual by less than this factor
_KKT_REFINE_MAX = 3  # refinement steps on the unreduced Newton equations (see _newton)
_DENSE_MAX = 1024  # N (2p(d+1) square) may be factored directly up to this size, by Woodbury above
_DENSE_FROM_START = 160  # ... and is, from the first iteration, up to this size (about Woodbury's cost there)
_DENSE_REG = (1e-15, 1e-7)  # relative (to the mean diagonal) static regularization of the dense N
_CHUNK_ELEMS = 4_000_000  # elements of one (chunk, n, d) slab in the capacitance GEMM
_HOST_GEMM_WORK = 1e9  # n² p d from which the CPU capacitance GEMM runs on the host BLAS


def _jnorm(v):
    """``sqrt(v0² - ‖v1‖²)`` for ``v`` in the interior of the SOC (product form: no cancellation)."""
    a = jnp.linalg.norm(v[..., 1:], axis=-1)
    return jnp.sqrt(jnp.maximum((v[..., 0] - a) * (v[..., 0] + a), 0.0))


def _hyp(a):
    """``[[a0, a1ᵀ], [a1, I + a1 a1ᵀ/(1 + a0)]]`` for ``aᵀJa = 1``: a hyperbolic rotation of the SOC."""
    k = a.shape[-1]
    a0, a1 = a[..., :1], a[..., 1:]
    eye = jnp.eye(k - 1, dtype=a.dtype)
    low = eye + a1[..., :, None] * a1[..., None, :] / (1.0 + a0[..., None])
    top = jnp.concatenate([a0, a1], axis=-1)[..., None, :]
    bottom = jnp.concatenate([a1[..., :, None], low], axis=-1)
    return jnp.concatenate([top, bottom], axis=-2)


def _hyp_mul(a, v):
    """``Hyp(a) v`` (:func:`_hyp`) in ``O(k)`` per block, without forming ``Hyp(a)``."""
    a0, a1 = a[..., :1], a[..., 1:]
    v0, v1 = v[..., :1], v[..., 1:]
    a1v1 = jnp.sum(a1 * v1, axis=-1, keepdims=True)
    return jnp.concatenate([a0 * v0 + a1v1, a1 * (v0 + a1v1 / (1.0 + a0)) + v1], axis=-1)


def _hyp_sq(a):
    """``Hyp(a)² = Hyp(b)``, ``b = Hyp(a) a = (2a0² - 1, 2 a0 a1)`` (boosts along one axis compose)."""
    a0 = a[..., :1]
    return _hyp(jnp.concatenate([2.0 * a0 * a0 - 1.0, 2.0 * a0 * a[..., 1:]], axis=-1))


def _nt_soc(s, z):
    """Nesterov-Todd scaling of SOC blocks ``(..., k)``: ``W`` symmetric with ``W s = W⁻¹ z``.

    ``s̄ = s/‖s‖_J``, ``z̄ = z/‖z‖_J``, ``γ = sqrt((1 + z̄ᵀs̄)/2)``, ``w̄ = (s̄ + J z̄)/(2γ)``,
    ``W = η Hyp(J w̄)``, ``W⁻¹ = Hyp(w̄)/η``, ``η = sqrt(‖z‖_J/‖s‖_J)`` (Vandenberghe 2010, §4.3).
    Returns ``(η, J w̄, w̄)``: ``W`` and ``W⁻¹`` are applied in ``O(k)`` (:func:`_hyp_mul`), and
    only ``W² = η² Hyp(J w̄)²`` is formed (:func:`_hyp_sq`), for the normal equations.
    """
    ns, nz = _jnorm(s), _jnorm(z)
    sb, zb = s / ns[..., None], z / nz[..., None]
    gam = jnp.sqrt((1.0 + jnp.sum(sb * zb, axis=-1)) / 2.0)
    Jz = jnp.concatenate([zb[..., :1], -zb[..., 1:]], axis=-1)
    wb = (sb + Jz) / (2.0 * gam[..., None])
    Jw = jnp.concatenate([wb[..., :1], -wb[..., 1:]], axis=-1)
    return jnp.sqrt(nz / ns)[..., None], Jw, wb


def _soc_circ(u, v):
    """Jordan product ``u ∘ v = (uᵀv, u0 v1 + v0 u1)`` of SOC blocks."""
    return jnp.concatenate(
        [jnp.sum(u * v, axis=-1, keepdims=True), u[..., :1] * v[..., 1:] + v[..., :1] * u[..., 1:]], axis=-1
    )


def _soc_div(lam, w):
    """Solve ``λ ∘ x = w`` for ``x`` (``λ`` in the SOC interior)."""
    l0, l1 = lam[..., :1], lam[..., 1:]
    w0, w1 = w[..., :1], w[..., 1:]
    det = l0 * l0 - jnp.sum(l1 * l1, axis=-1, keepdims=True)
    x0 = (l0 * w0 - jnp.sum(l1 * w1, axis=-1, keepdims=True)) / det
    return jnp.concatenate([x0, (w1 - l1 * x0) / l0], axis=-1)


def _soc_step(x, dx):
    """Largest ``α`` with ``x + α dx`` in the SOC (``x`` interior): ``1 / max(0, ‖ρ1‖ - ρ0)``,
    ``ρ = Hyp(J x̄) dx / ‖x‖_J`` maps ``x`` to ``e``. Returns ``inf`` for an unbounded step."""
    nx = _jnorm(x)
    xb = x / nx[..., None]
    Jx = jnp.concatenate([xb[..., :1], -xb[..., 1:]], axis=-1)
    rho = _hyp_mul(Jx, dx) / nx[..., None]
    m = jnp.linalg.norm(rho[..., 1:], axis=-1) - rho[..., 0]
    return jnp.min(jnp.where(m > 0, 1.0 / jnp.where(m > 0, m, 1.0), jnp.inf))


def _lp_step(x, dx):
    return jnp.min(jnp.where(dx < 0, -x / jnp.where(dx < 0, dx, -1.0), jnp.inf))


class _Pt(eqx.Module):
    """A point in ``K``: margin rows (``(n,)`` or ``(0,)``), cone rows ``(2p, n)``, cones ``(2p, k)``."""

    m: Array
    c: Array
    q: Array


def _add(a: _Pt, b: _Pt, alpha=1.0) -> _Pt:
    return _Pt(a.m + alpha * b.m, a.c + alpha * b.c, a.q + alpha * b.q)


def _dot(a: _Pt, b: _Pt):
    return jnp.sum(a.m * b.m) + jnp.sum(a.c * b.c) + jnp.sum(a.q * b.q)




class IpmFactor(eqx.Module):
    """The normal equations' factorization: the blocks ``B``, their inverses, ``Ω`` and the
    capacitance's Cholesky factor."""

    Binv: Array  # (2p, k, k), or (0, k, k) when N is factored directly
    B: Array  # (2p, k, k)
    om: Array  # (n,) Ω
    Lc: Array  # (n, n), or (0, 0) when N is factored directly
    Ln: Array  # (2pk, 2pk) the Cholesky factor of N itself for a small program (_dense), else (0, 0)


class IpmProblem(eqx.Module):
    """The conic form of one program on the scaled data: ``c``, ``h``, the identity ``e`` of
    ``K``, the cone rows' signs ``S2``, the products ``x_a x_b`` (``a ≤ b``) of each sample."""

    data: ScaledProblem
    S2: Array  # (2p, n)
    c: Array  # (2p, k)
    h: _Pt
    e: _Pt
    rhs0: Array  # -c - ∇φ(0) + Gᵀh: the right-hand side of the initial point
    XX: Array  # (n, d(d+1)/2)
    tol: Array
    infeasible_tol: Array
    max_iters: Array
    degree: int = eqx.field(static=True)
    max_margin: bool = eqx.field(static=True)
    loss: str | None = eqx.field(static=True)  # "squared", "logistic", or None (max-margin)
    progress: Callable | None = eqx.field(static=True, default=None)


def _A(prob: IpmProblem, z):
    """The fit ``A z = Σ_j D_j ⊙ X (z_j - z_{p+j})``: ``(2p, d) -> (n,)``."""
    p = prob.S2.shape[0] // 2
    return jnp.sum(prob.data.Df * ((z[:p] - z[p:]) @ prob.data.Xs.T), axis=0)


def _AT(prob: IpmProblem, v):
    """``Aᵀ v``: ``(n,) -> (2p, d)``."""
    g = (prob.data.Df * v) @ prob.data.Xs
    return jnp.concatenate([g, -g])


def _G(prob: IpmProblem, x) -> _Pt:
    """``G x``: margin rows ``-y ⊙ A z`` (max-margin), cone rows ``-S ⊙ X z_b``, cones ``-x_b``."""
    z = x[:, 1:]
    gm = -prob.data.ys * _A(prob, z) if prob.max_margin else jnp.zeros((0,), x.dtype)
    return _Pt(gm, -prob.S2 * (z @ prob.data.Xs.T), -x)


def _GT(prob: IpmProblem, v: _Pt):
    """``Gᵀ v``: ``K -> (2p, k)``."""
    gz = -(prob.S2 * v.c) @ prob.data.Xs
    if prob.max_margin:
        gz = gz - _AT(prob, prob.data.ys * v.m)
    return jnp.concatenate([jnp.zeros((gz.shape[0], 1), gz.dtype), gz], axis=1) - v.q


def _loss_derivatives(prob: IpmProblem, f):
    """``(ℓ(f), ℓ'(f), ℓ''(f))`` of the scaled loss at the fit ``f``: squared ``½(f - y)²``
    (``ℓ'' = 1``), logistic ``log(1 + e^{-y f})`` (``ℓ' = -y σ(-y f)``, ``ℓ'' = σ(y f) σ(-y f)``),
    at ``f + o`` with the problem's fixed offset ``o`` (:func:`convexrelu._scaling.scale_problem`)."""
    y = prob.data.ys
    if prob.loss == "squared":
        return 0.5 * jnp.sum((f - y) ** 2), f - y, jnp.ones_like(f)
    q = y * (f + prob.data.offset)
    return jnp.sum(jax.nn.softplus(-q)), -y * jax.nn.sigmoid(-q), jax.nn.sigmoid(q) * jax.nn.sigmoid(-q)


def _objective(prob: IpmProblem, x):
    """The scaled objective ``cᵀx + φ(x)``, ``φ(x) = ℓ(A z)`` (zero for max-margin)."""
    lin = jnp.sum(prob.c * x)
    return lin if prob.max_margin else lin + _loss_derivatives(prob, _A(prob, x[:, 1:]))[0]


def _gradient(prob: IpmProblem, x):
    """``∇φ(x)``: zero (max-margin) or ``Aᵀ ℓ'(A z)`` on the ``z`` part. Its Hessian ``Aᵀ diag(ℓ'') A``
    enters the normal equations as ``Ω = ℓ''`` (``ℓ'' = 1``: the squared loss's ``P = AᵀA``)."""
    if prob.max_margin:
        return jnp.zeros_like(x)
    g = _AT(prob, _loss_derivatives(prob, _A(prob, x[:, 1:]))[1])
    return jnp.concatenate([jnp.zeros((x.shape[0], 1), x.dtype), g], axis=1)


def ipm_problem(data: ScaledProblem, tol, infeasible_tol, max_iters, progress=None) -> IpmProblem:
    """The conic form (module docstring) of the scaled program ``data``."""
    n, d = data.Xs.shape
    p, dtype, mm = data.Df.shape[0], data.Xs.dtype, data.program == "max-margin"
    nm = n if mm else 0
    S2 = jnp.concatenate([2.0 * data.Df - 1.0] * 2)
    zq = jnp.zeros((2 * p, d + 1), dtype)
    if mm:
        c = zq.at[:, 0].set(1.0)
        h = _Pt(data.ys * data.offset - 1.0, jnp.zeros((2 * p, n), dtype), zq)  # y ⊙ (A z + o) ≥ 1
    else:
        c = zq.at[:, 0].set(data.beta_s)
        h = _Pt(jnp.zeros((0,), dtype), jnp.zeros((2 * p, n), dtype), zq)
    e = _Pt(jnp.ones((nm,), dtype), jnp.ones((2 * p, n), dtype), zq.at[:, 0].set(1.0))
    iu, ju = np.triu_indices(d)  # static, in the order _factor gathers them
    prob = IpmProblem(
        data=data, S2=S2, c=c, h=h, e=e, rhs0=c, XX=data.Xs[:, iu] * data.Xs[:, ju],
        tol=tol, infeasible_tol=infeasible_tol, max_iters=max_iters, degree=nm + 2 * p * n + 2 * p, max_margin=mm,
        loss=None if mm else loss_of_program(data.program), progress=progress,
    )
    return eqx.tree_at(lambda q: q.rhs0, prob, -c - _gradient(prob, zq) + _GT(prob, h))


def _gram_xla(Xs, Df, R):
    """``Σ_j (D_j ⊙ X R_jᵀ)(D_j ⊙ X R_jᵀ)ᵀ`` as one XLA GEMM, accumulated over chunks of patterns."""
    n, d = Xs.shape
    p = Df.shape[0]
    chunk = max(1, min(p, _CHUNK_ELEMS // max(1, n * d)))
    nch = -(-p // chunk)
    pad = nch * chunk - p
    Dp = jnp.pad(Df.T, ((0, 0), (0, pad))).reshape(n, nch, chunk).transpose(1, 0, 2)
    Rp = jnp.pad(R, ((0, pad), (0, 0), (0, 0))).reshape(nch, chunk, d, d)

    def body(K, inp):
        Dc, Rc = inp  # (n, chunk), (chunk, d, d)
        F = (Dc[:, :, None] * jnp.einsum("na,jba->njb", Xs, Rc)).reshape(n, -1)
        return K + F @ F.T, None

    return jax.lax.scan(body, jnp.zeros((n, n), Xs.dtype), (Dp, Rp))[0]


def _gram_numpy(Xs, Df, R, single=False):
    """:func:`_gram_xla` in NumPy (host BLAS; ``F @ F.T`` is a symmetric rank-k update), in single
    precision when ``single`` (returned in the dtype of ``Xs``)."""
    dtype = np.asarray(Xs).dtype
    work = np.float32 if bool(single) else dtype
    Xs, Df, R = (np.asarray(a, work) for a in (Xs, Df, R))
    n, d = Xs.shape
    p = Df.shape[0]
    chunk = max(1, min(p, _CHUNK_ELEMS // max(1, n * d)))
    K = np.zeros((n, n), Xs.dtype)
    for a in range(0, p, chunk):
        Rc = R[a : a + chunk]
        c = Rc.shape[0]
        F = (Xs @ Rc.transpose(2, 0, 1).reshape(d, c * d)).reshape(n, c, d)  # X R_jᵀ, (n, c, d)
        F *= Df[a : a + chunk].T[:, :, None]
        F = F.reshape(n, c * d)
        K += F @ F.T
    return K.astype(dtype, copy=False)


def _capacitance_numpy(Xs, Df, R, so, single=False):
    """The lower Cholesky factor of ``C = I + diag(so) K diag(so)``, ``K`` from :func:`_gram_numpy`
    (NaN if ``C`` is not numerically positive definite, for the solver's finiteness check)."""
    C = _gram_numpy(Xs, Df, R, single)  # exactly symmetric (a rank-k update)
    so = np.asarray(so, C.dtype)
    C *= so[:, None]
    C *= so[None, :]
    C[np.diag_indices_from(C)] += 1.0
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        return np.full_like(C, np.nan)


def uses_host_gram(Xs, Df):
    """Whether :func:`_capacitance` runs on the host (the CPU backend, ``n² p d ≥ _HOST_GEMM_WORK``)."""
    n, d = Xs.shape
    return jax.default_backend() == "cpu" and n * n * Df.shape[0] * d >= _HOST_GEMM_WORK


def _capacitance(Xs, Df, R, so, single):
    """The Cholesky factor of the capacitance ``C = I + Ω½ K Ω½``, ``K = Σ_j D_j X M_j Xᵀ D_j =
    F Fᵀ``, ``F = [D_j ⊙ X R_jᵀ]_j`` (``so = Ω½``).

    ``K`` is the only ``O(n² p d)`` step of an iteration. On the CPU backend, once it is large
    (:func:`uses_host_gram`), ``C`` and its factor are computed on the host through
    :func:`jax.pure_callback`: ``K`` is a symmetric rank-k update of the host BLAS, faster than
    XLA:CPU's float64 dot, in single precision while the traced flag ``single`` is set (see the
    module docstring for when), and the host's Cholesky factor is faster than XLA's. Elsewhere, and
    for smaller problems (whose compiled solver then stays in the persistent compilation cache),
    ``K`` is an XLA GEMM in the solve's dtype.
    """
    n = Xs.shape[0]
    if not uses_host_gram(Xs, Df):
        K = _gram_xla(Xs, Df, R)
        C = jnp.eye(n, dtype=Xs.dtype) + so[:, None] * (0.5 * (K + K.T)) * so[None, :]
        return jnp.linalg.cholesky(C)
    out = jax.ShapeDtypeStruct((n, n), Xs.dtype)
    return jax.pure_callback(_capacitance_numpy, out, Xs, Df, R, so, single, vmap_method="sequential")


def _dense_normal(Xs, Df, B, om):
    """``N = Bdiag + Aᵀ Ω A`` as a ``(2p(d+1), 2p(d+1))`` matrix: ``AᵀΩA`` couples the ``z`` parts
    through ``K_jk = Xᵀ D_j Ω D_k X`` with the signs of ``u - v``."""
    twop, k, _ = B.shape
    F = Df[:, :, None] * Xs[None]  # (p, n, d): D_j ⊙ X
    K = jnp.einsum("jna,n,knb->jakb", F, om, F)
    K = jnp.concatenate([jnp.concatenate([K, -K], axis=2), jnp.concatenate([-K, K], axis=2)], axis=0)  # (2p, d, 2p, d)
    N = jnp.pad(K, ((0, 0), (1, 0), (0, 0), (1, 0))) + jnp.einsum("bij,bc->bicj", B, jnp.eye(twop, dtype=B.dtype))
    N = N.reshape(twop * k, twop * k)
    return 0.5 * (N + N.T)


def _dense_factor(Xs, Df, B, om):
    """The Cholesky factor of :func:`_dense_normal` with a relative static regularization (the
    refinement against the unregularized ``N`` removes its effect)."""
    N = _dense_normal(Xs, Df, B, om)
    reg = _DENSE_REG[Xs.dtype == jnp.float32] * jnp.mean(jnp.diagonal(N))
    return jnp.linalg.cholesky(N + reg * jnp.eye(N.shape[0], dtype=N.dtype))


def _factor(Xs, Df, XX, wc, Hq, om, single, dense: bool) -> IpmFactor:
    """Factor ``N = Bdiag + Aᵀ Ω A`` (Woodbury; see the module docstring); ``single``: the
    capacitance Gram's precision on the host path (:func:`_capacitance`); ``dense`` (static):
    factor ``N`` itself instead (:func:`_dense_factor`; the capacitance is then empty)."""
    d = Xs.shape[1]
    p = Df.shape[0]
    dtype = Xs.dtype
    # Xᵀ diag(w_b) X for all 2p blocks: one GEMM over the d(d+1)/2 entries of the upper triangle,
    # gathered into the symmetric (d, d) blocks (a gather: XLA:CPU runs a scatter as a loop)
    iu, ju = np.triu_indices(d)
    tri = np.zeros((d, d), np.int32)
    tri[iu, ju] = tri[ju, iu] = np.arange(len(iu))
    T = wc @ XX  # (2p, d(d+1)/2)
    B = Hq + jnp.pad(T[:, tri], ((0, 0), (1, 0), (1, 0)))
    B = 0.5 * (B + jnp.swapaxes(B, 1, 2))  # unregularized, for the refinement
    empty = jnp.zeros((0, 0), dtype)
    if dense:
        return IpmFactor(jnp.zeros((0, d + 1, d + 1), dtype), B, om, empty, _dense_factor(Xs, Df, B, om))
    # static regularization (ECOS): bounds the condition number of the blocks; the refinement
    # against the unregularized N removes its effect on the step
    eye = jnp.eye(d + 1, dtype=dtype)
    diag = jnp.diagonal(B, axis1=1, axis2=2)
    reg = _REG[dtype == jnp.float32] * jnp.max(diag, axis=1, keepdims=True)
    Lb = jnp.linalg.cholesky(B + reg[:, :, None] * eye)
    Li = jax.lax.linalg.triangular_solve(Lb, jnp.broadcast_to(eye, B.shape), left_side=True, lower=True)
    Binv = jnp.swapaxes(Li, 1, 2) @ Li
    # u_j and v_j share D_j: A B⁻¹ Aᵀ = Σ_j D_j X M_j Xᵀ D_j with M_j = (B⁻¹_uj + B⁻¹_vj)_zz = G_jᵀ G_j,
    # G_j = [Li_uj; Li_vj][:, z] (B⁻¹ = Liᵀ Li). With G_j = Q_j R_j (QR, no squaring, exact for
    # singular M_j) it is F Fᵀ, F = [D_j ⊙ X R_jᵀ]_j (n, p d): one GEMM, half the flops of forming
    # X M_j Xᵀ block by block
    R = jnp.linalg.qr(jnp.concatenate([Li[:p, :, 1:], Li[p:, :, 1:]], axis=1), mode="r")  # (p, d, d)
    return IpmFactor(Binv, B, om, _capacitance(Xs, Df, R, jnp.sqrt(om), single), empty)




class _Refinement(NamedTuple):
    k: Array  # steps taken
    x: Array  # the best solution so far
    r: Array  # its residual rhs - N x
    res: Array  # ‖r‖
    prev: Array  # the residual norm before the last step


def _bmul(M, v):
    return jnp.einsum("bij,bj->bi", M, v)


def _woodbury(prob: IpmProblem, fac: IpmFactor, r):
    """``N⁻¹ r ≈ B⁻¹ r - B⁻¹ Aᵀ Ω½ C⁻¹ Ω½ A B⁻¹ r`` (the capacitance ``C`` by its Cholesky factor)."""
    so = jnp.sqrt(fac.om)
    w = _bmul(fac.Binv, r)
    cc = jax.scipy.linalg.cho_solve((fac.Lc, True), so * _A(prob, w[:, 1:]))
    g = _AT(prob, so * cc)
    return w - _bmul(fac.Binv, jnp.pad(g, ((0, 0), (1, 0))))  # no slice of Binv: a copy per step


def _approx_solve(prob: IpmProblem, fac: IpmFactor, r):
    """``N⁻¹ r`` by the dense factor of ``N`` when there is one (:func:`_dense`), else :func:`_woodbury`."""
    if fac.Ln.shape[0] == 0:
        return _woodbury(prob, fac, r)
    return jax.scipy.linalg.cho_solve((fac.Ln, True), r.ravel()).reshape(r.shape)


def _nmul(prob: IpmProblem, fac: IpmFactor, v):
    """``N v = B v + Aᵀ Ω A v`` (on the ``z`` part), unregularized."""
    return _bmul(fac.B, v).at[:, 1:].add(_AT(prob, fac.om * _A(prob, v[:, 1:])))


def _refine(prob: IpmProblem, fac: IpmFactor, rhs, c: _Refinement) -> _Refinement:
    """One step of iterative refinement ``x ← x + N̂⁻¹(rhs - N x)``, keeping the better iterate."""
    xn = c.x + _approx_solve(prob, fac, c.r)
    rn = rhs - _nmul(prob, fac, xn)
    resn = jnp.linalg.norm(rn)
    better = resn < c.res  # keep the best iterate: the last step may stagnate
    return _Refinement(c.k + 1, jnp.where(better, xn, c.x), jnp.where(better, rn, c.r), jnp.minimum(resn, c.res), c.res)


def _nsolve(prob: IpmProblem, fac: IpmFactor, r):
    """``N⁻¹ r`` by :func:`_approx_solve` (Woodbury, or the dense factor), then iterative
    refinement with ``N`` itself until the residual is
    ``max(_REFINE_TOL · eps, _REFINE_FRACTION · tol) · ‖r‖`` (the floating-point floor, or a
    thousandth of the stopping tolerance ``tol``), stops halving, or ``_REFINE_MAX`` steps. Near the
    optimum ``B`` is so ill-conditioned that Woodbury alone is only 1e-2 to 1e-1 accurate, enough
    to stall the duality gap without the refinement.

    Returns ``(x, struggled)``: ``struggled`` when the refinement took all ``_REFINE_MAX`` steps
    or ended above both its target and ``sqrt(eps) · ‖r‖`` (half the digits lost)."""
    eps, rn = jnp.finfo(r.dtype).eps, jnp.linalg.norm(r)
    target = jnp.maximum(_REFINE_TOL * eps, _REFINE_FRACTION * prob.tol) * rn
    x0 = _approx_solve(prob, fac, r)
    r0 = r - _nmul(prob, fac, x0)
    start = _Refinement(jnp.zeros((), jnp.int32), x0, r0, jnp.linalg.norm(r0), jnp.asarray(jnp.inf, r.dtype))
    end = jax.lax.while_loop(
        lambda c: (c.k < _REFINE_MAX) & (c.res > target) & (c.res < _REFINE_RATE * c.prev),
        lambda c: _refine(prob, fac, r, c),
        start,
    )
    struggled = (end.k >= _REFINE_MAX) | ~(end.res <= jnp.maximum(np.sqrt(eps) * rn, target))
    return end.x, struggled


class _NTScaling(eqx.Module):
    """Nesterov-Todd scaling ``W`` of the LP rows (``sqrt(z/s)``) and of the cones (``η``, ``J w̄``, ``w̄``)."""

    Wm: Array
    Wmi: Array
    Wc: Array
    Wci: Array
    eta: Array
    Jw: Array
    wb: Array


def _nt_scaling(s: _Pt, z: _Pt) -> _NTScaling:
    eta, Jw, wb = _nt_soc(s.q, z.q)
    return _NTScaling(jnp.sqrt(z.m / s.m), jnp.sqrt(s.m / z.m), jnp.sqrt(z.c / s.c), jnp.sqrt(s.c / z.c), eta, Jw, wb)


def _W(sc: _NTScaling, v: _Pt) -> _Pt:
    return _Pt(sc.Wm * v.m, sc.Wc * v.c, sc.eta * _hyp_mul(sc.Jw, v.q))


def _Winv(sc: _NTScaling, v: _Pt) -> _Pt:
    return _Pt(sc.Wmi * v.m, sc.Wci * v.c, _hyp_mul(sc.wb, v.q) / sc.eta)


def _circ(a: _Pt, b: _Pt) -> _Pt:
    """The Jordan product ``a ∘ b`` of ``K``."""
    return _Pt(a.m * b.m, a.c * b.c, _soc_circ(a.q, b.q))


def _div(a: _Pt, b: _Pt) -> _Pt:
    """Solve ``a ∘ x = b``."""
    return _Pt(b.m / a.m, b.c / a.c, _soc_div(a.q, b.q))


def _neg(a: _Pt) -> _Pt:
    return _Pt(-a.m, -a.c, -a.q)


class IpmState(eqx.Module):
    """The loop state: the iterate ``(x, s, z)`` and the best scored candidate."""

    x: Array  # (2p, k): column 0 is t, the rest z
    s: _Pt
    z: _Pt
    k: Array  # -1 before the initial point
    status: Array
    best: Candidate
    single: Array  # the host capacitance Gram in single precision (until a refinement struggles)
    direct: Array  # N factored directly (from the start, or once a refinement struggled; see _dense)


class _Linearization(NamedTuple):
    """What one iteration's Newton systems share: residuals, ``μ``, the scaling, ``λ = W s`` and ``N``'s factor."""

    init: Array  # the first pass, which computes the initial point
    rx: Array
    rz: _Pt
    mu: Array
    sc: _NTScaling
    lam: _Pt
    fac: IpmFactor


def _dense(prob: IpmProblem) -> str:
    """How ``N`` (``2p(d+1)`` square) is factored: directly, by Cholesky (backward stable, where
    Woodbury loses all accuracy once ``B`` is nearly singular in a direction that only ``AᵀΩA``
    fixes: near-duplicate points of opposite labels, margins ``~1/ε``), or by Woodbury through the
    ``n × n`` capacitance. The direct factor costs ``O((2p(d+1))³)`` per iteration against
    Woodbury's ``O(n² p d)`` (30 ms against 2 ms at n = 40, p = 99, d = 4), so it is ``"direct"``
    up to ``_DENSE_FROM_START``, ``"switch"`` up to ``_DENSE_MAX`` (Woodbury until an iteration's
    refinement struggles, then direct for the rest of the solve; :func:`ipm_step`) and
    ``"woodbury"`` above."""
    size = prob.c.size
    return "woodbury" if size > _DENSE_MAX else "direct" if size <= _DENSE_FROM_START else "switch"


def _linearize(prob: IpmProblem, st: IpmState, direct: bool) -> _Linearization:
    """Residuals ``r_x = ∇φ(x) + c + Gᵀz``, ``r_z = G x + s - h``, ``μ = sᵀz / degree``, the NT
    scaling and the factor of ``N = ∇²φ(x) + Gᵀ W² G`` (Newton's method on the loss)."""
    x, s, z, data = st.x, st.s, st.z, prob.data
    rx = _gradient(prob, x) + prob.c + _GT(prob, z)
    rz = _add(_add(_G(prob, x), s), prob.h, -1.0)
    sc = _nt_scaling(s, z)
    lam = _Pt(sc.Wm * s.m, sc.Wc * s.c, sc.eta * _hyp_mul(sc.Jw, s.q))
    W2q = (sc.eta * sc.eta)[..., None] * _hyp_sq(sc.Jw)
    om = sc.Wm * sc.Wm if prob.max_margin else _loss_derivatives(prob, _A(prob, x[:, 1:]))[2]
    fac = _factor(data.Xs, data.Df, prob.XX, sc.Wc * sc.Wc, W2q, om, st.single, direct)
    return _Linearization(st.k < 0, rx, rz, _dot(s, z) / prob.degree, sc, lam, fac)


def _hess(prob: IpmProblem, fac: IpmFactor, v):
    """``∇²φ v = Aᵀ diag(ℓ'') A v`` on the ``z`` part (zero for max-margin, where ``Ω`` is the
    margin rows' scaling, not a Hessian)."""
    if prob.max_margin:
        return jnp.zeros_like(v)
    return jnp.pad(_AT(prob, fac.om * _A(prob, v[:, 1:])), ((0, 0), (1, 0)))


def _kkt_solve(prob: IpmProblem, lin: _Linearization, bx, bz: _Pt, bs: _Pt):
    """Solve ``∇²φ Δx + GᵀΔz = b_x``, ``G Δx + Δs = b_z``, ``λ ∘ (W Δs + W⁻¹ Δz) = b_s`` by the
    normal equations ``N Δx = b_x - Gᵀ(W (λ \\ b_s) - W² b_z)`` (on the first pass ``N x₀ = -c + Gᵀh``
    with ``W = I``)."""
    Wu = _W(lin.sc, _div(lin.lam, bs))
    rhs = jnp.where(lin.init, prob.rhs0, bx - _GT(prob, _add(Wu, _W(lin.sc, _W(lin.sc, bz)), -1.0)))
    dx, struggled = _nsolve(prob, lin.fac, rhs)
    Gdx = _G(prob, dx)
    return dx, _add(bz, Gdx, -1.0), _add(Wu, _W(lin.sc, _W(lin.sc, _add(Gdx, bz, -1.0)))), struggled


def _kkt_residual(prob: IpmProblem, lin: _Linearization, b, d):
    """The residuals of the three equations of :func:`_kkt_solve` at ``d = (Δx, Δs, Δz)``."""
    (bx, bz, bs), (dx, dsv, dz) = b, d
    r1 = bx - _hess(prob, lin.fac, dx) - _GT(prob, dz)
    r2 = _add(_add(bz, _G(prob, dx), -1.0), dsv, -1.0)
    r3 = _add(bs, _circ(lin.lam, _add(_W(lin.sc, dsv), _Winv(lin.sc, dz))), -1.0)
    return r1, r2, r3


def _norm3(r):
    return jnp.sqrt(jnp.sum(r[0] * r[0]) + _dot(r[1], r[1]) + _dot(r[2], r[2]))


class _KktRefinement(NamedTuple):
    k: Array
    d: tuple  # (Δx, Δs, Δz), the best so far
    r: tuple  # its residuals
    res: Array
    prev: Array
    struggled: Array


def _newton(prob: IpmProblem, lin: _Linearization, ds: _Pt):
    """Solve ``P Δx + GᵀΔz = -r_x``, ``G Δx + Δs = -r_z``, ``λ ∘ (W Δs + W⁻¹ Δz) = ds``
    (:func:`_kkt_solve`), then refine on these equations themselves: eliminating ``Δz`` multiplies
    the normal equations' error by ``W²``, which is huge near the optimum of a nearly infeasible
    program (margins of ``1/ε`` on points ``ε`` apart), and a step or two of refinement with the
    same factors brings the residual back to the floating-point floor."""
    b = (-lin.rx, _neg(lin.rz), ds)
    dx, dsv, dz, struggled = _kkt_solve(prob, lin, *b)
    r = _kkt_residual(prob, lin, b, (dx, dsv, dz))
    target = _REFINE_TOL * jnp.finfo(dx.dtype).eps * _norm3(b)

    def refine(c: _KktRefinement) -> _KktRefinement:
        ex, es, ez, _ = _kkt_solve(prob, lin, *c.r)
        d = (c.d[0] + ex, _add(c.d[1], es), _add(c.d[2], ez))
        rn = _kkt_residual(prob, lin, b, d)
        resn = _norm3(rn)
        better = resn < c.res
        keep = lambda new, old: jax.tree_util.tree_map(lambda u, v: jnp.where(better, u, v), new, old)
        # a correction's own struggle is not the solve's: its right-hand side is a residual
        return _KktRefinement(c.k + 1, keep(d, c.d), keep(rn, c.r), jnp.minimum(resn, c.res), c.res, c.struggled)

    start = _KktRefinement(jnp.zeros((), jnp.int32), (dx, dsv, dz), r, _norm3(r), jnp.asarray(jnp.inf, dx.dtype), struggled)
    end = jax.lax.while_loop(
        lambda c: ~lin.init & (c.k < _KKT_REFINE_MAX) & (c.res > target) & (c.res < _REFINE_RATE * c.prev),
        refine,
        start,
    )
    return (*end.d, end.struggled)


def _max_step(prob: IpmProblem, v: _Pt, dv: _Pt):
    """The longest step ``α`` with ``v + α dv ∈ K``."""
    a = jnp.minimum(_lp_step(v.c, dv.c), _soc_step(v.q, dv.q))
    if prob.max_margin:
        a = jnp.minimum(a, _lp_step(v.m, dv.m))
    return a


class _Direction(NamedTuple):
    ds: _Pt
    dz: _Pt
    dx: Array
    steps: tuple[Array, Array]  # the longest primal and dual steps (two scalars, see _direction_pass)
    struggled: Array  # a refinement struggled (then the host Gram leaves single precision)


def _centring_target(prob: IpmProblem, st: IpmState, lin: _Linearization, aff: _Direction) -> _Pt:
    """Mehrotra's combined right-hand side ``-λ∘λ - (W Δs_a)∘(W⁻¹ Δz_a) + σ μ e`` with
    ``σ = (μ_aff / μ)^_SIGMA_POWER``, ``μ_aff`` the complementarity after the affine step."""
    ap, ad = jnp.minimum(1.0, aff.steps[0]), jnp.minimum(1.0, aff.steps[1])
    mu_aff = _dot(_add(st.s, aff.ds, ap), _add(st.z, aff.dz, ad)) / prob.degree
    sigma = jnp.clip(mu_aff / lin.mu, 0.0, 1.0) ** _SIGMA_POWER
    corr = _circ(_W(lin.sc, aff.ds), _Winv(lin.sc, aff.dz))
    return _add(_add(_neg(_circ(lin.lam, lin.lam)), corr, -1.0), prob.e, sigma * lin.mu)


def _direction_pass(i, prev: _Direction, prob: IpmProblem, st: IpmState, lin: _Linearization) -> _Direction:
    """Pass 0: the affine (predictor) direction; pass 1: the combined direction. A loop, so the
    Newton solve is compiled once."""
    ds = jax.lax.cond(
        i == 0, lambda: _neg(_circ(lin.lam, lin.lam)), lambda: _centring_target(prob, st, lin, prev)
    )
    dx, dsv, dz, struggled = _newton(prob, lin, ds)
    ap, ad = _max_step(prob, st.s, dsv), _max_step(prob, st.z, dz)
    if not prob.max_margin:  # φ ≠ 0 couples the primal and dual residuals: one step
        ap = ad = jnp.minimum(ap, ad)
    # two scalars, not stacked: XLA:CPU fuses the step lengths' reductions into the loop fusion of a
    # stack, and LLVM's optimizer then takes minutes on that one kernel (150 s at n = 30, p = 16,
    # d = 4, 300 s at n = 31, against 6 s for the whole solver at n = 40, p = 25)
    return _Direction(dsv, dz, dx, (ap, ad), prev.struggled | struggled)


def _shift(prob: IpmProblem, v: _Pt) -> _Pt:
    """``v + (1 + a) e`` when ``v`` is not safely interior (``a`` its most negative eigenvalue, negated)."""
    mins = [jnp.min(v.c), jnp.min(v.q[:, 0] - jnp.linalg.norm(v.q[:, 1:], axis=-1))]
    if prob.max_margin:
        mins.append(jnp.min(v.m))
    a = -jnp.min(jnp.stack(mins))
    thr = -1e-8 * jnp.maximum(1.0, jnp.sqrt(_dot(v, v)))
    return _add(v, prob.e, jnp.where(a >= thr, 1.0 + a, 0.0))


def _advance(prob: IpmProblem, st: IpmState, lin: _Linearization, d: _Direction):
    """The next iterate: CVXOPT's shifted initial point ``s = h - G x₀``, ``z = G x₀ - h`` on the
    first pass, else the step a fraction of the way to the boundary. Returns it and the step."""
    frac = _STEP_SPLIT if prob.max_margin else _STEP
    alpha_p, alpha_d = jnp.minimum(1.0, frac * d.steps[0]), jnp.minimum(1.0, frac * d.steps[1])

    def initial_point():
        r0 = _add(prob.h, _G(prob, d.dx), -1.0)
        return d.dx, _shift(prob, r0), _shift(prob, _neg(r0))

    def step():
        return st.x + alpha_p * d.dx, _add(st.s, d.ds, alpha_p), _add(st.z, d.dz, alpha_d)

    x, s, z = jax.lax.cond(lin.init, initial_point, step)
    return x, s, z, jnp.minimum(alpha_p, alpha_d)


def _fresh_candidate(prob: IpmProblem, st: IpmState, x, z: _Pt, init):
    """Score the iterate's candidate; accept a Farkas ray (max-margin); keep the last finite
    candidate when this one is not finite. Returns ``(candidate, status, finite)``."""
    p, n = prob.S2.shape[0] // 2, prob.data.Xs.shape[0]
    nu_s = jnp.maximum(z.c, 0.0).reshape(2, p, n)
    cand, status = score(prob.data, x[:p, 1:], x[p:, 1:], jnp.maximum(z.m, 0.0), nu_s, prob.tol)
    ok = init | (jnp.isfinite(cand.opt.value) & jnp.isfinite(cand.opt.gap))  # the initial point's need not be
    if prob.max_margin:
        # the dual iterate diverges along a Farkas ray: its residual from the dual bound of the same multipliers
        eps = prog.farkas_residual(prob.data.X, cand.opt.dual_value)
        cand, status = accept_farkas(cand, status, eps, jnp.maximum(z.m, 0.0), nu_s, prob.infeasible_tol, ok & ~init)
    cand = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), cand, st.best)
    return cand, status, ok


def _status(prob: IpmProblem, status, finite, alpha, sz, k, init):
    """A stalled step (or complementarity at the floating-point floor) is a numerical error, the
    limit ``max_iters``; the initial point is never final; a non-finite iterate ends the loop."""
    stalled = (alpha < 1e-10) | (sz / prob.degree < jnp.finfo(sz.dtype).tiny * 1e10)
    status = jnp.where((status == RUNNING) & stalled, RESULTS.numerical_error, status)
    status = jnp.where((status == RUNNING) & (k >= prob.max_iters), RESULTS.max_iters, status)
    status = jnp.where(init, RUNNING, status)
    return jnp.where(finite, status, RESULTS.numerical_error).astype(jnp.int32)


def ipm_step(st: IpmState, prob: IpmProblem) -> IpmState:
    """One predictor-corrector iteration (the first computes the initial point), then the score;
    ``N`` factored as :func:`_dense` says (a ``"switch"`` program: a ``lax.cond`` on the state's
    ``direct`` flag between the two compiled iterations, so neither carries the other's factor)."""
    mode = _dense(prob)
    if mode == "switch":
        return jax.lax.cond(st.direct, lambda: _ipm_step(st, prob, True), lambda: _ipm_step(st, prob, False))
    return _ipm_step(st, prob, mode == "direct")


def _ipm_step(st: IpmState, prob: IpmProblem, direct: bool) -> IpmState:
    lin = _linearize(prob, st, direct)
    zero = _Pt(jnp.zeros_like(st.s.m), jnp.zeros_like(st.s.c), jnp.zeros_like(st.s.q))
    start = _Direction(zero, zero, jnp.zeros_like(st.x), (jnp.zeros((), st.x.dtype),) * 2, jnp.asarray(False))
    d = jax.lax.fori_loop(0, 2, lambda i, prev: _direction_pass(i, prev, prob, st, lin), start)
    x, s, z, alpha = _advance(prob, st, lin, d)
    k = st.k + 1
    scaled = _objective(prob, x)  # the complementarity's yardstick
    sz = _dot(s, z)
    # s and z are interior and every entry of x enters s (the cones' rows are -x): the iterate
    # is finite iff sᵀz and Σx are
    iterate_ok = jnp.isfinite(sz) & jnp.isfinite(jnp.sum(x))
    near = sz <= _SCORE_NEAR * prob.tol * jnp.maximum(1.0, jnp.abs(scaled))
    scored = iterate_ok & (lin.init | near | (k % _SCORE_EVERY == 0) | (k >= prob.max_iters))
    best, status, ok = jax.lax.cond(
        scored,
        lambda: _fresh_candidate(prob, st, x, z, lin.init),
        lambda: (st.best, jnp.asarray(RUNNING, jnp.int32), jnp.asarray(True)),
    )
    finite = iterate_ok & ok
    status = _status(prob, status, finite, alpha, sz, k, lin.init)
    if prob.progress is not None:  # the scored gap, else the relative complementarity that tracks it
        jax.debug.callback(prob.progress, k, jnp.where(scored, best.opt.gap, sz / jnp.maximum(1.0, jnp.abs(scaled))))
    return IpmState(x, s, z, k, status, best, st.single & ~d.struggled & finite, st.direct | d.struggled)


def ipm_init(prob: IpmProblem) -> IpmState:
    """``s = z = e`` (where the NT scaling is ``W = I``) and ``k = -1``: the first pass computes the
    initial point with the same factorization and solve as every iteration (compiled once)."""
    (n, d), p, dtype = prob.data.Xs.shape, prob.S2.shape[0] // 2, prob.data.Xs.dtype
    inf = jnp.asarray(jnp.inf, dtype)
    zb = jnp.zeros((p, d), dtype)
    best = Candidate(zb, zb, jnp.zeros((n,), dtype), jnp.zeros((2, p, n), dtype), prog.Optimality(inf, -inf, inf, inf))
    return IpmState(
        x=jnp.zeros((2 * p, d + 1), dtype), s=prob.e, z=prob.e, k=jnp.asarray(-1, jnp.int32),
        status=jnp.asarray(RUNNING, jnp.int32), best=best, single=jnp.asarray(True),
        direct=jnp.asarray(_dense(prob) == "direct"),
    )


def ipm_solve(data: ScaledProblem, tol, infeasible_tol, max_iters, progress=None) -> SolverResult:
    """Run the interior-point method on a scaled max-margin or squared-loss problem; ``progress``
    (optional) is called as ``progress(iteration, gap)`` after every iteration."""
    prob = ipm_problem(data, tol, infeasible_tol, max_iters, progress)
    st = jax.lax.while_loop(lambda st: st.status == RUNNING, lambda st: ipm_step(st, prob), ipm_init(prob))
    return SolverResult(st.best, st.status, st.k)
