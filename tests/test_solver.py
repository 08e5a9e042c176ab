"""The native solvers (interior point by default, ADMM) against cvxpy + Clarabel, duality,
batching, warm starts, failures. One problem shape, so each program compiles once per method."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import _ipm, _solver
from convexrelu import _programs as prog
from convexrelu._scaling import scale_problem
from convexrelu._solution import RESULTS


from _reference import max_margin_reference, regularized_reference

N, DIM, P, M_TEACHER = 20, 4, 24, 3  # one shape for most tests: one compilation per program


def _patterns(X, gates):
    return (X @ gates).T >= 0  # (p, n); duplicates are allowed (redundant blocks)


@functools.cache
def teacher_problem(seed):
    """Teacher-network labels; the teacher's own gates are among the patterns (feasible)."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    X = jax.random.normal(k1, (N, DIM))
    W = jax.random.normal(k2, (DIM, M_TEACHER))
    a = jnp.array([1.0, -1.0, 1.0])
    out = jax.nn.relu(X @ W) @ a
    y = jnp.where(out >= 0, 1.0, -1.0)
    gates = jnp.concatenate([W, jax.random.normal(k3, (DIM, P - M_TEACHER))], axis=1)
    return X, y, _patterns(X, gates), out


def orthogonal_problem(seed):
    """Orthogonally separable: class +1 in the cone of e1, e2; class -1 in that of e3, e4."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    y = jnp.where(jnp.arange(N) % 2 == 0, 1.0, -1.0)
    A = jnp.abs(jax.random.normal(k1, (N, 2))) + 0.1
    X = jnp.where(y[:, None] > 0, jnp.concatenate([A, jnp.zeros((N, 2))], 1), jnp.concatenate([jnp.zeros((N, 2)), A], 1))
    gates = jax.random.normal(k2, (DIM, P))
    gates = gates.at[:, 0].set(jnp.array([1.0, 1.0, -1.0, -1.0])).at[:, 1].set(jnp.array([-1.0, -1.0, 1.0, 1.0]))
    return X, y, _patterns(X, gates)


@pytest.mark.parametrize("make", [lambda: teacher_problem(0)[:3], lambda: orthogonal_problem(1)], ids=["teacher", "orthogonal"])
def test_max_margin_matches_clarabel(make):
    X, y, D = make()
    sol = cr.solve_max_margin(X, y, D)
    ref, *_ = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and sol.program == "max-margin"
    assert abs(float(sol.value) - ref) <= 1e-6 * ref
    assert float(sol.residual) <= 1e-6 and float(sol.gap) <= 1e-6
    # the reported numbers are those of _programs on the returned point
    opt = prog.optimality(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual, program="max-margin")
    np.testing.assert_allclose([opt.value, opt.gap, opt.residual], [sol.value, sol.gap, sol.residual], rtol=1e-12, atol=1e-15)
    assert float(opt.dual_value) <= ref * (1 + 1e-9)  # a valid lower bound
    assert float(prog.margin_violation(X, y, D, sol.U, sol.V)) <= 1e-12  # margins exactly feasible


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_regularized_matches_clarabel(loss):
    X, y, D, out = teacher_problem(2)
    key = jax.random.PRNGKey(5)
    yy = out + 0.1 * jax.random.normal(key, (N,)) if loss == "squared" else y
    beta = 0.05
    tol = 1e-6
    sol = cr.solve_regularized(X, yy, D, beta=beta, loss=loss, tol=tol)
    ref, *_ = regularized_reference(X, yy, D, beta=beta, loss=loss)
    assert sol.status == RESULTS.optimal and sol.program == f"regularized-{loss}"
    assert abs(float(sol.value) - ref) <= 2 * tol * max(1.0, abs(ref))
    assert float(sol.residual) <= tol and float(sol.gap) <= tol
    dual = prog.regularized_dual_objective(X, yy, D, sol.dual, sol.cone_dual, beta=beta, loss=loss)
    assert float(dual) <= ref + 1e-9  # weak duality
    # dual is r = -∇ℓ at the solution
    f = prog.convex_fit(X, D, sol.U, sol.V)
    np.testing.assert_allclose(sol.dual, prog.negative_loss_gradient(f, yy, loss), rtol=1e-10, atol=1e-12)


def test_weak_duality_random_networks():
    """γ(θ) ≤ 1/(2 P*(D)) when D contains the patterns of θ (θ's neurons give a feasible point)."""
    for seed in range(2):
        k1, k2 = jax.random.split(jax.random.PRNGKey(100 + seed))
        X = jax.random.normal(k1, (N, DIM))
        net = cr.init_network(DIM, P, scale=1.0, key=k2)
        f = cr.forward(net, X)
        y = jnp.where(f >= 0, 1.0, -1.0)
        D = cr.neuron_patterns(net, X)
        sol = cr.solve_max_margin(X, y, D)
        gamma = float(cr.normalized_margin(net, X, y))
        assert 0 < gamma <= (1 + 1e-5) / (2 * float(sol.value))
        # and the bound is tight: ψ(solution) uses the same patterns and attains it
        psi = cr.to_network(sol)
        assert float(cr.normalized_margin(psi, X, y)) == pytest.approx(1 / (2 * float(sol.value)), rel=1e-5)


def test_ipm_matches_admm():
    X, y, D = teacher_problem(0)[:3]
    ipm = cr.solve_max_margin(X, y, D, method="ipm")
    admm = cr.solve_max_margin(X, y, D, method="admm")
    assert ipm.ok and admm.ok
    assert int(ipm.iterations) < 100 < int(admm.iterations)
    np.testing.assert_allclose(ipm.value, admm.value, rtol=2e-6)
    # both dual bounds are valid for both primal values (weak duality across methods)
    for a, b in ((ipm, admm), (admm, ipm)):
        dual = prog.max_margin_dual_objective(X, y, D, a.dual, a.cone_dual)
        assert float(dual) <= float(b.value) * (1 + 1e-9)


def test_vmap_over_beta_equals_loop():
    X, _, D, out = teacher_problem(3)
    betas = jnp.array([0.02, 0.5])
    solve = lambda b: cr.solve_regularized(X, out, D, beta=b, loss="squared", throw=False)  # noqa: E731
    batch = jax.vmap(solve)(betas)
    assert batch.value.shape == (2,) and batch.U.shape == (2, P, DIM)
    for i, b in enumerate(betas):
        one = solve(b)
        assert int(batch.status[i]) == RESULTS.optimal == int(one.status)
        np.testing.assert_allclose(batch.value[i], one.value, rtol=3e-6)
        assert float(batch.gap[i]) <= 1e-6 and float(batch.residual[i]) <= 1e-6


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_host_gram_equals_xla_gram(dtype, monkeypatch):
    # the capacitance Gram Σ_j (D_j ⊙ X R_jᵀ)(D_j ⊙ X R_jᵀ)ᵀ: host BLAS and XLA, with chunks
    # that do not divide p (padding in XLA, a short last chunk in NumPy), against one einsum
    monkeypatch.setattr(_ipm, "_CHUNK_ELEMS", 7 * 13 * 3)
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(7), 3)
    n, d, p = 13, 3, 17
    X = jax.random.normal(k1, (n, d), dtype)
    Df = (jax.random.uniform(k2, (p, n)) > 0.5).astype(dtype)
    R = jax.random.normal(k3, (p, d, d), dtype)
    F = Df[:, :, None] * jnp.einsum("na,jba->jnb", X, R)  # (p, n, d)
    ref = np.einsum("jna,jma->nm", np.asarray(F, np.float64), np.asarray(F, np.float64))
    rtol = 1e-12 if dtype == jnp.float64 else 1e-5
    for K in (_ipm._gram_numpy(X, Df, R), jax.jit(_ipm._gram_xla)(X, Df, R)):
        assert K.dtype == dtype
        np.testing.assert_allclose(np.asarray(K, np.float64), ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    # single precision (the host path's first iterations), handed back in the solve's dtype
    K = _ipm._gram_numpy(X, Df, R, True)
    assert K.dtype == dtype
    np.testing.assert_allclose(K, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    if dtype == jnp.float64:  # ... and it is single precision: not float64-accurate
        assert np.abs(K - ref).max() > 1e-12 * np.abs(ref).max()
    # the host path hands back the Cholesky factor of the capacitance C = I + Ω½ K Ω½
    so = np.linspace(0.5, 2.0, n)
    L = _ipm._capacitance_numpy(X, Df, R, so)
    assert L.dtype == dtype
    L = np.asarray(L, np.float64)
    C = np.eye(n) + so[:, None] * ref * so[None, :]
    assert np.array_equal(L, np.tril(L))
    np.testing.assert_allclose(L @ L.T, C, rtol=rtol, atol=rtol * np.abs(C).max())


@pytest.fixture
def host_gram_calls(monkeypatch):
    """Force the host-BLAS capacitance path (used on the CPU for large ``n² p d``) and record the
    precision of each Gram it computes (``True``: single)."""
    calls = []
    gram = _ipm._gram_numpy
    monkeypatch.setattr(_ipm, "_gram_numpy", lambda *a: (calls.append(bool(a[-1])), gram(*a))[1])
    monkeypatch.setattr(_ipm, "_HOST_GEMM_WORK", 0)
    monkeypatch.setattr(_ipm, "_DENSE_MAX", 0)  # the capacitance path, also for small programs
    jax.clear_caches()  # JAX caches traced loop bodies by shape: retrace with the patched path
    yield calls
    jax.clear_caches()  # and do not leave those traces to later tests


@pytest.fixture
def woodbury(monkeypatch):
    """Solve the normal equations by Woodbury even where ``N`` is small enough to be factored
    directly. JAX caches traced loop bodies by shape, so the caches are cleared before and after."""
    monkeypatch.setattr(_ipm, "_DENSE_MAX", 0)
    jax.clear_caches()
    yield
    jax.clear_caches()


def test_host_blas_path_solves_under_vmap(host_gram_calls):
    # the host-BLAS capacitance on a problem of its own shape (a fresh trace), batched over β:
    # each solve matches Clarabel on the same patterns
    X, _, D, out = teacher_problem(3)
    X, out, D = X[:17], out[:17], D[:, :17]
    betas = jnp.array([0.02, 0.5])
    batch = jax.vmap(lambda b: cr.solve_regularized(X, out, D, beta=b, method="ipm", throw=False))(betas)
    assert host_gram_calls, "the host-BLAS Gram was not used"
    for i, b in enumerate(np.asarray(betas)):
        ref, *_ = regularized_reference(X, out, D, beta=float(b))
        assert int(batch.status[i]) == RESULTS.optimal
        assert abs(float(batch.value[i]) - ref) <= 2e-6 * max(1.0, abs(ref))


def test_host_gram_single_precision_until_refinement_struggles(host_gram_calls):
    # the host-BLAS Gram starts in single precision and switches to double, for good, once an
    # iterative refinement struggles (single precision alone cannot reach 1e-6 on max-margin
    # problems: the margin rows' scaling spans many orders); the optimum is Clarabel's
    X, y, D = teacher_problem(1)[:3]
    X, y, D = X[:19], y[:19], D[:, :19]  # a shape of its own: a fresh trace with the host path
    sol = cr.solve_max_margin(X, y, D, method="ipm")
    ref, *_ = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and abs(float(sol.value) - ref) <= 1e-6 * ref and float(sol.gap) <= 1e-6
    calls = host_gram_calls
    k = calls.index(False)  # switched ...
    assert k >= 2 and all(calls[:k]) and not any(calls[k:])  # ... after single-precision iterations, for good


def test_host_gram_loose_tolerance_is_not_a_struggle(host_gram_calls):
    # at tol 1e-4 the refinement stops at 1e-7 (a thousandth of tol), above sqrt(eps): reaching
    # that target is no struggle, so the Gram stays in single precision as it does at tol 1e-6
    rng = np.random.default_rng(0)
    X = rng.standard_normal((83, 6))  # a shape of its own: a fresh trace with the host path
    y = X @ rng.standard_normal(6) + 0.1 * rng.standard_normal(83)
    D = jnp.asarray((X @ rng.standard_normal((6, 37))).T >= 0)
    calls = host_gram_calls
    single, total = {}, {}
    for tol in (1e-6, 1e-4):
        calls.clear()
        sol = cr.solve_regularized(jnp.asarray(X), jnp.asarray(y), D, beta=1.0, tol=tol, method="ipm")
        assert sol.status == RESULTS.optimal and float(sol.gap) <= tol and len(calls) == int(sol.iterations) + 1
        single[tol], total[tol] = (calls + [False]).index(False), len(calls)
    assert single[1e-6] >= total[1e-4]  # single precision through the iterations tol 1e-4 needs ...
    assert single[1e-4] == total[1e-4]  # ... and so in the tol 1e-4 solve itself


def _blas_threads_now():
    from convexrelu import _threads

    return max((c.num_threads for c in _threads._controller().lib_controllers if c.user_api == "blas"), default=1)


def test_ipm_runs_on_one_blas_thread_and_restores_it(monkeypatch):
    # the interior-point solve (its XLA-Gram path) runs with the host BLAS on one thread, the
    # whole run inside the limit (a concrete result on return), and the caller's count is back after
    before = _blas_threads_now()
    seen = []
    solve = _solver._solve  # the compiled solve, called once per solve (compiled or not)
    monkeypatch.setattr(_solver, "_solve", lambda *a, **k: (seen.append(_blas_threads_now()), solve(*a, **k))[1])
    X, y, D = teacher_problem(0)[:3]
    sol = cr.solve_max_margin(X, y, D, method="ipm")
    assert seen == [1] and _blas_threads_now() == before
    ref, *_ = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and abs(float(sol.value) - ref) <= 1e-6 * ref


def test_host_gram_keeps_the_blas_threads(host_gram_calls, monkeypatch):
    # where the capacitance GEMM runs on the host BLAS, the BLAS keeps its thread count for it
    before = _blas_threads_now()
    seen = []
    gram = _ipm._gram_numpy
    monkeypatch.setattr(_ipm, "_gram_numpy", lambda *a: (seen.append(_blas_threads_now()), gram(*a))[1])
    X, y, D = teacher_problem(1)[:3]
    X, y, D = X[:18], y[:18], D[:, :18]  # a shape of its own: a fresh trace with the host path
    sol = cr.solve_max_margin(X, y, D, method="ipm")
    assert seen and set(seen) == {before} and _blas_threads_now() == before
    ref, *_ = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and abs(float(sol.value) - ref) <= 1e-6 * ref


def test_stalled_ipm_continues_with_admm_from_its_candidate(woodbury, monkeypatch):
    # tol 1e-10 is below the Woodbury interior-point method's floating-point floor (about 1e-8
    # here): it stalls, and ADMM warm-started from its best candidate finishes in far fewer
    # iterations than ADMM from scratch
    X, y, D = teacher_problem(0)[:3]
    X, y, D = X[:38], y[:38], D[:, :38]  # a shape of its own
    tol = 1e-10
    handed_off = []  # the path taken: _solve_ipm calls _continue (the hand-off) in Python
    continue_ = _solver._continue
    monkeypatch.setattr(_solver, "_continue", lambda *a, **k: (handed_off.append(tol), continue_(*a, **k))[1])
    sol = cr.solve_max_margin(X, y, D, tol=tol, method="ipm")
    assert handed_off == [tol]
    # the interior point alone stalls (numerical_error) after k iterations; the solution's count
    # adds ADMM's, so ADMM ran
    assert int(sol.iterations) > _ipm_iterations(X, y, D, tol)
    cold = cr.solve_max_margin(X, y, D, tol=tol, method="admm")
    assert sol.ok and float(sol.gap) <= tol and float(sol.residual) <= tol
    assert int(sol.iterations) < int(cold.iterations) / 2
    # at the default tol the interior point finishes alone: no hand-off
    assert cr.solve_max_margin(X, y, D, method="ipm").ok and handed_off == [tol]
    np.testing.assert_allclose(sol.value, cold.value, rtol=3 * tol)


def test_hand_off_is_part_of_the_compiled_solve_under_vmap(woodbury):
    # at tol 1e-10 (below the Woodbury interior point's floor) both problems need the hand-off to
    # ADMM; it happens inside the traced program, per problem, so the batched solve gives each
    # problem the status and value it gets alone (before, a batch reported numerical_error)
    tol = 1e-10
    probs = [(X[:37], y[:37], D[:, :37]) for X, y, D in (teacher_problem(s)[:3] for s in (0, 1))]
    alone = [cr.solve_max_margin(X, y, D, tol=tol, method="ipm") for X, y, D in probs]
    Xb, yb, Db = (jnp.stack(a) for a in zip(*probs))
    batch = jax.vmap(lambda X, y, D: cr.solve_max_margin(X, y, D, tol=tol, method="ipm", throw=False))(Xb, yb, Db)
    for i, one in enumerate(alone):
        assert int(batch.status[i]) == int(one.status) == RESULTS.optimal
        ipm_alone = _ipm_iterations(*probs[i], tol)  # batched sums round differently: counts differ a little
        assert int(batch.iterations[i]) > ipm_alone and int(one.iterations) > ipm_alone
        np.testing.assert_allclose(batch.value[i], one.value, rtol=10 * tol)


def _ipm_iterations(X, y, D, tol):
    """The interior point's own iterations before it stalls (its status is numerical_error)."""
    data = scale_problem(X, y, D, jnp.asarray(0.0), "max-margin")
    res = jax.jit(lambda: _ipm.ipm_solve(data, jnp.asarray(tol), jnp.asarray(tol), _ipm.MAX_ITERS))()
    assert int(res.status) == RESULTS.numerical_error
    return int(res.iterations)


def test_warm_start_reduces_iterations():
    X, y, D = teacher_problem(4)[:3]
    cold = cr.solve_max_margin(X, y, D, method="admm")
    again = cr.solve_max_margin(X, y, D, init=cold)  # "auto" warm-starts with ADMM
    assert int(again.iterations) < int(cold.iterations)
    np.testing.assert_allclose(again.value, cold.value, rtol=2e-6)


@pytest.mark.slow
def test_float32():
    X, y, D = teacher_problem(0)[:3]
    sol = cr.solve_max_margin(X.astype(jnp.float32), y.astype(jnp.float32), D, method="ipm")
    assert sol.U.dtype == jnp.float32 and sol.value.dtype == jnp.float32
    assert sol.ok and float(sol.gap) <= 1e-4 and float(sol.residual) <= 1e-4
    ref, *_ = max_margin_reference(X, y, D)
    assert abs(float(sol.value) - ref) <= 1e-3 * ref


def _near_duplicate_problem(seed, n=12, gap=1e-3):
    """Points in 2-D whose first two rows nearly coincide with opposite labels: feasible, with a
    large P* and a badly conditioned optimum (every pattern, enumerated)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    X[1] = X[0] + gap * rng.standard_normal(2)
    y = np.sign(rng.standard_normal(n))
    y[1] = -y[0]
    X, y = jnp.asarray(X), jnp.asarray(y)
    return X, y, cr.enumerate_patterns(X)


@pytest.mark.parametrize("seed", range(4))
def test_float32_status_is_verified_in_float64(seed):
    # a float32 answer is called optimal only when its gap and violation, recomputed in float64,
    # are within tol (the reported gap and residual are those float64 values); otherwise the status
    # says the precision could not certify it. The max-margin cone violation is measured against
    # the margin 1 (not against the fits, ~P* here), so an answer called optimal is also within a
    # few tol of Clarabel's value (measured against the fits, a 1e-5 violation hid values 4% low)
    X, y, D = _near_duplicate_problem(seed)
    ref, *_ = max_margin_reference(X, y, D)
    tol = 1e-4
    sol = cr.solve_max_margin(X.astype(jnp.float32), y.astype(jnp.float32), D, tol=tol, throw=False)
    X = X.astype(jnp.float32).astype(jnp.float64)  # the data the float32 solve saw
    opt = prog.optimality(X, y, D, sol.U.astype(jnp.float64), sol.V.astype(jnp.float64), sol.dual.astype(jnp.float64),
                          sol.cone_dual.astype(jnp.float64), program="max-margin")
    assert int(sol.status) in (RESULTS.optimal, RESULTS.inaccurate, RESULTS.max_iters)
    np.testing.assert_allclose([float(sol.gap), float(sol.residual)], [float(opt.gap), float(opt.residual)], rtol=1e-5, atol=1e-7)
    if int(sol.status) == RESULTS.optimal:
        assert float(opt.gap) <= tol and float(opt.residual) <= tol
        assert float(opt.dual_value) <= ref * (1 + 1e-9)  # weak duality of the verified bound
        assert abs(float(sol.value) - ref) <= 5 * tol * ref
    else:
        assert float(opt.gap) > tol or float(opt.residual) > tol or int(sol.status) == RESULTS.max_iters


def test_verification_holds_under_vmap_and_jit():
    # the float64 check runs through a host callback: a jitted, batched float32 solve gets the
    # same verified statuses as the solves one by one
    probs = [teacher_problem(s)[:3] for s in (0, 1)]
    one = [cr.solve_max_margin(X.astype(jnp.float32), y.astype(jnp.float32), D, throw=False) for X, y, D in probs]
    Xb, yb, Db = (jnp.stack(a) for a in zip(*probs))
    solve = jax.jit(jax.vmap(lambda X, y, D: cr.solve_max_margin(X, y, D, throw=False)))
    batch = solve(Xb.astype(jnp.float32), yb.astype(jnp.float32), Db)
    for i, s in enumerate(one):
        assert int(batch.status[i]) == int(s.status) == RESULTS.optimal
        assert float(batch.gap[i]) <= 1e-4 and float(batch.residual[i]) <= 1e-4  # verified in float64


def test_loose_tolerance_never_calls_a_feasible_program_infeasible():
    # the Farkas threshold is fixed (1e-6 in float64), not tol: at tol = 0.3 a feasible
    # program is solved loosely, never declared infeasible
    X, y, D = teacher_problem(0)[:3]
    sol = cr.solve_max_margin(X, y, D, tol=0.3, throw=False)
    ref, *_ = max_margin_reference(X, y, D)
    assert int(sol.status) == RESULTS.optimal and float(sol.gap) <= 0.3
    assert float(sol.value) >= ref * (1 - 1e-12)  # feasible (margins exact), so never below P*
    assert cr.solve_max_margin(X, y, D, tol=0.3, method="admm", throw=False).status == RESULTS.optimal


def test_infeasible_ray_and_error():
    # x1 = 2 x0 with opposite labels: every pattern treats them alike, no margin is possible
    # (same shape as the other problems: no new compilation)
    X, y, _, _ = teacher_problem(0)
    X = X.at[1].set(2.0 * X[0])
    y = y.at[1].set(-y[0])
    D = _patterns(X, jax.random.normal(jax.random.PRNGKey(0), (DIM, P)))
    sol = cr.solve_max_margin(X, y, D, throw=False)
    assert int(sol.status) == RESULTS.infeasible and sol.status_name == "infeasible"
    assert int(sol.iterations) < 50  # the interior-point dual iterate gave the ray (no ADMM fallback)
    mu = np.asarray(sol.dual)
    assert np.all(mu >= 0) and abs(mu.sum() - 1) < 1e-12
    assert float(prog.max_margin_infeasibility(X, y, D, sol.dual, sol.cone_dual)) <= 1e-6
    assert not np.any(np.isnan(np.asarray(sol.U)))
    with pytest.raises(ValueError, match="infeasible"):
        cr.solve_max_margin(X, y, D)


def test_max_iters_status_and_error():
    X, y, D = teacher_problem(0)[:3]
    sol = cr.solve_max_margin(X, y, D, max_iters=3, throw=False)
    assert int(sol.status) == RESULTS.max_iters and int(sol.iterations) == 3
    assert np.isfinite(float(sol.value)) and np.isfinite(float(sol.gap))
    # the interior-point loop scores its candidate only near the optimum, every _SCORE_EVERY
    # iterations and at the last one: the reported scores are those of the returned candidate,
    # the last iterate's (two consecutive limits between two periodic scorings differ)
    gaps = []
    for it in (5, 6):
        sol = cr.solve_max_margin(X, y, D, max_iters=it, throw=False)
        opt = prog.optimality(X, y, D, sol.U, sol.V, sol.dual, sol.cone_dual, program="max-margin")
        got = [float(sol.value), float(sol.gap), float(sol.residual)]
        np.testing.assert_allclose(got, [float(opt.value), float(opt.gap), float(opt.residual)], rtol=1e-12, atol=1e-15)
        gaps.append(float(sol.gap))
    assert _ipm._SCORE_EVERY > 2 and gaps[1] < gaps[0]
    with pytest.raises(RuntimeError, match="max_iters"):
        cr.solve_max_margin(X, y, D, max_iters=3)


def test_non_finite_step_is_a_numerical_error(monkeypatch):
    # a NaN step length (patched in) makes the iterate non-finite at the first step: the loop
    # stops with status numerical error and hands back its last finite candidate, never NaN.
    # Its own shape (n = 13), so the patched solver is traced afresh and cached apart.
    X, y, D = teacher_problem(0)[:3]
    X, y, D = X[:13], y[:13], D[:, :13]
    monkeypatch.setattr(_ipm, "_lp_step", lambda x, dx: jnp.asarray(jnp.nan, x.dtype))
    one = jnp.asarray(1.0)
    res = jax.jit(lambda X, y, D: _ipm.ipm_solve(scale_problem(X, y, D, one, "max-margin"), 1e-6 * one, 1e-6 * one, 50))(
        X, y, D
    )
    U, V, dual, nu = res.candidate[:4]
    status, k = res.status, res.iterations
    assert int(status) == RESULTS.numerical_error and int(k) == 1
    assert all(np.all(np.isfinite(np.asarray(a))) for a in (U, V, dual, nu))
    # solve_max_margin hands a numerical error to ADMM, warm-started from that candidate
    sol = cr.solve_max_margin(X, y, D, throw=False, method="ipm")
    assert int(sol.status) == RESULTS.optimal and float(sol.gap) <= 1e-6


def test_throw_under_vmap_uses_error_if():
    # the batch of test_vmap_over_beta_equals_loop (same shapes: the batched solve compiles once)
    X, _, D, out = teacher_problem(3)
    betas = jnp.array([0.02, 0.5])
    with pytest.raises(eqx.EquinoxRuntimeError):
        jax.block_until_ready(jax.vmap(lambda b: cr.solve_regularized(X, out, D, beta=b, max_iters=3).value)(betas))


def test_bad_inputs():
    X, y, D = teacher_problem(0)[:3]
    with pytest.raises(ValueError, match="shape"):
        cr.solve_max_margin(X, y[:-1], D)
    with pytest.raises(ValueError, match="patterns"):
        cr.solve_max_margin(X, y, D[:, :-1])
    with pytest.raises(ValueError, match="±1"):
        cr.solve_max_margin(X, y.at[0].set(0.0), D)
    with pytest.raises(ValueError, match="NaN"):
        cr.solve_max_margin(X.at[0, 0].set(jnp.nan), y, D)
    with pytest.raises(ValueError, match="2-D"):
        cr.solve_max_margin(X[0], y, D)
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            cr.solve_regularized(X, y, D, beta=beta)
    with pytest.raises(ValueError, match="loss"):
        cr.solve_regularized(X, y, D, beta=0.1, loss="hinge")
    with pytest.raises(ValueError, match="tol"):
        cr.solve_max_margin(X, y, D, tol=0.0)
    with pytest.raises(ValueError, match="max_iters"):
        cr.solve_max_margin(X, y, D, max_iters=0)
    with pytest.raises(TypeError, match="init"):
        cr.solve_max_margin(X, y, D, init=X)
    with pytest.raises(ValueError, match="method"):
        cr.solve_max_margin(X, y, D, method="newton")



@pytest.mark.parametrize("method", ["ipm", "admm"])
def test_progress_reports_every_iteration_and_leaves_the_solve_unchanged(method):
    # the callback sees the loop's iterations in order, and the last report is the returned gap;
    # the solution is the one computed without it
    X, y, D = teacher_problem(0)[:3]
    seen = []
    sol = cr.solve_max_margin(X, y, D, method=method, progress=lambda k, g: seen.append((int(k), float(g))))
    ref = cr.solve_max_margin(X, y, D, method=method)
    ks = [k for k, _ in seen]
    assert ks == sorted(ks) and ks[-1] == int(sol.iterations) and len(set(ks)) == len(ks)
    assert len(ks) == (int(sol.iterations) + 1 if method == "ipm" else int(sol.iterations) // 10)
    assert seen[-1][1] == pytest.approx(float(sol.gap), rel=1e-12) and seen[-1][1] <= 1e-6
    np.testing.assert_array_equal(np.asarray(sol.U), np.asarray(ref.U))


def _beta_max_logistic(X, y, D):
    """``β_max = max_j max ‖Π_{K_j}(±Xᵀ D_j g)‖`` with ``g = -∇ℓ(0) = y/2`` (DESIGN.md): the
    smallest β whose logistic solution is zero."""
    g = 0.5 * y
    proj = jax.vmap(lambda Dj, s: cr.cone_projection(X, Dj, s * (X.T @ (Dj.astype(X.dtype) * g))), in_axes=(0, None))
    return max(float(jnp.max(jnp.linalg.norm(proj(D, s), axis=1))) for s in (1.0, -1.0))


@functools.cache
def logistic_teacher(n=100, d=5, p=250, seed=0):
    """The issue's logistic problem: teacher labels, its own gates among ``p`` sampled patterns."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    data = cr.datasets.teacher(n, d, key=k1)
    D = cr.merge_patterns(data.patterns, cr.sample_patterns(data.X, num=p, key=k2))
    return data.X, data.y, D


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.5, 1e-1, 1e-2, 1e-3, 1e-4])
def test_logistic_interior_point_reaches_1e6_within_100_iterations(fraction):
    # the logistic program by Newton steps inside the interior point: β from β_max down to
    # 1e-4 β_max on teacher data (n = 100, d = 5, p ≈ 250; separable through the teacher's own
    # patterns, so small β drives the fit towards a hard margin), certified to a gap of 1e-6
    X, y, D = logistic_teacher()
    beta = fraction * _beta_max_logistic(X, y, D)
    sol = cr.solve_regularized(X, y, D, beta=beta, loss="logistic", throw=False)
    assert sol.status == RESULTS.optimal and float(sol.gap) <= 1e-6 and float(sol.residual) <= 1e-6
    assert int(sol.iterations) <= 100
    dual = prog.regularized_dual_objective(X, y, D, sol.dual, sol.cone_dual, beta=beta, loss="logistic")
    assert float(dual) <= float(sol.value) and float(sol.value) - float(dual) <= 1e-6 * max(1.0, float(sol.value))


