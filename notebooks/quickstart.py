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
# # convexrelu quickstart
#
# A two-layer ReLU network without biases, $f(\theta; X) = (X W_1)_+ w_2$ with
# $\theta = (W_1 \in \mathbb{R}^{d\times m}, w_2 \in \mathbb{R}^m)$, is trained by gradient descent on
# a non-convex loss. Its best possible *normalized margin*
# $\gamma(\theta) = \min_i y_i f(\theta; x_i) / \|\theta\|^2$ is the value of a **convex** program
# (Wang & Pilanci, *The Convex Geometry of Backpropagation*, arXiv 2110.06488):
#
# $$P^* = \min \sum_j \|u_j\| + \|v_j\| \quad\text{s.t.}\quad y \odot \sum_j D_j X (u_j - v_j) \ge 1,
# \quad u_j, v_j \in K_j, \qquad \gamma^* = \frac{1}{2P^*},$$
#
# where $D_j = 1[X g_j \ge 0]$ runs over the *activation patterns* of the data and
# $K_j = \{u : (2D_j - 1) \odot X u \ge 0\}$ is the cone of weights with pattern $D_j$.
#
# This notebook walks through the library once: data → network → losses and margins → patterns →
# gradient descent (several runs at once) → the convex program → $\gamma^*$ against the trained
# margins → the network $\psi(\text{solution})$ that attains $\gamma^*$.

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

# CONVEXRELU_SMALL=1 (the test suite) picks tiny sizes; the defaults take a minute or two on a laptop.
SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"
n, d = (12, 2) if SMALL else (40, 3)  # samples, features
m, runs = (10, 2) if SMALL else (50, 8)  # neurons per network, gradient-descent runs
steps = 2_000 if SMALL else 20_000
key = jax.random.key(0)
k_data, k_net, k_runs, k_pat = jax.random.split(key, 4)

# %% [markdown]
# ## Data
#
# Orthogonally separable data: $x_i^\top x_k > 0$ when $y_i = y_k$ and $\le 0$ otherwise. On such
# data gradient descent from a small initialization provably reaches the convex optimum's margin.

# %%
X, y = cr.datasets.orthogonally_separable(n, d, key=k_data)
print(X.shape, y.shape, "orthogonally separable:", cr.datasets.is_orthogonally_separable(X, y))

# %% [markdown]
# ## A network, its losses and margins
#
# `init_network` draws Gaussian weights of standard deviation `scale` and, with `balanced=True`,
# sets $w_2[i] = \pm\|W_1[:, i]\|$. The network is 2-homogeneous, $f(c\theta) = c^2 f(\theta)$, so
# the normalized margin does not depend on the scale. The smoothed margin
# $\tilde\gamma(\theta) = \ell^{-1}(\mathcal{L}(\theta)) / \|\theta\|^2$ (logistic
# $\ell^{-1}(s) = -\log(e^s - 1)$) is a lower bound of $\gamma$ once the loss is small.

# %%
net = cr.init_network(d, m, scale=1e-3, balanced=True, key=k_net)
print("f(θ; X)[:4]      =", cr.forward(net, X)[:4])
print("logistic loss    =", float(cr.logistic_loss(net, X, y)), " (n log 2 =", n * np.log(2.0), ")")
print("normalized margin =", float(cr.normalized_margin(net, X, y)))
print("smoothed margin   =", float(cr.smoothed_margin(net, X, y)), "(negative until 𝓛 < log 2)")
net2 = jax.tree.map(lambda a: 2.0 * a, net)  # θ → 2θ
print("f(2θ) = 4 f(θ):", bool(jnp.allclose(cr.forward(net2, X), 4 * cr.forward(net, X))),
      "  γ(2θ) = γ(θ):", bool(jnp.isclose(cr.normalized_margin(net2, X, y), cr.normalized_margin(net, X, y))))
assert jnp.allclose(cr.forward(net2, X), 4 * cr.forward(net, X), rtol=1e-12, atol=0)  # 2-homogeneous
assert jnp.isclose(cr.normalized_margin(net2, X, y), cr.normalized_margin(net, X, y), rtol=1e-12)
# at a tiny initialization f ≈ 0, so the summed logistic loss is n log 2 up to ½|Σ y_i f_i|
assert abs(float(cr.logistic_loss(net, X, y)) - n * np.log(2.0)) <= 0.5 * float(jnp.sum(jnp.abs(cr.forward(net, X)))) + 1e-12

# %% [markdown]
# ## Activation patterns
#
# The number of distinct patterns of $n$ points in general position in rank $r$ is
# $2\sum_{k<r}\binom{n-1}{k}$ (Cover), at most $2r\,(e(n-1)/r)^r$: polynomial in $n$ for a fixed
# dimension. `enumerate_patterns` lists all of them exactly; `sample_patterns` draws random gates
# $g_j \sim N(0, I)$ and keeps the distinct $1[X g_j \ge 0]$ (a subset).

