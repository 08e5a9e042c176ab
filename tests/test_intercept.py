"""The unregularized intercept of the regularized programs (convexrelu/_intercept.py).

The intercept program ``min ℓ(Σ_j D_j X(u_j - v_j) + b, y) + β Σ‖·‖`` (cones as before, and the
gated program's ``Σ_j D_j X w_j + b``), squared and logistic loss, against its own cvxpy formulation
solved by Clarabel, and the identities of an unregularized intercept: the residuals sum to zero,
shifting ``y`` shifts only ``b``, and the optimum is at most the program's without intercept.
"""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr


@pytest.fixture(scope="module")
def problem():
    X = jax.random.normal(jax.random.key(3), (24, 3))
    y = jnp.sin(X @ jnp.array([1.0, -2.0, 0.5])) + 3.0
    D = cr.sample_patterns(X, num=8, key=jax.random.key(1))
    return X, y, D, 0.1


def _cvxpy(X, y, D, beta, model):
    X, y, D = map(np.asarray, (X, y, D))
    p, d = D.shape[0], X.shape[1]
    b = cp.Variable()
    if model == "gated":
        W = cp.Variable((p, d))
        f = sum(cp.multiply(D[j], X @ W[j]) for j in range(p)) + b
        penalty, cons = sum(cp.norm(W[j]) for j in range(p)), []
    else:
        U, V = cp.Variable((p, d)), cp.Variable((p, d))
        f = sum(cp.multiply(D[j], X @ (U[j] - V[j])) for j in range(p)) + b
        penalty = sum(cp.norm(U[j]) + cp.norm(V[j]) for j in range(p))
        cons = [cp.multiply(2 * D[j] - 1, X @ Z[j]) >= 0 for j in range(p) for Z in (U, V)]
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(f - y) + beta * penalty), cons)
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    return prob.value, float(b.value)


@pytest.mark.parametrize("method", ["ipm", "admm"])
def test_relu_intercept_program_equals_its_cvxpy_formulation(problem, method):
    X, y, D, beta = problem
    ref, b_ref = _cvxpy(X, y, D, beta, "relu")
    sol = cr.solve_regularized(X, y, D, beta=beta, intercept=True, method=method)
    assert sol.ok and float(sol.gap) <= 1e-6
    assert abs(float(sol.value) - ref) <= 1e-5 * ref
    assert abs(float(sol.intercept) - b_ref) <= 1e-4 * abs(b_ref)
    assert abs(float(jnp.sum(sol.dual))) <= 1e-9 * float(jnp.linalg.norm(sol.dual))  # the dual's 1ᵀr = 0
    # the fit plus b reproduces the reported objective
    f = cr.convex_fit(X, D, sol.U, sol.V) + sol.intercept
    pen = jnp.sum(jnp.linalg.norm(sol.U, axis=1) + jnp.linalg.norm(sol.V, axis=1))
    assert float(0.5 * jnp.sum((f - y) ** 2) + beta * pen) == pytest.approx(float(sol.value), rel=1e-10)


def test_gated_intercept_program_equals_its_cvxpy_formulation(problem):
    X, y, D, beta = problem
    ref, b_ref = _cvxpy(X, y, D, beta, "gated")
    sol = cr.solve_gated(X, y, D, beta=beta, intercept=True)
    assert sol.ok and abs(float(sol.value) - ref) <= 1e-5 * ref
    assert abs(float(sol.intercept) - b_ref) <= 1e-4 * abs(b_ref)


def test_intercept_identities(problem):
    X, y, D, beta = problem
    sol = cr.solve_regularized(X, y, D, beta=beta, intercept=True)
    shifted = cr.solve_regularized(X, y + 7.0, D, beta=beta, intercept=True)
    assert float(shifted.intercept) == pytest.approx(float(sol.intercept) + 7.0, abs=1e-5)
    assert float(shifted.value) == pytest.approx(float(sol.value), rel=1e-5)
    plain = cr.solve_regularized(X, y, D, beta=beta)
    assert float(sol.value) <= float(plain.value) * (1 + 1e-6)  # b = 0 is feasible for the intercept program


