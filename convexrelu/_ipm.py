"""Primal-dual interior-point solver of the max-margin and squared-loss convex programs.

Conic form (CVXOPT ``coneqp``; Vandenberghe 2010, "The CVXOPT linear and quadratic cone program
solvers"; Domahidi, Chu & Boyd, ECOS, 2013). With ``2p`` blocks ``b`` (``u_j`` then ``v_j``), each
carrying ``x_b = (t_b, z_b) ∈ R^{1+d}``, solve

    min ½ xᵀPx + cᵀx   s.t.   G x + s = h,   s ∈ K = R_+^{n_m} × R_+^{2p n} × Π_b SOC_{d+1},

* max-margin: ``c = (1 on t)``, ``P = 0``; margin rows ``y ⊙ A z ≥ 1`` (``n_m = n``);
* squared loss: ``½‖A z - y‖² + β Σ t_b``: ``P = AᵀA`` on ``z``, ``c = (β on t, -Aᵀy on z)``,
  no margin rows;
* cone rows ``S_j ⊙ X z_b ≥ 0`` (``S = 2D - 1``) and second-order cones ``t_b ≥ ‖z_b‖``,

where ``A z = Σ_j D_j ⊙ X (u_j - v_j)`` is the fit. Mehrotra predictor-corrector with
Nesterov-Todd scaling ``W`` (``W s = W⁻¹ z = λ``); the step is found from the normal equations

    N Δx = (P + Gᵀ W² G) Δx = rhs,     N = Bdiag + Aᵀ Ω A,

because the cone rows and the cones act on one block each: ``B_b = W_b² + [0, 0; 0, Xᵀ diag(w_b) X]``
(``w_b`` the cone rows' scaling, ``S² = 1``; all ``2p`` blocks with one GEMM), and the margin rows
(``Ω = diag(z_m / s_m)``) and ``P = AᵀA`` (``Ω = I``) couple the blocks only through the ``n``
samples. Woodbury with the well-conditioned capacitance ``C = I + Ω½ A B⁻¹ Aᵀ Ω½`` (``≥ I``):

    N⁻¹ r = B⁻¹ r - B⁻¹ Aᵀ Ω½ C⁻¹ Ω½ A B⁻¹ r,
    A B⁻¹ Aᵀ = Σ_j diag(D_j) X (M_uj + M_vj) Xᵀ diag(D_j),   M_b = (B_b⁻¹)_zz,

``= F Fᵀ`` with ``F = [D_j ⊙ X R_jᵀ]_j``, ``M_uj + M_vj = R_jᵀ R_j`` (a QR): one GEMM of ``(n, p d)``
by its transpose (accumulated over chunks of patterns to bound memory; on the CPU, once large, a
symmetric rank-k update of the host BLAS, see :func:`_capacitance`),
an ``n × n`` Cholesky factor and batched ``(d+1) × (d+1)`` Cholesky factors: ``O(n² p d + p n d²)``
per iteration, memory ``O(np + pd² + n²)``; iterative refinement on ``N`` (to a thousandth of the
stopping tolerance, or the floating-point floor) recovers the accuracy Woodbury loses when ``B``
is ill-conditioned near the optimum.
The refinement also makes a mixed-precision capacitance safe: on the host path the Gram starts in
single precision (twice the speed) and switches to the solve's precision for the rest of the solve
once a refinement struggles (all ``_REFINE_MAX`` steps, or half the digits lost); the direction is
always refined against ``N`` in the solve's precision. On the squared loss (``Ω = I``) single
precision holds for 40 of the 43 factorizations (42 iterations) on scnn's synthetic (1000, 50, 500)
and 35 of 42 on breast cancer; on max-margin problems, whose margin rows' ``Ω`` spans many orders
of magnitude, for the first 24-26 of 39-46 at (200, 10, 1000) (with the host path forced).

On the max-margin program (``P = 0``) the primal ``(x, s)`` and the dual ``z`` take separate
step lengths.

The iterate maps to a candidate ``(U, V, dual, ν)`` of the original problem (multipliers
``μ = z_m``, ``ν = z_c``; ``r = y - f`` for the squared loss), scored with
:func:`convexrelu._programs.optimality` once the iterate's own relative complementarity is within
``_SCORE_NEAR · tol``, every ``_SCORE_EVERY`` iterations and at the last; the loop stops when the
relative gap and violation are both ``≤ tol``. For the max-margin program the dual iterate
``(z_m, z_c)`` of an infeasible problem diverges along a Farkas ray; it is accepted (status
infeasible) when :func:`convexrelu._programs.max_margin_infeasibility` validates it. Data are
scaled as in the ADMM solver (``X`` by its RMS row norm, squared-loss targets by their RMS) and
mapped back.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from . import _programs as prog
from ._cache import solver_jit
from ._solution import INFEASIBLE, MAX_ITERS, NUMERICAL_ERROR, SUCCESS

_RUNNING = -1
# the step goes _STEP of the way to the boundary (CVXOPT, ECOS: 0.99), the centring is
# σ = (μ_aff / μ)^_SIGMA_POWER, μ_aff the complementarity after the affine step (Mehrotra 1992,
# with the power 3; CVXOPT and ECOS use (1 - α_aff)^3 instead). On these degenerate programs (the
# vanishing blocks' cones sit at their apex) the margin to the boundary and the small σ take fewer
# iterations. Against σ = (1 - α_aff)^4: teacher data (200, 10, 1000), two sets of six seeds,
# 267 -> 251 and 287 -> 269; (100, 8, 300), four seeds, 138 -> 126; squared loss 47 -> 42
# (scnn's synthetic set), 43 -> 41 (breast cancer). (1 - α_aff)^3 -> ^4 with the step 0.99 -> 0.95
# had taken 9-12% off before: 302 -> 267, 317 -> 287, 150 -> 138.
_STEP = 0.95
_SIGMA_POWER = 12
# max-margin (P = 0, a linear cone program): the primal residual depends on (x, s) only and the
# dual residual on z only, so each takes its own step (as SDPT3 and LP interior-point codes do),
# _STEP_SPLIT of the way to its boundary. Teacher data (200, 10, 1000), the same two sets of six
# seeds: 251 + 269 -> 245 + 253 iterations (one step at 0.95 -> separate steps at 0.9; separate
# steps at 0.95: 250 + 261, one step at 0.9: 258 + 267); (100, 8, 300), six seeds, 188 -> 186
_STEP_SPLIT = 0.9
_SCORE_NEAR = 100.0
_SCORE_EVERY = 4
_REG = (1e-13, 1e-6)  # relative static regularization of the blocks (float64, float32)
_REFINE_MAX = 10  # at most this many iterative-refinement steps on the normal equations
_REFINE_TOL = 100.0  # ... stopping at a residual of max(_REFINE_TOL · eps, _REFINE_FRACTION · tol) · ‖rhs‖
_REFINE_FRACTION = 1e-3  # (a thousandth of the stopping tolerance: the gap and violation never see it)
_REFINE_RATE = 0.5  # ... or when a step shrinks the residual by less than this factor
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


class _Fac(eqx.Module):
    Binv: Array  # (2p, k, k)
    B: Array  # (2p, k, k)
    om: Array  # (n,) Ω
    Lc: Array  # (n, n) Cholesky factor of the capacitance


class _State(eqx.Module):
    x: Array  # (2p, k): column 0 is t, the rest z
    s: _Pt
    z: _Pt
    k: Array
    status: Array
    U: Array
    V: Array
    dual: Array
    cone_dual: Array
    opt: prog.Optimality
    single: Array  # the host capacitance Gram in single precision (until a refinement struggles)


def _problem(Xs, ys, Df, beta_s, program):
    """The operators ``A``, ``Aᵀ``, ``G``, ``Gᵀ``, ``P`` and the vectors ``c``, ``h`` (closures)."""
    n, d = Xs.shape
    p = Df.shape[0]
    dtype = Xs.dtype
    S2 = jnp.concatenate([2.0 * Df - 1.0] * 2)  # (2p, n)
    mm = program == "max-margin"

    def A(z):  # (2p, d) -> (n,)
        return jnp.sum(Df * ((z[:p] - z[p:]) @ Xs.T), axis=0)

    def AT(v):  # (n,) -> (2p, d)
        g = (Df * v) @ Xs
        return jnp.concatenate([g, -g])

    def G(x) -> _Pt:
        z = x[:, 1:]
        gm = -ys * A(z) if mm else jnp.zeros((0,), dtype)
        return _Pt(gm, -S2 * (z @ Xs.T), -x)

    def GT(v: _Pt):
        gz = -(S2 * v.c) @ Xs
        if mm:
            gz = gz - AT(ys * v.m)
        return jnp.concatenate([jnp.zeros((2 * p, 1), dtype), gz], axis=1) - v.q

    def P(x):
        if mm:
            return jnp.zeros_like(x)
        return jnp.concatenate([jnp.zeros((2 * p, 1), dtype), AT(A(x[:, 1:]))], axis=1)

    if mm:
        c = jnp.concatenate([jnp.ones((2 * p, 1), dtype), jnp.zeros((2 * p, d), dtype)], axis=1)
        h = _Pt(-jnp.ones((n,), dtype), jnp.zeros((2 * p, n), dtype), jnp.zeros((2 * p, d + 1), dtype))
    else:
        c = jnp.concatenate([jnp.full((2 * p, 1), beta_s, dtype), -AT(ys)], axis=1)
        h = _Pt(jnp.zeros((0,), dtype), jnp.zeros((2 * p, n), dtype), jnp.zeros((2 * p, d + 1), dtype))
    return A, AT, G, GT, P, c, h


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


def host_gram(Xs, Df):
    """Whether :func:`_capacitance` runs on the host (the CPU backend, ``n² p d ≥ _HOST_GEMM_WORK``)."""
    n, d = Xs.shape
    return jax.default_backend() == "cpu" and n * n * Df.shape[0] * d >= _HOST_GEMM_WORK


def _capacitance(Xs, Df, R, so, single):
    """The Cholesky factor of the capacitance ``C = I + Ω½ K Ω½``, ``K = Σ_j D_j X M_j Xᵀ D_j =
    F Fᵀ``, ``F = [D_j ⊙ X R_jᵀ]_j`` (``so = Ω½``).

    ``K`` is the only ``O(n² p d)`` step of an iteration. On the CPU backend, once it is large
    (:func:`host_gram`), ``C`` and its factor are computed on the host through
    :func:`jax.pure_callback`: ``K`` is a symmetric rank-k update of the host BLAS at 2-3× the speed
    of XLA:CPU's float64 dot (measured at ``n = 1000, p d = 25 000``), in single precision while
    the traced flag ``single`` is set (twice the speed again; see the module docstring for when),
    and the host's Cholesky factor takes half the time of XLA's. Elsewhere, and for smaller problems
    (whose compiled solver then stays in the persistent compilation cache), ``K`` is an XLA GEMM in
    the solve's dtype.
    """
    n = Xs.shape[0]
    if not host_gram(Xs, Df):
        K = _gram_xla(Xs, Df, R)
        C = jnp.eye(n, dtype=Xs.dtype) + so[:, None] * (0.5 * (K + K.T)) * so[None, :]
        return jnp.linalg.cholesky(C)
    out = jax.ShapeDtypeStruct((n, n), Xs.dtype)
    return jax.pure_callback(_capacitance_numpy, out, Xs, Df, R, so, single, vmap_method="sequential")


def _factor(Xs, Df, XX, wc, Hq, om, single) -> _Fac:
    """Factor ``N = Bdiag + Aᵀ Ω A`` (Woodbury; see the module docstring); ``single``: the
    capacitance Gram's precision on the host path (:func:`_capacitance`)."""
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
    return _Fac(Binv, B, om, _capacitance(Xs, Df, R, jnp.sqrt(om), single))


