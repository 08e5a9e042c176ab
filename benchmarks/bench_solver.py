"""Native interior-point solver vs Clarabel (through cvxpy) and vs scnn's augmented-Lagrangian solver.

Max-margin program on teacher data (``convexrelu.datasets.teacher``; the teacher's own patterns
are added to patterns drawn with ``convexrelu.sample_patterns``, so the program is feasible):
ours (jit compile + solve on the first call; the first call of a process whose persistent
compilation cache is warm; solve only on a repeated call) vs cvxpy + Clarabel at the same
tolerance (``TOL``: Clarabel's ``tol_gap_abs``, ``tol_gap_rel`` and ``tol_feas``; its defaults are
1e-8), end to end (cvxpy compile included) and solve only (``problem.solver_stats.solve_time``).
Regularized squared loss on scnn's synthetic setup and on breast cancer: ours vs scnn's
``ConvexReLU`` + ``AL`` on the SAME patterns (scnn's gates); both objectives are evaluated
with ``convexrelu._programs`` in scnn's convention ``1/(2n) ‖f - y‖² + λ Σ ‖·‖`` (ours solves
the equivalent sum-form program with ``β = n λ``).

scnn computes its patterns with ``X g > 0`` (ours ``≥ 0``: identical on continuous data) and
returns ``U, V`` as ``(c, p, d)``; its AL solver enforces the cone constraints only approximately,
so its own cone violation (``peer_residual``, :func:`convexrelu._programs.constraint_violation`)
is reported next to its objective.

Usage: python benchmarks/bench_solver.py [--quick] [--sizes "n,d,p;..."] [--skip-clarabel-above N]
[--no-scnn | --scnn-data synthetic,breast_cancer] [--out DIR] (``N``: skip Clarabel when ``n · p > N``).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import convexrelu as cr  # noqa: E402
from convexrelu import _programs as prog  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # _results, also when loaded by path
from _results import write_results  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"
TOL = 1e-6  # both solvers' stopping tolerance on the max-margin rows


def teacher(n, d, p, seed=0):
    """Teacher data; its own patterns plus ``p`` sampled ones (distinct), so the program is feasible."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    data = cr.datasets.teacher(n, d, key=k1)
    Ds = cr.sample_patterns(data.X, num=p, key=k2)
    D = cr.merge_patterns(data.patterns, Ds)
    return data.X, data.y, jnp.asarray(D)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    jax.block_until_ready(out) if not isinstance(out, (float, tuple)) else None
    return out, time.perf_counter() - t


def time_ours(run, repeat=True):
    """Ours three ways: the first call in a process with an empty compilation cache (XLA compile
    + solve), the first call of a process whose persistent cache is warm (``jax.clear_caches()``
    drops the in-memory executables, so the call loads the compiled solver from disk, as a new
    process would after ``convexrelu.enable_compilation_cache()``), and a repeated call."""
    sol, cold = timed(run)
    jax.clear_caches()
    sol, cached = timed(run)
    sol, warm = timed(run) if repeat else (sol, float("nan"))
    return sol, cold, cached, warm


def clarabel_max_margin(X, y, D):
    import cvxpy as cp

    Xn, Dn = np.asarray(X), np.asarray(D, dtype=float)
    p, d = Dn.shape[0], Xn.shape[1]
    t0 = time.perf_counter()
    U, V = cp.Variable((p, d)), cp.Variable((p, d))
    S = 2 * Dn.T - 1
    fit = cp.sum(cp.multiply(Dn.T, Xn @ (U - V).T), axis=1)
    cons = [cp.multiply(np.asarray(y), fit) >= 1, cp.multiply(S, Xn @ U.T) >= 0, cp.multiply(S, Xn @ V.T) >= 0]
    pr = cp.Problem(cp.Minimize(cp.sum(cp.norm(U, 2, axis=1)) + cp.sum(cp.norm(V, 2, axis=1))), cons)
    pr.solve(solver=cp.CLARABEL, tol_gap_abs=TOL, tol_gap_rel=TOL, tol_feas=TOL)
    total = time.perf_counter() - t0
    solve = pr.solver_stats.solve_time or float("nan")
    return pr.value, U.value, V.value, total, solve


def bench_max_margin(sizes, skip_above):
    rows = []
    for n, d, p in sizes:
        X, y, D = teacher(n, d, p)
        run = lambda: cr.solve_max_margin(X, y, D, tol=TOL)  # noqa: E731
        skip = skip_above is not None and n * int(D.shape[0]) > skip_above
        sol, t_first, t_cached, t_ours = time_ours(run, repeat=not skip)  # no peer: no third call
        row = dict(program="max-margin", n=n, d=d, p=int(D.shape[0]), ours_s=t_ours, ours_first_call_s=t_first,
                   ours_cached_first_call_s=t_cached,
                   ours_value=float(sol.value), ours_gap=float(sol.gap), ours_residual=float(sol.residual),
                   ours_iters=int(sol.iterations))
        if skip:
            row.update(peer="clarabel (skipped)")
        else:
            val, U, V, total, solve = clarabel_max_margin(X, y, D)
            viol = float(prog.constraint_violation(X, y, D, jnp.asarray(U), jnp.asarray(V)))
            row.update(peer="clarabel", peer_s=total, peer_solve_s=solve, peer_value=val, peer_residual=viol,
                       rel_diff=(float(sol.value) - val) / val, speedup=total / t_ours,
                       speedup_incl_compile=total / t_first, speedup_cached=total / t_cached,
                       speedup_solve_only=solve / t_ours)
        rows.append(row)
        print(row, flush=True)
    return rows


