"""Implicit gradients of the regularized programs' solutions (convexrelu._implicit).

Each gradient of ``U, V, value, dual`` with respect to ``X``, ``y`` and ``β`` is checked against a
central finite difference of the solver along a random direction (relative 1e-4, float64); the
envelope formula (``value_gradient``), ``jit``, ``vmap``, the refusal of a non-optimal solution,
the all-zero solution and (slow) the cvxpylayers layer are checked too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import _implicit

N, DIM, P = 16, 3, 10
BETA = {"squared": 0.3, "logistic": 0.1}
TOL = 1e-10  # the solver's tolerance for the finite differences (the points it differences)
EPS = 1e-4  # the finite-difference step, relative to the variable's scale
OUTPUTS = ("U", "V", "value", "dual")


SEED = {"squared": 0, "logistic": 1}  # logistic seed 0 has a cone row 2e-3 from tight: FD off by 5e-3


@functools.cache
def problem(loss, seed=None):
    """Random data, targets (real for the squared loss, ±1 for the logistic) and distinct patterns."""
    seed = SEED[loss] if seed is None else seed
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, DIM))
    w = rng.standard_normal(DIM)
    if loss == "squared":
        y = np.maximum(X @ w, 0.0) - 0.5 * np.maximum(-X @ w, 0.0) + 0.1 * rng.standard_normal(N)
    else:
        y = np.where(np.maximum(X @ w, 0) - 0.3 + 0.3 * rng.standard_normal(N) >= 0, 1.0, -1.0)
    G = rng.standard_normal((DIM, 8 * P))
    D = np.unique((X @ G >= 0).T, axis=0)[:P]
    assert D.shape[0] == P
    return jnp.asarray(X), jnp.asarray(y), jnp.asarray(D)


def weights(seed=1):
    """Random weights of the scalar test functions of the outputs."""
    rng = np.random.default_rng(seed)
    return {
        "U": jnp.asarray(rng.standard_normal((P, DIM))),
        "V": jnp.asarray(rng.standard_normal((P, DIM))),
        "value": jnp.asarray(1.0),
        "dual": jnp.asarray(rng.standard_normal(N)),
    }


def scalar(output, loss, X, y, beta, D, tol=None):
    """``⟨c, output⟩`` of the solution at ``(X, y, β)``."""
    sol = cr.solve_regularized(X, y, D, beta=beta, loss=loss, tol=tol)
    return jnp.sum(weights()[output] * getattr(sol, output))


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-8)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_gradients_match_finite_differences(loss):
    X, y, D = problem(loss)
    beta = BETA[loss]
    rng = np.random.default_rng(2)
    dX = jnp.asarray(rng.standard_normal(X.shape))
    dy = jnp.asarray(rng.standard_normal(y.shape))
    act = _implicit.active_set(cr.solve_regularized(X, y, D, beta=beta, loss=loss, tol=TOL), X, y)
    assert int(jnp.sum(act.blocks)) >= 2  # (logistic seed 1 has a weakly active row: flagged degenerate)
    errors = {}
    for out in OUTPUTS:
        f = functools.partial(scalar, out, loss, D=D, tol=TOL)
        gX, gy, gb = jax.grad(f, argnums=(0, 1, 2))(X, y, beta)
        assert all(np.all(np.isfinite(g)) for g in (gX, gy, gb))
        fd = lambda t, dX=0.0, dy=0.0, db=0.0: f(X + t * dX, y + t * dy, beta + t * db)  # noqa: E731
        errors[out, "X"] = _rel((fd(EPS, dX=dX) - fd(-EPS, dX=dX)) / (2 * EPS), jnp.vdot(gX, dX))
        errors[out, "beta"] = _rel((fd(EPS * beta, db=1.0) - fd(-EPS * beta, db=1.0)) / (2 * EPS * beta), gb)
        if loss == "squared":  # real targets; the logistic labels are ±1
            errors[out, "y"] = _rel((fd(EPS, dy=dy) - fd(-EPS, dy=dy)) / (2 * EPS), jnp.vdot(gy, dy))
    print({k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) < 1e-4, errors


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_value_gradient_is_the_envelope_formula(loss):
    X, y, D = problem(loss)
    beta = BETA[loss]
    sol = cr.solve_regularized(X, y, D, beta=beta, loss=loss, tol=1e-9)
    gX, gb = jax.grad(lambda X, b: cr.solve_regularized(X, y, D, beta=b, loss=loss, tol=1e-9).value, argnums=(0, 1))(X, beta)
    np.testing.assert_allclose(gX, cr.value_gradient(sol, X, y), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gb, cr.value_derivative_beta(sol), rtol=1e-5)


def _loss_of_solution(X, y, D, beta):
    sol = cr.solve_regularized(X, y, D, beta=beta, loss="squared")
    c = {k: v.astype(X.dtype) for k, v in weights().items()}
    return jnp.sum(c["U"] * sol.U) + sol.value + jnp.sum(c["dual"] * sol.dual)


def test_jit_and_vmap_equal_eager():
    X, y, D = problem("squared")
    grad = jax.grad(_loss_of_solution, argnums=(0, 1, 3))
    eager = grad(X, y, D, 0.3)
    jitted = jax.jit(grad)(X, y, D, 0.3)
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
    betas = jnp.asarray([0.3, 0.5])
    Xs = jnp.stack([X, 1.1 * X])
    batched = jax.vmap(grad, in_axes=(0, None, None, 0))(Xs, y, D, betas)
    for k in range(2):
        single = grad(Xs[k], y, D, betas[k])
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a[k], b, rtol=1e-6, atol=1e-9)


def test_non_optimal_solution_refuses_to_differentiate():
    X, y, D = problem("squared")

    def f(X):
        sol = cr.solve_regularized(X, y, D, beta=0.3, max_iters=1, throw=False)
        return jnp.sum(sol.U)

    assert float(jnp.abs(f(X))) >= 0  # the forward pass returns (throw=False)
    with pytest.raises(Exception, match="not optimal"):
        jax.block_until_ready(jax.grad(f)(X))
    with pytest.raises(Exception, match="not optimal"):
        jax.block_until_ready(jax.jit(jax.grad(f))(X))


def test_zero_solution_has_zero_block_gradients():
    """β above the largest dual norm: every block is zero (inactive); ∂U = 0, ∂value/∂y = y."""
    X, y, D = problem("squared")
    beta = 10.0 * float(jnp.max(jnp.linalg.norm(X, axis=1))) * float(jnp.sum(jnp.abs(y)))
    sol = cr.solve_regularized(X, y, D, beta=beta)
    assert float(jnp.max(jnp.abs(sol.U))) < 1e-8
    gU = jax.grad(lambda X: jnp.sum(weights()["U"] * cr.solve_regularized(X, y, D, beta=beta).U))(X)
    assert np.all(gU == 0.0)
    gy = jax.grad(lambda y: cr.solve_regularized(X, y, D, beta=beta).value)(y)
    np.testing.assert_allclose(gy, y, rtol=1e-6, atol=1e-8)
    assert not bool(_implicit.active_set(sol, X, y).degenerate)


def test_float32_gradients_follow_float64():
    X, y, D = problem("squared")
    g64 = jax.grad(_loss_of_solution)(X, y, D, 0.3)
    g32 = jax.grad(_loss_of_solution)(X.astype(jnp.float32), y.astype(jnp.float32), D, 0.3)
    assert g32.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(g32.astype(jnp.float64) - g64))) <= 2e-2 * float(jnp.max(jnp.abs(g64)))


@pytest.mark.slow
def test_agrees_with_cvxpylayers():
    bridge = pytest.importorskip("convexrelu.bridge")
    pytest.importorskip("cvxpylayers")
    X, y, D = problem("squared")
    layer = bridge.regularized_layer(n=N, d=DIM, p=P, loss="squared")
    c = weights()

    def theirs(X):
        U, V = layer(X, y, D, jnp.asarray(0.3))
        return jnp.sum(c["U"] * U) + jnp.sum(c["V"] * V)

    def ours(X):
        sol = cr.solve_regularized(X, y, D, beta=0.3, tol=1e-9)
        return jnp.sum(c["U"] * sol.U) + jnp.sum(c["V"] * sol.V)

    g_ours, g_theirs = jax.grad(ours)(X), jax.grad(theirs)(X)
    assert float(jnp.max(jnp.abs(g_ours - g_theirs))) <= 1e-4 * float(jnp.max(jnp.abs(g_theirs)))


def max_margin_problem(seed=0, n=N, d=DIM, p=P):
    """Labels of a two-neuron ReLU teacher (separable on the teacher's own patterns, which ``D``
    contains), plus sampled distinct patterns: seed 0 has a unique, non-degenerate solution."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w1, w2 = rng.standard_normal((2, d))
    y = np.where(np.maximum(X @ w1, 0) - np.maximum(X @ w2, 0) >= 0, 1.0, -1.0)
    G = np.concatenate([np.stack([w1, w2], 1), rng.standard_normal((d, 8 * p))], 1)
    D = (X @ G >= 0).T
    _, first = np.unique(D, axis=0, return_index=True)
    D = D[np.sort(first)][:p]
    return jnp.asarray(X), jnp.asarray(y), jnp.asarray(D)


