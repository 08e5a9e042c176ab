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
# # Phase diagram: when does gradient descent reach the convex max margin?
#
# On *orthogonally separable* data ($x_i^\top x_k > 0$ when $y_i = y_k$, $\le 0$ otherwise),
# gradient descent from a small balanced initialization provably reaches the best normalized
# margin $\gamma^* = 1/(2P^*)$ of the convex max-margin program, and early in training each
# neuron aligns with $s_i X^\top D(w_i) y$ (Wang & Pilanci, *The Convex Geometry of
# Backpropagation*, arXiv 2110.06488). What happens as the data leave orthogonal separability,
# and as the initialization grows?
#
# One sweep answers both: `convexrelu.datasets.two_cones` puts the classes in two cones whose
# centres are `angle` radians apart (orthogonally separable from $\pi/2 + 2\cdot$`spread`), and
# every cell of the grid angle × init scale × seed trains a network and solves the convex program
# over every pattern. The same spec runs from the command line,
# `convexrelu sweep examples/phase.toml --out runs/phase`, on every local device, resumably.

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
import math
import os
import pathlib
import tempfile
import tomllib

import jax
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)

import convexrelu as cr

# CONVEXRELU_SMALL=1 (the test suite) picks tiny sizes; the full spec takes a few minutes on a laptop.
SMALL = os.environ.get("CONVEXRELU_SMALL") == "1"

# %% [markdown]
# ## The spec
#
# `examples/phase.toml`, verbatim: lists are grid axes, scalars are fixed. In the repository the
# cell below checks that the file and this copy are the same spec (same fingerprint).

# %%
SPEC = """
[data]
generator = "two_cones"
n = 16
d = 3
angle = [0.9, 1.3, 1.7, 2.1, 2.5, 2.9]
spread = 0.25
seeds = 8

[train]
m = 20
scale = [1e-3, 1e-2, 1.0]
steps = 60000
schedule = "loss-based"

[solve]
program = "max-margin"
patterns = "enumerate"
tol = 1e-8
margin_tol = 1e-3

[sweep]
batch = 16
"""
spec = tomllib.loads(SPEC)
example = pathlib.Path("..", "examples", "phase.toml")
if example.exists():
    assert cr.load_spec(example).fingerprint == cr.load_spec(spec).fingerprint, "examples/phase.toml changed"
if SMALL:
    spec["data"].update(n=8, d=2, angle=[1.0, 2.6], seeds=2)
    spec["train"].update(m=8, scale=[1e-3, 1.0], steps=60_000)
    spec["sweep"].update(batch=4)
orthogonal_from = math.pi / 2 + 2 * spec["data"]["spread"]
print(f"{math.prod(len(v) for s in spec.values() for v in s.values() if isinstance(v, list)) * spec['data']['seeds']} cells;",
      f"orthogonally separable from angle {orthogonal_from:.3f}")

# %% [markdown]
# ## The sweep
#
# Cells of one shape run together as one `vmap`-ed program whose batch axis is sharded over every
# local device; the table is written after every batch, so an interrupted run resumes where it
# stopped (here a fresh folder each time).

# %%
out = tempfile.mkdtemp(prefix="phase-")
rows = cr.sweep(spec, out=out).to_pylist()
print(len(rows), "cells;", sum(r["status"] == "optimal" for r in rows), "solves optimal; devices:",
      sorted({r["device"] for r in rows}))

# %% [markdown]
# ## The figure
#
# Left: for the smallest initialization, the fraction of runs whose margin reaches the convex
# optimum ($\gamma(\theta)/\gamma^* \ge 1 - 10^{-3}$) and the mean $\gamma(\theta)/\gamma^*$, against
# the angle between the classes; the convex optimum is the line at 1 and the dashed line marks
# where orthogonal separability begins. Right: the early-alignment cosine (the neurons'
# weighted $\cos(w_i, s_i X^\top D(w_i) y)$ while the loss is still within 1% of $n\log 2$)
# against the initialization scale.

# %%
angles = sorted({r["angle"] for r in rows})
scales = sorted({r["scale"] for r in rows})
small = [r for r in rows if r["scale"] == scales[0]]
reached = [np.mean([r["reached"] for r in small if r["angle"] == a]) for a in angles]
ratio = [np.mean([r["gamma_ratio"] for r in small if r["angle"] == a]) for a in angles]
align = [[r["early_alignment"] for r in rows if r["scale"] == s] for s in scales]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(angles, reached, "o-", label="fraction reaching γ*")
ax1.plot(angles, ratio, "s--", label="mean γ(θ)/γ*")
ax1.axhline(1.0, color="k", lw=0.8, label="convex optimum")
ax1.axvline(orthogonal_from, color="gray", ls=":", label="orthogonally separable →")
ax1.set_xlabel("angle between the class centres (radians)")
ax1.set_title(f"init scale {scales[0]:g}")
ax1.legend(fontsize=8)
ax2.boxplot(align, positions=range(len(scales)))
ax2.set_xticks(range(len(scales)), [f"{s:g}" for s in scales])
ax2.set_xlabel("initialization scale")
ax2.set_ylabel("early alignment cosine")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The claims, checked
#
# Weak duality holds in every cell ($\gamma(\theta) \le \gamma^*$: the convex program is over every
# pattern); on orthogonally separable data every run from the small initialization reaches
# $\gamma^*$; and the small initialization aligns the neurons early, far more than a large one.

# %%
assert all(r["gamma_ratio"] <= 1 + 1e-6 for r in rows), "weak duality γ(θ) ≤ γ* violated"
orthogonal = [r for r in small if r["orthogonally_separable"]]
assert orthogonal and all(r["reached"] for r in orthogonal), [r["gamma_ratio"] for r in orthogonal]
assert np.mean(align[0]) > np.mean(align[-1]) + 0.2, [np.mean(a) for a in align]
print(f"orthogonally separable: {len(orthogonal)}/{len(orthogonal)} runs reach γ*;",
      f"elsewhere {sum(r['reached'] for r in small if not r['orthogonally_separable'])}/"
      f"{sum(not r['orthogonally_separable'] for r in small)};",
      "early alignment by scale:", {f"{s:g}": round(float(np.mean(a)), 3) for s, a in zip(scales, align)})
