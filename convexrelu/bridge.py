"""The convex programs in cvxpy, and as differentiable cvxpylayers layers.

``import convexrelu`` never loads this module (nor cvxpy): write ``from convexrelu import bridge``.
cvxpy and cvxpylayers are imported on first use.

The programs of DESIGN.md (Wang & Pilanci, arXiv 2110.06488; Pilanci & Ergen, arXiv 2002.10553),
with ``f = Σ_j D_j ⊙ X(u_j − v_j)`` and ``K_j = {u : (2D_j − 1) ⊙ Xu ≥ 0}``:

- max-margin ``P* = min Σ_j ‖u_j‖ + ‖v_j‖  s.t.  y ⊙ f ≥ 1,  u_j, v_j ∈ K_j``;
- regularized ``min ℓ(f, y) + β Σ_j ‖u_j‖ + ‖v_j‖  s.t.  u_j, v_j ∈ K_j`` with ``ℓ`` squared
  ``½ Σ (f − y)²`` or logistic ``Σ log(1 + e^{−y f})``.

They are written once per ``(program, n, d, p)`` as DPP cvxpy problems (``problem.is_dpp()``),
parametrized by data blocks computed from ``(X, y, D)``: ``A[i, jd+k] = D_ji X_ik`` (times
``y_i`` where the labels multiply the fit), ``C[jn+i, k] = (2D_ji − 1) X_ik`` and ``β``. DPP
forbids parameter × parameter products, so ``X``, ``y`` and ``D`` are not parameters themselves;
the layers compute the blocks from them in JAX, so gradients reach ``X`` (and ``β``) by the
chain rule. Re-solving for new data reuses the compiled problem.

- :func:`solve_with_cvxpy` solves one problem with a cvxpy solver (Clarabel by default), with
  the data as constants (linear compile cost at any size), and returns the same :class:`~convexrelu.ConvexSolution` as the native solver.
- :func:`max_margin_layer`, :func:`regularized_layer` wrap ``cvxpylayers.jax.CvxpyLayer``:
  callables ``(X, y, D[, beta]) -> (U, V)`` differentiable in ``X`` and ``beta``;
  :func:`optimal_value` is the optimal value as a differentiable function of ``X`` and ``β``.

The layers solve in Python (diffcp), so they cannot run inside ``jax.jit`` or ``jax.vmap``: they
refuse traced inputs with a clear error. Batch with a leading axis instead (``X`` of shape
``(b, n, d)``), or use the native JAX solver (``convexrelu.solve_max_margin``), which jits and
vmaps.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from ._programs import convex_fit, max_margin_infeasibility, negative_loss_gradient, optimality
from ._solution import RESULTS, ConvexSolution
from ._validation import check_patterns, check_targets, check_X, check_y

__all__ = [
    "solve_with_cvxpy",
    "max_margin_layer",
    "regularized_layer",
    "optimal_value",
    "formulation",
]

Program = Literal["max-margin", "regularized"]
_LOSSES = ("squared", "logistic")


# ---------------------------------------------------------------------------------------------
# Formulations
# ---------------------------------------------------------------------------------------------


class Formulation:
    """A DPP cvxpy problem for one program and one size ``(n, d, p)``.

    Attributes:
        name: ``"max-margin"``, ``"regularized-squared"`` or ``"regularized-logistic"``.
        problem: the ``cvxpy.Problem``.
        parameters: the cvxpy Parameters in the order the layers take them
            (``A, C`` for max-margin; ``A, y, C, beta`` squared; ``A, C, beta`` logistic).
        U, V: ``(p, d)`` variables; tU, tV: ``(p,)`` epigraph variables ``t_j ≥ ‖u_j‖``.
        margin: the margin constraint (max-margin only), cones: the two cone constraints, whose
            dual values are ``(p·n,)`` vectors ordered ``j·n + i``.
    """

    def __init__(self, name: str, n: int, d: int, p: int, *, data=None):
        import cvxpy as cp
        import scipy.sparse as sps

        self.name, self.n, self.d, self.p = name, n, d, p
        U, V = cp.Variable((p, d), name="U"), cp.Variable((p, d), name="V")
        tU, tV = cp.Variable(p, name="tU"), cp.Variable(p, name="tV")
        if data is None:  # DPP: the data enter as parameters
            A = cp.Parameter((n, p * d), name="A")  # A[i, j d + k] = D_ji X_ik (× y_i when labelled)
            C = cp.Parameter((p * n, d), name="C")  # C[j n + i, k] = S_ji X_ik
        else:  # the same program with the data as constants (fast to compile at any size)
            A, C = data["A"], data["C"]
        R = sps.kron(sps.eye(p), np.ones((n, 1)), format="csr")  # (p n, p): row j n + i picks block j
        w = cp.vec(U, order="C") - cp.vec(V, order="C")  # (p d,), block j at j d : (j+1) d
        fit = A @ w
        self.cones = [
            cp.sum(cp.multiply(C, R @ U), axis=1) >= 0,  # S_j ⊙ X u_j ≥ 0 for every j
            cp.sum(cp.multiply(C, R @ V), axis=1) >= 0,
        ]
        socs = [cp.SOC(tU, U, axis=1), cp.SOC(tV, V, axis=1)]
        penalty = cp.sum(tU) + cp.sum(tV)
        self.margin = None
        self.y = None
        self.beta = None
        if name == "max-margin":
            self.margin = fit >= 1  # A carries y: y ⊙ f ≥ 1
            problem = cp.Problem(cp.Minimize(penalty), [self.margin, *self.cones, *socs])
            params = [A, C]
        else:
            beta = cp.Parameter(nonneg=True, name="beta") if data is None else data["beta"]
            self.beta = beta if data is None else None
            if name == "regularized-squared":
                y = cp.Parameter(n, name="y") if data is None else data["y"]
                self.y = y if data is None else None
                data_term = 0.5 * cp.sum_squares(fit - y)
                params = [A, y, C, beta]
            elif name == "regularized-logistic":
                data_term = cp.sum(cp.logistic(-fit))  # A carries y: Σ log(1 + e^{−y f})
                params = [A, C, beta]
            else:
                raise ValueError(f"unknown program {name!r}")
            problem = cp.Problem(cp.Minimize(data_term + beta * penalty), [*self.cones, *socs])
        if data is None and not problem.is_dpp():  # pragma: no cover - guards the formulation itself
            raise AssertionError(f"the {name} formulation is not DPP")
        self.problem, self.parameters = problem, params if data is None else []
        self.A, self.C = A, C
        self.U, self.V, self.tU, self.tV = U, V, tU, tV


@functools.lru_cache(maxsize=32)
def formulation(name: str, *, n: int, d: int, p: int) -> Formulation:
    """The cached DPP :class:`Formulation` of program ``name`` for sizes ``(n, d, p)``."""
    return Formulation(name, n, d, p)


def _program_name(program: str, loss: str) -> str:
    if program == "max-margin":
        return "max-margin"
    if program == "regularized":
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
        return f"regularized-{loss}"
    raise ValueError(f"program must be 'max-margin' or 'regularized', got {program!r}")


def _blocks(X, y, D, name: str):
    """The parameter blocks ``A (n, p d)`` and ``C (p n, d)`` from ``(X, y, D)`` (any array module)."""
    xp = jnp if isinstance(X, jax.Array) else np
    n, d = X.shape
    p = D.shape[0]
    Df = D.astype(X.dtype)
    DX = Df[:, :, None] * X[None, :, :]  # (p, n, d)
    A = xp.transpose(DX, (1, 0, 2)).reshape(n, p * d)
    if name != "regularized-squared":
        A = y[:, None] * A
    C = ((2.0 * Df - 1.0)[:, :, None] * X[None, :, :]).reshape(p * n, d)
    return A, C


def _optimality(name, X, y, D, U, V, dual, nu, beta):
    """``(value, gap, residual)`` of a primal-dual pair by :func:`convexrelu.optimality`,
    the one definition of optimality shared with the native solver."""
    opt = optimality(X, y, D, U, V, dual, nu, program=name, beta=None if name == "max-margin" else beta)
    return opt.value, opt.gap, opt.residual


# ---------------------------------------------------------------------------------------------
# Solving with cvxpy
# ---------------------------------------------------------------------------------------------


def _check_inputs(X, y, D, name, beta, *, batched=False):
    """Validate and return ``(X, y, D, beta)`` as JAX arrays; ``batched`` allows a leading axis."""
    Xa = jnp.asarray(X)
    _refuse_tracers(Xa, y, D, beta)
    Xc = jax.lax.stop_gradient(Xa)  # concrete under jax.grad: the value checks still run
    lead = Xa.shape[:1] if batched and Xa.ndim == 3 else ()
    if lead:
        for i in range(Xa.shape[0]):
            check_X(Xc[i], name=f"X[{i}]")
    else:
        check_X(Xc)
    n = Xa.shape[-2]
    ya = jnp.asarray(y)
    yc = jax.lax.stop_gradient(ya)
    if ya.ndim == 2 and lead:
        if ya.shape[0] != lead[0]:
            raise ValueError(f"y has batch size {ya.shape[0]} but X has {lead[0]}")
        rows = [yc[i] for i in range(ya.shape[0])]
    else:
        rows = [yc]
    for row in rows:
        if name == "regularized-squared":
            check_targets(row, n, name="y")
        else:
            check_y(row, n, name="y")
    Da = jnp.asarray(D)
    if Da.ndim == 3 and lead:
        if Da.shape[0] != lead[0]:
            raise ValueError(f"D has batch size {Da.shape[0]} but X has {lead[0]}")
        Da = jnp.stack([check_patterns(Da[i], n) for i in range(Da.shape[0])])
    else:
        Da = check_patterns(Da, n)
    if name == "max-margin":
        if beta is not None:
            raise ValueError("beta is not used by the max-margin program; pass program='regularized'")
        b = None
    else:
        if beta is None:
            raise ValueError("the regularized program needs beta > 0")
        b = jnp.asarray(beta)
        if b.ndim > (1 if lead else 0) or (b.ndim == 1 and b.shape[0] != lead[0]):
            raise ValueError(f"beta must be a scalar{' or (b,)' if lead else ''}, got shape {b.shape}")
        bv = np.asarray(jax.lax.stop_gradient(b))
        if not np.all(np.isfinite(bv)) or np.any(bv <= 0):
            raise ValueError(f"beta must be finite and > 0, got {bv.tolist()}")
    if not jnp.issubdtype(Xa.dtype, jnp.floating):  # integer data: cast (the _validation policy)
        Xa = Xa.astype(jnp.zeros(()).dtype)
    return Xa, ya.astype(Xa.dtype), Da, b


_CLARABEL_TOLERANCES = {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10}

_STATUS = {
    "optimal": RESULTS.optimal,
    "infeasible": RESULTS.infeasible,
    "infeasible_inaccurate": RESULTS.infeasible,
    "unbounded": RESULTS.unbounded,
    "unbounded_inaccurate": RESULTS.unbounded,
    "user_limit": RESULTS.max_iters,
    "optimal_inaccurate": RESULTS.numerical_error,  # kept only if the measured gap says otherwise
}


def _farkas_ray(X, y, D, solver):
    """A normalized certificate ``μ ≥ 0, 1ᵀμ = 1`` that the max-margin program is infeasible.

    Farkas: ``y ⊙ f ≥ 1`` has no solution in the cones iff some ``μ ≥ 0, μ ≠ 0`` makes
    ``μᵀ(y ⊙ f) ≤ 0`` on every cone, i.e. ``Xᵀ(D_j ⊙ y ⊙ μ) + Xᵀ(S_j ⊙ ν⁰_j) = 0`` and
    ``−Xᵀ(D_j ⊙ y ⊙ μ) + Xᵀ(S_j ⊙ ν¹_j) = 0`` with ``ν ≥ 0``. Solved as a feasibility LP.
    """
    import cvxpy as cp

    p, n = D.shape
    S = 2.0 * D - 1.0
    mu = cp.Variable(n, nonneg=True)
    nu0, nu1 = cp.Variable((p, n), nonneg=True), cp.Variable((p, n), nonneg=True)
    Dz = D @ cp.diag(cp.multiply(y, mu))  # row j: D_j ⊙ y ⊙ μ
    cons = [cp.sum(mu) == 1, (Dz + cp.multiply(S, nu0)) @ X == 0, (-Dz + cp.multiply(S, nu1)) @ X == 0]
    prob = cp.Problem(cp.Minimize(0), cons)
    prob.solve(solver=solver)
    if prob.status not in ("optimal", "optimal_inaccurate"):
        return np.zeros(n), np.zeros((2, p, n))
    return np.maximum(mu.value, 0.0), np.stack([np.maximum(nu0.value, 0.0), np.maximum(nu1.value, 0.0)])


def solve_with_cvxpy(
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    D: Bool[Array, "p n"],
    *,
    program: Program = "max-margin",
    beta: float | None = None,
    loss: Literal["squared", "logistic"] = "squared",
    solver: str = "CLARABEL",
    tol: float = 1e-6,
    **solver_options,
) -> ConvexSolution:
    """Solve the max-margin or regularized convex program with cvxpy.

    Max-margin: ``P* = min Σ_j ‖u_j‖ + ‖v_j‖  s.t.  y ⊙ Σ_j D_j ⊙ X(u_j − v_j) ≥ 1, u_j, v_j ∈ K_j``
    (Wang & Pilanci, arXiv 2110.06488). Regularized: ``min ℓ(f, y) + β Σ_j ‖u_j‖ + ‖v_j‖,
    u_j, v_j ∈ K_j`` (Pilanci & Ergen, arXiv 2002.10553). The problem is built with the data as
    constants (the same expressions as the DPP :class:`Formulation` of the layers), so cvxpy's
    compilation is linear in the problem size.

    Args:
        X: data ``(n, d)``. y: labels ``(n,)`` in {−1, +1} (real targets allowed for
            ``loss="squared"``). D: activation patterns, boolean ``(p, n)``.
        program: ``"max-margin"`` or ``"regularized"``.
        beta: regularization strength ``β > 0`` (regularized program only).
        loss: ``"squared"`` or ``"logistic"`` (regularized program only).
        solver: a cvxpy solver name (``"CLARABEL"``, ``"SCS"``, ...).
        tol: an ``optimal_inaccurate`` solve counts as optimal when its gap and residual are below.
        **solver_options: passed to ``problem.solve``.

    Returns:
        A :class:`~convexrelu.ConvexSolution` in ``X``'s dtype: ``U, V``, ``value``, ``dual``
        (margin multipliers ``μ ≥ 0``, or ``r = −∇_f ℓ`` for the regularized program), ``cone_dual``
        ``(2, p, n)``, ``gap``, ``residual``, ``status`` (cvxpy's status mapped to the codes of
        :func:`convexrelu.status_name`), ``iterations``, ``beta``, ``program``. An infeasible
        max-margin problem gives ``U = V = 0``, ``value = +inf``, in ``dual`` a Farkas certificate
        ``μ ≥ 0, 1ᵀμ = 1`` with its cone multipliers in ``cone_dual``, and in ``gap`` its Farkas
        residual (:func:`convexrelu.max_margin_infeasibility`), as the native solver.

    Raises:
        ValueError: bad shapes, labels not ±1, NaN entries, a missing or non-positive ``beta``.
        TypeError: non-floating ``X``.

    Example:
        >>> from convexrelu import bridge
        >>> sol = bridge.solve_with_cvxpy(X, y, D)            # max-margin, P* = sol.value
        >>> sol = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=1e-2, loss="logistic")
    """
    import cvxpy as cp

    name = _program_name(program, loss)
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
    _refuse_tracers(X, y, D, beta)
    if any(isinstance(a, jax.core.Tracer) for a in (X, y, D, beta)):
        raise TypeError(
            "solve_with_cvxpy is not differentiable: for gradients use bridge.optimal_value or "
            "bridge.max_margin_layer / regularized_layer, or the envelope theorem "
            "(convexrelu.value_gradient) on its solution"
        )
    Xj, yj, Dj, bj = _check_inputs(X, y, D, name, beta)
    Xn = np.asarray(Xj, dtype=np.float64)
    yn = np.asarray(yj, dtype=np.float64)
    Dn = np.asarray(Dj, dtype=np.float64)
    (n, d), p = Xn.shape, Dn.shape[0]
    bn = 0.0 if bj is None else float(bj)
    A, C = _blocks(Xn, yn, Dn, name)
    # constants, not the DPP parameters: cvxpy's parametric canonicalization of the cone rows grows
    # as (p n d)², which does not fit in memory past p·n ≈ 10^4; with constants it is linear.
    form = Formulation(name, n, d, p, data={"A": A, "C": C, "y": yn, "beta": bn})
    if solver.upper() == "CLARABEL":  # tighter than Clarabel's 1e-8: the exp cone needs it for 1e-8 gaps
        solver_options = {**_CLARABEL_TOLERANCES, **solver_options}
    try:
        form.problem.solve(solver=solver, **solver_options)
        cvx_status = form.problem.status
    except cp.error.SolverError:
        cvx_status = "solver_error"
    stats = form.problem.solver_stats
    iters = int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0
    problem = _SolvedProblem(name=name, X=Xj, y=yj, D=Dj, beta=bn, iterations=iters)
    if form.U.value is None or cvx_status not in ("optimal", "optimal_inaccurate"):
        return _failed_solution(problem, _STATUS.get(cvx_status, RESULTS.numerical_error), solver)
    return _solution_of(problem, form, loss, cvx_status, tol)


class _SolvedProblem(NamedTuple):
    """One problem handed to cvxpy: the checked data, ``β`` (0 for max-margin), cvxpy's iterations."""

    name: str
    X: Array
    y: Array
    D: Array
    beta: float
    iterations: int


