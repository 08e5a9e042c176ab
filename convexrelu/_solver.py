"""The native solvers' entry points: input checks, the choice of algorithm, the hand-off from a
stalled interior-point run to ADMM, and the status check (``throw``).

Three algorithms solve the programs, each in its own module: the primal-dual interior-point method
(:mod:`convexrelu._ipm`; every program, Newton steps on the loss), ADMM with an exact linear
solve (:mod:`convexrelu._admm`; every program, warm starts, and the continuation of an
interior-point run that stalls numerically), and the matrix-free augmented Lagrangian
(:mod:`convexrelu._matrix_free`; the regularized programs at large ``n``, no ``n × n`` matrix).
All work on the data scaled by :mod:`convexrelu._scaling` and return a
:class:`convexrelu._scaling.SolverResult`, which :func:`_run` turns into a
:class:`convexrelu.ConvexSolution`. A solve whose memory estimate (:mod:`convexrelu._memory`)
exceeds the machine's is refused before any work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from . import _admm, _ipm, _matrix_free
from . import _programs as prog
from ._admm import admm_solve
from ._implicit import differentiable_solve, refuse_derivatives
from ._intercept import profile_intercept, profile_margin_intercept, require_concrete
from ._ipm import ipm_solve, uses_host_gram
from ._jit import solver_jit
from ._matrix_free import chunk_size, matrix_free_solve
from ._memory import check_memory, fits_in_memory
from ._scaling import ScaledProblem, SolverResult, scale_problem
from ._solution import RESULTS, ConvexSolution, stack_outputs, status_name
from ._threads import one_blas_thread
from ._validation import (
    SOFTMAX_INTERCEPT,
    check_beta,
    check_loss_targets,
    check_outputs,
    check_patterns,
    check_scalar,
    check_X,
    check_Xy,
    is_concrete,
)

METHODS = ("auto", "ipm", "admm", "matrix-free")


def _hand_off(data: ScaledProblem, res: SolverResult, tol, infeasible_tol, max_iters, check_every: int, progress=None):
    """Continue a stalled interior-point run (status ``numerical_error``: e.g. a nearly infeasible
    max-margin program whose Farkas ray the dual iterate has not yet validated, or a ``tol`` below
    the method's floating-point floor) with ADMM warm-started from its best candidate, per problem
    (ADMM runs no iteration for a problem that needs none); the iteration count adds both."""
    need = res.status == RESULTS.numerical_error
    c = res.candidate
    init = tuple(jnp.where(jnp.isfinite(a), a, 0.0) for a in (c.U, c.V, c.dual, c.cone_dual))
    cont = admm_solve(data, init, tol, infeasible_tol, max_iters, check_every, active=need, progress=progress)
    cont = cont._replace(iterations=cont.iterations + res.iterations)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(need, a, b), cont, res)


@solver_jit(static_argnames=("program", "method", "check_every", "progress", "chunk"))
def _solve(
    X, y, D, beta, offset, init, tol, infeasible_tol, ipm_iters, admm_iters, *, program: str, method: str,
    check_every: int, progress=None, chunk: int = 0,
) -> SolverResult:
    """One problem (``vmap`` batches it): scale the data and run the algorithm (the matrix-free
    solver scales its own and takes its iteration limit in ``admm_iters``); ``offset`` a fixed
    offset of the fit (:func:`convexrelu._scaling.scale_problem`)."""
    if method == "matrix-free":
        return matrix_free_solve(
            X, y, D, beta, init, tol, admm_iters, program=program, check_every=check_every, chunk=chunk, progress=progress,
            offset=offset,
        )
    data = scale_problem(X, y, D, beta, program, offset)
    if method == "admm":
        return admm_solve(data, init, tol, infeasible_tol, admm_iters, check_every, progress=progress)
    return ipm_solve(data, tol, infeasible_tol, ipm_iters, progress)


@solver_jit(static_argnames=("program", "check_every", "progress"))
def _continue(X, y, D, beta, offset, res, tol, infeasible_tol, admm_iters, *, program: str, check_every: int, progress=None):
    """:func:`_hand_off` of an interior-point result (``vmap`` batches it)."""
    data = scale_problem(X, y, D, beta, program, offset)
    return _hand_off(data, res, tol, infeasible_tol, admm_iters, check_every, progress)


def _solve_ipm(X, y, D, beta, offset, tol, infeasible_tol, ipm_iters, admm_iters, *, program: str, check_every: int, progress=None):
    """The interior-point method, then :func:`_hand_off`. Under ``jit``/``vmap`` (a traced status)
    the hand-off is always part of the traced program, per problem, so a batch and a single solve
    give the same status and value; with a concrete status it runs only when a problem stalled (so
    a solve that needs none does not compile ADMM beside the interior-point method)."""
    static = dict(program=program, check_every=check_every, progress=progress)
    res = _solve(X, y, D, beta, offset, None, tol, infeasible_tol, ipm_iters, admm_iters, method="ipm", **static)
    if is_concrete(res.status) and not np.any(np.asarray(res.status) == RESULTS.numerical_error):
        return res
    if is_concrete(res.status) and jnp.finfo(X.dtype).bits < 64:
        return _in_float64(res, X, y, D, beta, offset, tol, infeasible_tol, ipm_iters, admm_iters, **static)
    return _continue(X, y, D, beta, offset, res, tol, infeasible_tol, admm_iters, **static)


def _in_float64(res: SolverResult, X, y, D, beta, offset, tol, infeasible_tol, ipm_iters, admm_iters, **static) -> SolverResult:
    """A stalled float32 interior-point run, outside ``jit``, is solved again in float64 on the same
    (float32) data and the result cast back: float32 iterates stall at the working precision's floor
    on hard problems (near-duplicate rows of opposite labels), where the float64 method finishes in
    tens of iterations. Iterations add up. Under ``jit``/``vmap`` the hand-off stays in float32 and
    the verified status says what it reached."""
    w = _to_float64
    with jax.enable_x64(True):
        out = _solve_ipm(w(X), w(y), D, w(beta), w(offset), w(tol), w(infeasible_tol), ipm_iters, admm_iters, **static)
        out = jax.tree_util.tree_map(np.asarray, out)  # host copies: cast below, outside float64 mode
    cast = lambda a: jnp.asarray(a, X.dtype if np.issubdtype(a.dtype, np.floating) else a.dtype)  # noqa: E731
    out = jax.tree_util.tree_map(cast, out)
    return out._replace(iterations=out.iterations + res.iterations)


def _to_float64(a):
    """A host copy of ``a`` (array or scalar) as a float64 JAX array, inside ``jax.enable_x64``; ``None`` stays."""
    return None if a is None else jnp.asarray(np.asarray(a), jnp.float64)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_options(tol, max_iters, check_every, dtype, method="ipm"):
    """``(tol, IPM iteration limit, ADMM (or matrix-free) iteration limit, check_every)``; the
    defaults: ``tol`` 1e-6 in float64 and 1e-4 in float32, 500 IPM, 50 000 ADMM and 20 000
    matrix-free iterations."""
    if tol is None:
        tol = 1e-6 if jnp.finfo(dtype).bits >= 64 else 1e-4
    tol = check_scalar("tol", tol, lo=0.0, hi=1.0)
    if max_iters is None:
        ipm_iters = _ipm.MAX_ITERS
        admm_iters = _matrix_free.MAX_ITERS if method == "matrix-free" else _admm.MAX_ITERS
    else:
        ipm_iters = admm_iters = _positive_int("max_iters", max_iters)
    return float(tol), ipm_iters, admm_iters, _positive_int("check_every", check_every)


def _check_init(init, program, p, d, n, dtype, outputs=()):
    """A warm start's arrays ``(U, V, dual, ν)`` (``outputs = (c,)`` leads their shapes for ``c``
    softmax outputs), non-finite entries (of an infeasible or failed solve) set to zero."""
    if init is None:
        return None
    if not isinstance(init, ConvexSolution):
        raise TypeError(f"init must be a ConvexSolution (a previous solve's result), got {type(init).__name__}")
    o = tuple(outputs)
    if (
        init.U.shape != o + (p, d) or init.V.shape != o + (p, d) or init.dual.shape != o + (n,)
        or init.cone_dual.shape != o + (2, p, n)
    ):
        raise ValueError(
            f"init has U {init.U.shape}, dual {init.dual.shape}, cone_dual {init.cone_dual.shape}; "
            f"this problem needs U {o + (p, d)}, dual {o + (n,)}, cone_dual {o + (2, p, n)}"
        )
    if init.program != program:
        raise ValueError(f"init solves {init.program!r}, not {program!r}")
    return tuple(jnp.where(jnp.isfinite(a), a, 0.0).astype(dtype) for a in (init.U, init.V, init.dual, init.cone_dual))


def _pick_method(method, program, init, shape, itemsize):
    """The algorithm: ``"auto"`` is the matrix-free solver for a regularized program that the
    interior point's ``n × n`` blocks do not fit in memory, else ADMM with a warm start and the
    interior point without. ``shape = (n, d, p)``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "matrix-free" and program == "max-margin":
        raise ValueError("method='matrix-free' solves the regularized programs; use 'ipm' or 'admm' for max-margin")
    if program == "regularized-softmax":  # c outputs coupled by the loss: only the matrix-free solver takes them
        if method not in ("auto", "matrix-free"):
            raise ValueError(
                f"loss='softmax' is solved by method='matrix-free' (or 'auto'); the interior point and ADMM take "
                f"one output, got method={method!r}"
            )
        return "matrix-free"
    if method == "auto":
        if program != "max-margin" and not fits_in_memory("ipm", *shape, itemsize):
            return "matrix-free"
        return "admm" if init is not None else "ipm"
    if method == "ipm" and init is not None:
        raise ValueError("method='ipm' does not warm start; use method='admm' (or 'auto') with init=")
    return method


