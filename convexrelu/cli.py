"""Command line: ``convexrelu crosscheck`` (the main job), ``convexrelu solve`` and ``convexrelu fit``.

``convexrelu crosscheck`` runs the whole story of Wang & Pilanci (arXiv 2110.06488) on one
dataset through :func:`convexrelu.crosscheck`: gradient descent from small balanced
initializations (``r`` runs, batched), the activation patterns, the convex max-margin program
solved natively and through cvxpy, and one table comparing them. ``convexrelu solve`` solves one
convex program once. The commands parse, call the library, print and save.

Exit status: 0 pass, 1 a failed check (or a solve that is not optimal), 2 bad input or usage
(unknown options, bad values, unreadable or invalid data), 3 an I/O failure (an ``--out`` that
cannot be written, found before any work starts, or a data file that cannot be opened), 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time

import numpy as np

# Names of the built-in datasets (real ones come from scikit-learn).
SYNTHETIC = ("orthogonal", "teacher", "2d", "xor")
REAL = ("breast_cancer", "iris", "wine", "digits")

EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EPILOG = (
    "exit status: 0 pass, 1 a failed check (crosscheck) or a solve that is not optimal (solve), "
    "2 bad input or usage, 3 an I/O failure (--out not writable, checked before any work; a data "
    "file that cannot be opened), 130 interrupted (Ctrl-C)"
)


class BadInput(SystemExit):
    """Bad input found after parsing (unknown dataset, mismatched sizes): exit status 2.

    A ``SystemExit`` whose ``str`` is the message; :func:`main` prints it on stderr.
    """

    def __init__(self, message: str):
        super().__init__(EXIT_USAGE)
        self.message = message

    def __str__(self) -> str:
        return self.message


class IOFailure(BadInput):
    """An output that cannot be written or a file that cannot be opened: exit status 3."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = EXIT_IO


