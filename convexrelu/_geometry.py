"""The dual geometry of the max-margin program: the rectified ellipsoid, its polar, the spikes.

Wang & Pilanci (arXiv 2110.06488) draw the dual of the convex max-margin program with three sets:

* the *rectified ellipsoid* ``Q = {(X u)_+ : ‖u‖ ≤ 1} ⊂ R^n``. Since ``(X(t u))_+ = t (X u)_+``
  for ``t ≥ 0``, ``Q = {t z : t ∈ [0, 1], z ∈ S}`` with ``S = {(X u)_+ : ‖u‖ = 1}``;
* its (absolute) polar ``Q* = {λ : max_{z ∈ Q} |λᵀ z| ≤ 1} = {λ : c(λ) ≤ 1}``, with the dual
  certificate ``c(λ) = max_{‖u‖ ≤ 1} |λᵀ (X u)_+|``. The max-margin dual is
  ``max yᵀλ s.t. λ ∈ Q*, y ⊙ λ ≥ 0`` (``λ = y ⊙ μ``);
* the *spikes* of ``λ``: the maximizers ``u`` of ``|λᵀ (X u)_+|`` on the unit sphere. At the
  optimum ``λ*`` every nonzero block ``u_j`` (sign ``+``) or ``v_j`` (sign ``-``) of an optimal
  primal solution points along a spike (complementary slackness).

Per pattern ``D_j`` and sign ``s``, ``max_{u ∈ K_j, ‖u‖ ≤ 1} s λᵀ D_j X u = ‖Π_{K_j}(s Xᵀ D_j λ)‖``
with the unique maximizer ``Π / ‖Π‖`` (a linear function on a cone intersected with the ball), so
the spikes are exactly the normalized projections whose norm equals ``c(λ)``, once the patterns
are all of them. :func:`dual_trajectory` follows the KKT multipliers ``λ(t)`` of a gradient-descent
run towards ``λ*`` and its neurons towards the spikes of ``λ*``.

Host-side functions (the number of spikes depends on the data): not jittable.

Reference: Wang & Pilanci, "The Convex Geometry of Backpropagation: Neural Network Gradient Flows
Converge to Extreme Points of the Dual Convex Program", arXiv 2110.06488.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ._certificates import kkt_certificate
from ._cones import project_onto_cone
from ._network import Network
from ._patterns import enumerate_patterns, pattern_count
from ._solution import ConvexSolution
from ._train import TrainResult
from ._validation import check_network, check_patterns, check_targets, check_X, check_Xy

_MAX_ENUMERATED = 4096  # enumerate every pattern by default when Cover's count is at most this


# ----------------------------------------------------------------------------------------------
# Input checks.
# ----------------------------------------------------------------------------------------------


def _check_count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive Python int, got {value!r}")
    return value


def _check_unit_tol(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _all_patterns(X, patterns, max_enumerated: int) -> tuple[Array, bool]:
    """``(D, exact)``: the given patterns (``exact=False``), or every pattern of ``X``."""
    n = X.shape[0]
    if patterns is not None:
        return check_patterns(patterns, n), False
    rank = max(int(np.linalg.matrix_rank(np.asarray(X))), 1)
    if pattern_count(n, rank) > max_enumerated:
        raise ValueError(
            f"X ({n} samples, rank {rank}) has {pattern_count(n, rank)} activation patterns, more than "
            f"max_enumerated = {max_enumerated}: pass patterns= (e.g. sample_patterns) or raise max_enumerated"
        )
    return check_patterns(enumerate_patterns(X, max_patterns=max(max_enumerated, 1)), n), True


# ----------------------------------------------------------------------------------------------
# The rectified ellipsoid Q and the polar boundary of Q*.
# ----------------------------------------------------------------------------------------------


class EllipsoidPoints(NamedTuple):
    """Points ``z = (X u)_+`` of the rectified ellipsoid for unit directions ``u``.

    Attributes:
        points: ``z_k = (X u_k)_+``, shape ``(num, n)``.
        directions: the unit ``u_k``, shape ``(num, d)``.
        exact: True for ``d = 2`` (the angle grid, in order along the circle), False when sampled.
    """

    points: Float[Array, "num n"]
    directions: Float[Array, "num d"]
    exact: bool


def rectified_ellipsoid(X: Float[Array, "n d"], *, num: int, key: PRNGKeyArray | None = None) -> EllipsoidPoints:
    """Points of ``S = {(X u)_+ : ‖u‖ = 1}``, whose star hull ``{t z : t ∈ [0, 1], z ∈ S}`` is ``Q``.

    ``Q = {(X u)_+ : ‖u‖ ≤ 1}`` is positively homogeneous in ``u``, so every point of ``Q`` is
    ``t z`` with ``z ∈ S`` and ``t ∈ [0, 1]``, and ``max_{z ∈ Q} |λᵀ z| = max_{z ∈ S} |λᵀ z|``.

    * ``d = 2``: ``u_k = (cos t_k, sin t_k)``, ``t_k = 2πk / num``; every point lies exactly on the
      closed curve ``S``, in order along it (joined in order they draw ``S`` up to the grid).
    * ``d ≠ 2``: ``u_k`` uniform on the unit sphere (normalized Gaussians); needs ``key``.

    Args:
        X: data ``(n, d)``.
        num: number of points (keyword-only Python int > 0).
        key: PRNG key, required when ``d ≠ 2``.

    Returns:
        An :class:`EllipsoidPoints` in ``X``'s dtype.

    Raises:
        ValueError: bad ``X`` or ``num``, or ``d ≠ 2`` without ``key``.

    Reference: Wang & Pilanci, arXiv 2110.06488 (the rectified ellipsoid and its polar).

    Example:
        >>> E = rectified_ellipsoid(X2d, num=720)
        >>> plt.plot(*E.points.T)          # for n = 2: the curve S in the λ-plane
    """
    X = check_X(X)
    num = _check_count("num", num)
    d = X.shape[1]
    if d == 2:
        t = 2.0 * math.pi * jnp.arange(num, dtype=X.dtype) / num
        U = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    else:
        if key is None:
            raise ValueError(f"rectified_ellipsoid samples the sphere when d = {d} ≠ 2: pass key=")
        G = jax.random.normal(key, (num, d), X.dtype)
        U = G / jnp.linalg.norm(G, axis=1, keepdims=True)
    return EllipsoidPoints(jax.nn.relu(U @ X.T), U, d == 2)


@jax.jit
def _pattern_maxima(X, lam, D):
    """``‖Π_{K_j}(s Xᵀ D_j λ)‖`` (p, 2) and the projections (p, 2, d), signs ``s = (+1, -1)``."""
    G = (D.astype(X.dtype) * lam[None, :]) @ X  # (p, d): Xᵀ D_j λ
    signs = jnp.array([1.0, -1.0], X.dtype)
    P = jax.vmap(lambda pat, g: jax.vmap(lambda s: project_onto_cone(X, pat, s * g))(signs))(D, G)
    return jnp.linalg.norm(P, axis=-1), P


class PolarBoundary(NamedTuple):
    """Points ``e / c(e)`` of the boundary of ``Q* = {λ : c(λ) ≤ 1}`` for unit directions ``e``.

    Attributes:
        points: ``e_k / c(e_k)``, shape ``(num, n)`` (``inf`` where ``c(e_k) = 0``: ``Q*`` is
            unbounded along ``e_k``).
        directions: the unit ``e_k ∈ R^n``, shape ``(num, n)``.
        values: ``c(e_k)``, shape ``(num,)``.
        exact: True when every pattern was enumerated (``c`` exact).
    """

    points: Float[Array, "num n"]
    directions: Float[Array, "num n"]
    values: Float[Array, " num"]
    exact: bool


def polar_boundary(
    X: Float[Array, "n d"],
    *,
    num: int,
    key: PRNGKeyArray | None = None,
    patterns: Bool[Array, "p n"] | None = None,
    max_enumerated: int = _MAX_ENUMERATED,
) -> PolarBoundary:
    """The boundary of the polar ``Q* = {λ : c(λ) ≤ 1}``, ``c(λ) = max_{‖u‖≤1} |λᵀ(Xu)_+|``.

    ``c`` is a gauge (positively homogeneous, convex), so the boundary point of ``Q*`` along a unit
    direction ``e`` is ``e / c(e)``. ``c(e)`` is the exact per-pattern maximum
    ``max_j ‖Π_{K_j}(±Xᵀ D_j e)‖`` (see :func:`dual_spikes`), vmapped over directions.

    * ``n = 2``: ``e_k = (cos t_k, sin t_k)``, ``t_k = 2πk / num``, in order along the boundary.
    * ``n ≠ 2``: ``e_k`` uniform on the unit sphere of ``R^n``; needs ``key``.

    Args:
        X: data ``(n, d)``.
        num: number of directions (keyword-only Python int > 0).
        key: PRNG key, required when ``n ≠ 2``.
        patterns: boolean ``(p, n)`` patterns; default every pattern of ``X`` (exact).
        max_enumerated: the largest Cover count enumerated when ``patterns`` is None.

    Returns:
        A :class:`PolarBoundary` in ``X``'s dtype.

    Raises:
        ValueError: bad ``X``/``num``/``patterns``, ``n ≠ 2`` without ``key``, or too many patterns
            to enumerate.

    Reference: Wang & Pilanci, arXiv 2110.06488.
    """
    X = check_X(X)
    num = _check_count("num", num)
    n = X.shape[0]
    D, exact = _all_patterns(X, patterns, _check_count("max_enumerated", max_enumerated))
    if n == 2:
        t = 2.0 * math.pi * jnp.arange(num, dtype=X.dtype) / num
        E = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    else:
        if key is None:
            raise ValueError(f"polar_boundary samples directions when n = {n} ≠ 2: pass key=")
        G = jax.random.normal(key, (num, n), X.dtype)
        E = G / jnp.linalg.norm(G, axis=1, keepdims=True)
    values = jax.vmap(lambda e: jnp.max(_pattern_maxima(X, e, D)[0]))(E)
    points = E / values[:, None]  # c(e) = 0 gives inf: Q* unbounded along e (documented)
    return PolarBoundary(points, E, values, exact)


# ----------------------------------------------------------------------------------------------
# Spikes and extreme points.
# ----------------------------------------------------------------------------------------------


class DualSpikes(NamedTuple):
    """Every maximizer direction of ``|λᵀ (X u)_+|`` on the unit sphere.

    Attributes:
        directions: unit spikes ``u_k``, shape ``(k, d)`` (``k = 0`` when ``c(λ) = 0``).
        points: ``z_k = (X u_k)_+``, the spikes' points of ``Q``, shape ``(k, n)``.
        signs: ``s_k ∈ {+1, -1}`` with ``s_k λᵀ z_k = values[k]``, shape ``(k,)`` int.
        values: ``‖Π_{K_j}(s_k Xᵀ D_j λ)‖`` of each spike (within ``tol`` of ``value``), ``(k,)``.
        patterns: the pattern ``D_j`` whose cone gave each spike, boolean ``(k, n)``.
        index: ``j``, the row of that pattern in the patterns searched, shape ``(k,)`` int.
        value: ``c(λ) = max_{‖u‖≤1} |λᵀ (X u)_+|``.
        exact: True when every pattern was enumerated: then ``value`` is ``c(λ)`` and the spikes
            are all the maximizers (up to ``tol``); False for given patterns (restricted to them).
    """

    directions: Float[Array, "k d"]
    points: Float[Array, "k n"]
    signs: Int[Array, " k"]
    values: Float[Array, " k"]
    patterns: Bool[Array, "k n"]
    index: Int[Array, " k"]
    value: Float[Array, ""]
    exact: bool


def _dedup(order, U, dedup_tol):
    """Greedy: keep a candidate unless its direction is within ``dedup_tol`` (cosine) of a kept one."""
    kept = []
    for i in order:
        if all(U[i] @ U[k] < 1.0 - dedup_tol for k in kept):
            kept.append(i)
    return np.asarray(kept, dtype=np.int64)


def dual_spikes(
    X: Float[Array, "n d"],
    lam: Float[Array, " n"],
    *,
    patterns: Bool[Array, "p n"] | None = None,
    tol: float = 1e-6,
    dedup_tol: float = 1e-9,
    max_enumerated: int = _MAX_ENUMERATED,
) -> DualSpikes:
    """The spikes of ``λ``: all unit maximizers of ``|λᵀ (X u)_+|``, with pattern, sign and value.

    For every pattern ``D_j`` and sign ``s``, ``max_{u ∈ K_j, ‖u‖ ≤ 1} s λᵀ D_j X u
    = ‖Π_{K_j}(s Xᵀ D_j λ)‖`` with the unique maximizer ``Π / ‖Π‖`` (exact cone projection, the
    computation behind :func:`dual_certificate`). A spike is a pattern/sign with
    ``‖Π‖ ≥ (1 - tol) c(λ)``; its direction is ``Π/‖Π‖``. A maximizer on the boundary of several
    cones appears once per cone: directions with cosine ``≥ 1 - dedup_tol`` are merged (the one of
    largest value is kept). Every unit maximizer lies in some closed cone ``K_j`` and is that
    cone's maximizer, so with every pattern enumerated the spikes are all of them.

    Args:
        X: data ``(n, d)``.
        lam: ``λ`` (for max-margin, ``y ⊙ μ``), shape ``(n,)``.
        patterns: boolean ``(p, n)`` patterns to search; default every pattern of ``X`` (exact).
        tol: relative tolerance in ``[0, 1)`` of a spike's value below ``c(λ)``.
        dedup_tol: cosine tolerance in ``[0, 1)`` for identical directions.
        max_enumerated: the largest Cover count enumerated when ``patterns`` is None.

    Returns:
        A :class:`DualSpikes`, spikes in decreasing value.

    Raises:
        ValueError: bad shapes, non-finite ``λ``, bad tolerances, too many patterns to enumerate.

    Reference: Wang & Pilanci, arXiv 2110.06488 (the spikes of the optimal dual).

    Example:
        >>> sp = dual_spikes(X, y * sol.dual)
        >>> sp.value, sp.directions, sp.signs     # c(λ*) = 1 and the optimal neurons' directions
    """
    X = check_X(X)
    lam = check_targets(lam, X.shape[0], name="lam", dtype=X.dtype)
    tol, dedup_tol = _check_unit_tol("tol", tol), _check_unit_tol("dedup_tol", dedup_tol)
    D, exact = _all_patterns(X, patterns, _check_count("max_enumerated", max_enumerated))
    values, P = (np.asarray(a) for a in _pattern_maxima(X, lam, D))
    c = float(values.max())
    d = X.shape[1]
    if c > 0:
        cand = np.flatnonzero(values.reshape(-1) >= (1.0 - tol) * c)
        cand = cand[np.argsort(-values.reshape(-1)[cand], kind="stable")]
        flatP = P.reshape(-1, d)
        U = flatP / np.linalg.norm(flatP, axis=1, keepdims=True).clip(np.finfo(flatP.dtype).tiny)
        keep = _dedup(cand, U, dedup_tol)
    else:
        keep, U = np.zeros((0,), np.int64), np.zeros((0, d), values.dtype)
    j, k = keep // 2, keep % 2
    dirs = jnp.asarray(U[keep] if keep.size else np.zeros((0, d)), X.dtype)
    return DualSpikes(
        directions=dirs,
        points=jax.nn.relu(dirs @ X.T),
        signs=jnp.asarray(np.where(k == 0, 1, -1), jnp.int32),
        values=jnp.asarray(values[j, k], X.dtype),
        patterns=jnp.asarray(np.asarray(D)[j]).reshape(-1, X.shape[0]),
        index=jnp.asarray(j, jnp.int32),
        value=jnp.asarray(c, X.dtype),
        exact=exact,
    )


class ExtremePoint(NamedTuple):
    """The extreme-point test of :func:`is_extreme_point`.

    Attributes:
        extreme: ``feasible and on_boundary and rank == n``: no segment through ``λ`` stays in
            the feasible set (``Q*``, or ``Q* ∩ {y ⊙ λ ≥ 0}`` when ``y`` is given).
        vertex: ``feasible and on_boundary and vertex_rank == n``: ``λ`` is moreover a vertex
            (the unique solution of its active linear constraints ``s_k z_kᵀ λ = 1``, ``λ_i = 0``).
        feasible: ``c(λ) ≤ 1 + tol`` (and ``y_i λ_i ≥ -tol ‖λ‖_∞`` when ``y`` is given).
        on_boundary: ``|c(λ) - 1| ≤ tol``.
        rank: rank of the active face normals (see :func:`is_extreme_point`) and the ``e_i`` of the
            zero coordinates.
        vertex_rank: rank of the spike points ``z_k`` and the ``e_i`` of the zero coordinates.
        n: the dimension, ``λ ∈ R^n``.
        value: ``c(λ)``.
        zero: boolean ``(n,)``: coordinates whose sign constraint ``y_i λ_i ≥ 0`` is active
            (``|λ_i| ≤ tol ‖λ‖_∞``); all False without ``y``.
        spikes: the :class:`DualSpikes` of ``λ``.
    """

    extreme: bool
    vertex: bool
    feasible: bool
    on_boundary: bool
    rank: int
    vertex_rank: int
    n: int
    value: Float[Array, ""]
    zero: Bool[Array, " n"]
    spikes: DualSpikes


def _rank(rows: np.ndarray, rank_tol: float) -> int:
    """Numerical rank of the rows scaled to unit length (relative singular-value threshold)."""
    if rows.shape[0] == 0:
        return 0
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(np.finfo(rows.dtype).tiny)
    sv = np.linalg.svd(rows, compute_uv=False)
    return int(np.sum(sv > rank_tol * sv[0])) if sv[0] > 0 else 0


def _face_normals(X: np.ndarray, u: np.ndarray, tie_tol: float) -> np.ndarray:
    """Rows ``(1[X u > 0] ⊙ X v)ᵀ`` for ``v`` in a basis of ``L = {v : x_iᵀ v = 0, x_iᵀ u = 0}``."""
    z = X @ u
    tie = np.abs(z) <= tie_tol * np.linalg.norm(X, axis=1)
    if np.any(tie):
        _, s, Vt = np.linalg.svd(X[tie], full_matrices=True)
        r = int(np.sum(s > max(X.shape) * np.finfo(X.dtype).eps * max(s[0], np.finfo(X.dtype).tiny)))
        V = Vt[r:].T  # (d, d - r): the face's linear span
    else:
        V = np.eye(X.shape[1])
    return ((z > 0)[:, None] * (X @ V)).T


def is_extreme_point(
    X: Float[Array, "n d"],
    lam: Float[Array, " n"],
    *,
    y: Float[Array, " n"] | None = None,
    patterns: Bool[Array, "p n"] | None = None,
    tol: float = 1e-6,
    tie_tol: float = 1e-9,
    rank_tol: float = 1e-8,
    max_enumerated: int = _MAX_ENUMERATED,
) -> ExtremePoint:
    """Whether ``λ`` is an extreme point of ``Q*`` (or of the max-margin dual set ``Q* ∩ {y⊙λ ≥ 0}``).

    Near ``λ`` only the active constraints matter: the spikes ``u_k`` (``|λᵀ (X u_k)_+| = c(λ) = 1``)
    and, with ``y``, the sign constraints of the zero coordinates. The spike ``u_k`` lies in the
    relative interior of a face of its cone, with linear span ``L_k = {v : x_iᵀ v = 0 for the
    samples with x_iᵀ u_k = 0}``; there the constraint reads ``‖Π_{L_k}(Xᵀ D_k λ)‖ ≤ 1``
    (``D_k = 1[X u_k > 0]``), a strictly convex norm of ``V_kᵀ Xᵀ D_k λ``. It stays ``≤ 1`` on both
    sides of ``λ`` along ``δ`` only when ``V_kᵀ Xᵀ D_k δ = 0``. What is tested:

        c(λ) ≤ 1 + tol,  |c(λ) - 1| ≤ tol,
        rank( rows of V_kᵀ Xᵀ D_k for every spike k  ∪  {e_iᵀ : λ_i = 0, with y} ) = n,

    i.e. no direction ``δ ≠ 0`` keeps every active constraint (``extreme``). This is exact when
    the projections are strictly complementary (the generic case); on a degenerate face it is
    sufficient. ``vertex`` is the stronger polyhedral test ``rank({z_k} ∪ {e_i}) = n``
    (``z_k = (X u_k)_+``, and ``z_k = D_k X u_k`` is one of spike ``k``'s face normals).

    Args:
        X: data ``(n, d)``.
        lam: ``λ``, shape ``(n,)``.
        y: labels ±1 to include the max-margin dual's sign constraints ``y ⊙ λ ≥ 0``; or None.
        patterns, max_enumerated: as in :func:`dual_spikes` (default: every pattern, exact).
        tol: relative tolerance in ``[0, 1)`` for active constraints and feasibility.
        tie_tol: a sample is on a spike's face when ``|x_iᵀ u_k| ≤ tie_tol ‖x_i‖``.
        rank_tol: relative singular-value threshold of the ranks (rows scaled to unit length).

    Returns:
        An :class:`ExtremePoint`.

    Raises:
        ValueError: bad shapes, labels, non-finite ``λ``, or bad tolerances.

    Reference: Wang & Pilanci, arXiv 2110.06488 (gradient flows converge to extreme points of
    the dual).

    Example:
        >>> is_extreme_point(X, y * sol.dual, y=y).extreme
    """
    X = check_X(X)
    n = X.shape[0]
    lam = check_targets(lam, n, name="lam", dtype=X.dtype)
    rank_tol, tie_tol = _check_unit_tol("rank_tol", rank_tol), _check_unit_tol("tie_tol", tie_tol)
    spikes = dual_spikes(X, lam, patterns=patterns, tol=tol, max_enumerated=max_enumerated)
    c = float(spikes.value)
    lam_np, Xn = np.asarray(lam, np.float64), np.asarray(X, np.float64)
    scale = float(np.max(np.abs(lam_np), initial=0.0))
    feasible, zero = c <= 1.0 + tol, np.zeros(n, bool)
    if y is not None:
        _, y = check_Xy(X, y)
        feasible = feasible and bool(np.all(np.asarray(y) * lam_np >= -tol * scale))
        zero = np.abs(lam_np) <= tol * scale
    E = np.eye(n)[zero]
    U = np.asarray(spikes.directions, np.float64)
    faces = [_face_normals(Xn, u, tie_tol) for u in U]
    rank = _rank(np.concatenate(faces + [E], axis=0), rank_tol)
    vertex_rank = _rank(np.concatenate([np.asarray(spikes.points, np.float64), E], axis=0), rank_tol)
    ok = feasible and abs(c - 1.0) <= tol
    return ExtremePoint(
        extreme=bool(ok and rank == n),
        vertex=bool(ok and vertex_rank == n),
        feasible=bool(feasible),
        on_boundary=bool(abs(c - 1.0) <= tol),
        rank=rank,
        vertex_rank=vertex_rank,
        n=n,
        value=spikes.value,
        zero=jnp.asarray(zero),
        spikes=spikes,
    )


# ----------------------------------------------------------------------------------------------
# The dual trajectory of gradient descent.
# ----------------------------------------------------------------------------------------------


class DualTrajectory(NamedTuple):
    """KKT multipliers and neuron directions of recorded networks against ``λ*`` and its spikes.

    ``k`` is the number of records kept (those whose network separates the data).

    Attributes:
        steps: step of each record, ``(k,)``.
        lam: the KKT multipliers ``λ(t) = y ⊙ μ(t)`` (normalized to minimum margin 1, as in
            :func:`kkt_certificate`), ``(k, n)``.
        lam_star: ``λ* = y ⊙ sol.dual``, ``(n,)``.
        distance: ``‖λ(t) - λ*‖ / ‖λ*‖``, ``(k,)``.
        certificate: ``c(λ(t))``, ``(k,)``.
        residual: relative stationarity residual of the multipliers, ``(k,)``.
        margin_ratio: ``γ(θ_t) / γ*``, ``γ* = 1 / (2 P*)``, ``(k,)``.
        angles: angle (radians) of each neuron to its nearest spike of ``λ*`` of the same sign
            (``+1`` for ``w2_i > 0``); ``π`` when ``λ*`` has no spike of that sign; ``(k, m)``.
        weights: ``|w2_i| ‖W1[:, i]‖`` of each neuron, ``(k, m)``.
        max_angle: the largest angle among the dominant neurons (weight ``≥ dominant ·`` the
            record's largest weight), ``(k,)``.
        nets: the kept networks, stacked (``W1 (k, d, m)``, ``w2 (k, m)``).
        spikes: the :class:`DualSpikes` of ``λ*``.
    """

    steps: Int[Array, " k"]
    lam: Float[Array, "k n"]
    lam_star: Float[Array, " n"]
    distance: Float[Array, " k"]
    certificate: Float[Array, " k"]
    residual: Float[Array, " k"]
    margin_ratio: Float[Array, " k"]
    angles: Float[Array, "k m"]
    weights: Float[Array, "k m"]
    max_angle: Float[Array, " k"]
    nets: Network
    spikes: DualSpikes


def _records(nets, steps) -> tuple[list[Network], np.ndarray]:
    """The networks and steps of ``nets``: a TrainResult, a sequence of them, a stacked Network
    ``W1 (k, d, m)``, or a sequence of Networks."""
    if isinstance(nets, TrainResult):
        nets = [nets]
    if isinstance(nets, Network):
        if nets.W1.ndim != 3 or nets.w2.ndim != 2:
            raise ValueError(f"a stacked Network needs W1 (k, d, m), w2 (k, m); got {nets.W1.shape}, {nets.w2.shape}")
        nets = [Network(nets.W1[i], nets.w2[i]) for i in range(nets.W1.shape[0])]
    if not isinstance(nets, Sequence) or len(nets) == 0:
        raise TypeError("nets must be a TrainResult, a non-empty sequence of TrainResults or Networks, or a stacked Network")
    if all(isinstance(r, TrainResult) for r in nets):
        if any(jnp.ndim(r.state.step) != 0 for r in nets):
            raise ValueError("dual_trajectory follows one run: select a run of a train_many result first")
        default = np.array([int(r.state.step) for r in nets])
        nets = [r.net for r in nets]
    elif all(isinstance(r, Network) for r in nets):
        default = np.arange(len(nets))
    else:
        raise TypeError("nets must hold only TrainResults or only Networks")
    steps = default if steps is None else np.asarray(steps)
    if steps.shape != (len(nets),):
        raise ValueError(f"steps must have shape ({len(nets)},), one per record, got {steps.shape}")
    return list(nets), steps


def _neuron_angles(net: Network, spikes: DualSpikes, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: angle to the nearest same-sign spike (π if none) and weight ``|w2_i| ‖w_i‖``."""
    W, a = np.asarray(net.W1, np.float64), np.asarray(net.w2, np.float64)
    norms = np.linalg.norm(W, axis=0)
    Wn = W / norms.clip(np.finfo(np.float64).tiny)
    cos = np.asarray(spikes.directions, np.float64) @ Wn  # (spikes, m)
    same = np.asarray(spikes.signs)[:, None] == np.where(a >= 0, 1, -1)[None, :]
    best = np.where(same, cos, -1.0).max(axis=0, initial=-1.0)
    return np.arccos(np.clip(best, -1.0, 1.0)).astype(dtype), (np.abs(a) * norms).astype(dtype)


def dual_trajectory(
    nets: TrainResult | Sequence[TrainResult] | Sequence[Network] | Network,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    sol: ConvexSolution,
    *,
    steps: Int[Array, " k"] | None = None,
    patterns: Bool[Array, "p n"] | None = None,
    support_tol: float = 1e-2,
    spike_tol: float = 1e-6,
    dominant: float = 1e-2,
    max_enumerated: int = _MAX_ENUMERATED,
) -> DualTrajectory:
    """The dual trajectory ``λ(t)`` of gradient descent against the max-margin optimum ``λ*``.

    ``train`` records scalars only, so the networks come from chunked training (resume with
    ``state=``) or any list of snapshots. For each network that separates the data,
    :func:`kkt_certificate` gives the multipliers ``μ(t) ≥ 0`` of
    ``min ½‖θ‖² s.t. y_i f(θ; x_i) ≥ 1`` at the network rescaled to minimum margin 1, and
    ``λ(t) = y ⊙ μ(t)``, the same normalization as the convex dual ``λ* = y ⊙ sol.dual``
    (``1ᵀμ = ½‖θ̂‖² = P*`` at a global optimum). Recorded per network: ``‖λ(t) - λ*‖/‖λ*‖``,
    ``c(λ(t))``, the stationarity residual, ``γ(θ_t)/γ*`` and each neuron's angle to the nearest
    spike of ``λ*`` of its sign (:func:`dual_spikes`). The paper's claim is ``λ(t) → λ*``,
    ``c(λ(t)) → 1`` and the dominant neurons' angles ``→ 0`` on orthogonally separable data.

    Args:
        nets: a :class:`TrainResult` (its final network), a sequence of TrainResults (each
            one's network at ``state.step``), a sequence of Networks or a stacked Network
            (``W1 (k, d, m)``).
        X, y: data ``(n, d)`` and labels ±1.
        sol: the max-margin :class:`ConvexSolution` (``λ* = y ⊙ sol.dual``, ``P* = sol.value``).
        steps: the records' steps, ``(k,)``; default the TrainResults' steps, else ``0..k-1``.
        patterns: patterns for ``c`` and the spikes; default every pattern of ``X`` when Cover's
            count is ``≤ max_enumerated``, else ``sol.patterns`` (then restricted to them).
        support_tol: support vectors for the multipliers (see :func:`kkt_certificate`).
        spike_tol: relative tolerance of the spikes of ``λ*`` (see :func:`dual_spikes`).
        dominant: a neuron is dominant when its weight is ``≥ dominant`` times the largest.

    Returns:
        A :class:`DualTrajectory` over the records whose network separates the data.

    Raises:
        TypeError: ``nets`` or ``sol`` of the wrong type. ValueError: bad shapes or labels, a
            solution of another program, or no record separating the data.

    Reference: Wang & Pilanci, arXiv 2110.06488 (gradient flows converge to extreme points of
    the dual).

    Example:
        >>> chunks = [res := train(net, X, y, steps=5_000, schedule="loss-based")]
        >>> chunks += [res := train(res.net, X, y, steps=5_000, state=res.state) for _ in range(9)]
        >>> traj = dual_trajectory(chunks, X, y, sol)
        >>> traj.distance[-1]
    """
    X, y = check_Xy(X, y)
    if not isinstance(sol, ConvexSolution):
        raise TypeError(f"sol must be a ConvexSolution, got {type(sol).__name__}")
    if sol.program != "max-margin" or sol.dual.shape != (X.shape[0],):
        raise ValueError(f"sol must be a max-margin solution for these {X.shape[0]} samples")
    _check_unit_tol("dominant", dominant)
    records, steps = _records(nets, steps)
    for net in records:
        check_network(net, X.shape[1])
    if patterns is None:
        rank = max(int(np.linalg.matrix_rank(np.asarray(X))), 1)
        exact = pattern_count(X.shape[0], rank) <= _check_count("max_enumerated", max_enumerated)
        patterns = enumerate_patterns(X) if exact else sol.patterns
    D = check_patterns(patterns, X.shape[0])
    lam_star = y * sol.dual.astype(X.dtype)
    spikes = dual_spikes(X, lam_star, patterns=D, tol=spike_tol)
    P = float(sol.value)
    rows, kept = [], []
    for t, net in zip(steps, records):
        net = jax.tree_util.tree_map(lambda a: jnp.asarray(a).astype(X.dtype), net)
        if not float(jnp.min(y * (jax.nn.relu(X @ net.W1) @ net.w2))) > 0:
            continue  # λ(t) is defined once the network separates the data
        cert = kkt_certificate(net, X, y, patterns=D, support_tol=support_tol)
        angles, weights = _neuron_angles(net, spikes, np.asarray(X).dtype)
        rows.append((cert.lam, cert.value, cert.residual, 2.0 * P * cert.margin, angles, weights, net))
        kept.append(t)
    if not rows:
        raise ValueError("no recorded network separates the data: λ(t) is defined only for separating networks")
    lam, cval, res, ratio, angles, weights, kept_nets = zip(*rows)
    lam, angles, weights = jnp.stack(lam), jnp.asarray(np.stack(angles)), jnp.asarray(np.stack(weights))
    dominant_mask = weights >= dominant * jnp.max(weights, axis=1, keepdims=True)
    return DualTrajectory(
        steps=jnp.asarray(np.asarray(kept)),
        lam=lam,
        lam_star=lam_star,
        distance=jnp.linalg.norm(lam - lam_star, axis=1) / jnp.linalg.norm(lam_star),
        certificate=jnp.stack(cval),
        residual=jnp.stack(res),
        margin_ratio=jnp.stack(ratio),
        angles=angles,
        weights=weights,
        max_angle=jnp.max(jnp.where(dominant_mask, angles, jnp.zeros((), angles.dtype)), axis=1),
        nets=jax.tree_util.tree_map(lambda *a: jnp.stack(a), *kept_nets),
        spikes=spikes,
    )
