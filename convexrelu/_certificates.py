"""Dual certificates of global optimality for two-layer ReLU networks.

The central quantity is the dual certificate (Wang & Pilanci, arXiv 2110.06488, §3)

    c(λ) = max_{‖u‖ ≤ 1} |λᵀ (X u)_+|.

On the closed cone ``K_j = {u : S_j ⊙ X u ≥ 0}`` (``S_j = 2 D_j - 1``) the ReLU is linear,
``(X u)_+ = D_j X u``, so with ``g = ±Xᵀ D_j λ``

    max_{u ∈ K_j, ‖u‖ ≤ 1} gᵀ u = ‖Π_{K_j}(g)‖,     maximizer Π_{K_j}(g) / ‖Π_{K_j}(g)‖,

and ``c(λ)`` is the largest of these over all patterns and both signs. The projection onto the
polyhedral cone is :func:`convexrelu.cone_projection` (exact, by nonnegative least squares),
vmapped over patterns and signs.

Two optimality certificates of a network are built on ``c``:

* regularized (Wang, Lacotte & Pilanci, arXiv 2006.05900): a stationary network is a global
  minimizer of ``ℓ(f(θ; X), y) + β/2 ‖θ‖²`` iff ``c(r) ≤ β`` with ``r = -∇_f ℓ``;
* max-margin (Wang & Pilanci, arXiv 2110.06488): a KKT point of ``min ½‖θ‖² s.t. y_i f_i ≥ 1``
  with multipliers ``μ`` is globally optimal iff ``c(y ⊙ μ) ≤ 1``; then ``1ᵀμ = ½‖θ‖² = P*``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._cones import project_onto_cone
from ._losses import LOSSES, loss_terms
from ._network import Network, forward, param_norm_sq
from ._patterns import enumerate_patterns, pattern_count, sample_patterns
from ._validation import (
    check_int,
    check_key,
    check_network,
    check_patterns,
    check_scalar,
    check_targets,
    check_X,
    check_Xy,
    is_concrete,
)

# Enumerate every pattern by default when Cover's count is at most this.
_MAX_ENUMERATED = 4096


class DualCertificate(NamedTuple):
    """The value and maximizer of ``c(λ) = max_{‖u‖≤1} |λᵀ (Xu)_+|``.

    Attributes:
        value: ``c(λ)``.
        u: a maximizer, ``‖u‖ = 1`` (zero when ``c(λ) = 0``), shape ``(d,)``.
        sign: ``s ∈ {+1, -1}`` with ``s λᵀ (X u)_+ = c(λ)``.
        index: index of the maximizing pattern in ``patterns`` (-1 when found by local ascent
            outside the sampled patterns).
        pattern: the maximizing pattern ``D`` (``(n,)`` bool).
        exact: True when ``patterns`` held every activation pattern of ``X`` (then ``value`` is
            ``c(λ)`` itself); False for a sampled lower bound.
        method: ``"enumerated"``, ``"given"`` or ``"sampled+ascent"``.
        values: per-pattern maxima ``‖Π_{K_j}(±Xᵀ D_j λ)‖``, shape ``(p, 2)`` (columns: sign +, -).
    """

    value: Array
    u: Array
    sign: Array
    index: Array
    pattern: Array
    exact: bool
    method: str
    values: Array


@eqx.filter_jit
def _per_pattern_maxima(X, lam, D):
    """``‖Π_{K_j}(s Xᵀ D_j λ)‖`` and the projections for every pattern and sign ``s = ±1``."""
    G = (D.astype(X.dtype) * lam[None, :]) @ X  # (p, d): Xᵀ D_j λ
    signs = jnp.array([1.0, -1.0], X.dtype)
    project_both_signs = jax.vmap(lambda pat, g: jax.vmap(lambda s: project_onto_cone(X, pat, s * g))(signs))
    P = project_both_signs(D, G)  # (p, 2, d)
    return jnp.linalg.norm(P, axis=-1), P


def _best_pattern(values, P, D):
    """The largest per-pattern maximum: ``(c, u, sign, j, D_j)`` with ``u`` normalized."""
    flat = jnp.argmax(values.reshape(-1))
    j, k = flat // 2, flat % 2
    c = values[j, k]
    u = P[j, k]
    u = jnp.where(c > 0, u / jnp.where(c > 0, c, 1.0), jnp.zeros_like(u))
    sign = jnp.where(k == 0, 1, -1)
    return c, u, sign, j, D[j]


def _relu_value(X, lam, u):
    """``λᵀ (X u)_+``."""
    return jnp.dot(lam, jax.nn.relu(X @ u))


def _abs_relu_value(X, lam, u):
    """``|λᵀ (X u)_+|``, the objective of the sphere ascent."""
    return jnp.abs(_relu_value(X, lam, u))


def _best_on_own_cone(X, lam, u):
    """``Π_K(s Xᵀ D λ) / ‖·‖`` on the closed cone ``K`` of ``u``'s pattern ``D``, ``s = sign λᵀ(Xu)_+``.

    ``u`` lies in that cone, so the value never decreases; ``u`` itself when the projection is 0.
    """
    pat = X @ u >= 0
    s = jnp.sign(_relu_value(X, lam, u))
    s = jnp.where(s == 0, 1.0, s).astype(X.dtype)
    g = s * (X.T @ (pat.astype(X.dtype) * lam))
    p = project_onto_cone(X, pat, g)
    nrm = jnp.linalg.norm(p)
    return jnp.where(nrm > 0, p / jnp.where(nrm > 0, nrm, 1.0), u)


class _AscentState(NamedTuple):
    """The current point on the sphere and the best point seen with its value."""

    u: Array
    best_u: Array
    best: Array


_STEP_MULTIPLIERS = (4.0, 2.0, 1.0, 0.5)  # the sphere ascent cycles through these step sizes


def _ascent_step(X, lam, lr0, state: _AscentState, t):
    """``v = (u + η_t grad_S) / ‖·‖``, then :func:`_best_on_own_cone`; keep the best point.

    ``grad_S = g - (gᵀu) u`` is the Riemannian gradient on the sphere of ``g = ∇|λᵀ(Xu)_+|``,
    and ``η_t = lr0 · (4, 2, 1, ½)[t mod 4]``.
    """
    u = state.u
    tiny = jnp.finfo(X.dtype).tiny
    grad = jax.grad(_abs_relu_value, argnums=2)(X, lam, u)
    grad = grad - jnp.dot(grad, u) * u  # Riemannian gradient on the sphere
    v = u + lr0 * jnp.array(_STEP_MULTIPLIERS, X.dtype)[t % 4] * grad
    v = v / jnp.maximum(jnp.linalg.norm(v), tiny)
    v = _best_on_own_cone(X, lam, v)
    hv = _abs_relu_value(X, lam, v)
    better = hv > state.best
    new = _AscentState(u=v, best_u=jnp.where(better, v, state.best_u), best=jnp.where(better, hv, state.best))
    return new, None


@eqx.filter_jit
def _sphere_ascent(X, lam, u0, *, steps: int):
    """Projected (sub)gradient ascent of ``|λᵀ(Xu)_+|`` on the unit sphere, keeping the best point.

    Each step is followed by the exact maximization over the closed cone of the current point's
    pattern, which never decreases the value (the current point lies in that cone).
    """
    lr0 = 1.0 / jnp.maximum(jnp.linalg.norm(X) * jnp.linalg.norm(lam), jnp.finfo(X.dtype).tiny)
    u0 = _best_on_own_cone(X, lam, u0)
    init = _AscentState(u=u0, best_u=u0, best=_abs_relu_value(X, lam, u0))
    final, _ = jax.lax.scan(functools.partial(_ascent_step, X, lam, lr0), init, jnp.arange(steps))
    return final.best, final.best_u


def dual_certificate(
    X: Float[Array, "n d"],
    lam: Float[Array, " n"],
    *,
    patterns: Bool[Array, "p n"] | None = None,
    key: PRNGKeyArray | None = None,
    num_samples: int = 2048,
    ascent_steps: int = 200,
    max_enumerated: int = _MAX_ENUMERATED,
) -> DualCertificate:
    """The dual certificate ``c(λ) = max_{‖u‖≤1} |λᵀ (X u)_+|`` and its maximizer.

    Per pattern ``D_j`` and sign, ``max_{u ∈ K_j, ‖u‖ ≤ 1} ±λᵀ D_j X u = ‖Π_{K_j}(±Xᵀ D_j λ)‖``
    (exact cone projection, see :func:`cone_projection`); ``c(λ)`` is the maximum over patterns.

    * ``patterns`` given: the maximum over those patterns' cones (``method="given"``; the value
      is ``c(λ)`` restricted to them — exact for ``c`` when they are all the patterns).
    * ``patterns=None`` and Cover's bound ``2 Σ_{k<r} C(n-1, k) ≤ max_enumerated``: every
      pattern from ``enumerate_patterns(X)``; exact (``method="enumerated"``).
    * otherwise: ``num_samples`` sampled patterns (needs ``key``), then projected gradient ascent
      of ``|λᵀ (Xu)_+|`` on the sphere from the best sampled ``u``; a lower bound
      (``exact=False``, ``method="sampled+ascent"``).

    Host-side dispatch; the per-pattern computation is jitted and vmapped.

    Args:
        X: data ``(n, d)``.
        lam: dual vector ``λ`` (for max-margin, ``λ = y ⊙ μ``), shape ``(n,)``.
        patterns: optional boolean ``(p, n)`` patterns.
        key: PRNG key, needed only when patterns are sampled.
        num_samples: number of sampled patterns (keyword-only int).
        ascent_steps: local ascent steps after sampling (keyword-only int).
        max_enumerated: largest Cover count for which every pattern is enumerated.

    Returns:
        A :class:`DualCertificate`.

    Raises:
        ValueError: on shape mismatches, non-finite ``λ``, or sampling without a ``key``; negative
            ``num_samples``, ``ascent_steps`` or ``max_enumerated``.
        TypeError: a complex, float16 or non-numeric ``X`` or ``λ``; a size that is not an int.

    Reference: Wang & Pilanci, "The Convex Geometry of Backpropagation", arXiv 2110.06488.

    Example:
        >>> cert = dual_certificate(X, y * mu)
        >>> bool(cert.value <= 1 + 1e-6)   # μ dual feasible
    """
    X = check_X(X)
    n = X.shape[0]
    lam = check_targets(lam, n, name="lam", dtype=X.dtype)
    num_samples = check_int("num_samples", num_samples, minimum=0)
    ascent_steps = check_int("ascent_steps", ascent_steps, minimum=0)
    max_enumerated = check_int("max_enumerated", max_enumerated, minimum=0)
    if patterns is not None:
        return _certificate_over(X, lam, check_patterns(patterns, n), exact=False, method="given")

    if not is_concrete(X, lam):
        raise ValueError("dual_certificate chooses its patterns on the host: call it outside jit, or pass patterns=")
    rank = max(int(np.linalg.matrix_rank(np.asarray(X))), 1)
    if pattern_count(n, rank) <= max_enumerated:
        D = check_patterns(enumerate_patterns(X, max_patterns=max(max_enumerated, 1)), n)
        return _certificate_over(X, lam, D, exact=True, method="enumerated")

    if key is None:
        raise ValueError(
            f"X has too many activation patterns to enumerate (Cover count > {max_enumerated}); "
            "pass key= to sample them, or pass patterns="
        )
    if num_samples < 1:
        raise ValueError("num_samples must be positive when patterns are sampled")
    key = check_key(key)
    D = check_patterns(sample_patterns(X, num=num_samples, key=key), n)
    sampled = _certificate_over(X, lam, D, exact=False, method="sampled+ascent")
    return _improve_by_ascent(X, lam, sampled, steps=ascent_steps) if ascent_steps > 0 else sampled


def _certificate_over(X, lam, D, *, exact: bool, method: str) -> DualCertificate:
    """The maximum of ``‖Π_{K_j}(±Xᵀ D_j λ)‖`` over the patterns ``D`` and its maximizer."""
    values, P = _per_pattern_maxima(X, lam, D)
    c, u, sign, j, pat = _best_pattern(values, P, D)
    return DualCertificate(c, u, sign, j, pat, exact, method, values)


def _improve_by_ascent(X, lam, cert: DualCertificate, *, steps: int) -> DualCertificate:
    """Replace the sampled maximizer by the sphere ascent's from it when that is clearly larger."""
    c2, u2 = _sphere_ascent(X, lam, cert.u, steps=steps)
    if not bool(c2 > cert.value * (1 + 10 * jnp.finfo(X.dtype).eps)):
        return cert
    sign = jnp.where(_relu_value(X, lam, u2) >= 0, 1, -1)
    return cert._replace(value=c2, u=u2, sign=sign, index=jnp.asarray(-1), pattern=X @ u2 >= 0)


