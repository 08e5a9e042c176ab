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
# # The cvxpy / cvxpylayers bridge
#
# `convexrelu.bridge` writes the convex programs of the library in cvxpy (as DPP problems, compiled
# once per size) and wraps them as differentiable `cvxpylayers` layers. It serves two purposes:
#
# 1. an **independent check** of the native JAX solver — same `ConvexSolution`, same optimal value;
# 2. **differentiating the optimal value** with respect to the data through the solver (implicit
#    differentiation of the KKT system, Agrawal et al. 2019), to compare with the native solver's
#    gradient from the **envelope theorem**: at a primal-dual optimum $(U, V, \mu, \nu)$,
#    $$\frac{\partial P^*}{\partial X} = \nabla_X L(U, V, \mu, \nu; X),$$
#    $$L = \sum_j \|u_j\| + \|v_j\| - \mu^\top\Big(y \odot \sum_j D_j X(u_j - v_j) - 1\Big)
#    - \sum_j \nu^{0\top}_j (S_j \odot X u_j) - \nu^{1\top}_j (S_j \odot X v_j),$$
#    $S_j = 2D_j - 1$, which costs one gradient of a closed-form function. Since
#    $\gamma^* = 1/(2P^*)$, also $\partial\gamma^*/\partial X = -2\gamma^{*2}\,\partial P^*/\partial X$.
#
# The layers solve in Python, so they cannot run under `jax.jit` or `jax.vmap`; the last section
# shows the error.

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
from convexrelu import bridge

SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"  # tiny sizes for the test suite
n, d = (8, 2) if SMALL else (12, 3)
beta = 0.1
key = jax.random.key(0)
k_data, k_dir = jax.random.split(key)


def rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


# %% [markdown]
# ## The same program, two solvers

# %%
X, y = cr.datasets.orthogonally_separable(n, d, key=k_data)
D = cr.enumerate_patterns(X)
native = cr.solve_max_margin(X, y, D, tol=1e-8)
cvx = bridge.solve_with_cvxpy(X, y, D)
print(f"p = {D.shape[0]} patterns")
print(f"max-margin P*: native {float(native.value):.10f} ({native.status_name}), cvxpy {float(cvx.value):.10f} ({cvx.status_name})")
print(f"relative difference {abs(float(native.value) - float(cvx.value)) / float(cvx.value):.1e}; "
      f"multipliers μ: relative difference {rel(native.dual, cvx.dual):.1e}")
assert abs(float(native.value) - float(cvx.value)) <= 1e-5 * float(cvx.value)

# %%
native_reg = cr.solve_regularized(X, y, D, beta=beta, loss="squared", tol=1e-8)
cvx_reg = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=beta, loss="squared")
print(f"regularized (squared loss, β = {beta}): native {float(native_reg.value):.10f}, cvxpy {float(cvx_reg.value):.10f}")
assert abs(float(native_reg.value) - float(cvx_reg.value)) <= 1e-5 * float(cvx_reg.value)

# %% [markdown]
# ## $\partial P^*/\partial X$: through the layer against the envelope theorem
#
# `bridge.optimal_value(X, y, D)` is $P^*$ as a differentiable function of $X$ (the layer's
# epigraph variables $t_j = \|u_j\|$ summed); `jax.grad` differentiates through cvxpylayers.
# `cr.value_gradient(solution, X, y)` needs only the native solution's primal and dual variables.

# %%
grad_layer = jax.grad(lambda X: bridge.optimal_value(X, y, D))(X)
grad_envelope = cr.value_gradient(native, X, y)
print(f"relative difference between the two gradients: {rel(grad_envelope, grad_layer):.1e}")
assert rel(grad_envelope, grad_layer) <= 1e-3  # the same derivative, two ways (diffcp solves to ~1e-6)

# a finite-difference check of the directional derivative along a random direction
direction = jax.random.normal(k_dir, X.shape)
direction = direction / jnp.linalg.norm(direction)
h = 1e-4
plus = cr.solve_max_margin(X + h * direction, y, D, tol=1e-9, max_iters=200_000)
minus = cr.solve_max_margin(X - h * direction, y, D, tol=1e-9, max_iters=200_000)
fd = (float(plus.value) - float(minus.value)) / (2 * h)
print(f"directional derivative: envelope {float(jnp.sum(grad_envelope * direction)):.6f}, "
      f"layer {float(jnp.sum(grad_layer * direction)):.6f}, finite differences {fd:.6f}")
# central differences: O(h²) = 1e-8 truncation plus the solves' error tol/h = 1e-5
for g in (grad_envelope, grad_layer):
    assert abs(float(jnp.sum(g * direction)) - fd) <= 1e-3 * abs(fd) + 1e-5

gamma_star = 1.0 / (2.0 * float(native.value))
print(f"γ* = {gamma_star:.6f}; the sample whose move raises γ* fastest: {int(jnp.argmax(jnp.linalg.norm(-2 * gamma_star**2 * grad_envelope, axis=1)))}")

# %% [markdown]
# Entry by entry, the two gradients $\partial P^*/\partial X_{ik}$ lie on the diagonal.

# %%
import matplotlib.pyplot as plt

g_layer, g_envelope = np.asarray(grad_layer).ravel(), np.asarray(grad_envelope).ravel()
lim = 1.05 * float(max(np.abs(g_layer).max(), np.abs(g_envelope).max()))
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot([-lim, lim], [-lim, lim], color="0.75", lw=1, zorder=0)
ax.scatter(g_layer, g_envelope, s=16)
ax.set_xlabel("through cvxpylayers (bridge.optimal_value)")
ax.set_ylabel("envelope theorem (cr.value_gradient)")
ax.set_title(f"∂P*/∂X, {n} × {d} entries")
ax.set_aspect("equal");

# %% [markdown]
# ## Under `jax.jit`: a clear error
#
# The layers refuse traced inputs (under `jax.grad` alone the inputs still carry values, which is
# why the gradient above works). The native solver is the one to jit and vmap.

# %%
try:
    jax.jit(lambda X: bridge.optimal_value(X, y, D))(X)
except TypeError as err:
    print("TypeError:", err)

# %%
native_jit = jax.jit(lambda X: cr.solve_max_margin(X, y, D, throw=False).value)(X)
print(f"the native solver under jit: P* = {float(native_jit):.10f}")