def test_intercept_bad_use(problem):
    X, y, D, beta = problem
    onehot = jax.nn.one_hot(jnp.arange(X.shape[0]) % 3, 3)
    with pytest.raises(ValueError, match="softmax"):
        cr.solve_gated(X, onehot, D, beta=beta, loss="softmax", intercept=True)
    with pytest.raises(ValueError, match="outside jit"):
        jax.jit(lambda y: cr.solve_regularized(X, y, D, beta=beta, intercept=True).value)(y)


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_beta_max_with_intercept_is_exact(problem, model):
    X, y, D, _ = problem
    bmax = float(cr.beta_max(X, y, D, model=model, intercept=True))
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    blocks = (lambda s: [s.W]) if model == "gated" else (lambda s: [s.U, s.V])
    at = solve(X, y, D, beta=bmax, intercept=True)
    below = solve(X, y, D, beta=0.95 * bmax, intercept=True)
    assert max(float(jnp.max(jnp.abs(B))) for B in blocks(at)) <= 1e-6  # zero network, b = mean(y)
    assert float(at.intercept) == pytest.approx(float(jnp.mean(y)), rel=1e-8)
    assert max(float(jnp.max(jnp.abs(B))) for B in blocks(below)) > 1e-4


def test_path_with_intercept_predicts_with_it(problem):
    X, y, D, _ = problem
    path = cr.regularization_path(X, y, D, num=4, min_ratio=0.05, intercept=True)
    assert all(s == "optimal" for s in path.status)
    assert path.solutions[0].intercept == pytest.approx(float(jnp.mean(y)))
    assert np.all(np.diff(path.group_norm) >= -1e-8)  # the group norm grows as β decreases
    # R² of the predictions (the intercept added) against the objective's loss term
    ss = float(jnp.sum((y - jnp.mean(y)) ** 2))
    r2 = 1.0 - 2.0 * (path.objective - path.betas * path.group_norm) / ss
    np.testing.assert_allclose(path.train_score, r2, atol=1e-6)


def test_gated_logistic_intercept_equals_its_cvxpy_formulation():
    X = jax.random.normal(jax.random.key(3), (30, 3))
    y = jnp.where(X[:, 0] + 0.3 * X[:, 1] ** 2 > 0.6, 1.0, -1.0)  # unbalanced: the intercept matters
    D = cr.sample_patterns(X, num=8, key=jax.random.key(1))
    sol = cr.solve_gated(X, y, D, beta=0.5, loss="logistic", intercept=True)
    Xn, Dn, yn = map(np.asarray, (X, D, y))
    W, b = cp.Variable((8, 3)), cp.Variable()
    f = sum(cp.multiply(Dn[j], Xn @ W[j]) for j in range(8)) + b
    obj = cp.sum(cp.logistic(-cp.multiply(yn, f))) + 0.5 * sum(cp.norm(W[j]) for j in range(8))
    ref = cp.Problem(cp.Minimize(obj)).solve(solver="CLARABEL")
    assert sol.ok and abs(float(sol.value) - ref) <= 1e-5 * ref
    assert float(sol.intercept) == pytest.approx(float(b.value), abs=1e-4)
    assert abs(float(jnp.sum(sol.dual))) <= 1e-9 * float(jnp.linalg.norm(sol.dual))  # 1ᵀr = 0
    # β_max at the log-odds intercept is exact
    bmax = float(cr.beta_max(X, y, D, loss="logistic", model="gated", intercept=True))
    zero = cr.solve_gated(X, y, D, beta=bmax, loss="logistic", intercept=True)
    assert float(jnp.max(jnp.abs(zero.W))) <= 1e-6
    assert float(zero.intercept) == pytest.approx(float(np.log(np.sum(yn > 0) / np.sum(yn < 0))), abs=1e-6)
    below = cr.solve_gated(X, y, D, beta=0.95 * bmax, loss="logistic", intercept=True)
    assert float(jnp.max(jnp.abs(below.W))) > 1e-4