def test_logistic_zero_solution_at_beta_max():
    # at β ≥ β_max the logistic optimum is the zero solution's value n log 2, and just below it is lower
    X, y, D = teacher_problem(0)[:3]
    bmax = _beta_max_logistic(X, y, D)
    at = cr.solve_regularized(X, y, D, beta=1.001 * bmax, loss="logistic")
    below = cr.solve_regularized(X, y, D, beta=0.9 * bmax, loss="logistic")
    assert float(at.value) == pytest.approx(N * np.log(2.0), rel=1e-6)
    assert float(below.value) < N * np.log(2.0) * (1 - 1e-6)



@pytest.mark.parametrize("gap", [1e-2, 1e-3])
def test_near_duplicates_solve_in_float64(gap):
    # two points ε apart with opposite labels: P* ~ 1/ε and the normal equations' condition number
    # beyond 1e18 near the optimum; the directly factored N and the refinement of the unreduced
    # Newton equations keep the interior point on track (Woodbury alone stalled on 6 of these 8).
    # Its floating-point floor sits at the tolerance: on one CPU all 8 finish within 100
    # iterations; on another (AMD EPYC) seed 3 at gap 1e-2 reaches a gap of 1.005e-6 at iteration
    # 19 and the next step is not finite, so ADMM finishes from that candidate (448 iterations
    # in all). Either way the answer is certified optimal and right.
    for seed in range(4):
        X, y, D = _near_duplicate_problem(seed, gap=gap)
        ref, *_ = max_margin_reference(X, y, D)
        sol = cr.solve_max_margin(X, y, D, method="ipm")
        assert sol.status == RESULTS.optimal and float(sol.gap) <= 1e-6
        assert abs(float(sol.value) - ref) <= 3e-6 * ref


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
def test_data_at_extreme_scales_get_the_same_certificate(scale):
    # the programs are homogeneous: X·s has blocks U/s, P*/s and the same patterns; the solver
    # scales the rows and the certificate is computed on the normalized program, so the status,
    # iterations are those at scale 1, and the value is P*/s (at 1e300 the returned blocks, ~1e-300,
    # lose their smallest entries to subnormals: the certificate holds, not to the last digit)
    X, y, D = teacher_problem(2)[:3]
    one = cr.solve_max_margin(X, y, D)
    far = cr.solve_max_margin(X * scale, y, D)
    assert far.status == one.status == RESULTS.optimal and int(far.iterations) == int(one.iterations)
    assert float(far.gap) <= 1e-6 and float(far.residual) <= 1e-6
    np.testing.assert_allclose(float(far.value) * scale, float(one.value), rtol=1e-7)
    reg1 = cr.solve_regularized(X, y, D, beta=0.1, loss="logistic")
    regs = cr.solve_regularized(X * scale, y, D, beta=0.1 * scale, loss="logistic")  # β scales with X
    assert regs.status == reg1.status == RESULTS.optimal
    np.testing.assert_allclose(float(regs.value), float(reg1.value), rtol=1e-7)