def _pack_solution(problem: _SolvedProblem, U, V, value, dual, nu, gap, residual, status) -> ConvexSolution:
    """A :class:`~convexrelu.ConvexSolution` in ``X``'s dtype from host arrays."""
    dtype = problem.X.dtype
    return ConvexSolution(
        U=jnp.asarray(U, dtype=dtype),
        V=jnp.asarray(V, dtype=dtype),
        patterns=problem.D,
        value=jnp.asarray(value, dtype=dtype),
        dual=jnp.asarray(dual, dtype=dtype),
        cone_dual=jnp.asarray(nu, dtype=dtype),
        gap=jnp.asarray(gap, dtype=dtype),
        residual=jnp.asarray(residual, dtype=dtype),
        status=jnp.asarray(status, dtype=jnp.int32),
        iterations=jnp.asarray(problem.iterations, dtype=jnp.int32),
        beta=jnp.asarray(problem.beta, dtype=dtype),
        program=problem.name,
    )


def _measure(problem: _SolvedProblem, U, V, dual, nu):
    """``(value, gap, residual)`` of a primal-dual pair, measured like the native solver's."""
    dtype = problem.X.dtype
    U, V, dual, nu = (jnp.asarray(a, dtype=dtype) for a in (U, V, dual, nu))
    beta = jnp.asarray(problem.beta, dtype=dtype)
    return _optimality(problem.name, problem.X, problem.y, problem.D, U, V, dual, nu, beta)


