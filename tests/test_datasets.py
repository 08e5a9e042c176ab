"""Datasets satisfy their contracts (issue 2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import datasets as ds

from _reference import max_margin_reference


# ----------------------------------------------------------------- orthogonal separability


@pytest.mark.parametrize("n,d,seed", [(40, 5, 0), (20, 5, 1), (30, 2, 2), (12, 1, 3), (25, 10, 4)])
def test_orthogonally_separable_contract(n, d, seed):
    X, y = ds.orthogonally_separable(n, d, key=jax.random.key(seed))
    assert X.shape == (n, d) and y.shape == (n,) and y.dtype == X.dtype
    assert set(np.unique(np.asarray(y)).tolist()) == {-1.0, 1.0}
    assert ds.is_orthogonally_separable(X, y)
    # strict gap: same-class cosines ≥ 0.05, cross-class ≤ -0.05 (no ties for training)
    U = np.asarray(X) / np.linalg.norm(np.asarray(X), axis=1, keepdims=True)
    cos = U @ U.T
    same = np.asarray(y)[:, None] == np.asarray(y)[None, :]
    assert cos[same].min() >= 0.05 and cos[~same].max() <= -0.05
    # non-degenerate: each class spans the full space (not two orthogonal supports)
    if d > 1:
        for c in (-1.0, 1.0):
            Xc = np.asarray(X)[np.asarray(y) == c]
            assert np.linalg.matrix_rank(Xc) == min(d, Xc.shape[0])
        # and the classes are not orthogonal subspaces: some cross inner product is < 0
        assert cos[~same].min() < -0.1


def test_orthogonally_separable_float32_and_parameters():
    X, y = ds.orthogonally_separable(10, 3, key=jax.random.key(0), dtype=jnp.float32)
    assert X.dtype == jnp.float32 and ds.is_orthogonally_separable(X, y)
    with pytest.raises(ValueError, match="angle"):
        ds.orthogonally_separable(10, 3, key=jax.random.key(0), angle=1.0)
    with pytest.raises(ValueError, match="spread"):
        ds.orthogonally_separable(10, 3, key=jax.random.key(0), spread=0.5)
    with pytest.raises(ValueError, match="n"):
        ds.orthogonally_separable(1, 3, key=jax.random.key(0))
    with pytest.raises(TypeError, match="d"):
        ds.orthogonally_separable(10, 3.0, key=jax.random.key(0))


def test_is_orthogonally_separable_true_and_false_cases():
    e = jnp.eye(2, dtype=jnp.float64)
    assert ds.is_orthogonally_separable(e, jnp.array([1.0, -1.0]))  # x1ᵀx2 = 0 ≤ 0
    assert not ds.is_orthogonally_separable(e, jnp.array([1.0, 1.0]))  # needs > 0
    X = jnp.array([[1.0, 0.2], [0.9, -0.1], [-1.0, 0.3]])
    assert ds.is_orthogonally_separable(X, jnp.array([1.0, 1.0, -1.0]))
    assert not ds.is_orthogonally_separable(X, jnp.array([1.0, -1.0, -1.0]))
    Xz = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    assert not ds.is_orthogonally_separable(Xz, jnp.array([1.0, -1.0]))  # x2ᵀx2 = 0
    X, y = ds.orthogonally_separable(20, 4, key=jax.random.key(1))
    flipped = y.at[0].multiply(-1.0)
    assert not ds.is_orthogonally_separable(X, flipped)


def test_is_orthogonally_separable_refuses_bad_input():
    X = jnp.eye(2)
    with pytest.raises(ValueError, match="±1"):
        ds.is_orthogonally_separable(X, jnp.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="NaN"):
        ds.is_orthogonally_separable(jnp.array([[1.0, jnp.nan], [0.0, 1.0]]), jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="shape"):
        ds.is_orthogonally_separable(X, jnp.array([1.0, -1.0, 1.0]))


# ---------------------------------------------------------------------------------- teacher


def test_teacher_labels_are_teacher_outputs():
    data = ds.teacher(40, 5, key=jax.random.key(0), m_teacher=4)
    X, y, gates, w2, D = data
    f = jax.nn.relu(X @ gates.T) @ w2
    assert np.all(np.asarray(f) != 0)
    assert np.array_equal(np.asarray(y), np.sign(np.asarray(f)))
    assert set(np.unique(np.asarray(y)).tolist()) == {-1.0, 1.0}
    assert np.array_equal(np.asarray(D), np.asarray(X @ gates.T >= 0).T)
    net = cr.Network(gates.T, w2)
    assert np.allclose(np.asarray(cr.forward(net, X)), np.asarray(f))


def test_teacher_patterns_make_max_margin_program_feasible():
    """P* over the teacher's patterns ≤ Σ_j ‖g_j‖ / min_i |f(x_i)| (the scaled teacher is feasible)."""
    data = ds.teacher(16, 3, key=jax.random.key(2), m_teacher=3)
    f = jax.nn.relu(data.X @ data.gates.T) @ data.w2
    upper = float(jnp.sum(jnp.linalg.norm(data.gates, axis=1)) / jnp.min(jnp.abs(f)))
    value, *_ = max_margin_reference(data.X, data.y, data.patterns)
    assert 0 < value <= upper * (1 + 1e-6)


