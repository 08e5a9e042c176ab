"""Programs with c outputs, each output with its own neurons (scnn's convention).

Softmax cross-entropy (gated program) against its cvxpy formulation solved by Clarabel; with
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


def test_softmax_two_classes_is_the_binary_logistic_program(data):
    X, labels, D = data
    y = np.where(labels == 0, 1.0, -1.0)
    two = cr.solve_gated(X, np.stack([(1 + y) / 2, (1 - y) / 2], 1), D, beta=0.5, loss="softmax")
    binary = cr.solve_gated(X, y, D, beta=0.5, loss="logistic")
    assert float(two.value) == pytest.approx(float(binary.value), rel=1e-6)
    f = cr.gated_fit(X, D, two.W)
    np.testing.assert_allclose(f[0] - f[1], cr.gated_fit(X, D, binary.W), atol=1e-4)


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


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_beta_max_of_outputs_is_exact(data, model):
    X, labels, D = data
    Y = np.eye(3)[labels]
    loss = "softmax" if model == "gated" else "squared"
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    bmax = float(cr.beta_max(X, Y, D, loss=loss, model=model))
    blocks = (lambda s: [s.W]) if model == "gated" else (lambda s: [s.U, s.V])
    assert max(float(jnp.max(jnp.abs(B))) for B in blocks(solve(X, Y, D, beta=bmax, loss=loss))) <= 1e-7
    assert max(float(jnp.max(jnp.abs(B))) for B in blocks(solve(X, Y, D, beta=0.95 * bmax, loss=loss))) > 1e-4


def test_multiclass_bad_input(data):
    X, labels, D = data
    Y = np.eye(3)[labels]
    with pytest.raises(ValueError, match="one-hot"):
        cr.solve_gated(X, 2.0 * Y, D, beta=0.5, loss="softmax")
    with pytest.raises(ValueError, match="gated program"):
        cr.solve_regularized(X, Y, D, beta=0.5, loss="softmax")
    with pytest.raises(ValueError, match=r"shape \(24, c\)"):
        cr.solve_gated(X, Y[:5], D, beta=0.5, loss="softmax")
    with pytest.raises(NotImplementedError, match="multi-output"):
        jax.grad(lambda X: cr.solve_gated(X, Y, D, beta=0.5, loss="softmax").value)(X)


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
