"""Objectives, constraint violations, duals and duality gaps of the convex programs.

This module is the one definition of optimality (STYLE.md §7): the native solver stops on these
functions, the tests verify with them and the cvxpy cross-check reports them.

Notation (DESIGN.md): ``X (n, d)``, ``y (n,)``, patterns ``D (p, n)`` boolean, blocks
``U, V (p, d)``, signs ``S = 2D - 1``. The fit is

    f = Σ_j D_j ⊙ X (u_j - v_j) = sum(Dᵀ ⊙ X (U - V)ᵀ, axis=1),

computed without ever forming the ``D_j X`` blocks (memory ``O(np + pd)``). The cone constraints
are ``S_j ⊙ X u_j ≥ 0`` and ``S_j ⊙ X v_j ≥ 0``; their multipliers ``ν ≥ 0`` have shape
``(2, p, n)`` (index 0 for ``U``, 1 for ``V``), the same as :func:`cone_values`.

Programs (Wang & Pilanci 2021, arXiv 2110.06488; Pilanci & Ergen 2020, arXiv 2002.10553):

* max-margin ``P* = min Σ_j ‖u_j‖ + ‖v_j‖ s.t. y ⊙ f ≥ 1, cones``, with Lagrangian dual

      max 1ᵀμ  s.t.  ‖ Xᵀ(D_j ⊙ y ⊙ μ) + Xᵀ(S_j ⊙ ν_0j)‖ ≤ 1,
                     ‖-Xᵀ(D_j ⊙ y ⊙ μ) + Xᵀ(S_j ⊙ ν_1j)‖ ≤ 1,   μ, ν ≥ 0;

* regularized ``min ℓ(f, y) + β Σ_j ‖u_j‖ + ‖v_j‖ s.t. cones``, with dual

      max -ℓ*(-r)  s.t.  ‖±Xᵀ(D_j ⊙ r) + Xᵀ(S_j ⊙ ν_·j)‖ ≤ β,   ν ≥ 0,

  where ``-ℓ*(-r) = rᵀy - ½‖r‖²`` (squared loss ``½‖f - y‖²``) and
  ``-ℓ*(-r) = Σ_i H(y_i r_i)``, ``H(q) = -q log q - (1-q) log(1-q)``, ``0 ≤ y ⊙ r ≤ 1``
  (logistic loss ``Σ log(1 + e^{-y f})``). At the optimum ``r = -∇_f ℓ``.

* the same program with ``c`` outputs (softmax cross-entropy on one-hot targets ``Y (c, n)``):
  each output ``k`` has its own blocks ``U_k, V_k`` (arrays ``(c, p, d)``, fits ``(c, n)``,
  ``ν (c, 2, p, n)``), the penalty sums over all of them, and the dual is the same with
  ``r (c, n)``, one constraint per output's block and ``-ℓ*(-r) = Σ_i H(y_{·i} - r_{·i})`` on the
  simplex.

Every dual function here accepts *any* ``μ ≥ 0`` (or ``r``) and ``ν ≥ 0`` and first scales them
onto the dual feasible set, so the value returned is always a valid lower bound on the primal
optimum (weak duality) -- no cone projection is needed.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

ProgramName = Literal["max-margin", "regularized-squared", "regularized-logistic", "regularized-softmax"]


def _patterns_as_floats(D: Bool[Array, "p n"], X: Float[Array, "n d"]) -> Float[Array, "p n"]:
    """The 0/1 patterns in ``X``'s dtype (strict promotion forbids mixing bool and float)."""
    return D.astype(X.dtype)


def convex_fit(
    X: Float[Array, "n d"], D: Bool[Array, "p n"], U: Float[Array, "*c p d"], V: Float[Array, "*c p d"]
) -> Float[Array, "*c n"]:
    """The convex model's output ``f = Σ_j D_j ⊙ X (u_j - v_j)``, shape ``(n,)`` (``(c, n)`` for
    blocks ``(c, p, d)`` of ``c`` outputs).

    Computed as ``Σ_j D_j ⊙ (U - V) Xᵀ``: cost ``O(npd)``, memory ``O(np)``.
    """
    return jnp.sum(_patterns_as_floats(D, X) * ((U - V) @ X.T), axis=-2)