def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return X, np.where(y > 0, 1.0, -1.0)


def synthetic(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    return X, X @ w + 0.1 * rng.standard_normal(n)


def bench_scnn(name, X, y, lam, gates):
    """Same patterns (scnn's gates), scnn's objective convention ``1/(2n)‖f-y‖² + λΣ‖·‖``."""
    n = X.shape[0]
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    D = jnp.asarray((X @ gates).T >= 0)
    beta = n * lam
    run = lambda: cr.solve_regularized(Xj, yj, D, beta=beta, loss="squared", throw=False)  # noqa: E731
    sol, t_first, t_cached, t_ours = time_ours(run)
    ours_obj = float(sol.value) / n
    row = dict(program="regularized-squared", data=name, n=n, d=X.shape[1], p=int(D.shape[0]), lam=lam,
               ours_s=t_ours, ours_first_call_s=t_first, ours_cached_first_call_s=t_cached, ours_objective=ours_obj, ours_gap=float(sol.gap),
               ours_residual=float(sol.residual), ours_status=sol.status_name, ours_iters=int(sol.iterations))
    try:
        from scnn.metrics import Metrics
        from scnn.models import ConvexReLU
        from scnn.optimize import optimize_model
        from scnn.regularizers import NeuronGL1
        from scnn.solvers import AL
    except Exception as e:  # peer missing: skip gracefully
        row.update(peer=f"scnn unavailable ({type(e).__name__})")
        return row
    model = ConvexReLU(np.asarray(gates))
    t0 = time.perf_counter()
    model, _ = optimize_model(model, AL(model), Metrics(), X, y, regularizer=NeuronGL1(lam),
                              unitize_data=False, dtype="float64", return_convex=True)
    t_peer = time.perf_counter() - t0
    # scnn returns its gates reordered: its U[j], V[j] belong to the pattern of its G[:, j]
    G = np.asarray(model.G)
    Dp = jnp.asarray((X @ G).T >= 0)
    assert np.array_equal(np.unique(np.asarray(Dp), axis=0), np.unique(np.asarray(D), axis=0))
    U, V = (jnp.asarray(np.asarray(a)[0]) for a in model.parameters[:2])
    peer_obj = float(prog.regularized_primal_objective(Xj, yj, Dp, U, V, beta=beta, loss="squared")) / n
    # scnn's blocks as the ReLU network they define (neurons relu(X u_j), -relu(X v_j), balanced:
    # ½‖θ‖² = Σ‖u_j‖ + ‖v_j‖), a point of the non-convex problem whatever the cone violation
    net = cr.balance(cr.Network(jnp.concatenate([U, V]).T, jnp.concatenate([jnp.ones(len(U)), -jnp.ones(len(V))])))
    net_obj = cr.regularized_objective(net, Xj, yj, beta=beta, loss="squared") / n
    row.update(peer="scnn AL", peer_s=t_peer, peer_objective=peer_obj, peer_network_objective=float(net_obj),
               peer_residual=float(prog.constraint_violation(Xj, yj, Dp, U, V, program="regularized-squared")),
               rel_diff=(ours_obj - peer_obj) / abs(peer_obj), speedup=t_peer / t_ours,
               speedup_incl_compile=t_peer / t_first, speedup_cached=t_peer / t_cached)
    # the loosest of our tolerances that still reaches scnn's objective (compiled: same program)
    for tol in (1e-3, 1e-4, 1e-5):
        loose, t_loose = timed(lambda: cr.solve_regularized(Xj, yj, D, beta=beta, loss="squared", tol=tol, throw=False))
        if float(loose.value) / n <= peer_obj:
            row.update(ours_loose_tol=tol, ours_loose_s=t_loose, ours_loose_objective=float(loose.value) / n,
                       ours_loose_residual=float(loose.residual), speedup_loose=t_peer / t_loose)
            break
    print(row, flush=True)
    return row


HEADER = """# Native interior-point solver vs Clarabel (max-margin) and vs scnn's AL (regularized squared loss), float64

`python benchmarks/bench_solver.py {args}`, {date}, {cpus} CPU cores, JAX {jax}, cvxpy {cvxpy}.
Max-margin rows: teacher data plus the teacher's patterns; both solvers at tolerance 1e-6 (Clarabel's
`tol_gap_abs`, `tol_gap_rel`, `tol_feas`; its defaults are 1e-8). Clarabel is skipped where
`n · p` exceeds `--skip-clarabel-above`.

- `ours_first_call_s`: first call in a process with an empty compilation cache (XLA compile + solve).
  `ours_cached_first_call_s`: first call of a process whose persistent compilation cache is warm
  (`convexrelu.enable_compilation_cache()`, on by default in the CLI). `ours_s`: a repeated call.
- `peer_s`: cvxpy + Clarabel end to end (cvxpy's compile included), or scnn's `optimize_model` with
  `AL`; `peer_solve_s`: Clarabel's own solve time.
- `speedup_incl_compile = peer_s / ours_first_call_s`, `speedup_cached = peer_s /
  ours_cached_first_call_s`, `speedup = peer_s / ours_s`, `speedup_solve_only = peer_solve_s / ours_s`.
- scnn rows: scnn's convention `1/(2n)‖f − y‖² + λ Σ‖·‖` on scnn's 500 gates (scnn reorders them; its
  blocks are scored on the pattern of its own `G[:, j]`). `peer_objective` is scnn's convex objective,
  whose cone constraints it leaves violated (`peer_residual`, relative); ours is feasible and
  certified by its duality gap, so no feasible point of the program goes below `ours_objective`.
  `peer_network_objective`: scnn's blocks as the ReLU network they define, a point of the non-convex
  problem (its neurons may take patterns outside the given ones, so it can go below the program's
  optimum). `ours_loose_*`: the loosest of our tolerances 1e-3, 1e-4, 1e-5 whose objective is at or
  below scnn's.
"""


def header(argv):
    import datetime
    import importlib.metadata
    import os

    try:
        cvxpy = importlib.metadata.version("cvxpy")
    except importlib.metadata.PackageNotFoundError:
        cvxpy = "not installed"
    return HEADER.format(args=" ".join(argv), date=datetime.date.today().isoformat(), cpus=os.cpu_count(),
                         jax=jax.__version__, cvxpy=cvxpy)


def table(rows):
    keys = ["program", "data", "n", "d", "p", "ours_first_call_s", "ours_cached_first_call_s", "ours_s", "ours_iters",
            "peer", "peer_s", "peer_solve_s", "speedup_incl_compile", "speedup_cached", "speedup", "speedup_solve_only", "ours_value", "peer_value",
            "ours_objective", "peer_objective", "peer_network_objective", "rel_diff", "ours_loose_tol", "ours_loose_s", "ours_loose_objective",
            "speedup_loose", "ours_gap", "ours_residual", "peer_residual"]
    keys = [k for k in keys if any(k in r for r in rows)]
    def fmt(k, v):  # objectives to 7 digits: their differences are what the columns compare
        digits = 7 if k.endswith(("objective", "value")) else 4
        return f"{v:.{digits}g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(k, r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-clarabel-above", type=int, default=None, metavar="N",
                    help="skip Clarabel when n * p > N")
    ap.add_argument("--no-scnn", action="store_true")
    ap.add_argument("--scnn-data", default="synthetic,breast_cancer",
                    help="the datasets of the scnn comparison, comma-separated")
    ap.add_argument("--out", default=str(RESULTS), help="directory for the .md/.json tables")
    ap.add_argument("--sizes", default="100,8,300;200,10,1000;1000,20,2000",
                    help="max-margin sizes 'n,d,p;n,d,p;...'")
    args = ap.parse_args(argv)
    # a fresh cache directory: the first call compiles, the "cached" call then loads from it
    cr.enable_compilation_cache(tempfile.mkdtemp(prefix="bench-solver-xla-"))
    name = "solver_quick" if args.quick else "solver"
    rows = []

    head = header(sys.argv[1:] if argv is None else argv)

    def save(new):  # after every stage, so that a long run leaves its finished rows behind
        rows.extend(new)
        write_results(args.out, name, head + "\n" + table(rows), rows)

    if args.quick:
        save(bench_max_margin([(30, 3, 40)], None))
        X, y = synthetic(40, 4)
        if not args.no_scnn:
            save([bench_scnn("synthetic-quick", X, y, 0.01, np.random.default_rng(0).standard_normal((4, 20)))])
    else:
        sizes = [tuple(int(v) for v in t.split(",")) for t in args.sizes.split(";") if t]
        save(bench_max_margin(sizes, args.skip_clarabel_above))
        data = [] if args.no_scnn else args.scnn_data.split(",")
        if "synthetic" in data:
            X, y = synthetic(1000, 50)
            save([bench_scnn("synthetic", X, y, 0.01, np.random.default_rng(1).standard_normal((50, 500)))])
        if "breast_cancer" in data:
            X, y = breast_cancer()
            save([bench_scnn("breast_cancer", X, y, 1e-3, np.random.default_rng(2).standard_normal((X.shape[1], 500)))])
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
