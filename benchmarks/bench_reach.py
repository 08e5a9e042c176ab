"""Reach (issue 19): the ReLU program by the matrix-free solver against scnn's AL, the gated ReLU
program against scnn's R-FISTA, and the scikit-learn estimators against a non-convex network
trained by optax Adam and scikit-learn's ``MLPClassifier``.

ReLU rows: teacher data with ``d = 50``, ``p = 500`` gates ``G ~ N(0, I)`` shared by both libraries,
squared loss, ``λ = 1e-2`` in scnn's convention (``β = n λ``), ``n`` in ``--relu-sizes``. Each half of
a row runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own. Ours:
``solve_regularized(..., method="matrix-free", tol=1e-4)``, compiled first, its iteration limit set
from the measured cost of one iteration to fit ``--relu-budget`` seconds (status ``max_iters`` when
the gap 1e-4 is not reached within it; ``--relu-budget 0``, as in ``--quick``, keeps the solver's
default limit, which does not depend on the machine's speed). scnn: ``ConvexReLU`` + ``AL`` (its defaults, but
``max_primal_iters = --peer-iters``), float64, capped at ``--peer-timeout`` seconds of wall clock,
run up to ``n = --peer-max-n``; its objective and relative cone violation are scored by ours on
its own gates. "ours ≤ scnn objective" is ours' time when its final objective is at or below
scnn's.

Gated rows: teacher data (``convexrelu.datasets.teacher``, labels ±1) with ``d = 50``, ``p`` gates
(500; 100 at ``n = 10⁵`` by default, so that the whole run, scnn included, stays within ~10 minutes)
``G ~ N(0, I)`` shared by both libraries, squared loss, ``λ = 1e-2`` in scnn's convention
``1/(2n)‖f − y‖² + λ Σ‖w_j‖`` (ours solves the equivalent sum-form program with ``β = n λ``).
scnn's ``ConvexGatedReLU`` + ``RFISTA`` (its defaults: tol 1e-6 on the min-norm subgradient, 10 000
iterations, data not unitized) gives the peer objective, scored with ``convexrelu.gated_objective``
on the patterns of scnn's own (possibly reordered) gates. Ours: the time to the certified relative
gap 1e-4 (``ours_gap_1e4_s``) and the time to an objective at or below scnn's
(``ours_equal_s``: the loosest tolerance of 1e-4, 1e-5, 1e-6, 1e-7 that gets there). Every timing
of ours is of a compiled solver (one warm-up call of the same shapes first).

Estimator rows: breast cancer (binary), digits as 10 classes, and digits 3 vs 8 (binary), each
standardized and split 75/25 (stratified, seed 0). ``ConvexReLUClassifier`` (``model="relu"`` and
``"gated"``, ``m`` sampled gates, squared loss, one-vs-rest for 10 classes, gated only there in the full run) against a network of the
same width ``m`` trained by optax Adam (full batch, logistic / softmax cross-entropy, weight decay
``beta``, biases) and ``MLPClassifier(hidden_layer_sizes=(m,))``: test accuracy and fit time (ours
includes compilation on the first fit of a shape).

Usage: python benchmarks/bench_reach.py [--quick] [--relu-sizes 1000,10000,100000] [--relu-budget S]
[--peer-timeout S] [--peer-iters K] [--peer-max-n N] [--dtype float64] [--sizes 10000,100000:100]
[--p 500] [--no-scnn] [--skip-gated] [--skip-estimators] [--out DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import convexrelu as cr  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # _results, also when loaded by path
from _results import write_results  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"


def timed(fn):
    t = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t


# ----------------------------------------------------------------------------------------------
# gated program: ours vs scnn R-FISTA on the same gates
# ----------------------------------------------------------------------------------------------


def gated_data(n, d, p, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    data = cr.datasets.teacher(n, d, key=k1)
    G = np.asarray(jax.random.normal(k2, (p, d), jnp.float64))
    return np.asarray(data.X), np.asarray(data.y), G


def scnn_gated(X, y, G, lam):
    """scnn's R-FISTA on the gates ``G (p, d)``; its ``W`` and the gates in its own order."""
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import RFISTA

    model = ConvexGatedReLU(G.T.copy())
    t0 = time.perf_counter()
    model, _ = optimize_model(model, RFISTA(model), Metrics(), X, y, regularizer=NeuronGL1(lam),
                              unitize_data=False, dtype="float64", return_convex=True)
    return np.asarray(model.parameters[0])[0], np.asarray(model.G).T, time.perf_counter() - t0


