"""Plots of the cross-check: margins against ``γ*``, alignment over time, neuron directions.

A public submodule that imports matplotlib when first used (``import convexrelu`` never loads
it). Install with ``pip install convexrelu[plots]``. Each function takes NumPy-convertible
arrays, draws on a new (or given) axis and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

import numpy as np


def _pyplot():
    """``matplotlib.pyplot``, imported on first use (the Agg backend outside notebooks)."""
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline",):
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'convexrelu[plots]'") from e
    return plt


def _figure_and_axes(ax, figsize=(6.0, 4.0)):
    """``(figure, ax)``: the given axes and their figure, or a new figure's axes."""
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax.figure, ax


def plot_margins(steps, margins, gamma_star=None, *, smoothed=None, ax=None, title=None):
    """Normalized margin ``γ(θ_t)`` of each run over steps, with the convex optimum ``γ* = 1/(2P*)``.

    Args:
        steps: ``(T,)`` step indices.
        margins: ``(r, T)`` or ``(T,)`` normalized margins.
        gamma_star: the maximum margin from the convex program (a horizontal line), or None.
        smoothed: optional ``(r, T)`` smoothed margins ``γ̃`` drawn dashed.
    """
    fig, ax = _figure_and_axes(ax)
    steps = np.asarray(steps)
    margins = np.atleast_2d(np.asarray(margins))
    for k, row in enumerate(margins):
        ax.plot(steps, row, color=f"C{k % 10}", lw=1.2, label="γ(θ)" if k == 0 else None)
    if smoothed is not None:
        for k, row in enumerate(np.atleast_2d(np.asarray(smoothed))):
            ax.plot(steps, row, color=f"C{k % 10}", lw=0.8, ls="--", label="γ̃(θ)" if k == 0 else None)
    if gamma_star is not None:
        ax.axhline(float(gamma_star), color="k", lw=1.5, ls=":", label="γ* = 1/(2P*)")
        top = float(gamma_star) * 1.15
        low = min(0.0, np.nanmin(margins)) if np.isfinite(np.nanmin(margins)) else 0.0
        ax.set_ylim(max(low, -top), top)
    if steps.size and steps.min() > 0 and steps.max() > 10 * steps.min():
        ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("normalized margin")
    ax.set_title(title or "Gradient descent against the convex max margin")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def plot_alignment(steps, cosines, *, ax=None, title=None):
    """Alignment of neurons with ``s_i Xᵀ D(w_i) y`` over steps.

    Args:
        steps: ``(T,)`` step indices.
        cosines: ``(r, T)`` (one curve per run, e.g. the norm-weighted mean cosine) or ``(T,)``.
    """
    fig, ax = _figure_and_axes(ax)
    steps = np.asarray(steps)
    for k, row in enumerate(np.atleast_2d(np.asarray(cosines))):
        ax.plot(steps, row, color=f"C{k % 10}", lw=1.2)
    ax.axhline(1.0, color="k", lw=1, ls=":")
    if np.any(steps > 0):  # linear up to the first record, logarithmic after
        ax.set_xscale("symlog", linthresh=float(steps[steps > 0].min()))
        ax.set_xlim(left=0)
    ax.set_ylim(min(-0.05, float(np.nanmin(cosines)) - 0.05), 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("cosine with s·Xᵀ D(w) y")
    ax.set_title(title or "Early alignment of neurons")
    ax.grid(alpha=0.3)
    return fig


def plot_directions_2d(X, y, W1, w2, *, U=None, V=None, ax=None, title=None):
    """Trained neurons' directions in 2-D against the convex solution's blocks.

    Draws the data (colour by label), each neuron ``w_i`` as a ray scaled by ``|w2[i]|·‖w_i‖``
    (red for ``w2 > 0``, blue for ``< 0``) and, if given, the convex blocks ``u_j`` (black
    arrows) and ``v_j`` (grey arrows), each scaled to unit length of the largest.
    """
    X = np.asarray(X)
    if X.shape[1] != 2:
        raise ValueError(f"plot_directions_2d needs 2-D data, got d = {X.shape[1]}")
    fig, ax = _figure_and_axes(ax, figsize=(5.0, 5.0))
    y = np.asarray(y)
    ax.scatter(*X[y > 0].T, c="tab:red", marker="+", s=40, label="y = +1")
    ax.scatter(*X[y < 0].T, c="tab:blue", marker="_", s=40, label="y = −1")
    R = float(np.max(np.linalg.norm(X, axis=1)))
    W1 = np.asarray(W1)
    w2 = np.asarray(w2)
    contrib = np.linalg.norm(W1, axis=0) * np.abs(w2)
    scale = R / max(float(contrib.max()), 1e-300)
    for i in np.argsort(contrib):
        if contrib[i] <= 1e-6 * contrib.max():
            continue
        w = W1[:, i] / np.linalg.norm(W1[:, i]) * contrib[i] * scale
        ax.plot([0, w[0]], [0, w[1]], color="tab:red" if w2[i] > 0 else "tab:blue", alpha=0.5, lw=1)
    blocks = [(U, "black", "u_j (convex)"), (V, "dimgray", "v_j (convex)")]
    norms = [np.linalg.norm(np.asarray(B), axis=1) for B, _, _ in blocks if B is not None]
    if norms:
        big = max(float(nb.max()) for nb in norms) or 1.0
        for B, colour, label in blocks:
            if B is None:
                continue
            B = np.asarray(B)
            first = True
            for b in B[np.linalg.norm(B, axis=1) > 1e-6 * big]:
                v = b / big * R
                ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=colour, lw=2))
                if first:
                    ax.plot([], [], color=colour, lw=2, label=label)
                    first = False
    ax.set_aspect("equal")
    ax.set_title(title or "Neuron directions against the convex solution")
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_patterns_2d(X, y, gates, *, ax=None, title=None):
    """The activation-pattern arrangement of 2-D data: the lines ``x_iᵀ g = 0`` and the gates."""
    X = np.asarray(X)
    if X.shape[1] != 2:
        raise ValueError(f"plot_patterns_2d needs 2-D data, got d = {X.shape[1]}")
    fig, ax = _figure_and_axes(ax, figsize=(5.0, 5.0))
    y = np.asarray(y)
    R = float(np.max(np.linalg.norm(X, axis=1)))
    for x in X:  # the boundary of {g : xᵀg ≥ 0} is the line orthogonal to x
        t = np.array([-x[1], x[0]]) / np.linalg.norm(x) * R
        ax.plot([-t[0], t[0]], [-t[1], t[1]], color="0.8", lw=0.8)
    G = np.asarray(gates)
    G = G / np.linalg.norm(G, axis=1, keepdims=True) * 0.9 * R
    ax.scatter(*G.T, s=8, c="k", label="gates (one per pattern)")
    ax.scatter(*X[y > 0].T, c="tab:red", marker="+", s=40)
    ax.scatter(*X[y < 0].T, c="tab:blue", marker="_", s=40)
    ax.set_aspect("equal")
    ax.set_title(title or f"{len(G)} activation patterns")
    ax.legend(loc="best", fontsize=8)
    return fig


def savefig(fig, path) -> None:
    """Save a figure as PNG and close it."""
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