def _failed_solution(problem: _SolvedProblem, status, solver) -> ConvexSolution:
    """The solution of a solve without values: zero blocks, and a Farkas ray when infeasible."""
    p, n = problem.D.shape
    d = problem.X.shape[1]
    zeros, no_dual = np.zeros((p, d)), (np.zeros(n), np.zeros((2, p, n)))
    if status == RESULTS.infeasible and problem.name == "max-margin":
        dtype = problem.X.dtype
        Xn, yn, Dn = (np.asarray(a, dtype=np.float64) for a in (problem.X, problem.y, problem.D))
        mu, nu = _farkas_ray(Xn, yn, Dn, solver)
        residual = _measure(problem, zeros, zeros, *no_dual)[2]
        farkas = max_margin_infeasibility(
            problem.X, problem.y, problem.D, jnp.asarray(mu, dtype=dtype), jnp.asarray(nu, dtype=dtype)
        )
        return _pack_solution(problem, zeros, zeros, np.inf, mu, nu, farkas, residual, RESULTS.infeasible)
    if status == RESULTS.optimal:  # an optimal status without values: a numerical failure
        status = RESULTS.numerical_error
    value, _, residual = _measure(problem, zeros, zeros, *no_dual)
    if problem.name == "max-margin":
        value = np.inf
    return _pack_solution(problem, zeros, zeros, value, *no_dual, np.inf, residual, status)