def bench_gated(n, d, p, lam, *, scnn=True, seed=0):
    X, y, G = gated_data(n, d, p, seed)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    D = jnp.asarray(X @ G.T >= 0).T  # (p, n): every gate's pattern, duplicates kept (as scnn)
    beta = n * lam
    solve = lambda tol: cr.solve_gated(Xj, yj, D, beta=beta, tol=tol, max_iters=100_000, throw=False)  # noqa: E731
    jax.block_until_ready(cr.solve_gated(Xj, yj, D, beta=beta, max_iters=1, throw=False))  # compile
    sol, t_gap = timed(lambda: solve(1e-4))
    row = dict(program="gated-squared", n=n, d=d, p=p, lam=lam, ours_gap_1e4_s=t_gap, ours_gap_1e4_objective=float(sol.value) / n,
               ours_gap=float(sol.gap), ours_status=sol.status_name, ours_iters=int(sol.iterations))
    if not scnn:
        return row
    try:
        import scnn as _  # noqa: F401
    except Exception as e:  # the peer is missing: a reported skip
        row.update(peer=f"skipped: scnn unavailable ({type(e).__name__})")
        return row
    W, Gp, t_peer = scnn_gated(X, y, G, lam)
    Dp = jnp.asarray(X @ Gp.T >= 0).T
    peer_obj = float(cr.gated_objective(Xj, yj, Dp, jnp.asarray(W), beta=beta)) / n
    row.update(peer="scnn R-FISTA", peer_s=t_peer, peer_objective=peer_obj, speedup_gap_1e4=t_peer / t_gap)
    for tol in (1e-4, 1e-5, 1e-6, 1e-7):
        s, t = (sol, t_gap) if tol == 1e-4 else timed(lambda: solve(tol))
        if float(s.value) / n <= peer_obj:
            row.update(ours_equal_tol=tol, ours_equal_s=t, ours_equal_objective=float(s.value) / n,
                       ours_equal_gap=float(s.gap), speedup_equal=t_peer / t)
            break
    print(row, flush=True)
    return row


# ----------------------------------------------------------------------------------------------
# ReLU program: ours (matrix-free) vs scnn AL on the same gates, each in a fresh subprocess
# ----------------------------------------------------------------------------------------------


def _peak_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def relu_ours(n, d, p, lam, budget_s, dtype):
    """Ours, compiled first; the iteration limit fits ``budget_s`` from the measured cost of one
    iteration (20 timed iterations after the warm-up), or is the solver's default when
    ``budget_s <= 0`` (a limit that does not depend on this machine's speed)."""
    X, y, G = gated_data(n, d, p)
    Xj, yj = jnp.asarray(X, dtype), jnp.asarray(y, dtype)
    D = jnp.asarray(X @ G.T >= 0).T
    beta = n * lam

    def solve(max_iters):
        return cr.solve_regularized(Xj, yj, D, beta=beta, method="matrix-free", tol=1e-4, max_iters=max_iters, throw=False)

    _, t_first = timed(lambda: solve(2))  # compilation and two iterations
    probe, t_probe = timed(lambda: solve(22))
    per_iter = t_probe / 22
    cap = max(22, int(budget_s / per_iter)) if budget_s > 0 else None
    sol, t = timed(lambda: solve(cap))
    return dict(ours_s=t, ours_status=sol.status_name, ours_gap=float(sol.gap), ours_residual=float(sol.residual),
                ours_objective=float(sol.value) / n, ours_iters=int(sol.iterations), ours_iter_cap=cap or "default",
                ours_s_per_iter=per_iter, ours_compile_s=t_first, ours_peak_mb=_peak_mb(), ours_dtype=str(jnp.dtype(dtype)))


