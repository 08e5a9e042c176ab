"""Input checks shared by every entry point (STYLE.md §8: errors by what is known when).

Shapes and dtypes are known at trace time and always checked. Values (labels not ±1, NaN or
infinite entries) are checked only when the arrays are concrete: inside ``jit``/``vmap`` the
caller's entry point has already checked them, or the solver reports a status instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(*arrays) -> bool:
    """True when none of ``arrays`` is a JAX tracer (so their values can be inspected)."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def check_X(X, *, name: str = "X"):
    """``X`` must be a 2-D floating array with finite entries. Returns it as a JAX array."""
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {X.shape}")
    if not jnp.issubdtype(X.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating array, got dtype {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape {X.shape}")
    # NumPy, not jnp: inside a jit trace jnp turns even a concrete (closed-over) array into a tracer
    if is_concrete(X) and not np.all(np.isfinite(np.asarray(X))):
        bad = int(np.sum(~np.isfinite(np.asarray(X))))
        raise ValueError(f"{name} has {bad} NaN or infinite entries")
    return X


def check_y(y, n: int, *, name: str = "y", dtype=None):
    """``y`` must be ``(n,)`` with values in {-1, +1}. Returns it as a JAX array of ``dtype``."""
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match X's {n} samples, got {y.shape}")
    if is_concrete(y):
        vals = np.asarray(y)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{name} has NaN or infinite entries")
        if not np.all((vals == 1) | (vals == -1)):
            bad = np.unique(vals[(vals != 1) & (vals != -1)])[:5]
            raise ValueError(f"labels {name} must be ±1, found values {bad.tolist()}")
    if dtype is not None:
        y = y.astype(dtype)
    return y


def check_Xy(X, y):
    """Check a labelled dataset and return ``(X, y)`` with ``y`` cast to ``X``'s dtype."""
    X = check_X(X)
    y = check_y(y, X.shape[0], dtype=X.dtype)
    return X, y


def check_targets(y, n: int, *, name: str = "y", dtype=None):
    """Real-valued regression targets ``(n,)`` (squared loss): finite, any value."""
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match X's {n} samples, got {y.shape}")
    if is_concrete(y) and not np.all(np.isfinite(np.asarray(y))):
        raise ValueError(f"{name} has NaN or infinite entries")
    return y if dtype is None else y.astype(dtype)


def check_patterns(D, n: int, *, name: str = "patterns"):
    """Activation patterns: a boolean ``(p, n)`` array."""
    D = jnp.asarray(D)
    if D.ndim != 2 or D.shape[1] != n:
        raise ValueError(f"{name} must have shape (p, {n}) to match X's {n} samples, got {D.shape}")
    if D.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one activation pattern is needed")
    if D.dtype != jnp.bool_:
        if is_concrete(D) and not np.all((np.asarray(D) == 0) | (np.asarray(D) == 1)):
            raise ValueError(f"{name} must be boolean or 0/1 valued")
        D = D.astype(bool)
    return D


def check_network(net, d: int):
    """The network's input dimension must match the data's ``d``."""
    if net.W1.ndim != 2 or net.w2.ndim != 1 or net.W1.shape[1] != net.w2.shape[0]:
        raise ValueError(
            f"network must have W1 (d, m) and w2 (m,), got W1 {net.W1.shape}, w2 {net.w2.shape}"
        )
    if net.W1.shape[0] != d:
        raise ValueError(f"network expects d = {net.W1.shape[0]} features but X has d = {d}")
    if is_concrete(net.W1, net.w2) and not (
        np.all(np.isfinite(np.asarray(net.W1))) and np.all(np.isfinite(np.asarray(net.w2)))
    ):
        raise ValueError("network has NaN or infinite weights (a diverged run?)")
