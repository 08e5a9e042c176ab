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
# # The models practitioners fit: softmax, gated ReLU, the regularization path, estimators
#
# The convex twin of a two-layer ReLU network is not only a theory object: with a loss, a
# regularization strength $\beta$ and sampled activation patterns it *is* a training method, whose
# answer is globally optimal among the networks on those patterns and comes with a certified duality
# gap. This notebook fits the models a practitioner reaches for on a small real data set (iris,
# 3 classes):
#
# 1. the **ReLU program with the softmax loss**, $c$ outputs each with its own neurons,
#    $$\min_{u_{kj}, v_{kj} \in K_j} \sum_i \operatorname{logsumexp}(f_{\cdot i}) - \langle y_i, f_{\cdot i}\rangle
#    + \beta \sum_{k,j} \|u_{kj}\| + \|v_{kj}\|, \qquad f_k = \sum_j D_j X (u_{kj} - v_{kj}),$$
#    solved by the matrix-free augmented Lagrangian;
# 2. the **gated ReLU** program (no cone constraints, Mishkin, Sahiner & Pilanci 2022), whose optimum
#    is never above the ReLU program's on the same patterns;
# 3. the **regularization path** from $\beta_{\max}$, the exact smallest $\beta$ whose solution is zero;
# 4. the **scikit-learn estimators** in a `Pipeline`, against `MLPClassifier`.

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
from matplotlib.ticker import NullFormatter
import numpy as np
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

jax.config.update("jax_enable_x64", True)

import convexrelu as cr
from convexrelu.estimators import ConvexReLUClassifier

SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"  # tiny sizes for the test suite
p = 10 if SMALL else 30  # sampled gates
num = 3 if SMALL else 8  # points of the path

# %% [markdown]
# ## Data and patterns
#
# Iris, standardized, with a constant feature (every neuron and every gate gets a bias, regularized
# with its weights), split 75/25. The gates $g_j \sim N(0, I)$ give the patterns $D_j = 1[X g_j \ge 0]$.

# %%
X_all, labels_all = load_iris(return_X_y=True)
if SMALL:
    X_all, labels_all = X_all[::3], labels_all[::3]
X_tr, X_te, l_tr, l_te = train_test_split(X_all, labels_all, test_size=0.25, stratify=labels_all, random_state=0)
scaler = StandardScaler().fit(X_tr)


def design(A):
    A = scaler.transform(A)
    return jnp.asarray(np.concatenate([A, np.ones((len(A), 1))], axis=1))


X, Xt = design(X_tr), design(X_te)
Y, Yt = np.eye(3)[l_tr], np.eye(3)[l_te]  # one-hot targets (n, c)
D, G = cr.sample_patterns(X, num=p, key=jax.random.key(0), return_gates=True)
n = X.shape[0]
print("n_train =", n, " n_test =", Xt.shape[0], " d =", X.shape[1], " patterns:", D.shape[0])

# %% [markdown]
# ## The ReLU program with the softmax loss
#
# `solve_regularized(X, Y, D, beta=β, loss="softmax")` returns blocks $(c, p, d)$, the dual
# $r = Y - \operatorname{softmax}(F)$ of shape $(c, n)$ and the cone multipliers $\nu$ $(c, 2, p, n)$;
# the gap is certified by the dual bound $\sum_i H(y_i - t\,r_{\cdot i})$ ($H$ the entropy). The
# gated program on the same patterns drops the cones: its optimum is a lower bound of the ReLU
# program's (a gated block $w_j = u_j - v_j$ has the same fit and $\|w_j\| \le \|u_j\| + \|v_j\|$).

# %%
beta = 1e-2 * n  # per sample 1e-2, as the estimators count it
relu = cr.solve_regularized(X, Y, D, beta=beta, loss="softmax")
gated = cr.solve_gated(X, Y, D, beta=beta, loss="softmax")
for name, sol in (("ReLU ", relu), ("gated", gated)):
    print(f"{name}: objective {float(sol.value):.6f}, gap {float(sol.gap):.1e}, {sol.status_name}, "
          f"{int(sol.iterations)} iterations, active neurons {cr.active_neurons(sol)}")
assert relu.ok and gated.ok
assert float(gated.value) <= float(relu.value) * (1 + 1e-5)  # the gated optimum is a lower bound

# ψ's network of every output on new data: Σ_j (x u_kj)_+ - (x v_kj)_+, outputs (c, n_test)
F = jnp.sum(jax.nn.relu(relu.U @ Xt.T), axis=-2) - jnp.sum(jax.nn.relu(relu.V @ Xt.T), axis=-2)
print(f"ReLU program, test accuracy: {float(np.mean(np.argmax(np.asarray(F), axis=0) == l_te)):.3f}")

# %% [markdown]
# ## The regularization path
#
# `beta_max` is exact (each output's blocks: the cone projections of $X^\top D_j (y_k - 1/c)$, by
# NNLS); at it the zero network is optimal, and the path warm-starts each smaller $\beta$ from the last.
# A first-order method needs many iterations at small $\beta$ (the softmax fits grow), so the
# iteration limit is raised from its default 20 000; every point reports its status.

# %%
path = cr.regularization_path(
    X, Y, D, num=num, min_ratio=0.05, loss="softmax", X_val=Xt, y_val=Yt, solver_options={"max_iters": 60_000}
)
print("β_max =", path.beta_max)
rows = zip(path.betas, path.objective, path.gap, path.status, path.active, path.train_score, path.val_score)
for b, obj, gap, status, act, tr, te in rows:
    print(f"β = {b:9.4f}: objective {obj:9.4f}, gap {gap:.1e} ({status}), active {act:3d}, train {tr:.3f}, test {te:.3f}")
assert abs(path.objective[0] - n * np.log(3.0)) <= 1e-9 * n  # the zero network: n log c
assert np.all(np.diff(path.group_norm) > 0)  # the solutions grow as β decreases

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
ax[0].semilogx(path.betas, path.train_score, "o-", label="train")
ax[0].semilogx(path.betas, path.val_score, "s-", label="test")
ax[0].set_xlabel("β"); ax[0].set_ylabel("accuracy"); ax[0].legend()
ax[1].semilogx(path.betas, path.active, "o-")
ax[1].set_xlabel("β"); ax[1].set_ylabel("active neurons")
for a in ax:
    a.xaxis.set_minor_formatter(NullFormatter())  # decade labels only
fig.suptitle("ReLU program, softmax loss: the regularization path")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## scikit-learn estimators
#
# `ConvexReLUClassifier` samples the gates, solves the program once to a certified gap and keeps ψ's
# network (`network_`: one per class for the softmax loss). Its `beta` is per sample. It clones and
# works in a `Pipeline`; here against `MLPClassifier` of the same width, the convex ones certified to
# a gap of 1e-4 (`solver_options`).

# %%
models = {
    "convex ReLU, softmax": ConvexReLUClassifier(loss="softmax", beta=1e-2, patterns=p, random_state=0, solver_options={"tol": 1e-4}),
    "convex gated, softmax": ConvexReLUClassifier(
        model="gated", loss="softmax", beta=1e-2, patterns=p, random_state=0, solver_options={"tol": 1e-4}
    ),
    "MLPClassifier": MLPClassifier(hidden_layer_sizes=(p,), max_iter=2000, random_state=0),
}
for name, est in models.items():
    clf = make_pipeline(StandardScaler(), est).fit(X_tr, l_tr)
    print(f"{name:22s} test accuracy {clf.score(X_te, l_te):.3f}")