def cone_values(
    X: Float[Array, "n d"], D: Bool[Array, "p n"], U: Float[Array, "p d"], V: Float[Array, "p d"]
) -> Float[Array, "2 p n"]:
    """``S_j ⊙ X u_j`` (index 0) and ``S_j ⊙ X v_j`` (index 1), ``S = 2D - 1``: feasible iff ``≥ 0``."""
    S = 2.0 * _patterns_as_floats(D, X) - 1.0
    return jnp.stack([S * (U @ X.T), S * (V @ X.T)], axis=-3)  # (c, 2, p, n) for c outputs, as ν


def group_norm(U: Float[Array, "p d"], V: Float[Array, "p d"]) -> Float[Array, ""]:
    """The group-lasso penalty ``Σ_j ‖u_j‖ + ‖v_j‖`` (norms safe from overflow, :func:`safe_norm`)."""
    return jnp.sum(safe_norm(U)) + jnp.sum(safe_norm(V))


def safe_norm(G: Array, axis=-1) -> Array:
    """Euclidean norms along ``axis`` as ``m ‖G / m‖`` with ``m = max |G|`` (held constant for
    derivatives), so that entries at 1e±200 neither overflow nor vanish when squared; the gradient
    is zero-safe (the Lagrangian is differentiated in ``X``)."""
    m = jax.lax.stop_gradient(jnp.max(jnp.abs(G), axis=axis, keepdims=True))
    m = jnp.where(m > 0, m, 1.0)
    sq = jnp.sum((G / m) ** 2, axis=axis)
    pos = sq > 0
    return jnp.squeeze(m, axis) * jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def rms(a: Array, n) -> Array:
    """``sqrt(Σ a² / n)``, computed as ``m sqrt(Σ (a/m)² / n)`` with ``m = max |a|`` so that data
    at 1e±300 neither overflow nor vanish; ``1`` for zero data (a scale that changes nothing)."""
    m = jnp.max(jnp.abs(a))
    m = jnp.where(m > 0, m, 1.0)
    r = m * jnp.sqrt(jnp.sum((a / m) ** 2) / n)
    return jnp.where(r > 0, r, 1.0)


def cone_violation(
    X: Float[Array, "n d"], D: Bool[Array, "p n"], U: Float[Array, "p d"], V: Float[Array, "p d"]
) -> Float[Array, ""]:
    """Relative cone violation ``max_{b,i} (-S_b ⊙ X z_b)_+ / max(1, max_{b,i} |X z_b|_i)``."""
    c = cone_values(X, D, U, V)
    return jnp.max(jax.nn.relu(-c)) / jnp.maximum(1.0, jnp.max(jnp.abs(c)))


def margin_violation(
    X: Float[Array, "n d"], y: Float[Array, " n"], D: Bool[Array, "p n"], U, V, offset=0.0
) -> Float[Array, ""]:
    """Margin violation ``max_i (1 - y_i (f_i + o))_+`` (already relative: the right-hand side is 1),
    ``o`` a fixed ``offset`` of the fit (an intercept held fixed; 0: none)."""
    return jnp.max(jax.nn.relu(1.0 - y * (convex_fit(X, D, U, V) + offset)))


