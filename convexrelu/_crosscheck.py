"""The cross-check: gradient descent against the convex max-margin program, on one dataset.

:func:`crosscheck` runs the story of Wang & Pilanci (arXiv 2110.06488) end to end: ``r`` runs of
gradient descent from small balanced initializations (batched), the activation patterns, the
convex max-margin program solved natively (and through cvxpy), the KKT certificates of the
trained networks, and the checks that tie them together. It returns a
:class:`CrosscheckReport`; ``convexrelu crosscheck`` prints and saves it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._certificates import dual_certificate, kkt_certificate
from ._losses import neuron_alignment, normalized_margin
from ._maps import to_network
from ._network import Network, forward, init_network, neuron_patterns
from ._patterns import enumerate_patterns, merge_patterns, pattern_count, sample_patterns
from ._solution import ConvexSolution, status_name
from ._solver import solve_max_margin
from ._train import TrainHistory, train_many
from ._validation import check_Xy
from .datasets import is_orthogonally_separable

_BRIDGE_RTOL = 1e-4  # cvxpy's value against the native one (relative)
_WEAK_DUALITY_TOL = 1e-6  # γ(θ)/γ* ≤ 1 + this
_EARLY_LOSS_FRACTION = 0.99  # "early" = the loss is still within 1% of its value at θ = 0


@dataclasses.dataclass(frozen=True, eq=False)
class CrosscheckRun:
    """One gradient-descent run compared with the convex optimum (a row of the table).

    Attributes:
        final_margin: ``γ(θ_T) = min_i y_i f(θ_T; x_i) / ‖θ_T‖²`` after the last step.
        margin_ratio: ``γ(θ_T) / γ*`` with ``γ* = 1 / (2 P*)``; at most 1 (weak duality).
        reached_gamma_star: ``γ(θ_T)/γ* ≥ 1 - margin_tol``.
        early_alignment: mean neuron alignment ``cos(w_i, s_i Xᵀ D(w_i) y)`` weighted by
            ``|w2_i| ‖w_i‖``, at the last checkpoint where the loss is within 1% of ``n log 2``.
        early_alignment_step: the step of that checkpoint.
        kkt_certificate: ``c(y ⊙ μ)`` of the run's KKT multipliers (None: not separating).
        kkt_residual: relative stationarity residual of those multipliers (None likewise).
        certified_optimal: ``kkt_residual ≤ kkt_tol`` and ``kkt_certificate ≤ 1 + cert_tol``.
        psi_output_cosine: cosine between the outputs of the run and of ψ(convex solution) on X.
        psi_sign_agreement: fraction of samples where the two outputs have the same sign.
        psi_direction_cosine: per trained neuron, the largest cosine with a ψ neuron of the same
            output sign, averaged with weights ``|w2_i| ‖w_i‖``.
        diverged: the run's loss or parameters became non-finite.
    """

    final_margin: float
    margin_ratio: float
    reached_gamma_star: bool
    early_alignment: float
    early_alignment_step: int
    kkt_certificate: float | None
    kkt_residual: float | None
    certified_optimal: bool
    psi_output_cosine: float
    psi_sign_agreement: float
    psi_direction_cosine: float
    diverged: bool


@dataclasses.dataclass(frozen=True)
class Check:
    """One check of the cross-check: its name, outcome and the tolerances it used."""

    name: str
    passed: bool
    tolerances: Mapping[str, float]


@dataclasses.dataclass(frozen=True, eq=False)
class CrosscheckReport:
    """Result of :func:`crosscheck`. A record: the computation is in :func:`crosscheck`.

    Attributes:
        n, d, m, runs, steps: sizes (samples, features, neurons per run, runs, steps per run).
        info: labels recorded verbatim in the report (e.g. ``{"dataset": ..., "seed": ...}``).
        orthogonally_separable: whether ``x_iᵀx_k > 0`` for equal and ``≤ 0`` for unequal labels.
        num_patterns: ``p``, the patterns the program was solved over.
        exact: the patterns are all of them (enumerated), so ``P*`` is the true optimum.
        native: the native solve: ``value`` (P*), ``status``, ``gap``, ``residual``,
            ``iterations``, ``certificate`` (``c(y ⊙ μ*)``) and ``certificate_exact``.
        bridge: the cvxpy solve: ``ran`` and, when it ran, ``patterns``, ``which``, ``status``,
            ``value``, ``relative_difference``; else ``reason`` when it could not run.
        gamma_star: ``γ* = 1 / (2 P*)``.
        rows: one :class:`CrosscheckRun` per run.
        checks: the :class:`Check` records, in order.
        timings: seconds per stage (``training``, ``patterns``, ``native solver``,
            ``cvxpy solver``, ``certificates``).
        psi_neurons: neurons of ψ(convex solution).
        networks: the trained networks, batched (``W1 (r, d, m)``, ``w2 (r, m)``).
        solution: the native :class:`ConvexSolution`.
        history: the training record, every field ``(r, k)`` (steps, margins, losses, …).
        alignment_steps: ``(c,)`` checkpoints of the alignment record (0 first).
        alignment: ``(r, c)`` weighted alignment cosine of each run at each checkpoint.
    """

    n: int
    d: int
    m: int
    runs: int
    steps: int
    info: Mapping[str, Any]
    orthogonally_separable: bool
    num_patterns: int
    exact: bool
    native: Mapping[str, Any]
    bridge: Mapping[str, Any]
    gamma_star: float
    rows: tuple[CrosscheckRun, ...]
    checks: tuple[Check, ...]
    timings: Mapping[str, float]
    psi_neurons: int
    networks: Network
    solution: ConvexSolution
    history: TrainHistory
    alignment_steps: np.ndarray
    alignment: np.ndarray

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types (what ``convexrelu crosscheck`` writes as report.json)."""
        info = dict(self.info)
        head = {"dataset": info.pop("dataset", "data"), "n": self.n, "d": self.d, "m": self.m}
        return {
            **head,
            "runs": self.runs,
            "steps": self.steps,
            **info,
            "orthogonally_separable": self.orthogonally_separable,
            "patterns": {"count": self.num_patterns, "exact": self.exact},
            "native": dict(self.native),
            "bridge": dict(self.bridge),
            "gamma_star": self.gamma_star,
            "runs_detail": [dataclasses.asdict(r) for r in self.rows],
            "psi_neurons": self.psi_neurons,
            "times_s": dict(self.timings),
            "checks": {c.name: c.passed for c in self.checks},
            "check_tolerances": {c.name: dict(c.tolerances) for c in self.checks},
            "passed": self.passed,
        }


