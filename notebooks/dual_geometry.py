# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The dual geometry: gradient flows converge to extreme points of the dual
#
# Wang & Pilanci (*The Convex Geometry of Backpropagation: Neural Network Gradient Flows Converge
# to Extreme Points of the Dual Convex Program*, arXiv 2110.06488) draw the dual of the convex
# max-margin program with three objects:
#
# * the **rectified ellipsoid** $Q = \{(Xu)_+ : \|u\|_2 \le 1\} \subset \mathbb{R}^n$;
# * its **polar** $Q^* = \{\lambda : \max_{z \in Q} |\lambda^\top z| \le 1\} = \{\lambda : c(\lambda) \le 1\}$,
#   $c(\lambda) = \max_{\|u\| \le 1} |\lambda^\top (Xu)_+|$; the max-margin dual is
#   $\max y^\top\lambda$ s.t. $\lambda \in Q^*$, $y \odot \lambda \ge 0$ (with $\lambda = y \odot \mu$);
# * the **spikes** of the optimum $\lambda^*$: the maximizers $u$ of $|\lambda^{*\top}(Xu)_+|$ on
#   the unit sphere, along which every optimal neuron points.
#
# The title's claim: the KKT multipliers $\lambda(t)$ of gradient descent converge to $\lambda^*$,
# an extreme point of the dual feasible set, and the neurons converge onto its spikes. This
# notebook draws the objects and measures the claim along training runs.

# %% [markdown]
# **Install.** The next cell installs `convexrelu` only where it cannot be imported (Colab, a fresh
# kernel); where it is installed, as in the project's own environment, it does nothing. It installs
# `convexrelu[all]` (the library with cvxpy, matplotlib and scikit-learn) from PyPI, once the package
# is published there, else from the project's repository when `pyproject.toml` names one in
# `[project.urls]` (copied into `REPOSITORY`). No repository is named yet: until then, where PyPI
# has no `convexrelu`, install it from a clone of the project (`pip install -e ".[all]"`).

# %%
import importlib
import importlib.util

REPOSITORY = None  # the repository URL of pyproject.toml's [project.urls]: none is named yet

if importlib.util.find_spec("convexrelu") is None:  # not importable here: install it
    # %pip install -q "convexrelu[all]"
    importlib.invalidate_caches()
    if importlib.util.find_spec("convexrelu") is None and REPOSITORY:  # not on PyPI: the repository
        # %pip install -q "convexrelu[all] @ git+{REPOSITORY}"
        importlib.invalidate_caches()
    if importlib.util.find_spec("convexrelu") is None:
        raise ModuleNotFoundError('convexrelu could not be installed: pip install -e ".[all]" from a clone of the project')


# %%
import os

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import convexrelu as cr
from convexrelu import plotting

SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"  # tiny sizes for the test suite
steps, chunks = (4_000, 8) if SMALL else (20_000, 40)  # gradient descent, recorded after each chunk
m = 30  # neurons (with fewer, a small initialization can leave a sample uncovered by live neurons)
n2d = 10 if SMALL else 20  # samples of the 2-D datasets
num = 400 if SMALL else 2_000  # points of Q and of the boundary of Q*
key = jax.random.key(0)
k_init, k_2d, k_xor, k_q3 = jax.random.split(key, 4)

# %% [markdown]
# Glue: train one network by gradient descent with Lyu & Li's loss-based step (as the cross-check
# does, with a larger cap on the step) in `chunks` calls that resume from the returned `state`;
# `cr.dual_trajectory` reads the network after each chunk.

