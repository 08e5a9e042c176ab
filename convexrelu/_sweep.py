"""Sweeps: a grid of training runs and convex solves, batched, sharded over devices, resumable.

:func:`sweep` expands a TOML spec (DESIGN.md: ``[data]``, ``[train]``, ``[solve]``, ``[sweep]``;
lists are grid axes, scalars are fixed) into *cells*, one dataset, one gradient-descent run and
one convex solve each (the max-margin program, or a regularized one at the cell's ``β`` with a
weight-decay run), and writes one row per cell to ``results.parquet``.

* **Batches.** Cells of one shape (the same ``n, d, m``, steps, patterns, …) are cut, in grid
  order, into batches of ``[sweep] batch`` cells, which ``jax.vmap`` runs as one problem. A
  batch's composition does not depend on the number of devices, so neither do the results. A
  ragged last batch is padded (with copies of its last cell) to the full size, so one shape
  compiles once, and the padding rows are dropped.
* **Devices.** The batch axis is sharded over every local device: ``NamedSharding`` on a 1-D
  ``Mesh`` whose axis is named ``"batch"`` (the batch is padded to a multiple of the device
  count). Several hosts: after ``jax.distributed.initialize()``, process ``i`` of ``k``
  (``jax.process_index()``, ``jax.process_count()``) runs the batches ``i, i + k, …`` on its own
  devices and writes its own ``results-<i>-of-<k>.parquet``.
* **Per-problem stopping.** Under ``vmap`` the solvers' ``while_loop`` runs until every problem
  of the batch has stopped, and a problem that has stopped is frozen (JAX selects its old state),
  so each keeps its own iteration count and status, the ones it has when solved alone. The
  batch's loop lasts as long as its slowest problem, so a batch is solved with an iteration cap
  and the few cells still running at the cap (an interior-point run continued by ADMM) are solved
  again, uncapped, in a small batch of their own.
* **Results.** After every batch the whole table is written to a temporary file and moved over
  ``results.parquet`` (``os.replace``, atomic), so an interruption (Ctrl-C, a killed process)
  loses at most the batch in flight. ``spec.json`` holds the spec and its fingerprint: a folder
  written by another spec is refused, and a resumed sweep skips the finished cells.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import itertools
import json
import math
import os
import sys
import time
import tomllib
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from . import datasets
from ._cone_data import two_cones
from ._certificates import kkt_certificate
from ._hostpool import check_intra_op_pool
from ._losses import log_loss, neuron_alignment, normalized_margin
from ._network import Network, forward, init_network, neuron_patterns, param_norm_sq
from ._patterns import enumerate_patterns, merge_patterns, pattern_count, sample_patterns
from ._programs import convex_loss
from ._solution import RESULTS, status_name
from ._solver import solve_max_margin, solve_regularized
from ._train import TrainState, train

AXIS = "batch"
"""Name of the mesh axis the batch of cells is sharded over."""

GENERATORS = {
    "orthogonally_separable": datasets.orthogonally_separable,
    "two_cones": two_cones,
    "teacher": datasets.teacher,
}
"""Data generators a spec may name (``[data] generator``); a bundled dataset name
(``convexrelu.datasets.DATASETS``) is also accepted."""

_MAX_ENUMERATED = 20_000  # patterns = "enumerate" is refused above this Cover count
_CHECKPOINTS = 50  # alignment and loss recorded at this many equal chunks of training
_EARLY_LOSS_FRACTION = 0.99  # "early": the loss is still within 1% of 𝓛(0) = n log 2
_FIRST_PASS_ITERS = 100  # a batch's solve stops here; the cells still running are solved again alone
_REDO_BATCH = 4  # cells solved again per batch of their own
_KKT_TOL, _CERT_TOL, _SUPPORT_TOL = 1e-2, 1e-3, 1e-2  # the cross-check's certificate tolerances

_DEFAULTS = {
    "data": {"seeds": 1},
    "train": {"m": 50, "scale": 1e-3, "steps": 20_000, "schedule": "loss-based", "lr": 1e-3, "max_alpha": 1e-3},
    "solve": {"program": "max-margin", "patterns": "enumerate", "tol": 1e-7, "margin_tol": 1e-3, "certify": True},
    "sweep": {"batch": 16},
}
_SCALAR_ONLY = {"generator", "program", "certify", "batch", "seeds"}
_POSITIVE_INT = {"n": 2, "d": 1, "m": 1, "steps": 1, "seeds": 1, "batch": 1}  # smallest allowed value
_POSITIVE_FLOAT = ("scale", "lr", "max_alpha", "tol", "margin_tol", "beta")
PROGRAMS = ("max-margin", "regularized-squared", "regularized-logistic")
"""``[solve] program``: the max-margin program (the training run follows the logistic loss' gradient
flow) or a regularized one (the run is gradient descent on the same loss with weight decay ``β``)."""
_STATIC = ("n", "d", "m", "steps", "schedule", "lr", "max_alpha", "patterns", "tol")  # a batch shares these


class SweepError(ValueError):
    """A bad sweep spec (unknown key, impossible size) or a results folder that cannot be used."""


# ------------------------------------------------------------------------------------------ spec


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A checked sweep spec: the sections with their defaults filled in, and its fingerprint.

    Attributes:
        data, train, solve, sweep: the sections; a list value is a grid axis, a scalar is fixed.
        fingerprint: SHA-256 of the canonical JSON of the four sections (key order ignored).
    """

    data: Mapping[str, Any]
    train: Mapping[str, Any]
    solve: Mapping[str, Any]
    sweep: Mapping[str, Any]
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        """The sections as plain JSON (what ``spec.json`` stores)."""
        return {"data": dict(self.data), "train": dict(self.train), "solve": dict(self.solve), "sweep": dict(self.sweep)}