def _raise_on_status(sol: ConvexSolution) -> ConvexSolution:
    """Raise when a concrete status is not optimal (``ValueError`` when infeasible, else
    ``RuntimeError``, with the statuses' messages); under a transformation, ``eqx.error_if``."""
    if not is_concrete(sol.status):
        value = eqx.error_if(
            sol.value,
            sol.status != RESULTS.optimal,
            "convex solver did not reach optimality (infeasible, max_iters or numerical_error); "
            "pass throw=False and read .status",
        )
        return eqx.tree_at(lambda s: s.value, sol, value)
    st = np.asarray(sol.status)
    bad = st != RESULTS.optimal
    if not np.any(bad):
        return sol
    where = "" if st.ndim == 0 else f" in {int(np.sum(bad))} of {st.size} problems"
    codes = sorted(set(st[bad].ravel().tolist()))
    if RESULTS.infeasible in codes:
        raise ValueError(
            f"the {sol.program} program is infeasible{where}: {RESULTS.infeasible.message}; "
            "pass throw=False to get it"
        )
    raise RuntimeError(
        f"convex solver stopped with status {[status_name(c) for c in codes]}{where} after "
        f"{np.max(np.asarray(sol.iterations))} iterations (gap {np.max(np.asarray(sol.gap)):.2e}, residual "
        f"{np.max(np.asarray(sol.residual)):.2e}); {'; '.join(RESULTS(c).message for c in codes)}; "
        "pass throw=False to inspect the result"
    )


