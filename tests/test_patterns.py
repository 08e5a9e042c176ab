"""Activation patterns: Cover's count, exact enumeration, sampling (issue 2)."""

import itertools
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import linprog

import convexrelu as cr
from convexrelu import _patterns


def _rows(D):
    return {bytes(r) for r in np.asarray(D, dtype=np.uint8)}


def _gaussian(n, d, seed):
    return jax.random.normal(jax.random.key(seed), (n, d), dtype=jnp.float64)


def _cells_by_lp(X):
    """Every pattern, by brute force: sign vector s is a cell iff {g : s_i x_iᵀ g ≥ 1} ≠ ∅."""
    X = np.asarray(X)
    n, d = X.shape
    nz = np.linalg.norm(X, axis=1) > 0
    out = set()
    for s in itertools.product([-1.0, 1.0], repeat=int(nz.sum())):
        s = np.array(s)
        res = linprog(
            np.zeros(d), A_ub=-(s[:, None] * X[nz]), b_ub=-np.ones(s.size),
            bounds=[(None, None)] * d, method="highs",
        )
        if res.status == 0:
            D = np.ones(n, dtype=np.uint8)
            D[nz] = s > 0
            out.add(bytes(D))
    return out


# ------------------------------------------------------------------------------- counts


def test_pattern_count_closed_forms():
    for n in range(1, 12):
        assert cr.pattern_count(n, 1) == 2
        assert cr.pattern_count(n, 2) == 2 * n
        assert cr.pattern_count(n, n) == 2**n  # every sign vector
        assert cr.pattern_count(n, n + 3) == 2**n
    assert cr.pattern_count(40, 5) == 2 * sum(math.comb(39, k) for k in range(5))


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300), st.data())
def test_pattern_bound_dominates_count(n, data):
    r = data.draw(st.integers(1, n))
    assert cr.pattern_bound(n, r) >= cr.pattern_count(n, r)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, None])
def test_counts_refuse_bad_sizes(bad):
    with pytest.raises((TypeError, ValueError)):
        cr.pattern_count(bad, 2)
    with pytest.raises((TypeError, ValueError)):
        cr.pattern_bound(5, bad)


# --------------------------------------------------------------------------- enumeration


@pytest.mark.parametrize("n,d", [(9, 1), (10, 2), (12, 3), (16, 4), (14, 5), (9, 9)])
def test_enumeration_equals_cover_count_and_contains_samples(n, d):
    X = _gaussian(n, d, seed=10 * n + d)
    D = cr.enumerate_patterns(X)
    assert D.dtype == jnp.bool_ and D.shape == (cr.pattern_count(n, min(n, d)), n)
    assert len(_rows(D)) == D.shape[0]  # distinct
    S = cr.sample_patterns(X, num=3000, key=jax.random.key(d))
    assert _rows(S) <= _rows(D)


@pytest.mark.slow
@pytest.mark.parametrize("n,d", [(40, 3), (20, 5), (40, 5)])
def test_enumeration_cover_count_larger(n, d):
    X = _gaussian(n, d, seed=n + d)
    t = time.perf_counter()
    D = cr.enumerate_patterns(X)
    assert time.perf_counter() - t < 60
    assert D.shape == (cr.pattern_count(n, d), n)
    assert _rows(cr.sample_patterns(X, num=5000, key=jax.random.key(0))) <= _rows(D)


def test_enumeration_low_rank_uses_the_rank():
    """Rank-2 data in R^5: the count is Cover's for r = 2, i.e. 2n."""
    k1, k2 = jax.random.split(jax.random.key(3))
    X = jax.random.normal(k1, (11, 2), dtype=jnp.float64) @ jax.random.normal(k2, (2, 5), dtype=jnp.float64)
    assert cr.enumerate_patterns(X).shape == (2 * 11, 11)


