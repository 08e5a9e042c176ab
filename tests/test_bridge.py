"""The cvxpy / cvxpylayers bridge: reference agreement, gradients, errors, batching.

Small problems only (cvxpylayers differentiates through diffcp in Python, which is slow).
"""

from __future__ import annotations

import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convexrelu import bridge
from convexrelu._programs import convex_fit, max_margin_infeasibility, optimality
from convexrelu._sensitivity import solution_lagrangian, value_derivative_beta, value_gradient
from convexrelu._solution import RESULTS

from convexrelu._solver import solve_max_margin, solve_regularized

from _reference import max_margin_reference, regularized_reference

N, DIM, P = 10, 2, 10
BETA = 0.1
NATIVE_TOL = 1e-8  # the native ADMM solver's gap/violation tolerance for the cross-checks


def _problem(seed=0, n=N, d=DIM, p=P):
    """Random data, ±1 labels and p random (distinct) hyperplane-arrangement patterns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(rng.standard_normal(n) >= 0, 1.0, -1.0)
    G = rng.standard_normal((d, 4 * p))
    D = np.unique((X @ G >= 0).T, axis=0)[:p]
    assert D.shape[0] == p
    return jnp.asarray(X), jnp.asarray(y), jnp.asarray(D)


@functools.lru_cache(maxsize=None)
def _native_max_margin(seed):
    """The native solver's max-margin solution of ``_problem(seed)`` (shared by tests: ADMM is slow at 1e-8)."""
    return solve_max_margin(*_problem(seed), tol=NATIVE_TOL)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(b)))))


# ------------------------------------------------------------------------------------------
# solve_with_cvxpy against the independent reference formulation
# ------------------------------------------------------------------------------------------


def test_formulations_are_dpp():
    for name in ("max-margin", "regularized-squared", "regularized-logistic"):
        assert bridge.formulation(name, n=N, d=DIM, p=P).problem.is_dpp()


def test_max_margin_matches_reference():
    X, y, D = _problem(0)
    sol = bridge.solve_with_cvxpy(X, y, D)
    ref_value, ref_U, ref_V, ref_mu = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and sol.program == "max-margin"
    assert abs(float(sol.value) - ref_value) <= 1e-6 * ref_value
    assert float(sol.gap) < 1e-7 and float(sol.residual) < 1e-7
    # the margin multipliers are the reference's, and 1ᵀμ = P* (strong duality)
    assert np.max(np.abs(np.asarray(sol.dual) - ref_mu)) <= 1e-5 * max(1.0, np.max(ref_mu))
    assert abs(float(jnp.sum(sol.dual)) - ref_value) <= 1e-6 * ref_value
    assert float(jnp.min(sol.dual)) >= -1e-9 and float(jnp.min(sol.cone_dual)) >= -1e-9
    # the fields are consistent with the one definition of optimality
    opt = optimality(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual, program="max-margin")
    assert float(opt.gap) == pytest.approx(float(sol.gap), abs=1e-12)
    # the Lagrangian at the primal-dual pair equals the optimal value
    assert float(solution_lagrangian(sol, X, y)) == pytest.approx(ref_value, rel=1e-6)
    assert sol.cone_dual.shape == (2, P, N) and sol.U.shape == (P, DIM)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_regularized_matches_reference(loss):
    X, y, D = _problem(1)
    sol = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=BETA, loss=loss)
    ref_value, _, _ = regularized_reference(X, y, D, beta=BETA, loss=loss)
    assert sol.status == RESULTS.optimal and sol.program == f"regularized-{loss}"
    assert abs(float(sol.value) - ref_value) <= 1e-6 * ref_value
    assert float(sol.gap) < 1e-5 and float(sol.residual) < 1e-7
    assert float(sol.beta) == BETA
    assert float(solution_lagrangian(sol, X, y)) == pytest.approx(ref_value, rel=1e-6)


