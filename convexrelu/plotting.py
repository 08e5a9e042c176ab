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


# ----------------------------------------------------------------------------------------------
# The dual geometry (convexrelu._geometry): Q, the polar Q*, the spikes, the dual trajectory.
# ----------------------------------------------------------------------------------------------


def _geometry_axes(axes, ncols, size=4.2):
    """``(fig, [ax...])``: the given axes, or a new row of ``ncols`` panels."""
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, ncols, figsize=(size * ncols, size), constrained_layout=True, squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(axes))
        if len(axes) != ncols:
            raise ValueError(f"expected {ncols} axes, got {len(axes)}")
    return axes[0].figure, axes


def plot_dual_plane(ellipsoid, boundary, lam_star, *, y=None, path=None, spikes=None, axes=None, title=None):
    """The λ-space of ``n = 2`` (one panel) or ``n = 3`` (the three coordinate projections).

    Draws the rectified ellipsoid ``Q`` (from :func:`convexrelu.rectified_ellipsoid`: filled
    for ``d = 2``, sampled points otherwise), the boundary of its polar ``Q*`` (from
    :func:`convexrelu.polar_boundary`), the dual objective's direction ``y`` (maximize ``yᵀλ``),
    the optimum ``λ*``, the constraint lines ``s_k z_kᵀλ = 1`` of the spikes through ``λ*``
    (``n = 2``) and a path ``λ(t)`` (``(k, n)``, e.g. ``DualTrajectory.lam``).
    """
    S = np.asarray(ellipsoid.points)
    B = np.asarray(boundary.points)
    lam_star = np.asarray(lam_star)
    n = lam_star.shape[0]
    if n not in (2, 3) or S.shape[1] != n or B.shape[1] != n:
        raise ValueError(f"plot_dual_plane draws n = 2 or 3, got λ* of shape {lam_star.shape}")
    pairs = [(0, 1)] if n == 2 else [(0, 1), (0, 2), (1, 2)]
    fig, axes = _geometry_axes(axes, len(pairs), size=5.0 if n == 2 else 4.2)
    B = B[np.all(np.isfinite(B), axis=1)]
    for ax, (i, j) in zip(axes, pairs):
        if n == 2 and ellipsoid.exact:
            ax.fill(S[:, i], S[:, j], color="tab:orange", alpha=0.35, lw=0, label="Q (rectified ellipsoid)")
            ax.plot(*np.vstack([S, S[:1]])[:, [i, j]].T, color="tab:orange", lw=1)
        else:
            ax.scatter(S[:, i], S[:, j], s=2, color="tab:orange", alpha=0.4, label="Q (sampled)")
        if n == 2:  # the ordered angle grid
            ax.plot(*np.vstack([B, B[:1]])[:, [i, j]].T, color="tab:green", lw=1.5, label="boundary of Q*")
        else:
            ax.scatter(B[:, i], B[:, j], s=2, color="tab:green", alpha=0.3, label="boundary of Q* (projected)")
        if y is not None:
            v = np.asarray(y, dtype=float)[[i, j]]
            v = v / max(np.linalg.norm(v), 1e-300) * 0.5 * np.linalg.norm(lam_star[[i, j]])
            ax.annotate("", xy=v, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color="k", lw=1.5))
            ax.plot([], [], color="k", lw=1.5, label="dual objective yᵀλ")
        if n == 2 and spikes is not None:
            for z, s in zip(np.asarray(spikes.points), np.asarray(spikes.signs)):
                t = np.array([-z[1], z[0]]) / max(np.linalg.norm(z), 1e-300) * np.linalg.norm(lam_star)
                ax.plot(*np.stack([lam_star - t, lam_star + t]).T, ls=":", color="0.3", lw=1)
            ax.plot([], [], ls=":", color="0.3", label="active constraints s zₖᵀλ = 1")
        if path is not None:
            P = np.asarray(path)
            ax.plot(P[:, i], P[:, j], "-", color="tab:purple", lw=1, alpha=0.7)
            ax.scatter(P[:, i], P[:, j], c=np.arange(len(P)), cmap="viridis", s=14, zorder=3, label="λ(t) (early → late)")
        ax.scatter(*lam_star[[i, j]], marker="*", s=180, color="crimson", zorder=4, label="λ*")
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        ax.set_xlabel(f"λ_{i + 1}")
        ax.set_ylabel(f"λ_{j + 1}")
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].legend(loc="best", fontsize=7)
    axes[0].set_title(title or ("The dual: Q, Q* and λ*" if n == 2 else "Projections of Q, Q* and λ*"))
    return fig