def _read_spec(spec) -> dict[str, Any]:
    """A TOML file's contents, or a mapping of sections as is."""
    if isinstance(spec, Mapping):
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in spec.items()}
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"spec must be a path to a TOML file or a mapping of sections, got {type(spec).__name__}")
    try:
        with open(spec, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SweepError(f"sweep spec {os.fspath(spec)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"sweep spec {os.fspath(spec)!r} is not valid TOML: {e}") from None


def _generator_keys(name: str) -> set[str]:
    """The keyword parameters of a generator a spec may set in ``[data]`` (besides n, d, seeds)."""
    if name in datasets.DATASETS:
        return set()
    params = inspect.signature(GENERATORS[name]).parameters
    return {k for k, p in params.items() if p.kind == p.KEYWORD_ONLY and k not in ("key", "dtype")}


def _check_value(section: str, key: str, value):
    """One value (or each entry of an axis) has the right type and range; returns it normalized."""
    where = f"[{section}] {key}"
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise SweepError(f"{where} is an empty list: a grid axis needs at least one value")
    if isinstance(value, list) and key in _SCALAR_ONLY - {"seeds"}:
        raise SweepError(f"{where} must be a single value, not a list")
    if key == "seeds" and isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value) or len(set(value)) < len(value):
            raise SweepError(f"{where} must be a count or a list of distinct integers ≥ 0, got {value!r}")
        return value
    for v in values:
        if key in _POSITIVE_INT and (not isinstance(v, int) or isinstance(v, bool) or v < _POSITIVE_INT[key]):
            raise SweepError(f"{where} must be an integer ≥ {_POSITIVE_INT[key]}, got {v!r}")
        if key in _POSITIVE_FLOAT and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v < math.inf):
            raise SweepError(f"{where} must be a positive number, got {v!r}")
        if key == "schedule" and v not in ("constant", "loss-based"):
            raise SweepError(f"{where} must be 'constant' or 'loss-based', got {v!r}")
        if key == "patterns" and v != "enumerate" and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise SweepError(f"{where} must be 'enumerate' or a positive integer, got {v!r}")
        if key == "program" and v not in PROGRAMS:
            raise SweepError(f"{where} must be one of {list(PROGRAMS)}, got {v!r}")
        if key == "certify" and not isinstance(v, bool):
            raise SweepError(f"{where} must be true or false, got {v!r}")
    return [float(v) if key in _POSITIVE_FLOAT else v for v in values] if isinstance(value, list) else (
        float(value) if key in _POSITIVE_FLOAT else value
    )


def _check_section_keys(raw: Mapping[str, Any]) -> str:
    """Unknown sections and keys are refused by name; returns the generator's name."""
    unknown = sorted(set(raw) - set(_DEFAULTS))
    if unknown:
        raise SweepError(f"unknown section [{unknown[0]}] in the sweep spec; sections: {sorted(_DEFAULTS)}")
    for section, body in raw.items():
        if not isinstance(body, Mapping):
            raise SweepError(f"[{section}] must be a table of keys, got {body!r}")
    data = raw.get("data", {})
    gen = data.get("generator")
    if gen is None:
        raise SweepError("[data] generator is required (e.g. \"orthogonally_separable\")")
    if not isinstance(gen, str) or gen not in GENERATORS and gen not in datasets.DATASETS:
        raise SweepError(f"[data] generator {gen!r} is unknown; one of {sorted(GENERATORS) + list(datasets.DATASETS)}")
    allowed = {
        "data": {"generator", "n", "d", "seeds"} | _generator_keys(gen),
        "train": set(_DEFAULTS["train"]),
        "solve": set(_DEFAULTS["solve"]) | {"beta"},
        "sweep": set(_DEFAULTS["sweep"]),
    }
    for section, body in raw.items():
        extra = sorted(set(body) - allowed[section])
        if extra:
            raise SweepError(f"unknown key [{section}] {extra[0]}; [{section}] takes {sorted(allowed[section])}")
    return gen


