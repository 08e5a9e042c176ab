"""The bias-free two-layer ReLU network ``f(θ; X) = relu(X W1) w2``.

A 2-homogeneous model: ``f(cθ; X) = c² f(θ; X)`` for ``c > 0``. Reference: Wang & Pilanci,
"The Convex Geometry of Backpropagation", arXiv 2110.06488, §2.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._validation import check_dtype, check_int, check_key, check_network, check_scalar, check_X


class Network(eqx.Module):
    """Parameters ``θ = (W1, w2)`` of ``f(θ; X) = relu(X W1) w2``.

    Attributes:
        W1: first-layer weights, shape ``(d, m)``; column ``i`` is neuron ``i``'s input weight.
        w2: second-layer weights, shape ``(m,)``.
    """

    W1: Float[Array, "d m"]
    w2: Float[Array, " m"]

    @property
    def d(self) -> int:
        return self.W1.shape[-2]

    @property
    def m(self) -> int:
        return self.W1.shape[-1]


def init_network(
    d: int,
    m: int,
    *,
    scale: float = 1e-3,
    balanced: bool = True,
    key: PRNGKeyArray,
    dtype=None,
) -> Network:
    """A random network with i.i.d. Gaussian weights of standard deviation ``scale``.

    With ``balanced=True`` each second-layer weight is set to ``w2[i] = s_i ‖W1[:, i]‖`` with a
    random sign ``s_i``, so that ``‖W1[:, i]‖ = |w2[i]|`` (the balanced initialization of gradient
    flow analyses; balance is preserved by gradient flow, Du et al. 2018).

    Args:
        d: input dimension.
        m: number of neurons.
        scale: standard deviation of the entries (small scale = "small initialization").
        balanced: make every neuron balanced.
        key: a JAX PRNG key.
        dtype: float32 or float64; defaults to JAX's default float (float64 when x64 is on).

    Returns:
        A :class:`Network` with ``W1 (d, m)`` and ``w2 (m,)``.

    Raises:
        TypeError: ``d`` or ``m`` not an int, ``scale`` not a real number (Python, NumPy or JAX
            scalar), ``key`` not a PRNG key, ``dtype`` other than float32/float64.
        ValueError: ``d`` or ``m`` below 1; ``scale`` not finite and positive.

    Example:
        >>> net = init_network(5, 50, scale=1e-3, key=jax.random.key(0))
    """
    d = check_int("d", d)
    m = check_int("m", m)
    scale = check_scalar("scale", scale, lo=0.0, traced=True)  # a traced scale: vmap over scales
    dtype = check_dtype(dtype)
    key = check_key(key)
    if not isinstance(scale, float):
        scale = scale.astype(dtype)  # a traced scale follows the network's dtype
    k1, k2 = jax.random.split(key)
    W1 = scale * jax.random.normal(k1, (d, m), dtype)
    if balanced:
        signs = jnp.where(jax.random.bernoulli(k2, 0.5, (m,)), 1.0, -1.0).astype(dtype)
        w2 = signs * jnp.linalg.norm(W1, axis=0)
    else:
        w2 = scale * jax.random.normal(k2, (m,), dtype)
    return Network(W1, w2)


def _checked(net: Network, X=None):
    """``(net, X)`` checked (:mod:`convexrelu._validation`): shapes, dtypes, finite values."""
    if X is None:
        return check_network(net, (jnp.shape(getattr(net, "W1", None)) or (0,))[0]), None
    X = check_X(X)
    return check_network(net, X.shape[1]), X


def hidden(net: Network, X: Float[Array, "n d"]) -> Float[Array, "n m"]:
    """Hidden-layer activations ``relu(X W1)``, shape ``(n, m)``.

    Raises:
        TypeError, ValueError: bad ``X`` or network (shapes, dtypes, NaN or infinite entries).
    """
    net, X = _checked(net, X)
    return jax.nn.relu(X @ net.W1)


def forward(net: Network, X: Float[Array, "n d"]) -> Float[Array, " n"]:
    """Network output ``f(θ; X) = relu(X W1) w2``, shape ``(n,)``.

    Raises:
        TypeError, ValueError: bad ``X`` or network (shapes, dtypes, NaN or infinite entries).
    """
    net, X = _checked(net, X)
    return jax.nn.relu(X @ net.W1) @ net.w2


def param_norm_sq(net: Network) -> Float[Array, ""]:
    """Squared parameter norm ``‖θ‖² = ‖W1‖_F² + ‖w2‖²``."""
    net, _ = _checked(net)
    return jnp.sum(net.W1**2) + jnp.sum(net.w2**2)


def balance(net: Network) -> Network:
    """Rescale every neuron to balance, ``‖W1[:, i]‖ = |w2[i]|``, without changing ``f``.

    Neuron ``i`` becomes ``(c W1[:, i], w2[i] / c)`` with ``c = sqrt(|w2[i]| / ‖W1[:, i]‖)``; the
    output is unchanged by positive homogeneity of relu, and the penalty ``‖θ‖²`` drops to
    ``2 Σ_i ‖W1[:, i]‖ |w2[i]|``, its minimum over such rescalings (AM-GM). Dead neurons (either
    factor zero) are set to zero.
    """
    net, _ = _checked(net)
    a = jnp.linalg.norm(net.W1, axis=0)
    b = jnp.abs(net.w2)
    alive = (a > 0) & (b > 0)
    c = jnp.sqrt(jnp.where(alive, b, 1.0) / jnp.where(alive, a, 1.0))
    W1 = jnp.where(alive, net.W1 * c, jnp.zeros_like(net.W1))
    w2 = jnp.where(alive, net.w2 / c, jnp.zeros_like(net.w2))
    return Network(W1, w2)


def neuron_patterns(net: Network, X: Float[Array, "n d"]) -> Bool[Array, "m n"]:
    """Activation pattern of each neuron on ``X``: ``D(w_i) = 1[X W1[:, i] ≥ 0]``, shape ``(m, n)``."""
    net, X = _checked(net, X)
    return (X @ net.W1).T >= 0