def constraint_violation(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    U: Float[Array, "p d"],
    V: Float[Array, "p d"],
    *,
    program: ProgramName = "max-margin",
    offset=0.0,
) -> Float[Array, ""]:
    """Relative constraint violation, ``ConvexSolution.residual`` (``offset``: of the max-margin fit).

    Regularized programs: :func:`cone_violation`. Max-margin program: the max of
    :func:`margin_violation` and the cone violation ``max_{b,i} (-S_b ⊙ X z_b)_+`` measured, like
    the margins, against the right-hand side 1 (not against ``max |X z|``): at a large ``P*`` the
    fits are large while neighbouring points of opposite labels must still differ by 2, so a
    violation relative to the fits could hide a value far below ``P*`` (near-duplicate points).
    Both measures are invariant under scaling the data."""
    if program == "max-margin":
        cv = jnp.max(jax.nn.relu(-cone_values(X, D, U, V)))
        return jnp.maximum(cv, margin_violation(X, y, D, U, V, offset))
    return cone_violation(X, D, U, V)


def dual_blocks(
    X: Float[Array, "n d"],
    D: Bool[Array, "p n"],
    a: Float[Array, " n"],
    nu: Float[Array, "2 p n"],
) -> Float[Array, "2 p d"]:
    """The per-block dual vectors ``g_0j = Xᵀ(D_j ⊙ a) + Xᵀ(S_j ⊙ ν_0j)`` and
    ``g_1j = -Xᵀ(D_j ⊙ a) + Xᵀ(S_j ⊙ ν_1j)``.

    ``a = y ⊙ μ`` for the max-margin program and ``a = r`` for the regularized ones; dual
    feasibility is ``‖g_bj‖ ≤ 1`` (max-margin) or ``≤ β`` (regularized).
    """
    Df = _patterns_as_floats(D, X)
    S = 2.0 * Df - 1.0
    Ga = (Df * a) @ X
    return jnp.stack([Ga + (S * nu[0]) @ X, -Ga + (S * nu[1]) @ X])


def dual_norm(X, D, a, nu) -> Float[Array, ""]:
    """``max_b ‖g_b‖`` over the blocks of :func:`dual_blocks` (of every output: ``a (c, n)``,
    ``ν (c, 2, p, n)``)."""
    if jnp.ndim(a) == 2:
        return jnp.max(jax.vmap(dual_norm, (None, None, 0, 0))(X, D, a, nu))
    return jnp.max(safe_norm(dual_blocks(X, D, a, nu)))


def max_margin_objective(U: Float[Array, "p d"], V: Float[Array, "p d"]) -> Float[Array, ""]:
    """Primal objective of the max-margin program, ``Σ_j ‖u_j‖ + ‖v_j‖``."""
    return group_norm(U, V)


def max_margin_dual_objective(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    mu: Float[Array, " n"],
    nu: Float[Array, "2 p n"],
    offset=0.0,
) -> Float[Array, ""]:
    """A valid lower bound on ``P*`` from any multipliers: ``1ᵀμ⁺ / max_b ‖g_b(μ⁺, ν⁺)‖``.

    ``μ⁺ = max(μ, 0)``, ``ν⁺ = max(ν, 0)``. Dividing by ``c = max_b ‖g_b‖`` puts ``(μ⁺, ν⁺)/c``
    on the dual feasible set (the constraints are positively homogeneous), so by weak duality the
    result is ``≤ P*``. Returns ``0`` when ``μ⁺ = 0`` and ``+inf`` when ``1ᵀμ⁺ > 0`` and
    ``c = 0`` (a Farkas ray: the primal is infeasible). With a fixed ``offset`` ``o`` of the fit
    (margins ``y ⊙ (f + o) ≥ 1``) the dual objective is ``μᵀ(1 - y ⊙ o)``, and its positive part.
    """
    mu = jax.nn.relu(mu)
    nu = jax.nn.relu(nu)
    c = dual_norm(X, D, y * mu, nu)
    s = jnp.maximum(jnp.sum(mu * (1.0 - y * offset)), 0.0)
    return jnp.where(c > 0, s / jnp.where(c > 0, c, 1.0), jnp.where(s > 0, jnp.inf, 0.0))