FARKAS_TOL = 1e-6
"""The default Farkas-residual threshold of an infeasibility certificate (verified in float64 for
a float32 solve): fixed, independent of ``tol`` (a loose ``tol`` must not make a feasible program
look infeasible)."""


def _verify_on_host(X, y, D, U, V, dual, nu, beta, offset, status, *, program, tol, infeasible_tol):
    """The candidate's optimality (or an infeasible ray's Farkas residual) recomputed in float64 on
    the host; an ``optimal`` or ``infeasible`` status that does not hold there becomes ``inaccurate``.
    Returns ``(value, gap, residual, status)`` in the solve's dtypes."""
    dtype = np.asarray(U).dtype
    with jax.enable_x64(True):
        X, y, U, V, dual, nu, beta, offset = map(_to_float64, (X, y, U, V, dual, nu, beta, offset))
        D = jnp.asarray(np.asarray(D))
        if program == "max-margin":
            opt = prog.optimality(X, y, D, U, V, dual, nu, program=program, beta=beta, offset=offset)
        else:  # the same formulas over chunks of patterns: no (2, p, n) float64 temporaries
            opt = _matrix_free.chunked_optimality(X, y, D, U, V, dual, nu, program=program, beta=beta, offset=offset)
        value, gap, residual = float(opt.value), float(opt.gap), float(opt.residual)
        code = int(status)
        if code == RESULTS.infeasible:
            value, gap = np.inf, float(prog.max_margin_infeasibility(X, y, D, dual, nu, offset))
            holds = gap <= infeasible_tol
        else:
            holds = code != RESULTS.optimal or (gap <= tol and residual <= tol)
    code = code if holds else int(RESULTS.inaccurate)
    return np.asarray(value, dtype), np.asarray(gap, dtype), np.asarray(residual, dtype), np.asarray(code, np.int32)


