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
# # Differentiable convex layers: implicit gradients through the solver
#
# `cr.solve_regularized` is differentiable: `jax.grad` of anything computed from its solution
# ($U, V$, the optimal value, the dual $r$) with respect to the data $X$, the targets $y$ and the
# regularization $\beta$ comes from the KKT conditions at the returned solution (implicit
# function theorem with the active set fixed), never from the solver's iterations. The solver is
# a layer: it works inside `jax.jit` and `jax.vmap`, and its backward pass is one linear solve.
#
# This notebook (a) tunes $\beta$ by gradient descent on a validation loss (a bilevel problem)
# and compares it with a grid over $\beta$ (descent finds a stationary point; the validation loss is
# not convex in $\beta$, so the grid may find a better basin); (b) draws the influence $\partial P^*/\partial x_i$ of
# each training point on the optimal value, on 2-D data.

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
import matplotlib.pyplot as plt
import numpy as np
import optax

jax.config.update("jax_enable_x64", True)

import convexrelu as cr

SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"  # tiny sizes for the test suite
n, n_val, d, p = (24, 40, 3, 16) if SMALL else (60, 400, 4, 80)
steps, grid_size = (40, 10) if SMALL else (60, 30)
k_teacher, k_train, k_val, k_pat, k_2d = jax.random.split(jax.random.key(0), 5)

# %% [markdown]
# ## (a) Tuning $\beta$ through the solver
#
# Regression data from a small ReLU teacher with noise; the convex program
# $\min \tfrac12\|f - y\|^2 + \beta \sum_j \|u_j\| + \|v_j\|$ on sampled patterns. A validation
# set, with the patterns of the same gates, measures the fit:
# $L_{\text{val}}(\beta) = \tfrac{1}{2 n_{\text{val}}} \|f_{\text{val}}(U^*(\beta), V^*(\beta)) - y_{\text{val}}\|^2$.
# Its derivative $dL_{\text{val}}/d\beta$ goes through the solution $U^*(\beta), V^*(\beta)$.

# %%
W_t = jax.random.normal(k_teacher, (d, 3))
a_t = jnp.array([1.0, -1.0, 0.5])


def teacher_data(key, n):
    kx, ke = jax.random.split(key)
    X = jax.random.normal(kx, (n, d))
    return X, jax.nn.relu(X @ W_t) @ a_t + 0.5 * jax.random.normal(ke, (n,))


X, y = teacher_data(k_train, n)
X_val, y_val = teacher_data(k_val, n_val)
D, gates = cr.sample_patterns(X, num=p, key=k_pat, return_gates=True)
D_val = (X_val @ gates.T >= 0).T  # the same neurons' patterns on the validation inputs


def val_loss(log_beta):
    sol = cr.solve_regularized(X, y, D, beta=jnp.exp(log_beta))
    f = cr.convex_fit(X_val, D_val, sol.U, sol.V)
    return 0.5 * jnp.mean((f - y_val) ** 2)


# the grid: one batched solve over every β (vmap)
grid = jnp.linspace(jnp.log(1e-2), jnp.log(1e2), grid_size)
grid_losses = jax.jit(jax.vmap(val_loss))(grid)
best = int(jnp.argmin(grid_losses))
print(f"grid of {grid_size} β: best β = {float(jnp.exp(grid[best])):.4g}, validation loss {float(grid_losses[best]):.5f}")

# gradient descent on log β (Adam), each step one solve and one backward pass
step = jax.jit(jax.value_and_grad(val_loss))
opt = optax.adam(0.5)
log_beta = jnp.log(jnp.asarray(1.0))
state = opt.init(log_beta)
path = []
for _ in range(steps):
    loss, g = step(log_beta)
    path.append((float(log_beta), float(loss)))
    updates, state = opt.update(g, state)
    log_beta = optax.apply_updates(log_beta, updates)
loss_gd, g_gd = step(log_beta)
print(f"gradient descent, {steps} steps: β = {float(jnp.exp(log_beta)):.4g}, validation loss {float(loss_gd):.5f}, "
      f"dL/dlog β = {float(g_gd):.1e}")

# the claim: descent lowers the validation loss; where it stops need not be the grid's best
# (L_val(β) is not convex in β, and a grid sees every basin at once)
assert float(loss_gd) < path[0][1]

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.exp(grid), grid_losses, "o-", ms=3, label=f"grid ({grid_size} solves)")
lb, ls = np.array(path).T
ax.plot(np.exp(lb), ls, "x-", color="C3", ms=5, label=f"gradient descent ({steps} steps)")
ax.set_xscale("log")
ax.set_xlabel("β")
ax.set_ylabel("validation loss")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## (b) The influence of each training point on $P^*$
#
# On 2-D data with a logistic loss, `jax.grad` of the optimal value with respect to $X$ gives the
# direction in which moving $x_i$ increases $P^*$ the most. It agrees with the envelope formula
# `cr.value_gradient` (the Lagrangian's gradient at the solution's primal and dual variables).

# %%
n2 = 20 if SMALL else 60
X2, y2 = cr.datasets.teacher(n2, 2, key=k_2d)[:2]
D2 = cr.enumerate_patterns(X2)
sol2 = cr.solve_regularized(X2, y2, D2, beta=0.05, loss="logistic")
G = jax.grad(lambda X: cr.solve_regularized(X, y2, D2, beta=0.05, loss="logistic").value)(X2)
G_env = cr.value_gradient(sol2, X2, y2)
print(f"P* = {float(sol2.value):.4f}; max |implicit - envelope| = {float(jnp.max(jnp.abs(G - G_env))):.1e}")
assert jnp.allclose(G, G_env, rtol=1e-4, atol=1e-6 * float(jnp.max(jnp.abs(G_env))))

# %%
fig, ax = plt.subplots(figsize=(5, 5))
size = np.asarray(jnp.linalg.norm(G, axis=1))
ax.scatter(X2[:, 0], X2[:, 1], c=np.where(y2 > 0, "C0", "C1"), s=20 + 300 * size / size.max())
ax.quiver(X2[:, 0], X2[:, 1], G[:, 0], G[:, 1], color="k", width=0.004)
ax.set_aspect("equal")
ax.set_title("∂P*/∂x_i (arrows; marker size ∝ ‖∂P*/∂x_i‖)")
fig.tight_layout()