def max_margin_infeasibility(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    mu: Float[Array, " n"],
    nu: Float[Array, "2 p n"],
    offset=0.0,
) -> Float[Array, ""]:
    """Farkas residual of a candidate infeasibility ray ``(μ, ν) ≥ 0`` (``offset``: of the fit).

    Returns ``max_b ‖g_b(μ⁺, ν⁺)‖ / (1ᵀμ⁺ · max_i ‖x_i‖)`` (``+inf`` when ``μ⁺ = 0``). The value
    ``ε`` certifies ``P* ≥ 1 / (ε max_i ‖x_i‖)`` by weak duality; ``ε = 0`` is an exact Farkas
    certificate that the max-margin program is infeasible (``y ⊙ f ≥ 1`` impossible on the cones).
    """
    return farkas_residual(X, max_margin_dual_objective(X, y, D, mu, nu, offset))


def farkas_residual(X: Float[Array, "n d"], dual_value: Float[Array, ""]) -> Float[Array, ""]:
    """:func:`max_margin_infeasibility` of multipliers whose :func:`max_margin_dual_objective` is
    ``dual_value``: ``ε = 1 / (dual_value · max_i ‖x_i‖)``, since the dual bound is the ratio
    ``1ᵀμ⁺ / max_b ‖g_b‖`` that ``ε`` inverts (``0 ↦ +inf``, ``+inf ↦ 0``). A solver that has
    scored its multipliers gets ``ε`` without a second pass over the ``(2, p, n)`` ``ν``.
    ``dual_value = inf`` (``1ᵀμ⁺ > 0`` with ``g = 0``) is an exact certificate, ``ε = 0``, also for
    ``X = 0``."""
    eps = 1.0 / (dual_value * jnp.max(safe_norm(X, axis=1)))
    return jnp.where(dual_value == jnp.inf, 0.0, eps)


def regularized_primal_objective(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    U: Float[Array, "p d"],
    V: Float[Array, "p d"],
    *,
    beta,
    loss: Literal["squared", "logistic", "softmax"] = "squared",
    offset=0.0,
) -> Float[Array, ""]:
    """``ℓ(f + o, y) + β Σ_j ‖u_j‖ + ‖v_j‖`` with ``ℓ = ½Σ(f - y)²`` or ``Σ log(1 + e^{-y f})``,
    or the softmax cross-entropy of ``c`` outputs (blocks ``(c, p, d)``, one-hot ``y (c, n)``);
    ``o`` a fixed ``offset`` of the fit (an intercept held fixed; 0: none)."""
    return convex_loss(convex_fit(X, D, U, V) + offset, y, loss) + beta * group_norm(U, V)


def convex_loss(f: Float[Array, "*c n"], y: Float[Array, "*c n"], loss: str) -> Float[Array, ""]:
    """``½ Σ (f - y)²`` (squared), ``Σ softplus(-y f)`` (logistic; softplus is overflow-safe), or
    the softmax cross-entropy ``Σ_i logsumexp(f_{·i}) - ⟨y_{·i}, f_{·i}⟩`` of fits ``(c, n)`` against
    one-hot targets ``(c, n)`` (``"softmax"``; the outputs on the leading axis)."""
    if loss == "squared":
        return 0.5 * jnp.sum((f - y) ** 2)
    if loss == "logistic":
        return jnp.sum(jax.nn.softplus(-y * f))
    if loss == "softmax":
        return jnp.sum(jax.nn.logsumexp(f, axis=0) - jnp.sum(y * f, axis=0))
    raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")


def negative_loss_gradient(f: Float[Array, "*c n"], y: Float[Array, "*c n"], loss: str) -> Float[Array, "*c n"]:
    """``r = -∇_f ℓ``: ``y - f`` (squared), ``y ⊙ σ(-y f)`` (logistic), ``y - softmax(f)`` (softmax,
    over the leading output axis)."""
    if loss == "squared":
        return y - f
    if loss == "logistic":
        return y * jax.nn.sigmoid(-y * f)
    if loss == "softmax":
        return y - jax.nn.softmax(f, axis=0)
    raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")