@pytest.fixture(scope="module")
def unbalanced():
    X = jax.random.normal(jax.random.key(3), (30, 3))
    y = jnp.where(X[:, 0] + 0.3 * X[:, 1] ** 2 > 0.6, 1.0, -1.0)  # a boundary off the origin
    return X, y, cr.sample_patterns(X, num=8, key=jax.random.key(1)), 0.5


@pytest.fixture(scope="module")
def relu_logistic_reference(unbalanced):
    X, y, D, beta = unbalanced
    Xn, Dn, yn = map(np.asarray, (X, D, y))
    p, d = Dn.shape[0], Xn.shape[1]
    U, V, b = cp.Variable((p, d)), cp.Variable((p, d)), cp.Variable()
    f = sum(cp.multiply(Dn[j], Xn @ (U[j] - V[j])) for j in range(p)) + b
    cons = [cp.multiply(2 * Dn[j] - 1, Xn @ Z[j]) >= 0 for j in range(p) for Z in (U, V)]
    obj = cp.sum(cp.logistic(-cp.multiply(yn, f))) + beta * sum(cp.norm(U[j]) + cp.norm(V[j]) for j in range(p))
    return cp.Problem(cp.Minimize(obj), cons).solve(solver="CLARABEL"), float(b.value)


@pytest.mark.parametrize("method", ["ipm", "admm", "matrix-free"])
def test_relu_logistic_intercept_equals_its_cvxpy_formulation(unbalanced, relu_logistic_reference, method):
    X, y, D, beta = unbalanced
    ref, b_ref = relu_logistic_reference
    sol = cr.solve_regularized(X, y, D, beta=beta, loss="logistic", intercept=True, method=method)
    assert sol.ok and float(sol.gap) <= 1e-6
    assert abs(float(sol.value) - ref) <= 1e-5 * ref
    assert float(sol.intercept) == pytest.approx(b_ref, abs=1e-4)
    assert abs(float(jnp.sum(sol.dual))) <= 1e-9 * float(jnp.linalg.norm(sol.dual))  # 1ᵀr = 0
    # the reported value is the objective at (U, V, b)
    f = cr.convex_fit(X, D, sol.U, sol.V) + sol.intercept
    pen = jnp.sum(jnp.linalg.norm(sol.U, axis=1) + jnp.linalg.norm(sol.V, axis=1))
    assert float(jnp.sum(jax.nn.softplus(-y * f)) + beta * pen) == pytest.approx(float(sol.value), rel=1e-10)
    assert float(sol.value) < float(cr.solve_regularized(X, y, D, beta=beta, loss="logistic").value)


def test_relu_logistic_beta_max_with_intercept_is_exact(unbalanced):
    X, y, D, _ = unbalanced
    bmax = float(cr.beta_max(X, y, D, loss="logistic", intercept=True))
    at = cr.solve_regularized(X, y, D, beta=bmax, loss="logistic", intercept=True)
    below = cr.solve_regularized(X, y, D, beta=0.95 * bmax, loss="logistic", intercept=True)
    pos, neg = int(jnp.sum(y > 0)), int(jnp.sum(y < 0))
    b0 = float(np.log(pos / neg))  # the zero network's intercept: the log-odds
    zero = pos * float(jax.nn.softplus(-b0)) + neg * float(jax.nn.softplus(b0))
    # at β_max the zero network (at the log-odds) is optimal; an interior point approaches it to the
    # certified gap (its weights are O(√gap): the objective grows quadratically there)
    assert float(at.value) == pytest.approx(zero, rel=2e-6)
    assert float(at.intercept) == pytest.approx(b0, abs=1e-2)
    # below it the optimum is strictly lower than the zero network's value, beyond the gap
    assert float(below.value) < zero * (1 - 10 * float(below.gap)) and float(below.value) < zero - 1e-3