def relu_scnn(n, d, p, lam, max_primal_iters):
    """scnn's ``ConvexReLU`` + ``AL`` (its defaults but ``max_primal_iters``), float64, data not
    unitized; its objective and relative cone violation scored by ours on its own gates."""
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    X, y, G = gated_data(n, d, p)
    model = ConvexReLU(G.T.copy())
    t0 = time.perf_counter()
    model, _ = optimize_model(model, AL(model, max_primal_iters=max_primal_iters), Metrics(), X, y,
                              regularizer=NeuronGL1(lam), unitize_data=False, dtype="float64", return_convex=True)
    t = time.perf_counter() - t0
    U, V = (jnp.asarray(np.asarray(a)[0]) for a in model.parameters)
    Dp = jnp.asarray(X @ np.asarray(model.G) >= 0).T
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    obj = float(cr.regularized_primal_objective(Xj, yj, Dp, U, V, beta=n * lam)) / n
    viol = float(cr.constraint_violation(Xj, yj, Dp, U, V, program="regularized-squared"))
    return dict(peer_s=t, peer_objective=obj, peer_residual=viol, peer_peak_mb=_peak_mb())


def _worker(argv):
    """``--relu-worker ours|scnn N D P LAM BUDGET|ITERS DTYPE``: one row's half, a JSON line on stdout."""
    import json

    who, n, d, p, lam, limit, dtype = argv
    if who == "ours":
        row = relu_ours(int(n), int(d), int(p), float(lam), float(limit), jnp.dtype(dtype))
    else:
        row = relu_scnn(int(n), int(d), int(p), float(lam), int(limit))
    print("RESULT " + json.dumps(row), flush=True)


def _run_worker(args, timeout_s):
    import json
    import subprocess

    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--relu-worker", *map(str, args)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"did not finish in {timeout_s:.0f} s"
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return None, f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    return json.loads(lines[-1][7:]), None


def bench_relu(n, d, p, lam, *, budget_s, peer_timeout_s, peer_iters, dtype="float64", scnn=True):
    row = dict(program="regularized-squared", n=n, d=d, p=p, lam=lam, budget_s=budget_s)
    if scnn:
        peer, why = _run_worker(["scnn", n, d, p, lam, peer_iters, "float64"], peer_timeout_s)
        row.update(peer=f"scnn AL (max_primal_iters={peer_iters})")
        row.update(peer) if peer else row.update(peer_note=why)
    ours, why = _run_worker(["ours", n, d, p, lam, budget_s, dtype], budget_s * 3 + 600)
    row.update(ours) if ours else row.update(ours_note=why)
    if ours and "peer_objective" in row and ours["ours_objective"] <= row["peer_objective"]:
        row.update(ours_equal_s=ours["ours_s"], speedup_equal=row["peer_s"] / ours["ours_s"])
    print(row, flush=True)
    return row