def loss_domain(r: Float[Array, "*c n"], y: Float[Array, "*c n"], loss: str) -> Float[Array, "*c n"]:
    """``r`` moved into the domain of ``-ℓ*(-·)``: unchanged (squared), clipped to
    ``0 ≤ y ⊙ r ≤ 1`` (logistic), or ``y - r`` projected onto the simplex per sample by clipping at
    0 and normalizing (softmax; a solver's ``y - softmax(f)`` is already there, up to rounding)."""
    if loss == "logistic":
        return y * jnp.clip(y * r, 0.0, 1.0)
    if loss == "softmax":
        q = jnp.clip(y - r, 0.0, None)
        total = jnp.sum(q, axis=0, keepdims=True)
        return y - jnp.where(total > 0, q / jnp.where(total > 0, total, 1.0), y)
    return r


def conjugate_bound(r: Float[Array, "*c n"], y: Float[Array, "*c n"], c: Float[Array, ""], loss: str, offset=0.0) -> Float[Array, ""]:
    """``max_{0 ≤ t ≤ 1/c} -ℓ(· + o)*(-t r)``: the dual value of ``r`` scaled into a feasible set whose
    constraint ``r`` violates by the factor ``c`` (``c ≤ 1``: feasible as it is), for the loss
    with a fixed ``offset`` ``o`` in the fit (``ℓ(· + o)*(s) = ℓ*(s) - sᵀo``; 0: none).

    Squared loss: ``-ℓ*(-r) = rᵀy - ½‖r‖²`` at the target ``y - o``, ``t`` optimized in closed
    form; logistic: ``Σ H(t y_i r_i) - t rᵀo``, ``H`` the binary entropy, ``t = min(1, 1/c)``
    (``r`` first clipped to the conjugate's domain ``0 ≤ y ⊙ r ≤ 1``); softmax (``(c, n)``):
    ``Σ_i H(y_{·i} - t r_{·i})`` on the simplex, ``t = min(1, 1/c)``.
    """
    tmax = jnp.where(c > 0, 1.0 / jnp.where(c > 0, c, 1.0), jnp.inf)
    if loss == "squared":
        y = y - offset
        rr, ry = jnp.sum(r * r), jnp.sum(r * y)
        t = jnp.clip(ry / jnp.where(rr > 0, rr, 1.0), 0.0, tmax)
        return t * ry - 0.5 * t * t * rr
    xlogy = jax.scipy.special.xlogy  # 0 log 0 = 0
    t = jnp.minimum(1.0, tmax)
    if loss == "logistic":
        q = jnp.clip(y * r, 0.0, 1.0)
        return -jnp.sum(xlogy(t * q, t * q) + xlogy(1.0 - t * q, 1.0 - t * q)) - t * jnp.sum(offset * y * q)
    if loss == "softmax":  # -ℓ*(-r) = Σ_i H(y_{·i} - r_{·i}) on the simplex; y - t r stays in it for t ≤ 1
        r = loss_domain(r, y, loss)
        q = y - t * r
        return -jnp.sum(xlogy(q, q)) - t * jnp.sum(offset * r)
    raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")


def regularized_dual_objective(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    r: Float[Array, " n"],
    nu: Float[Array, "2 p n"],
    *,
    beta,
    loss: Literal["squared", "logistic", "softmax"] = "squared",
    offset=0.0,
) -> Float[Array, ""]:
    """A valid lower bound on the regularized optimum from any ``r`` and ``ν``.

    With ``c = max_b ‖g_b(r, ν⁺)‖ / β``, every ``t (r, ν⁺)`` with ``0 ≤ t ≤ 1/c`` is dual feasible;
    the bound is :func:`conjugate_bound`, ``max_t -ℓ*(-t r)`` over that range: for the squared loss
    ``t = clip(rᵀy / ‖r‖², 0, 1/c)`` and value ``t rᵀy - ½ t² ‖r‖²``; for the logistic loss ``r`` is
    first clipped to ``0 ≤ y ⊙ r ≤ 1`` (the conjugate's domain), ``t = min(1, 1/c)`` and the
    value is ``Σ H(t y ⊙ r)``; for the softmax loss of ``c`` outputs (``r (c, n)``, ``ν (c, 2, p, n)``)
    ``y - r`` is first moved onto the simplex (:func:`loss_domain`) and the value is
    ``Σ_i H(y_{·i} - t r_{·i})``. A fixed ``offset`` ``o`` of the fit adds ``-t rᵀo`` (squared: the
    target ``y - o``).
    """
    if loss not in ("squared", "logistic", "softmax"):
        raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")
    nu = jax.nn.relu(nu)
    r = loss_domain(r, y, loss)
    return conjugate_bound(r, y, dual_norm(X, D, r, nu) / beta, loss, offset)


