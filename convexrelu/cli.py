"""Command line: ``convexrelu crosscheck`` (the main job) and ``convexrelu solve``.

``convexrelu crosscheck`` runs the whole story of Wang & Pilanci (arXiv 2110.06488) on one
dataset: gradient descent from small balanced initializations (``r`` runs, batched), the
activation patterns, the convex max-margin program solved natively and through cvxpy, and one
table comparing them. It exits with status 1 when a check fails beyond its tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import contextmanager

import numpy as np

# Names of the built-in datasets (real ones come from scikit-learn).
SYNTHETIC = ("orthogonal", "teacher", "2d", "xor")
REAL = ("breast_cancer", "iris", "wine", "digits")


# ----------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------


def _progress(total, desc, quiet):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=quiet, leave=False, file=sys.stderr, dynamic_ncols=True)


@contextmanager
def _stage(times: dict, name: str, quiet: bool):
    if not quiet:
        print(f"· {name} …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    yield
    times[name] = time.perf_counter() - t0


def _float(x) -> float:
    return float(np.asarray(x))


def _load_dataset(name: str, *, n: int | None, d: int | None, key):
    """``(X, y, extra_patterns, description)`` for a dataset name or a file path."""
    import jax

    from . import datasets

    extra = None
    if name == "orthogonal":
        X, y = datasets.orthogonally_separable(n or 40, d or 3, key=key)
    elif name == "teacher":
        t = datasets.teacher(n or 40, d or 3, key=key)
        X, y, extra = t.X, t.y, t.patterns
    elif name in ("2d", "xor"):
        if d not in (None, 2):
            raise SystemExit(f"error: --dataset {name} is 2-D, got --d {d}")
        X, y = datasets.two_d(n or 40, key=key, kind="orthogonal" if name == "2d" else "xor")
    elif name in REAL:
        X, y = datasets.load(name)
    elif os.path.exists(name):
        X, y = datasets.load_file(name)
    else:
        raise SystemExit(
            f"error: unknown dataset {name!r}: use one of {SYNTHETIC + REAL} or a path to a .npz/.csv file"
        )
    if name in REAL or os.path.exists(name):
        if d is not None and d != X.shape[1]:
            raise SystemExit(f"error: --d {d} does not match the dataset's {X.shape[1]} features")
        if n is not None and n < X.shape[0]:  # a random subsample of n points
            idx = np.sort(np.asarray(jax.random.permutation(key, X.shape[0]))[:n])
            X, y = X[idx], y[idx]
    return X, y, extra


def _patterns(X, nets_patterns, extra, *, num, max_enumerated, key):
    """Every pattern when Cover's count allows, else ``num`` sampled ones; plus the trained
    networks' own patterns and the dataset's (teacher) patterns. Returns ``(D, exact)``."""
    import convexrelu as cr

    n = X.shape[0]
    r = int(np.linalg.matrix_rank(np.asarray(X)))
    exact = cr.pattern_count(n, r) <= max_enumerated
    D = cr.enumerate_patterns(X) if exact else cr.sample_patterns(X, num=num, key=key)
    blocks = [np.asarray(D)] + [np.asarray(b) for b in (nets_patterns, extra) if b is not None]
    allD = np.concatenate(blocks, axis=0)
    _, first = np.unique(allD, axis=0, return_index=True)
    return allD[np.sort(first)], exact


# ----------------------------------------------------------------------------------------------
# crosscheck
# ----------------------------------------------------------------------------------------------


def _checkpoints(steps: int, chunks: int = 50) -> list[int]:
    """Chunk boundaries for the progress bar and the alignment record: equal chunks (one jit
    trace for all of them); the last one may be shorter (a second trace)."""
    size = max(1, -(-steps // chunks))
    return sorted({min(steps, size * k) for k in range(1, chunks + 1)})


def _weighted_alignment(nets, X, y):
    """Per run, the mean neuron alignment cosine weighted by each neuron's ``|w2_i| ‖w_i‖``."""
    import jax
    import jax.numpy as jnp

    import convexrelu as cr

    def one(net):
        cos = cr.neuron_alignment(net, X, y)
        w = jnp.abs(net.w2) * jnp.linalg.norm(net.W1, axis=0)
        return jnp.sum(w * cos) / jnp.sum(w)

    return np.asarray(jax.vmap(one)(nets))