def _check_sizes(spec: SweepSpec) -> None:
    """Sizes that cannot work: missing n/d, d set for a bundled set, too many patterns to enumerate."""
    data, bundled = spec.data, spec.data["generator"] in datasets.DATASETS
    if bundled and "d" in data:
        raise SweepError(f"[data] d is fixed by the bundled dataset {data['generator']!r}; remove it")
    for key in () if bundled else ("n", "d"):
        if key not in data:
            raise SweepError(f"[data] {key} is required for the generator {data['generator']!r}")
    program, solve, train = spec.solve["program"], spec.solve, spec.train
    if program == "max-margin" and "beta" in solve:
        raise SweepError("[solve] beta is the regularized programs' strength; the 'max-margin' program has none")
    if program != "max-margin" and "beta" not in solve:
        raise SweepError(f"[solve] beta is required for the program {program!r} (a number or a list: a grid axis)")
    if program != "max-margin" and train["schedule"] != "constant":
        raise SweepError(
            f"[train] schedule {train['schedule']!r}: a {program!r} cell trains by gradient descent on the regularized "
            "objective with a constant step; use schedule = \"constant\" (the default for regularized programs)"
        )
    if spec.solve["patterns"] == "enumerate" and not bundled:
        for n, d in itertools.product(_axis(data["n"]), _axis(data["d"])):
            if pattern_count(n, min(n, d)) > _MAX_ENUMERATED:
                raise SweepError(
                    f"[solve] patterns = \"enumerate\" at n = {n}, d = {d} gives {pattern_count(n, min(n, d))} "
                    f"patterns (more than {_MAX_ENUMERATED}); give a number of sampled patterns instead"
                )


def load_spec(spec) -> SweepSpec:
    """Read and check a sweep spec (a TOML path or a mapping of sections); defaults filled in.

    Raises:
        SweepError: an unknown section or key, a value of the wrong type, an impossible size
            (the message names the key), or a file that is missing or not TOML.
    """
    raw = _read_spec(spec)
    _check_section_keys(raw)
    regularized = raw.get("solve", {}).get("program", "max-margin") != "max-margin"
    sections = {}
    for section, defaults in _DEFAULTS.items():
        if section == "train" and regularized:  # gradient descent with weight decay: a constant step
            defaults = {**defaults, "schedule": "constant"}
        body = {**defaults, **raw.get(section, {})}
        sections[section] = {k: _check_value(section, k, v) for k, v in sorted(body.items())}
    canonical = json.dumps(sections, sort_keys=True, separators=(",", ":"))
    out = SweepSpec(**sections, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())
    _check_sizes(out)
    _check_generator_values(out)
    return out


def _axis(value) -> list:
    return value if isinstance(value, list) else [value]


def _check_generator_values(spec: SweepSpec) -> None:
    """Every generator setting is tried once (seed 0, smallest n and d), so a bad value fails now."""
    data = spec.data
    gen_keys = sorted(set(data) - {"generator", "n", "d", "seeds"})
    for combo in itertools.product(*(_axis(data[k]) for k in gen_keys)):
        cell = {"generator": data["generator"], "n": min(_axis(data.get("n", [2]))), "seed": 0}
        cell.update({"d": min(_axis(data["d"]))} if "d" in data else {})
        try:
            _make_data(cell, dict(zip(gen_keys, combo)))
        except (TypeError, ValueError) as e:
            raise SweepError(f"[data] {', '.join(gen_keys) or 'generator'}: {e}") from None


# ----------------------------------------------------------------------------------------- cells


def expand_cells(spec: SweepSpec) -> list[dict[str, Any]]:
    """The grid in its canonical order: sections data, train, solve, keys sorted, seeds innermost.

    Each cell is a dict of every setting plus ``cell`` (its index) and ``seed``.
    """
    fixed, axes = {}, {}
    for section in ("data", "train", "solve"):
        for key, value in sorted(getattr(spec, section).items()):
            if key == "seeds":
                continue
            (axes if isinstance(value, list) else fixed)[key] = value
    seeds = spec.data["seeds"]
    seeds = seeds if isinstance(seeds, list) else list(range(seeds))
    names = list(axes)
    cells = []
    for combo in itertools.product(*(axes[k] for k in names), seeds):
        cell = {**fixed, **dict(zip(names, combo[:-1])), "seed": combo[-1]}
        cells.append({"cell": len(cells), **cell})
    return cells


def _gen_kwargs(cell: Mapping[str, Any]) -> dict[str, Any]:
    return {k: cell[k] for k in _generator_keys(cell["generator"]) if k in cell}


def _keys(seed: int):
    """``(data key, initialization key, pattern/certificate key)`` of a seed."""
    return tuple(jax.random.split(jax.random.key(seed), 3))


def _make_data(cell: Mapping[str, Any], gen_kwargs: Mapping[str, Any]):
    """The cell's dataset ``(X, y)`` as NumPy arrays (bundled sets: ``n`` rows drawn by the seed)."""
    key = _keys(cell["seed"])[0]
    name = cell["generator"]
    if name in datasets.DATASETS:
        X, y = datasets.load(name)
        n = cell.get("n", X.shape[0])
        if n > X.shape[0]:
            raise ValueError(f"n = {n} is more than the {X.shape[0]} samples of {name!r}")
        rows = np.sort(np.asarray(jax.random.permutation(key, X.shape[0])[:n]))
        return np.asarray(X)[rows], np.asarray(y)[rows]
    out = GENERATORS[name](cell["n"], cell["d"], key=key, **gen_kwargs)
    X, y = (out.X, out.y) if isinstance(out, datasets.TeacherData) else out
    return np.asarray(X), np.asarray(y)


class Batch(NamedTuple):
    """Cells run together: ``index`` in the sweep's list of batches, and the cells' dicts."""

    index: int
    cells: list[dict[str, Any]]


