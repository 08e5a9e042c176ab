"""The matrix-free solver of the regularized program (issue 19): it agrees with Clarabel through
cvxpy and with the interior point, its certificate is :func:`convexrelu.optimality`'s, over one
chunk of patterns or several; float32, warm starts, vmap over β; the memory refusal."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import regularized_reference

import convexrelu as cr
from convexrelu import _matrix_free, _memory, _solver


def _problem(n=40, d=4, num=15, seed=0, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    X = jax.random.normal(k1, (n, d), dtype)
    y = jnp.sign(X @ jax.random.normal(k2, (d,), dtype) + 0.3 * jnp.sin(3.0 * X[:, 0]))
    return X, y, cr.sample_patterns(X, num=num, key=k3)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_agrees_with_clarabel_and_the_interior_point(loss):
    X, y, D = _problem()
    beta = 0.1 * float(cr.beta_max(X, y, D, loss=loss))
    sol = cr.solve_regularized(X, y, D, beta=beta, loss=loss, method="matrix-free", tol=1e-8)
    ref = regularized_reference(X, y, D, beta=beta, loss=loss)[0]
    assert sol.ok and abs(float(sol.value) - ref) / abs(ref) <= 1e-5
    ipm = cr.solve_regularized(X, y, D, beta=beta, loss=loss, method="ipm")
    assert abs(float(sol.value) - float(ipm.value)) / abs(float(ipm.value)) <= 1e-6
    # the reported certificate is optimality()'s, recomputed from the returned point
    opt = cr.optimality(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual, program=sol.program, beta=beta)
    np.testing.assert_allclose([opt.value, opt.gap, opt.residual], [sol.value, sol.gap, sol.residual], rtol=1e-8, atol=1e-12)
    assert float(opt.gap) <= 1e-8 and float(opt.residual) <= 1e-8 and float(opt.dual_value) <= ref * (1 + 1e-9)


def test_chunks_of_patterns_give_the_same_solve_and_certificate(monkeypatch):
    X, y, D = _problem(num=15, seed=1)
    beta = 0.2 * float(cr.beta_max(X, y, D, loss="squared"))
    one = cr.solve_regularized(X, y, D, beta=beta, method="matrix-free", tol=1e-7)
    monkeypatch.setattr(_matrix_free, "CHUNK_BYTES", 2 * X.shape[0] * 8 * 4)  # 4 patterns a chunk: 15 = 4+4+4+3
    assert _matrix_free.chunk_size(15, X.shape[0], 8) == 4
    many = cr.solve_regularized(X, y, D, beta=beta, method="matrix-free", tol=1e-7)
    assert many.ok and abs(float(many.value) - float(one.value)) <= 1e-7 * float(one.value)
    np.testing.assert_allclose(many.U, one.U, atol=1e-5)
    # the chunked evaluation of optimality() (the float32 host check uses it) is optimality()
    for loss, sol in (("squared", many), ("logistic", None)):
        program = f"regularized-{loss}"
        if sol is None:
            sol = cr.solve_regularized(X, y, D, beta=beta, loss=loss, method="matrix-free", tol=1e-4)
        args = (X, y, D, sol.U, sol.V, sol.dual + 0.01, sol.cone_dual * 1.1)
        want = cr.optimality(*args, program=program, beta=beta)
        got = _matrix_free.chunked_optimality(*args, program=program, beta=beta)
        np.testing.assert_allclose(jnp.stack(got), jnp.stack(want), rtol=1e-10, atol=1e-13)


def test_float32_reaches_tol():
    X, y, D = _problem(dtype=jnp.float32, seed=2)
    for loss in ("squared", "logistic"):
        beta = 0.1 * float(cr.beta_max(X, y, D, loss=loss))
        sol = cr.solve_regularized(X, y, D, beta=beta, loss=loss, method="matrix-free")
        assert sol.ok and sol.U.dtype == jnp.float32  # status verified in float64 on the host
        assert float(sol.gap) <= 1e-4 and float(sol.residual) <= 1e-4


def test_warm_start_vmap_and_jit():
    X, y, D = _problem(seed=3)
    bmax = float(cr.beta_max(X, y, D, loss="squared"))
    kw = dict(method="matrix-free", tol=1e-6)
    first = cr.solve_regularized(X, y, D, beta=0.2 * bmax, **kw)
    cold = cr.solve_regularized(X, y, D, beta=0.18 * bmax, **kw)
    warm = cr.solve_regularized(X, y, D, beta=0.18 * bmax, init=first, **kw)
    assert warm.ok and int(warm.iterations) < int(cold.iterations)
    assert abs(float(warm.value) - float(cold.value)) <= 2e-6 * float(cold.value)
    betas = jnp.array([0.1, 0.3]) * bmax
    batch = jax.vmap(lambda b: cr.solve_regularized(X, y, D, beta=b, throw=False, **kw))(betas)
    for i, b in enumerate(betas):
        one = cr.solve_regularized(X, y, D, beta=b, **kw)
        assert int(batch.status[i]) == 0 and abs(float(batch.value[i]) - float(one.value)) <= 1e-6 * float(one.value)
    jitted = jax.jit(lambda X: cr.solve_regularized(X, y, D, beta=0.2 * bmax, **kw).value)(X)
    assert abs(float(jitted) - float(first.value)) <= 1e-6 * float(first.value)  # both within tol of P*


def test_auto_and_bad_methods():
    X, y, D = _problem()
    with pytest.raises(ValueError, match="regularized programs"):
        cr.solve_max_margin(X, y, D, method="matrix-free")
    assert cr.solve_regularized(X, y, D, beta=1.0, method="matrix-free", max_iters=3, throw=False).status_name == "max_iters"


def test_memory_refusal_before_any_work(monkeypatch):
    X, y, D = _problem()
    n, d, p = 10**5, 50, 500
    ipm, mf = (_memory.memory_estimate(m, n, d, p, 8) for m in ("ipm", "matrix-free"))
    assert ipm >= 8 * 8 * n * n and mf < ipm / 10  # the IPM's n × n blocks; O(np) floats without them
    assert _memory.memory_estimate("matrix-free", n, d, p, 4) < mf  # float32 halves the floats
    monkeypatch.setattr(_memory, "physical_memory", lambda: 1000)  # a machine of 1000 bytes
    solve = _solver._solve
    calls = []
    monkeypatch.setattr(_solver, "_solve", lambda *a, **k: calls.append(1) or solve(*a, **k))
    for method in ("ipm", "admm", "matrix-free"):
        with pytest.raises(MemoryError, match=r"needs about .* GiB for n = 40, d = 4, p = 15"):
            cr.solve_regularized(X, y, D, beta=1.0, method=method)
    assert not calls  # refused before any solve started
    monkeypatch.setattr(_memory, "physical_memory", lambda: 0)  # unknown: no refusal
    assert cr.solve_regularized(X, y, D, beta=1.0, method="matrix-free", tol=1e-4).ok and calls


def test_auto_picks_matrix_free_when_the_interior_point_does_not_fit(monkeypatch):
    X, y, D = _problem()
    (n, d), p = X.shape, D.shape[0]
    ipm, mf = (_memory.memory_estimate(m, n, d, p, 8) for m in ("ipm", "matrix-free"))
    assert mf < ipm
    picked = []
    solve = _solver._solve
    monkeypatch.setattr(_solver, "_solve", lambda *a, **k: picked.append(k["method"]) or solve(*a, **k))
    monkeypatch.setattr(_memory, "physical_memory", lambda: (ipm + mf) // 2)  # room for one, not the other
    sol = cr.solve_regularized(X, y, D, beta=1.0, tol=1e-4)
    assert sol.ok and picked == ["matrix-free"]
    with pytest.raises(MemoryError):  # asked for by name, the interior point is refused
        cr.solve_regularized(X, y, D, beta=1.0, method="ipm")
    monkeypatch.setattr(_memory, "physical_memory", lambda: 2 * ipm)
    cr.solve_regularized(X, y, D, beta=1.0, tol=1e-4)
    assert picked[-1] == "ipm"