def _direction_agreement(net, psi, X):
    """Agreement of a trained network with ψ(convex solution).

    Returns ``(output_cosine, sign_agreement, direction_cosine)``: the cosine between the two
    output vectors on ``X``, the fraction of equal output signs, and the mean over the trained
    neurons (weighted by ``|w2_i| ‖w_i‖``) of the largest cosine between the neuron's direction
    and a ψ neuron of the same output sign.
    """
    import convexrelu as cr

    f1 = np.asarray(cr.forward(net, X))
    f2 = np.asarray(cr.forward(psi, X))
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


def crosscheck(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)  # solver precision: the checks are at 1e-6
    import jax.numpy as jnp

    import convexrelu as cr
    from convexrelu import datasets

    quiet = args.quiet
    times: dict[str, float] = {}
    key = jax.random.key(args.seed)
    k_data, k_init, k_pat, k_cert = jax.random.split(key, 4)

    with _stage(times, "data", quiet):
        X, y, extra = _load_dataset(args.dataset, n=args.n, d=args.d, key=k_data)
        X = jnp.asarray(X, jnp.float64)
        y = jnp.asarray(y, jnp.float64)
        n, d = X.shape
        orth = datasets.is_orthogonally_separable(X, y)

    # ---------------------------------------------------------------- gradient descent, r runs
    with _stage(times, "training", quiet):
        keys = jax.random.split(k_init, args.runs)
        nets = jax.vmap(lambda k: cr.init_network(d, args.m, scale=args.scale, balanced=True, key=k))(keys)
        state, hist, align_steps, align = None, [], [0], [_weighted_alignment(nets, X, y)]
        done = 0
        bar = _progress(args.steps, f"gradient descent ({args.runs} runs)", quiet)
        for stop in _checkpoints(args.steps):
            res = cr.train_many(
                nets, X, y, steps=stop - done, schedule="loss-based", lr=args.lr, max_alpha=args.max_alpha, state=state,
                record_every=max(1, min(stop - done, max(1, args.steps // 400))),
            )
            nets, state = res.net, res.state
            hist.append(res.history)
            align_steps.append(stop)
            align.append(_weighted_alignment(nets, X, y))
            bar.update(stop - done)
            done = stop
        bar.close()
        H = jax.tree.map(lambda *a: np.concatenate([np.asarray(x) for x in a], axis=-1), *hist)
        steps_rec = np.asarray(H.step)[0] if np.ndim(H.step) > 1 else np.asarray(H.step)
        margins = np.asarray(H.normalized_margin)
        align = np.stack(align, axis=1)  # (r, checkpoints)
        final_margin = np.asarray(jax.vmap(lambda net: cr.normalized_margin(net, X, y))(nets))
        diverged = np.asarray(res.diverged)
        log_loss0 = math.log(n * math.log(2.0))
        # early alignment: the last checkpoint while the loss is still within 1% of ℓ(0)·n
        early_idx = []
        for k in range(args.runs):
            ll = np.interp(align_steps, steps_rec, np.asarray(H.log_loss)[k], left=log_loss0)
            ok = [i for i, v in enumerate(ll) if v >= log_loss0 + math.log(0.99)]
            early_idx.append(ok[-1] if ok else 0)
        early_align = np.array([align[k, i] for k, i in enumerate(early_idx)])

    # ---------------------------------------------------------------- patterns
    with _stage(times, "patterns", quiet):
        net_patterns = np.asarray(jax.vmap(lambda net: cr.neuron_patterns(net, X))(nets)).reshape(-1, n)
        D, exact = _patterns(
            X, net_patterns, extra, num=args.patterns, max_enumerated=args.max_enumerated, key=k_pat
        )
        D = jnp.asarray(D)

    # ---------------------------------------------------------------- convex program, native
    with _stage(times, "native solver", quiet):
        sol = cr.solve_max_margin(X, y, D, tol=args.tol, throw=False)
        jax.block_until_ready(sol.value)
    status = cr.status_name(sol.status)
    if status != "optimal":
        print(f"native solver status: {status} (gap {_float(sol.gap):.2e}, residual {_float(sol.residual):.2e})")
    P_native = _float(sol.value)
    gamma_star = 1.0 / (2.0 * P_native)
    ratios = final_margin / gamma_star

    # ---------------------------------------------------------------- convex program, cvxpy
    bridge_info = {"ran": False}
    if not args.no_bridge:
        with _stage(times, "cvxpy solver", quiet):
            try:
                from convexrelu import bridge

                active = np.asarray(jnp.linalg.norm(sol.U, axis=1) + jnp.linalg.norm(sol.V, axis=1)) > 1e-9 * max(
                    P_native, 1e-300
                )
                if D.shape[0] <= args.bridge_max_patterns:
                    Db, which = D, "all"
                else:  # the native support: the same value iff the native solution is optimal there
                    Db, which = D[np.flatnonzero(active)], "native support"
                bsol = bridge.solve_with_cvxpy(X, y, Db, program="max-margin")
                P_bridge = _float(bsol.value)
                bridge_info = {
                    "ran": True,
                    "patterns": int(Db.shape[0]),
                    "which": which,
                    "status": cr.status_name(bsol.status),
                    "value": P_bridge,
                    "relative_difference": abs(P_bridge - P_native) / max(abs(P_native), 1e-300),
                }
            except ImportError as e:
                bridge_info = {"ran": False, "reason": f"bridge unavailable: {e}"}

    # ---------------------------------------------------------------- certificates and ψ
    with _stage(times, "certificates", quiet):
        psi = cr.to_network(sol)
        certs = []
        bar = _progress(args.runs, "KKT certificates", quiet)
        for k in range(args.runs):
            net_k = jax.tree.map(lambda a: a[k], nets)
            if not np.isfinite(final_margin[k]) or final_margin[k] <= 0:  # not separating, or diverged
                certs.append(None)
            else:
                c = cr.kkt_certificate(
                    net_k, X, y, patterns=D if exact else None, key=k_cert, support_tol=args.support_tol
                )
                certs.append(c)
            bar.update()
        bar.close()
        agreement = [_direction_agreement(jax.tree.map(lambda a: a[k], nets), psi, X) for k in range(args.runs)]
        # the convex optimum's own certificate: c(y ⊙ μ*) over all (or sampled) patterns
        sol_cert = cr.dual_certificate(X, y * sol.dual, patterns=D if exact else None, key=k_cert)

    # ---------------------------------------------------------------- checks
    tol_m = args.margin_tol
    checks = {}
    checks["native solver optimal"] = status == "optimal"
    if bridge_info.get("ran"):
        checks["cvxpy agrees with native (1e-4 rel.)"] = bridge_info["relative_difference"] <= 1e-4
    if exact:
        checks["weak duality γ(θ) ≤ γ* (all runs)"] = bool(np.all(ratios <= 1 + 1e-6))
    reached = ratios >= 1 - tol_m
    if orth or args.strict:
        checks[f"every run reaches γ* (within {tol_m:g})"] = bool(np.all(reached))
    cert_vals = np.array([np.nan if c is None else _float(c.value) for c in certs])
    kkt_res = np.array([np.inf if c is None else _float(c.residual) for c in certs])
    # a run is certified globally optimal when it is a KKT point (small stationarity residual)
    # whose multipliers pass the dual certificate c(λ) ≤ 1 (Wang & Pilanci 2021)
    certified = (kkt_res <= args.kkt_tol) & (cert_vals <= 1 + args.cert_tol)
    if exact:
        checks["certificates consistent with margins"] = bool(np.all(certified == reached))
    passed = all(checks.values())

    # ---------------------------------------------------------------- report
    report = {
        "dataset": args.dataset,
        "n": n,
        "d": d,
        "m": args.m,
        "runs": args.runs,
        "steps": args.steps,
        "seed": args.seed,
        "orthogonally_separable": bool(orth),
        "patterns": {"count": int(D.shape[0]), "exact": bool(exact)},
        "native": {
            "value": P_native,
            "status": status,
            "gap": _float(sol.gap),
            "residual": _float(sol.residual),
            "iterations": int(np.asarray(sol.iterations)),
            "certificate": _float(sol_cert.value),
            "certificate_exact": bool(exact),  # over every pattern when they were enumerated
        },
        "bridge": bridge_info,
        "gamma_star": gamma_star,
        "runs_detail": [
            {
                "final_margin": float(final_margin[k]),
                "margin_ratio": float(ratios[k]),
                "reached_gamma_star": bool(reached[k]),
                "early_alignment": float(early_align[k]),
                "early_alignment_step": int(align_steps[early_idx[k]]),
                "kkt_certificate": None if certs[k] is None else _float(certs[k].value),
                "kkt_residual": None if certs[k] is None else _float(certs[k].residual),
                "certified_optimal": bool(certified[k]),
                "psi_output_cosine": agreement[k][0],
                "psi_sign_agreement": agreement[k][1],
                "psi_direction_cosine": agreement[k][2],
                "diverged": bool(diverged[k]),
            }
            for k in range(args.runs)
        ],
        "psi_neurons": int(psi.W1.shape[1]),
        "times_s": times,
        "checks": checks,
        "passed": passed,
    }
    _print_table(report)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "report.json"), "w") as f:
            json.dump(report, f, indent=2)
        _plots(args.out, steps_rec, margins, H, gamma_star, align_steps, align, X, y, nets, sol)
        if not quiet:
            print(f"report and plots written to {args.out}/")
    return 0 if passed else 1


def _plots(out, steps_rec, margins, H, gamma_star, align_steps, align, X, y, nets, sol):
    import jax

    from . import plotting

    plotting.savefig(
        plotting.plot_margins(steps_rec, margins, gamma_star, smoothed=np.asarray(H.smoothed_margin)),
        os.path.join(out, "margins.png"),
    )
    plotting.savefig(plotting.plot_alignment(align_steps, align), os.path.join(out, "alignment.png"))
    if X.shape[1] == 2:
        net0 = jax.tree.map(lambda a: a[0], nets)
        plotting.savefig(
            plotting.plot_directions_2d(X, y, net0.W1, net0.w2, U=sol.U, V=sol.V),
            os.path.join(out, "directions.png"),
        )


def _print_table(rep) -> None:
    nat, br = rep["native"], rep["bridge"]
    print(
        f"\nconvexrelu crosscheck — {rep['dataset']}: n={rep['n']} d={rep['d']} m={rep['m']} "
        f"runs={rep['runs']} steps={rep['steps']} "
        f"(orthogonally separable: {'yes' if rep['orthogonally_separable'] else 'no'})"
    )
    pat = rep["patterns"]
    print(f"patterns: {pat['count']} ({'all, enumerated' if pat['exact'] else 'sampled + trained nets'})")
    print(
        f"P* native : {nat['value']:.10f}  [{nat['status']}, gap {nat['gap']:.1e}, "
        f"residual {nat['residual']:.1e}, {nat['iterations']} it., c(y⊙μ*) = {nat['certificate']:.6f}"
        f"{'' if nat['certificate_exact'] else ' (sampled)'}]"
    )
    if br.get("ran"):
        print(
            f"P* cvxpy  : {br['value']:.10f}  [{br['status']}, {br['patterns']} patterns ({br['which']})]"
            f"   |ΔP*|/P* = {br['relative_difference']:.2e}"
        )
    else:
        print(f"P* cvxpy  : skipped ({br.get('reason', '--no-bridge')})")
    print(f"γ* = 1/(2P*) = {rep['gamma_star']:.8f};  ψ(convex solution) has {rep['psi_neurons']} neurons\n")
    head = (
        f"{'run':>3}  {'γ(θ)/γ*':>10}  {'early cos':>9}  {'KKT c(λ)':>9}  {'KKT res.':>8}  {'certified':>9}  "
        f"{'ψ out cos':>9}  {'ψ dir cos':>9}"
    )
    print(head)
    print("-" * len(head))
    for k, r in enumerate(rep["runs_detail"]):
        c = "n/a" if r["kkt_certificate"] is None else f"{r['kkt_certificate']:.6f}"
        res = "n/a" if r["kkt_residual"] is None else f"{r['kkt_residual']:.1e}"
        print(
            f"{k:>3}  {r['margin_ratio']:>10.6f}  {r['early_alignment']:>9.4f}  {c:>9}  {res:>8}  "
            f"{'yes' if r['certified_optimal'] else 'no':>9}  "
            f"{r['psi_output_cosine']:>9.5f}  {r['psi_direction_cosine']:>9.5f}"
        )
    print("\ntimes: " + ", ".join(f"{k} {v:.1f}s" for k, v in rep["times_s"].items()))
    print("checks:")
    for name, ok in rep["checks"].items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}")
    print("crosscheck " + ("PASSED" if rep["passed"] else "FAILED"))


