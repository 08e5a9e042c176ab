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
# # The optimal set of a regularized two-layer ReLU network
#
# The weight-decay objective of a bias-free two-layer ReLU network,
# $$\min_\theta\ \ell(f(\theta; X), y) + \frac{\beta}{2}\|\theta\|^2, \qquad f(\theta; X) = (XW_1)_+ w_2,$$
# is non-convex, yet (Pilanci & Ergen, arXiv 2002.10553; Wang, Lacotte & Pilanci, arXiv 2006.05900)
# it has the same optimal value as the convex group-lasso program
# $$\min_{u_j, v_j \in K_j}\ \ell\Big(\sum_j D_j X (u_j - v_j),\ y\Big) + \beta \sum_j \|u_j\| + \|v_j\|$$
# over the activation patterns $D_j$, once the width $m \ge m^*$, with $m^* \le n + 1$. The maps
# between the two describe **all** optimal networks:
#
# * $\psi$ (convex → network): $u_j \mapsto (u_j/\sqrt{\|u_j\|}, +\sqrt{\|u_j\|})$,
#   $v_j \mapsto (v_j/\sqrt{\|v_j\|}, -\sqrt{\|v_j\|})$;
# * $\phi$ (network → convex): group neurons by (pattern on $X$, sign of $w_2$),
#   $u_j = \sum |w_{2,i}|\, W_1[:, i]$;
# * splitting a neuron into $(\sqrt{\gamma_k} w, \sqrt{\gamma_k} a)$, $\sum_k \gamma_k = 1$, keeps the
#   output and the penalty — so optimal networks come in continuous families;
# * pruning along null vectors of the blocks' fits reaches $\le n$ blocks with the same objective.
#
# A network is globally optimal iff it is stationary and
# $\max_{\|u\|\le 1} |r^\top (Xu)_+| \le \beta$ with $r = -\nabla_f \ell$ (the **regularized
# certificate**, reported as that maximum divided by $\beta$).

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
import optax

jax.config.update("jax_enable_x64", True)

import convexrelu as cr

SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"  # tiny sizes for the test suite
n, d = (8, 2) if SMALL else (12, 3)
beta = 0.1
gd_steps = 5_000 if SMALL else 50_000
key = jax.random.key(0)
k_data, k_split, k_gd = jax.random.split(key, 3)

# %% [markdown]
# ## Data and the convex program (squared loss)
#
# Inputs are Gaussian, labelled by a random ReLU teacher; the squared loss
# $\ell(f, y) = \tfrac12\|f - y\|^2$. The program is solved over every activation pattern.

# %%
X, y = cr.datasets.teacher(n, d, key=k_data)[:2]
D = cr.enumerate_patterns(X)
sol = cr.solve_regularized(X, y, D, beta=beta, loss="squared")
print(f"p = {D.shape[0]} patterns; status {sol.status_name}; optimal value {float(sol.value):.6f}; gap {float(sol.gap):.1e}")
assert sol.ok and float(sol.gap) <= 1e-6


def objective(net, X, y):
    return cr.regularized_objective(net, X, y, beta=beta, loss="squared")


# %% [markdown]
# ## $\psi$: an optimal network
#
# The convex optimum maps to a network with the same objective value. (The first-order solver
# leaves tiny nonzero blocks, so $\psi$ may have many small neurons: pruning below removes them.)

# %%
net = cr.to_network(sol)
print(f"ψ(solution): m = {net.m} neurons, objective {float(objective(net, X, y)):.6f} (convex optimum {float(sol.value):.6f})")
fit = cr.convex_fit(X, sol.patterns, sol.U, sol.V)
print("f(ψ; X) = Σ_j D_j X (u_j - v_j):", bool(jnp.allclose(cr.forward(net, X), fit, atol=1e-8)))
assert jnp.allclose(cr.forward(net, X), fit, atol=1e-8)  # u_j ∈ K_j: the ReLU acts linearly on it
assert np.isclose(float(objective(net, X, y)), float(sol.value), rtol=1e-9)  # ½‖ψ‖² = Σ‖u_j‖ + ‖v_j‖

# %% [markdown]
# ## $\phi$: back to the convex program
#
# $\phi(\psi(\text{solution}))$ groups the neurons by pattern and sign: the fit and the
# group-lasso objective are unchanged.

# %%
blocks = cr.to_convex(net, X)
value_phi = cr.regularized_primal_objective(X, y, blocks.patterns, blocks.U, blocks.V, beta=beta, loss="squared")
print(f"φ(ψ): {blocks.patterns.shape[0]} patterns, convex objective {float(value_phi):.6f}")
# same fit; merging neurons of one pattern and sign can only lower the penalty (triangle
# inequality), and no feasible point is below the optimum, which sol.value bounds within its gap
assert float(sol.value) * (1 - 1e-6) <= float(value_phi) <= float(sol.value) * (1 + 1e-12)

# %% [markdown]
# ## Splitting keeps the output and the penalty
#
# Every neuron split into 3 random pieces gives another optimal network — three times wider and
# no longer minimal.

