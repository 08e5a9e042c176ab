"""The optimality functions of the convex programs: identities, weak duality, Farkas, envelope."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import _programs as prog

from _reference import max_margin_reference, regularized_reference


def _problem(seed, n=12, d=3, p=10):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    X = jax.random.normal(k1, (n, d))
    W = jax.random.normal(k2, (d, 2))
    y = jnp.where(jax.nn.relu(X @ W) @ jnp.array([1.0, -1.0]) >= 0, 1.0, -1.0)
    gates = jnp.concatenate([W, jax.random.normal(k3, (d, p - 2))], axis=1)
    return X, y, (X @ gates).T >= 0


def test_fit_and_cones_match_explicit_blocks():
    X, y, D = _problem(0)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    U = jax.random.normal(k1, (D.shape[0], X.shape[1]))
    V = jax.random.normal(k2, (D.shape[0], X.shape[1]))
    Dn = np.asarray(D, dtype=float)
    f = sum(np.diag(Dn[j]) @ np.asarray(X) @ np.asarray(U[j] - V[j]) for j in range(D.shape[0]))
    np.testing.assert_allclose(prog.convex_fit(X, D, U, V), f, rtol=1e-12)
    c = prog.cone_values(X, D, U, V)
    np.testing.assert_allclose(c[1, 3], (2 * Dn[3] - 1) * (np.asarray(X) @ np.asarray(V[3])), rtol=1e-12)
    # the group norm and the objective
    assert float(prog.max_margin_objective(U, V)) == pytest.approx(
        float(np.linalg.norm(U, axis=1).sum() + np.linalg.norm(V, axis=1).sum()), rel=1e-12)


def test_max_margin_weak_duality_near_optimal_multipliers():
    """Multipliers ε-close to the optimum (μ* and ν* from Clarabel, raised by up to ε = 1e-4 of
    themselves) give a bound that is valid and tight: g is linear in (μ, ν), so the dual norm is
    subadditive, c(μ* + δ) ≤ c(μ*) + c(δ), and the bound 1ᵀμ / c is at least
    1ᵀμ* / (c(μ*) + c(δ)), within O(ε) of P*."""
    from convexrelu import bridge

    X, y, D = _problem(2)
    P, U, V, mu_ref = max_margin_reference(X, y, D)
    ref = bridge.solve_with_cvxpy(X, y, D)
    mu_star, nu_star = jnp.maximum(ref.dual, 0.0), jnp.maximum(ref.cone_dual, 0.0)
    exact = float(prog.max_margin_dual_objective(X, y, D, mu_star, nu_star))
    assert P * (1 - 1e-7) <= exact <= P * (1 + 1e-9)  # strong duality at the optimum
    eps = 1e-4
    for seed in range(5):
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
        d_mu = eps * mu_star * jax.random.uniform(k1, mu_star.shape)
        d_nu = eps * nu_star * jax.random.uniform(k2, nu_star.shape)
        bound = float(prog.max_margin_dual_objective(X, y, D, mu_star + d_mu, nu_star + d_nu))
        c_star, c_delta = (float(prog.dual_norm(X, D, y * m, n)) for m, n in ((mu_star, nu_star), (d_mu, d_nu)))
        assert float(jnp.sum(mu_star)) / (c_star + c_delta) <= bound * (1 + 1e-12)  # subadditivity
        assert P * (1 - 2 * eps) <= bound <= P * (1 + 1e-9)  # tight, and valid (weak duality)
    # primal of the reference solution: feasible to solver accuracy, value P
    U, V = jnp.asarray(U), jnp.asarray(V)
    assert float(prog.constraint_violation(X, y, D, U, V)) <= 1e-6
    assert float(prog.max_margin_objective(U, V)) == pytest.approx(P, rel=1e-7)
    assert float(prog.duality_gap(jnp.asarray(P), jnp.asarray(P * (1 - 1e-3)))) == pytest.approx(1e-3, rel=1e-9)


def test_regularized_weak_duality_near_optimal_multipliers():
    """The regularized dual bound from (r, ν) ε-close to the optimum (Clarabel's r* = -∇ℓ(f*) and
    ν*, moved by ε = 1e-5 of their size): valid (≤ the optimum) and tight (within O(ε))."""
    from convexrelu import bridge

    X, y, D = _problem(3)
    for loss in ("squared", "logistic"):
        val, U, V = regularized_reference(X, y, D, beta=0.1, loss=loss)
        assert float(prog.regularized_primal_objective(X, y, D, jnp.asarray(U), jnp.asarray(V), beta=0.1, loss=loss)) == pytest.approx(val, rel=1e-6)
        ref = bridge.solve_with_cvxpy(X, y, D, program="regularized", beta=0.1, loss=loss)
        r_star, nu_star = ref.dual, jnp.maximum(ref.cone_dual, 0.0)
        exact = float(prog.regularized_dual_objective(X, y, D, r_star, nu_star, beta=0.1, loss=loss))
        assert val - 1e-6 * val <= exact <= val + 1e-9  # strong duality at the optimum
        eps = 1e-5
        for seed in range(5):
            k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
            r = r_star * (1 + eps * jax.random.uniform(k1, r_star.shape, minval=-1.0))
            nu = nu_star * (1 + eps * jax.random.uniform(k2, nu_star.shape, minval=-1.0))
            dual = float(prog.regularized_dual_objective(X, y, D, r, nu, beta=0.1, loss=loss))
            assert val * (1 - 1e-3) <= dual <= val + 1e-9  # first order in ε (times the dual norm's n terms)
        # with ν = 0 the bound stays valid
        f = prog.convex_fit(X, D, jnp.asarray(U), jnp.asarray(V))
        r = prog.negative_loss_gradient(f, y, loss)
        dual0 = prog.regularized_dual_objective(X, y, D, r, jnp.zeros((2,) + D.shape), beta=0.1, loss=loss)
        assert float(dual0) <= val + 1e-7


def test_farkas_ray_of_collinear_points():
    # x2 = 2 x1, opposite labels: μ = (2, 1)/3 makes every Xᵀ D_j (y ⊙ μ) vanish
    X = jnp.array([[1.0, 0.5], [2.0, 1.0]])
    y = jnp.array([1.0, -1.0])
    D = jnp.array([[True, True], [False, False]])
    mu = jnp.array([2.0, 1.0]) / 3
    nu = jnp.zeros((2, 2, 2))
    assert float(prog.max_margin_infeasibility(X, y, D, mu, nu)) <= 1e-15
    assert float(prog.max_margin_dual_objective(X, y, D, mu, nu)) == np.inf
    assert float(prog.max_margin_infeasibility(X, y, D, jnp.zeros(2), nu)) == np.inf


def test_farkas_residual_is_the_inverse_of_the_dual_bound():
    """ε = max_b ‖g_b‖ / (1ᵀμ⁺ max_i ‖x_i‖), from the explicit blocks, equals 1/(bound · max ‖x_i‖)."""
    X, y, D = _problem(3)
    Xn, Dn, yn = np.asarray(X), np.asarray(D, dtype=float), np.asarray(y)
    S = 2 * Dn - 1
    for seed in range(3):
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
        mu = jax.random.normal(k1, (X.shape[0],))  # negative entries: μ⁺ is used
        nu = jax.random.uniform(k2, (2,) + D.shape)
        mp, nn = np.maximum(np.asarray(mu), 0), np.asarray(nu)
        g = [Xn.T @ (Dn[j] * yn * mp) * sgn + Xn.T @ (S[j] * nn[b, j]) for b, sgn in ((0, 1), (1, -1)) for j in range(D.shape[0])]
        eps = max(np.linalg.norm(v) for v in g) / (mp.sum() * np.linalg.norm(Xn, axis=1).max())
        bound = prog.max_margin_dual_objective(X, y, D, mu, nu)
        assert float(prog.farkas_residual(X, bound)) == pytest.approx(eps, rel=1e-12)
        assert float(prog.max_margin_infeasibility(X, y, D, mu, nu)) == pytest.approx(eps, rel=1e-12)


def test_lagrangian_gradient_is_derivative_of_optimal_value():
    """Envelope theorem: ∂P*/∂X = ∂L/∂X at the primal-dual solution, D held fixed."""
    X, y, D = _problem(4, n=10, d=3, p=8)
    # 1e-7: what the interior-point method reaches reliably (1e-9 would stall it into the ADMM
    # fallback); the solution is pinned by Clarabel's value and by the exact KKT identities below
    tol = 1e-7
    sol = cr.solve_max_margin(X, y, D, tol=tol, method="ipm")
    ref = max_margin_reference(X, y, D)[0]
    assert int(sol.iterations) < 100 and float(sol.gap) <= tol and float(sol.residual) <= tol
    assert float(sol.value) == pytest.approx(ref, rel=1e-6)
    # complementary slackness: μᵀ(y ⊙ f - 1) = 0 and ⟨ν, cone values⟩ = 0 to the tolerance
    f = prog.convex_fit(X, D, sol.U, sol.V)
    assert abs(float(jnp.sum(sol.dual * (y * f - 1.0)))) <= 10 * tol * float(sol.value)
    assert abs(float(jnp.sum(sol.cone_dual * prog.cone_values(X, D, sol.U, sol.V)))) <= 10 * tol * float(sol.value)
    assert float(prog.lagrangian(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual)) == pytest.approx(float(sol.value), rel=1e-6)
    grad = jax.grad(prog.lagrangian)(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual)
    E = jax.random.normal(jax.random.PRNGKey(9), X.shape)
    eps = 1e-4
    plus = max_margin_reference(X + eps * E, y, D)[0]
    minus = max_margin_reference(X - eps * E, y, D)[0]
    fd = (plus - minus) / (2 * eps)
    assert float(jnp.sum(grad * E)) == pytest.approx(fd, rel=1e-3, abs=1e-4)


def test_bad_program_name():
    X, y, D = _problem(0)
    Z = jnp.zeros((D.shape[0], X.shape[1]))
    with pytest.raises(ValueError, match="program"):
        prog.optimality(X, y, D, Z, Z, y, jnp.zeros((2,) + D.shape), program="hinge", beta=0.1)