def _nsolve(fac: _Fac, r, A, AT, tol):
    """``N⁻¹ r`` by Woodbury, then iterative refinement with ``N`` itself: until the residual is
    ``max(_REFINE_TOL · eps, _REFINE_FRACTION · tol) · ‖r‖`` (the floating-point floor, or a
    thousandth of the solver's stopping tolerance ``tol``), stops halving, or ``_REFINE_MAX`` steps.
    Near the optimum ``B`` is so ill-conditioned that Woodbury alone is 1e-2 to 1e-1 accurate and a
    fixed three steps leave 1e-5: enough to stall the duality gap (of the multipliers the step
    produces) at about 1e-5 on (1000, 20, 2000) teacher data. Refining to ``1e-9`` instead of the
    floor (``tol = 1e-6``) left the iterations unchanged (teacher data, 12 seeds, and both squared
    loss sets; measured with σ = (1 - α_aff)⁴) and saves most refinement steps, as Woodbury alone
    is often 1e-11 accurate early on: solve at (200, 10, 1004) 3.9 -> 3.6 s, scnn synthetic 25.3 ->
    23.7 s.

    Returns ``(x, struggled)``: ``struggled`` when the refinement took all ``_REFINE_MAX`` steps
    or ended above both its target and ``sqrt(eps) · ‖r‖`` (half the digits lost)."""
    so = jnp.sqrt(fac.om)

    def bmul(M, v):
        return jnp.einsum("bij,bj->bi", M, v)

    def wood(r):
        w = bmul(fac.Binv, r)
        a = so * A(w[:, 1:])
        cc = jax.scipy.linalg.cho_solve((fac.Lc, True), a)
        g = AT(so * cc)
        return w - bmul(fac.Binv, jnp.pad(g, ((0, 0), (1, 0))))  # no slice of Binv: a copy per step

    def nmul(v):
        out = bmul(fac.B, v)
        return out.at[:, 1:].add(AT(fac.om * A(v[:, 1:])))

    # refine until the residual reaches its target or stops shrinking (a while loop, not a
    # Python loop: one copy of the solve in the compiled program)
    eps, rn = jnp.finfo(r.dtype).eps, jnp.linalg.norm(r)
    target = jnp.maximum(_REFINE_TOL * eps, _REFINE_FRACTION * tol) * rn

    def cond(c):
        k, _, _, res, prev = c
        return (k < _REFINE_MAX) & (res > target) & (res < _REFINE_RATE * prev)

    def step(c):
        k, x, rv, res, _ = c
        xn = x + wood(rv)
        rvn = r - nmul(xn)
        resn = jnp.linalg.norm(rvn)
        better = resn < res  # keep the best iterate: the last step may stagnate
        x, rv = jnp.where(better, xn, x), jnp.where(better, rvn, rv)
        return k + 1, x, rv, jnp.minimum(resn, res), res

    x0 = wood(r)
    r0 = r - nmul(x0)
    inf = jnp.asarray(jnp.inf, r.dtype)
    k, x, _, res, _ = jax.lax.while_loop(cond, step, (0, x0, r0, jnp.linalg.norm(r0), inf))
    struggled = (k >= _REFINE_MAX) | ~(res <= jnp.maximum(np.sqrt(eps) * rn, target))
    return x, struggled


