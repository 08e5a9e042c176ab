"""Safeguarded type-II Anderson acceleration of a fixed-point map ``x ↦ T(x)`` on flat vectors.

With residuals ``g = T(x) - x`` and the last ``m`` differences ``ΔX`` (iterates) and ``ΔG``
(residuals), the accelerated point is ``x⁺ = T(x) - (ΔX + ΔG) γ``, ``γ = argmin ‖g - ΔG γ‖``
(Tikhonov-regularized least squares). An extrapolation whose fixed-point residual grew is
rejected: the plain step from the last accepted point is taken instead and the history is
forgotten (SCS 3; O'Donoghue 2021; Walker & Ni 2011).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

MEMORY = 5
_REG = (1e-10, 1e-5)  # relative Tikhonov regularization of the least squares (float64, float32)


class AndersonState(eqx.Module):
    """The history of the accelerated map (a ring buffer of ``MEMORY`` columns)."""

    dX: Array  # (m, N) differences of iterates
    dG: Array  # (m, N) differences of residuals g = T(x) - x
    x_prev: Array
    g_prev: Array
    count: Array  # valid columns in dX, dG
    idx: Array  # next column to overwrite
    fx_base: Array  # T(x) of the last accepted point (the fallback when an extrapolation is rejected)
    gn_base: Array  # ‖g‖ there
    used: Array  # whether the current point is an extrapolation


def anderson_init(x0: Array) -> AndersonState:
    """An empty history for iterates shaped like ``x0``."""
    zero = jnp.zeros((), jnp.int32)
    return AndersonState(
        dX=jnp.zeros((MEMORY,) + x0.shape, x0.dtype),
        dG=jnp.zeros((MEMORY,) + x0.shape, x0.dtype),
        x_prev=x0,
        g_prev=jnp.zeros_like(x0),
        count=zero,
        idx=zero,
        fx_base=x0,
        gn_base=jnp.asarray(jnp.inf, x0.dtype),
        used=jnp.zeros((), bool),
    )


def _coefficients(dG, g, count):
    """``γ = argmin ‖g - ΔGᵀγ‖² + reg ‖γ‖²`` over the ``count`` valid columns (zero elsewhere)."""
    dtype = g.dtype
    valid = jnp.arange(MEMORY, dtype=jnp.int32) < count
    gram = dG @ dG.T
    scale = jnp.maximum(jnp.max(jnp.diag(gram)), jnp.finfo(dtype).tiny)
    gram = jnp.where(valid[:, None] & valid[None, :], gram, 0.0)
    gram = gram + jnp.diag(jnp.where(valid, _REG[dtype == jnp.float32] * scale, 1.0))
    return jnp.where(valid, jnp.linalg.solve(gram, jnp.where(valid, dG @ g, 0.0)), 0.0)


def anderson_step(aa: AndersonState, x: Array, fx: Array, first) -> tuple[Array, AndersonState]:
    """The next point after evaluating ``fx = T(x)`` (``first``: no previous point to difference).

    Returns ``(x⁺, state)``: the extrapolation when accepted, ``T(x)`` when there is no history,
    or the last accepted ``T`` value when ``x`` was an extrapolation whose residual grew.
    """
    g = fx - x
    gn = jnp.sqrt(jnp.sum(g * g))
    reject = aa.used & ~(gn <= aa.gn_base)
    upd = ~reject & ~first
    dX = jnp.where(upd, aa.dX.at[aa.idx].set(x - aa.x_prev), aa.dX)
    dG = jnp.where(upd, aa.dG.at[aa.idx].set(g - aa.g_prev), aa.dG)
    count = jnp.where(upd, jnp.minimum(aa.count + 1, MEMORY), aa.count)
    idx = jnp.where(upd, (aa.idx + 1) % MEMORY, aa.idx)
    x_aa = fx - _coefficients(dG, g, count) @ (dX + dG)
    use = ~reject & (count > 0) & jnp.all(jnp.isfinite(x_aa))
    x_next = jnp.where(reject, aa.fx_base, jnp.where(use, x_aa, fx))
    keep = ~reject
    state = AndersonState(
        dX=dX,
        dG=dG,
        x_prev=jnp.where(keep, x, aa.x_prev),
        g_prev=jnp.where(keep, g, aa.g_prev),
        count=jnp.where(reject, 0, count),
        idx=jnp.where(reject, 0, idx),
        fx_base=jnp.where(keep, fx, aa.fx_base),
        gn_base=jnp.where(keep, gn, aa.gn_base),
        used=use,
    )
    return x_next, state


def anderson_restart(aa: AndersonState, restart) -> AndersonState:
    """Forget the history where ``restart`` (the map changed, e.g. a new ADMM penalty)."""
    return eqx.tree_at(
        lambda a: (a.count, a.idx, a.used),
        aa,
        (jnp.where(restart, 0, aa.count), jnp.where(restart, 0, aa.idx), aa.used & ~restart),
    )