def duality_gap(primal: Float[Array, ""], dual: Float[Array, ""], floor=1.0) -> Float[Array, ""]:
    """Relative duality gap ``|primal - dual| / max(floor, |primal|, |dual|)``."""
    return jnp.abs(primal - dual) / jnp.maximum(floor, jnp.maximum(jnp.abs(primal), jnp.abs(dual)))


def normalize_regularized(X, y, U, V, dual, cone_dual, beta, loss: str):
    """A regularized program's data and candidate in normalized units: ``X / s_x`` (``s_x`` the
    RMS row norm), ``y / s_y`` for the squared loss (``s_y = 1`` logistic), ``β / (s_x s_y)``, the
    weights times ``s_x / s_y``, the multipliers over ``s_y``. Returns those and ``k = s_y²``: the
    original program's values are ``k`` times the normalized ones (the fits are unchanged up to
    ``1/s_y``), so a relative certificate of the normalized program holds at every scale."""
    sx = rms(X, X.shape[0])
    sy = rms(y, y.shape[0]) if loss == "squared" else jnp.ones((), X.dtype)
    w = sx / sy
    return X / sx, y / sy, beta / (sx * sy), U * w, V * w, dual / sy, cone_dual / sy, sy * sy


class Optimality(NamedTuple):
    """What :func:`optimality` reports: primal and dual values, relative gap and violation."""

    value: Float[Array, ""]
    dual_value: Float[Array, ""]
    gap: Float[Array, ""]
    residual: Float[Array, ""]


def loss_of_program(program: str) -> str:
    """The loss of a regularized program: ``"squared"``, ``"logistic"`` or ``"softmax"``.

    Raises:
        ValueError: ``program`` is not a regularized program's name.
    """
    if program in ("regularized-squared", "regularized-logistic", "regularized-softmax"):
        return program.removeprefix("regularized-")
    raise ValueError(
        "program must be 'max-margin', 'regularized-squared', 'regularized-logistic' or 'regularized-softmax', "
        f"got {program!r}"
    )