# %%
D = cr.enumerate_patterns(X)
D_sampled = cr.sample_patterns(X, num=200, key=k_pat)
print(f"enumerated p = {D.shape[0]}, Cover's count = {cr.pattern_count(n, d)}, bound = {cr.pattern_bound(n, d):.0f}")
print(f"200 random gates found {D_sampled.shape[0]} distinct patterns")
assert D.shape[0] == cr.pattern_count(n, d) <= cr.pattern_bound(n, d)  # Gaussian data: general position
assert D_sampled.shape[0] <= D.shape[0]  # a subset

# %% [markdown]
# ## Gradient descent, several runs at once
#
# `train_many` trains `runs` networks on the same data in one jitted `lax.scan` (it equals
# `jax.vmap(train)`), with the step $\theta \leftarrow \theta - \eta \nabla \mathcal{L}(\theta)$ on the
# summed logistic loss. The history records $\gamma(\theta_t)$, $\tilde\gamma(\theta_t)$ and
# $\log \mathcal{L}(\theta_t)$.

# %%
nets = jax.vmap(lambda k: cr.init_network(d, m, scale=1e-3, balanced=True, key=k))(jax.random.split(k_runs, runs))
res = cr.train_many(nets, X, y, steps=steps, schedule="constant", lr=1.0, record_every=max(1, steps // 200))
margins = np.asarray(jax.vmap(lambda net: cr.normalized_margin(net, X, y))(res.net))
print("diverged:", np.asarray(res.diverged))
print("final normalized margins:", np.round(margins, 5))

# %% [markdown]
# ## The convex max-margin program
#
# `solve_max_margin` is a native JAX solver (ADMM with an exact linear solve); it returns a
# `ConvexSolution` with the blocks $u_j, v_j$, the optimal value $P^*$, the multipliers $\mu$ of the
# margin constraints, the duality gap and a status.

# %%
sol = cr.solve_max_margin(X, y, D)
gamma_star = 1.0 / (2.0 * float(sol.value))
print(f"status {sol.status_name}, P* = {float(sol.value):.6f}, gap {float(sol.gap):.1e}, iterations {int(sol.iterations)}")
print(f"γ* = 1/(2P*) = {gamma_star:.6f}")
assert sol.ok and float(sol.gap) <= 1e-6  # certified: relative duality gap within the default tol

# %% [markdown]
# ## $\gamma^*$ against the trained margins
#
# Weak duality: every network has $\gamma(\theta) \le \gamma^*$ (with all the patterns). Gradient
# descent approaches $\gamma^*$ slowly — the margin converges like $1/\log t$ — so the ratio below
# is close to, but below, 1.

# %%
print("γ(θ_T) / γ* per run:", np.round(margins / gamma_star, 4))
assert np.all(margins <= gamma_star * (1 + 1e-6)), "weak duality γ(θ) ≤ γ* violated"

# %% [markdown]
# ## $\psi$: from the convex solution to an optimal network
#
# Each nonzero block becomes one balanced neuron: $u_j \mapsto (u_j/\sqrt{\|u_j\|}, +\sqrt{\|u_j\|})$,
# $v_j \mapsto (v_j/\sqrt{\|v_j\|}, -\sqrt{\|v_j\|})$. Because $u_j \in K_j$ the ReLU acts linearly on
# it, so $f(\psi; X) = \sum_j D_j X(u_j - v_j)$ and $\tfrac12\|\psi\|^2 = P^*$: the network attains
# $\gamma^*$, with only a handful of neurons.

# %%
psi = cr.to_network(sol)
print(f"ψ has m = {psi.m} neurons; ½‖θ‖² = {0.5 * float(cr.param_norm_sq(psi)):.6f} (P* = {float(sol.value):.6f})")
print(f"γ(ψ) = {float(cr.normalized_margin(psi, X, y)):.6f}  (γ* = {gamma_star:.6f}); minimal: {cr.is_minimal(psi, X)}")
# ½‖ψ‖² = P* and γ(ψ) = γ* (to_network drops blocks below its tolerance: hence 1e-5, not 1e-12)
assert np.isclose(0.5 * float(cr.param_norm_sq(psi)), float(sol.value), rtol=1e-5)
assert np.isclose(float(cr.normalized_margin(psi, X, y)), gamma_star, rtol=1e-5)

# %%
steps_rec = np.asarray(res.history.step[0])
fig = plotting.plot_margins(steps_rec, res.history.normalized_margin, gamma_star, title="Gradient descent runs and γ*")
