"""Programs with c outputs, each output with its own neurons (scnn's convention).

Softmax cross-entropy (gated and ReLU programs) against its cvxpy formulation solved by Clarabel; with
c = 2 it is the binary logistic program (the 2-class fit difference ``f₁ - f₂`` ranges over the
binary program's fits, and the triangle inequality makes the penalty of the difference the
cheapest). Squared loss on one-hot targets with an intercept and c = 2 is the binary squared
program with labels ±1 at 2β: output 1's program is the binary one scaled by ½ (``f₁ = (g + 1)/2``),
output 2's its mirror image, so ``f₁ - f₂ = g`` and the value is half the binary one.
"""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr


@pytest.fixture(scope="module")
def data():
    X = jax.random.normal(jax.random.key(0), (24, 3))
    labels = np.asarray(jnp.argmax(X @ jax.random.normal(jax.random.key(2), (3, 3)), axis=1))
    D = cr.sample_patterns(X, num=6, key=jax.random.key(1))
    return X, labels, D


def _fit(model, X, D, sol):
    if model == "gated":
        return cr.gated_fit(X, D, sol.W)
    if sol.U.ndim == 3:
        return jax.vmap(lambda U, V: cr.convex_fit(X, D, U, V))(sol.U, sol.V)
    return cr.convex_fit(X, D, sol.U, sol.V)


def test_softmax_equals_its_cvxpy_formulation(data):
    X, labels, D = data
    Y, beta = np.eye(3)[labels], 0.5
    sol = cr.solve_gated(X, Y, D, beta=beta, loss="softmax")
    assert sol.ok and sol.W.shape == (3, 6, 3) and sol.dual.shape == (3, 24)
    Xn, Dn = np.asarray(X), np.asarray(D)
    W = [cp.Variable((6, 3)) for _ in range(3)]
    F = cp.vstack([sum(cp.multiply(Dn[j], Xn @ W[k][j]) for j in range(6)) for k in range(3)])
    obj = cp.sum(cp.log_sum_exp(F, axis=0)) - cp.sum(cp.multiply(Y.T, F)) + beta * sum(cp.norm(w[j]) for w in W for j in range(6))
    ref = cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL")
    assert abs(float(sol.value) - ref) <= 1e-5 * ref
    # the network form gives the same fits
    G = jnp.asarray(np.random.default_rng(0).standard_normal((6, 3)))  # any gates: forward = fit on their patterns
    net = cr.GatedNetwork(gates=G, W=sol.W)
    np.testing.assert_allclose(cr.gated_forward(net, X), cr.gated_fit(X, (X @ G.T >= 0).T, sol.W), atol=1e-12)


def test_relu_softmax_equals_its_cvxpy_formulation(data):
    """The ReLU program with the softmax loss (cone constraints on every output's blocks), by the
    matrix-free solver, against Clarabel; its certificate brackets the reference."""
    X, labels, D = data
    Y, beta, p = np.eye(3)[labels], 0.5, D.shape[0]
    sol = cr.solve_regularized(X, Y, D, beta=beta, loss="softmax")
    assert sol.ok and sol.program == "regularized-softmax"
    assert sol.U.shape == (3, p, 3) and sol.dual.shape == (3, 24) and sol.cone_dual.shape == (3, 2, p, 24)
    Xn, Dn = np.asarray(X), np.asarray(D)
    U = [cp.Variable((p, 3)) for _ in range(3)]
    V = [cp.Variable((p, 3)) for _ in range(3)]
    F = cp.vstack([sum(cp.multiply(Dn[j], Xn @ (U[k][j] - V[k][j])) for j in range(p)) for k in range(3)])
    cones = [cp.multiply(2 * Dn[j] - 1, Xn @ B[j]) >= 0 for k in range(3) for B in (U[k], V[k]) for j in range(p)]
    penalty = sum(cp.norm(B[j]) for k in range(3) for B in (U[k], V[k]) for j in range(p))
    obj = cp.sum(cp.log_sum_exp(F, axis=0)) - cp.sum(cp.multiply(Y.T, F)) + beta * penalty
    ref = cp.Problem(cp.Minimize(obj), cones).solve(solver="CLARABEL")
    assert abs(float(sol.value) - ref) <= 1e-5 * ref
    # the certificate: the dual bound of (r, ν) is below the reference, r = Y - softmax(F)
    F_ours = _fit("relu", X, D, sol)
    np.testing.assert_allclose(sol.dual, Y.T - jax.nn.softmax(F_ours, axis=0), atol=1e-12)
    bound = cr.regularized_dual_objective(X, jnp.asarray(Y.T), D, sol.dual, sol.cone_dual, beta=beta, loss="softmax")
    assert float(bound) <= ref * (1 + 1e-9) and float(sol.value) - float(bound) <= 1e-6 * ref
    # the Lagrangian (ν paired with each output's cone values) is the value at the optimum
    L = cr.lagrangian(X, jnp.asarray(Y.T), D, sol.U, sol.V, sol.dual, sol.cone_dual, program="regularized-softmax", beta=beta)
    assert abs(float(L) - float(sol.value)) <= 1e-5 * float(sol.value)
    viol = cr.constraint_violation(X, jnp.asarray(Y.T), D, sol.U, sol.V, program="regularized-softmax")
    assert float(sol.residual) <= 1e-6 and float(viol) == pytest.approx(float(sol.residual), abs=1e-12)