def _solution_of(problem: _SolvedProblem, form: Formulation, loss, cvx_status, tol) -> ConvexSolution:
    """The solution from the solved formulation's values, its gap and residual measured.

    ``dual`` is the margin multiplier ``μ`` (max-margin) or ``r = -∇_f ℓ`` at the solution's fit
    (regularized). An ``optimal_inaccurate`` solve whose gap and residual are ``≤ tol`` succeeds.
    """
    p, n = problem.D.shape
    dtype = problem.X.dtype
    U, V = np.asarray(form.U.value), np.asarray(form.V.value)
    nu = np.stack([np.asarray(c.dual_value).reshape(p, n) for c in form.cones])
    if problem.name == "max-margin":
        dual = np.asarray(form.margin.dual_value)
    else:
        f = convex_fit(problem.X, problem.D, jnp.asarray(U, dtype=dtype), jnp.asarray(V, dtype=dtype))
        dual = negative_loss_gradient(f, problem.y, loss)
    value, gap, residual = _measure(problem, U, V, dual, nu)
    status = _STATUS.get(cvx_status, RESULTS.numerical_error)
    if cvx_status == "optimal_inaccurate" and float(gap) <= tol and float(residual) <= tol:
        status = RESULTS.optimal
    return _pack_solution(problem, U, V, value, dual, nu, gap, residual, status)