def prepare_out(path: str) -> str:
    """Create the output folder ``path`` and prove it writable (a probe file written and
    removed), before any work: an :class:`IOFailure` (exit 3) otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".convexrelu-write-probe-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("")
        os.remove(probe)
    except OSError as e:
        raise IOFailure(f"error: cannot write to --out {path}: {e.strerror or e}") from None
    return path


# ----------------------------------------------------------------------------------------------
# small utilities
# ----------------------------------------------------------------------------------------------


class LiveLine:
    """One status line on stderr, redrawn by a background thread while a long call runs.

    Shows ``label: 12.3 s elapsed`` from the first instant; :meth:`update` (a callback of
    ``(iteration, gap)``, e.g. from inside a solver) adds the iteration and gap to the same line.
    On a terminal the line is redrawn in place every ``interval`` seconds (default 0.25) and
    erased at the end; elsewhere (a log file) a new line is written every ``interval`` seconds
    (default 5).
    """

    def __init__(self, label: str, *, enabled: bool = True, stream=None, interval: float | None = None):
        self.label = label
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.25 if self.tty else 5.0)
        self.iteration: int | None = None
        self.gap: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()

    current: LiveLine | None = None  # the line shown now, which :func:`_show_progress` feeds

    def update(self, iteration: int | None = None, gap: float | None = None) -> None:
        """Record the solver's progress; the next redraw shows it."""
        self.iteration, self.gap = iteration, gap

    def text(self) -> str:
        msg = f"{self.label}: {time.perf_counter() - self._t0:.1f} s elapsed"
        if self.iteration is not None:
            msg += f", iteration {int(self.iteration)}"
        if self.gap is not None:
            msg += f", gap {float(self.gap):.1e}"
        return msg

    def _draw(self) -> None:
        with self._lock:
            self.stream.write(("\r" + self.text() + "\x1b[K") if self.tty else self.text() + "\n")
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def __enter__(self) -> LiveLine:
        LiveLine.current = self
        self._t0 = time.perf_counter()
        if self.enabled:
            self._draw()
            self._thread = threading.Thread(target=self._run, name="convexrelu-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        LiveLine.current = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            if self.tty:
                with self._lock:
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()


def _interruptible(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a worker thread while the main thread waits in short steps, so
    that Ctrl-C (delivered to the main thread, which a compiled computation would block until it
    ends) raises ``KeyboardInterrupt`` at once; the worker is a daemon and dies with the process."""
    out: dict = {}

    def work():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the main thread
            out["error"] = e

    worker = threading.Thread(target=work, name="convexrelu-work", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in out:
        raise out["error"]
    return out["value"]


def _float(x) -> float:
    return float(np.asarray(x))


def _load_dataset(name: str, *, n: int | None, d: int | None, key):
    """``(X, y, extra_patterns)`` for a dataset name or a file path (float64)."""
    import jax
    import jax.numpy as jnp

    from . import datasets

    extra = None
    if name == "orthogonal":
        X, y = datasets.orthogonally_separable(n or 40, d or 3, key=key)
    elif name == "teacher":
        t = datasets.teacher(n or 40, d or 3, key=key)
        X, y, extra = t.X, t.y, t.patterns
    elif name in ("2d", "xor"):
        if d not in (None, 2):
            raise BadInput(f"error: --dataset {name} is 2-D, got --d {d}")
        X, y = datasets.two_d(n or 40, key=key, kind="orthogonal" if name == "2d" else "xor")
    elif name in REAL:
        X, y = datasets.load(name)
    elif os.path.exists(name):
        try:
            X, y = datasets.load_file(name)
        except (ValueError, TypeError, KeyError) as e:
            raise BadInput(f"error: cannot read {name}: {e}") from None
        except OSError as e:  # exists but cannot be opened (permissions, a folder, a device error)
            raise IOFailure(f"error: cannot open {name}: {e.strerror or e}") from None
    else:
        raise BadInput(f"error: unknown dataset {name!r}: use one of {SYNTHETIC + REAL} or a path to a .npz/.csv file")
    if name in REAL or os.path.exists(name):
        if d is not None and d != X.shape[1]:
            raise BadInput(f"error: --d {d} does not match the dataset's {X.shape[1]} features")
        if n is not None and n < X.shape[0]:  # a random subsample of n points
            idx = np.sort(np.asarray(jax.random.permutation(key, X.shape[0]))[:n])
            X, y = X[idx], y[idx]
    if not np.any(np.asarray(X)):
        raise BadInput(
            f"error: every feature of {name} is zero (X = 0, shape {tuple(X.shape)}): every network "
            "outputs 0 on it, so no program can separate or fit the data"
        )
    return jnp.asarray(X, jnp.float64), jnp.asarray(y, jnp.float64), extra


def _solve_patterns(X, extra, *, num, max_enumerated, key):
    """Every pattern when Cover's count allows, else ``num`` sampled ones; plus the dataset's
    (teacher) patterns. Returns ``(D, exact)``."""
    import convexrelu as cr

    r = int(np.linalg.matrix_rank(np.asarray(X)))
    exact = cr.pattern_count(X.shape[0], r) <= max_enumerated
    D = cr.enumerate_patterns(X) if exact else cr.sample_patterns(X, num=num, key=key)
    return cr.merge_patterns(D, *([] if extra is None else [extra])), exact


def _x64():
    import jax

    jax.config.update("jax_enable_x64", True)  # solver precision: the checks are at 1e-6


# ----------------------------------------------------------------------------------------------
# crosscheck
# ----------------------------------------------------------------------------------------------


def crosscheck(args) -> int:
    """Load the dataset, run :func:`convexrelu.crosscheck`, print the table (or the JSON), save
    report.json and the plots. Returns 0 when every check passed, 1 otherwise."""
    _x64()
    import jax

    import convexrelu as cr

    quiet = args.quiet or args.json
    if args.out:
        prepare_out(args.out)  # an unwritable --out fails now (exit 3), not after the whole job
    key = jax.random.key(args.seed)
    k_data = jax.random.split(key, 4)[0]  # cr.crosscheck uses the other three of the same split
    if not quiet:
        print("· data …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    X, y, extra = _load_dataset(args.dataset, n=args.n, d=args.d, key=k_data)
    t_data = time.perf_counter() - t0
    rep = _interruptible(
        cr.crosscheck,
        X, y, key=key, m=args.m, runs=args.runs, steps=args.steps, patterns=args.patterns,
        bridge=not args.no_bridge, extra_patterns=extra, scale=args.scale, lr=args.lr, max_alpha=args.max_alpha,
        tol=args.tol, margin_tol=args.margin_tol, kkt_tol=args.kkt_tol, cert_tol=args.cert_tol,
        support_tol=args.support_tol, max_enumerated=args.max_enumerated,
        bridge_max_patterns=args.bridge_max_patterns, strict=args.strict, progress=not quiet,
        info={"dataset": args.dataset, "seed": args.seed},
    )
    rep = dataclasses.replace(rep, timings={"data": t_data, **rep.timings})
    report = rep.to_json()
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    if args.out:
        try:
            with open(os.path.join(args.out, "report.json"), "w") as f:
                json.dump(report, f, indent=2)
            _plots(args.out, rep, X, y)
        except OSError as e:
            raise IOFailure(f"error: cannot write the report to {args.out}: {e.strerror or e}") from None
        if not quiet:
            print(f"report and plots written to {args.out}/")
    return EXIT_PASSED if rep.passed else EXIT_FAILED


def _plots(out, rep, X, y):
    import jax

    from . import plotting

    H = rep.history
    steps_rec = np.asarray(H.step)[0]
    plotting.savefig(
        plotting.plot_margins(
            steps_rec, np.asarray(H.normalized_margin), rep.gamma_star, smoothed=np.asarray(H.smoothed_margin)
        ),
        os.path.join(out, "margins.png"),
    )
    plotting.savefig(plotting.plot_alignment(rep.alignment_steps, rep.alignment), os.path.join(out, "alignment.png"))
    if X.shape[1] == 2:
        net0 = jax.tree.map(lambda a: a[0], rep.networks)
        plotting.savefig(
            plotting.plot_directions_2d(X, y, net0.W1, net0.w2, U=rep.solution.U, V=rep.solution.V),
            os.path.join(out, "directions.png"),
        )


def _print_table(rep) -> None:
    nat, br = rep["native"], rep["bridge"]
    print(
        f"\nconvexrelu crosscheck — {rep['dataset']}: n={rep['n']} d={rep['d']} m={rep['m']} "
        f"runs={rep['runs']} steps={rep['steps']} "
        f"(orthogonally separable: {'yes' if rep['orthogonally_separable'] else 'no'})"
    )
    if nat["status"] != "optimal":
        print(f"native solver status: {nat['status']} (gap {nat['gap']:.2e}, residual {nat['residual']:.2e})")
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


_ACTIVE_RTOL = 1e-6  # a block u_j or v_j is active when its norm is above this × the largest


def _solution_summary(args, sol, D, exact, X, times) -> dict:
    """The solve's result as plain JSON types."""
    import jax.numpy as jnp

    import convexrelu as cr

    status = cr.status_name(sol.status)
    norms = np.concatenate([np.asarray(jnp.linalg.norm(sol.U, axis=1)), np.asarray(jnp.linalg.norm(sol.V, axis=1))])
    active = int(np.sum(norms > _ACTIVE_RTOL * max(float(norms.max(initial=0.0)), 1e-300)))
    value = _float(sol.value)
    return {
        "program": sol.program,
        "data": args.data,
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "beta": None if args.program == "max-margin" else args.beta,
        "loss": None if args.program == "max-margin" else args.loss,
        "patterns": {"count": int(D.shape[0]), "exact": bool(exact)},
        "active_blocks": active,  # nonzero u_j and v_j (norm > 1e-6 × the largest)
        "value": value,
        "status": status,
        "gap": _float(sol.gap),
        "residual": _float(sol.residual),
        "iterations": int(np.asarray(sol.iterations)),
        "intercept_b": _float(np.asarray(sol.intercept)),
        "gamma_star": 1 / (2 * value) if args.program == "max-margin" and status == "optimal" else None,
        "times_s": times,  # wall time of each run; the first includes compilation
    }


def _print_solution(r: dict) -> None:
    print(f"program   : {r['program']}" + ("" if r["beta"] is None else f" (β = {r['beta']:g})"))
    print(f"data      : {r['data']}, n = {r['n']}, d = {r['d']}")
    pat = r["patterns"]
    print(f"patterns  : {pat['count']} ({'all, enumerated' if pat['exact'] else 'sampled'}); active blocks {r['active_blocks']}")
    print(f"value     : {r['value']:.10g}")
    if r["intercept_b"] != 0.0:
        print(f"intercept : {r['intercept_b']:.10g}   (unregularized)")
    print(f"status    : {r['status']}")
    print(f"gap       : {r['gap']:.2e}   residual {r['residual']:.2e}   iterations {r['iterations']}")
    t = r["times_s"]
    rest = "" if len(t) == 1 else "; repeats " + ", ".join(f"{x:.3f}s" for x in t[1:])
    print(f"time      : {t[0]:.3f}s wall (includes compilation unless cached){rest}")
    if r["gamma_star"] is not None:
        print(f"γ*        : {r['gamma_star']:.10g}")


def _show_progress(iteration, gap) -> None:
    """The solvers' ``progress`` callback: the iteration and gap onto the current :class:`LiveLine`."""
    line = LiveLine.current
    if line is not None:
        line.update(int(iteration), float(gap))


def solve(args) -> int:
    """Load the data, solve the program once (``--repeat K``: K times, each timed), print the
    result (or one JSON object). Returns 0 when the solve is optimal, 1 otherwise."""
    if args.program == "regularized" and args.beta is None:
        raise BadInput("error: --beta is required for --program regularized")
    _x64()
    import jax

    import convexrelu as cr

    k_data, k_pat = jax.random.split(jax.random.key(args.seed))
    X, y, extra = _load_dataset(args.data, n=args.n, d=args.d, key=k_data)
    D, exact = _solve_patterns(X, extra, num=args.patterns, max_enumerated=args.max_enumerated, key=k_pat)

    live = not (args.quiet or args.json)
    progress = _show_progress if live else None  # one function: the compiled solver is reused across runs

    def run():
        if args.program == "max-margin":
            return cr.solve_max_margin(X, y, D, tol=args.tol, throw=False, progress=progress, intercept=args.intercept)
        return cr.solve_regularized(
            X, y, D, beta=args.beta, loss=args.loss, tol=args.tol, throw=False, progress=progress, intercept=args.intercept
        )

    times = []
    for k in range(args.repeat):
        label = "solving" if args.repeat == 1 else f"solving (run {k + 1}/{args.repeat})"
        with LiveLine(label, enabled=live):
            t0 = time.perf_counter()
            sol = _interruptible(lambda: jax.block_until_ready(run()))
            times.append(time.perf_counter() - t0)
    summary = _solution_summary(args, sol, D, exact, X, times)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_solution(summary)
    return EXIT_PASSED if summary["status"] == "optimal" else EXIT_FAILED


# ----------------------------------------------------------------------------------------------
# sweep
# ----------------------------------------------------------------------------------------------


def sweep(args) -> int:
    """Run :func:`convexrelu.sweep` on a TOML spec into ``--out``; print the table's path and a
    summary. Returns 0 when every cell's solve is optimal, 1 otherwise; 2 for a bad spec or a folder
    of another spec, 3 for an ``--out`` that cannot be written (checked before any work)."""
    _x64()
    import convexrelu as cr

    try:
        spec = cr.load_spec(args.spec)  # a bad spec is refused before the folder is touched
        prepare_out(args.out)  # an unwritable --out fails now (exit 3), not after the first batch
        table = _interruptible(cr.sweep, spec, out=args.out, resume=not args.no_resume, progress=not args.quiet)
    except cr.SweepError as e:
        raise BadInput(str(e)) from None
    status = table.column("status").to_pylist()
    reached = table.column("reached").to_pylist()
    print(
        f"{table.num_rows} cells in {args.out}: {status.count('optimal')} solves optimal, "
        f"{sum(reached)} runs reached γ* (within [solve] margin_tol)"
    )
    return EXIT_PASSED if all(s == "optimal" for s in status) else EXIT_FAILED


def _add_sweep(sub) -> None:
    w = sub.add_parser(
        "sweep",
        help="a grid of training runs and convex solves from a TOML spec, sharded over devices, resumable",
        description="Expand SPEC (TOML: [data], [train], [solve], [sweep]; lists are grid axes) into cells, "
        "run them in batches sharded over every local device, and write one row per cell to "
        "OUT/results.parquet after every batch. Re-running the same command resumes. Exit 1 if a "
        "solve is not optimal.",
        epilog=EPILOG,
    )
    w.add_argument("spec", help="the sweep spec, a TOML file (see examples/phase.toml)")
    w.add_argument("--out", required=True, help="results folder: spec.json and results.parquet (required, no default)")
    w.add_argument("--no-resume", action="store_true", help="refuse a folder that already holds results instead of continuing it (default: off)")
    w.add_argument("--quiet", action="store_true", help="no progress bar on stderr (default: off)")
    w.set_defaults(func=sweep)


# ----------------------------------------------------------------------------------------------
# fit (issue 19): one regularized ReLU or gated model, or its regularization path, with a test split
# ----------------------------------------------------------------------------------------------


def _split(X, y, test_size: float, seed: int):
    """A random train/test split (``test_size`` a fraction in [0, 1)); NumPy arrays."""
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    n_test = int(round(test_size * n))
    if n - n_test < 2 or (test_size > 0 and n_test < 1):
        raise BadInput(f"error: --test-size {test_size} leaves {n - n_test} training and {n_test} test samples of {n}")
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    return X[tr], y[tr], X[te], y[te]


def _fit_path(args, Xtr, ytr, Xte, yte, D, G):
    """The regularization path from β_max down to ``--beta`` (default 1e-3 β_max), as JSON."""
    import convexrelu as cr

    def show(k, beta, sol):
        line = LiveLine.current
        if line is not None:
            line.update(k + 1, float(np.asarray(sol.gap)))

    smallest = args.beta
    bmax = float(cr.beta_max(Xtr, ytr, D, loss=args.loss, model=args.model, intercept=args.intercept))
    if smallest is not None and smallest >= bmax:
        raise BadInput(f"error: --beta {smallest:g} is at or above β_max = {bmax:.6g}: the whole path is zero")
    betas = np.geomspace(bmax, smallest if smallest is not None else 1e-3 * bmax, args.num)
    val = {} if Xte.shape[0] == 0 else dict(X_val=Xte, y_val=yte, gates=G)
    path = cr.regularization_path(
        Xtr, ytr, D, betas=betas, loss=args.loss, model=args.model, solver_options={"tol": args.tol}, callback=show,
        intercept=args.intercept, **val,
    )
    rec = path.to_json()
    rec["test_score"] = rec.pop("val_score")
    return rec, all(s == "optimal" for s in path.status)


def _fit_one(args, Xtr, ytr, Xte, yte, D, G):
    """One solve at ``--beta``, as JSON: objective, gap, active neurons, train/test scores."""
    import jax

    import convexrelu as cr
    from ._path import predict, score

    if args.model == "gated":
        sol = cr.solve_gated(Xtr, ytr, D, beta=args.beta, loss=args.loss, tol=args.tol, throw=False, intercept=args.intercept)
        f_train = cr.gated_fit(Xtr, D, sol.W) + sol.intercept
    else:
        sol = cr.solve_regularized(
            Xtr, ytr, D, beta=args.beta, loss=args.loss, tol=args.tol, throw=False, progress=_show_progress,
            intercept=args.intercept,
        )
        f_train = predict(sol, Xtr)
    jax.block_until_ready(sol)
    metric = "accuracy" if args.loss == "logistic" or np.all(np.isin(np.asarray(ytr), (-1.0, 1.0))) else "r2"
    test = None if Xte.shape[0] == 0 else score(predict(sol, Xte, gates=G), yte, metric)
    rec = {
        "beta": args.beta, "objective": _float(sol.value), "gap": _float(sol.gap), "status": cr.status_name(sol.status),
        "iterations": int(np.asarray(sol.iterations)), "active": cr.active_neurons(sol), "metric": metric,
        "train_score": score(f_train, ytr, metric), "test_score": test, "intercept_b": _float(np.asarray(sol.intercept)),
    }
    return rec, rec["status"] == "optimal"


def _plot_path(rec: dict, path: str) -> None:
    """Accuracy (or R²) and active neurons against β, log scale, on two stacked axes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6.0, 5.5), sharex=True, constrained_layout=True)
    a1.semilogx(rec["betas"], rec["train_score"], "o-", label="train")
    if rec.get("test_score") is not None:
        a1.semilogx(rec["betas"], rec["test_score"], "s-", label="test")
    a1.set_ylabel(rec["metric"])
    a1.legend()
    a2.semilogx(rec["betas"], rec["active"], "o-", color="C2")
    a2.set_ylabel("active neurons")
    a2.set_xlabel("β")
    a1.set_title(f"regularization path ({rec['model']}, {rec['loss']} loss)")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _print_fit(r: dict) -> None:
    print(f"model     : {r['model']} ({r['loss']} loss), data {r['data']}: n_train = {r['n_train']}, n_test = {r['n_test']}, d = {r['d']}")
    print(f"patterns  : {r['patterns']} sampled")
    if "betas" not in r:
        test = "n/a" if r["test_score"] is None else f"{r['test_score']:.4f}"
        print(f"objective : {r['objective']:.10g}   (β = {r['beta']:g})")
        if r.get("intercept"):
            print(f"intercept : {r['intercept_b']:.10g}   (unregularized)")
        print(f"status    : {r['status']}, gap {r['gap']:.2e}, {r['iterations']} iterations")
        print(f"active    : {r['active']} neurons")
        print(f"{r['metric']:<10}: train {r['train_score']:.4f}, test {test}")
    else:
        print(f"β_max     : {r['beta_max']:.6g}")
        print(f"{'β':>11}  {'objective':>12}  {'gap':>8}  {'active':>6}  {'train':>7}  {'test':>7}  status")
        for k, b in enumerate(r["betas"]):
            test = "n/a" if r["test_score"] is None else f"{r['test_score'][k]:.4f}"
            print(
                f"{b:>11.4e}  {r['objective'][k]:>12.6g}  {r['gap'][k]:>8.1e}  {r['active'][k]:>6d}  "
                f"{r['train_score'][k]:>7.4f}  {test:>7}  {r['status'][k]}"
            )
    print(f"time      : {r['time_s']:.2f}s wall (includes compilation unless cached)")


def fit(args) -> int:
    """Load and split the data, sample gates, solve at ``--beta`` (or the path), print (or JSON),
    write ``fit.json`` and ``path.png`` under ``--out``. Returns 0 when every solve is optimal."""
    if not args.path and args.beta is None:
        raise BadInput("error: --beta is required (or pass --path for the regularization path)")
    _x64()
    import jax

    import convexrelu as cr

    k_data, k_pat = jax.random.split(jax.random.key(args.seed))
    X, y, _ = _load_dataset(args.data, n=args.n, d=None, key=k_data)
    Xtr, ytr, Xte, yte = _split(X, y, args.test_size, args.seed)
    if args.loss == "logistic" and not np.all(np.isin(ytr, (-1.0, 1.0))):
        raise BadInput("error: --loss logistic needs labels ±1; use --loss squared for real targets")
    D, G = cr.sample_patterns(Xtr, num=args.patterns, key=k_pat, return_gates=True)
    live = not (args.quiet or args.json)
    t0 = time.perf_counter()
    with LiveLine("path" if args.path else "solving", enabled=live):
        rec, ok = _interruptible((_fit_path if args.path else _fit_one), args, Xtr, ytr, Xte, yte, D, G)
    rec.update(
        data=args.data, model=args.model, loss=args.loss, intercept=args.intercept, n_train=int(Xtr.shape[0]), n_test=int(Xte.shape[0]),
        d=int(X.shape[1]), patterns=int(D.shape[0]), time_s=time.perf_counter() - t0,
    )
    if args.json:
        print(json.dumps(rec))
    else:
        _print_fit(rec)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "fit.json"), "w") as f:
            json.dump(rec, f, indent=2)
        if args.path:
            _plot_path(rec, os.path.join(args.out, "path.png"))
    return EXIT_PASSED if ok else EXIT_FAILED


def _fraction(s):
    v = float(s)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {s}")
    return v


def _add_fit(sub) -> None:
    f = sub.add_parser(
        "fit",
        help="fit a regularized ReLU or gated ReLU model (or its regularization path) with a test split",
        description="Sample gates on the training split, solve the regularized convex ReLU program or the "
        "gated ReLU program at --beta (or the warm-started path from β_max down with --path), and report "
        "the objective, duality gap, active neurons, train and test accuracy (R² for real targets) and "
        "time. Bias-free programs (DESIGN.md), or with an unregularized intercept (--intercept). Exit 1 if a solve is not optimal.",
        epilog=EPILOG,
    )
    f.add_argument("--data", default="breast_cancer", help=_DATA_HELP)
    f.add_argument("--model", choices=("relu", "gated"), default="relu", help="the convex program (default: %(default)s)")
    f.add_argument("--beta", type=_positive(float), default=None, help="regularization strength β of the sum-form program ℓ + β Σ‖·‖ (required without --path; with --path the smallest β, default 1e-3 β_max)")
    f.add_argument("--loss", choices=("squared", "logistic"), default="squared", help="loss (default: %(default)s)")
    f.add_argument("--intercept", action="store_true", help="an unregularized output intercept b in the program, f = Σ_j D_j X(u_j - v_j) + b (either loss, either model; default: off, bias-free)")
    f.add_argument("--path", action="store_true", help="solve the regularization path from β_max down, warm-started (default: off)")
    f.add_argument("--num", type=_positive(int), default=20, help="number of β on the path, geometric (default: %(default)s)")
    f.add_argument("--test-size", type=_fraction, default=0.2, help="fraction of the samples held out for testing, in [0, 1) (default: %(default)s)")
    f.add_argument("--patterns", type=_positive(int), default=200, help="number of gates to sample on the training data (default: %(default)s)")
    f.add_argument("--n", type=_positive(int), default=None, help=_N_HELP)
    f.add_argument("--tol", type=_positive(float), default=1e-6, help="solver tolerance, relative duality gap (default: %(default)s)")
    f.add_argument("--seed", type=int, default=0, help="random seed of the split, subsample and gates, an integer (default: %(default)s)")
    f.add_argument("--out", default=None, help="directory for fit.json and, with --path, path.png (default: none, nothing written)")
    f.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout (default: off)")
    f.add_argument("--quiet", action="store_true", help="no live progress line on stderr (default: off)")
    f.set_defaults(func=fit)


# ----------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------


def _positive(kind, *, allow_inf: bool = False):
    """An argparse type: a positive ``kind``; NaN refused, and ``inf`` unless ``allow_inf``."""

    def parse(s):
        v = kind(s)
        if not v > 0 or (not allow_inf and v == float("inf")):
            raise argparse.ArgumentTypeError(f"must be a positive{'' if allow_inf else ' finite'} number, got {s}")
        return v

    return parse


_DATA_HELP = f"dataset: one of {', '.join(SYNTHETIC + REAL)}, or a .npz/.csv file of X and y (default: %(default)s)"
_N_HELP = "number of samples: of a synthetic set (default 40), or a random subsample of a real one (default: all)"
_D_HELP = "number of features of a synthetic set (default 3; 2d and xor are 2-D); a real set's must match"


def _add_crosscheck(sub) -> None:
    c = sub.add_parser(
        "crosscheck",
        help="gradient descent against the convex max-margin program (the main job)",
        description="Train r runs of gradient descent from small balanced initializations, solve the "
        "convex max-margin program natively and with cvxpy, and compare: P*, margins γ(θ)/γ*, "
        "early alignment, KKT certificates, agreement with ψ(convex solution). Exit 1 if a check fails.",
        epilog=EPILOG,
    )
    c.add_argument("--dataset", default="orthogonal", help=_DATA_HELP)
    c.add_argument("--n", type=_positive(int), default=None, help=_N_HELP)
    c.add_argument("--d", type=_positive(int), default=None, help=_D_HELP)
    c.add_argument("--m", type=_positive(int), default=50, help="neurons per run (default: %(default)s)")
    c.add_argument("--runs", type=_positive(int), default=8, help="gradient-descent runs, trained batched (default: %(default)s)")
    c.add_argument("--steps", type=_positive(int), default=60_000, help="gradient-descent steps per run (default: %(default)s)")
    c.add_argument("--lr", type=_positive(float), default=1e-3, help="initial α of the loss-based step η = α/𝓛(θ), dimensionless (default: %(default)s)")
    c.add_argument("--max-alpha", type=_positive(float, allow_inf=True), default=1e-3, help="cap on the loss-based α, dimensionless (default: %(default)s)")
    c.add_argument("--scale", type=_positive(float), default=1e-3, help="scale of the balanced initialization, in units of X (default: %(default)s)")
    c.add_argument("--patterns", type=_positive(int), default=5000, help="number of gates to sample when the patterns are not enumerated (default: %(default)s)")
    c.add_argument("--max-enumerated", type=_positive(int), default=20_000, help="enumerate every pattern when Cover's count is at most this many (default: %(default)s)")
    c.add_argument("--bridge-max-patterns", type=_positive(int), default=300, help="cvxpy gets all patterns up to this many, else the native solution's support (default: %(default)s)")
    c.add_argument("--no-bridge", action="store_true", help="skip the cvxpy solve (default: off)")
    c.add_argument("--tol", type=_positive(float), default=1e-7, help="native solver tolerance, relative gap and residual (default: %(default)s)")
    c.add_argument("--margin-tol", type=_positive(float), default=1e-3, help="relative tolerance of γ(θ) ≥ γ* (default: %(default)s)")
    c.add_argument("--cert-tol", type=_positive(float), default=1e-3, help="absolute tolerance of c(λ) ≤ 1 (default: %(default)s)")
    c.add_argument("--kkt-tol", type=_positive(float), default=1e-2, help="largest relative stationarity residual of a KKT point (default: %(default)s)")
    c.add_argument("--support-tol", type=_positive(float), default=1e-2, help="support vectors: margin ≤ (1 + this) × the minimum, relative (default: %(default)s)")
    c.add_argument("--strict", action="store_true", help="require every run to reach γ* even without orthogonal separability (default: off)")
    c.add_argument("--seed", type=int, default=0, help="random seed of the data, initializations and patterns, an integer (default: %(default)s)")
    c.add_argument("--out", default=None, help="directory for report.json and the PNG plots (default: none, nothing written)")
    c.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout instead of the table (default: off)")
    c.add_argument("--quiet", action="store_true", help="no progress bars or stage lines on stderr (default: off)")
    c.set_defaults(func=crosscheck)


def _add_solve(sub) -> None:
    s = sub.add_parser(
        "solve",
        help="solve one convex program on a dataset or data file",
        description="Solve the convex max-margin or regularized program once over every pattern (or "
        "sampled ones) and report the value, status, gap and wall time. Exit 1 if not optimal.",
        epilog=EPILOG,
    )
    s.add_argument("--data", default="orthogonal", help=_DATA_HELP)
    s.add_argument("--program", choices=("max-margin", "regularized"), default="max-margin", help="which convex program (default: %(default)s)")
    s.add_argument("--beta", type=_positive(float), default=None, help="regularization strength β weighting Σ_j ‖u_j‖ + ‖v_j‖ (no default: required with --program regularized)")
    s.add_argument("--loss", choices=("squared", "logistic"), default="squared", help="loss of the regularized program (default: %(default)s)")
    s.add_argument("--intercept", action="store_true", help="an unregularized intercept b in the program: f = Σ_j D_j X(u_j - v_j) + b, margins y ⊙ (f + b) ≥ 1 (default: off, bias-free)")
    s.add_argument("--n", type=_positive(int), default=None, help=_N_HELP)
    s.add_argument("--d", type=_positive(int), default=None, help=_D_HELP)
    s.add_argument("--patterns", type=_positive(int), default=1000, help="number of gates to sample when the patterns are not enumerated (default: %(default)s)")
    s.add_argument("--max-enumerated", type=_positive(int), default=20_000, help="enumerate every pattern when Cover's count is at most this many (default: %(default)s)")
    s.add_argument("--tol", type=_positive(float), default=1e-6, help="solver tolerance, relative gap and residual (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed of the data and sampled patterns, an integer (default: %(default)s)")
    s.add_argument("--repeat", type=_positive(int), default=1, help="solve this many times and report each run's wall time in seconds; the first includes compilation (default: %(default)s)")
    s.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout (default: off)")
    s.add_argument("--quiet", action="store_true", help="no live progress line on stderr (default: off)")
    s.set_defaults(func=solve)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convexrelu", description=__doc__.split("\n\n")[0], epilog=EPILOG)
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="do not use the persistent compilation cache (default: off; the cache is $CONVEXRELU_CACHE_DIR or ~/.cache/convexrelu/xla)",
    )
    sub = p.add_subparsers(dest="command", required=True, help="the command (see COMMAND --help)")
    _add_crosscheck(sub)
    _add_solve(sub)
    _add_fit(sub)
    _add_sweep(sub)
    return p


def main(argv=None) -> int:
    """Parse, run the command, return its exit status (see :data:`EPILOG`)."""
    args = build_parser().parse_args(argv)
    try:
        if not args.no_cache:
            from ._jit import enable_compilation_cache

            enable_compilation_cache()  # the solvers' 1-3 s compiles are paid once per machine, not per run
        return args.func(args)
    except BadInput as e:  # IOFailure too (exit 3)
        print(f"convexrelu {args.command}: {e}", file=sys.stderr)
        raise
    except (ValueError, TypeError) as e:  # the library refused the input: a bad value, not a failed check
        print(f"convexrelu {args.command}: error: {e}", file=sys.stderr)
        raise BadInput(f"error: {e}") from None
    except OSError as e:  # a write or read that failed mid-way (disk full, permissions)
        msg = f"error: I/O failure: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        print(f"convexrelu {args.command}: {msg}", file=sys.stderr)
        raise IOFailure(msg) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def entry() -> None:
    """The ``convexrelu`` console script: :func:`main`, then exit with its status. On Ctrl-C the
    process ends at once (``os._exit`` after flushing), without waiting for the compiled
    computation in flight, which a normal interpreter exit would."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    if code == EXIT_INTERRUPTED:
        os._exit(code)
    sys.exit(code)