# %%
wide = cr.split(net, num=3, key=k_split)
print(f"split: m = {wide.m}, same output: {bool(jnp.allclose(cr.forward(wide, X), cr.forward(net, X)))}, "
      f"same ‖θ‖²: {bool(jnp.isclose(cr.param_norm_sq(wide), cr.param_norm_sq(net)))}, "
      f"objective {float(objective(wide, X, y)):.6f}, minimal: {cr.is_minimal(wide, X)}")
assert jnp.allclose(cr.forward(wide, X), cr.forward(net, X), rtol=1e-10, atol=1e-12)
assert np.isclose(float(cr.param_norm_sq(wide)), float(cr.param_norm_sq(net)), rtol=1e-10)
assert not cr.is_minimal(wide, X)

# %% [markdown]
# ## Pruning: at most $n$ blocks, so $m^* \le n + 1$
#
# While the active blocks' fits $\pm D_j X b_k$ are linearly dependent, move along a null vector:
# the fit stays, the penalty does not increase, and at least one block vanishes per step.

# %%
pruned = cr.prune(sol, X)
small_net = cr.to_network(pruned)
print(f"pruned: {small_net.m} neurons (n = {n}), objective {float(objective(small_net, X, y)):.6f}, minimal: {cr.is_minimal(small_net, X)}")
assert small_net.m <= n
# pruning keeps the fit and does not raise the penalty: still optimal within the solver's gap
assert float(sol.value) * (1 - 1e-6) <= float(objective(small_net, X, y)) <= float(sol.value) * (1 + 1e-9)

# %% [markdown]
# The block norms $\|u_j\|, \|v_j\|$ of the solver's solution and of the pruned one, largest first:
# the solver's tail of tiny blocks goes, and at most $n$ blocks remain.

# %%
import matplotlib.pyplot as plt


def block_norms(solution):
    norms = jnp.concatenate([jnp.linalg.norm(solution.U, axis=1), jnp.linalg.norm(solution.V, axis=1)])
    return np.sort(np.asarray(norms))[::-1]


fig, ax = plt.subplots(figsize=(6, 3.5))
for label, solution in [("solver", sol), ("pruned", pruned)]:
    norms = block_norms(solution)
    norms = norms[norms > 0]
    ax.semilogy(np.arange(1, norms.size + 1), norms, marker=".", label=f"{label}: {norms.size} nonzero blocks")
ax.axvline(n, color="0.6", ls="--", lw=1, label=f"n = {n}")
ax.set_xlabel("block, by decreasing norm")
ax.set_ylabel("‖u_j‖ or ‖v_j‖")
ax.legend();

# %% [markdown]
# ## The certificate of the optimal networks
#
# `regularized_certificate` evaluates $\max_{\|u\|\le1}|r^\top(Xu)_+|/\beta$ exactly over all patterns,
# and a Clarke-stationarity residual. Both optimal networks pass ($\le 1$ up to the solver's
# tolerance).

# %%
for name, candidate in [("ψ(solution)", net), ("pruned", small_net), ("split", wide)]:
    cert = cr.regularized_certificate(candidate, X, y, beta=beta, loss="squared", patterns=D)
    print(f"{name:12s}: certificate {float(cert.value):.6f}, stationarity {float(cert.stationarity):.1e}")
    assert float(cert.value) <= 1 + 1e-3, name  # optimal: the certificate passes up to the solver's tolerance

# %% [markdown]
# ## Gradient descent on the non-convex objective
#
# Plain gradient descent (`optax.sgd`) on $\ell(f(\theta;X),y) + \tfrac\beta2\|\theta\|^2$ from
# random initializations, for a narrow network ($m = 2$, below the width of the optimal networks
# found above) and a wide one. A run is flagged as **not globally optimal** by a certificate
# $> 1$; with a small stationarity residual (below $10^{-2}$) it has stalled at a stationary point
# that is not a global minimum, with a large one it is still moving. Whatever happens in these runs
# is printed as is.

# %%
optimizer = optax.sgd(1e-2)


@jax.jit
def descend(net, X, y):
    def step(carry, _):
        net, state = carry
        updates, state = optimizer.update(jax.grad(objective)(net, X, y), state, net)
        return (optax.apply_updates(net, updates), state), None

    (net, _), _ = jax.lax.scan(step, (net, optimizer.init(net)), None, length=gd_steps)
    return net


for m in (2, 4 * n):
    keys = jax.random.split(jax.random.fold_in(k_gd, m), 3)
    nets = jax.vmap(lambda k: cr.init_network(d, m, scale=0.5, balanced=True, key=k))(keys)
    trained = jax.vmap(descend, in_axes=(0, None, None))(nets, X, y)
    for k in range(len(keys)):
        net_k = jax.tree.map(lambda a: a[k], trained)
        cert = cr.regularized_certificate(net_k, X, y, beta=beta, loss="squared", patterns=D)
        excess = float(objective(net_k, X, y) - sol.value)
        if float(cert.value) <= 1 + 1e-3:
            verdict = "certified globally optimal" if float(cert.stationarity) < 1e-2 else "certificate passes, not yet stationary"
        else:
            verdict = "stalled at a non-global stationary point" if float(cert.stationarity) < 1e-2 else "not optimal (not yet stationary)"
        print(f"m = {m:3d}, run {k}: objective - optimum = {excess:.2e}, certificate {float(cert.value):8.4f}, "
              f"stationarity {float(cert.stationarity):.1e} -> {verdict}")