def _degenerate_cases():
    rng = np.random.default_rng(0)
    X1 = rng.standard_normal((7, 3))
    X1[3] = X1[1]
    X1[5] = -2 * X1[0]  # repeated and antipodal rows
    X2 = rng.standard_normal((7, 3))
    X2[2] = 0  # a zero row: active in every pattern
    X3 = rng.standard_normal((8, 3))
    X3[:4, 2] = 0  # four points in one plane through 0: their hyperplanes share a ray
    X4 = rng.standard_normal((7, 3))
    X4[4], X4[5] = X4[0] + X4[1], X4[0] - 3 * X4[1]
    X5 = np.array([[1.0, 0], [0, 1], [1, 1], [-1, 0], [2, 0]])
    X6 = np.abs(rng.standard_normal((6, 3)))  # one orthant: the all-0 and all-1 patterns exist
    X7 = rng.standard_normal((6, 1))
    return {"dup-antipodal": X1, "zero-row": X2, "coplanar": X3, "dependent": X4,
            "2d": X5, "orthant": X6, "r=1": X7}


@pytest.mark.parametrize("name", list(_degenerate_cases()))
def test_enumeration_exact_on_degenerate_data(name):
    X = _degenerate_cases()[name]
    assert _rows(cr.enumerate_patterns(jnp.asarray(X))) == _cells_by_lp(X)


def test_enumeration_general_position_matches_lp():
    X = np.asarray(_gaussian(7, 3, seed=1))
    D = cr.enumerate_patterns(jnp.asarray(X))
    assert _rows(D) == _cells_by_lp(X)


def test_enumeration_rank_one_and_all_zero():
    X = jnp.asarray([[1.0], [-2.0], [0.0], [3.0]])
    assert _rows(cr.enumerate_patterns(X)) == {bytes([1, 0, 1, 1]), bytes([0, 1, 1, 0])}
    assert np.array_equal(np.asarray(cr.enumerate_patterns(jnp.zeros((3, 2)))), np.ones((1, 3), bool))


def test_enumeration_float32():
    X = _gaussian(14, 3, seed=5).astype(jnp.float32)
    assert cr.enumerate_patterns(X).shape == (cr.pattern_count(14, 3), 14)


def test_enumeration_refuses_large_problems_fast():
    X = _gaussian(5000, 40, seed=0)
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"\d+ patterns"):
        cr.enumerate_patterns(X)
    assert time.perf_counter() - t < 2.0
    X = _gaussian(30, 5, seed=0)
    count = cr.pattern_count(30, 5)  # 2 Σ_{k<5} C(29, k) = 55 682
    assert count == 55_682
    with pytest.raises(ValueError, match=f"{count} patterns"):
        cr.enumerate_patterns(X, max_patterns=count - 1)


@pytest.mark.parametrize(
    "kwargs, err",
    [({"max_patterns": 0}, ValueError), ({"max_patterns": 1.5}, TypeError), ({"batch_size": -1}, ValueError)],
)
def test_enumeration_bad_arguments(kwargs, err):
    with pytest.raises(err):
        cr.enumerate_patterns(_gaussian(5, 2, 0), **kwargs)


# ------------------------------------------------------------------------------ sampling


def test_sampled_patterns_distinct_and_realized_by_their_gates():
    X = _gaussian(30, 4, seed=2)
    D, G = cr.sample_patterns(X, num=2000, key=jax.random.key(0), return_gates=True)
    assert D.dtype == jnp.bool_ and G.dtype == X.dtype
    assert D.shape[1] == 30 and G.shape == (D.shape[0], 4)
    assert len(_rows(D)) == D.shape[0]
    assert D.shape[0] <= cr.pattern_count(30, 4)
    assert np.array_equal(np.asarray(D), np.asarray(X @ G.T >= 0).T)