def test_max_margin_gradients_match_finite_differences_and_transpose():
    """∂(U, V, P*, μ)/∂X of the max-margin program: jacrev against central differences (relative
    1e-4) and against jvp (the transpose identity ⟨jvp(t), c⟩ = ⟨t, vjp(c)⟩, to rounding)."""
    X, y, D = max_margin_problem()
    sol = cr.solve_max_margin(X, y, D, tol=TOL)
    act = cr.active_set(sol, X, y)
    assert not bool(act.degenerate) and int(jnp.sum(act.margins)) >= 2 and int(jnp.sum(act.rows)) >= 1
    rng = np.random.default_rng(1)
    c = [jnp.asarray(rng.standard_normal(a.shape)) for a in (sol.U, sol.V, sol.value, sol.dual)]

    def outs(X):
        s = cr.solve_max_margin(X, y, D, tol=TOL)
        return jnp.stack([jnp.sum(w * o) for w, o in zip(c, (s.U, s.V, s.value, s.dual))])

    dX = jnp.asarray(rng.standard_normal(X.shape))
    f = jax.jit(outs)
    fd = (f(X + 1e-5 * dX) - f(X - 1e-5 * dX)) / 2e-5
    rev = jnp.einsum("knd,nd->k", jax.jit(jax.jacrev(outs))(X), dX)
    fwd = jax.jit(lambda X, t: jax.jvp(outs, (X,), (t,))[1])(X, dX)
    np.testing.assert_allclose(rev, fd, rtol=1e-4)
    np.testing.assert_allclose(rev, fwd, rtol=1e-10)
    gX = jax.grad(lambda X: cr.solve_max_margin(X, y, D, tol=TOL).value)(X)
    np.testing.assert_allclose(gX, cr.value_gradient(sol, X, y), rtol=1e-5, atol=1e-7)
    gy = jax.grad(lambda y: cr.solve_max_margin(X, y, D, tol=TOL).value)(y)
    assert np.all(gy == 0.0)  # ±1 labels: no derivative in y


