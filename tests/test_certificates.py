"""Dual certificates: exact cone projections, c(λ) at the max-margin optimum, the regularized
and KKT certificates of networks (Wang & Pilanci 2110.06488; Wang, Lacotte & Pilanci 2006.05900).

References come from cvxpy + Clarabel (``tests/_reference.py``) over every activation pattern.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr

from _reference import max_margin_reference, regularized_reference
from test_maps import make_solution


@pytest.fixture(scope="module")
def data2():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    y = np.where(rng.random(10) < 0.5, 1.0, -1.0)
    D = np.asarray(cr.enumerate_patterns(jnp.asarray(X)))
    return X, y, D


@pytest.fixture(scope="module")
def mm2(data2):
    X, y, D = data2
    P, U, V, mu = max_margin_reference(X, y, D)
    return P, make_solution(U, V, D, P, dual=mu), mu


# ------------------------------------------------------------------------------ NNLS, projection


def test_nnls_matches_scipy_including_rank_deficient():
    from scipy.optimize import nnls as scipy_nnls

    rng = np.random.default_rng(1)
    solve = jax.jit(jax.vmap(lambda B, b: cr.nnls(B, b)[0]))
    Bs = np.stack([rng.normal(size=(4, 30)) for _ in range(6)])  # rank 4 < 30 columns
    bs = rng.normal(size=(6, 4))
    Z = np.asarray(solve(jnp.asarray(Bs), jnp.asarray(bs)))
    for B, b, z in zip(Bs, bs, Z):
        assert z.min() >= 0
        z_ref, _ = scipy_nnls(B, b)
        # The fit B z is unique (strict convexity in Bz); check it and the KKT conditions.
        assert np.allclose(B @ z, B @ z_ref, atol=1e-12)
        grad = B.T @ (B @ z - b)
        assert grad.min() >= -1e-12 and abs(grad @ z) <= 1e-12


def test_cone_projection_matches_cvxpy():
    import cvxpy as cp

    rng = np.random.default_rng(2)
    project = jax.jit(cr.cone_projection)
    for n, d in [(12, 2), (20, 3), (30, 5)]:
        X = rng.normal(size=(n, d))
        pat = X @ rng.normal(size=d) >= 0  # a nonempty cone
        for _ in range(3):
            g = rng.normal(size=d)
            p = np.asarray(project(jnp.asarray(X), jnp.asarray(pat), jnp.asarray(g)))
            u = cp.Variable(d)
            S = 2.0 * pat - 1.0
            cp.Problem(cp.Minimize(cp.sum_squares(u - g)), [cp.multiply(S, X @ u) >= 0]).solve(solver=cp.CLARABEL)
            assert np.allclose(p, u.value, atol=1e-7)
            # Exact optimality of our projection: p ∈ K, g - p ⊥ p and g - p ∈ K°.
            assert np.min(S * (X @ p)) >= -1e-13
            assert abs((g - p) @ p) <= 1e-12
            for _ in range(5):
                w = rng.normal(size=d)
                wk = np.asarray(project(jnp.asarray(X), jnp.asarray(pat), jnp.asarray(w)))
                assert (g - p) @ wk <= 1e-12


# ------------------------------------------------------------------------------ dual certificate


def test_dual_certificate_equals_one_at_max_margin_optimum(data2, mm2):
    X, y, D = data2
    P, _, mu = mm2
    lam = jnp.asarray(y * mu)
    cert = cr.dual_certificate(jnp.asarray(X), lam)  # every pattern, enumerated
    assert cert.exact and cert.method == "enumerated"
    assert abs(float(cert.value) - 1.0) <= 1e-5
    assert np.isclose(np.sum(mu), P, rtol=1e-7)  # strong duality 1ᵀμ* = P*
    u = np.asarray(cert.u)
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert np.isclose(int(cert.sign) * float(lam @ np.maximum(X @ u, 0.0)), float(cert.value), rtol=1e-10)
    # Same value with the patterns passed explicitly.
    given = cr.dual_certificate(jnp.asarray(X), lam, patterns=jnp.asarray(D))
    assert given.method == "given" and np.isclose(given.value, cert.value, rtol=1e-12)


def test_dual_certificate_against_dense_grid(data2):
    X, _, _ = data2
    lam = np.random.default_rng(3).normal(size=X.shape[0])
    cert = cr.dual_certificate(jnp.asarray(X), jnp.asarray(lam))
    t = np.linspace(0, 2 * np.pi, 200_001)
    Ug = np.stack([np.cos(t), np.sin(t)])
    grid = np.max(np.abs(lam @ np.maximum(X @ Ug, 0.0)))
    assert grid <= float(cert.value) * (1 + 1e-12)
    assert float(cert.value) - grid <= 1e-8 * grid


def test_dual_certificate_sampled_is_a_tight_lower_bound():
    rng = np.random.default_rng(4)
    X = jnp.asarray(rng.normal(size=(14, 3)))
    lam = jnp.asarray(rng.normal(size=14))
    exact = cr.dual_certificate(X, lam)
    assert exact.exact
    samp = cr.dual_certificate(X, lam, max_enumerated=10, num_samples=64, key=jax.random.key(0))
    assert not samp.exact and samp.method == "sampled+ascent"
    assert float(samp.value) <= float(exact.value) * (1 + 1e-10)
    assert float(samp.value) >= 0.95 * float(exact.value)
    assert np.isclose(abs(float(lam @ jax.nn.relu(X @ samp.u))), float(samp.value), rtol=1e-8)
    with pytest.raises(ValueError, match="key"):
        cr.dual_certificate(X, lam, max_enumerated=10)


# ------------------------------------------------------------------------------ regularized


def test_regularized_certificate_optimal_vs_perturbed(data2):
    X, y, D = data2
    beta = 0.1
    val, U, V = regularized_reference(X, y, D, beta=beta)
    net = cr.to_network(make_solution(U, V, D, val), tol=1e-7)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    cert = cr.regularized_certificate(net, Xj, yj, beta=beta, loss="squared")
    assert cert.dual.exact
    assert float(cert.value) <= 1 + 1e-6
    assert float(cert.stationarity) <= 1e-5
    # The non-convex objective equals the convex optimum (Pilanci & Ergen).
    assert np.isclose(cr.regularized_objective(net, Xj, yj, beta=beta, loss="squared"), val, rtol=1e-6)
    # A perturbed network is not optimal: the certificate exceeds 1.
    bad = cr.Network(0.7 * net.W1, 0.7 * net.w2)
    assert float(cr.regularized_certificate(bad, Xj, yj, beta=beta, loss="squared").value) > 1.05


def test_regularized_certificate_logistic_3d():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 3))
    y = np.where(rng.random(6) < 0.5, 1.0, -1.0)
    D = np.asarray(cr.enumerate_patterns(jnp.asarray(X)))
    beta = 0.2
    val, U, V = regularized_reference(X, y, D, beta=beta, loss="logistic")
    net = cr.to_network(make_solution(U, V, D, val), tol=1e-7)
    cert = cr.regularized_certificate(net, jnp.asarray(X), jnp.asarray(y), beta=beta, loss="logistic", patterns=jnp.asarray(D))
    # Clarabel's exponential-cone solutions are accurate to ~1e-5 here.
    assert float(cert.value) <= 1 + 1e-4
    assert float(cert.value) >= 1 - 1e-4  # live neurons attain the bound
    assert float(cert.stationarity) <= 1e-3
    bad = cr.Network(0.5 * net.W1, 0.5 * net.w2)
    assert float(cr.regularized_certificate(bad, jnp.asarray(X), jnp.asarray(y), beta=beta, loss="logistic").value) > 1.05


# ------------------------------------------------------------------------------ KKT


def test_kkt_certificate_of_optimal_network(data2, mm2):
    X, y, D = data2
    P, sol, mu = mm2
    net = cr.to_network(sol, tol=1e-6)
    k = cr.kkt_certificate(net, jnp.asarray(X), jnp.asarray(y))
    assert float(k.residual) <= 1e-4
    assert abs(float(k.value) - 1.0) <= 1e-4
    # Euler + complementary slackness: 1ᵀμ = ½‖θ̂‖² = P*; γ = 1/(2P*).
    assert np.isclose(float(k.dual_value), float(k.primal), rtol=1e-5)
    assert np.isclose(float(k.primal), P, rtol=1e-6)
    assert np.isclose(float(k.margin), 1 / (2 * P), rtol=1e-6)
    assert np.isclose(float(cr.normalized_margin(net, jnp.asarray(X), jnp.asarray(y))), 1 / (2 * P), rtol=1e-6)
    assert np.allclose(k.mu, mu, atol=1e-3 * P)
    # Rescaling the network changes nothing (2-homogeneity).
    k2 = cr.kkt_certificate(cr.Network(3.0 * net.W1, 3.0 * net.w2), jnp.asarray(X), jnp.asarray(y))
    assert np.isclose(k2.value, k.value, rtol=1e-8) and np.isclose(k2.primal, k.primal, rtol=1e-10)


def test_kkt_certificate_rejects_a_non_global_stationary_point():
    """Two unit points at an angle α ∈ (90°, 120°), both labelled +1. The network of two neurons
    (x_k, +1), one per point, is a KKT point of min ½‖θ‖² s.t. y_i f(x_i) ≥ 1: each neuron sees only
    its own point (x_1ᵀx_2 = cos α < 0, strictly: no kink), μ = (1, 1) gives θ = Σ μ_i y_i ∂f(x_i)
    exactly, and ½‖θ‖² = 1ᵀμ = 2. It is not global: one neuron along the bisector has
    P* = 1/cos(α/2) < 2. Its certificate, c(λ) = max_{‖u‖≤1} (x_1ᵀu)_+ + (x_2ᵀu)_+ = 2 cos(α/2)
    (at the bisector) = 2/P* > 1, rejects it."""
    alpha = np.deg2rad(100.0)
    X = np.array([[1.0, 0.0], [np.cos(alpha), np.sin(alpha)]])
    y = np.ones(2)
    net = cr.Network(W1=jnp.asarray(X.T), w2=jnp.ones(2))
    k = cr.kkt_certificate(net, jnp.asarray(X), jnp.asarray(y))
    assert float(k.residual) <= 1e-12  # a KKT point
    np.testing.assert_allclose(k.mu, [1.0, 1.0], rtol=1e-12)
    assert float(k.primal) == pytest.approx(2.0, rel=1e-12) and float(k.dual_value) == pytest.approx(2.0, rel=1e-12)
    P_star = max_margin_reference(X, y, np.asarray(cr.enumerate_patterns(jnp.asarray(X))))[0]
    assert P_star == pytest.approx(1 / np.cos(alpha / 2), rel=1e-7)  # the global optimum, a closed form
    assert float(k.value) == pytest.approx(2 * np.cos(alpha / 2), rel=1e-9)  # c(λ) = 2/P* = 1.2856 > 1
    assert float(k.value) >= float(k.dual_value) / P_star * (1 - 1e-7)  # weak duality: c ≥ 1ᵀμ / P*
    assert float(k.margin) < 1 / (2 * P_star)  # its margin 1/4 is below γ* = cos(α/2)/2


def test_weak_duality_with_certificate_scaling(data2, mm2):
    """Any μ ≥ 0 rescaled by 1/c(y ⊙ μ) is dual feasible, so 1ᵀμ / c(y ⊙ μ) ≤ P*; it is tight near
    μ*: c is subadditive (a max of |linear|), so for μ = μ* + δ, δ ≥ 0, the bound is at least
    1ᵀμ* / (c(y ⊙ μ*) + c(y ⊙ δ)), within O(‖δ‖) of P*."""
    X, y, _ = data2
    P, _, mu_star = mm2
    mu_star = np.maximum(mu_star, 0.0)
    c = lambda mu: float(cr.dual_certificate(jnp.asarray(X), jnp.asarray(y * mu)).value)  # noqa: E731
    c_star = c(mu_star)
    assert abs(c_star - 1.0) <= 1e-6 and np.sum(mu_star) == pytest.approx(P, rel=1e-7)  # dual optimal
    rng = np.random.default_rng(6)
    eps = 1e-4
    M = float(np.sum(mu_star * np.linalg.norm(X, axis=1)))
    for _ in range(5):
        delta = eps * mu_star * rng.random(X.shape[0])
        mu = mu_star + delta
        bound = np.sum(mu) / c(mu)
        assert np.sum(mu_star) / (c_star + c(delta)) <= bound * (1 + 1e-12)  # subadditivity
        # tight: c(y ⊙ δ) ≤ Σ_i δ_i ‖x_i‖ ≤ ε Σ_i μ*_i ‖x_i‖ = ε M, so the bound is ≥ P* / (1 + ε M)
        assert P * (1 - 1e-6) / (1 + eps * M) <= bound <= P * (1 + 1e-7)  # and valid


# ------------------------------------------------------------------------------ bad inputs


def test_certificates_refuse_bad_inputs(data2):
    X, y, _ = data2
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    net = cr.init_network(2, 4, scale=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="lam"):
        cr.dual_certificate(Xj, jnp.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        cr.dual_certificate(Xj, jnp.full(10, jnp.nan))
    with pytest.raises(ValueError, match="patterns"):
        cr.dual_certificate(Xj, yj, patterns=jnp.ones((3, 4), bool))
    with pytest.raises(ValueError, match="beta"):
        cr.regularized_certificate(net, Xj, yj, beta=0.0)
    with pytest.raises(ValueError, match="loss"):
        cr.regularized_certificate(net, Xj, yj, beta=1.0, loss="hinge")
    with pytest.raises(ValueError, match="labels"):
        cr.kkt_certificate(net, Xj, 2.0 * yj)
    with pytest.raises(ValueError, match="separate"):
        cr.kkt_certificate(cr.Network(jnp.zeros((2, 4)), jnp.zeros(4)), Xj, yj)
    with pytest.raises(ValueError, match="d = 3"):
        cr.kkt_certificate(cr.init_network(3, 4, key=jax.random.key(0)), Xj, yj)
    with pytest.raises(ValueError, match="g must have shape"):
        cr.cone_projection(Xj, jnp.ones(10, bool), jnp.ones(3))