def _verified(sol: ConvexSolution, X, y, offset, tol, infeasible_tol) -> ConvexSolution:
    """A solve below float64 has its status verified in float64 (:func:`_verify_on_host`, through
    ``jax.pure_callback``, so under ``jit``/``vmap`` too), and reports the float64 gap and violation."""
    if jnp.finfo(X.dtype).bits >= 64:
        return sol
    dt = X.dtype
    shapes = (jax.ShapeDtypeStruct((), dt),) * 3 + (jax.ShapeDtypeStruct((), jnp.int32),)
    host = functools.partial(_verify_on_host, program=sol.program, tol=tol, infeasible_tol=infeasible_tol)
    value, gap, residual, status = jax.pure_callback(
        host, shapes, X, y, sol.patterns, sol.U, sol.V, sol.dual, sol.cone_dual, sol.beta, offset, sol.status,
        vmap_method="sequential",
    )
    return eqx.tree_at(lambda s: (s.value, s.gap, s.residual, s.status), sol, (value, gap, residual, status))


def _run(X, y, D, beta, program, *, tol, max_iters, throw, init, check_every, infeasible_tol, method, progress, offset=0.0):
    """Check the options, run :func:`_solve` (the IPM's LAPACK on one BLAS thread, unless its
    capacitance GEMM runs on the host BLAS: :mod:`convexrelu._threads`), build the solution.
    ``offset``: a fixed offset of the fit (an intercept held fixed, :func:`_with_intercept`); the
    solution's value and certificate are those of the program with it."""
    n, d = X.shape
    outputs = y.shape[:1] if program == "regularized-softmax" else ()  # c outputs: (c, n) targets
    n_out = int(np.prod(outputs))
    method = _pick_method(method, program, init, (n, d, D.shape[0]), jnp.dtype(X.dtype).itemsize)
    tol_, ipm_iters, admm_iters, check_every = _check_options(tol, max_iters, check_every, X.dtype, method)
    init_arrs = _check_init(init, program, D.shape[0], d, n, X.dtype, outputs)
    check_memory(method, n, d, n_out * D.shape[0], jnp.dtype(X.dtype).itemsize)  # before any work; c outputs: c × the blocks
    itol = FARKAS_TOL if infeasible_tol is None else float(infeasible_tol)
    dt = X.dtype
    beta, offset = jnp.asarray(beta, dt), jnp.asarray(offset, dt)
    limit = method == "ipm" and not uses_host_gram(X, D)
    with one_blas_thread(limit):
        args = (jnp.asarray(tol_, dt), jnp.asarray(itol, dt), jnp.asarray(ipm_iters, jnp.int32), jnp.asarray(admm_iters, jnp.int32))
        if method == "ipm":
            res = _solve_ipm(X, y, D, beta, offset, *args, program=program, check_every=check_every, progress=progress)
        else:
            res = _solve(
                X, y, D, beta, offset, init_arrs, *args, program=program, method=method, check_every=check_every,
                progress=progress, chunk=chunk_size(D.shape[0], n, jnp.dtype(dt).itemsize, n_out),
            )
        if limit and is_concrete(res.status):  # JAX dispatches asynchronously: finish inside the limit
            jax.block_until_ready(res.status)
    c = res.candidate
    sol = ConvexSolution(
        U=c.U, V=c.V, patterns=D, value=c.opt.value, dual=c.dual, cone_dual=c.cone_dual, gap=c.opt.gap,
        residual=c.opt.residual, status=res.status, iterations=res.iterations, beta=beta, program=program,
    )
    sol = _verified(sol, X, y, offset, tol_, itol)
    return _raise_on_status(sol) if throw else sol