def test_kkt_solve_inverts_the_kkt_matrix():
    """The matrix-free solve against the dense KKT matrix built from kkt_matvec (max-margin)."""
    from jax.flatten_util import ravel_pytree

    X, y, D = max_margin_problem()
    sol = cr.solve_max_margin(X, y, D, tol=TOL)
    W = jnp.stack([sol.U, sol.V])
    system, _ = _implicit.kkt_system(X, y, D, W, sol.dual, sol.cone_dual, jnp.zeros(()), _implicit.KINDS["max-margin"])
    flat, unravel = ravel_pytree((W, sol.dual, sol.cone_dual))
    K = jax.vmap(lambda v: ravel_pytree(_implicit.kkt_matvec(system, unravel(v)))[0])(jnp.eye(flat.size)).T
    np.testing.assert_allclose(K, K.T, atol=1e-12)
    b = jnp.asarray(np.random.default_rng(0).standard_normal(flat.size))
    z = ravel_pytree(_implicit.kkt_solve(system, unravel(b))[0])[0]
    np.testing.assert_allclose(z, jnp.linalg.solve(K, b), rtol=1e-8, atol=1e-10)


def test_regularized_jvp_is_the_transpose_of_vjp():
    X, y, D = problem("squared")
    rng = np.random.default_rng(3)
    t = (jnp.asarray(rng.standard_normal(X.shape)), jnp.asarray(rng.standard_normal(y.shape)), jnp.asarray(1.0))
    c = weights()

    def outs(X, y, b):
        s = cr.solve_regularized(X, y, D, beta=b, tol=TOL)
        return jnp.stack([jnp.sum(c[k] * getattr(s, k)) for k in OUTPUTS])

    fwd = jax.jvp(outs, (X, y, 0.3), t)[1]
    J = jax.jacrev(outs, argnums=(0, 1, 2))(X, y, 0.3)
    rev = sum(jnp.tensordot(Jk, tk, axes=tk.ndim) for Jk, tk in zip(J, t))
    np.testing.assert_allclose(rev, fwd, rtol=1e-9)


