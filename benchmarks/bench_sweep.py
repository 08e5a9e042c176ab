"""Benchmark: a sweep's cells per second, batched and sharded over 1 and 2 devices, against a
Python loop over the same cells.

A cell is a dataset (``two_cones``), a loss-based gradient-descent run from a balanced
initialization and the convex max-margin program over every pattern (no KKT certificate: that
host-side step is the same per cell either way). Measured, each in a fresh process whose XLA
host platform has 1 or 2 devices (``--xla_force_host_platform_device_count``):

* ``convexrelu.sweep`` on 1 device and on 2 devices (the batch axis sharded over them), timed on
  a second sweep of the same spec in a new folder; the first one compiles, and its extra time is
  reported as the compile time (the loop's: its warm-up cell less one cell's time);
* the Python loop a user would write with the public API, one cell at a time
  (``datasets.two_cones``, ``init_network``, ``train``, ``enumerate_patterns``,
  ``solve_max_margin``), on 1 device, after one warm-up cell.

Accuracy: each cell's ``P*`` from the sweep against the loop's (relative difference), and the
statuses. Usage: ``python benchmarks/bench_sweep.py [--quick] [--out DIR]``; writes
``benchmarks/results/sweep.md`` and ``sweep.json`` (``sweep_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.join(_HERE, "..")]  # _results (also when loaded by path), convexrelu
from _results import write_results  # noqa: E402

RESULTS = os.path.join(_HERE, "results")

SIZES = {
    "quick": dict(n=6, d=2, m=4, steps=100, angles=[1.2, 2.4], seeds=4, batch=4),
    "full": dict(n=10, d=2, m=8, steps=1000, angles=[0.9, 1.5, 2.1, 2.7], seeds=128, batch=64),
}


def _spec(size: dict) -> dict:
    return {
        "data": {"generator": "two_cones", "n": size["n"], "d": size["d"], "angle": size["angles"], "seeds": size["seeds"]},
        "train": {"m": size["m"], "scale": 1e-2, "steps": size["steps"]},
        "solve": {"patterns": "enumerate", "tol": 1e-8, "certify": False},
        "sweep": {"batch": size["batch"]},
    }


def _loop_cell(cr, jax, size: dict, angle: float, seed: int):
    """One cell the way a Python loop does it: the public functions, one call each."""
    k_data, k_init, _ = jax.random.split(jax.random.key(seed), 3)
    X, y = cr.datasets.two_cones(size["n"], size["d"], angle=angle, key=k_data)
    net = cr.init_network(size["d"], size["m"], scale=1e-2, key=k_init)
    res = cr.train(net, X, y, steps=size["steps"], schedule="loss-based", lr=1e-3, max_alpha=1e-3)
    sol = cr.solve_max_margin(X, y, cr.enumerate_patterns(X), tol=1e-8, throw=False)
    margin = float(cr.normalized_margin(res.net, X, y))
    return float(sol.value), cr.status_name(sol.status), margin


def child(size_name: str, loop: bool, work: str) -> dict:
    """Runs inside a process whose device count is set by XLA_FLAGS: the sweep timed (after a
    compiling sweep), and with ``loop`` the Python loop; returns the measurements."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import convexrelu as cr

    size = SIZES[size_name]
    spec = cr.load_spec(_spec(size))
    t = time.perf_counter()
    cr.sweep(spec, out=os.path.join(work, "warm"), progress=False)
    first = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    rows = cr.sweep(spec, out=os.path.join(work, "timed"), progress=False).to_pylist()
    seconds = time.perf_counter() - t
    out = dict(devices=len(jax.local_devices()), cells=len(rows), seconds=seconds, cells_per_s=len(rows) / seconds)
    out["cores_busy"] = (time.process_time() - cpu) / seconds  # CPU seconds (all threads) per second
    out["intra_op_pool"] = os.environ.get("NPROC", str(os.cpu_count()))
    out["compile_s"] = max(first - seconds, 0.0)  # the first sweep's extra time: compilation
    out["sweep"] = {f"{r['angle']}/{r['seed']}": (r["p_star"], r["status"], r["margin"]) for r in rows}
    if loop:
        t = time.perf_counter()
        _loop_cell(cr, jax, size, size["angles"][0], 0)  # warm-up: compiles train and the solver
        warm = time.perf_counter() - t
        t, cpu = time.perf_counter(), time.process_time()
        cells = {f"{a}/{s}": _loop_cell(cr, jax, size, a, s) for a in size["angles"] for s in range(size["seeds"])}
        loop_s = time.perf_counter() - t
        out["loop"] = dict(cells=len(cells), seconds=loop_s, cells_per_s=len(cells) / loop_s, results=cells)
        out["loop"]["cores_busy"] = (time.process_time() - cpu) / loop_s
        out["loop"]["compile_s"] = max(warm - loop_s / len(cells), 0.0)
    return out