def solve_max_margin(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    tol: float | None = None,
    max_iters: int | None = None,
    throw: bool = True,
    init: ConvexSolution | None = None,
    check_every: int = 10,
    infeasible_tol: float | None = None,
    method: Literal["auto", "ipm", "admm"] = "auto",
    progress: Callable[[Array, Array], None] | None = None,
    intercept: bool = False,
) -> ConvexSolution:
    """Solve the convex max-margin program on the patterns ``D`` (Wang & Pilanci 2021).

        P* = min Σ_j ‖u_j‖ + ‖v_j‖  s.t.  y ⊙ Σ_j D_j X (u_j - v_j) ≥ 1,  (2D_j - 1) ⊙ X u_j ≥ 0,
                                          (2D_j - 1) ⊙ X v_j ≥ 0.

    The best normalized margin of a network whose neurons use these patterns is ``1/(2P*)``.
    By default a primal-dual interior-point method (Mehrotra predictor-corrector, Nesterov-Todd
    scaling) with a structure-exploiting Woodbury normal-equation solve, tens of iterations;
    ``method="admm"`` (or a warm start ``init=``) selects ADMM with an exact Woodbury linear solve.
    Jitted, works in float32 and float64 and under ``jax.vmap`` (problems of the same shape).

    Args:
        X: data ``(n, d)``. y: labels ``(n,)`` in {-1, +1}. D: boolean patterns ``(p, n)``.
        tol: stop when the relative duality gap and the relative constraint violation
            (:func:`convexrelu.optimality`) are both ``≤ tol``; default ``1e-6`` in
            float64, ``1e-4`` in float32.
        max_iters: iteration limit (status ``max_iters`` beyond it); default 500 for the
            interior-point method, 50 000 for ADMM.
        throw: raise on any status but ``optimal`` (``ValueError`` when infeasible,
            ``RuntimeError`` otherwise; ``EquinoxRuntimeError`` under ``jit``/``vmap``).
        init: a previous :class:`ConvexSolution` of a problem of the same shape (warm start;
            ADMM only: interior-point methods do not warm start, so ``"auto"`` picks ADMM).
        check_every: ADMM iterations between optimality checks (the IPM checks every iteration).
        method: ``"ipm"`` (interior point), ``"admm"``, or ``"auto"`` (default): the IPM unless
            ``init`` is given. An IPM run that stalls numerically (status ``numerical_error``,
            e.g. on a nearly infeasible program, or at a ``tol`` below its floating-point floor of
            about 1e-8) is continued by ADMM from the IPM's best candidate, inside the compiled
            program (per problem under ``vmap``); the iteration count then adds both.
        infeasible_tol: Farkas-residual threshold: a multiplier ray with
            :func:`convexrelu.max_margin_infeasibility` ``≤ infeasible_tol`` proves
            ``P* ≥ 1/(infeasible_tol · max_i ‖x_i‖)`` and is reported as infeasible. Default
            1e-6, independent of ``tol`` and verified in float64 for a float32 solve.
        progress: optional ``progress(iteration, gap)``, called from inside the compiled loop
            (``jax.debug.callback``) after every interior-point iteration and every ADMM check, for
            a live display (the CLI's progress line). ``gap`` is the scored relative gap, or the
            iterate's relative complementarity, which tracks it, between scores. A different
            callable compiles the solver anew; ``None`` (default) adds nothing to the program.
        intercept: an unregularized intercept ``b``: margins ``y ⊙ (Σ_j D_j X(u_j - v_j) + b) ≥ 1``
            (``sol.intercept``). A search on ``b``, one solve per trial (each the program with the
            offset ``b``), certified by multipliers balanced to the intercept's dual constraint
            ``yᵀμ = 0`` (:func:`convexrelu._intercept.profile_margin_intercept`); infeasible trials
            bound ``b`` by their Farkas rays, so data that no bias-free network on ``D`` separates
            can still be separated with ``b``. On the host (not under ``jit``/``vmap``/``grad``),
            no warm start; the interior point (``"auto"``) is its method, as ADMM needs many
            iterations on the infeasible trials. Each trial has ``max_iters`` (default 500, for the
            ADMM continuation of a stalled interior point too); a trial that stalls ends the
            search with its status (degenerate data at a ``tol`` near the interior point's floor:
            loosen ``tol``). Default off (the theory's bias-free program).

    Returns:
        A :class:`ConvexSolution` with ``program="max-margin"``: ``U, V``, ``value = Σ‖u_j‖+‖v_j‖``
        (the candidate is rescaled to satisfy the margin constraints exactly), the margin
        multipliers ``μ`` in ``dual``, the cone multipliers ``ν`` in ``cone_dual``, the
        relative gap and violation. When infeasible: ``value = inf``, ``dual`` the normalized
        ray ``μ ≥ 0, 1ᵀμ = 1``, ``cone_dual`` its ``ν``, ``gap`` its Farkas residual.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels, NaN, options; infeasible program.
        RuntimeError: iteration limit or numerical failure (``throw=True``).
        MemoryError: the method's memory estimate exceeds the machine's memory.

    Example:
        >>> sol = cr.solve_max_margin(X, y, D)
        >>> gamma_star = 1 / (2 * sol.value)
    """
    X, y = check_Xy(X, y)
    D = check_patterns(D, X.shape[0])
    if intercept:
        return _margin_intercept(
            X, y, D, tol=tol, max_iters=max_iters, throw=throw, init=init, check_every=check_every,
            infeasible_tol=infeasible_tol, method=method, progress=progress,
        )
    return differentiable_solve(  # implicit gradients in X (_implicit), around the solve
        _run, X, y, D, 0.0, "max-margin", tol=tol, max_iters=max_iters, throw=throw, init=init,
        check_every=check_every, infeasible_tol=infeasible_tol, method=method, progress=progress,
    )