# ----------------------------------------------------------------------------------------------
# solve
# ----------------------------------------------------------------------------------------------


def solve(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import convexrelu as cr

    key = jax.random.key(args.seed)
    k_data, k_pat = jax.random.split(key)
    X, y, extra = _load_dataset(args.data, n=args.n, d=args.d, key=k_data)
    X, y = jnp.asarray(X, jnp.float64), jnp.asarray(y, jnp.float64)
    D, exact = _patterns(X, None, extra, num=args.patterns, max_enumerated=args.max_enumerated, key=k_pat)
    D = jnp.asarray(D)
    if args.program == "max-margin":
        run = lambda: cr.solve_max_margin(X, y, D, tol=args.tol, throw=False)  # noqa: E731
    else:
        if args.beta is None:
            raise SystemExit("error: --beta is required for --program regularized")
        run = lambda: cr.solve_regularized(X, y, D, beta=args.beta, loss=args.loss, tol=args.tol, throw=False)  # noqa: E731
    t0 = time.perf_counter()
    sol = jax.block_until_ready(run())
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = jax.block_until_ready(run())
    t_solve = time.perf_counter() - t0
    active = int(np.sum(np.asarray(jnp.linalg.norm(sol.U, axis=1) > 0)) + np.sum(np.asarray(jnp.linalg.norm(sol.V, axis=1) > 0)))
    print(f"program   : {sol.program}" + ("" if args.program == "max-margin" else f" (β = {args.beta:g})"))
    print(f"data      : {args.data}, n = {X.shape[0]}, d = {X.shape[1]}")
    print(f"patterns  : {D.shape[0]} ({'all, enumerated' if exact else 'sampled'}); active blocks {active}")
    print(f"value     : {_float(sol.value):.10g}")
    print(f"status    : {cr.status_name(sol.status)}")
    print(f"gap       : {_float(sol.gap):.2e}   residual {_float(sol.residual):.2e}   iterations {int(sol.iterations)}")
    print(f"time      : {t_first:.3f}s with compilation, {t_solve:.3f}s solve only")
    if args.program == "max-margin" and cr.status_name(sol.status) == "optimal":
        print(f"γ*        : {1 / (2 * _float(sol.value)):.10g}")
    return 0 if cr.status_name(sol.status) == "optimal" else 1


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------


def _positive(kind):
    def parse(s):
        v = kind(s)
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {s}")
        return v

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convexrelu", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache (default: $CONVEXRELU_CACHE_DIR or ~/.cache/convexrelu/xla)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
        "crosscheck",
        help="gradient descent against the convex max-margin program (the main job)",
        description="Train r runs of gradient descent from small balanced initializations, solve the "
        "convex max-margin program natively and with cvxpy, and compare: P*, margins γ(θ)/γ*, "
        "early alignment, KKT certificates, agreement with ψ(convex solution). Exit 1 if a check fails.",
    )
    c.add_argument("--dataset", default="orthogonal", help=f"one of {SYNTHETIC + REAL}, or a .npz/.csv path")
    c.add_argument("--n", type=_positive(int), default=None, help="samples (synthetic; subsample for real data)")
    c.add_argument("--d", type=_positive(int), default=None, help="features (synthetic data; default 3)")
    c.add_argument("--m", type=_positive(int), default=50, help="neurons per run")
    c.add_argument("--runs", type=_positive(int), default=8, help="gradient-descent runs (batched)")
    c.add_argument("--steps", type=_positive(int), default=60_000, help="steps of gradient descent")
    c.add_argument("--lr", type=_positive(float), default=1e-3, help="initial α of the loss-based schedule")
    c.add_argument("--max-alpha", type=_positive(float), default=1e-3, help="cap on the loss-based α")
    c.add_argument("--scale", type=_positive(float), default=1e-3, help="initialization scale")
    c.add_argument("--patterns", type=_positive(int), default=5000, help="sampled gates when not enumerating")
    c.add_argument("--max-enumerated", type=_positive(int), default=20_000, help="enumerate when Cover's count ≤ this")
    c.add_argument("--bridge-max-patterns", type=_positive(int), default=300, help="cvxpy gets all patterns up to this many, else the native solution's support")
    c.add_argument("--no-bridge", action="store_true", help="skip the cvxpy solve")
    c.add_argument("--tol", type=_positive(float), default=1e-7, help="native solver tolerance")
    c.add_argument("--margin-tol", type=_positive(float), default=1e-3, help="relative tolerance of γ(θ) ≥ γ*")
    c.add_argument("--cert-tol", type=_positive(float), default=1e-3, help="tolerance of c(λ) ≤ 1")
    c.add_argument("--kkt-tol", type=_positive(float), default=1e-2, help="largest relative stationarity residual of a KKT point")
    c.add_argument("--support-tol", type=_positive(float), default=1e-2, help="support vectors: margin ≤ (1 + this) × the minimum")
    c.add_argument("--strict", action="store_true", help="require every run to reach γ* even without orthogonal separability")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", default=None, help="directory for report.json and PNG plots")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=crosscheck)

    s = sub.add_parser("solve", help="solve one convex program on a dataset or data file")
    s.add_argument("--data", default="orthogonal", help=f"one of {SYNTHETIC + REAL}, or a .npz/.csv path")
    s.add_argument("--program", choices=("max-margin", "regularized"), default="max-margin")
    s.add_argument("--beta", type=_positive(float), default=None, help="regularization (regularized program)")
    s.add_argument("--loss", choices=("squared", "logistic"), default="squared")
    s.add_argument("--n", type=_positive(int), default=None)
    s.add_argument("--d", type=_positive(int), default=None)
    s.add_argument("--patterns", type=_positive(int), default=1000, help="sampled gates when not enumerating")
    s.add_argument("--max-enumerated", type=_positive(int), default=20_000)
    s.add_argument("--tol", type=_positive(float), default=1e-6)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=solve)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.no_cache:
        from ._cache import enable_compilation_cache

        enable_compilation_cache()  # the solvers' 1-3 s compiles are paid once per machine, not per run
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