def test_regularized_squared_accepts_real_targets():
    X, _, D = _problem(2)
    t = jnp.asarray(np.random.default_rng(2).standard_normal(N))
    sol = bridge.solve_with_cvxpy(X, t, D, program="regularized", beta=BETA)
    ref_value, _, _ = regularized_reference(X, t, D, beta=BETA, loss="squared")
    assert abs(float(sol.value) - ref_value) <= 1e-6 * ref_value


def test_float32_inputs_give_float32_solution():
    X, y, D = _problem(0)
    sol = bridge.solve_with_cvxpy(X.astype(jnp.float32), y.astype(jnp.float32), D)
    assert sol.U.dtype == jnp.float32 and sol.value.dtype == jnp.float32
    ref_value = max_margin_reference(X, y, D)[0]
    assert abs(float(sol.value) - ref_value) <= 1e-5 * ref_value


def test_infeasible_max_margin_reports_status_and_farkas_ray():
    # two copies of one point with opposite labels: no function separates them
    X, y, D = _problem(3)
    X = X.at[1].set(X[0])
    y = y.at[0].set(1.0).at[1].set(-1.0)
    D = jnp.asarray(np.unique((np.asarray(X) @ np.random.default_rng(0).standard_normal((DIM, 40)) >= 0).T, axis=0)[:P])
    assert D.shape == (P, N)
    sol = bridge.solve_with_cvxpy(X, y, D)
    assert sol.status == RESULTS.infeasible and sol.status_name == "infeasible"
    assert np.isinf(float(sol.value)) and not np.any(np.isnan(np.asarray(sol.U)))
    assert float(jnp.sum(sol.dual)) == pytest.approx(1.0, abs=1e-8)
    assert float(max_margin_infeasibility(X, y, D, sol.dual, sol.cone_dual)) < 1e-7
    assert float(sol.gap) == pytest.approx(float(max_margin_infeasibility(X, y, D, sol.dual, sol.cone_dual)))
    layer = bridge.max_margin_layer(n=N, d=DIM, p=P)
    with pytest.raises(ValueError, match="no solution"):
        layer(X, y, D)


def test_native_max_margin_matches_bridge():
    X, y, D = _problem(0)
    bridged, native = bridge.solve_with_cvxpy(X, y, D), _native_max_margin(0)
    assert abs(float(native.value) - float(bridged.value)) <= 1e-6 * float(bridged.value)
    assert _rel(native.dual, bridged.dual) < 1e-5
    assert _rel(value_gradient(native, X, y), value_gradient(bridged, X, y)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_native_regularized_matches_bridge(loss):
    X, y, D = _problem(1)
    bridged = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=BETA, loss=loss)
    native = solve_regularized(X, y, D, beta=BETA, loss=loss, tol=NATIVE_TOL)
    assert abs(float(native.value) - float(bridged.value)) <= 1e-6 * float(bridged.value)
    assert _rel(value_gradient(native, X, y), value_gradient(bridged, X, y)) < 1e-4
    assert float(value_derivative_beta(native)) == pytest.approx(float(value_derivative_beta(bridged)), rel=1e-4)


# ------------------------------------------------------------------------------------------
# Envelope-theorem gradients (_sensitivity) against finite differences of the reference
# ------------------------------------------------------------------------------------------


def _direction(seed, shape):
    E = np.random.default_rng(100 + seed).standard_normal(shape)
    return E / np.linalg.norm(E)


def test_value_gradient_matches_reference_finite_differences():
    X, y, D = _problem(4)
    sol = bridge.solve_with_cvxpy(X, y, D)
    G = np.asarray(value_gradient(sol, X, y))
    E, h = _direction(4, X.shape), 1e-4
    fd = (max_margin_reference(X + h * E, y, D)[0] - max_margin_reference(X - h * E, y, D)[0]) / (2 * h)
    assert float(np.sum(G * E)) == pytest.approx(fd, rel=1e-4, abs=1e-6 * np.linalg.norm(G))