def _with_intercept(X, y, D, beta, loss, *, tol, max_iters, throw, init, check_every, method, progress):
    """:func:`solve_regularized` with an unregularized intercept (:func:`profile_intercept`): each
    trial ``b`` one solve of the program with ``b`` a fixed offset of the fit, by the chosen method."""
    require_concrete(X, y, beta)
    tol = _check_options(tol, max_iters, check_every, X.dtype)[0]
    program = f"regularized-{loss}"

    def solve(b, inner_tol, prev):
        warm = prev if prev is not None and method == "admm" else (init if prev is None else None)
        return _run(
            X, y, D, beta, program, tol=inner_tol, max_iters=max_iters, throw=False, init=warm, check_every=check_every,
            infeasible_tol=None, method=method, progress=progress, offset=b,
        )

    def certify(b, sol, r):
        return prog.optimality(X, y, D, sol.U, sol.V, r, sol.cone_dual, program=program, beta=beta, offset=b)

    sol = profile_intercept(solve, certify, y, loss=loss, tol=tol)
    return _raise_on_status(sol) if throw else sol


def _margin_intercept(X, y, D, *, tol, max_iters, throw, init, check_every, infeasible_tol, method, progress):
    """:func:`solve_max_margin` with an unregularized intercept (:func:`profile_margin_intercept`):
    each trial ``b`` one solve of the max-margin program with the margins ``y ⊙ (f + b) ≥ 1``."""
    require_concrete(X, y)
    if init is not None:
        raise ValueError("intercept=True searches the intercept from scratch: init= is not taken")
    tol = _check_options(tol, max_iters, check_every, X.dtype)[0]

    def solve(b, inner_tol):  # a stalled interior point's hand-off to ADMM gets as many iterations, not 50 000
        return _run(
            X, y, D, 0.0, "max-margin", tol=inner_tol, max_iters=max_iters or _ipm.MAX_ITERS, throw=False, init=None,
            check_every=check_every, infeasible_tol=infeasible_tol, method=method, progress=progress, offset=b,
        )

    def certify(b, sol, mu, nu):
        return prog.optimality(X, y, D, sol.U, sol.V, mu, nu, program="max-margin", offset=b)

    def farkas(mu, nu):
        return prog.max_margin_infeasibility(X, y, D, mu, nu)

    itol = FARKAS_TOL if infeasible_tol is None else float(infeasible_tol)
    sol = profile_margin_intercept(solve, certify, farkas, y, tol=tol, infeasible_tol=itol)
    return _raise_on_status(sol) if throw else sol


