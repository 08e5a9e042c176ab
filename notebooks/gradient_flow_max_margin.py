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
# # Gradient flow meets the convex max-margin program
#
# Wang & Pilanci (*The Convex Geometry of Backpropagation*, arXiv 2110.06488) show that on
# **orthogonally separable** data ($x_i^\top x_k > 0$ if $y_i = y_k$, $\le 0$ otherwise) gradient
# flow on a two-layer ReLU network $f(\theta; X) = (XW_1)_+ w_2$ from a small balanced
# initialization
#
# 1. first **aligns** every neuron $w_i = W_1[:, i]$ with $s_i X^\top D(w_i)\, y$,
#    $s_i = \operatorname{sign} w_2[i]$, $D(w_i) = 1[X w_i \ge 0]$, while the loss is still
#    $\approx n\log 2$;
# 2. then, as $\|\theta\| \to \infty$, converges in direction to a KKT point of
#    $\min \tfrac12\|\theta\|^2 \text{ s.t. } y_i f(\theta; x_i) \ge 1$ (Lyu & Li, arXiv 1906.05890)
#    whose normalized margin $\gamma(\theta) = \min_i y_i f(\theta;x_i)/\|\theta\|^2$ is the
#    **global** optimum $\gamma^* = 1/(2P^*)$ of the convex program
#    $$P^* = \min \sum_j \|u_j\| + \|v_j\| \ \text{ s.t. }\ y \odot \sum_j D_j X (u_j - v_j) \ge 1,\ u_j, v_j \in K_j.$$
#
# A KKT point with multipliers $\mu \ge 0$ is globally optimal iff its **dual certificate**
# $c(\lambda) = \max_{\|u\|\le 1} |\lambda^\top (Xu)_+|$, $\lambda = y \odot \mu$, is $\le 1$ (every
# live neuron of a KKT point has $|\lambda^\top(X\hat w_i)_+| = 1$, so $c(\lambda) \ge 1$ always).
# This notebook checks each statement numerically, then looks at data that is **not**
# orthogonally separable.

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
n2 = 10 if SMALL else 20  # samples of the 2-D datasets
n5 = 10 if SMALL else 16  # samples of the d = 5 dataset
m, runs = (10, 2) if SMALL else (20, 4)  # neurons per network, runs
early_chunks, early_steps, early_lr = (8, 10, 1e-2) if SMALL else (40, 5, 1e-2)  # small steps ≈ gradient flow
late_steps = 2_000 if SMALL else 20_000  # then larger steps
SCALE = 1e-4  # small initialization
SUPPORT_TOL = 5e-2  # support vectors: margins within 5% of the smallest (see the certificate section)
key = jax.random.key(0)
k_2d, k_5d, k_xor, k_init, k_pat = jax.random.split(key, 5)

# %% [markdown]
# A few lines of glue: train `runs` networks with `train_many` in short chunks (resuming from the
# returned `state`) to watch the early phase, recording after each chunk the alignment cosine of
# every neuron, averaged with weights $|w_2[i]|\,\|w_i\|$; then continue with a larger step.

# %%
@jax.jit
def weighted_alignment(nets, X, y):
    def one(net):
        weight = jnp.abs(net.w2) * jnp.linalg.norm(net.W1, axis=0)
        return jnp.sum(weight * cr.neuron_alignment(net, X, y)) / jnp.sum(weight)

    return jax.vmap(one)(nets)