# ---------------------------------------------------------------------------------------------
# Differentiable layers (cvxpylayers)
# ---------------------------------------------------------------------------------------------

_TRACER_MESSAGE = (
    "convexrelu.bridge solves in Python with cvxpy/diffcp and cannot run inside jax.jit or "
    "jax.vmap (got a traced {what}). Call the layer eagerly (jax.grad is fine), batch with a "
    "leading axis instead of vmap (X of shape (b, n, d)), or use the native JAX solver "
    "(convexrelu.solve_max_margin / convexrelu.solve_regularized), which jits and vmaps."
)


def _refuse_tracers(*arrays):
    """Raise when an input is traced by ``jit``/``vmap`` (``grad`` alone is allowed).

    Under ``jax.grad`` the inputs are tracers that carry concrete values; stripping the
    derivative (``stop_gradient``) gives a concrete array. Under ``jit`` or ``vmap`` it does not.
    """
    for a in arrays:
        if a is None:
            continue
        if isinstance(a, jax.core.Tracer) and isinstance(jax.lax.stop_gradient(a), jax.core.Tracer):
            raise TypeError(_TRACER_MESSAGE.format(what=f"array of shape {a.shape}"))


# serial solves (diffcp's process pool only adds overhead at these sizes), Clarabel, tight tolerances
_DIFFCP_ARGS = {"solve_method": "Clarabel", "n_jobs_forward": 1, **_CLARABEL_TOLERANCES}