def test_relu_softmax_float32_jit_and_warm_start(data):
    X, labels, D = data
    Y = np.eye(3)[labels]
    ref = cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax")
    s32 = cr.solve_regularized(X.astype(jnp.float32), Y.astype(np.float32), D, beta=0.5, loss="softmax")
    assert s32.ok and s32.U.dtype == jnp.float32 and float(s32.value) == pytest.approx(float(ref.value), rel=1e-4)
    jitted = jax.jit(lambda X: cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax").value)(X)
    assert float(jitted) == pytest.approx(float(ref.value), rel=1e-6)
    near = cr.solve_regularized(X, Y, D, beta=0.45, loss="softmax")
    warm = cr.solve_regularized(X, Y, D, beta=0.45, loss="softmax", init=ref)
    assert warm.ok and float(warm.value) == pytest.approx(float(near.value), rel=2e-6)
    assert int(warm.iterations) < int(near.iterations)
    with pytest.raises(ValueError, match=r"init has U"):
        cr.solve_regularized(X, Y, D, beta=0.45, loss="softmax", init=cr.solve_regularized(X, Y[:, 0], D, beta=0.5))


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_softmax_two_classes_is_the_binary_logistic_program(data, model):
    X, labels, D = data
    y = np.where(labels == 0, 1.0, -1.0)
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    two = solve(X, np.stack([(1 + y) / 2, (1 - y) / 2], 1), D, beta=0.5, loss="softmax")
    binary = solve(X, y, D, beta=0.5, loss="logistic")
    assert float(two.value) == pytest.approx(float(binary.value), rel=2e-6)
    f = _fit(model, X, D, two)
    np.testing.assert_allclose(f[0] - f[1], _fit(model, X, D, binary), atol=1e-3)


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_squared_two_outputs_with_intercept_is_the_binary_program(data, model):
    X, labels, D = data
    y = np.where(labels == 0, 1.0, -1.0)
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    two = solve(X, np.stack([(1 + y) / 2, (1 - y) / 2], 1), D, beta=0.3, intercept=True)
    binary = solve(X, y, D, beta=0.6, intercept=True)
    assert two.ok and np.shape(two.intercept) == (2,)
    assert float(two.value) == pytest.approx(0.5 * float(binary.value), rel=1e-6)
    f = _fit(model, X, D, two) + jnp.asarray(two.intercept)[:, None]
    np.testing.assert_allclose(f[0] - f[1], _fit(model, X, D, binary) + binary.intercept, atol=1e-4)


def test_joint_squared_outputs_equal_the_separate_programs(data):
    X, labels, D = data
    Y = np.eye(3)[labels]
    joint = cr.solve_gated(X, Y, D, beta=0.3)  # one R-FISTA run over (c, p, d) blocks
    separate = [cr.solve_gated(X, Y[:, k], D, beta=0.3) for k in range(3)]
    assert float(joint.value) == pytest.approx(sum(float(s.value) for s in separate), rel=1e-5)


@pytest.mark.parametrize("model, loss", [("relu", "squared"), ("gated", "softmax"), ("relu", "softmax")])
def test_beta_max_of_outputs_is_exact(data, model, loss):
    X, labels, D = data
    Y = np.eye(3)[labels]
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    bmax = float(cr.beta_max(X, Y, D, loss=loss, model=model))
    blocks = (lambda s: [s.W]) if model == "gated" else (lambda s: [s.U, s.V])
    at, below = solve(X, Y, D, beta=bmax, loss=loss), solve(X, Y, D, beta=0.95 * bmax, loss=loss)
    # the zero network's value bounds P* above; the certified gap bounds it below: at β_max P* is
    # the zero network's value, below β_max it is strictly less
    zero = 24 * np.log(3) if loss == "softmax" else 0.5 * float(np.sum(Y**2))
    assert float(at.value) * (1 - 2e-6) <= zero <= float(at.value) * (1 + 1e-9)
    assert float(below.value) < zero * (1 - 1e-4)
    assert max(float(jnp.max(jnp.abs(B))) for B in blocks(below)) > 1e-4
    if not (model == "relu" and loss == "softmax"):  # a first-order method's blocks at β_max are only near zero
        assert max(float(jnp.max(jnp.abs(B))) for B in blocks(at)) <= 1e-7


def test_multiclass_bad_input(data):
    X, labels, D = data
    Y = np.eye(3)[labels]
    with pytest.raises(ValueError, match="one-hot"):
        cr.solve_gated(X, 2.0 * Y, D, beta=0.5, loss="softmax")
    with pytest.raises(ValueError, match="matrix-free"):
        cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax", method="ipm")
    with pytest.raises(ValueError, match="constant feature"):
        cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax", intercept=True)
    with pytest.raises(ValueError, match="one-hot"):
        cr.solve_regularized(X, 2.0 * Y, D, beta=0.5, loss="softmax")
    with pytest.raises(Exception, match="one-hot"):  # traced targets: checked with the compiled program
        jax.jit(lambda Y: cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax", max_iters=5, throw=False).value)(2.0 * Y)
    with pytest.raises(ValueError, match=r"shape \(24, c\)"):
        cr.solve_gated(X, Y[:5], D, beta=0.5, loss="softmax")
    with pytest.raises(NotImplementedError, match="c outputs"):
        jax.grad(lambda X: cr.solve_gated(X, Y, D, beta=0.5, loss="softmax").value)(X)
    with pytest.raises(NotImplementedError, match="c outputs"):
        jax.grad(lambda X: cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax", max_iters=5, throw=False).value)(X)


def test_squared_outputs_stack_under_jit_and_warm_start(data):
    """c separate outputs: the sum of the outputs' programs under jit, and a stacked warm start."""
    X, labels, D = data
    Y = jnp.asarray(np.eye(3)[labels])
    beta = 0.3
    sol = cr.solve_regularized(X, Y, D, beta=beta)
    each = [cr.solve_regularized(X, Y[:, k], D, beta=beta) for k in range(3)]
    assert sol.ok and sol.patterns.shape == D.shape and sol.U.shape == (3, 6, 3)
    assert float(sol.value) == pytest.approx(sum(float(s.value) for s in each), rel=1e-6)
    assert float(sol.gap) == pytest.approx(max(float(s.gap) for s in each))
    jitted = jax.jit(lambda X: cr.solve_regularized(X, Y, D, beta=beta).value)(X)
    assert float(jitted) == pytest.approx(float(sol.value), rel=1e-6)
    warm = cr.solve_regularized(X, Y, D, beta=beta, init=sol)  # each output warm-started from its own blocks
    assert warm.ok and float(warm.value) == pytest.approx(float(sol.value), rel=1e-6)
