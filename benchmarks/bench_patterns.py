"""Benchmark: sampling activation patterns, convexrelu vs scnn (Mishkin, Sahiner & Pilanci 2022).

Both draw Gaussian gates ``g_j`` and keep the distinct patterns ``1[X g_j ≥ 0]`` on Gaussian
data ``X (n, d)``:

* ours: ``convexrelu.sample_patterns(X, num=..., key=...)`` (chunked jitted matmul + bit packing,
  host hashing; never more than one ``(chunk, n)`` block);
* scnn: ``scnn.activations.sample_gate_vectors`` + ``compute_activation_patterns`` (NumPy: the
  full ``(n, num)`` product, then ``np.unique(axis=1)``).

scnn's peak memory is about ``4 n num`` floats (the product, a contiguous copy, a flattened copy
and a sorted copy inside ``np.unique``), so when that would exceed half the available memory the
peer runs with fewer gates (recorded) and both are timed at that size; ours is also timed at the
full size. Agreement check: scnn run on *our* gates must give exactly our pattern set (scnn drops
the all-zero pattern and uses ``> 0``; ties have probability zero on Gaussian data).

Usage: ``python benchmarks/bench_patterns.py [--quick] [--n N] [--d D] [--num NUM]``.
Writes ``benchmarks/results/patterns.md`` and ``patterns.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(_HERE, "..")]  # _results (also when loaded by path), convexrelu
import convexrelu as cr  # noqa: E402
from _results import write_results  # noqa: E402

RESULTS = os.path.join(_HERE, "results")


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def _rowset(D: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in np.packbits(np.asarray(D, dtype=bool), axis=1)}


def time_ours(X, num: int, key, repeats: int) -> tuple[float, int]:
    chunk = max(1, (2**23) // X.shape[0])
    cr.sample_patterns(X, num=min(num, chunk), key=key).block_until_ready()  # compile (same chunk shape)
    best, p = np.inf, 0
    for _ in range(repeats):
        t = time.perf_counter()
        D = cr.sample_patterns(X, num=num, key=key)
        D.block_until_ready()
        best = min(best, time.perf_counter() - t)
        p = D.shape[0]
        del D
    return best, p


def time_scnn(Xn: np.ndarray, num: int, repeats: int) -> tuple[float, int]:
    from scnn.activations import compute_activation_patterns, sample_gate_vectors

    best, p = np.inf, 0
    for _ in range(repeats):
        t = time.perf_counter()
        G = sample_gate_vectors(0, Xn.shape[1], num).astype(Xn.dtype)
        D, _ = compute_activation_patterns(Xn, G)
        best = min(best, time.perf_counter() - t)
        p = D.shape[1]
        del D, G
    return best, p


def agreement(X, num: int, key) -> dict:
    """scnn on our gates gives our pattern set (minus the all-zero pattern)."""
    from scnn.activations import compute_activation_patterns

    d = X.shape[1]
    G = jax.vmap(lambda k: jax.random.normal(k, (d,), X.dtype))(jax.random.split(key, num))
    ours = _rowset(cr.sample_patterns(X, num=num, key=key))
    zero = np.zeros((1, X.shape[0]), dtype=bool)
    ours.discard(_rowset(zero).pop())
    Ds, _ = compute_activation_patterns(np.asarray(X), np.asarray(G).T)
    theirs = _rowset(Ds.T > 0)
    return {"gates": num, "ours": len(ours), "scnn": len(theirs), "identical_sets": ours == theirs}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)
    n, d, num = (500, 10, 2_000) if args.quick else (args.n, args.d, args.num)

    dtype = jnp.zeros(()).dtype  # JAX's default float; scnn gets the same dtype
    X = jax.random.normal(jax.random.key(0), (n, d), dtype=dtype)
    Xn = np.asarray(X)
    key = jax.random.key(1)
    rows = []
    result = {"n": n, "d": d, "num": num, "dtype": str(dtype), "machine": platform.platform(),
              "cpus": os.cpu_count(), "jax": jax.__version__, "rows": rows}

    t_full, p_full = time_ours(X, num, key, args.repeats)
    rows.append({"impl": "convexrelu", "gates": num, "patterns": p_full, "seconds": t_full})

    try:
        import scnn  # noqa: F401
        have_scnn = True
    except ImportError:
        have_scnn = False
        result["scnn"] = "not installed (pip install --no-deps pyscnn linalg_backends)"
    if have_scnn:
        per_gate = 4.5 * n * Xn.itemsize
        peer_num = int(min(num, 0.5 * _available_bytes() // per_gate))
        result["scnn_gates"] = peer_num
        if peer_num < 1:
            result["scnn"] = "skipped: not enough memory for one gate"
        else:
            t_s, p_s = time_scnn(Xn, peer_num, args.repeats)
            if peer_num < num:
                t_o, p_o = time_ours(X, peer_num, key, args.repeats)
                rows.append({"impl": "convexrelu", "gates": peer_num, "patterns": p_o, "seconds": t_o})
            else:
                t_o = t_full
            rows.append({"impl": "scnn", "gates": peer_num, "patterns": p_s, "seconds": t_s})
            result["ratio_ours_over_scnn"] = t_o / t_s
            result["agreement"] = agreement(X, min(num, 2_000), key)
            # a low-dimensional case where many gates share a pattern (deduplication matters)
            result["agreement_low_dim"] = agreement(X[:60, :2], 2_000, key)

    lines = [
        f"# Sampling activation patterns: n = {n}, d = {d}, Gaussian X ({dtype})",
        "",
        "| implementation | gates | distinct patterns | time (s) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['impl']} | {r['gates']} | {r['patterns']} | {r['seconds']:.3f} |" for r in rows]
    lines.append("")
    if "ratio_ours_over_scnn" in result:
        lines.append(f"time ratio convexrelu / scnn at {result['scnn_gates']} gates: "
                     f"{result['ratio_ours_over_scnn']:.3f}")
        for tag, size in (("agreement", f"n = {n}, d = {d}"), ("agreement_low_dim", "n = 60, d = 2")):
            a = result[tag]
            lines.append(f"agreement on {a['gates']} shared gates ({size}): convexrelu {a['ours']} "
                         f"nonzero patterns, scnn {a['scnn']}, identical sets: {a['identical_sets']}")
    else:
        lines.append(f"scnn: {result.get('scnn')}")
    lines.append(f"machine: {result['machine']}, {result['cpus']} CPUs, jax {result['jax']}")
    table = "\n".join(lines)
    print(table)
    write_results(args.out, "patterns_quick" if args.quick else "patterns", table, result)
    return result


if __name__ == "__main__":
    main()
