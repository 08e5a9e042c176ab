"""Benchmark: jitted gradient descent, one run / many runs, against the same loop in PyTorch.

Plain gradient descent ``θ ← θ - lr ∇𝓛`` on the summed logistic loss of ``relu(X W1) w2``
(orthogonally separable data, balanced init of scale 0.1), measured as trajectory-steps per
second (runs × steps / wall time) for

* ``convexrelu.train``: one run, the whole loop one jitted ``lax.scan``;
* ``convexrelu.train_many``: ``r`` runs fused into one wide network (groups kept in cache);
* ``jax.vmap(convexrelu.train)``: the naive batching, for reference;
* PyTorch (CPU): the idiomatic Python loop, ``loss.backward()`` and an in-place update.

Accuracy: PyTorch starts from the same network with the same step, so its final loss must
agree with ours (reported as the relative difference), and run 0 of the batch must equal the
single run.

Usage: ``python benchmarks/bench_train.py [--quick] [--out DIR]``. Writes
``benchmarks/results/train.md`` and ``train.json`` (``train_quick.*`` with ``--quick``).
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


def _best_interleaved(fns, repeats: int) -> list[float]:
    """Best wall time of each function, measured round-robin so that load changes hit all alike."""
    for fn in fns:
        jax.block_until_ready(fn())  # warm up (compile)
    best = [np.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            jax.block_until_ready(fn())
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def _torch_loop(net, X, y, *, lr: float, steps: int):
    import torch

    Xt = torch.tensor(np.asarray(X))
    yt = torch.tensor(np.asarray(y))
    W1 = torch.tensor(np.asarray(net.W1), requires_grad=True)
    w2 = torch.tensor(np.asarray(net.w2), requires_grad=True)
    for _ in range(steps):
        loss = torch.nn.functional.softplus(-yt * (torch.relu(Xt @ W1) @ w2)).sum()
        loss.backward()
        with torch.no_grad():
            W1 -= lr * W1.grad
            w2 -= lr * w2.grad
        W1.grad = None
        w2.grad = None
    with torch.no_grad():
        return float(torch.nn.functional.softplus(-yt * (torch.relu(Xt @ W1) @ w2)).sum())


def bench_size(n: int, d: int, m: int, *, runs: int, steps: int, torch_steps: int, repeats: int, key) -> dict:
    k1, k2, k3 = jax.random.split(key, 3)
    X, y = cr.datasets.orthogonally_separable(n, d, key=k1)
    lr = 0.5 / n
    net = cr.init_network(d, m, scale=0.1, key=k2)
    nets = jax.vmap(lambda k: cr.init_network(d, m, scale=0.1, key=k))(jax.random.split(k3, runs))
    kw = dict(steps=steps, lr=lr, record_every=steps)
    row = dict(n=n, d=d, m=m, runs=runs, steps=steps, lr=lr)

    vm = jax.jit(jax.vmap(lambda nn: cr.train(nn, X, y, **kw).net))
    ts = _best_interleaved(
        [
            lambda: cr.train(net, X, y, **kw).net,
            lambda: cr.train_many(nets, X, y, **kw).net,
            lambda: vm(nets),
        ],
        repeats,
    )
    row["single_steps_per_s"] = steps / ts[0]
    row["batched_steps_per_s"] = runs * steps / ts[1]
    row["vmap_steps_per_s"] = runs * steps / ts[2]
    row["batched_over_single"] = row["batched_steps_per_s"] / row["single_steps_per_s"]

    # accuracy: batched run 0 equals its single run; the loss we reach equals PyTorch's
    many = cr.train_many(nets, X, y, **kw)
    one = cr.train(jax.tree.map(lambda a: a[0], nets), X, y, **kw)
    row["batched_vs_single_max_abs_diff"] = float(jnp.max(jnp.abs(many.net.W1[0] - one.net.W1)))
    ours_short = cr.train(net, X, y, steps=torch_steps, lr=lr, record_every=torch_steps)
    row["ours_final_loss"] = float(cr.logistic_loss(ours_short.net, X, y))
    try:
        import torch
    except ImportError:
        row["torch"] = "not installed"
        return row
    # one thread, like XLA's CPU loops here: the machine is shared and the problems are small
    torch.set_num_threads(1)
    row["torch_threads"] = 1
    _torch_loop(net, X, y, lr=lr, steps=3)  # warm up
    t = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch_loss = _torch_loop(net, X, y, lr=lr, steps=torch_steps)
        t = min(t, time.perf_counter() - t0)
    row["torch_steps_per_s"] = torch_steps / t
    row["torch_final_loss"] = torch_loss
    row["loss_rel_diff"] = abs(torch_loss - row["ours_final_loss"]) / abs(torch_loss)
    row["single_over_torch"] = row["single_steps_per_s"] / row["torch_steps_per_s"]
    row["batched_over_torch"] = row["batched_steps_per_s"] / row["torch_steps_per_s"]
    return row


def _table(rows) -> str:
    head = (
        "| n | d | m | runs | steps | single (steps/s) | batched (traj-steps/s) | vmap (traj-steps/s) "
        "| PyTorch (steps/s) | batched/single | single/PyTorch | batched/PyTorch | loss rel. diff |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        pt = r.get("torch_steps_per_s")
        fmt = lambda k, f="{:.3g}": f.format(r[k]) if k in r else "n/a"  # noqa: E731
        lines.append(
            f"| {r['n']} | {r['d']} | {r['m']} | {r['runs']} | {r['steps']} | {r['single_steps_per_s']:.3g} "
            f"| {r['batched_steps_per_s']:.3g} | {r['vmap_steps_per_s']:.3g} | {pt and f'{pt:.3g}' or 'n/a'} "
            f"| {r['batched_over_single']:.2f} | {fmt('single_over_torch', '{:.1f}')} "
            f"| {fmt('batched_over_torch', '{:.1f}')} | {fmt('loss_rel_diff', '{:.1e}')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", not args.float32)
    key = jax.random.key(0)
    if args.quick:
        sizes = [dict(n=16, d=3, m=8, runs=4, steps=50, torch_steps=20, repeats=1)]
    else:
        sizes = [
            dict(n=40, d=5, m=50, runs=64, steps=5000, torch_steps=1000, repeats=5),
            dict(n=1000, d=50, m=200, runs=64, steps=50, torch_steps=50, repeats=1),
        ]
    rows = [bench_size(**s, key=key) for s in sizes]
    table = _table(rows)
    result = dict(
        rows=rows,
        dtype="float32" if args.float32 else "float64",
        machine=dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count()),
        jax=jax.__version__,
        jax_devices=[str(dv) for dv in jax.devices()],
    )
    print(table)
    title = f"Gradient descent throughput ({result['dtype']}, {result['machine']['cpus']} CPUs, jax {jax.__version__})"
    write_results(args.out, "train_quick" if args.quick else "train", f"{title}\n\n{table}", result)
    return result


if __name__ == "__main__":
    main()