# ------------------------------------------------------------------------------ small helpers


def _float(x) -> float:
    return float(np.asarray(x))


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress, leave=False, file=sys.stderr, dynamic_ncols=True)


class _Stages:
    """Times named stages; announces each on stderr when ``progress``."""

    def __init__(self, progress: bool):
        self.progress = progress
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        if self.progress:
            print(f"· {name} …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        yield
        self.times[name] = time.perf_counter() - t0


# ----------------------------------------------------------------------------------- training


class _Training(NamedTuple):
    nets: Network  # batched (r, …)
    history: TrainHistory  # fields (r, k)
    alignment_steps: np.ndarray  # (c,)
    alignment: np.ndarray  # (r, c)
    diverged: np.ndarray  # (r,)


def _checkpoints(steps: int, chunks: int = 50) -> list[int]:
    """Chunk boundaries for the progress bar and the alignment record: equal chunks (one jit
    trace for all of them); the last one may be shorter (a second trace)."""
    size = max(1, -(-steps // chunks))
    return sorted({min(steps, size * k) for k in range(1, chunks + 1)})


def _weighted_alignment(nets: Network, X, y) -> np.ndarray:
    """Per run, ``Σ_i c_i cos_i / Σ_i c_i``: the neuron alignment cosines (:func:`neuron_alignment`)
    weighted by ``c_i = |w2_i| ‖w_i‖``."""

    def one(net):
        cos = neuron_alignment(net, X, y)
        w = jnp.abs(net.w2) * jnp.linalg.norm(net.W1, axis=0)
        return jnp.sum(w * cos) / jnp.sum(w)

    return np.asarray(jax.vmap(one)(nets))


def _train_runs(X, y, *, m, runs, steps, scale, lr, max_alpha, key, progress) -> _Training:
    """``runs`` balanced initializations of scale ``scale``, trained by gradient descent with the
    loss-based step ``η = α / 𝓛(θ)`` in 50 chunks; alignment recorded after every chunk."""
    d = X.shape[1]
    nets = jax.vmap(lambda k: init_network(d, m, scale=scale, balanced=True, key=k))(jax.random.split(key, runs))
    state, hist, align_steps, align = None, [], [0], [_weighted_alignment(nets, X, y)]
    done, res = 0, None
    with _bar(steps, f"gradient descent ({runs} runs)", progress) as bar:  # closed on Ctrl-C too
        for stop in _checkpoints(steps):
            res = train_many(
                nets, X, y, steps=stop - done, schedule="loss-based", lr=lr, max_alpha=max_alpha, state=state,
                record_every=max(1, min(stop - done, max(1, steps // 400))),
            )
            nets, state = res.net, res.state
            hist.append(res.history)
            align_steps.append(stop)
            align.append(_weighted_alignment(nets, X, y))
            bar.update(stop - done)
            done = stop
    history = jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a], axis=-1), *hist)
    return _Training(nets, history, np.asarray(align_steps), np.stack(align, axis=1), np.asarray(res.diverged))


def _early_alignment(tr: _Training, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the alignment at the last checkpoint whose loss is ``≥ 0.99 · 𝓛(0) = 0.99 n log 2``
    (log loss interpolated at the checkpoints); returns ``(cosines, steps)``."""
    log_loss0 = math.log(n * math.log(2.0))
    steps_rec = np.asarray(tr.history.step)[0]
    idx = []
    for k in range(tr.alignment.shape[0]):
        ll = np.interp(tr.alignment_steps, steps_rec, np.asarray(tr.history.log_loss)[k], left=log_loss0)
        ok = np.flatnonzero(ll >= log_loss0 + math.log(_EARLY_LOSS_FRACTION))
        idx.append(int(ok[-1]) if ok.size else 0)
    idx = np.asarray(idx, dtype=int)
    return tr.alignment[np.arange(len(idx)), idx], tr.alignment_steps[idx]


# ------------------------------------------------------------------------ patterns and solves


def _select_patterns(X, nets, extra, *, num, max_enumerated, key) -> tuple[Array, bool]:
    """Every pattern when Cover's count ``2 Σ_{k<r} C(n-1, k) ≤ max_enumerated``, else ``num``
    sampled gates; merged with the trained neurons' own patterns and ``extra``. ``(D, exact)``."""
    n = X.shape[0]
    r = int(np.linalg.matrix_rank(np.asarray(X)))
    exact = pattern_count(n, r) <= max_enumerated
    D = enumerate_patterns(X) if exact else sample_patterns(X, num=num, key=key)
    own = jax.vmap(lambda net: neuron_patterns(net, X))(nets).reshape(-1, n)
    blocks = [D, own] + ([] if extra is None else [jnp.asarray(extra)])
    return merge_patterns(*blocks), exact


def _active_blocks(sol: ConvexSolution, value: float) -> np.ndarray:
    """Blocks with ``‖u_j‖ + ‖v_j‖ > 1e-9 P*`` (the native solution's support)."""
    size = np.asarray(jnp.linalg.norm(sol.U, axis=1) + jnp.linalg.norm(sol.V, axis=1))
    return size > 1e-9 * max(value, 1e-300)


def _bridge_solve(X, y, D, sol: ConvexSolution, *, max_patterns: int) -> dict[str, Any]:
    """``P*`` through cvxpy over all patterns when ``p ≤ max_patterns``, else over the native
    solution's support (the same value iff the native solution is optimal there)."""
    try:
        from . import bridge
    except ImportError as e:  # pragma: no cover - cvxpy is in the test environment
        return {"ran": False, "reason": f"bridge unavailable: {e}"}
    P_native = _float(sol.value)
    if D.shape[0] <= max_patterns:
        Db, which = D, "all"
    else:
        Db, which = D[np.flatnonzero(_active_blocks(sol, P_native))], "native support"
    try:
        bsol = bridge.solve_with_cvxpy(X, y, Db, program="max-margin")
    except ImportError as e:  # cvxpy itself is imported lazily
        return {"ran": False, "reason": f"bridge unavailable: {e}"}
    P_bridge = _float(bsol.value)
    return {
        "ran": True,
        "patterns": int(Db.shape[0]),
        "which": which,
        "status": status_name(bsol.status),
        "value": P_bridge,
        "relative_difference": abs(P_bridge - P_native) / max(abs(P_native), 1e-300),
    }


# ------------------------------------------------------------------------------- certificates


def _direction_agreement(net: Network, psi: Network, X) -> tuple[float, float, float]:
    """Agreement of a trained network with ψ(convex solution).

    Returns ``(output_cosine, sign_agreement, direction_cosine)``: the cosine between the two
    output vectors on ``X``, the fraction of equal output signs, and the mean over the trained
    neurons (weighted by ``|w2_i| ‖w_i‖``) of the largest cosine between the neuron's direction
    and a ψ neuron of the same output sign.
    """
    f1 = np.asarray(forward(net, X))
    f2 = np.asarray(forward(psi, X))
    out_cos = float(f1 @ f2 / (np.linalg.norm(f1) * np.linalg.norm(f2)))
    signs = float(np.mean(np.sign(f1) == np.sign(f2)))
    W, a = np.asarray(net.W1), np.asarray(net.w2)
    P, b = np.asarray(psi.W1), np.asarray(psi.w2)
    wt = np.abs(a) * np.linalg.norm(W, axis=0)
    Wn = W / np.maximum(np.linalg.norm(W, axis=0), 1e-300)
    Pn = P / np.maximum(np.linalg.norm(P, axis=0), 1e-300)
    cos = Wn.T @ Pn  # (m, m_psi)
    same = np.sign(a)[:, None] == np.sign(b)[None, :]
    best = np.where(same, cos, -1.0).max(axis=1) if P.shape[1] else np.full(W.shape[1], -1.0)
    return out_cos, signs, float(np.sum(wt * best) / np.sum(wt))


def _kkt_certificates(nets, X, y, D, final_margin, *, exact, key, support_tol, progress) -> list:
    """Each run's :func:`kkt_certificate` (None for a run that does not separate the data: no
    KKT point of the max-margin problem); over every pattern when they were enumerated."""
    certs = []
    with _bar(len(final_margin), "KKT certificates", progress) as bar:
        for k, margin in enumerate(final_margin):
            if not np.isfinite(margin) or margin <= 0:  # not separating, or diverged
                certs.append(None)
            else:
                net_k = jax.tree.map(lambda a: a[k], nets)
                cert = kkt_certificate(net_k, X, y, patterns=D if exact else None, key=key, support_tol=support_tol)
                certs.append(cert)
            bar.update()
    return certs


# ------------------------------------------------------------------------------------- checks


def _checks(*, status, bridge, exact, orth, strict, ratios, reached, certified, tols) -> tuple[Check, ...]:
    """The checks, each with the tolerances it uses:

    * the native solver reports ``optimal``;
    * cvxpy's ``P*`` agrees with the native one to ``1e-4`` relative (when it ran);
    * weak duality ``γ(θ) ≤ γ* (1 + 1e-6)`` for every run (when ``P*`` is over every pattern);
    * every run reaches ``γ(θ) ≥ (1 - margin_tol) γ*`` (orthogonally separable data, or ``strict``);
    * a run is certified (``c(y ⊙ μ) ≤ 1 + cert_tol`` at a KKT point) iff it reached ``γ*``
      (when exact).
    """
    out = [Check("native solver optimal", status == "optimal", {})]
    if bridge.get("ran"):
        ok = bridge["relative_difference"] <= _BRIDGE_RTOL
        out.append(Check("cvxpy agrees with native (1e-4 rel.)", ok, {"rtol": _BRIDGE_RTOL}))
    if exact:
        ok = bool(np.all(ratios <= 1 + _WEAK_DUALITY_TOL))
        out.append(Check("weak duality γ(θ) ≤ γ* (all runs)", ok, {"rtol": _WEAK_DUALITY_TOL}))
    if orth or strict:
        tol_m = tols["margin_tol"]
        out.append(Check(f"every run reaches γ* (within {tol_m:g})", bool(np.all(reached)), {"margin_tol": tol_m}))
    if exact:
        keys = ("margin_tol", "kkt_tol", "cert_tol")
        ok = bool(np.all(certified == reached))
        out.append(Check("certificates consistent with margins", ok, {k: tols[k] for k in keys}))
    return tuple(out)


class _Comparison(NamedTuple):
    gamma_star: float
    ratios: np.ndarray  # (r,) γ(θ_T)/γ*
    reached: np.ndarray  # (r,) bool
    certified: np.ndarray  # (r,) bool
    rows: tuple[CrosscheckRun, ...]
    psi_neurons: int
    optimum_certificate: float  # c(y ⊙ μ*)


def _compare(tr: _Training, X, y, D, sol: ConvexSolution, *, exact, key, support_tol, tols, progress) -> _Comparison:
    """Each run against the convex optimum: ``γ(θ_T)/γ*`` with ``γ* = 1/(2P*)``, the KKT
    certificate (certified when ``residual ≤ kkt_tol`` and ``c(y ⊙ μ) ≤ 1 + cert_tol``), the
    agreement with ψ(solution), the early alignment; and the optimum's own ``c(y ⊙ μ*)``."""
    final_margin = np.asarray(jax.vmap(lambda net: normalized_margin(net, X, y))(tr.nets))
    gamma_star = 1.0 / (2.0 * _float(sol.value))
    ratios = final_margin / gamma_star
    reached = ratios >= 1 - tols["margin_tol"]
    certs = _kkt_certificates(tr.nets, X, y, D, final_margin, exact=exact, key=key, support_tol=support_tol, progress=progress)
    cert_vals = np.array([np.nan if c is None else _float(c.value) for c in certs])
    kkt_res = np.array([np.inf if c is None else _float(c.residual) for c in certs])
    # a run is certified globally optimal when it is a KKT point (small stationarity residual)
    # whose multipliers pass the dual certificate c(λ) ≤ 1 (Wang & Pilanci 2021)
    certified = (kkt_res <= tols["kkt_tol"]) & (cert_vals <= 1 + tols["cert_tol"])
    psi = to_network(sol, allow_inexact=True)  # a non-optimal status fails its own check
    agreement = [_direction_agreement(jax.tree.map(lambda a: a[k], tr.nets), psi, X) for k in range(len(certs))]
    early, early_steps = _early_alignment(tr, X.shape[0])
    # the convex optimum's own certificate: c(y ⊙ μ*) over all (or sampled) patterns
    optimum = dual_certificate(X, y * sol.dual, patterns=D if exact else None, key=key)
    rows = tuple(
        CrosscheckRun(
            final_margin=float(final_margin[k]),
            margin_ratio=float(ratios[k]),
            reached_gamma_star=bool(reached[k]),
            early_alignment=float(early[k]),
            early_alignment_step=int(early_steps[k]),
            kkt_certificate=None if certs[k] is None else _float(certs[k].value),
            kkt_residual=None if certs[k] is None else _float(certs[k].residual),
            certified_optimal=bool(certified[k]),
            psi_output_cosine=agreement[k][0],
            psi_sign_agreement=agreement[k][1],
            psi_direction_cosine=agreement[k][2],
            diverged=bool(tr.diverged[k]),
        )
        for k in range(len(certs))
    )
    return _Comparison(gamma_star, ratios, reached, certified, rows, int(psi.W1.shape[1]), _float(optimum.value))


# -------------------------------------------------------------------------------- entry point


def crosscheck(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    key: PRNGKeyArray,
    m: int = 50,
    runs: int = 8,
    steps: int = 60_000,
    patterns: int = 5000,
    bridge: bool = True,
    extra_patterns: Bool[Array, "q n"] | None = None,
    scale: float = 1e-3,
    lr: float = 1e-3,
    max_alpha: float = 1e-3,
    tol: float = 1e-7,
    margin_tol: float = 1e-3,
    kkt_tol: float = 1e-2,
    cert_tol: float = 1e-3,
    support_tol: float = 1e-2,
    max_enumerated: int = 20_000,
    bridge_max_patterns: int = 300,
    strict: bool = False,
    progress: bool = False,
    info: Mapping[str, Any] | None = None,
) -> CrosscheckReport:
    """Gradient descent against the convex max-margin program on one dataset, with checks.

    The steps (Wang & Pilanci 2021, arXiv 2110.06488; Lyu & Li 2020, arXiv 1906.05890):

    1. **Training.** ``runs`` networks of ``m`` neurons from balanced initializations of scale
       ``scale`` (:func:`init_network`) are trained for ``steps`` steps of gradient descent on
       the logistic loss with the loss-based step ``η = α/𝓛(θ)`` (``α`` from ``lr``, capped by
       ``max_alpha``), all runs batched (:func:`train_many`). The weighted neuron alignment
       ``cos(w_i, s_i Xᵀ D(w_i) y)`` is recorded at 50 checkpoints.
    2. **Patterns.** Every pattern (:func:`enumerate_patterns`) when Cover's count
       ``2 Σ_{k<r} C(n-1, k) ≤ max_enumerated``, else ``patterns`` sampled gates; merged
       (:func:`merge_patterns`) with the trained neurons' own patterns and ``extra_patterns``.
    3. **Convex program.** ``P* = min Σ_j ‖u_j‖ + ‖v_j‖`` s.t. ``y ⊙ Σ_j D_j X (u_j - v_j) ≥ 1``,
       ``u_j, v_j ∈ K_j``, solved natively (:func:`solve_max_margin`, tolerance ``tol``) and, with
       ``bridge``, through cvxpy (all patterns up to ``bridge_max_patterns``, else the native
       support). ``γ* = 1/(2P*)``.
    4. **Certificates.** Each separating run's KKT multipliers ``μ`` and ``c(y ⊙ μ)``
       (:func:`kkt_certificate`); the optimum's own ``c(y ⊙ μ*)`` (:func:`dual_certificate`);
       the agreement of each run with ψ(convex solution) (:func:`to_network`).
    5. **Checks** (each a :class:`Check` with its tolerances): the native solve is optimal;
       cvxpy agrees to ``1e-4`` relative; weak duality ``γ(θ) ≤ γ*`` (exact patterns); every run
       reaches ``γ(θ) ≥ (1 - margin_tol) γ*`` (on orthogonally separable data, or with
       ``strict``); and, with exact patterns, a run is certified (``kkt_residual ≤ kkt_tol`` and
       ``c(y ⊙ μ) ≤ 1 + cert_tol``) exactly when it reached ``γ*``.

    The default tolerances assume float64 (``jax.config.update("jax_enable_x64", True)``).

    Args:
        X: data ``(n, d)``, floating, finite.
        y: labels ``(n,)`` in {-1, +1}.
        key: a JAX PRNG key, split as ``jax.random.split(key, 4)``: 1 the initializations,
            2 the sampled patterns, 3 the sampled certificates; 0 is left unused, for the
            caller's data (``convexrelu crosscheck`` draws its dataset from it).
        m, runs, steps: neurons per run, runs, gradient-descent steps per run.
        patterns: gates to sample when the patterns are not enumerated.
        bridge: also solve through cvxpy (``convexrelu.bridge``); skipped if it is not installed.
        extra_patterns: bool ``(q, n)`` patterns to include (e.g. a teacher network's).
        scale, lr, max_alpha: initialization scale, initial ``α`` and its cap.
        tol: native solver tolerance.
        margin_tol, kkt_tol, cert_tol: tolerances of the checks (see above).
        support_tol: support vectors are the samples with margin ``≤ (1 + support_tol)`` × the
            minimum (for the KKT multipliers).
        max_enumerated: enumerate the patterns when Cover's count is at most this.
        bridge_max_patterns: cvxpy gets every pattern up to this many, else the native support.
        strict: require every run to reach ``γ*`` even without orthogonal separability.
        progress: stage lines and progress bars on stderr.
        info: labels recorded verbatim in the report, e.g. ``{"dataset": "2d", "seed": 0}``.

    Returns:
        A :class:`CrosscheckReport`; ``report.passed`` is True when every check passed and
        ``report.to_json()`` is the JSON report.

    Raises:
        TypeError, ValueError: bad ``X``/``y`` or a size that is not a positive int.

    Example:
        >>> X, y = cr.datasets.two_d(12, key=jax.random.key(0))
        >>> rep = cr.crosscheck(X, y, m=10, runs=2, steps=30_000, key=jax.random.key(1))
        >>> rep.passed, [r.margin_ratio for r in rep.rows]     # doctest: +SKIP
        (True, [0.9999..., 0.9999...])
    """
    X, y = check_Xy(X, y)
    m, runs = _positive_int("m", m), _positive_int("runs", runs)
    steps, patterns = _positive_int("steps", steps), _positive_int("patterns", patterns)
    tols = {"margin_tol": margin_tol, "kkt_tol": kkt_tol, "cert_tol": cert_tol}
    _, k_init, k_pat, k_cert = jax.random.split(key, 4)  # index 0: the caller's data (the CLI's)
    stage = _Stages(progress)
    n, d = X.shape
    orth = bool(is_orthogonally_separable(X, y))
    with stage("training"):
        tr = _train_runs(
            X, y, m=m, runs=runs, steps=steps, scale=scale, lr=lr, max_alpha=max_alpha, key=k_init, progress=progress
        )
    with stage("patterns"):
        D, exact = _select_patterns(X, tr.nets, extra_patterns, num=patterns, max_enumerated=max_enumerated, key=k_pat)
    with stage("native solver"):
        sol = jax.block_until_ready(solve_max_margin(X, y, D, tol=tol, throw=False))
    bridge_info = {"ran": False}
    if bridge:
        with stage("cvxpy solver"):
            bridge_info = _bridge_solve(X, y, D, sol, max_patterns=bridge_max_patterns)
    with stage("certificates"):
        comp = _compare(
            tr, X, y, D, sol, exact=exact, key=k_cert, support_tol=support_tol, tols=tols, progress=progress
        )
    status = status_name(sol.status)
    checks = _checks(
        status=status, bridge=bridge_info, exact=exact, orth=orth, strict=strict,
        ratios=comp.ratios, reached=comp.reached, certified=comp.certified, tols=tols,
    )
    native = {
        "value": _float(sol.value), "status": status, "gap": _float(sol.gap), "residual": _float(sol.residual),
        "iterations": int(np.asarray(sol.iterations)), "certificate": comp.optimum_certificate,
        "certificate_exact": bool(exact),  # over every pattern when they were enumerated
    }
    return CrosscheckReport(
        n=n, d=d, m=m, runs=runs, steps=steps, info=dict(info or {}),
        orthogonally_separable=orth, num_patterns=int(D.shape[0]), exact=bool(exact),
        native=native, bridge=bridge_info, gamma_star=comp.gamma_star, rows=comp.rows, checks=checks,
        timings=dict(stage.times), psi_neurons=comp.psi_neurons, networks=tr.nets, solution=sol,
        history=tr.history, alignment_steps=tr.alignment_steps, alignment=tr.alignment,
    )