def _max_margin_reference(X, y, D):
    Xn, Dn, yn = map(np.asarray, (X, D, y))
    p, d = Dn.shape[0], Xn.shape[1]
    U, V, b = cp.Variable((p, d)), cp.Variable((p, d)), cp.Variable()
    f = sum(cp.multiply(Dn[j], Xn @ (U[j] - V[j])) for j in range(p)) + b
    cons = [cp.multiply(2 * Dn[j] - 1, Xn @ Z[j]) >= 0 for j in range(p) for Z in (U, V)] + [cp.multiply(yn, f) >= 1]
    value = cp.Problem(cp.Minimize(sum(cp.norm(U[j]) + cp.norm(V[j]) for j in range(p))), cons).solve(solver="CLARABEL")
    return value, float(b.value)


@pytest.mark.parametrize(
    ("seed", "threshold"),
    [(3, 0.6), (4, 0.0), (5, 1.0)],
    ids=["infeasible-without-intercept", "feasible-without", "optimum-at-the-feasible-boundary"],
)
def test_max_margin_intercept_equals_its_cvxpy_formulation(seed, threshold):
    X = jax.random.normal(jax.random.key(seed), (30, 3))
    y = jnp.where(X[:, 0] + 0.3 * X[:, 1] ** 2 > threshold, 1.0, -1.0)
    D = cr.sample_patterns(X, num=8, key=jax.random.key(1))
    ref, b_ref = _max_margin_reference(X, y, D)
    sol = cr.solve_max_margin(X, y, D, intercept=True)
    assert sol.ok and float(sol.gap) <= 1e-6 and float(sol.residual) <= 1e-6
    assert abs(float(sol.value) - ref) <= 2e-6 * ref
    assert float(sol.intercept) == pytest.approx(b_ref, abs=1e-3)
    # the certificate's multipliers satisfy the intercept's dual constraint yᵀμ = 0
    assert abs(float(jnp.sum(y * sol.dual))) <= 1e-9 * float(jnp.sum(sol.dual))
    f = cr.convex_fit(X, D, sol.U, sol.V) + sol.intercept
    assert float(jnp.min(y * f)) >= 1 - 1e-6  # the margins, with b
    plain = cr.solve_max_margin(X, y, D, throw=False)
    assert float(sol.value) <= float(plain.value) * (1 + 1e-6)  # b = 0 is feasible when plain is (else inf)
    # flipping the labels flips the intercept (swap u and v: f ↦ -f at the same cost)
    flipped = cr.solve_max_margin(X, -y, D, intercept=True)
    assert float(flipped.value) == pytest.approx(float(sol.value), rel=2e-6)
    assert float(flipped.intercept) == pytest.approx(-float(sol.intercept), abs=1e-3)


def test_max_margin_intercept_infeasible_and_bad_use():
    X = jnp.array([[1.0, 0.5], [1.0, 0.5], [-0.3, 1.0], [0.2, -1.0]])
    y = jnp.array([1.0, -1.0, 1.0, -1.0])  # a point with both labels: no fit separates it, whatever b
    D = cr.enumerate_patterns(X)
    sol = cr.solve_max_margin(X, y, D, intercept=True, throw=False)
    assert sol.status_name == "infeasible"
    with pytest.raises(ValueError, match="infeasible"):
        cr.solve_max_margin(X, y, D, intercept=True)
    with pytest.raises(ValueError, match="outside jit"):
        jax.jit(lambda X: cr.solve_max_margin(X, y, D, intercept=True).value)(X)
    # two points that no pattern activates (f = 0 there), of opposite labels: b ≥ 1 and b ≤ -1
    X2 = jax.random.normal(jax.random.key(0), (12, 3))
    y2 = jnp.where(X2[:, 0] > 0, 1.0, -1.0).at[0].set(1.0).at[1].set(-1.0)
    D2 = cr.sample_patterns(X2, num=10, key=jax.random.key(1)).at[:, :2].set(False)
    assert cr.solve_max_margin(X2, y2, D2, intercept=True, throw=False).status_name == "infeasible"
    # one label only: the zero network with b ≥ 1 is optimal, P* = 0
    ones = cr.solve_max_margin(X2, jnp.ones(12), D2, intercept=True)
    assert float(ones.value) <= 1e-6 and float(ones.intercept) >= 1 - 1e-6
