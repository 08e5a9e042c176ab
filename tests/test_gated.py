"""The gated ReLU program: R-FISTA against Clarabel through cvxpy, its certificate, β_max, the
network form, the cone decomposition back to ReLU, jit/vmap, float32, warm starts, bad input."""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr


def _problem(n=30, d=4, num=20, seed=0, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    X = jax.random.normal(k1, (n, d), dtype)
    w = jax.random.normal(k2, (d,), dtype)
    y = jnp.sign(X @ w + 0.3 * jnp.sin(3.0 * X[:, 0]))
    D, G = cr.sample_patterns(X, num=num, key=k3, return_gates=True)
    return X, y, D, G


def _cvxpy_gated(X, y, D, beta, loss):
    """The gated program written directly in cvxpy, solved by Clarabel."""
    X, y, D = np.asarray(X), np.asarray(y), np.asarray(D).astype(float)
    p, d = D.shape[0], X.shape[1]
    W = cp.Variable((p, d))
    f = sum(cp.multiply(D[j], X @ W[j]) for j in range(p))
    fit = 0.5 * cp.sum_squares(f - y) if loss == "squared" else cp.sum(cp.logistic(-cp.multiply(y, f)))
    prob = cp.Problem(cp.Minimize(fit + beta * sum(cp.norm(W[j]) for j in range(p))))
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    return prob.value, W.value


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_agrees_with_clarabel(loss):
    X, y, D, _ = _problem()
    beta = 0.1 * float(cr.beta_max(X, y, D, loss=loss, model="gated"))
    sol = cr.solve_gated(X, y, D, beta=beta, loss=loss, tol=1e-8, max_iters=50_000)
    ref, W_ref = _cvxpy_gated(X, y, D, beta, loss)
    assert sol.ok and sol.program == f"gated-{loss}"
    assert abs(float(sol.value) - ref) / abs(ref) <= 1e-5
    # the certificate is the program's own: recomputed from the solution, the gap holds
    opt = cr.gated_optimality(X, y, D, sol.W, sol.dual, beta=beta, loss=loss)
    assert float(opt.gap) <= 1e-8 and float(opt.dual_value) <= ref * (1 + 1e-9)
    f, f_ref = cr.gated_fit(X, D, sol.W), cr.gated_fit(X, D, jnp.asarray(W_ref))
    assert float(jnp.max(jnp.abs(f - f_ref))) <= 1e-4


def test_beta_max_is_exact_for_the_gated_program():
    X, y, D, _ = _problem(seed=1)
    bmax = float(cr.beta_max(X, y, D, loss="squared", model="gated"))
    at = cr.solve_gated(X, y, D, beta=bmax)
    assert int(at.iterations) == 0 and at.ok and float(jnp.max(jnp.abs(at.W))) == 0.0
    below = cr.solve_gated(X, y, D, beta=0.999 * bmax, tol=1e-10)
    assert below.ok and float(jnp.max(jnp.linalg.norm(below.W, axis=1))) > 0


def test_gated_network_form_and_decomposition_to_relu():
    X, y, D, G = _problem(seed=2)
    sol = cr.solve_gated(X, y, D, beta=1.0, tol=1e-9)
    net = cr.GatedNetwork(gates=G, W=sol.W)
    np.testing.assert_allclose(cr.gated_forward(net, X), cr.gated_fit(X, D, sol.W), atol=1e-12)
    relu = cr.gated_to_relu(sol, X, y)
    assert float(relu.residual) <= 1e-9  # u_j, v_j in K_j
    np.testing.assert_allclose(cr.convex_fit(X, D, relu.U, relu.V), cr.gated_fit(X, D, sol.W), atol=1e-9)
    relu_net = jnp.sum(jax.nn.relu(X @ relu.U.T), 1) - jnp.sum(jax.nn.relu(X @ relu.V.T), 1)  # ψ's network on X
    np.testing.assert_allclose(relu_net, cr.gated_fit(X, D, sol.W), atol=1e-8)
    # a feasible point of the ReLU program, scored with a valid (gated) dual bound
    assert float(relu.value) >= float(sol.value) * (1 - 1e-12)
    ref = cr.solve_regularized(X, y, D, beta=1.0, loss="squared")
    assert float(ref.value) >= float(sol.value) * (1 - 1e-7)  # gated is a relaxation
    assert float(relu.value) >= float(ref.value) * (1 - 1e-5)


def test_under_jit_and_vmap_and_warm_start():
    X, y, D, _ = _problem(seed=3)
    betas = jnp.asarray([0.5, 1.0, 2.0])
    batched = jax.vmap(lambda b: cr.solve_gated(X, y, D, beta=b, throw=False))(betas)
    for k, b in enumerate(betas):
        one = cr.solve_gated(X, y, D, beta=float(b))
        assert abs(float(batched.value[k]) - float(one.value)) <= 1e-6 * float(one.value)
    assert np.all(np.asarray(batched.status) == cr.RESULTS.optimal)
    jitted = jax.jit(lambda X: cr.solve_gated(X, y, D, beta=1.0, throw=False).value)(X)
    assert abs(float(jitted) - float(batched.value[1])) <= 1e-6 * float(jitted)
    cold = cr.solve_gated(X, y, D, beta=0.9, check_every=1)
    warm = cr.solve_gated(X, y, D, beta=0.9, check_every=1, init=cr.solve_gated(X, y, D, beta=1.0))
    assert warm.ok and int(warm.iterations) < int(cold.iterations)


def test_float32():
    X, y, D, _ = _problem(seed=4, dtype=jnp.float32)
    sol = cr.solve_gated(X, y, D, beta=1.0, loss="logistic")
    assert sol.ok and sol.W.dtype == jnp.float32 and float(sol.gap) <= 1e-4


def test_bad_input():
    X, y, D, _ = _problem(seed=5)
    with pytest.raises(ValueError, match="loss"):
        cr.solve_gated(X, y, D, beta=1.0, loss="hinge")
    with pytest.raises(ValueError, match="beta"):
        cr.solve_gated(X, y, D, beta=0.0)
    with pytest.raises(ValueError):
        cr.solve_gated(X, y[:-1], D, beta=1.0)
    with pytest.raises(ValueError):
        cr.solve_gated(X, y, D[:, :-1], beta=1.0)
    with pytest.raises(ValueError):
        cr.solve_gated(X.at[0, 0].set(jnp.nan), y, D, beta=1.0)
    with pytest.raises(ValueError):
        cr.solve_gated(X, 0.5 * y, D, beta=1.0, loss="logistic")
    with pytest.raises(ValueError, match="init"):
        cr.solve_gated(X, y, D, beta=1.0, init=jnp.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="max_iters"):
        cr.solve_gated(X, y, D, beta=1e-3, max_iters=2, tol=1e-12)
