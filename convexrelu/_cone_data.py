"""Two cones of data whose angle moves them into and out of orthogonal separability.

:func:`two_cones` is the generator of the phase diagram (``notebooks/phase_diagram``): the angle
between the two class centres is the parameter that moves the data away from orthogonal
separability (Wang & Pilanci, arXiv 2110.06488, §5), while the data stay linearly separable.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def _cone_sample(rng: np.random.Generator, center: np.ndarray, count: int, spread: float) -> np.ndarray:
    """``count`` points at angle ``φ ~ U[0, spread]`` from the unit vector ``center`` (in a uniformly
    random direction orthogonal to it), with radius ``U[0.5, 1.5]``."""
    phi = rng.uniform(0.0, spread, size=count)
    v = rng.standard_normal((count, center.shape[0]))
    v -= (v @ center)[:, None] * center[None, :]
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    directions = np.cos(phi)[:, None] * center[None, :] + np.sin(phi)[:, None] * v
    return rng.uniform(0.5, 1.5, size=count)[:, None] * directions


def two_cones(
    n: int,
    d: int,
    *,
    key: PRNGKeyArray,
    angle: float = 2 * math.pi / 3,
    spread: float = math.pi / 12,
    dtype=None,
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """Two classes in circular cones whose centres are ``angle`` apart.

    Class ``+1`` lies around a random unit direction ``a``, class ``-1`` around ``b`` with
    ``∠(a, b) = angle``; each sample is at angle ``φ ~ U[0, spread]`` from its centre (random
    direction) with radius ``U[0.5, 1.5]``. Both classes have at least one sample (``n ≥ 2``).

    * ``angle - 2·spread ≥ π/2``: every cross-class angle is at least ``π/2`` and every same-class
      angle at most ``2·spread < π/2``, so the data are orthogonally separable
      (``x_iᵀx_k > 0`` iff ``y_i = y_k``), the regime where gradient descent from a small
      initialization provably reaches the convex max margin (Wang & Pilanci 2021).
    * Smaller ``angle``: cross-class pairs with positive inner products appear, and for
      ``angle < π/2`` every pair does; the data leave orthogonal separability while staying
      linearly separable (``angle > 2·spread``), so the max-margin program stays feasible.

    Args:
        n: number of samples, ``n ≥ 2``.
        d: dimension, ``d ≥ 2``.
        key: a JAX PRNG key (the data are sampled on the host by a NumPy generator seeded from it).
        angle: angle between the class centres in radians, in ``(2·spread, π]``.
        spread: angular radius of each cone in radians, in ``[0, π/4)``.
        dtype: float dtype of ``X`` and ``y`` (default: JAX's default float).

    Returns:
        ``(X, y)``: ``X (n, d)``, ``y (n,)`` in {-1, +1}.

    Raises:
        TypeError, ValueError: ``n`` or ``d`` not an int or too small; ``spread`` or ``angle``
            out of range.

    Example:
        >>> X, y = two_cones(20, 3, angle=1.2, key=jax.random.key(0))
    """
    for name, value, low in (("n", n, 2), ("d", d, 2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if value < low:
            raise ValueError(f"{name} must be ≥ {low}, got {value!r}")
    if not 0 <= spread < math.pi / 4:
        raise ValueError(f"spread must be in [0, π/4), got {spread!r}")
    if not 2 * spread < angle <= math.pi:
        raise ValueError(f"angle must be in (2·spread, π] = ({2 * spread:.4g}, π], got {angle!r}")
    dtype = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    rng = np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))
    a = rng.standard_normal(d)
    a /= np.linalg.norm(a)
    w = rng.standard_normal(d)
    w -= (w @ a) * a
    w /= np.linalg.norm(w)
    b = math.cos(angle) * a + math.sin(angle) * w
    labels = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    rng.shuffle(labels)
    X = np.empty((n, d))
    X[labels > 0] = _cone_sample(rng, a, int(np.sum(labels > 0)), spread)
    X[labels < 0] = _cone_sample(rng, b, int(np.sum(labels < 0)), spread)
    return jnp.asarray(X, dtype=dtype), jnp.asarray(labels, dtype=dtype)