def test_sampling_independent_of_chunking_and_deterministic():
    X = _gaussian(25, 3, seed=4)
    key = jax.random.key(7)
    one = cr.sample_patterns(X, num=997, key=key, chunk_size=997)
    for chunk in (1000, 64, 7):
        D, G = cr.sample_patterns(X, num=997, key=key, chunk_size=chunk, return_gates=True)
        assert np.array_equal(np.asarray(D), np.asarray(one))  # same set, same first-seen order
    # the first pattern is the first gate's: gate j comes from split(key, num)[j]
    g0 = jax.random.normal(jax.random.split(key, 997)[0], (3,), X.dtype)
    assert np.array_equal(np.asarray(one[0]), np.asarray(X @ g0 >= 0))
    assert np.allclose(np.asarray(G[0]), np.asarray(g0))
    other = cr.sample_patterns(X, num=997, key=jax.random.key(8))
    assert other.shape != one.shape or not np.array_equal(np.asarray(other), np.asarray(one))


def test_sampling_traces_once_per_shape():
    """The chunk function is traced at most once per call, and not again for the same shapes."""
    X = _gaussian(19, 3, seed=6)
    traces = lambda: eqx.debug.get_num_traces(_patterns._gate_chunk_jit)  # noqa: E731
    before = traces()
    cr.sample_patterns(X, num=50, key=jax.random.key(0), chunk_size=13)  # 4 chunks, last padded
    assert traces() - before <= 1
    mid = traces()
    cr.sample_patterns(X, num=40, key=jax.random.key(1), chunk_size=13)  # cached: no new trace
    assert traces() == mid
    cr.sample_patterns(X, num=30, key=jax.random.key(2), chunk_size=11)  # new chunk shape: one trace
    assert traces() == mid + 1


def test_chunk_function_under_jit_and_vmap():
    Xs = jax.random.normal(jax.random.key(0), (3, 17, 4), dtype=jnp.float64)
    keys = jax.random.split(jax.random.key(1), 9)
    bits, G = jax.vmap(_patterns._gate_chunk, in_axes=(0, None))(Xs, keys)
    for b in range(3):
        eb, eG = _patterns._gate_chunk(Xs[b], keys)
        jb, _ = jax.jit(_patterns._gate_chunk)(Xs[b], keys)
        assert np.array_equal(np.asarray(bits[b]), np.asarray(eb))
        assert np.array_equal(np.asarray(jb), np.asarray(eb))
        unpacked = np.unpackbits(np.asarray(eb), axis=1, count=17).astype(bool)
        assert np.array_equal(unpacked, np.asarray(Xs[b] @ eG.T >= 0).T)


def test_sampling_float32_follows_dtype():
    X = _gaussian(20, 3, seed=9).astype(jnp.float32)
    D, G = cr.sample_patterns(X, num=500, key=jax.random.key(0), return_gates=True)
    assert G.dtype == jnp.float32
    assert np.array_equal(np.asarray(D), np.asarray(X @ G.T >= 0).T)


@pytest.mark.parametrize("num, err", [(0, ValueError), (-5, ValueError), (2.5, TypeError), (True, TypeError)])
def test_sampling_refuses_bad_num(num, err):
    with pytest.raises(err, match="num"):
        cr.sample_patterns(_gaussian(5, 2, 0), num=num, key=jax.random.key(0))