def make_batches(cells: list[dict[str, Any]], batch: int) -> list[Batch]:
    """Cells grouped by shape (:data:`_STATIC` settings), each group cut into batches of ``batch``
    cells in grid order; groups in order of their first cell."""
    groups: dict[tuple, list] = {}
    for cell in cells:
        groups.setdefault(tuple(cell.get(k) for k in _STATIC), []).append(cell)
    chunks = [g[i : i + batch] for g in groups.values() for i in range(0, len(g), batch)]
    return [Batch(i, c) for i, c in enumerate(chunks)]


def _pattern_budget(n: int, d: int, m: int, patterns) -> int:
    """Padded pattern count of a shape: Cover's count (enumerated), else ``min(num + m, Cover)``
    (sampled plus the run's own ``m``). A fixed size per shape, so no cell recompiles."""
    cover = pattern_count(n, min(n, d))
    return cover if patterns == "enumerate" else min(patterns + m, cover)


# -------------------------------------------------------------------------------------- training


class _Trained(NamedTuple):
    net: Network  # the trained network
    margin: jax.Array  # γ(θ_T)
    log_losses: jax.Array  # (c + 1,) log 𝓛 at the checkpoints, 0 first
    alignment: jax.Array  # (c + 1,) weighted neuron alignment at the checkpoints
    diverged: jax.Array  # a parameter or the loss is not finite
    objective: jax.Array  # the final regularized_objective (regularized cells; NaN for max-margin)


def _weighted_alignment(net: Network, X, y):
    """``Σ_i c_i cos_i / Σ_i c_i``: neuron alignments weighted by ``c_i = |w2_i| ‖w_i‖``."""
    w = jnp.abs(net.w2) * jnp.linalg.norm(net.W1, axis=0)
    return jnp.sum(w * neuron_alignment(net, X, y)) / jnp.sum(w)


def _scaled_start(X, key, scale, m) -> Network:
    """A balanced initialization of ``m`` neurons, multiplied by ``scale`` (per-cell data, not a shape)."""
    net = init_network(X.shape[1], m, scale=1.0, balanced=True, key=key, dtype=X.dtype)
    return Network(net.W1 * scale, net.w2 * scale)


def _in_chunks(carry, advance, probe, steps: int):
    """``steps`` steps of ``advance(carry, count)`` in ``min(_CHECKPOINTS, steps)`` equal chunks (a
    ``lax.scan``; the remainder last), ``probe(carry)`` at the start and after every chunk. Returns
    the final carry and the probes stacked (at steps 0, size, 2·size, …)."""
    chunks = min(_CHECKPOINTS, steps)
    size, rest = divmod(steps, chunks)

    def chunk(c, _):
        c = advance(c, size)
        return c, probe(c)

    out, probes = jax.lax.scan(chunk, carry, None, length=chunks)
    if rest:
        out = advance(out, rest)
    return out, jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), probe(carry), probes)


def _train_one(X, y, key, scale, *, m, steps, schedule, lr, max_alpha) -> _Trained:
    """One cell's run: a balanced initialization of scale ``scale`` trained for ``steps`` steps in
    equal chunks (:func:`train`), the loss and alignment recorded after each."""
    opts = dict(schedule=schedule, max_alpha=max_alpha)

    def advance(carry, count):
        res = train(carry[0], X, y, steps=count, state=carry[1], record_every=count, **opts)
        return res.net, res.state

    probe = lambda carry: (log_loss(carry[0], X, y), _weighted_alignment(carry[0], X, y))  # noqa: E731
    state = TrainState(jnp.asarray(0), jnp.asarray(lr, X.dtype), None)  # what train starts from
    (net, _), (lls, als) = _in_chunks((_scaled_start(X, key, scale, m), state), advance, probe, steps)
    finite = jnp.all(jnp.isfinite(net.W1)) & jnp.all(jnp.isfinite(net.w2)) & jnp.isfinite(log_loss(net, X, y))
    return _Trained(net, normalized_margin(net, X, y), lls, als, ~finite, jnp.full((), jnp.nan, X.dtype))


def regularized_objective(net: Network, X, y, beta, loss: str):
    """The network's weight-decay objective ``ℓ(f(θ; X), y) + (β/2)(‖W1‖² + ‖w2‖²)``, with the
    convex program's loss ``ℓ`` (:func:`convexrelu.convex_loss`). Its minimum over networks with
    enough neurons is the regularized program's ``P*`` over every pattern; every network's value
    is at least ``P*`` over any pattern set holding its own patterns (``β‖w_i‖|w2_i| ≤ (β/2)(‖w_i‖² + w2_i²)``)."""
    return convex_loss(forward(net, X), y, loss) + 0.5 * beta * param_norm_sq(net)


def _train_regularized_one(X, y, key, scale, beta, *, m, steps, lr, loss) -> _Trained:
    """One regularized cell's run: the balanced initialization of scale ``scale``, then ``steps``
    steps of gradient descent with step ``lr`` on :func:`regularized_objective`, in equal chunks;
    ``log_losses`` records the log objective at the checkpoints."""
    objective = functools.partial(regularized_objective, X=X, y=y, beta=beta, loss=loss)

    def advance(net, count):
        step = lambda net, _: (jax.tree.map(lambda p, g: p - lr * g, net, jax.grad(objective)(net)), None)  # noqa: E731
        return jax.lax.scan(step, net, None, length=count)[0]

    probe = lambda net: (jnp.log(objective(net)), _weighted_alignment(net, X, y))  # noqa: E731
    net, (lls, als) = _in_chunks(_scaled_start(X, key, scale, m), advance, probe, steps)
    value = objective(net)
    finite = jnp.all(jnp.isfinite(net.W1)) & jnp.all(jnp.isfinite(net.w2)) & jnp.isfinite(value)
    return _Trained(net, normalized_margin(net, X, y), lls, als, ~finite, value)