def test_value_derivative_beta_matches_reference_finite_differences():
    X, y, D = _problem(5)
    sol = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=BETA)
    h = 1e-5
    fd = (regularized_reference(X, y, D, beta=BETA + h)[0] - regularized_reference(X, y, D, beta=BETA - h)[0]) / (2 * h)
    assert float(value_derivative_beta(sol)) == pytest.approx(fd, rel=1e-4)
    with pytest.raises(ValueError, match="regularized"):
        value_derivative_beta(bridge.solve_with_cvxpy(X, y, D))


# ------------------------------------------------------------------------------------------
# Layers: gradients through cvxpylayers
# ------------------------------------------------------------------------------------------


def test_layer_solution_matches_solve_with_cvxpy():
    X, y, D = _problem(0)
    U, V = bridge.max_margin_layer(n=N, d=DIM, p=P)(X, y, D)
    sol = bridge.solve_with_cvxpy(X, y, D)
    assert float(jnp.sum(jnp.linalg.norm(U, axis=1)) + jnp.sum(jnp.linalg.norm(V, axis=1))) == pytest.approx(
        float(sol.value), rel=1e-6
    )
    assert float(bridge.optimal_value(X, y, D)) == pytest.approx(float(sol.value), rel=1e-6)


@functools.lru_cache(maxsize=None)
def _layer_value_gradient(seed):
    """``∂P*/∂X`` of ``_problem(seed)`` differentiated through the max-margin layer (shared)."""
    X, y, D = _problem(seed)
    return jax.grad(lambda X_: bridge.optimal_value(X_, y, D))(X)


def test_layer_value_gradient_matches_envelope_theorem():
    X, y, D = _problem(0)
    sol = bridge.solve_with_cvxpy(X, y, D)
    assert _rel(_layer_value_gradient(0), value_gradient(sol, X, y)) < 1e-3


def test_layer_value_gradient_matches_native_envelope_theorem():
    X, y, D = _problem(0)
    assert _rel(_layer_value_gradient(0), value_gradient(_native_max_margin(0), X, y)) < 1e-3


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_regularized_layer_gradients_match_envelope_theorem(loss):
    X, y, D = _problem(6)
    f = lambda X_, b: bridge.optimal_value(X_, y, D, program="regularized", beta=b, loss=loss)  # noqa: E731
    gX, gb = jax.grad(f, argnums=(0, 1))(X, jnp.asarray(BETA))
    sol = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=BETA, loss=loss)
    assert _rel(gX, value_gradient(sol, X, y)) < 1e-3
    assert float(gb) == pytest.approx(float(value_derivative_beta(sol)), rel=1e-3)


def test_layer_gradient_of_solution_matches_finite_differences():
    # ∂/∂X of a function of the minimizer (not only of the value) through implicit
    # differentiation. With the squared loss the fit f = Σ_j D_j ⊙ X(u_j − v_j) is unique
    # (strictly convex in f) even where the blocks U, V are not, so it is differentiable.
    X, y, D = _problem(7)
    layer = bridge.regularized_layer(n=N, d=DIM, p=P, loss="squared")
    w = jnp.asarray(np.random.default_rng(7).standard_normal(N))

    def obj(X_):
        U, V = layer(X_, y, D, BETA)
        return jnp.sum(w * convex_fit(X_, D, U, V))

    G = jax.grad(obj)(X)
    E, h = jnp.asarray(_direction(7, X.shape)), 1e-5
    fd = (float(obj(X + h * E)) - float(obj(X - h * E))) / (2 * h)
    assert float(jnp.sum(G * E)) == pytest.approx(fd, rel=1e-4, abs=1e-6 * float(jnp.linalg.norm(G)))