def _run_child(size_name: str, devices: int, loop: bool) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    with tempfile.TemporaryDirectory() as work:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", size_name, "--work", work] + (["--loop"] if loop else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child ({devices} devices) failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _accuracy(sweep: dict, loop: dict) -> dict:
    rel = [abs(sweep[k][0] - loop[k][0]) / abs(loop[k][0]) for k in loop]
    return dict(
        p_star_max_rel_diff=float(np.max(rel)),
        statuses_equal=all(sweep[k][1] == loop[k][1] for k in loop),
        optimal=sum(v[1] == "optimal" for v in sweep.values()),
    )


def _table(size: dict, rows: list[dict], loop: dict, acc: dict) -> str:
    base1 = rows[0]["cells_per_s"]
    head = (
        "| how | devices | cells | seconds | cells/s | vs loop | vs 1 device | cores busy | compile s |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| Python loop over cells | 1 | {loop['cells']} | {loop['seconds']:.2f} | {loop['cells_per_s']:.3g} | 1.0 | | "
        f"{loop['cores_busy']:.2f} | {loop['compile_s']:.1f} |"
    ]
    for r in rows:
        lines.append(
            f"| convexrelu.sweep | {r['devices']} | {r['cells']} | {r['seconds']:.2f} | {r['cells_per_s']:.3g} | "
            f"{r['cells_per_s'] / loop['cells_per_s']:.1f} | {r['cells_per_s'] / base1:.2f} | {r['cores_busy']:.2f} | "
            f"{r['compile_s']:.1f} |"
        )
    sizes = f"n = {size['n']}, d = {size['d']}, m = {size['m']}, {size['steps']} steps, batch {size['batch']}"
    ceiling = os.cpu_count() / rows[0]["cores_busy"]
    notes = (
        f"\n\nCells: {sizes}, every pattern; P* of the sweep against the loop: max relative difference "
        f"{acc['p_star_max_rel_diff']:.1e}, statuses equal: {acc['statuses_equal']}, optimal: {acc['optimal']}/{loop['cells']}. "
        f"Cores busy: CPU seconds of all the process's threads per second of the timed run. One device already "
        f"keeps {rows[0]['cores_busy']:.2f} of the {os.cpu_count()} cores busy, so a second device can add at most "
        f"{ceiling:.2f}x. The two-device run's XLA intra-op pool has {rows[-1]['intra_op_pool']} threads "
        "(NPROC, set by convexrelu: see convexrelu/_hostpool.py)."
    )
    return head + "\n".join(lines) + notes


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.loop, args.work)))
        return []
    name = "quick" if args.quick else "full"
    one = _run_child(name, 1, loop=True)
    two = _run_child(name, 2, loop=False)
    loop = one.pop("loop")
    acc = _accuracy(one["sweep"], loop["results"])
    rows = [{k: v for k, v in r.items() if k != "sweep"} for r in (one, two)]
    for r in rows:
        r["vs_loop"] = r["cells_per_s"] / loop["cells_per_s"]
        r["vs_one_device"] = r["cells_per_s"] / rows[0]["cells_per_s"]
    table = _table(SIZES[name], rows, loop, acc)
    print(table)
    import jax

    result = dict(
        size=SIZES[name], rows=rows, loop={k: v for k, v in loop.items() if k != "results"}, accuracy=acc,
        machine=dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count(), load=os.getloadavg()),
        jax=jax.__version__,
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    title = (
        f"Sweep throughput (float64, {os.cpu_count()} CPUs, jax {jax.__version__}, XLA host-platform devices; "
        f"load average at the end {load})"
    )
    write_results(args.out, "sweep_quick" if args.quick else "sweep", f"{title}\n\n{table}", result)
    return rows + [dict(loop={k: v for k, v in loop.items() if k != "results"}, accuracy=acc)]


if __name__ == "__main__":
    main()