def plot_spikes_2d(X, y, spikes, *, nets=None, dominant=1e-2, ax=None, title=None):
    """2-D data with the spikes of ``λ*`` as rays and the recorded neurons' directions.

    Spikes: rays (red sign ``+1``, blue ``-1``). ``nets`` (stacked ``W1 (k, 2, m)``, ``w2 (k, m)``,
    e.g. ``DualTrajectory.nets``): each dominant neuron (weight ``|w2_i|‖w_i‖ ≥ dominant·max``)
    is a dot at its unit direction, coloured from early (light) to late (dark) records.
    """
    X = np.asarray(X)
    if X.shape[1] != 2:
        raise ValueError(f"plot_spikes_2d needs 2-D data, got d = {X.shape[1]}")
    fig, ax = _geometry_axes(None if ax is None else [ax], 1, size=5.0)
    ax = ax[0]
    y = np.asarray(y)
    R = float(np.max(np.linalg.norm(X, axis=1)))
    ax.scatter(*X[y > 0].T, c="tab:red", marker="+", s=40, label="y = +1")
    ax.scatter(*X[y < 0].T, c="tab:blue", marker="_", s=40, label="y = −1")
    for u, s in zip(np.asarray(spikes.directions), np.asarray(spikes.signs)):
        colour = "tab:red" if s > 0 else "tab:blue"
        ax.plot([0.0, 1.15 * R * u[0]], [0.0, 1.15 * R * u[1]], color=colour, lw=2.2)
    ax.plot([], [], color="k", lw=2.2, label="spikes of λ* (red +, blue −)")
    ax.set_xlim(-1.25 * R, 1.25 * R)
    ax.set_ylim(-1.25 * R, 1.25 * R)
    if nets is not None:
        W, a = np.asarray(nets.W1), np.asarray(nets.w2)
        k = W.shape[0]
        for t in range(k):
            wt = np.abs(a[t]) * np.linalg.norm(W[t], axis=0)
            keep = wt >= dominant * wt.max()
            U = W[t][:, keep] / np.linalg.norm(W[t][:, keep], axis=0)
            ax.scatter(*(R * U), s=10, color=_pyplot().cm.viridis(t / max(k - 1, 1)), zorder=3)
        ax.scatter([], [], s=10, color=_pyplot().cm.viridis(1.0), label="neuron directions (early → late)")
    ax.set_aspect("equal")
    ax.set_title(title or "Neurons converge onto the spikes of λ*")
    ax.legend(loc="best", fontsize=7)
    return fig


def plot_dual_trajectory(traj, *, axes=None, title=None):
    """Three panels of a :class:`convexrelu.DualTrajectory` over steps: ``‖λ(t) - λ*‖/‖λ*‖``,
    ``c(λ(t))`` (against 1) and the largest angle of a dominant neuron to its spike."""
    fig, axes = _geometry_axes(axes, 3, size=3.6)
    steps = np.asarray(traj.steps)
    tiny = np.finfo(np.float64).tiny
    axes[0].semilogy(steps, np.maximum(np.asarray(traj.distance), tiny), "o-", ms=3)
    axes[0].set_ylabel("‖λ(t) − λ*‖ / ‖λ*‖")
    axes[1].plot(steps, np.asarray(traj.certificate), "o-", ms=3, color="tab:green")
    axes[1].axhline(1.0, color="k", ls=":", lw=1)
    axes[1].set_ylabel("c(λ(t))")
    axes[2].semilogy(steps, np.maximum(np.asarray(traj.max_angle), tiny), "o-", ms=3, color="tab:purple")
    axes[2].set_ylabel("largest neuron–spike angle (rad)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_title(title or "The dual trajectory of gradient descent")
    return fig
