"""ψ (convex → network), φ (network → convex), splitting, pruning and minimality.

Reference solutions come from cvxpy + Clarabel (``tests/_reference.py``) over every activation
pattern of small data; constructed solutions use random gates so that blocks are interior to
their cones.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu._solution import ConvexSolution

from _reference import max_margin_reference, regularized_reference


def make_solution(U, V, D, value, *, program="max-margin", beta=0.0, dual=None):
    U, V, D = np.asarray(U, np.float64), np.asarray(V, np.float64), np.asarray(D, bool)
    p, n = D.shape
    return ConvexSolution(
        U=jnp.asarray(U),
        V=jnp.asarray(V),
        patterns=jnp.asarray(D),
        value=jnp.asarray(float(value), jnp.float64),
        dual=jnp.zeros(n) if dual is None else jnp.asarray(dual, jnp.float64),
        cone_dual=jnp.zeros((2, p, n)),
        gap=jnp.zeros(()),
        residual=jnp.zeros(()),
        status=jnp.asarray(0, jnp.int32),
        iterations=jnp.asarray(0, jnp.int32),
        beta=jnp.asarray(float(beta), jnp.float64),
        program=program,
    )


def convex_fit(sol, X):
    D = np.asarray(sol.patterns, np.float64)
    return np.sum(D * ((np.asarray(sol.U) - np.asarray(sol.V)) @ np.asarray(X).T), axis=0)


def penalty(sol):
    return float(np.linalg.norm(sol.U, axis=1).sum() + np.linalg.norm(sol.V, axis=1).sum())


def n_active(sol, rel=0.0):
    nr = np.r_[np.linalg.norm(sol.U, axis=1), np.linalg.norm(sol.V, axis=1)]
    return int(np.sum(nr > rel * nr.max()))


def cone_violation(sol, X):
    S = 2.0 * np.asarray(sol.patterns, np.float64) - 1.0
    XU, XV = np.asarray(sol.U) @ np.asarray(X).T, np.asarray(sol.V) @ np.asarray(X).T
    return max(np.max(-S * XU, initial=0.0), np.max(-S * XV, initial=0.0))


@pytest.fixture(scope="module")
def data3():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    y = np.where(rng.random(5) < 0.5, 1.0, -1.0)
    D = np.asarray(cr.enumerate_patterns(jnp.asarray(X)))
    return X, y, D


@pytest.fixture(scope="module")
def mm_sol(data3):
    X, y, D = data3
    P, U, V, _ = max_margin_reference(X, y, D)
    return make_solution(U, V, D, P)


@pytest.fixture(scope="module")
def reg_sol(data3):
    X, y, D = data3
    beta = 0.05
    val, U, V = regularized_reference(X, y, D, beta=beta)
    r = y - np.sum(D * ((U - V) @ X.T), axis=0)  # -∇_f ½‖f - y‖²
    return make_solution(U, V, D, val, program="regularized-squared", beta=beta, dual=r)


def interior_solution(X, *, p, key_seed, empty_v=0):
    """Blocks ``u_j = c_j g_j`` with ``D_j = 1[X g_j ≥ 0]`` for random gates: interior to ``K_j``."""
    rng = np.random.default_rng(key_seed)
    d = X.shape[1]
    G = rng.normal(size=(p, d))
    D = X @ G.T >= 0
    D, idx = np.unique(D.T, axis=0, return_index=True)
    G = G[idx]
    H = rng.normal(size=(len(idx), d))
    Dv = X @ H.T >= 0
    keep = np.all(Dv.T == D, axis=1)  # v-blocks only where the gate gives the same pattern
    U = rng.uniform(0.5, 2.0, size=(len(idx), 1)) * G
    V = np.where(keep[:, None], rng.uniform(0.5, 2.0, size=(len(idx), 1)) * H, 0.0)
    return make_solution(U, V, D, np.linalg.norm(U, axis=1).sum() + np.linalg.norm(V, axis=1).sum())


# ------------------------------------------------------------------------------------------- ψ


@pytest.mark.parametrize("which", ["mm", "reg"])
def test_to_network_keeps_fit_and_objective(which, data3, mm_sol, reg_sol):
    X, y, D = data3
    sol = mm_sol if which == "mm" else reg_sol
    net = cr.to_network(sol, tol=0.0)
    assert net.m == n_active(sol)
    f = np.asarray(cr.forward(net, jnp.asarray(X)))
    # The convex fit Σ D_j X(u_j - v_j) only equals the ReLU output on the cones: the reference
    # blocks violate them by ~1e-9, which bounds the difference.
    assert np.allclose(f, convex_fit(sol, X), atol=1e-7 + 10 * cone_violation(sol, X) * D.shape[0])
    assert np.isclose(0.5 * float(cr.param_norm_sq(net)), penalty(sol), rtol=1e-12)
    assert np.allclose(np.linalg.norm(net.W1, axis=0), np.abs(net.w2), rtol=1e-12)  # balanced


def test_to_network_drops_zero_blocks_and_pads():
    X = np.random.default_rng(1).normal(size=(8, 3))
    sol = interior_solution(X, p=12, key_seed=1)
    k = n_active(sol)
    net = cr.to_network(sol)
    assert net.m == k
    padded = cr.to_network(sol, pad_to=k + 3)
    assert padded.m == k + 3
    assert np.allclose(cr.forward(padded, jnp.asarray(X)), cr.forward(net, jnp.asarray(X)), rtol=0, atol=1e-13)
    assert np.isclose(cr.param_norm_sq(padded), cr.param_norm_sq(net), rtol=1e-14)
    with pytest.raises(ValueError, match="pad_to"):
        cr.to_network(sol, pad_to=k - 1)
    zero = make_solution(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 8), bool), 0.0)
    assert cr.to_network(zero).m == 0
    assert cr.to_network(zero, pad_to=4).m == 4


# ------------------------------------------------------------------------------------------- φ


def test_phi_of_psi_recovers_blocks():
    X = np.random.default_rng(2).normal(size=(10, 3))
    sol = interior_solution(X, p=15, key_seed=2)
    back = cr.to_convex(cr.to_network(sol), jnp.asarray(X))
    # Same set of (pattern, block) pairs, in any order.
    orig = {tuple(D): (u, v) for D, u, v in zip(np.asarray(sol.patterns), np.asarray(sol.U), np.asarray(sol.V))}
    got = {tuple(D): (u, v) for D, u, v in zip(np.asarray(back.patterns), np.asarray(back.U), np.asarray(back.V))}
    assert set(got) == set(orig)
    for key, (u, v) in orig.items():
        assert np.allclose(got[key][0], u, rtol=1e-12, atol=1e-13)
        assert np.allclose(got[key][1], v, rtol=1e-12, atol=1e-13)
    assert np.isclose(back.value, penalty(sol), rtol=1e-12)
    assert back.ok and float(back.residual) == 0.0


@pytest.mark.parametrize("which", ["mm", "reg"])
def test_psi_then_phi_keeps_predictions_and_objective(which, data3, mm_sol, reg_sol):
    X, _, _ = data3
    sol = mm_sol if which == "mm" else reg_sol
    net = cr.to_network(sol)
    back = cr.to_convex(net, jnp.asarray(X))
    f_net = np.asarray(cr.forward(net, jnp.asarray(X)))
    assert np.allclose(convex_fit(back, X), f_net, rtol=1e-12, atol=1e-12)
    assert np.isclose(float(back.value), penalty(sol), rtol=1e-7)
    assert float(back.value) <= 0.5 * float(cr.param_norm_sq(net)) * (1 + 1e-12)
    assert cone_violation(back, X) <= 1e-12


def test_to_convex_of_random_network():
    key = jax.random.key(3)
    X = jax.random.normal(key, (12, 4))
    net = cr.init_network(4, 30, scale=1.0, balanced=False, key=jax.random.key(4))
    sol = cr.to_convex(net, X)
    assert np.allclose(convex_fit(sol, X), cr.forward(net, X), rtol=1e-12, atol=1e-12)
    # Triangle inequality then AM-GM: Σ‖u_j‖ ≤ Σ |a_i| ‖w_i‖ ≤ ½‖θ‖².
    amgm = float(np.sum(np.abs(net.w2) * np.linalg.norm(net.W1, axis=0)))
    assert float(sol.value) <= amgm * (1 + 1e-12) <= 0.5 * float(cr.param_norm_sq(net)) * (1 + 1e-12)
    assert cone_violation(sol, X) <= 1e-12
    assert len(np.unique(np.asarray(sol.patterns), axis=0)) == sol.patterns.shape[0]
    # A network with no live neuron gives one all-ones pattern and zero blocks.
    dead = cr.to_convex(cr.Network(jnp.zeros((4, 3)), jnp.ones(3)), X)
    assert dead.U.shape == (1, 4) and float(dead.value) == 0.0


# --------------------------------------------------------------------------------------- split


def test_split_keeps_output_and_penalty():
    X = jax.random.normal(jax.random.key(5), (9, 3))
    net = cr.init_network(3, 6, scale=1.0, balanced=False, key=jax.random.key(6))
    for sp in (
        cr.split(net, weights=jnp.array([0.2, 0.3, 0.5])),
        cr.split(net, num=4, key=jax.random.key(7)),
        jax.jit(lambda n: cr.split(n, weights=jnp.full((6, 2), 0.5)))(net),
    ):
        assert np.allclose(cr.forward(sp, X), cr.forward(net, X), rtol=1e-12, atol=1e-13)
        assert np.isclose(cr.param_norm_sq(sp), cr.param_norm_sq(net), rtol=1e-12)
    sp = cr.split(net, num=4, key=jax.random.key(7))
    assert sp.m == 24
    # φ merges the pieces back (same pattern and sign).
    a = cr.to_convex(net, X)
    b = cr.to_convex(sp, X)
    assert np.allclose(np.sort(np.asarray(a.U), axis=0), np.sort(np.asarray(b.U), axis=0), rtol=1e-12, atol=1e-13)


def test_split_refuses_bad_weights():
    net = cr.init_network(3, 4, scale=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="sum to 1"):
        cr.split(net, weights=jnp.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="positive"):
        cr.split(net, weights=jnp.array([1.5, -0.5]))
    with pytest.raises(ValueError, match="shape"):
        cr.split(net, weights=jnp.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="exactly one"):
        cr.split(net)
    with pytest.raises(ValueError, match="key"):
        cr.split(net, num=3)


# --------------------------------------------------------------------------------------- prune


@pytest.mark.parametrize("which", ["mm", "reg"])
def test_prune_optimal_solution(which, data3, mm_sol, reg_sol):
    X, y, _ = data3
    n = X.shape[0]
    sol = mm_sol if which == "mm" else reg_sol
    assert n_active(sol, 1e-6) > n  # many active blocks, well above Clarabel's noise
    # Clarabel's blocks are accurate to ~1e-8, so fits that are dependent at the optimum come out
    # dependent only to ~1e-8 relative: prune with a matching rank tolerance.
    pr = cr.prune(sol, jnp.asarray(X), tol=1e-7)
    k = n_active(pr)
    assert k <= n
    # Predictions: only the projection of Clarabel's ~1e-10 cone violations and the near-null
    # moves change the fit.
    assert np.allclose(convex_fit(pr, X), convex_fit(sol, X), rtol=0, atol=1e-7)
    assert cone_violation(pr, X) <= 1e-14
    if which == "reg":
        # The regularized objective recomputed from the blocks, and the reported value, agree
        # with the optimum to 1e-8 relative.
        obj = 0.5 * np.sum((convex_fit(pr, X) - y) ** 2) + float(sol.beta) * penalty(pr)
        assert np.isclose(obj, float(sol.value), rtol=1e-8, atol=0)
        assert np.isclose(float(pr.value), obj, rtol=1e-10, atol=0)
    else:
        # Pruning never increases Σ‖·‖; it can only drop by the reference's suboptimality,
        # which Clarabel's default tolerances (1e-8) bound by a few 1e-8.
        assert np.isclose(float(pr.value), penalty(pr), rtol=1e-14)
        assert float(sol.value) * (1 - 1e-7) <= float(pr.value) <= float(sol.value) * (1 + 1e-12)
        assert np.min(y * convex_fit(pr, X)) >= 1 - 1e-7
    # The remaining fits are linearly independent; ψ keeps the predictions.
    D = np.asarray(pr.patterns, np.float64)
    cols = [s * D[j] * (X @ b) for s, B in ((1, pr.U), (-1, pr.V)) for j, b in enumerate(np.asarray(B)) if np.linalg.norm(b) > 0]
    sv = np.linalg.svd(np.stack(cols, 1), compute_uv=False)
    assert sv[-1] > 1e-7 * sv[0]
    net = cr.to_network(pr)
    assert np.allclose(cr.forward(net, jnp.asarray(X)), convex_fit(sol, X), atol=1e-7)


def test_prune_constructed_redundant_solution():
    X = np.random.default_rng(8).normal(size=(6, 3))
    sol = interior_solution(X, p=60, key_seed=8)
    assert n_active(sol) > 2 * X.shape[0]
    pr = cr.prune(sol, jnp.asarray(X))
    k = n_active(pr)
    assert k <= X.shape[0]
    assert np.allclose(convex_fit(pr, X), convex_fit(sol, X), rtol=0, atol=1e-10 * np.abs(convex_fit(sol, X)).max())
    # The objective never increases (it is kept exactly while more than n + 1 blocks remain).
    assert float(pr.value) <= float(sol.value) * (1 + 1e-12)
    assert np.isclose(float(pr.value), penalty(pr), rtol=1e-12)
    assert cone_violation(pr, X) <= 1e-12
    # The remaining fits are linearly independent.
    D = np.asarray(pr.patterns, np.float64)
    cols = [D[j] * (X @ b) for B in (pr.U, pr.V) for j, b in enumerate(np.asarray(B)) if np.linalg.norm(b) > 0]
    assert np.linalg.matrix_rank(np.stack(cols, 1)) == k
    net = cr.to_network(pr)
    assert cr.is_minimal(net, jnp.asarray(X))
    assert np.allclose(cr.forward(net, jnp.asarray(X)), convex_fit(sol, X), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------- minimality


def test_minimality_checks():
    X = jnp.asarray(np.random.default_rng(9).normal(size=(8, 3)))
    W1 = jnp.array([[1.0, -1.0], [0.5, 0.2], [0.0, 1.0]])
    net = cr.Network(W1, jnp.array([1.0, -2.0]))
    assert cr.is_nearly_minimal(net, X) and cr.is_minimal(net, X)
    dup = cr.split(net, weights=jnp.array([0.5, 0.5]))  # two neurons per (pattern, sign)
    assert not cr.is_nearly_minimal(dup, X) and not cr.is_minimal(dup, X)
    dead = cr.Network(jnp.concatenate([W1, jnp.ones((3, 1))], axis=1), jnp.array([1.0, -2.0, 0.0]))
    assert not cr.is_nearly_minimal(dead, X)
    # Distinct (pattern, sign) but linearly dependent fits: nearly minimal, not minimal.
    wide = cr.init_network(3, 20, scale=1.0, balanced=True, key=jax.random.key(1))
    wide_sol = cr.to_convex(wide, X)
    wide_net = cr.to_network(wide_sol)
    assert wide_net.m > X.shape[0]
    assert cr.is_nearly_minimal(wide_net, X)
    assert not cr.is_minimal(wide_net, X)
    assert cr.is_minimal(cr.to_network(cr.prune(wide_sol, X)), X)


# ---------------------------------------------------------------------------------- bad inputs


def test_maps_refuse_bad_inputs(mm_sol, data3):
    X, _, _ = data3
    with pytest.raises(TypeError, match="ConvexSolution"):
        cr.to_network(cr.init_network(3, 2, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="tol"):
        cr.to_network(mm_sol, tol=-1.0)
    with pytest.raises(ValueError, match="d = 3"):
        cr.to_convex(cr.init_network(3, 2, key=jax.random.key(0)), jnp.ones((5, 4)))
    with pytest.raises(ValueError, match="patterns"):
        cr.prune(mm_sol, jnp.asarray(X[:4]))
    with pytest.raises(ValueError, match="NaN"):
        cr.to_convex(cr.Network(jnp.full((3, 2), jnp.nan), jnp.ones(2)), jnp.asarray(X))
    batched = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), mm_sol)
    with pytest.raises(ValueError, match="unbatched"):
        cr.to_network(batched)
