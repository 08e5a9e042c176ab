"""A forward plus backward pass through the regularized (squared-loss) program: ours vs cvxpylayers.

Ours: ``jax.value_and_grad`` of ``J(X) = ⟨c, f⟩``, ``f = Σ_j D_j X(u_j - v_j)`` the solution's fit
(unique, unlike ``U, V`` once ``p`` exceeds what the data pin down), through ``cr.solve_regularized``
(interior-point solve, then the implicit KKT adjoint of ``convexrelu._implicit``), jitted, timed
warm (compilation reported apart); the forward solve alone is timed too, so the backward pass's
cost relative to the forward one is reported. cvxpylayers: the same ``J`` through
``convexrelu.bridge.regularized_layer`` (diffcp with Clarabel, eager: cvxpylayers refuses
``jit``), its one-time build reported apart. Both at the same data and patterns, with the
relative difference of the two gradients (``max |g_ours - g_cvx| / max |g_cvx|``).

Data: a random ReLU teacher with noise, patterns from ``cr.sample_patterns`` (distinct). Then
ours alone at larger ``p`` (cvxpylayers' parametric build grows like ``(pnd)²``).

Usage: python benchmarks/bench_grad.py [--quick] [--sizes "n,d,p;..."] [--large "n,d,p;..."]
[--no-cvxpylayers] [--out DIR]
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
BETA = 0.1
SIZES = "40,4,25;40,4,100;40,4,500"
LARGE = "200,10,2000;300,10,4000"
QUICK_SIZES, QUICK_LARGE = "10,2,6", "30,3,40"
NOTE = 'Where `grad_rel_diff` exceeds 1e-3 (p = 99 here; cvxpylayers could not build p = 454) the solution is degenerate (`convexrelu.active_set(...).degenerate`: more active blocks than the data pin down, weakly active cone rows), so the derivative is not unique and each solver returns a different element of the generalized Jacobian (central differences disagree with both at the 1e-2 level).'


def problem(n, d, p, seed=0):
    """Teacher regression data, ``p`` distinct sampled patterns, the objective's weights."""
    k1, k2, k3, k4, k5 = jax.random.split(jax.random.PRNGKey(seed), 5)
    X = jax.random.normal(k1, (n, d))
    W = jax.random.normal(k2, (d, 3))
    y = jax.nn.relu(X @ W) @ jnp.array([1.0, -1.0, 0.5]) + 0.1 * jax.random.normal(k3, (n,))
    D = jnp.asarray(cr.sample_patterns(X, num=p, key=k4))
    cU, cV = jax.random.normal(k5, (2, n))  # cU weighs the fit; cV unused (kept for the signatures)
    return X, y, D, cU, cV