@functools.partial(jax.jit, static_argnames=("sharding", "program", "m", "steps", "schedule", "lr", "max_alpha"))
def _train_batch(X, y, key_data, scales, betas, *, sharding, program, m, steps, schedule, lr, max_alpha) -> _Trained:
    """The cells' runs over the batch (``vmap``), the batch axis laid out by ``sharding``:
    :func:`_train_one` (max-margin) or :func:`_train_regularized_one` (``program`` regularized)."""
    if program == "max-margin":
        one = functools.partial(_train_one, m=m, steps=steps, schedule=schedule, lr=lr, max_alpha=max_alpha)
        run = lambda X, y, k, s, b: one(X, y, jax.random.wrap_key_data(k), s)  # noqa: E731
    else:
        one = functools.partial(_train_regularized_one, m=m, steps=steps, lr=lr, loss=program.split("-")[1])
        run = lambda X, y, k, s, b: one(X, y, jax.random.wrap_key_data(k), s, b)  # noqa: E731
    out = jax.vmap(run)(X, y, key_data, scales, betas)
    return jax.lax.with_sharding_constraint(out, sharding)


@functools.partial(jax.jit, static_argnames=("sharding", "program", "tol", "max_iters"))
def _solve_batch(X, y, D, betas, *, sharding, program, tol, max_iters=None) -> dict[str, jax.Array]:
    """The cells' convex program over the batch (``vmap``; each problem stops on its own):
    :func:`solve_max_margin`, or :func:`solve_regularized` at each cell's ``β``."""

    def one(X, y, D, b):
        if program == "max-margin":
            return solve_max_margin(X, y, D, tol=tol, max_iters=max_iters, throw=False)
        return solve_regularized(X, y, D, beta=b, loss=program.split("-")[1], tol=tol, max_iters=max_iters, throw=False)

    sol = jax.vmap(one)(X, y, D, betas)
    out = {k: getattr(sol, k) for k in ("value", "gap", "residual", "status", "iterations")}
    return jax.lax.with_sharding_constraint(out, sharding)