# ----------------------------------------------------------------------------------------------
# Certificates of a network.
# ----------------------------------------------------------------------------------------------


class RegularizedCertificate(NamedTuple):
    """Global optimality certificate of a network for ``ℓ(f(θ;X), y) + β/2 ‖θ‖²``.

    Attributes:
        value: ``c(r) / β`` with ``r = -∇_f ℓ``; a stationary network is optimal iff ``≤ 1``.
        stationarity: relative Clarke stationarity residual ``min ‖g‖ / (β ‖θ‖)`` over the
            Clarke subgradients ``g`` of the objective: where a sample lies on a neuron's kink
            (``|x_iᵀ w_k| ≤ tie_tol ‖x_i‖ ‖w_k‖``) the ReLU derivative is any ``σ ∈ [0, 1]``,
            chosen per neuron by bounded least squares. 0 at a stationary point.
        residual: ``r``, shape ``(n,)``.
        dual: the :class:`DualCertificate` of ``r``.
    """

    value: Array
    stationarity: Array
    residual: Array
    dual: DualCertificate


def regularized_certificate(
    net: Network,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    beta: float,
    loss: str = "squared",
    tie_tol: float = 1e-7,
    patterns: Bool[Array, "p n"] | None = None,
    key: PRNGKeyArray | None = None,
    **kwargs,
) -> RegularizedCertificate:
    """Optimality certificate ``max_{‖u‖≤1} |rᵀ (X u)_+| / β`` of a regularized network.

    With ``r = -∇_f ℓ(f(θ; X), y)`` (summed loss), a network that is stationary for
    ``ℓ(f(θ; X), y) + β/2 ‖θ‖²`` is a global minimizer iff this value is ``≤ 1`` (it is then the
    image of an optimal solution of the convex program; Wang, Lacotte & Pilanci, arXiv
    2006.05900, and Pilanci & Ergen, arXiv 2002.10553).

    Args:
        net: the network.
        X, y: data ``(n, d)`` and targets ``(n,)`` (labels ±1 unless ``loss="squared"``).
        beta: regularization strength ``β > 0``.
        loss: ``"squared"``, ``"logistic"`` or ``"exponential"``.
        tie_tol: relative threshold for a sample to lie on a neuron's kink (see
            :class:`RegularizedCertificate`).
        patterns, key, **kwargs: passed to :func:`dual_certificate`.

    Returns:
        A :class:`RegularizedCertificate`.

    Raises:
        ValueError: on shape mismatches, bad labels, ``β ≤ 0`` (in any scalar form), a negative
            ``tie_tol`` or an unknown loss.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    beta = check_scalar("beta", beta, lo=0.0)
    tie_tol = check_scalar("tie_tol", tie_tol, lo=0.0, lo_closed=True)
    if loss == "squared":
        X = check_X(X)
        y = check_targets(y, X.shape[0], dtype=X.dtype)
    else:
        X, y = check_Xy(X, y)
    check_network(net, X.shape[1])
    net = jax.tree_util.tree_map(lambda a: jnp.asarray(a).astype(X.dtype), net)

    r = -jax.grad(lambda f: jnp.sum(loss_terms(f, y, loss)))(forward(net, X))
    dual = dual_certificate(X, r, patterns=patterns, key=key, **kwargs)

    stationarity = _clarke_stationarity(net, X, r, beta, tie_tol)
    return RegularizedCertificate(dual.value / beta, stationarity, r, dual)


def _clarke_stationarity(net, X, r, beta, tie_tol):
    """``min_σ ‖∂_θ (ℓ + β/2‖θ‖²)‖ / (β‖θ‖)`` with ``σ_{ik} ∈ [0, 1]`` on the kinks (host-side)."""
    from scipy.optimize import lsq_linear

    Xn = np.asarray(X, np.float64)
    W1, w2 = np.asarray(net.W1, np.float64), np.asarray(net.w2, np.float64)
    rn = np.asarray(r, np.float64)
    Z = Xn @ W1
    tie = np.abs(Z) <= tie_tol * np.linalg.norm(Xn, axis=1)[:, None] * np.linalg.norm(W1, axis=0)[None, :]
    act = ((Z > 0) & ~tie).astype(np.float64)
    total = float(np.sum((beta * w2 - np.maximum(Z, 0.0).T @ rn) ** 2))  # ∂/∂w2
    for k in range(W1.shape[1]):
        g = beta * W1[:, k] - w2[k] * (Xn.T @ (act[:, k] * rn))  # ∂/∂W1[:, k] with σ = 0 on ties
        idx = np.flatnonzero(tie[:, k])
        if idx.size and w2[k] != 0:
            C = -w2[k] * Xn[idx].T * rn[idx][None, :]  # each kink adds σ_i · C[:, i]
            sol = lsq_linear(C, -g, bounds=(0.0, 1.0))
            g = g + C @ sol.x
        total += float(g @ g)
    scale = beta * math.sqrt(float(np.sum(W1**2) + np.sum(w2**2)))
    return jnp.asarray(math.sqrt(total) / max(scale, np.finfo(np.float64).tiny), X.dtype)


class KKTCertificate(NamedTuple):
    """KKT certificate of a network for ``min ½‖θ‖² s.t. y_i f(θ; x_i) ≥ 1``.

    Attributes:
        net: the network rescaled to minimum margin 1, ``θ̂ = θ / √(min_i y_i f_i)``.
        mu: multipliers ``μ ≥ 0`` (zero off the support vectors), shape ``(n,)``.
        lam: ``λ = y ⊙ μ``.
        residual: relative stationarity residual ``‖θ̂ - Σ_i μ_i y_i ∂_θ f(θ̂; x_i)‖ / ‖θ̂‖``.
        value: ``c(λ)``; a KKT point (small ``residual``) with ``c(λ) ≤ 1`` is a global optimum.
        primal: ``½ ‖θ̂‖²`` (the non-convex objective; equals ``P*`` at a global optimum).
        dual_value: ``1ᵀ μ`` (equals ``½‖θ̂‖²`` at an exact KKT point, by Euler's identity).
        margin: normalized margin ``γ(θ) = 1 / ‖θ̂‖²`` (``= 1/(2 P*)`` at a global optimum).
        support: boolean ``(n,)`` mask of the support vectors used.
        dual: the :class:`DualCertificate` of ``λ``.
    """

    net: Network
    mu: Array
    lam: Array
    residual: Array
    value: Array
    primal: Array
    dual_value: Array
    margin: Array
    support: Array
    dual: DualCertificate


def kkt_certificate(
    net: Network,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    support_tol: float = 1e-4,
    tie_tol: float = 1e-7,
    patterns: Bool[Array, "p n"] | None = None,
    key: PRNGKeyArray | None = None,
    **kwargs,
) -> KKTCertificate:
    """KKT multipliers of a max-margin network and their dual certificate ``c(y ⊙ μ)``.

    The network is rescaled to minimum margin 1 (``θ̂ = θ / √q``, ``q = min_i y_i f_i``; the model
    is 2-homogeneous). Multipliers ``μ ≥ 0`` supported on the support vectors
    (``y_i f(θ̂; x_i) ≤ 1 + support_tol``) minimize the stationarity residual
    ``‖θ̂ - Σ_i μ_i y_i ∂_θ f(θ̂; x_i)‖`` (NNLS). For a sample on a neuron's kink
    (``|x_iᵀ w_k| ≤ tie_tol ‖x_i‖ ‖w_k‖``) the Clarke subgradient of ``relu`` is ``σ ∈ [0, 1]``:
    its contribution ``μ_i σ_{ik}`` becomes a variable ``ν_{ik} ∈ [0, μ_i]``, written as
    ``ν_{ik} + ν'_{ik} = μ_i`` with ``ν, ν' ≥ 0`` and enforced by heavily weighted rows
    (Lawson & Hanson's weighting method for equality constraints).

    Theory (Wang & Pilanci, arXiv 2110.06488): at a KKT point, Euler's identity gives
    ``‖θ̂‖² = 2 Σ_i μ_i y_i f_i = 2 · 1ᵀμ``; every live balanced neuron has
    ``|λᵀ (X ŵ)_+| = 1`` so ``c(λ) ≥ 1``, and the KKT point is globally optimal iff
    ``c(λ) ≤ 1``, in which case ``1ᵀμ = ½‖θ̂‖² = P*`` and ``γ(θ) = 1/(2 P*)``.

    Host-side (NumPy/SciPy NNLS for the multipliers); ``c(λ)`` from :func:`dual_certificate`.

    Args:
        net: a network that separates the data.
        X, y: data ``(n, d)`` and labels ±1.
        support_tol: relative margin slack defining the support vectors.
        tie_tol: relative threshold for a sample to lie on a neuron's kink.
        patterns, key, **kwargs: passed to :func:`dual_certificate`.

    Returns:
        A :class:`KKTCertificate`.

    Raises:
        ValueError: on shape mismatches, bad labels, or a network that does not separate the data.
    """
    X, y = check_Xy(X, y)
    check_network(net, X.shape[1])
    support_tol = check_scalar("support_tol", support_tol, lo=0.0, lo_closed=True)
    tie_tol = check_scalar("tie_tol", tie_tol, lo=0.0, lo_closed=True)
    net = jax.tree_util.tree_map(lambda a: jnp.asarray(a).astype(X.dtype), net)
    q = y * forward(net, X)
    qmin = float(jnp.min(q))
    if not qmin > 0:
        raise ValueError(f"the network does not separate the data (min_i y_i f_i = {qmin:.3g} ≤ 0)")
    s = 1.0 / math.sqrt(qmin)
    net_hat = Network(net.W1 * s, net.w2 * s)
    qh = np.asarray(q) / qmin
    support = qh <= 1.0 + support_tol
    sv = np.flatnonzero(support)

    mu_sv, residual = _kkt_multipliers(net_hat, X, y, sv, tie_tol)
    mu = np.zeros(X.shape[0])
    mu[sv] = mu_sv
    mu = jnp.asarray(mu, X.dtype)
    lam = y * mu
    dual = dual_certificate(X, lam, patterns=patterns, key=key, **kwargs)
    primal = 0.5 * param_norm_sq(net_hat)
    return KKTCertificate(
        net=net_hat,
        mu=mu,
        lam=lam,
        residual=jnp.asarray(residual, X.dtype),
        value=dual.value,
        primal=primal,
        dual_value=jnp.sum(mu),
        margin=1.0 / (2.0 * primal),
        support=jnp.asarray(support),
        dual=dual,
    )


def _kkt_multipliers(net_hat: Network, X, y, sv, tie_tol):
    """Multipliers ``μ ≥ 0`` on the support vectors ``sv`` minimizing ``‖θ̂ - Σ_i μ_i y_i ∂_θ f_i‖``.

    Host-side NNLS (SciPy) on the system of :func:`_kkt_system`. Returns ``(μ_sv, residual)``,
    the residual relative to ``‖θ̂‖``.
    """
    from scipy.optimize import nnls as scipy_nnls

    W1, w2 = np.asarray(net_hat.W1, np.float64), np.asarray(net_hat.w2, np.float64)
    theta = np.concatenate([W1.reshape(-1), w2])
    B, rhs = _kkt_system(np.asarray(X, np.float64), np.asarray(y, np.float64), W1, w2, sv, tie_tol)
    z, _ = scipy_nnls(B, rhs, maxiter=50 * max(B.shape[1], 1)) if B.shape[1] else (np.zeros(0), 0.0)
    fit = B[: theta.size] @ z
    residual = np.linalg.norm(theta - fit) / max(np.linalg.norm(theta), np.finfo(np.float64).tiny)
    return z[: len(sv)], residual


def _kkt_system(Xn, yn, W1, w2, sv, tie_tol):
    """The NNLS system ``min_{z ≥ 0} ‖B z - rhs‖`` of the KKT stationarity condition.

    Columns ``y_i ∂_θ f(θ̂; x_i)`` for ``i ∈ sv``, with ``relu'`` taken as 0 on the kinks
    ``|x_iᵀ w_k| ≤ tie_tol ‖x_i‖ ‖w_k‖``. There ``relu'`` is a free ``σ ∈ [0, 1]`` (Clarke), so a
    variable ``ν_{ik} = μ_i σ_{ik}`` adds ``ν_{ik} y_i w2_k x_i`` to ``∂/∂W1[:, k]``; with a slack
    ``ν'_{ik} ≥ 0`` the rows ``weight · (ν_{ik} + ν'_{ik} - μ_i) = 0`` enforce ``ν_{ik} ≤ μ_i``
    (Lawson & Hanson's weighting method for equality constraints). ``z = (μ_sv, ν, ν')``,
    ``rhs = (θ̂, 0)``.
    """
    d, m = W1.shape
    theta = np.concatenate([W1.reshape(-1), w2])
    Z = Xn @ W1  # (n, m) pre-activations
    tie = np.abs(Z) <= tie_tol * np.linalg.norm(Xn, axis=1)[:, None] * np.linalg.norm(W1, axis=0)[None, :]
    act = ((Z > 0) & ~tie).astype(np.float64)
    gW = Xn[:, :, None] * (act * w2[None, :])[:, None, :]  # (n, d, m): ∂f_i/∂W1
    G = np.concatenate([gW.reshape(Xn.shape[0], -1), np.maximum(Z, 0.0)], axis=1)
    cols = [yn[i] * G[i] for i in sv]  # y_i ∂_θ f(θ̂; x_i)
    ties = [(a, k) for a, i in enumerate(sv) for k in range(m) if tie[i, k] and w2[k] != 0]
    t = len(ties)
    base = np.stack(cols, axis=1) if cols else np.zeros((theta.size, 0))
    if t == 0:
        return base, theta
    tie_cols = np.zeros((theta.size, t))
    for c, (a, k) in enumerate(ties):
        i = sv[a]
        col = np.zeros((d, m))
        col[:, k] = yn[i] * w2[k] * Xn[i]
        tie_cols[:, c] = np.concatenate([col.reshape(-1), np.zeros(m)])
    weight = 1e4 * max(1.0, float(np.max(np.abs(base))) if base.size else 1.0)
    E = np.zeros((t, len(sv) + 2 * t))
    for c, (a, _) in enumerate(ties):
        E[c, a] = -weight
        E[c, len(sv) + c] = weight
        E[c, len(sv) + t + c] = weight
    top = np.concatenate([base, tie_cols, np.zeros((theta.size, t))], axis=1)
    return np.concatenate([top, E], axis=0), np.concatenate([theta, np.zeros(t)])