def timed(fn, repeat=3):
    """Best of ``repeat`` wall times of ``fn()`` (results blocked on), and its last output."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return out, best


def time_ours(X, y, D, cU, cV):
    """Compile time, forward time, forward+backward time and the gradient of ours."""

    def J(X):
        sol = cr.solve_regularized(X, y, D, beta=BETA)
        return jnp.sum(cU * cr.convex_fit(X, D, sol.U, sol.V))

    fwd = jax.jit(J)
    fb = jax.jit(jax.value_and_grad(J))
    t = time.perf_counter()
    jax.block_until_ready(fb(X))
    jax.block_until_ready(fwd(X))
    compile_s = time.perf_counter() - t
    _, fwd_s = timed(lambda: fwd(X))
    (_, g), fb_s = timed(lambda: fb(X))
    return {"compile_s": compile_s, "forward_s": fwd_s, "fwd_bwd_s": fb_s, "backward_over_forward": (fb_s - fwd_s) / fwd_s}, g


def time_cvxpylayers(X, y, D, cU, cV):
    """Build time, forward+backward time (eager) and the gradient through the cvxpylayers layer."""
    from convexrelu import bridge

    n, d = X.shape
    t = time.perf_counter()
    layer = bridge.regularized_layer(n=n, d=d, p=int(D.shape[0]), loss="squared")
    build_s = time.perf_counter() - t

    def J(X):
        U, V = layer(X, y, D, jnp.asarray(BETA))
        return jnp.sum(cU * cr.convex_fit(X, D, U, V))

    (_, g), fb_s = timed(lambda: jax.value_and_grad(J)(X), repeat=1)
    return {"build_s": build_s, "cvx_fwd_bwd_s": fb_s}, g


def _sizes(text):
    return [tuple(int(v) for v in s.split(",")) for s in text.split(";") if s.strip()]


def run(sizes, large, cvxpylayers=True):
    rows = []
    for n, d, p in sizes:
        X, y, D, cU, cV = problem(n, d, p)
        row = {"n": n, "d": d, "p": int(D.shape[0])}
        ours, g = time_ours(X, y, D, cU, cV)
        row.update(ours)
        if cvxpylayers:
            try:
                theirs, g_cvx = time_cvxpylayers(X, y, D, cU, cV)
            except MemoryError as e:  # cvxpy's parametric build grows like (pnd)²
                row["cvx_fwd_bwd_s"] = f"build out of memory ({str(e)[:40]})"
            else:
                row.update(theirs)
                row["speedup"] = row["cvx_fwd_bwd_s"] / row["fwd_bwd_s"]
                row["grad_rel_diff"] = float(jnp.max(jnp.abs(g - g_cvx)) / jnp.max(jnp.abs(g_cvx)))
        rows.append(row)
        print(row, flush=True)
    big = []
    for n, d, p in large:
        X, y, D, cU, cV = problem(n, d, p)
        row = {"n": n, "d": d, "p": int(D.shape[0])}
        row.update(time_ours(X, y, D, cU, cV)[0])
        big.append(row)
        print(row, flush=True)
    return rows, big


def _fmt(v):
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def markdown(rows, big):
    cols = ["n", "d", "p", "forward_s", "fwd_bwd_s", "backward_over_forward", "compile_s", "cvx_fwd_bwd_s", "build_s", "speedup", "grad_rel_diff"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = [
        "# Forward + backward: ours (implicit KKT adjoint) vs cvxpylayers (diffcp, Clarabel)",
        "",
        f"Regularized squared loss, β = {BETA}, float64, CPU; times in seconds (ours warm, best of 3; cvxpylayers eager, build apart).",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    lines += ["", NOTE]
    if big:
        lines += ["", "## Ours alone, larger p", "", "| n | d | p | forward_s | fwd_bwd_s | backward_over_forward | compile_s |", "|---|---|---|---|---|---|---|"]
        lines += [
            "| " + " | ".join(_fmt(r[c]) for c in ("n", "d", "p", "forward_s", "fwd_bwd_s", "backward_over_forward", "compile_s")) + " |"
            for r in big
        ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's run)")
    ap.add_argument("--sizes", default=None, help='"n,d,p;..." compared with cvxpylayers')
    ap.add_argument("--large", default=None, help='"n,d,p;..." ours alone')
    ap.add_argument("--no-cvxpylayers", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    sizes = _sizes(args.sizes or (QUICK_SIZES if args.quick else SIZES))
    large = _sizes(args.large if args.large is not None else (QUICK_LARGE if args.quick else LARGE))
    use_cvx = not args.no_cvxpylayers
    if use_cvx:
        try:
            import cvxpylayers  # noqa: F401
        except ImportError:
            use_cvx = False
    rows, big = run(sizes, large, use_cvx)
    name = "grad_quick" if args.quick else "grad"
    md = markdown(rows, big)
    write_results(args.out, name, md, {"beta": BETA, "rows": rows, "large": big, "cvxpylayers": use_cvx})
    print(md)
    return {"rows": rows, "large": big}


if __name__ == "__main__":
    main()