class _Layer:
    """A cvxpylayers layer of one formulation: ``(X, y, D[, beta]) -> (U, V)`` (see the factories)."""

    def __init__(self, name: str, n: int, d: int, p: int, solver_args: dict | None):
        from cvxpylayers.jax import CvxpyLayer

        self.name, self.n, self.d, self.p = name, n, d, p
        self.form = Formulation(name, n, d, p)  # its own copy: diffcp canonicalizes differently
        f = self.form
        self.layer = CvxpyLayer(
            f.problem,
            parameters=f.parameters,
            variables=[f.U, f.V, f.tU, f.tV],
            solver_args={**_DIFFCP_ARGS, **(solver_args or {})},
        )

    def solve(self, X, y, D, beta=None):
        """``(U, V, tU, tV)``, batched over a leading axis when ``X`` is ``(b, n, d)``."""
        X, y, D, beta = _check_inputs(X, y, D, self.name, beta, batched=True)
        if X.shape[-2:] != (self.n, self.d) or D.shape[-2:] != (self.p, self.n):
            raise ValueError(
                f"this layer was built for X ({self.n}, {self.d}) and D ({self.p}, {self.n}); "
                f"got X {X.shape} and D {D.shape}"
            )
        batched = X.ndim == 3
        if batched:
            b = X.shape[0]
            yb = jnp.broadcast_to(y, (b, self.n))
            Db = jnp.broadcast_to(D, (b, self.p, self.n))
            A, C = jax.vmap(lambda X_, y_, D_: _blocks(X_, y_, D_, self.name))(X, yb, Db)
        else:
            A, C = _blocks(X, y, D, self.name)
        if self.name == "max-margin":
            args = (A, C)
        elif self.name == "regularized-squared":
            args = (A, y, C, beta.astype(X.dtype))
        else:
            args = (A, C, beta.astype(X.dtype))
        U, V, tU, tV = self.layer(*args)
        if self.name == "max-margin":
            self._check_feasible(A, U, V)
        return U.astype(X.dtype), V.astype(X.dtype), tU.astype(X.dtype), tV.astype(X.dtype)

    def _check_feasible(self, A, U, V):
        """diffcp does not report infeasibility: check the margins of the returned point."""
        A_, U_, V_ = (np.asarray(jax.lax.stop_gradient(a)) for a in (A, U, V))
        lead = U_.shape[:-2]
        w = (U_ - V_).reshape(lead + (-1,))
        margins = np.einsum("...ik,...k->...i", A_, w)
        if np.any(~np.isfinite(margins)) or np.min(margins) < 1.0 - 1e-4:
            raise ValueError(
                "the max-margin program has no solution for these patterns (or the solver failed): "
                f"the returned point has margin {float(np.nanmin(margins)):.3g} < 1. "
                "Use bridge.solve_with_cvxpy for a status and an infeasibility certificate."
            )

    def __call__(self, X, y, D, beta=None):
        U, V, _, _ = self.solve(X, y, D, beta)
        return U, V

    def value(self, X, y, D, beta=None):
        """The optimal value, differentiable in ``X`` and ``beta`` (``(b,)`` when batched)."""
        U, V, tU, tV = self.solve(X, y, D, beta)
        penalty = jnp.sum(tU, axis=-1) + jnp.sum(tV, axis=-1)  # t_j = ‖u_j‖ at the optimum, smooth in t
        if self.name == "max-margin":
            return penalty
        X = jnp.asarray(X)
        y = jnp.asarray(y).astype(X.dtype)
        D = jnp.asarray(D).astype(X.dtype)
        f = jnp.sum(D * jnp.swapaxes(X @ jnp.swapaxes(U - V, -1, -2), -1, -2), axis=-2)
        y = jnp.broadcast_to(y, f.shape)
        if self.name == "regularized-squared":
            data = 0.5 * jnp.sum((f - y) ** 2, axis=-1)
        else:
            data = jnp.sum(jax.nn.softplus(-y * f), axis=-1)  # log(1 + e^{−y f}), stable
        return data + jnp.asarray(beta).astype(X.dtype) * penalty