def test_teacher_refuses_bad_arguments():
    with pytest.raises(ValueError, match="m_teacher"):
        ds.teacher(10, 3, key=jax.random.key(0), m_teacher=1)
    with pytest.raises(ValueError, match="min_margin"):
        ds.teacher(10, 3, key=jax.random.key(0), min_margin=-1.0)


# -------------------------------------------------------------------------------------- 2-D


def test_two_d_kinds():
    X, y = ds.two_d(30, key=jax.random.key(0))
    assert X.shape == (30, 2) and ds.is_orthogonally_separable(X, y)
    X, y = ds.two_d(30, key=jax.random.key(1), kind="teacher")
    assert X.shape == (30, 2) and set(np.unique(np.asarray(y)).tolist()) <= {-1.0, 1.0}
    X, y = ds.two_d(50, key=jax.random.key(2), kind="xor")
    Xn = np.asarray(X)
    assert np.array_equal(np.asarray(y), np.sign(Xn[:, 0] * Xn[:, 1]))
    # realizable by the bias-free network |x1 + x2| - |x1 - x2| (4 neurons)
    W1 = jnp.array([[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
    f = cr.forward(cr.Network(W1, jnp.array([1.0, 1.0, -1.0, -1.0])), X)
    assert np.all(np.asarray(y) * np.asarray(f) > 0)
    with pytest.raises(ValueError, match="kind"):
        ds.two_d(10, key=jax.random.key(0), kind="spiral")


# -------------------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    "name, n, d", [("breast_cancer", 569, 30), ("iris", 100, 4), ("wine", 130, 13), ("digits", 357, 54)]
)
def test_load_standardized_binary(name, n, d):
    X, y = ds.load(name)
    assert name in ds.DATASETS
    assert X.shape == (n, d) and y.shape == (n,)
    assert set(np.unique(np.asarray(y)).tolist()) == {-1.0, 1.0}
    assert np.allclose(np.asarray(X).mean(axis=0), 0, atol=1e-10)
    assert np.allclose(np.asarray(X).std(axis=0), 1, atol=1e-10)


def test_load_unknown_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        ds.load("mnist")


def test_load_file_npz_round_trip(tmp_path):
    X = np.random.default_rng(0).standard_normal((9, 3))
    t = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1])
    np.savez(tmp_path / "d.npz", X=X, y=t)
    Xl, yl = ds.load_file(tmp_path / "d.npz")
    assert np.allclose(np.asarray(Xl), X)
    assert np.array_equal(np.asarray(yl), 2.0 * t - 1.0)
    np.savez(tmp_path / "pm.npz", X=X, y=2 * t - 1)
    assert np.array_equal(np.asarray(ds.load_file(tmp_path / "pm.npz")[1]), 2.0 * t - 1.0)


@pytest.mark.parametrize("header", [True, False])
def test_load_file_csv_round_trip(tmp_path, header):
    X = np.random.default_rng(1).standard_normal((7, 2))
    t = np.array([3, 5, 5, 3, 3, 5, 3])  # any two classes: smaller → -1
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([X, t]), delimiter=",", header="a,b,label" if header else "", comments="")
    Xl, yl = ds.load_file(str(path))
    assert np.allclose(np.asarray(Xl), X)
    assert np.array_equal(np.asarray(yl), np.where(t == 5, 1.0, -1.0))


def test_load_file_refuses_bad_files(tmp_path):
    X = np.ones((4, 2))
    np.savez(tmp_path / "three.npz", X=X, y=np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="two classes"):
        ds.load_file(tmp_path / "three.npz")
    np.savez(tmp_path / "one.npz", X=X, y=np.zeros(4))
    with pytest.raises(ValueError, match="two classes"):
        ds.load_file(tmp_path / "one.npz")
    Xn = X.copy()
    Xn[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, y=np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        ds.load_file(tmp_path / "nan.npz")
    np.savez(tmp_path / "short.npz", X=X, y=np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="shape"):
        ds.load_file(tmp_path / "short.npz")
    np.savez(tmp_path / "nokey.npz", data=X)
    with pytest.raises(ValueError, match="'X' and 'y'"):
        ds.load_file(tmp_path / "nokey.npz")
    np.savez(tmp_path / "flat.npz", X=np.ones(4), y=np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        ds.load_file(tmp_path / "flat.npz")
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported"):
        ds.load_file(tmp_path / "d.txt")
    with pytest.raises(FileNotFoundError):
        ds.load_file(tmp_path / "missing.npz")