def _solve_cells(X, y, D, betas, *, sharding, program, tol, real: int) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every cell's solve, as if alone, without letting one slow cell hold up the batch.

    A vmapped ``while_loop`` runs until its slowest problem stops: one cell whose interior-point
    run stalls and is continued by ADMM (thousands of iterations) would cost the whole batch as
    many. So the batch is solved with at most :data:`_FIRST_PASS_ITERS` iterations per method;
    a cell that ends ``optimal`` or ``infeasible`` there has stopped exactly where an uncapped
    solve stops (the limit only ends the loop), and the others are solved again with the default
    limits, :data:`_REDO_BATCH` at a time (padded like a batch); of a padded batch only the first
    ``real`` cells are. Returns the host arrays and each cell's device."""
    put = functools.partial(jax.device_put, device=sharding)
    solve = functools.partial(_solve_batch, sharding=sharding, program=program, tol=tol)
    out = solve(put(X), put(y), put(D), put(betas), max_iters=_FIRST_PASS_ITERS)
    devices = _devices(out["value"])
    out = {k: np.array(v) for k, v in out.items()}
    redo = np.flatnonzero(~np.isin(out["status"][:real], (RESULTS.optimal, RESULTS.infeasible)))
    size = -(-_REDO_BATCH // sharding.mesh.size) * sharding.mesh.size  # as a batch: device-independent
    for start in range(0, redo.size, size):
        idx = redo[start : start + size]
        take = np.concatenate([idx, np.repeat(idx[-1:], size - idx.size)])  # padded: one shape
        again = solve(put(X[take]), put(y[take]), put(D[take]), put(betas[take]))
        where = _devices(again["value"])
        for k, v in again.items():
            out[k][idx] = np.asarray(v)[: idx.size]
        for j, i in enumerate(idx):
            devices[i] = where[j]
    return out, devices


# ---------------------------------------------------------------------------------------- batches


class _Inputs(NamedTuple):
    X: np.ndarray  # (B, n, d)
    y: np.ndarray  # (B, n)
    key_data: np.ndarray  # (B, 2) the initialization keys' data
    scales: np.ndarray  # (B,)
    betas: np.ndarray  # (B,) the regularized programs' β (0 for max-margin cells)


def _batch_inputs(cells: list[dict[str, Any]]) -> _Inputs:
    """The (padded) batch's datasets, initialization keys and scales, on the host."""
    data = {}
    for c in cells:  # the padding repeats a cell: its data are made once
        if c["cell"] not in data:
            data[c["cell"]] = _make_data(c, _gen_kwargs(c))
    X = np.stack([data[c["cell"]][0] for c in cells])
    keys = np.stack([np.asarray(jax.random.key_data(_keys(c["seed"])[1])) for c in cells])
    scales = np.asarray([c["scale"] for c in cells], X.dtype)
    betas = np.asarray([c.get("beta", 0.0) for c in cells], X.dtype)
    return _Inputs(X, np.stack([data[c["cell"]][1] for c in cells]), keys, scales, betas)


def _cell_patterns(cell: Mapping[str, Any], X, net: Network, budget: int) -> tuple[np.ndarray, int]:
    """The cell's patterns (every one, or sampled plus the run's own), padded to ``budget`` rows by
    repeating the last one (a repeated block leaves ``P*`` unchanged); ``(D, p)``."""
    if cell["patterns"] == "enumerate":
        D = np.asarray(enumerate_patterns(X, max_patterns=_MAX_ENUMERATED))
    else:
        sampled = sample_patterns(X, num=cell["patterns"], key=_keys(cell["seed"])[2])
        D = np.asarray(merge_patterns(sampled, neuron_patterns(net, X)))
    p = D.shape[0]
    if p > budget:  # pragma: no cover - Cover's count bounds every pattern set
        raise RuntimeError(f"cell {cell['cell']}: {p} patterns, more than the padded {budget}")
    return np.concatenate([D, np.repeat(D[-1:], budget - p, axis=0)]), p


def _certify(cell, X, y, net: Network, D, margin: float) -> tuple[float, float, bool]:
    """``(c(λ), stationarity residual, certified)`` of the trained run's KKT multipliers
    (:func:`kkt_certificate`; NaN and False when the run does not separate the data)."""
    if not (cell["certify"] and np.isfinite(margin) and margin > 0):
        return math.nan, math.nan, False
    patterns = D if cell["patterns"] == "enumerate" else None
    key = _keys(cell["seed"])[2]
    cert = kkt_certificate(net, X, y, patterns=patterns, key=key, support_tol=_SUPPORT_TOL)
    value, residual = float(cert.value), float(cert.residual)
    return value, residual, bool(residual <= _KKT_TOL and value <= 1 + _CERT_TOL)


def _devices(arr: jax.Array) -> list[str]:
    """The device holding each entry of a batch-sharded array, as ``platform:id``."""
    out = [""] * arr.shape[0]
    for shard in arr.addressable_shards:
        for i in range(arr.shape[0])[shard.index[0]]:
            out[i] = f"{shard.device.platform}:{shard.device.id}"
    return out


def _early_alignment(log_losses: np.ndarray, alignment: np.ndarray, n: int, every: int) -> tuple[float, int]:
    """The alignment at the last checkpoint whose loss is within 1% of ``𝓛(0) = n log 2`` (the
    first checkpoint when none is), and its step."""
    ok = np.flatnonzero(log_losses >= math.log(n * math.log(2.0)) + math.log(_EARLY_LOSS_FRACTION))
    i = int(ok[-1]) if ok.size else 0
    return float(alignment[i]), i * every


def _run_batch(batch: Batch, mesh: Mesh, size: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Train, find the patterns, solve and certify one batch; its rows and stage times (seconds)."""
    cells, c0 = batch.cells, batch.cells[0]
    padded = cells + [cells[-1]] * (size - len(cells))  # ragged: padded, the padding dropped below
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    put = functools.partial(jax.device_put, device=sharding)
    times, t = {}, time.perf_counter()
    inp = _batch_inputs(padded)
    X, y = put(inp.X), put(inp.y)
    static = {k: c0[k] for k in ("program", "m", "steps", "schedule", "lr", "max_alpha")}
    tr = _train_batch(X, y, put(inp.key_data), put(inp.scales), put(inp.betas), sharding=sharding, **static)
    tr = jax.block_until_ready(tr)
    times["train_s"], t = time.perf_counter() - t, time.perf_counter()
    host = jax.tree.map(np.asarray, tr)
    nets = [Network(host.net.W1[i], host.net.w2[i]) for i in range(size)]
    n, d = inp.X.shape[1:]
    budget = _pattern_budget(n, d, c0["m"], c0["patterns"])
    pats = [_cell_patterns(c, inp.X[i], nets[i], budget) for i, c in enumerate(padded)]
    times["patterns_s"], t = time.perf_counter() - t, time.perf_counter()
    D = np.stack([p[0] for p in pats])
    sol, devices = _solve_cells(
        inp.X, inp.y, D, inp.betas, sharding=sharding, program=c0["program"], tol=c0["tol"], real=len(cells)
    )
    times["solve_s"], t = time.perf_counter() - t, time.perf_counter()
    regularized = c0["program"] != "max-margin"
    certs = [
        (math.nan, math.nan, False) if regularized else _certify(c, inp.X[i], inp.y[i], nets[i], pats[i][0], float(host.margin[i]))
        for i, c in enumerate(cells)
    ]
    times["certify_s"] = time.perf_counter() - t
    every = c0["steps"] // min(_CHECKPOINTS, c0["steps"])
    rows = []
    for i, c in enumerate(cells):
        p_star = float(sol["value"][i])
        extra = {}
        if regularized:  # the run's objective against the convex optimum (≥ 1: P* is a lower bound)
            objective = float(host.objective[i])
            gamma_star = ratio = early = math.nan
            early_step = -1
            extra = {"train_objective": objective, "objective_ratio": objective / p_star if p_star > 0 else math.nan}
            reached = bool(extra["objective_ratio"] <= 1 + c["margin_tol"])
        else:
            gamma_star = 1.0 / (2.0 * p_star) if p_star > 0 else math.nan
            ratio = float(host.margin[i]) / gamma_star if np.isfinite(gamma_star) and gamma_star > 0 else math.nan
            early, early_step = _early_alignment(host.log_losses[i], host.alignment[i], n, every)
            reached = bool(ratio >= 1 - c["margin_tol"])
        rows.append({
            **c, "patterns": str(c["patterns"]), "batch": batch.index, "process": jax.process_index(),
            "device": devices[i], "num_patterns": pats[i][1],
            "orthogonally_separable": bool(datasets.is_orthogonally_separable(inp.X[i], inp.y[i])),
            "margin": float(host.margin[i]), "gamma_star": gamma_star, "gamma_ratio": ratio,
            "reached": reached, **extra, "p_star": p_star, "gap": float(sol["gap"][i]),
            "residual": float(sol["residual"][i]), "status": status_name(int(sol["status"][i])),
            "iterations": int(sol["iterations"][i]), "kkt_certificate": certs[i][0], "kkt_residual": certs[i][1],
            "certified": certs[i][2], "early_alignment": early, "early_step": early_step,
            "final_alignment": float(host.alignment[i][-1]), "diverged": bool(host.diverged[i]),
            **{k: v / len(cells) for k, v in times.items()},
        })
    return rows, times


# ----------------------------------------------------------------------------------------- folder


def results_name(process: int = 0, count: int = 1) -> str:
    """The table's file name in the results folder: ``results.parquet`` for one process, else
    ``results-<process>-of-<count>.parquet`` (each host writes its own)."""
    return "results.parquet" if count == 1 else f"results-{process}-of-{count}.parquet"


def _atomic_write(path: str, write) -> None:
    """``write(tmp)``, then ``os.replace(tmp, path)``: readers see the old file or the new one."""
    tmp = f"{path}.tmp-{jax.process_index()}-{os.getpid()}"  # hosts sharing a folder may share pids
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_json(path: str, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)

    _atomic_write(path, write)


def _open_folder(out: str, spec: SweepSpec, resume: bool, table: str) -> list[dict[str, Any]]:
    """Check (or start) the results folder ``out``; the rows already written there.

    Raises:
        SweepError: ``out`` is a file; it holds results of a different spec (fingerprint in
            ``spec.json``), results without a ``spec.json``, or results while ``resume=False``.
            Nothing in the folder is changed then.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise SweepError(f"results folder {out!r} is a file")
    spec_path, table_path = os.path.join(out, "spec.json"), os.path.join(out, table)
    stored = None
    if os.path.exists(spec_path):
        try:
            with open(spec_path) as f:
                stored = json.load(f)["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SweepError(f"results folder {out!r}: spec.json is not a sweep's spec record") from None
    if stored is not None and stored != spec.fingerprint:
        raise SweepError(
            f"results folder {out!r} holds a different spec's sweep (fingerprint {stored[:12]}…, this spec "
            f"{spec.fingerprint[:12]}…); nothing was changed: choose another folder"
        )
    has_table = os.path.exists(table_path)
    if has_table and stored is None:
        raise SweepError(f"results folder {out!r} holds {table} but no spec.json; choose another folder")
    if has_table and not resume:
        raise SweepError(f"results folder {out!r} already holds this sweep's results; resume it or choose another folder")
    os.makedirs(out, exist_ok=True)
    if stored is None:
        _write_json(spec_path, {"fingerprint": spec.fingerprint, "spec": spec.to_json()})
    if not has_table:
        return []
    import pyarrow.parquet as pq

    return pq.read_table(table_path).to_pylist()


def _table(rows: list[dict[str, Any]]):
    """The rows as a ``pyarrow.Table``, sorted by cell."""
    import pyarrow as pa

    return pa.Table.from_pylist(sorted(rows, key=lambda r: r["cell"]))


def _write_table(path: str, rows: list[dict[str, Any]]):
    """Write the rows, sorted by cell, as a Parquet table through a temporary file; return it."""
    import pyarrow.parquet as pq

    table = _table(rows)
    _atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return table


def _local_mesh(mesh: Mesh | None) -> Mesh:
    """``mesh``, checked to be 1-D over this process's devices; default every local device."""
    if mesh is None:
        return Mesh(np.asarray(jax.local_devices()), (AXIS,))
    if not isinstance(mesh, Mesh) or len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must be a 1-D jax.sharding.Mesh (one axis for the batch), got {mesh!r}")
    if any(dev.process_index != jax.process_index() for dev in mesh.devices.flat):
        raise ValueError("mesh must hold this process's own devices (jax.local_devices()): each host runs its own cells")
    return mesh


# ------------------------------------------------------------------------------------ entry point


def sweep(spec, *, out: str | os.PathLike, mesh: Mesh | None = None, resume: bool = True, progress: bool = True):
    """Run a sweep spec: every cell's training run and convex solve, batched and sharded; one row
    per cell in ``out/results.parquet``.

    A cell is a dataset (``[data]``: generator, ``n``, ``d``, its own keywords, a seed), a
    gradient-descent run on it (``[train]``: ``m`` neurons from a balanced initialization of
    scale ``scale``, ``steps`` steps of the ``schedule``, as :func:`train`) and the convex
    max-margin program over its patterns (``[solve]``: ``patterns = "enumerate"`` or a number of
    sampled gates plus the run's own patterns; :func:`solve_max_margin` with ``tol``), compared
    as in :func:`crosscheck` (Wang & Pilanci 2021, arXiv 2110.06488): ``γ(θ)/γ*`` with
    ``γ* = 1/(2P*)``, the KKT certificate ``c(λ)`` of the trained run, and the early alignment
    ``cos(w_i, s_i Xᵀ D(w_i) y)`` (weighted by ``|w2_i| ‖w_i‖``) at the last of 50 checkpoints
    where the loss is within 1% of ``n log 2``.

    With ``[solve] program = "regularized-squared"`` or ``"regularized-logistic"`` and ``beta``
    (required; an axis or a number), the run is gradient descent with step ``lr`` on
    :func:`regularized_objective` ``ℓ(f(θ; X), y) + (β/2)(‖W1‖² + ‖w2‖²)`` (``schedule`` must be
    ``"constant"``, its default there) and the solve :func:`solve_regularized` at ``β``; the row
    adds ``beta``, ``train_objective`` and ``objective_ratio = train_objective / P*`` (≥ 1: the
    network is a feasible point of the program over its own patterns), ``reached`` is
    ``objective_ratio ≤ 1 + margin_tol``, and the max-margin quantities (``gamma_ratio``, the
    KKT certificate, the early alignment) are NaN. Seed ``s`` gives the keys
    ``jax.random.split(jax.random.key(s), 3)``: data, initialization, sampled patterns.

    Cells of one shape run ``[sweep] batch`` at a time (default 16) as one ``vmap``-ed program
    whose batch axis is sharded over ``mesh`` (``NamedSharding``; default every local device on a
    1-D mesh named ``"batch"``); under ``vmap`` each solve stops on its own, with its own
    iteration count and status. With several processes (``jax.distributed.initialize()``),
    process ``i`` of ``k`` runs batches ``i, i + k, …`` and writes ``results-<i>-of-<k>.parquet``.

    The table is rewritten atomically after every batch (a temporary file moved into place), so
    an interrupted sweep loses at most the batch in flight; ``resume=True`` skips the cells
    already in the table. The columns: the cell's settings (``cell``, ``n``, ``d``, ``seed``,
    ``m``, ``scale``, …), ``batch``, ``process``, ``device``, ``num_patterns``,
    ``orthogonally_separable``, ``margin`` (``γ(θ)``), ``gamma_star``, ``gamma_ratio``,
    ``reached`` (``γ(θ)/γ* ≥ 1 - margin_tol``), ``p_star``, ``gap``, ``residual``, ``status``,
    ``iterations``, ``kkt_certificate``, ``kkt_residual``, ``certified``, ``early_alignment``,
    ``early_step``, ``final_alignment``, ``diverged`` and the per-cell share of the batch's
    seconds ``train_s``, ``patterns_s``, ``solve_s``, ``certify_s`` (compilation included in a
    shape's first batch). Values follow JAX's default float: enable x64 for the solver's ``tol``.

    Args:
        spec: a TOML file's path, a mapping of sections, or a :class:`SweepSpec`.
        out: the results folder (created); it keeps ``spec.json`` and the table.
        mesh: a 1-D :class:`jax.sharding.Mesh` of this process's devices (default: all of them).
        resume: continue a sweep of the same spec in ``out``, skipping its finished cells.
        progress: a progress bar over cells on stderr.

    Returns:
        This process's table, a ``pyarrow.Table`` sorted by ``cell``.

    Raises:
        SweepError: a bad spec (the message names the key) or an unusable folder (it names the
            folder; nothing in it is changed).
        ValueError: a mesh that is not 1-D or holds another process's devices.

    Example:
        >>> table = cr.sweep("examples/phase.toml", out="runs/phase")
        >>> table.to_pandas().groupby("angle").gamma_ratio.mean()     # doctest: +SKIP
    """
    spec = spec if isinstance(spec, SweepSpec) else load_spec(spec)
    mesh = _local_mesh(mesh)
    check_intra_op_pool(mesh.devices.flat)
    out = os.fspath(out)
    process, count = jax.process_index(), jax.process_count()
    size = -(-spec.sweep["batch"] // mesh.size) * mesh.size  # every batch's padded size
    mine = [b for b in make_batches(expand_cells(spec), spec.sweep["batch"]) if b.index % count == process]
    path = os.path.join(out, results_name(process, count))
    rows = _open_folder(out, spec, resume, os.path.basename(path))
    done = {r["cell"] for r in rows}
    todo = [b for b in mine if any(c["cell"] not in done for c in b.cells)]
    total = sum(len(b.cells) for b in mine)
    from tqdm.auto import tqdm

    with tqdm(total=total, initial=total - sum(len(b.cells) for b in todo), desc="sweep cells", unit="cell",
              disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        for b in todo:
            new, _ = _run_batch(b, mesh, size)
            ids = {r["cell"] for r in new}
            rows = [r for r in rows if r["cell"] not in ids] + new
            _write_table(path, rows)
            bar.update(len(new))
    return _table(rows)