def train_runs(X, y, key, late_lr):
    d = X.shape[1]
    nets = jax.vmap(lambda k: cr.init_network(d, m, scale=SCALE, balanced=True, key=k))(jax.random.split(key, runs))
    align, state = [weighted_alignment(nets, X, y)], None
    for _ in range(early_chunks):  # early phase: small steps
        res = cr.train_many(nets, X, y, steps=early_steps, lr=early_lr, state=state, record_every=early_steps)
        nets, state = res.net, res.state
        align.append(weighted_alignment(nets, X, y))
    late = cr.train_many(nets, X, y, steps=late_steps, lr=late_lr, record_every=max(1, late_steps // 200))
    t0 = early_chunks * early_steps
    align_steps = np.arange(early_chunks + 1) * early_steps
    return late, align_steps, np.stack([np.asarray(a) for a in align], axis=1), t0 + np.asarray(late.history.step[0])


def run(nets, k):
    return jax.tree.map(lambda a: a[k], nets)


# %% [markdown]
# ## Orthogonally separable data in 2-D

# %%
X, y = cr.datasets.two_d(n2, key=k_2d, kind="orthogonal")
print("orthogonally separable:", cr.datasets.is_orthogonally_separable(X, y))
res, align_steps, align, margin_steps = train_runs(X, y, k_init, late_lr=1.0)
print("diverged:", np.asarray(res.diverged))
print("alignment after the early phase:", np.round(align[:, -1], 5))

# %% [markdown]
# The convex program over **all** activation patterns (in 2-D there are $2n$ of them, Cover's
# count $2\sum_{k<2}\binom{n-1}{k}$):

# %%
D = cr.enumerate_patterns(X)
sol = cr.solve_max_margin(X, y, D)
gamma_star = 1.0 / (2.0 * float(sol.value))
margins = np.asarray(jax.vmap(lambda net: cr.normalized_margin(net, X, y))(res.net))
print(f"p = {D.shape[0]} patterns, status {sol.status_name}, P* = {float(sol.value):.6f}, γ* = {gamma_star:.6f}")
print("γ(θ_T) / γ*:", np.round(margins / gamma_star, 4))
assert sol.ok and D.shape[0] == cr.pattern_count(n2, 2)  # every pattern: Cover's count
assert np.all(margins <= gamma_star * (1 + 1e-6))  # weak duality, all patterns
# early alignment: the cosine tends to 1 as the initialization scale → 0 (0.98 after the short early
# phase of the test suite's tiny sizes, 1.0 at the normal ones)
assert not np.any(res.diverged) and np.all(align[:, -1] >= 0.95)

# %%
fig = plotting.plot_alignment(align_steps, align, title="Early alignment with s·Xᵀ D(w) y (2-D)")

# %%
fig = plotting.plot_margins(margin_steps, res.history.normalized_margin, gamma_star, smoothed=res.history.smoothed_margin)

# %% [markdown]
# ### The dual certificate of the trained networks
#
# `kkt_certificate` rescales a network to minimum margin 1, fits multipliers $\mu \ge 0$ on the
# support vectors (samples within `support_tol` of the minimum margin) by nonnegative least
# squares of the stationarity condition $\hat\theta = \sum_i \mu_i y_i \partial_\theta f(\hat\theta; x_i)$,
# and evaluates $c(y\odot\mu)$ exactly over all the patterns. Gradient descent stops after finitely
# many steps, so the support vectors' margins are equal only up to a few percent: that is the
# `support_tol` used; `residual` is the relative stationarity residual.

# %%
for k in range(runs):
    cert = cr.kkt_certificate(run(res.net, k), X, y, patterns=D, support_tol=SUPPORT_TOL)
    print(f"run {k}: c(λ) = {float(cert.value):.4f}, stationarity residual {float(cert.residual):.3f}, "
          f"1ᵀμ = {float(cert.dual_value):.4f}, ½‖θ̂‖² = {float(cert.primal):.4f}, P* = {float(sol.value):.4f}")
    # the theorem: the trained network's multipliers pass the certificate (up to the finite training
    # that leaves its support vectors' margins a few percent apart), and weak duality 1ᵀμ/c ≤ P*
    assert float(cert.value) <= 1 + 1e-2, (k, float(cert.value))
    assert float(cert.dual_value) / float(cert.value) <= float(sol.value) * (1 + 1e-6)

# %% [markdown]
# ### Neuron directions against the convex blocks
#
# The trained neurons (rays, red for $w_2 > 0$, blue for $w_2 < 0$, length $\propto |w_2[i]|\,\|w_i\|$)
# gather on the directions of the convex solution's nonzero blocks $u_j$ (black) and $v_j$ (grey):
# the network is, up to splitting neurons, $\psi(\text{solution})$.

# %%
net0 = run(res.net, 0)
fig = plotting.plot_directions_2d(X, y, net0.W1, net0.w2, U=sol.U, V=sol.V)

# %% [markdown]
# ## Orthogonally separable data in $d = 5$
#
# In 5 dimensions Cover's count grows like $n^4$, so instead of solving over every pattern we
# solve over a **small** set — the patterns of the trained neurons plus a few random ones — which
# gives an upper bound $P^*(D') \ge P^*$. The solution's multipliers then certify it: if
# $c(y\odot\mu) \le 1$ over **all** patterns (enumerated exactly by `dual_certificate`), $\mu$ is
# feasible for the dual of the full program, so $1^\top\mu = P^*(D')$ is also a lower bound and
# $P^*(D') = P^*$.

# %%
X5, y5 = cr.datasets.orthogonally_separable(n5, 5, key=k_5d)
res5, align_steps5, align5, margin_steps5 = train_runs(X5, y5, k_init, late_lr=1.0)
trained_patterns = jax.vmap(lambda net: cr.neuron_patterns(net, X5))(res5.net).reshape(-1, n5)
D_small = cr.merge_patterns(trained_patterns, cr.sample_patterns(X5, num=50, key=k_pat))  # distinct union
sol5 = cr.solve_max_margin(X5, y5, jnp.asarray(D_small))
cert5 = cr.dual_certificate(X5, y5 * sol5.dual)
gamma_star5 = 1.0 / (2.0 * float(sol5.value))
print(f"solved on p = {D_small.shape[0]} patterns: P*(D') = {float(sol5.value):.6f}, 1ᵀμ = {float(jnp.sum(sol5.dual)):.6f}")
print(f"c(y⊙μ) over all {cr.pattern_count(n5, 5)} patterns ({cert5.method}): {float(cert5.value):.6f}")
margins5 = np.asarray(jax.vmap(lambda net: cr.normalized_margin(net, X5, y5))(res5.net))
print("alignment after the early phase:", np.round(align5[:, -1], 5))
print("γ(θ_T) / γ*:", np.round(margins5 / gamma_star5, 4))
# the headline: c(y⊙μ) ≤ 1 over every pattern makes μ dual feasible for the full program, so
# 1ᵀμ ≤ P* ≤ P*(D') and strong duality on D' (1ᵀμ = P*(D') to the solver's gap) closes it
assert sol5.ok and float(cert5.value) <= 1 + 1e-6
assert abs(float(jnp.sum(sol5.dual)) - float(sol5.value)) <= 1e-5 * float(sol5.value)
assert np.all(margins5 <= gamma_star5 * (1 + 1e-6))  # the trained patterns are in D': weak duality
for k in range(runs):
    cert = cr.kkt_certificate(run(res5.net, k), X5, y5, support_tol=SUPPORT_TOL)
    print(f"run {k}: c(λ) = {float(cert.value):.4f}, stationarity residual {float(cert.residual):.3f}")

# %%
fig = plotting.plot_margins(margin_steps5, res5.history.normalized_margin, gamma_star5, title="d = 5: gradient descent against γ*")

# %% [markdown]
# ## Data that is not orthogonally separable: XOR
#
# $y = \operatorname{sign}(x_1 x_2)$ on $[-1, 1]^2$ is realized by the bias-free network
# $|x_1 + x_2| - |x_1 - x_2|$ (four neurons) but is far from orthogonally separable: the theorem
# does not apply, and gradient descent may stop at a KKT point that is not globally optimal. What
# actually happens with these runs is printed below — a run whose certificate is computed at a
# stationary point (small residual) and is $> 1$ is stuck at a non-global KKT point; a large
# residual means the run has not reached a KKT point yet, and $c(\lambda)$ is then not informative.

# %%
Xx, yx = cr.datasets.two_d(n2, key=k_xor, kind="xor")
print("orthogonally separable:", cr.datasets.is_orthogonally_separable(Xx, yx))
Dx = cr.enumerate_patterns(Xx)
solx = cr.solve_max_margin(Xx, yx, Dx)
gamma_star_x = 1.0 / (2.0 * float(solx.value))
resx, _, alignx, margin_steps_x = train_runs(Xx, yx, k_init, late_lr=0.2)  # smaller steps: lr = 1 can diverge on XOR
marginsx = np.asarray(jax.vmap(lambda net: cr.normalized_margin(net, Xx, yx))(resx.net))
print(f"γ* = {gamma_star_x:.6f} ({solx.status_name}); ψ(solution) has {cr.to_network(solx).m} neurons")
print("diverged:", np.asarray(resx.diverged))
for k in range(runs):
    line = f"run {k}: γ/γ* = {marginsx[k] / gamma_star_x:.4f}"
    if marginsx[k] > 0:
        cert = cr.kkt_certificate(run(resx.net, k), Xx, yx, patterns=Dx, support_tol=SUPPORT_TOL)
        line += f", c(λ) = {float(cert.value):.4f}, stationarity residual {float(cert.residual):.3f}"
    else:
        line += " (does not separate the data)"
    print(line)

# %%
fig = plotting.plot_margins(margin_steps_x, resx.history.normalized_margin, gamma_star_x, title="XOR: gradient descent against γ*")

# %%
fig = plotting.plot_directions_2d(Xx, yx, run(resx.net, 0).W1, run(resx.net, 0).w2, U=solx.U, V=solx.V, title="XOR: neurons against the convex blocks")
