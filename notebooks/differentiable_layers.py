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
# each training point on the optimal value, on 2-D data; (c) trains a convex two-layer head on top
# of a small learned feature map end to end with optax, and compares it with training the same
# network non-convexly.

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

# %% [markdown]
# ## (c) A convex head on a learned feature map, trained end to end
#
# A feature map $F_A(x) = \tanh(A^\top x)$ ($d \to k$, learned) feeds a two-layer ReLU head. The
# *convex* model replaces the head by its convex program: the training objective is
# $J(A) = P^*(F_A(X)) + \tfrac{\lambda}{2}\|A\|^2$, with $P^*$ the optimal regularized logistic
# loss of the head on the patterns of fixed gates $D_j = 1[F_A(X) g_j \ge 0]$; `jax.grad` of
# $P^*$ in $A$ goes through the solver (the envelope theorem, by the implicit rule). Every step
# solves the head to optimality, so the head is always globally optimal for the current features.
# The *non-convex* model trains $A$, $W_1$ and $w_2$ of the same network
# $\mathrm{relu}(F_A(X) W_1) w_2$ jointly with Adam on
# $\sum_i \log(1 + e^{-y_i f_i}) + \tfrac{\beta}{2}(\|W_1\|^2 + \|w_2\|^2) + \tfrac{\lambda}{2}\|A\|^2$.
#
# A theorem links the two: at any features, the convex optimum is at most the regularized loss of
# every head whose patterns it includes ($\beta\|w_{1i}\||w_{2i}| \le \tfrac{\beta}{2}(\|w_{1i}\|^2 + w_{2i}^2)$,
# and the network maps onto a feasible point of the program). So on the non-convex run's final
# features, $P^*$ over the gates' and the network's own patterns lower-bounds its objective.

# %%
k_feat, m_head, beta3, lam = 5, 40, 0.05, 1e-2
steps3 = 15 if SMALL else 100
n3 = 40 if SMALL else 200
k_d3, k_a, k_g, k_net = jax.random.split(jax.random.key(3), 4)
X3, y3 = cr.datasets.teacher(n3, d, key=k_d3)[:2]
A0 = jax.random.normal(k_a, (d, k_feat)) / jnp.sqrt(d)
G3 = jax.random.normal(k_g, (k_feat, 8 * k_feat))  # the head's fixed gates


def features(A, X):
    return jnp.tanh(X @ A)


def convex_objective(A):
    F = features(A, X3)
    D3 = jax.lax.stop_gradient(F @ G3 >= 0).T  # the gates' patterns at the current features
    return cr.solve_regularized(F, y3, D3, beta=beta3, loss="logistic").value + 0.5 * lam * jnp.sum(A * A)


def nonconvex_objective(params):
    A, W1, w2 = params
    f = jax.nn.relu(features(A, X3) @ W1) @ w2
    return (jnp.sum(jnp.logaddexp(0.0, -y3 * f)) + 0.5 * beta3 * (jnp.sum(W1 * W1) + jnp.sum(w2 * w2))
            + 0.5 * lam * jnp.sum(A * A))


def fit(objective, params, steps, lr):
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, g = jax.value_and_grad(objective)(params)
        updates, state = opt.update(g, state)
        return optax.apply_updates(params, updates), state, value

    history = []
    for _ in range(steps):
        params, state, value = step(params, state)
        history.append(float(value))
    return params, history + [float(objective(params))]


A_cvx, hist_cvx = fit(convex_objective, A0, steps3, 1e-1)
net0 = cr.init_network(k_feat, m_head, scale=0.5, key=k_net)
params_nc, hist_nc = fit(nonconvex_objective, (A0, net0.W1, net0.w2), 20 * steps3, 1e-2)
print(f"convex head:     J(A) from {hist_cvx[0]:.4f} to {hist_cvx[-1]:.4f} in {steps3} steps (one solve each)")
print(f"non-convex net:  objective from {hist_nc[0]:.4f} to {hist_nc[-1]:.4f} in {20 * steps3} Adam steps")

# the claim (a theorem): on the non-convex run's features, P* over the gates' patterns and the
# network's own is at most the network's regularized loss
A_nc, W1_nc, w2_nc = params_nc
F_nc = features(A_nc, X3)
D_nc = cr.merge_patterns((F_nc @ G3 >= 0).T, cr.neuron_patterns(cr.Network(W1_nc, w2_nc), F_nc))
bound = cr.solve_regularized(F_nc, y3, D_nc, beta=beta3, loss="logistic").value + 0.5 * lam * jnp.sum(A_nc * A_nc)
print(f"at the non-convex run's features, the convex head reaches {float(bound):.4f} ≤ {hist_nc[-1]:.4f}")
assert float(bound) <= hist_nc[-1] * (1 + 1e-6)
assert hist_cvx[-1] < hist_cvx[0]  # end-to-end descent through the solver lowers J

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.arange(len(hist_cvx)), hist_cvx, "o-", ms=3, label="convex head (steps)")
ax.plot(np.arange(len(hist_nc)) / 20, hist_nc, "-", label="non-convex network (steps / 20)")
ax.axhline(float(bound), color="k", ls=":", label="convex head on the non-convex run's features")
ax.set_xlabel("outer step")
ax.set_ylabel("training objective")
ax.set_yscale("log")
ax.legend()
fig.tight_layout()

# %% [markdown]
# **Reading the comparison.** Per outer step the convex head costs one solve (to optimality) and
# the non-convex network one gradient step, so the non-convex run gets 20 times as many steps. The
# convex head is globally optimal over the fixed gates' patterns only; the non-convex network's
# neurons choose their own patterns as they train, and where it ends lower, that is why: on its
# final features, the convex program over the gates' patterns *and its own* is below it, as the
# bound above shows. The convex head's advantages are that every step is certified (no spurious
# local minimum of the head, no initialization scale to choose) and that its objective decreases
# smoothly.
