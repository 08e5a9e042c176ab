"""The dual geometry: Q, Q*, the spikes, extreme points and the dual trajectory of training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr


@pytest.fixture(scope="module")
def orth2d():
    """Orthogonally separable 2-D data, every pattern, and the max-margin optimum (tight tol)."""
    X, y = cr.datasets.two_d(16, key=jax.random.key(3), kind="orthogonal")
    D = cr.enumerate_patterns(X)
    sol = cr.solve_max_margin(X, y, D, tol=1e-9)
    return X, y, D, sol, y * sol.dual


@pytest.fixture(scope="module")
def orth3d():
    X, y = cr.datasets.orthogonally_separable(20, 3, key=jax.random.key(4))
    D = cr.enumerate_patterns(X)
    sol = cr.solve_max_margin(X, y, D, tol=1e-9)
    return X, y, D, sol, y * sol.dual


def _grid_values(X, lam, num):
    t = 2 * np.pi * np.arange(num) / num
    U = np.stack([np.cos(t), np.sin(t)], axis=1)
    return U, np.maximum(U @ np.asarray(X).T, 0.0) @ np.asarray(lam)


@pytest.mark.parametrize("data", ["orth2d", "orth3d"])
def test_certificate_is_one_at_the_optimum(data, request):
    X, y, D, sol, lam = request.getfixturevalue(data)
    sp = cr.dual_spikes(X, lam)
    assert sp.exact
    assert abs(float(sp.value) - 1.0) <= 1e-6
    assert float(sp.value) == pytest.approx(float(cr.dual_certificate(X, lam, patterns=D).value), rel=1e-12)
    # every spike attains the value with its sign: s λᵀ(X u)_+ = c(λ)
    np.testing.assert_allclose(np.asarray(sp.signs) * np.asarray(sp.points @ lam), float(sp.value), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(sp.directions), axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("data", ["orth2d", "orth3d"])
def test_psi_blocks_point_along_spikes(data, request):
    X, y, D, sol, lam = request.getfixturevalue(data)
    sp = cr.dual_spikes(X, lam)
    net = cr.to_network(sol, tol=1e-6)  # drop the interior-point method's residual blocks
    W = np.asarray(net.W1) / np.linalg.norm(np.asarray(net.W1), axis=0)
    for i, a in enumerate(np.asarray(net.w2)):
        same = np.asarray(sp.signs) == np.sign(a)
        assert np.any(same)
        assert np.max(np.asarray(sp.directions)[same] @ W[:, i]) >= 1 - 1e-6


def test_rectified_ellipsoid_inside_polar_with_equality_at_spikes(orth2d, orth3d):
    X, y, D, sol, lam = orth2d
    E = cr.rectified_ellipsoid(X, num=4000)
    assert E.exact and E.points.shape == (4000, X.shape[0]) and E.directions.shape == (4000, 2)
    np.testing.assert_allclose(E.points, jax.nn.relu(E.directions @ X.T), rtol=0, atol=0)
    v = np.abs(np.asarray(E.points @ lam))
    assert v.max() <= 1 + 1e-9
    assert v.max() >= 1 - 1e-4  # the grid comes within O(1/num²) of the spikes
    sp = cr.dual_spikes(X, lam)
    np.testing.assert_allclose(np.abs(np.asarray(sp.points @ lam)), 1.0, atol=1e-6)
    X3, _, _, _, lam3 = orth3d
    E3 = cr.rectified_ellipsoid(X3, num=3000, key=jax.random.key(0))
    assert not E3.exact
    np.testing.assert_allclose(np.linalg.norm(np.asarray(E3.directions), axis=1), 1.0, rtol=1e-12)
    assert np.abs(np.asarray(E3.points @ lam3)).max() <= 1 + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dual_spikes_match_a_dense_angle_grid(orth2d, seed):
    X, y, D, sol, lam_star = orth2d
    lam = lam_star if seed == 0 else jax.random.normal(jax.random.key(seed), (X.shape[0],))
    sp = cr.dual_spikes(X, lam)
    U, vals = _grid_values(X, lam, 200_000)
    h = np.abs(vals)
    assert float(sp.value) == pytest.approx(h.max(), rel=1e-8)  # spacing 3e-5 rad: error O(1e-9)
    # every near-maximal grid direction is next to a spike, and every spike is next to one
    near = U[h >= (1 - 1e-7) * h.max()]
    cos = near @ np.asarray(sp.directions).T
    assert np.all(cos.max(axis=1) >= 1 - 1e-6)
    assert np.all(cos.max(axis=0) >= 1 - 1e-6)
    for u, s, v in zip(np.asarray(sp.directions), np.asarray(sp.signs), np.asarray(sp.values)):
        assert s * float(np.maximum(np.asarray(X) @ u, 0) @ np.asarray(lam)) == pytest.approx(v, rel=1e-10)
        assert v >= (1 - 1e-6) * float(sp.value)


def test_polar_boundary_lies_on_c_equal_one(orth2d):
    X, y, D, sol, lam = orth2d
    X2 = X[:2]
    B = cr.polar_boundary(X2, num=12)
    assert B.exact and B.points.shape == (12, 2)
    for p in np.asarray(B.points)[np.isfinite(np.asarray(B.points)).all(axis=1)]:
        assert float(cr.dual_certificate(X2, jnp.asarray(p)).value) == pytest.approx(1.0, rel=1e-10)
    B3 = cr.polar_boundary(X[:3], num=5, key=jax.random.key(1))
    assert B3.exact and B3.points.shape == (5, 3)  # c exact (every pattern); directions sampled


def test_optimum_is_an_extreme_point(orth2d, orth3d):
    for X, y, D, sol, lam in (orth2d, orth3d):
        ep = cr.is_extreme_point(X, lam, y=y)
        assert ep.feasible and ep.on_boundary and ep.extreme and ep.rank == X.shape[0]
        assert not cr.is_extreme_point(X, 0.5 * lam, y=y).extreme  # interior: c = 1/2
        assert not cr.is_extreme_point(X, 2.0 * lam, y=y).feasible
        assert not cr.is_extreme_point(X, -lam, y=y).feasible  # sign constraints y ⊙ λ ≥ 0
    # X = I: Q* is the unit disk in the quadrants λ ≥ 0, λ ≤ 0 and the unit square elsewhere
    X = jnp.eye(2)
    arc = cr.is_extreme_point(X, jnp.array([1.0, 1.0]) / math.sqrt(2))  # curved: extreme, no vertex
    assert arc.extreme and not arc.vertex and arc.rank == 2 and arc.vertex_rank == 1
    corner = cr.is_extreme_point(X, jnp.array([1.0, -1.0]))  # two spikes: a vertex
    assert corner.extreme and corner.vertex and corner.spikes.directions.shape == (2, 2)
    edge = cr.is_extreme_point(X, jnp.array([1.0, -0.5]))  # on a flat edge: not extreme
    assert edge.on_boundary and not edge.extreme and edge.rank == 1


def _train_chunks(X, y, *, m, steps, chunks, key):
    """The cross-check's training (loss-based, lr = max_alpha = 1e-3, scale 1e-3) in chunks."""
    net = cr.init_network(X.shape[1], m, scale=1e-3, balanced=True, key=key)
    out, state = [], None
    for _ in range(chunks):
        res = cr.train(net, X, y, steps=steps // chunks, schedule="loss-based", lr=1e-3, max_alpha=1e-3,
                       state=state, record_every=steps // chunks)
        net, state = res.net, res.state
        out.append(res)
    return out


def test_dual_trajectory_approaches_lambda_star():
    """The cross-check's default: `orthogonal` data n = 40, d = 3 (seed 0), m = 50, 60 000 steps
    (one of its 8 runs: the claim is per run), every pattern."""
    k_data, k_init, _, _ = jax.random.split(jax.random.key(0), 4)
    X, y = cr.datasets.orthogonally_separable(40, 3, key=k_data)
    D = cr.enumerate_patterns(X)
    sol = cr.solve_max_margin(X, y, D, tol=1e-7)
    chunks = _train_chunks(X, y, m=50, steps=60_000, chunks=4, key=jax.random.split(k_init, 8)[0])
    traj = cr.dual_trajectory(chunks, X, y, sol, patterns=D)
    assert traj.lam.shape == (traj.steps.shape[0], 40) and traj.angles.shape == (traj.steps.shape[0], 50)
    assert int(traj.steps[-1]) == 60_000
    assert float(traj.distance[-1]) < 1e-2
    assert float(traj.distance[-1]) < float(traj.distance[0])
    assert abs(float(traj.certificate[-1]) - 1.0) <= 1e-6
    assert float(traj.max_angle[-1]) <= math.acos(1 - 1e-6)  # dominant neurons on the spikes
    # the same records as a stacked Network with explicit steps
    nets = jax.tree.map(lambda *a: jnp.stack(a), *[c.net for c in chunks])
    traj2 = cr.dual_trajectory(nets, X, y, sol, steps=np.array([15_000, 30_000, 45_000, 60_000]), patterns=D)
    np.testing.assert_allclose(traj2.distance, traj.distance, rtol=1e-10)


def test_dtype_follows_input(orth2d):
    X, y, D, sol, lam = orth2d
    X32, lam32 = X.astype(jnp.float32), lam.astype(jnp.float32)
    assert cr.rectified_ellipsoid(X32, num=8).points.dtype == jnp.float32
    sp = cr.dual_spikes(X32, lam32)
    assert sp.directions.dtype == jnp.float32 and sp.value.dtype == jnp.float32
    assert abs(float(sp.value) - 1.0) <= 1e-4


def test_bad_inputs(orth2d, orth3d):
    X, y, D, sol, lam = orth2d
    n = X.shape[0]
    with pytest.raises(ValueError, match="shape"):
        cr.dual_spikes(X, lam[:-1])
    with pytest.raises(ValueError, match="NaN"):
        cr.dual_spikes(X, lam.at[0].set(jnp.nan))
    with pytest.raises(ValueError, match="inf|NaN"):
        cr.is_extreme_point(X, lam.at[0].set(jnp.inf))
    with pytest.raises(ValueError, match="tol"):
        cr.dual_spikes(X, lam, tol=-1.0)
    with pytest.raises(ValueError, match="num"):
        cr.rectified_ellipsoid(X, num=0)
    with pytest.raises(ValueError, match="key"):
        cr.rectified_ellipsoid(orth3d[0], num=10)
    with pytest.raises(ValueError, match="key"):
        cr.polar_boundary(X[:3], num=10)
    with pytest.raises(ValueError, match="patterns"):
        cr.dual_spikes(X, lam, patterns=D[:, :-1])
    with pytest.raises(ValueError, match="max_enumerated"):
        cr.dual_spikes(X, lam, max_enumerated=2)
    with pytest.raises(ValueError, match="±1"):
        cr.is_extreme_point(X, lam, y=2 * y)
    with pytest.raises(TypeError, match="ConvexSolution"):
        cr.dual_trajectory(cr.init_network(2, 3, key=jax.random.key(0)), X, y, lam)
    small = cr.init_network(2, 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="stacked"):
        cr.dual_trajectory(small, X, y, sol)
    with pytest.raises(TypeError):
        cr.dual_trajectory([], X, y, sol)
    with pytest.raises(ValueError, match="steps"):
        cr.dual_trajectory([small], X, y, sol, steps=np.arange(2))
    with pytest.raises(ValueError, match="network"):
        cr.dual_trajectory([cr.init_network(3, 3, key=jax.random.key(0))], X, y, sol)
    zero = cr.Network(jnp.zeros((2, 3)), jnp.zeros(3))
    with pytest.raises(ValueError, match="separates"):
        cr.dual_trajectory([zero], X, y, sol)
    assert n == lam.shape[0]