# %%
def train_chunks(X, y, key):
    net = cr.init_network(X.shape[1], m, scale=1e-3, balanced=True, key=key)
    results, state = [], None
    for _ in range(chunks):
        res = cr.train(net, X, y, steps=steps // chunks, schedule="loss-based", lr=1e-3, max_alpha=1e-2,
                       state=state, record_every=steps // chunks)
        net, state = res.net, res.state
        results.append(res)
    return results


def optimum(X, y):
    sol = cr.solve_max_margin(X, y, cr.enumerate_patterns(X), tol=1e-9)
    return sol, y * sol.dual


# %% [markdown]
# ## n = 2: the λ-plane
#
# Two samples in $d = 2$, orthogonally separable ($x_1^\top x_2 \le 0$, opposite labels). $Q$ and
# $Q^*$ live in the same plane $\mathbb{R}^2$. $\lambda^*$ sits where the dual objective $y^\top\lambda$
# leaves $Q^*$: on the active constraints $s_k z_k^\top \lambda = 1$ of its spikes
# ($z_k = (Xu_k)_+$), which meet there in a corner: an extreme point.

# %%
X2 = jnp.array([[1.0, 0.3], [-0.4, 1.0]])
y2 = jnp.array([1.0, -1.0])
assert cr.datasets.is_orthogonally_separable(X2, y2)
sol2, lam2 = optimum(X2, y2)
ext2 = cr.is_extreme_point(X2, lam2, y=y2)
traj2 = cr.dual_trajectory(train_chunks(X2, y2, k_init), X2, y2, sol2, support_tol=1.0)
print(f"λ* = {np.round(np.asarray(lam2), 6)}, c(λ*) = {float(ext2.value):.9f}, extreme point: {ext2.extreme}, vertex: {ext2.vertex}")
print(f"‖λ(t) − λ*‖/‖λ*‖: first record {float(traj2.distance[0]):.3g}, last {float(traj2.distance[-1]):.3g}")
assert abs(float(ext2.value) - 1.0) < 1e-6 and ext2.extreme
assert float(traj2.distance[-1]) < 1e-2 and float(traj2.distance[-1]) < float(traj2.distance[0])

# %%
fig = plotting.plot_dual_plane(cr.rectified_ellipsoid(X2, num=num), cr.polar_boundary(X2, num=num), lam2,
                               y=y2, path=traj2.lam, spikes=ext2.spikes)

# %% [markdown]
# ## n = 3: projections
#
# Three samples in $d = 2$ (two labelled $+1$, one $-1$). $Q$ is a surface in $\mathbb{R}^3$ and $Q^*$ a
# body; the panels show the coordinate projections of $Q$ (its exact curve $\{(Xu)_+ : \|u\| = 1\}$),
# of sampled points of the boundary of $Q^*$, of $\lambda^*$ and of the path $\lambda(t)$.
# Here $\lambda^*$ is an extreme point on a curved part of $Q^*$'s boundary, not a vertex: its
# spikes' points do not span $\mathbb{R}^3$, the spikes' faces do.

# %%
X3 = jnp.array([[1.0, 0.2], [0.6, 0.9], [-0.8, 0.3]])
y3 = jnp.array([1.0, 1.0, -1.0])
assert cr.datasets.is_orthogonally_separable(X3, y3)
sol3, lam3 = optimum(X3, y3)
ext3 = cr.is_extreme_point(X3, lam3, y=y3)
traj3 = cr.dual_trajectory(train_chunks(X3, y3, k_init), X3, y3, sol3, support_tol=1.0)
print(f"λ* = {np.round(np.asarray(lam3), 6)}, c(λ*) = {float(ext3.value):.9f}, extreme point: {ext3.extreme}, vertex: {ext3.vertex}")
print(f"‖λ(t) − λ*‖/‖λ*‖: first record {float(traj3.distance[0]):.3g}, last {float(traj3.distance[-1]):.3g}")
assert abs(float(ext3.value) - 1.0) < 1e-6 and ext3.extreme
assert float(traj3.distance[-1]) < 1e-2 and float(traj3.distance[-1]) < float(traj3.distance[0])

# %%
fig = plotting.plot_dual_plane(cr.rectified_ellipsoid(X3, num=num), cr.polar_boundary(X3, num=num, key=k_q3),
                               lam3, y=y3, path=traj3.lam)

# %% [markdown]
# ## 2-D data: neurons converge onto the spikes
#
# Orthogonally separable data in the plane. The spikes of $\lambda^*$ (`cr.dual_spikes`, exact over
# every activation pattern) are drawn as rays; the dominant neurons' directions after each chunk
# of training as dots, light (early) to dark (late).

# %%
X, y = cr.datasets.two_d(n2d, key=k_2d, kind="orthogonal")
assert cr.datasets.is_orthogonally_separable(X, y)
sol, lam_star = optimum(X, y)
spikes = cr.dual_spikes(X, lam_star)
# support vectors: margins within 5% of the smallest (the two classes' margins equalize slowly)
traj = cr.dual_trajectory(train_chunks(X, y, k_init), X, y, sol, support_tol=5e-2)
print(f"c(λ*) = {float(spikes.value):.9f}; {spikes.directions.shape[0]} spikes, signs {np.asarray(spikes.signs)}")
print(f"λ* extreme point of the dual feasible set: {cr.is_extreme_point(X, lam_star, y=y).extreme}")
print(f"‖λ(t) − λ*‖/‖λ*‖ last {float(traj.distance[-1]):.3g}; c(λ(t)) last {float(traj.certificate[-1]):.9f}; "
      f"largest dominant neuron–spike angle {float(traj.max_angle[-1]):.2e} rad")
assert abs(float(spikes.value) - 1.0) < 1e-6
assert float(traj.distance[-1]) < 1e-2 and float(traj.distance[-1]) < float(traj.distance[0])
assert float(traj.max_angle[-1]) < 1e-2  # the neurons align with the spikes

# %%
fig = plotting.plot_spikes_2d(X, y, spikes, nets=traj.nets)

# %%
fig = plotting.plot_dual_trajectory(traj)

# %% [markdown]
# ## The contrast case: XOR
#
# XOR labels are far from orthogonally separable, so the theorem says nothing. The run below is
# measured the same way; the printout says what happens in this run. A large stationarity
# residual means the run is not at a KKT point yet, and its $\lambda(t)$ says little. If $\lambda(t)$ settles at a
# point with $c(\lambda) > 1$ and a small stationarity residual, gradient descent has stopped at a
# KKT point that is not globally optimal (its margin stays below $\gamma^*$); if instead
# $c(\lambda(t)) \to 1$ and $\lambda(t) \to \lambda^*$, this run found the global optimum although
# no theorem promised it. Nothing is asserted about this case.

# %%
Xx, yx = cr.datasets.two_d(n2d, key=k_xor, kind="xor")
print("orthogonally separable:", cr.datasets.is_orthogonally_separable(Xx, yx))
solx, lamx = optimum(Xx, yx)
spikesx = cr.dual_spikes(Xx, lamx)
try:
    trajx = cr.dual_trajectory(train_chunks(Xx, yx, k_init), Xx, yx, solx, support_tol=5e-2)
except ValueError as e:  # no recorded network separates the data
    trajx = None
    print("XOR: no recorded network separates the data:", e)
if trajx is not None:
    print(f"XOR: ‖λ(t) − λ*‖/‖λ*‖ last {float(trajx.distance[-1]):.3g}, c(λ(t)) last {float(trajx.certificate[-1]):.4f}, "
          f"stationarity residual {float(trajx.residual[-1]):.2g}, γ/γ* last {float(trajx.margin_ratio[-1]):.4f}, "
          f"largest neuron–spike angle {float(trajx.max_angle[-1]):.3g} rad")
    if float(trajx.residual[-1]) > 1e-2:
        print("→ not a KKT point yet (stationarity residual above 1e-2): λ(t) and c(λ(t)) are not informative yet.")
    elif float(trajx.certificate[-1]) > 1 + 1e-3:
        print("→ a KKT point with c(λ) > 1: gradient descent stopped at a point that is not globally optimal.")
    else:
        print("→ a KKT point with c(λ) ≤ 1: this run is certified globally optimal despite the XOR labels.")

# %%
if trajx is not None:
    fig = plotting.plot_spikes_2d(Xx, yx, spikesx, nets=trajx.nets, title="XOR: neurons against the spikes of λ*")
    fig = plotting.plot_dual_trajectory(trajx, title="XOR: the dual trajectory")