@functools.lru_cache(maxsize=16)
def _cached_layer(name, n, d, p, solver_items):
    return _Layer(name, n, d, p, dict(solver_items))


def _layer(name, n, d, p, solver_args):
    for k, v in (("n", n), ("d", d), ("p", p)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{k} must be a positive Python int, got {v!r}")
    items = tuple(sorted((solver_args or {}).items()))
    return _cached_layer(name, n, d, p, items)


def max_margin_layer(*, n: int, d: int, p: int, solver_args: dict | None = None):
    """A differentiable max-margin solver ``(X, y, D) -> (U, V)`` (cvxpylayers + diffcp).

    Solves ``min Σ_j ‖u_j‖ + ‖v_j‖ s.t. y ⊙ Σ_j D_j ⊙ X(u_j − v_j) ≥ 1, u_j, v_j ∈ K_j``
    (Wang & Pilanci, arXiv 2110.06488) and differentiates the solution implicitly (Agrawal et al.,
    "Differentiable Convex Optimization Layers", 2019), so ``jax.grad`` reaches ``X``. Built once
    per ``(n, d, p)`` and cached.

    Args:
        n, d, p: the sizes (keyword-only Python ints).
        solver_args: options for diffcp (default: Clarabel, serial).

    Returns:
        A callable ``layer(X, y, D) -> (U, V)``. ``X`` may carry a leading batch axis
        ``(b, n, d)`` (with ``y`` ``(n,)`` or ``(b, n)``, ``D`` ``(p, n)`` or ``(b, p, n)``); the
        outputs then have shape ``(b, p, d)``. Raises ``TypeError`` inside ``jit``/``vmap`` and
        ``ValueError`` on bad input or an infeasible program.

    Example:
        >>> layer = bridge.max_margin_layer(n=10, d=3, p=12)
        >>> U, V = layer(X, y, D)
        >>> G = jax.grad(lambda X: jnp.sum(layer(X, y, D)[0]))(X)
    """
    return _layer("max-margin", n, d, p, solver_args)


def regularized_layer(
    *, n: int, d: int, p: int, loss: Literal["squared", "logistic"] = "squared", solver_args: dict | None = None
):
    """A differentiable regularized solver ``(X, y, D, beta) -> (U, V)`` (cvxpylayers + diffcp).

    Solves ``min ℓ(Σ_j D_j ⊙ X(u_j − v_j), y) + β Σ_j ‖u_j‖ + ‖v_j‖, u_j, v_j ∈ K_j`` (Pilanci &
    Ergen, arXiv 2002.10553), differentiable in ``X`` and ``beta``. Batching, errors and caching as
    in :func:`max_margin_layer`; ``beta`` is a scalar or ``(b,)``.
    """
    return _layer(_program_name("regularized", loss), n, d, p, solver_args)


def optimal_value(
    X: Float[Array, "*b n d"],
    y: Float[Array, "*b n"],
    D: Bool[Array, "*b p n"],
    *,
    program: Program = "max-margin",
    beta=None,
    loss: Literal["squared", "logistic"] = "squared",
    solver_args: dict | None = None,
) -> Float[Array, "*b"]:
    """The optimal value ``P*(X, β)`` as a differentiable function of ``X`` and ``beta``.

    Max-margin ``P* = Σ_j t_j`` with the layer's epigraph variables ``t_j = ‖u_j‖``; regularized
    ``ℓ(f(X; U, V), y) + β Σ_j t_j``. Gradients go through the layer (implicit differentiation),
    and agree with the envelope theorem (:func:`convexrelu.value_gradient`).
    ``γ* = 1/(2P*)`` is the best normalized margin of the max-margin program.

    Example:
        >>> dP = jax.grad(lambda X: bridge.optimal_value(X, y, D))(X)
        >>> dbeta = jax.grad(lambda b: bridge.optimal_value(X, y, D, program="regularized", beta=b))(0.1)
    """
    name = _program_name(program, loss)
    Xs = jnp.shape(X)
    if len(Xs) not in (2, 3):
        raise ValueError(f"X must be (n, d) or (b, n, d), got shape {Xs}")
    n, d = Xs[-2:]
    p = jnp.shape(D)[-2] if jnp.ndim(D) >= 2 else 0
    if p < 1:
        raise ValueError(f"D must be (p, {n}) with p ≥ 1, got shape {jnp.shape(D)}")
    layer = _layer(name, int(n), int(d), int(p), solver_args)
    return layer.value(X, y, D, beta)
