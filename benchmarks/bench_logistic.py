"""The regularized logistic program: the interior point (Newton steps on the loss) against ADMM and
Clarabel (exponential cones, through cvxpy), from β_max down to 1e-4 β_max.

Teacher data (``convexrelu.datasets.teacher``; the teacher's own patterns plus sampled ones, so
the data are separable on the patterns and small β approaches a hard margin). For each β: ours
with ``method="ipm"`` (the default) and ``method="admm"`` (capped at ``--admm-iters``), each its
iterations, time (a repeated call, compiled) and certified relative gap (``cr.optimality``);
Clarabel's status, time and objective, with its relative difference to ours when it reports one.

Usage: python benchmarks/bench_logistic.py [--quick] [--size n,d,p] [--admm-iters N] [--out DIR]
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

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _results import write_results  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"
TOL = 1e-6


def teacher(n, d, p, seed=0):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    data = cr.datasets.teacher(n, d, key=k1)
    return data.X, data.y, cr.merge_patterns(data.patterns, cr.sample_patterns(data.X, num=p, key=k2))


def beta_max(X, y, D):
    """``max_j max ‖Π_{K_j}(±Xᵀ D_j g)‖``, ``g = -∇ℓ(0) = y/2`` (DESIGN.md)."""
    g = 0.5 * y
    proj = jax.vmap(lambda Dj, s: cr.cone_projection(X, Dj, s * (X.T @ (Dj.astype(X.dtype) * g))), in_axes=(0, None))
    return max(float(jnp.max(jnp.linalg.norm(proj(D, s), axis=1))) for s in (1.0, -1.0))


def ours(X, y, D, beta, method, max_iters=None):
    def run():
        sol = cr.solve_regularized(X, y, D, beta=beta, loss="logistic", tol=TOL, method=method, max_iters=max_iters,
                                   throw=False)
        return jax.block_until_ready(sol)

    run()  # compile
    t0 = time.perf_counter()
    sol = run()
    return sol, time.perf_counter() - t0


def clarabel(X, y, D, beta):
    import cvxpy as cp

    Xn, Dn, yn = np.asarray(X), np.asarray(D, dtype=float), np.asarray(y)
    p, d = Dn.shape[0], Xn.shape[1]
    U, V = cp.Variable((p, d)), cp.Variable((p, d))
    S = 2 * Dn.T - 1
    fit = cp.sum(cp.multiply(Dn.T, Xn @ (U - V).T), axis=1)
    obj = cp.sum(cp.logistic(-cp.multiply(yn, fit))) + beta * (cp.sum(cp.norm(U, 2, axis=1)) + cp.sum(cp.norm(V, 2, axis=1)))
    pr = cp.Problem(cp.Minimize(obj), [cp.multiply(S, Xn @ U.T) >= 0, cp.multiply(S, Xn @ V.T) >= 0])
    t0 = time.perf_counter()
    try:
        pr.solve(solver=cp.CLARABEL, tol_gap_abs=TOL, tol_gap_rel=TOL, tol_feas=TOL)
        status = pr.status
    except cp.error.SolverError as e:
        status = f"solver error ({str(e)[:40]})"
    return status, pr.value, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny size and two β (for the test suite)")
    ap.add_argument("--size", default="100,5,250", help="n,d,p of the teacher problem (default: %(default)s)")
    ap.add_argument("--admm-iters", type=int, default=50_000, help="ADMM's iteration cap (default: %(default)s)")
    ap.add_argument("--out", default=str(RESULTS), help="directory for logistic.md/.json (default: %(default)s)")
    args = ap.parse_args(argv)
    n, d, p = (20, 3, 40) if args.quick else map(int, args.size.split(","))
    fractions = (0.5, 1e-2) if args.quick else (0.5, 1e-1, 1e-2, 1e-3, 1e-4)
    X, y, D = teacher(n, d, p)
    bmax = beta_max(X, y, D)
    rows = []
    for frac in fractions:
        beta = frac * bmax
        row = dict(n=n, d=d, p=int(D.shape[0]), beta=beta, beta_fraction=frac)
        for method in ("ipm", "admm"):
            sol, t = ours(X, y, D, beta, method, None if method == "ipm" else args.admm_iters)
            row.update({f"{method}_iters": int(sol.iterations), f"{method}_s": t, f"{method}_gap": float(sol.gap),
                        f"{method}_status": sol.status_name, f"{method}_value": float(sol.value)})
        status, value, t = clarabel(X, y, D, beta)
        row.update(clarabel_status=status, clarabel_s=t, clarabel_value=value,
                   clarabel_rel_diff=None if value is None else (value - row["ipm_value"]) / max(1.0, abs(row["ipm_value"])))
        rows.append(row)
        print(row, flush=True)
    lines = [
        f"Regularized logistic program, teacher data (n, d, p) = ({n}, {d}, {int(D.shape[0])}), float64, tol {TOL:g}; "
        f"β_max = {bmax:.6g}. Times of a repeated (compiled) call; ADMM capped at {args.admm_iters} iterations.",
        "",
        "| β / β_max | IPM iters | IPM s | IPM gap | ADMM iters | ADMM s | ADMM status (gap) | Clarabel | Clarabel s | Clarabel − ours (rel.) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        diff = "—" if r["clarabel_rel_diff"] is None else f"{r['clarabel_rel_diff']:.1e}"
        lines.append(
            f"| {r['beta_fraction']:g} | {r['ipm_iters']} | {r['ipm_s']:.2f} | {r['ipm_gap']:.1e} | {r['admm_iters']} | "
            f"{r['admm_s']:.2f} | {r['admm_status']} ({r['admm_gap']:.1e}) | {r['clarabel_status']} | {r['clarabel_s']:.2f} | {diff} |"
        )
    write_results(args.out, "logistic_quick" if args.quick else "logistic", "\n".join(lines), rows)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