def test_reverse_mode_in_beta_alone_matches_finite_differences():
    # differentiating in β only leaves the X-part of the KKT right-hand side constant: the adjoint
    # solve must still transpose (the bilevel β-tuning of the differentiable_layers notebook)
    X, y, D = problem("squared")

    def f(log_beta):
        return scalar("U", "squared", X, y, jnp.exp(log_beta), D, tol=TOL)

    lb, h = jnp.log(BETA["squared"]), 1e-5
    fd = (f(lb + h) - f(lb - h)) / (2 * h)
    assert _rel(jax.grad(f)(lb), fd) <= 1e-4
    assert _rel(jax.jit(jax.grad(f))(lb), fd) <= 1e-4


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_gated_gradients_match_finite_differences(loss):
    """∂(W, P*, r)/∂(X, y, β) of the gated program (one block group, no cones) against central
    differences of R-FISTA solved to 1e-11 (relative 1e-4), and ∂P*/∂X against the envelope."""
    X, y, D = problem(loss)
    beta = BETA[loss]
    rng = np.random.default_rng(4)
    c = {"W": jnp.asarray(rng.standard_normal((P, DIM))), "value": jnp.asarray(1.0), "dual": jnp.asarray(rng.standard_normal(N))}
    sol = cr.solve_gated(X, y, D, beta=beta, loss=loss, tol=1e-11, max_iters=200_000)
    act = cr.active_set(sol, X, y)
    assert int(jnp.sum(act.blocks)) >= 2 and not bool(jnp.any(act.rows))

    def outs(X, y, b):
        s = cr.solve_gated(X, y, D, beta=b, loss=loss, tol=1e-11, max_iters=200_000)
        return jnp.stack([jnp.sum(c[k] * getattr(s, k)) for k in c])

    f = jax.jit(outs)
    J = jax.jit(jax.jacrev(outs, argnums=(0, 1, 2)))(X, y, beta)
    dX, dy = jnp.asarray(rng.standard_normal(X.shape)), jnp.asarray(rng.standard_normal(N))
    h = 1e-5
    fd_X = (f(X + h * dX, y, beta) - f(X - h * dX, y, beta)) / (2 * h)
    fd_b = (f(X, y, beta * (1 + h)) - f(X, y, beta * (1 - h))) / (2 * h * beta)
    np.testing.assert_allclose(jnp.einsum("knd,nd->k", J[0], dX), fd_X, rtol=1e-4)
    np.testing.assert_allclose(J[2], fd_b, rtol=1e-4)
    if loss == "squared":
        fd_y = (f(X, y + h * dy, beta) - f(X, y - h * dy, beta)) / (2 * h)
        np.testing.assert_allclose(J[1] @ dy, fd_y, rtol=1e-4)
    # the value's X-gradient is the envelope formula: -Σ_j (D_j ⊙ r) w_jᵀ
    envelope = -jnp.einsum("pn,n,pd->nd", D.astype(X.dtype), sol.dual, sol.W)
    np.testing.assert_allclose(J[0][1], envelope, rtol=1e-6, atol=1e-8)


def test_matrix_free_solutions_carry_the_same_gradients():
    """The matrix-free method's solution gets the implicit derivative of the same KKT system:
    ∂P*/∂X and ∂U/∂X agree with the interior point's (both solved tightly)."""
    X, y, D = problem("squared")
    c = weights()

    def outs(X, method):
        s = cr.solve_regularized(X, y, D, beta=0.3, tol=1e-9, method=method, max_iters=100_000)
        return jnp.stack([s.value, jnp.sum(c["U"] * s.U)])

    J_ipm = jax.jacrev(outs)(X, "ipm")
    J_mf = jax.jacrev(outs)(X, "matrix-free")
    np.testing.assert_allclose(J_mf, J_ipm, rtol=1e-4, atol=1e-6 * float(jnp.max(jnp.abs(J_ipm))))