def _candidate(st_x, st_z: _Pt, X, y, D, beta, sx, sy, program):
    """Map the scaled iterate to ``(U, V, dual, ν)`` of the original program."""
    p = D.shape[0]
    z = st_x[:, 1:]
    nu = jnp.maximum(st_z.c, 0.0).reshape(2, p, -1)
    if program == "max-margin":
        U, V = z[:p] / sx, z[p:] / sx
        m = jnp.min(y * prog.convex_fit(X, D, U, V))
        c = jnp.where(m > 0, 1.0 / jnp.where(m > 0, m, 1.0), 1.0)  # exact margin feasibility
        return c * U, c * V, jnp.maximum(st_z.m, 0.0) / sx, nu / sx
    U, V = z[:p] * (sy / sx), z[p:] * (sy / sx)
    f = prog.convex_fit(X, D, U, V)
    ff = jnp.sum(f * f)  # best rescaling along the ray (closed form)
    c = (jnp.sum(f * y) - beta * prog.group_norm(U, V)) / jnp.where(ff > 0, ff, 1.0)
    c = jnp.where(ff > 0, jnp.maximum(c, 0.0), 1.0)
    U, V, f = c * U, c * V, c * f
    return U, V, y - f, nu * sy


@solver_jit(static_argnames=("program",))
def ipm_solve(X, y, D, beta, tol, infeasible_tol, max_iters, program: str):
    """One instance of the interior-point method (``jax.vmap`` batches it); see the module
    docstring. Returns ``(U, V, dual, cone_dual, optimality, status, iterations)``."""
    dtype = X.dtype
    n, d = X.shape
    p = D.shape[0]
    k = d + 1
    mm = program == "max-margin"
    Df = D.astype(dtype)
    sx = jnp.sqrt(jnp.sum(X * X) / n)
    sx = jnp.where(sx > 0, sx, 1.0)
    Xs = X / sx
    if mm:
        sy = jnp.ones((), dtype)
    else:
        sy = jnp.sqrt(jnp.mean(y * y))
        sy = jnp.where(sy > 0, sy, 1.0)
    ys = y / sy
    yy = jnp.sum(ys * ys)  # the squared loss' constant ½‖y‖² (scaled), for the relative gap
    beta_s = jnp.ones((), dtype) if mm else beta / (sx * sy)
    A, AT, G, GT, P, c, h = _problem(Xs, ys, Df, beta_s, program)
    iu, ju = np.triu_indices(d)  # static, in the order _factor gathers them
    XX = Xs[:, iu] * Xs[:, ju]  # (n, d(d+1)/2): the products x_a x_b, a ≤ b
    nm = n if mm else 0
    degree = nm + 2 * p * n + 2 * p
    e_q = jnp.zeros((2 * p, k), dtype).at[:, 0].set(1.0)
    e = _Pt(jnp.ones((nm,), dtype), jnp.ones((2 * p, n), dtype), e_q)
    om_fixed = jnp.ones((n,), dtype)  # Ω of P = AᵀA (squared loss)

    def omega(wm):
        return wm if mm else om_fixed

    # initial point (CVXOPT coneqp): W = I, x = N⁻¹(-c + Gᵀh), s = h - Gx, z = Gx - h, shifted.
    # It is the loop's first pass (flag `init`), from s = z = e where the NT scaling is W = I,
    # so the factorization, the solve and the scoring are compiled once, not twice.
    rhs0 = -c + GT(h)

    def shift(v: _Pt) -> _Pt:
        mins = [jnp.min(v.c), jnp.min(v.q[:, 0] - jnp.linalg.norm(v.q[:, 1:], axis=-1))]
        if mm:
            mins.append(jnp.min(v.m))
        a = -jnp.min(jnp.stack(mins))  # the most negative eigenvalue, negated
        thr = -1e-8 * jnp.maximum(1.0, jnp.sqrt(_dot(v, v)))
        return _add(v, e, jnp.where(a >= thr, 1.0 + a, 0.0))

    def score(x, z):
        U, V, dual, nu = _candidate(x, z, X, y, D, beta, sx, sy, program)
        return U, V, dual, nu, prog.optimality(X, y, D, U, V, dual, nu, program=program, beta=beta)

    inf0 = jnp.asarray(jnp.inf, dtype)
    st0 = _State(
        jnp.zeros((2 * p, k), dtype), e, e, jnp.asarray(-1, jnp.int32), jnp.asarray(_RUNNING, jnp.int32),
        jnp.zeros((p, d), dtype), jnp.zeros((p, d), dtype), jnp.zeros((n,), dtype),
        jnp.zeros((2, p, n), dtype), prog.Optimality(inf0, -inf0, inf0, inf0), jnp.asarray(True),
    )

    def body(st: _State):
        init = st.k < 0  # the first pass computes the initial point
        x, s, z = st.x, st.s, st.z
        rx = P(x) + c + GT(z)
        rz = _add(_add(G(x), s), h, -1.0)
        mu = _dot(s, z) / degree
        # Nesterov-Todd scaling and the scaled point λ = W s = W⁻¹ z
        Wm, Wmi = jnp.sqrt(z.m / s.m), jnp.sqrt(s.m / z.m)  # LP rows: W = sqrt(z/s)
        Wc, Wci = jnp.sqrt(z.c / s.c), jnp.sqrt(s.c / z.c)
        eta, Jw, wb = _nt_soc(s.q, z.q)  # W = η Hyp(J w̄), W⁻¹ = Hyp(w̄)/η on the cones
        lam = _Pt(Wm * s.m, Wc * s.c, eta * _hyp_mul(Jw, s.q))
        W2q = (eta * eta)[..., None] * _hyp_sq(Jw)
        fac = _factor(Xs, Df, XX, Wc * Wc, W2q, omega(Wm * Wm), st.single)

        def W(v: _Pt) -> _Pt:
            return _Pt(Wm * v.m, Wc * v.c, eta * _hyp_mul(Jw, v.q))

        def Winv(v: _Pt) -> _Pt:
            return _Pt(Wmi * v.m, Wci * v.c, _hyp_mul(wb, v.q) / eta)

        def circ(a: _Pt, b: _Pt) -> _Pt:
            return _Pt(a.m * b.m, a.c * b.c, _soc_circ(a.q, b.q))

        def div(a: _Pt, b: _Pt) -> _Pt:  # solve a ∘ x = b
            return _Pt(b.m / a.m, b.c / a.c, _soc_div(a.q, b.q))

        W2rz = W(W(rz))  # the same for both directions

        def newton(ds: _Pt):
            """Solve P Δx + GᵀΔz = -r_x, G Δx + Δs = -r_z, λ ∘ (W Δs + W⁻¹ Δz) = ds."""
            u = div(lam, ds)
            Wu = W(u)
            rhs = jnp.where(init, rhs0, -rx - GT(_add(Wu, W2rz)))
            dx, struggled = _nsolve(fac, rhs, A, AT, tol)
            Gdx = G(dx)
            dsv = _add(_Pt(-rz.m, -rz.c, -rz.q), Gdx, -1.0)
            dz = _add(Wu, W(W(_add(rz, Gdx))))
            return dx, dsv, dz, struggled

        def max_step(v: _Pt, dv: _Pt):
            a = jnp.minimum(_lp_step(v.c, dv.c), _soc_step(v.q, dv.q))
            if mm:
                a = jnp.minimum(a, _lp_step(v.m, dv.m))
            return a

        split = mm  # P = 0: the primal and dual residuals are decoupled (_STEP_SPLIT)
        lamsq = circ(lam, lam)
        neg = _Pt(-lamsq.m, -lamsq.c, -lamsq.q)

        def pc(i, carry):
            """i = 0: affine (predictor) direction; i = 1: combined direction with the
            second-order correction and centring σ = (μ_aff / μ)^_SIGMA_POWER (Mehrotra). A
            loop, so the Newton solve is compiled once. Each pass ends with its direction's
            longest step (the predictor's sets σ; the combined direction's is the step taken)
            and whether a refinement struggled (then the host Gram leaves single precision)."""
            dsa, dza, _, aa, struggled = carry

            def combined():
                ap, ad = jnp.minimum(1.0, aa[0]), jnp.minimum(1.0, aa[1])
                mu_aff = _dot(_add(s, dsa, ap), _add(z, dza, ad)) / degree
                sigma = jnp.clip(mu_aff / mu, 0.0, 1.0) ** _SIGMA_POWER
                corr = circ(W(dsa), Winv(dza))
                return _add(_add(neg, corr, -1.0), e, sigma * mu)

            ds = jax.lax.cond(i == 0, lambda: neg, combined)
            dx, dsv, dz, st_i = newton(ds)
            ap, ad = max_step(s, dsv), max_step(z, dz)
            if not split:
                ap = ad = jnp.minimum(ap, ad)
            return dsv, dz, dx, jnp.stack([ap, ad]), struggled | st_i

        zero = _Pt(jnp.zeros_like(s.m), jnp.zeros_like(s.c), jnp.zeros_like(s.q))
        carry0 = (zero, zero, jnp.zeros_like(x), jnp.zeros((2,), dtype), jnp.asarray(False))
        dsv, dz, dx, amax, struggled = jax.lax.fori_loop(0, 2, pc, carry0)
        frac = _STEP_SPLIT if split else _STEP
        alpha_p, alpha_d = jnp.minimum(1.0, frac * amax[0]), jnp.minimum(1.0, frac * amax[1])
        alpha = jnp.minimum(alpha_p, alpha_d)

        def initial_point():  # from x0 = dx (W = I, rhs0): s = h - G x0, z = G x0 - h, shifted
            r0 = _add(h, G(dx), -1.0)
            return dx, shift(r0), shift(_Pt(-r0.m, -r0.c, -r0.q))

        def step():
            return x + alpha_p * dx, _add(s, dsv, alpha_p), _add(z, dz, alpha_d)

        x_n, s_n, z_n = jax.lax.cond(init, initial_point, step)
        k_n = st.k + 1
        # score the candidate only once the iterate's own relative complementarity (which tracks
        # the candidate's gap to 1-3% on teacher data) is within _SCORE_NEAR · tol, every
        # _SCORE_EVERY-th iteration (for the Farkas check of an infeasible problem), and at the
        # last iteration (warm solve at (200, 10, 1004), 43 iterations: 2.69 -> 2.60 s)
        scaled = jnp.sum(c * x_n)  # the objective, scaled
        if not mm:
            scaled = scaled + 0.5 * jnp.sum(A(x_n[:, 1:]) ** 2) + 0.5 * yy
        sz = _dot(s_n, z_n)
        # s_n and z_n are interior, and every entry of x_n enters s_n (the cones' rows are -x):
        # the iterate is finite iff sᵀz and Σx are (no pass over the iterate of its own)
        iterate_ok = jnp.isfinite(sz) & jnp.isfinite(jnp.sum(x_n))
        near = sz <= _SCORE_NEAR * tol * jnp.maximum(1.0, jnp.abs(scaled))
        scored = iterate_ok & (init | near | (k_n % _SCORE_EVERY == 0) | (k_n >= max_iters))
        stale = (st.U, st.V, st.dual, st.cone_dual, st.opt)

        def fresh():
            """Score the candidate; its status (success, or infeasible once a Farkas ray is
            validated) and whether it is finite (else the last finite candidate is kept)."""
            U, V, dual, nu, opt = score(x_n, z_n)
            ok = init | (jnp.isfinite(opt.value) & jnp.isfinite(opt.gap))  # the initial point's need not be
            status = jnp.where((opt.gap <= tol) & (opt.residual <= tol), SUCCESS, _RUNNING)
            if mm:
                # a diverging dual iterate is a Farkas ray once max_margin_infeasibility validates it
                # (of (z_m, z_c): from the dual bound of the same multipliers, rescaled)
                eps = prog.farkas_residual(X, opt.dual_value)
                infeas = (status == _RUNNING) & (eps <= infeasible_tol) & ok & ~init
                tot = jnp.sum(jnp.maximum(z_n.m, 0.0))
                tot = jnp.where(tot > 0, tot, 1.0)
                dual = jnp.where(infeas, jnp.maximum(z_n.m, 0.0) / tot, dual)
                nu = jnp.where(infeas, jnp.maximum(z_n.c, 0.0).reshape(2, p, n) / tot, nu)
                inf_ = jnp.asarray(jnp.inf, dtype)
                opt = prog.Optimality(
                    jnp.where(infeas, inf_, opt.value), jnp.where(infeas, inf_, opt.dual_value),
                    jnp.where(infeas, eps, opt.gap), opt.residual,
                )
                status = jnp.where(infeas, INFEASIBLE, status)
            cand = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), (U, V, dual, nu, opt), stale)
            return cand, status.astype(jnp.int32), ok

        (U, V, dual, nu, opt), status, ok = jax.lax.cond(
            scored, fresh, lambda: (stale, jnp.asarray(_RUNNING, jnp.int32), jnp.asarray(True))
        )
        finite = iterate_ok & ok
        # a step that cannot move any more (or complementarity at the floating-point floor)
        stalled = (alpha < 1e-10) | (sz / degree < jnp.finfo(dtype).tiny * 1e10)
        status = jnp.where((status == _RUNNING) & stalled, NUMERICAL_ERROR, status)
        status = jnp.where((status == _RUNNING) & (k_n >= max_iters), MAX_ITERS, status)
        status = jnp.where(init, _RUNNING, status)  # the initial point is not scored for stopping
        status = jnp.where(finite, status, NUMERICAL_ERROR)
        # a non-finite iterate ends the loop (its candidate is never scored): (x, s, z) are not
        # returned, so they need no fallback
        return _State(
            x_n, s_n, z_n, k_n, status.astype(jnp.int32), U, V, dual, nu, opt, st.single & ~struggled & finite
        )

    st = jax.lax.while_loop(lambda st: st.status == _RUNNING, body, st0)
    return st.U, st.V, st.dual, st.cone_dual, st.opt, st.status, st.k