def test_sampling_refuses_bad_data():
    X = np.asarray(_gaussian(5, 2, 0)).copy()
    X[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cr.sample_patterns(jnp.asarray(X), num=10, key=jax.random.key(0))
    with pytest.raises(ValueError, match="2-D"):
        cr.sample_patterns(jnp.ones(5), num=10, key=jax.random.key(0))
    with pytest.raises(TypeError, match="float16"):
        cr.sample_patterns(jnp.ones((5, 2), dtype=jnp.float16), num=10, key=jax.random.key(0))
    Xi = jnp.asarray([[1, 2], [-1, 0], [0, 3], [2, -1], [-2, -2]], dtype=jnp.int32)  # documented cast to float
    Di = cr.sample_patterns(Xi, num=10, key=jax.random.key(0))
    assert np.array_equal(np.asarray(Di), np.asarray(cr.sample_patterns(Xi.astype(float), num=10, key=jax.random.key(0))))
    with pytest.raises(ValueError, match="chunk_size"):
        cr.sample_patterns(_gaussian(5, 2, 0), num=10, key=jax.random.key(0), chunk_size=0)
    with pytest.raises(ValueError, match="NaN"):
        cr.enumerate_patterns(jnp.asarray(X))


# ------------------------------------------------------------------------------- merging


def _random_patterns(p, n, seed):
    return jnp.asarray(np.random.default_rng(seed).random((p, n)) < 0.5)


def test_merge_is_the_distinct_union():
    D1 = _random_patterns(30, 6, seed=0)  # 30 rows of 2^6 = 64 possible: repeats inside
    D2 = _random_patterns(25, 6, seed=1)
    M = cr.merge_patterns(D1, D2)
    assert M.dtype == jnp.bool_ and M.shape[1] == 6
    assert len(_rows(M)) == M.shape[0]  # distinct
    assert _rows(M) == _rows(D1) | _rows(D2)  # exactly the union
    assert M.shape[0] < D1.shape[0] + D2.shape[0]  # the duplicates were dropped
    # first-seen order: D1's distinct rows, in order, are a prefix
    first = list(dict.fromkeys(bytes(r) for r in np.asarray(D1, dtype=np.uint8)))
    assert [bytes(r) for r in np.asarray(M[: len(first)], dtype=np.uint8)] == first


def test_merge_idempotent_and_order_independent_as_a_set():
    D1 = _random_patterns(40, 9, seed=2)  # n = 9: two packed bytes per row
    D2 = _random_patterns(40, 9, seed=3)
    D3 = cr.enumerate_patterns(_gaussian(9, 2, seed=4))
    M = cr.merge_patterns(D1, D2, D3)
    assert np.array_equal(np.asarray(cr.merge_patterns(M)), np.asarray(M))  # idempotent
    assert np.array_equal(np.asarray(cr.merge_patterns(M, M, D2)), np.asarray(M))
    assert np.array_equal(np.asarray(cr.merge_patterns(D1, D2, D3)), np.asarray(M))  # deterministic
    for perm in itertools.permutations((D1, D2, D3)):
        assert _rows(cr.merge_patterns(*perm)) == _rows(M)
    # a distinct set (the enumeration) merged with its own subset is unchanged, same order
    assert np.array_equal(np.asarray(cr.merge_patterns(D3, D3[::3])), np.asarray(D3))


def test_merge_sampled_and_trained_patterns():
    X = _gaussian(15, 3, seed=7)
    S = cr.sample_patterns(X, num=40, key=jax.random.key(0))
    net = cr.init_network(3, 20, scale=1.0, key=jax.random.key(1))
    Dn = cr.neuron_patterns(net, X)
    M = cr.merge_patterns(S, Dn)
    assert _rows(M) == _rows(S) | _rows(Dn) and _rows(M) <= _rows(cr.enumerate_patterns(X))
    assert cr.merge_patterns(S[:0], S[:0]).shape == (0, 15)  # empty inputs


def test_merge_refuses_bad_input():
    D = _random_patterns(4, 5, seed=0)
    with pytest.raises(ValueError, match="at least one"):
        cr.merge_patterns()
    with pytest.raises(ValueError, match="number of samples|numbers of samples"):
        cr.merge_patterns(D, _random_patterns(4, 6, seed=1))
    with pytest.raises(TypeError, match="boolean"):
        cr.merge_patterns(D, D.astype(jnp.int32))
    with pytest.raises(ValueError, match="2-D"):
        cr.merge_patterns(D[0])
    with pytest.raises(ValueError, match="2-D"):
        cr.merge_patterns(D, D[None])
