"""Losses, margins and alignment of the two-layer ReLU network.

Losses are summed over samples unless ``reduction="mean"``. The margins follow Lyu & Li,
"Gradient Descent Maximizes the Margin of Homogeneous Neural Networks" (arXiv 1906.05890), with
homogeneity order ``L = 2``: the normalized margin ``γ(θ) = min_i y_i f(θ; x_i) / ‖θ‖²`` and the
smoothed margin ``γ̃(θ) = ℓ^{-1}(𝓛(θ)) / ‖θ‖²``. Both are computed from ``log 𝓛`` so they stay
finite and exact when the loss is 1e-300 or 1e-3000 (far below the float range).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._network import Network, forward, neuron_patterns, param_norm_sq
from ._validation import check_network, check_scalar, check_targets, check_X, check_Xy

LossName = Literal["logistic", "exponential", "squared"]
LOSSES = ("logistic", "exponential", "squared")
_TINY = -20.0  # below this log-value, first-order expansions are exact to float64 precision


def _check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def _check_reduction(reduction: str) -> str:
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return reduction


def log_softplus(z: Array) -> Array:
    """``log(log(1 + e^z))``, exact for very negative ``z`` (where ``softplus(z)`` underflows).

    For ``z < -20``, ``log log1p(e^z) = z + log(1 - e^z/2 + …) = z - e^z/2`` to float64 precision.
    """
    small = z < _TINY
    z_big = jnp.where(small, 0.0, z)  # double-where keeps gradients finite in both branches
    z_small = jnp.where(small, z, _TINY)
    return jnp.where(small, z_small - 0.5 * jnp.exp(z_small), jnp.log(jax.nn.softplus(z_big)))


def log_expm1(log_s: Array) -> Array:
    """``log(e^s - 1)`` given ``log s``: stable for ``s`` from ``e^{-10^4}`` to ``~700``.

    Uses ``log(e^s - 1) = s + log(-expm1(-s))`` and, for ``log s < -20``, ``log s + s/2``.
    """
    small = log_s < _TINY
    ls_small = jnp.where(small, log_s, _TINY)
    s_big = jnp.exp(jnp.where(small, 0.0, log_s))
    return jnp.where(small, ls_small + 0.5 * jnp.exp(ls_small), s_big + jnp.log(-jnp.expm1(-s_big)))


def loss_terms(f: Float[Array, " n"], y: Float[Array, " n"], loss: LossName = "logistic") -> Float[Array, " n"]:
    """Per-sample loss of outputs ``f`` against labels ``y``.

    logistic ``log(1 + e^{-y f})`` (as ``softplus(-y f)``, stable for large ``|f|``), exponential
    ``e^{-y f}``, squared ``½ (f - y)²``.
    """
    if loss == "logistic":
        return jax.nn.softplus(-y * f)
    if loss == "exponential":
        return jnp.exp(-y * f)
    if loss == "squared":
        return 0.5 * (f - y) ** 2
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def loss_value(f, y, loss: LossName = "logistic", *, reduction: str = "sum") -> Float[Array, ""]:
    """Total (``sum``) or average (``mean``) loss of outputs ``f``."""
    terms = loss_terms(f, y, _check_loss(loss))
    return jnp.sum(terms) if _check_reduction(reduction) == "sum" else jnp.mean(terms)


def log_loss_value(f, y, loss: LossName = "logistic", *, reduction: str = "sum") -> Float[Array, ""]:
    """``log 𝓛`` of outputs ``f``, computed in log space (finite for any margin).

    logistic: ``logsumexp_i log softplus(-y_i f_i)``; exponential: ``logsumexp_i (-y_i f_i)``.
    """
    if _check_loss(loss) == "logistic":
        logs = log_softplus(-y * f)
    elif loss == "exponential":
        logs = -y * f
    else:
        logs = jnp.log(loss_terms(f, y, "squared"))
    out = jax.nn.logsumexp(logs)
    if _check_reduction(reduction) == "mean":
        out = out - jnp.log(f.shape[0])
    return out


def _net_loss(net, X, y, loss, reduction):
    X = check_X(X)
    net = check_network(net, X.shape[1])
    if loss == "squared":
        y = check_targets(y, X.shape[0], dtype=X.dtype)
    else:
        X, y = check_Xy(X, y)
    return loss_value(forward(net, X), y, loss, reduction=reduction)


def _checked(net, X, y, *, nonzero: str | None = None):
    """``(net, X, y)`` checked for a labelled (±1) quantity; ``nonzero`` refuses a zero network."""
    X, y = check_Xy(X, y)
    return check_network(net, X.shape[1], nonzero=nonzero), X, y


def logistic_loss(net: Network, X, y, *, reduction: str = "sum") -> Float[Array, ""]:
    """Logistic loss ``Σ_i log(1 + exp(-y_i f(θ; x_i)))`` (or the mean), labels ±1."""
    return _net_loss(net, X, y, "logistic", reduction)


def exponential_loss(net: Network, X, y, *, reduction: str = "sum") -> Float[Array, ""]:
    """Exponential loss ``Σ_i exp(-y_i f(θ; x_i))`` (or the mean), labels ±1."""
    return _net_loss(net, X, y, "exponential", reduction)


def squared_loss(net: Network, X, y, *, reduction: str = "sum") -> Float[Array, ""]:
    """Squared loss ``½ Σ_i (f(θ; x_i) - y_i)²`` (or the mean); ``y`` may be real-valued."""
    return _net_loss(net, X, y, "squared", reduction)


def log_loss(net: Network, X, y, *, loss: LossName = "logistic") -> Float[Array, ""]:
    """``log 𝓛(θ)`` of the summed loss, computed in log space (finite when 𝓛 underflows)."""
    net, X, y = _checked(net, X, y)
    return log_loss_value(forward(net, X), y, loss)


def regularized_objective(
    net: Network, X, y, *, beta: float, loss: LossName = "logistic", reduction: str = "sum"
) -> Float[Array, ""]:
    """Regularized objective ``ℓ(f(θ; X), y) + β/2 ‖θ‖²`` (Wang, Lacotte & Pilanci, arXiv 2006.05900).

    Raises:
        TypeError, ValueError: bad data or network (see :func:`logistic_loss`), ``beta`` not a
            finite number ``≥ 0`` (Python, NumPy or JAX scalar; a traced one is checked by
            ``eqx.error_if``), an unknown loss or reduction.
    """
    beta = check_scalar("beta", beta, lo=0.0, lo_closed=True, traced=True)
    return _net_loss(net, X, y, _check_loss(loss), reduction) + 0.5 * beta * param_norm_sq(net)


def normalized_margin(net: Network, X, y) -> Float[Array, ""]:
    """Normalized margin ``γ(θ) = min_i y_i f(θ; x_i) / ‖θ‖²`` (Lyu & Li, L = 2).

    Invariant to ``θ → cθ`` for ``c > 0``; positive iff the network separates the data. Computed
    on ``θ / max|θ|`` (the same margin), so that weights near the float range's ends (1e±150)
    neither overflow nor underflow ``‖θ‖²``.

    Raises:
        TypeError, ValueError: bad shapes, dtypes, labels not ±1, NaN data or weights, and a
            zero network (``‖θ‖ = 0``: the margin is undefined; ``eqx.error_if`` under ``jit``).
    """
    net, X, y = _checked(net, X, y, nonzero="its normalized margin min_i y_i f_i / ‖θ‖²")
    top = jnp.maximum(jnp.max(jnp.abs(net.W1), initial=0), jnp.max(jnp.abs(net.w2), initial=0))
    top = jnp.where(top > 0, top, jnp.ones_like(top))
    unit = Network(net.W1 / top, net.w2 / top)  # 2-homogeneous: γ(cθ) = γ(θ)
    return margin_of_outputs(forward(unit, X), y, param_norm_sq(unit))


def margin_of_outputs(f, y, norm_sq) -> Float[Array, ""]:
    """``min_i y_i f_i / ‖θ‖²`` from outputs and the squared parameter norm."""
    return jnp.min(y * f) / norm_sq


def smoothed_margin_of_log_loss(log_L, norm_sq, loss: LossName = "logistic") -> Float[Array, ""]:
    """``γ̃ = ℓ^{-1}(𝓛) / ‖θ‖²`` from ``log 𝓛``.

    logistic: ``ℓ^{-1}(s) = -log(e^s - 1)``; exponential: ``ℓ^{-1}(s) = -log s``.
    """
    if loss == "logistic":
        return -log_expm1(log_L) / norm_sq
    if loss == "exponential":
        return -log_L / norm_sq
    raise ValueError(f"the smoothed margin is defined for 'logistic' or 'exponential', got {loss!r}")


def smoothed_margin(net: Network, X, y, *, loss: LossName = "logistic") -> Float[Array, ""]:
    """Smoothed margin ``γ̃(θ) = ℓ^{-1}(𝓛(θ)) / ‖θ‖²`` (Lyu & Li 2020, L = 2).

    With the logistic loss, ``ℓ^{-1}(s) = -log(e^s - 1)``; with the exponential loss,
    ``ℓ^{-1}(s) = -log s``. Computed from ``log 𝓛`` so that it is finite and exact at 𝓛 = 1e-3000.
    Satisfies ``γ̃ ≤ γ ≤ γ̃ + log n / ‖θ‖²`` (exponential loss) and
    ``γ̃ ≤ γ ≤ γ̃ + (log n + 𝓛) / ‖θ‖²`` (logistic loss, from ``𝓛 ≤ n e^{-q_min}`` and
    ``ℓ^{-1}(s) ≥ -log s - s``; the ``+ 𝓛`` is needed). Meaningful once ``𝓛 < ℓ(0)``; above
    that it is negative.

    Raises:
        TypeError, ValueError: bad shapes, dtypes, labels not ±1, NaN data or weights, an unknown
            loss, and a zero network (``‖θ‖ = 0``: undefined; ``eqx.error_if`` under ``jit``).

    Example:
        >>> gamma_tilde = smoothed_margin(net, X, y)
    """
    net, X, y = _checked(net, X, y, nonzero="its smoothed margin ℓ^{-1}(𝓛) / ‖θ‖²")
    f = forward(net, X)
    return smoothed_margin_of_log_loss(log_loss_value(f, y, loss), param_norm_sq(net), loss)


def neuron_alignment(net: Network, X, y) -> Float[Array, " m"]:
    """Cosine between each neuron ``w_i = W1[:, i]`` and ``s_i Xᵀ D(w_i) y``, ``s_i = sign(w2[i])``.

    Early in training from a small initialization, each neuron's direction follows
    ``s_i Xᵀ D(w_i) y`` (Wang & Pilanci, arXiv 2110.06488, §4), so the cosine tends to 1. A neuron
    whose target direction or weight vanishes gets cosine 0.
    """
    net, X, y = _checked(net, X, y)
    D = neuron_patterns(net, X).astype(X.dtype)  # (m, n)
    s = jnp.sign(net.w2)
    target = s[:, None] * ((D * y[None, :]) @ X)  # (m, d)
    W = net.W1.T
    num = jnp.sum(W * target, axis=1)
    den = jnp.linalg.norm(W, axis=1) * jnp.linalg.norm(target, axis=1)
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)