def _outputs(X, Y, D, *, init, throw, **options) -> ConvexSolution:
    """``c`` squared-loss outputs (``Y (c, n)``), each with its own neurons: the loss and the group
    norm are sums over the outputs, so the program separates into one program per output, solved
    in turn and stacked on a leading output axis (``U, V (c, p, d)``, ``dual (c, n)``, ...,
    :func:`convexrelu._solution.stack_outputs`): the value is the sum, the gap the largest of the
    outputs' gaps."""
    if init is not None and np.shape(init.U)[:1] != Y.shape[:1]:
        raise ValueError(f"init has U of shape {np.shape(init.U)}; {Y.shape[0]} outputs need ({Y.shape[0]}, p, d)")

    def output(k):  # output k's part of a stacked warm start (its scalars and patterns are shared)
        b = jnp.asarray(init.intercept)
        parts = (init.U[k], init.V[k], init.dual[k], init.cone_dual[k], b if b.ndim == 0 else b[k])
        return eqx.tree_at(lambda t: (t.U, t.V, t.dual, t.cone_dual, t.intercept), init, parts)

    sols = [
        solve_regularized(X, Y[k], D, loss="squared", throw=False, init=None if init is None else output(k), **options)
        for k in range(Y.shape[0])
    ]
    sol = stack_outputs(sols)
    return _raise_on_status(sol) if throw else sol


def _softmax(X, Y, D, beta, *, intercept, **options) -> ConvexSolution:
    """The ReLU program with the softmax cross-entropy of ``c`` outputs (``Y (c, n)`` one-hot):
    the loss couples the outputs, so all their blocks ``(c, p, d)`` are one solve, by the
    matrix-free solver (:mod:`convexrelu._matrix_free`, the one method that takes them). No
    implicit derivatives yet: differentiating raises."""
    if intercept:
        raise ValueError(SOFTMAX_INTERCEPT)
    sg = jax.lax.stop_gradient
    sol = _run(sg(X), sg(Y), D, sg(beta), "regularized-softmax", infeasible_tol=None, **options)
    return eqx.tree_at(lambda t: t.value, sol, refuse_derivatives(sol.value, X, Y, jnp.asarray(beta, X.dtype)))