def optimality(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    U: Float[Array, "p d"],
    V: Float[Array, "p d"],
    dual: Float[Array, " n"],
    cone_dual: Float[Array, "2 p n"],
    *,
    program: ProgramName = "max-margin",
    beta=None,
    offset=0.0,
) -> Optimality:
    """Primal value, dual lower bound, relative gap and relative violation of a candidate.

    ``dual`` is ``μ`` (max-margin) or ``r`` (regularized), ``cone_dual`` is ``ν``; they need not
    be feasible (see :func:`max_margin_dual_objective`, :func:`regularized_dual_objective`).
    A point is accepted as optimal at tolerance ``tol`` when ``gap ≤ tol`` and
    ``residual ≤ tol``.

    Everything is computed on the normalized program (``X / s_x``, ``s_x`` the RMS row norm, and
    for the squared loss ``y / s_y``, ``β`` scaled to match), whose values are those of the
    original divided by ``k`` (``1/s_x`` max-margin, ``s_y²`` squared loss, ``1`` logistic).
    The violation is that of the normalized program. The gap is ``|P - D| / max(1, |P|, |D|)``
    for the regularized programs and ``|P - D| / max(k, |P|, |D|)`` for the max-margin program,
    whose values scale like ``1/s_x`` (``P* ≥ 1 / max_i ‖x_i‖``): it is the gap of the normalized
    max-margin program, so data multiplied by 1e±300 (and ``β`` with them) get the certificate
    they get at scale 1. Only a value beyond float range is reported as ``inf``.

    ``program="regularized-softmax"``: ``c`` outputs on the leading axis, as the solution stores them:
    one-hot ``y (c, n)`` (the transpose of what :func:`convexrelu.solve_regularized` takes),
    ``U, V (c, p, d)``, ``dual (c, n)``, ``cone_dual (c, 2, p, n)``.

    ``offset``: a fixed offset ``o`` of the fit, an intercept held fixed (:mod:`convexrelu._intercept`):
    the loss ``ℓ(f + o, y)`` (for the squared loss the target ``y - o``), or the margins
    ``y ⊙ (f + o) ≥ 1``.
    """
    if program == "max-margin":
        sx = rms(X, X.shape[0])
        Xs, zu, zv, a, nu = X / sx, U * sx, V * sx, dual * sx, cone_dual * sx
        value = max_margin_objective(zu, zv)
        dval = max_margin_dual_objective(Xs, y, D, a, nu, offset)
        k, floor = 1.0 / sx, 1.0
    else:
        loss = loss_of_program(program)
        if loss == "squared":
            y, offset = y - offset, 0.0
        Xs, ys, bs, zu, zv, a, nu, k = normalize_regularized(X, y, U, V, dual, cone_dual, beta, loss)
        value = regularized_primal_objective(Xs, ys, D, zu, zv, beta=bs, loss=loss, offset=offset)
        dval = regularized_dual_objective(Xs, ys, D, a, nu, beta=bs, loss=loss, offset=offset)
        floor = 1.0 / k  # the original units' 1, in normalized units
    gap = duality_gap(value, dval, floor)
    return Optimality(value * k, dval * k, gap, constraint_violation(Xs, y, D, zu, zv, program=program, offset=offset))


def lagrangian(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    U: Float[Array, "p d"],
    V: Float[Array, "p d"],
    dual: Float[Array, " n"],
    cone_dual: Float[Array, "2 p n"],
    *,
    program: ProgramName = "max-margin",
    beta=None,
) -> Float[Array, ""]:
    """The Lagrangian of a convex program, for the envelope theorem ``∂P*/∂X = ∂L/∂X``.

    max-margin: ``L = Σ‖u_j‖ + ‖v_j‖ - μᵀ(y ⊙ f - 1) - Σ_{b,j} ν_bj ᵀ (S_j ⊙ X z_bj)``;
    regularized: ``L = ℓ(f, y) + β Σ‖u_j‖ + ‖v_j‖ - Σ_{b,j} ν_bj ᵀ (S_j ⊙ X z_bj)`` (the loss
    multiplier ``r = -∇_f ℓ`` is implicit: ``∂ℓ(f(X))/∂X`` supplies it), ``f = f(X; D, U, V)``.

    At a primal-dual optimal ``(U, V, μ, ν)`` (e.g. a :class:`ConvexSolution`'s fields) and with
    the patterns ``D`` held fixed, ``jax.grad(lagrangian)(X, ...)`` is the derivative of the
    optimal value with respect to the data (envelope / Danskin theorem, when the multipliers
    are unique). Example::

        sol = cr.solve_max_margin(X, y, D)
        dP = jax.grad(lagrangian)(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual)
    """
    cones = jnp.sum(cone_dual * cone_values(X, D, U, V))
    pen = group_norm(U, V)
    f = convex_fit(X, D, U, V)
    if program == "max-margin":
        return pen - jnp.sum(dual * (y * f - 1.0)) - cones
    loss = loss_of_program(program)
    return convex_loss(f, y, loss) + beta * pen - cones