@pytest.mark.slow
def test_layer_batch_axis_equals_loop():
    probs = [_problem(s) for s in (8, 9)]
    Xb = jnp.stack([p[0] for p in probs])
    yb = jnp.stack([p[1] for p in probs])
    Db = jnp.stack([p[2] for p in probs])
    layer = bridge.regularized_layer(n=N, d=DIM, p=P, loss="squared")
    betas = jnp.asarray([BETA, 2 * BETA])
    Ub, Vb = layer(Xb, yb, Db, betas)
    assert Ub.shape == (2, P, DIM)
    for i, (X, y, D) in enumerate(probs):
        U, V = layer(X, y, D, betas[i])
        assert _rel(Ub[i], U) < 1e-6 and _rel(Vb[i], V) < 1e-6
    vals = bridge.optimal_value(Xb, yb, Db, program="regularized", beta=betas)
    for i, (X, y, D) in enumerate(probs):
        ref = regularized_reference(X, y, D, beta=float(betas[i]))[0]
        assert float(vals[i]) == pytest.approx(ref, rel=1e-6)


def test_layer_refuses_jit_and_vmap_with_clear_message():
    X, y, D = _problem(0)
    layer = bridge.max_margin_layer(n=N, d=DIM, p=P)
    with pytest.raises(TypeError, match="jax.jit or jax.vmap.*native JAX solver"):
        jax.jit(lambda X_: layer(X_, y, D)[0])(X)
    with pytest.raises(TypeError, match="leading axis"):
        jax.vmap(lambda X_: layer(X_, y, D)[0])(jnp.stack([X, X]))
    with pytest.raises(TypeError, match="convexrelu.solve_max_margin"):
        jax.jit(lambda X_: bridge.optimal_value(X_, y, D))(X)
    with pytest.raises(TypeError, match="jax.jit or jax.vmap"):
        jax.jit(lambda X_: bridge.solve_with_cvxpy(X_, y, D).value)(X)
    with pytest.raises(TypeError, match="not differentiable"):
        jax.grad(lambda X_: bridge.solve_with_cvxpy(X_, y, D).value)(X)
    with pytest.raises(ValueError, match="NaN"):  # value checks still run under jax.grad
        jax.grad(lambda X_: bridge.optimal_value(X_, y, D))(X.at[0, 0].set(jnp.nan))


# ------------------------------------------------------------------------------------------
# Input errors
# ------------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    X, y, D = _problem(0)
    with pytest.raises(ValueError, match="must have shape"):
        bridge.solve_with_cvxpy(X, y[:-1], D)
    with pytest.raises(ValueError, match="±1"):
        bridge.solve_with_cvxpy(X, 2.0 * y, D)
    with pytest.raises(ValueError, match="NaN"):
        bridge.solve_with_cvxpy(X.at[0, 0].set(jnp.nan), y, D)
    with pytest.raises(ValueError, match="patterns"):
        bridge.solve_with_cvxpy(X, y, D[:, :-1])
    with pytest.raises(ValueError, match="beta"):
        bridge.solve_with_cvxpy(X, y, D, program="regularized")
    with pytest.raises(ValueError, match="beta"):
        bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=-1.0)
    with pytest.raises(ValueError, match="beta is not used"):
        bridge.solve_with_cvxpy(X, y, D, beta=0.1)
    with pytest.raises(ValueError, match="program"):
        bridge.solve_with_cvxpy(X, y, D, program="lasso")
    with pytest.raises(ValueError, match="loss"):
        bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=0.1, loss="hinge")
    with pytest.raises(TypeError, match="float16"):
        bridge.solve_with_cvxpy(jnp.ones((N, DIM), dtype=jnp.float16), y, D)
    with pytest.raises(ValueError, match="built for"):
        bridge.max_margin_layer(n=N, d=DIM, p=P)(X[:, :1], y, D)
    with pytest.raises(ValueError, match="positive Python int"):
        bridge.max_margin_layer(n=N, d=DIM, p=0)
    sol = bridge.solve_with_cvxpy(X, y, D)
    with pytest.raises(ValueError, match="±1"):
        value_gradient(sol, X, 3.0 * y)


def test_bridge_import_is_lazy():
    code = (
        "import sys\n"
        "import convexrelu\n"
        "assert 'cvxpy' not in sys.modules\n"
        "from convexrelu import bridge\n"
        "print(','.join(m for m in ('cvxpy', 'cvxpylayers', 'diffcp') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