def solve_regularized(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    beta,
    loss: Literal["squared", "logistic", "softmax"] = "squared",
    tol: float | None = None,
    max_iters: int | None = None,
    throw: bool = True,
    init: ConvexSolution | None = None,
    check_every: int = 10,
    method: Literal["auto", "ipm", "admm", "matrix-free"] = "auto",
    progress: Callable[[Array, Array], None] | None = None,
    intercept: bool = False,
) -> ConvexSolution:
    """Solve the regularized convex program (Pilanci & Ergen 2020; Wang, Lacotte & Pilanci 2021).

        min ℓ(Σ_j D_j X (u_j - v_j), y) + β Σ_j ‖u_j‖ + ‖v_j‖  s.t.  u_j, v_j ∈ K_j,

    ``ℓ = ½ Σ (f - y)²`` (``loss="squared"``, real targets) or ``Σ log(1 + e^{-y f})``
    (``loss="logistic"``, labels ±1). Same options and guarantees as :func:`solve_max_margin`.
    Squared-loss targets of shape ``(n, c)`` are ``c`` outputs, each with its own blocks (scnn's
    convention); the program separates, and the solution stacks the outputs on a leading axis
    (``U, V (c, p, d)``, ``dual (c, n)``; ``value`` and ``gap`` of the whole program).
    ``loss="softmax"`` takes one-hot targets ``(n, c)``, ``c ≥ 2`` classes, each output ``k`` its own
    blocks ``U_k, V_k`` (the same convention):

        min Σ_i logsumexp(f_{·i}) - ⟨y_i, f_{·i}⟩ + β Σ_{k,j} ‖u_kj‖ + ‖v_kj‖  s.t.  u_kj, v_kj ∈ K_j,

    ``f_k = Σ_j D_j X (u_kj - v_kj)``; the loss couples the outputs, so it is one program, solved by
    the matrix-free method (``"auto"`` picks it; ``"ipm"``/``"admm"`` take one output and are
    refused), with the same certificate (``r = Y - softmax(F)``, ``(c, n)``, and ``ν (c, 2, p, n)``;
    the dual bound ``Σ_i H(y_i - t r_{·i})``, ``H`` the entropy). With ``c = 2`` it is the binary
    logistic program on ``f_1 - f_2``. Its solution has no intercept and no implicit derivatives
    (differentiating raises). ``beta`` may be a traced scalar (``jax.vmap`` over a grid of β).

    Methods: ``"ipm"`` (interior point: Newton steps on the loss inside the primal-dual method, for
    both losses; it forms and factors an ``n × n`` capacitance), ``"admm"`` (exact Woodbury linear
    solve, also ``n × n``; warm starts), and ``"matrix-free"``: an augmented Lagrangian on the cone
    constraints whose subproblems are solved by R-FISTA, applying ``W ↦ Σ_j D_j X w_j``, the cone
    maps and their adjoints over chunks of patterns, never an ``n × n`` matrix nor a ``D_j X``
    block (memory ``O(nd + pd)`` plus the boolean patterns and the ``(2, p, n)`` cone multipliers
    of the certificate). Every iteration of it is certified by the same relative gap and
    violation; it warm starts from ``init``, runs in float32 and float64, under ``jit`` and
    ``vmap``. It needs many more, much cheaper iterations than the interior point (thousands,
    each ``O(npd)``): on teacher data with ``d = 50, p = 500`` it is slower than the interior
    point wherever that fits in memory (``benchmarks/results/reach.md``), so ``method="auto"``
    picks it only for a problem whose interior-point memory estimate exceeds the machine's
    memory; otherwise ``"auto"`` is the interior point, or ADMM when ``init`` is given. ``max_iters``
    defaults to 20 000 for the matrix-free method; it checks the certificate at every iteration
    (at no extra pass over the data), and ``check_every`` only spaces its ``progress`` calls.

    A problem whose estimated memory for the chosen method exceeds the machine's physical memory
    is refused before any work (``MemoryError`` with the estimate).

    ``intercept=True`` adds an unregularized intercept, ``f = Σ_j D_j X(u_j - v_j) + b`` (both
    losses): ``b`` is profiled out, each trial ``b`` a solve by the chosen method with ``b`` a fixed
    offset of the fit (``ℓ(f + b, y)``; for the squared loss the target ``y - b``), until the
    residual sums to zero; the certificate is the dual bound of the centred residual (the
    intercept's dual constraint ``1ᵀr = 0``), so the gap is that of the intercept program
    (:mod:`convexrelu._intercept`). ``b`` is ``sol.intercept``. It runs on the host: not under
    ``jit``, ``vmap`` or ``grad``. ``c`` squared-loss outputs get one intercept each.

    Returns:
        A :class:`ConvexSolution` (``program = "regularized-<loss>"``) whose ``dual`` is
        ``r = -∇_f ℓ`` at the solution and ``cone_dual`` the cone multipliers ``ν``; the dual
        bound is :func:`convexrelu.regularized_dual_objective`.

    Raises:
        ValueError / TypeError: bad shapes, dtypes, labels/targets, NaN, ``beta ≤ 0``, options.
        RuntimeError: iteration limit or numerical failure (``throw=True``).
        MemoryError: the method's memory estimate exceeds the machine's memory.

    Example:
        >>> sol = cr.solve_regularized(X, y, D, beta=1e-2, loss="squared")
        >>> big = cr.solve_regularized(X_big, y_big, D_big, beta=10.0, method="matrix-free", tol=1e-4)
    """
    if loss not in ("squared", "logistic", "softmax"):
        raise ValueError(f"loss must be 'squared', 'logistic' or 'softmax', got {loss!r}")
    X = check_X(X)
    if loss == "squared" and jnp.ndim(y) == 2:
        return _outputs(
            X, check_outputs(y, X.shape[0], loss, dtype=X.dtype), D, beta=beta, tol=tol, max_iters=max_iters,
            throw=throw, init=init, check_every=check_every, method=method, progress=progress, intercept=intercept,
        )
    y = check_loss_targets(y, X.shape[0], loss, dtype=X.dtype)  # softmax: (c, n), the outputs on the leading axis
    D = check_patterns(D, X.shape[0])
    beta = check_beta(beta)
    if loss == "softmax":
        return _softmax(X, y, D, beta, tol=tol, max_iters=max_iters, throw=throw, init=init, check_every=check_every,
                        method=method, progress=progress, intercept=intercept)
    if intercept:
        return _with_intercept(
            X, y, D, beta, loss, tol=tol, max_iters=max_iters, throw=throw, init=init, check_every=check_every,
            method=method, progress=progress,
        )
    return differentiable_solve(  # implicit gradients in X, y, β (_implicit), around the solve
        _run, X, y, D, beta, f"regularized-{loss}", tol=tol, max_iters=max_iters, throw=throw, init=init,
        check_every=check_every, infeasible_tol=None, method=method, progress=progress,
    )