def relu_table(rows):
    head = ("| n | d | p | ours: time (s) [status, iterations] | ours gap / violation | ours objective | ours s/iteration | "
            "ours peak MB | scnn AL time (s) | scnn objective / violation | scnn peak MB | ours ≤ scnn objective: speed-up |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        ours = (f"{r['ours_s']:.1f} [{r['ours_status']}, {r['ours_iters']}]" if "ours_s" in r else r.get("ours_note", "—"))
        peer = f"{r['peer_s']:.1f}" if "peer_s" in r else r.get("peer_note", "not run")
        pobj = f"{r['peer_objective']:.6f} / {r['peer_residual']:.1e}" if "peer_objective" in r else "—"
        lines.append(
            f"| {r['n']} | {r['d']} | {r['p']} | {ours} | "
            f"{_fmt(r.get('ours_gap'), '.1e')} / {_fmt(r.get('ours_residual'), '.1e')} | {_fmt(r.get('ours_objective'), '.6f')} | "
            f"{_fmt(r.get('ours_s_per_iter'), '.3f')} | {_fmt(r.get('ours_peak_mb'), '.0f')} | {peer} | {pobj} | "
            f"{_fmt(r.get('peer_peak_mb'), '.0f')} | {_fmt(r.get('speedup_equal'), '.1f')} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# estimators vs optax Adam and MLPClassifier
# ----------------------------------------------------------------------------------------------


def datasets_for_estimators(quick):
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    Xb, yb = load_breast_cancer(return_X_y=True)
    Xd, yd = load_digits(return_X_y=True)
    keep = (yd == 3) | (yd == 8)
    sets = [("breast_cancer", Xb, yb), ("digits (10 classes)", Xd, yd), ("digits 3 vs 8", Xd[keep], yd[keep])]
    if quick:
        sets = [(name, X[:150], y[:150]) for name, X, y in sets[:2]]
    out = []
    for name, X, y in sets:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        sc = StandardScaler().fit(Xtr)
        out.append((name, sc.transform(Xtr), sc.transform(Xte), ytr, yte))
    return out


def adam_network(Xtr, ytr, Xte, m, *, beta, steps, seed=0):
    """A one-hidden-layer ReLU network (with biases) of width ``m`` trained by optax Adam, full
    batch, on the softmax cross-entropy (logistic loss for two classes) plus ``beta/2 ‖θ‖²``."""
    import optax

    classes = np.unique(ytr)
    c = len(classes)
    Y = jnp.asarray(np.searchsorted(classes, ytr))
    X, Xt = jnp.asarray(Xtr), jnp.asarray(Xte)
    k1, k2 = jax.random.split(jax.random.key(seed))
    d = X.shape[1]
    params = {"W1": jax.random.normal(k1, (d, m)) / np.sqrt(d), "b1": jnp.zeros(m),
              "W2": jax.random.normal(k2, (m, c)) / np.sqrt(m), "b2": jnp.zeros(c)}

    def logits(p, X):
        return jax.nn.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def loss(p):
        ce = optax.softmax_cross_entropy_with_integer_labels(logits(p, X), Y).mean()
        return ce + 0.5 * beta * (jnp.sum(p["W1"] ** 2) + jnp.sum(p["W2"] ** 2))

    opt = optax.adam(1e-2)

    @jax.jit
    def train(params):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return p

    with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with floats
        p = jax.block_until_ready(train(params))
    return classes[np.asarray(jnp.argmax(logits(p, Xt), axis=1))]


def bench_estimators(quick):
    from sklearn.neural_network import MLPClassifier

    from convexrelu.estimators import ConvexReLUClassifier

    m = 20 if quick else 100
    rows = []
    for name, Xtr, Xte, ytr, yte in datasets_for_estimators(quick):
        row = dict(data=name, n_train=len(ytr), n_test=len(yte), d=Xtr.shape[1], classes=len(np.unique(ytr)), width=m)
        # the ReLU program one-vs-rest on 10 classes is 10 interior-point solves at n = 1347: over
        # this benchmark's 10-minute budget on 2 cores, so that row has the gated model only
        for model in ("relu", "gated") if row["classes"] == 2 or quick else ("gated",):
            clf = ConvexReLUClassifier(model=model, patterns=m, loss="squared", random_state=0)
            t0 = time.perf_counter()
            clf.fit(Xtr, ytr)  # blocks: it reads the solutions' statuses
            t = time.perf_counter() - t0
            row[f"convex_{model}_acc"] = float(np.mean(clf.predict(Xte) == yte))
            row[f"convex_{model}_s"] = t
            row[f"convex_{model}_status"] = ",".join(sorted({s.status_name for s in clf.solutions_}))
        t0 = time.perf_counter()
        pred = adam_network(Xtr, ytr, Xte, m, beta=1e-3, steps=200 if quick else 2000)
        row.update(adam_acc=float(np.mean(pred == yte)), adam_s=time.perf_counter() - t0)
        t0 = time.perf_counter()
        mlp = MLPClassifier(hidden_layer_sizes=(m,), max_iter=100 if quick else 1000, random_state=0).fit(Xtr, ytr)
        row.update(mlp_acc=float(mlp.score(Xte, yte)), mlp_s=time.perf_counter() - t0)
        rows.append(row)
        print(row, flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def gated_table(rows):
    head = ("| n | d | p | ours: time to gap 1e-4 (s) | ours objective | scnn R-FISTA (s) | scnn objective | "
            "ours: time to ≤ scnn objective (s) [tol] | speed-up at equal objective |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        eq = "—" if "ours_equal_s" not in r else f"{r['ours_equal_s']:.2f} [{r['ours_equal_tol']:g}]"
        lines.append(
            f"| {r['n']} | {r['d']} | {r['p']} | {r['ours_gap_1e4_s']:.2f} | {r['ours_gap_1e4_objective']:.6f} | "
            f"{_fmt(r.get('peer_s'), '.2f')} | {_fmt(r.get('peer_objective'), '.6f')} | {eq} | "
            f"{_fmt(r.get('speedup_equal'), '.1f')}{'' if r.get('peer', '').startswith('scnn') else ' ' + r.get('peer', 'no peer')} |"
        )
    return "\n".join(lines)


def estimator_table(rows):
    head = ("| data | n train / test | d | classes | width | convex ReLU acc (s) | convex gated acc (s) | "
            "Adam acc (s) | MLPClassifier acc (s) |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        cell = lambda k: "—" if k + "_acc" not in r else f"{r[k + '_acc']:.3f} ({r[k + '_s']:.1f})"  # noqa: E731
        lines.append(
            f"| {r['data']} | {r['n_train']} / {r['n_test']} | {r['d']} | {r['classes']} | {r['width']} | "
            f"{cell('convex_relu')} | {cell('convex_gated')} | {cell('adam')} | {cell('mlp')} |"
        )
    return "\n".join(lines)


def header(argv):
    import datetime
    import os

    return (f"# Reach: the gated ReLU program vs scnn R-FISTA; the estimators vs Adam and MLPClassifier\n\n"
            f"`python benchmarks/bench_reach.py {' '.join(argv)}`, {datetime.date.today().isoformat()}, "
            f"{os.cpu_count()} CPU cores, JAX {jax.__version__}, float64. See the script's docstring for the setup.\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--relu-worker"]:
        return _worker(argv[1:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's run)")
    ap.add_argument("--sizes", default="10000,100000:100", help="n (or n:p) of the gated rows, comma-separated")
    ap.add_argument("--p", type=int, default=500, help="gates of the gated rows")
    ap.add_argument("--relu-sizes", default="1000,10000,100000", help="n of the ReLU-program rows ('' for none)")
    ap.add_argument("--relu-budget", type=float, default=300.0, help="seconds of iterations for ours per ReLU row (0: the solver's default limit)")
    ap.add_argument("--peer-timeout", type=float, default=600.0, help="wall-clock cap of scnn AL per ReLU row")
    ap.add_argument("--peer-iters", type=int, default=10_000, help="scnn AL's max_primal_iters")
    ap.add_argument("--peer-max-n", type=int, default=10_000, help="largest n at which scnn AL runs")
    ap.add_argument("--dtype", default="float64", help="ours' dtype in the ReLU rows")
    ap.add_argument("--skip-gated", action="store_true")
    ap.add_argument("--no-scnn", action="store_true")
    ap.add_argument("--skip-estimators", action="store_true")
    ap.add_argument("--out", default=str(RESULTS), help="directory for reach.md / reach.json")
    args = ap.parse_args(argv)
    name = "reach_quick" if args.quick else "reach"
    head = header(argv)
    out = {"relu": [], "gated": [], "estimators": []}

    def save():  # after every stage, so that a long run leaves its finished rows behind
        md = head + "\n## ReLU program, matrix-free (λ = 1e-2, scnn's convention)\n\n" + relu_table(out["relu"])
        md += "\n\n## Gated ReLU program (λ = 1e-2, scnn's convention)\n\n" + gated_table(out["gated"])
        md += "\n\n## Estimators (test accuracy, fit time in s)\n\n" + estimator_table(out["estimators"])
        write_results(args.out, name, md, out)

    def size(t):  # "n" or "n:p"
        n, _, p = t.partition(":")
        return int(n), 50, int(p) if p else args.p

    relu = [(200, 5, 30)] if args.quick else [(int(t), 50, args.p) for t in args.relu_sizes.split(",") if t]
    for n, d, p in relu:
        quick = dict(budget_s=0.0, peer_timeout_s=120.0, peer_iters=300)  # the solver's own limit: machine-independent
        full = dict(budget_s=args.relu_budget, peer_timeout_s=args.peer_timeout, peer_iters=args.peer_iters)
        out["relu"].append(bench_relu(n, d, p, 1e-2, **(quick if args.quick else full), dtype=args.dtype,
                                      scnn=not args.no_scnn and n <= args.peer_max_n))
        save()
    sizes = [(200, 5, 30)] if args.quick else [size(t) for t in args.sizes.split(",") if t]
    for n, d, p in [] if args.skip_gated else sizes:
        out["gated"].append(bench_gated(n, d, p, 1e-2, scnn=not args.no_scnn))
        save()
    if not args.skip_estimators:
        out["estimators"] = bench_estimators(args.quick)
        save()
    print(relu_table(out["relu"]) + "\n\n" + gated_table(out["gated"]) + "\n\n" + estimator_table(out["estimators"]))
    return out


if __name__ == "__main__":
    main()