def test_zero_features_are_an_infeasible_max_margin_program():
    # X = 0: no fit can reach a margin; any μ ≥ 0 with 1ᵀμ > 0 is an exact Farkas ray (g = 0)
    X, y, D = teacher_problem(2)[:3]
    sol = cr.solve_max_margin(X * 0.0, y, D, throw=False)
    assert sol.status == RESULTS.infeasible and float(sol.gap) == 0.0 and np.isinf(float(sol.value))
    assert float(jnp.sum(sol.dual)) == pytest.approx(1.0) and float(jnp.min(sol.dual)) >= 0.0
    with pytest.raises(ValueError, match="infeasible"):
        cr.solve_max_margin(X * 0.0, y, D)


def _switch_problem():
    """Near-duplicate rows (1e-2 apart, opposite labels) in 3-D, n = 10, every pattern: 2p(d+1) =
    736, between _DENSE_FROM_START and _DENSE_MAX, where N starts with Woodbury and switches."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 3))
    X[1] = X[0] + 1e-2 * rng.standard_normal(3)
    y = np.sign(rng.standard_normal(10))
    y[1] = -y[0]
    X, y = jnp.asarray(X), jnp.asarray(y)
    return X, y, cr.enumerate_patterns(X)


def test_mid_size_program_switches_to_the_direct_factor_when_woodbury_struggles(woodbury):
    X, y, D = _switch_problem()
    assert _ipm._DENSE_FROM_START < 2 * D.shape[0] * (X.shape[1] + 1) <= 1024
    stalled = cr.solve_max_margin(X, y, D, method="ipm", max_iters=100, throw=False)
    assert stalled.status != RESULTS.optimal  # the premise: Woodbury alone (the fixture) stalls here
    _ipm._DENSE_MAX = 1024  # the default (the fixture's monkeypatch restores its 0 after the test)
    jax.clear_caches()
    sol = cr.solve_max_margin(X, y, D, method="ipm", max_iters=100)
    ref, *_ = max_margin_reference(X, y, D)
    assert sol.status == RESULTS.optimal and abs(float(sol.value) - ref) <= 1e-5 * ref
