"""Tests of jitted training (convexrelu._train): schedules, batching, resuming, the margin theorem."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import convexrelu as cr
from convexrelu._train import _train_fused

from _reference import max_margin_reference

N, D, M = 16, 3, 8


def _data(n=N, d=D, seed=0):
    return cr.datasets.orthogonally_separable(n, d, key=jax.random.key(seed))


def _net(d=D, m=M, seed=1, scale=1e-1):
    return cr.init_network(d, m, scale=scale, key=jax.random.key(seed))


def _nets(r, d=D, m=M, seed=2, scale=1e-1):
    keys = jax.random.split(jax.random.key(seed), r)
    return jax.vmap(lambda k: cr.init_network(d, m, scale=scale, key=k))(keys)


def _close(a, b, rtol=1e-9, atol=1e-12):
    for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(z), rtol=rtol, atol=atol)


# ------------------------------------------------------------------------ plain gradient descent


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_constant_schedule_is_gradient_descent(loss):
    """A few steps equal θ ← θ - lr ∇𝓛 with the gradient from autodiff of the library's loss."""
    X, y = _data()
    net = _net()
    lr = 0.05
    loss_fn = cr.logistic_loss if loss == "logistic" else cr.exponential_loss
    grad = jax.jit(jax.grad(loss_fn))
    ref = net
    for _ in range(5):
        g = grad(ref, X, y)
        ref = jax.tree.map(lambda p, q: p - lr * q, ref, g)
    res = cr.train(net, X, y, steps=5, lr=lr, loss=loss, record_every=1)
    _close(res.net, ref, rtol=1e-11)
    # the history records log 𝓛, γ, γ̃ and ‖θ‖² of the network after each step
    np.testing.assert_allclose(res.history.log_loss[-1], jnp.log(loss_fn(ref, X, y)), rtol=1e-12)
    np.testing.assert_allclose(res.history.normalized_margin[-1], cr.normalized_margin(ref, X, y), rtol=1e-12)
    np.testing.assert_allclose(res.history.smoothed_margin[-1], cr.smoothed_margin(ref, X, y, loss=loss), rtol=1e-10)
    np.testing.assert_allclose(res.history.norm_sq[-1], cr.param_norm_sq(ref), rtol=1e-12)
    np.testing.assert_array_equal(res.history.step, np.arange(1, 6))
    np.testing.assert_allclose(res.history.log_step_size, math.log(lr))
    assert res.history.log_loss.shape == (5,)
    assert not bool(res.diverged)


def test_record_every_and_remainder():
    X, y = _data()
    res = cr.train(_net(), X, y, steps=25, lr=0.01, record_every=10)
    np.testing.assert_array_equal(res.history.step, [10, 20, 25])
    assert int(res.state.step) == 25
    assert cr.train(_net(), X, y, steps=7, lr=0.01).history.step.tolist() == [7]  # default: min(steps, 100)


def test_loss_based_step_is_alpha_grad_log_loss():
    """One accepted loss-based step is θ - α ∇ log 𝓛 = θ - (α/𝓛) ∇𝓛, and α grows by 2^{1/5}."""
    X, y = _data()
    net = _net()
    alpha = 1e-3
    g = jax.grad(lambda p: cr.log_loss(p, X, y))(net)
    ref = jax.tree.map(lambda p, q: p - alpha * q, net, g)
    res = cr.train(net, X, y, steps=1, schedule="loss-based", lr=alpha, max_alpha=1.0, record_every=1)
    assert float(cr.log_loss(ref, X, y)) < float(cr.log_loss(net, X, y))
    _close(res.net, ref, rtol=1e-11)
    np.testing.assert_allclose(res.state.alpha, alpha * 2 ** 0.2, rtol=1e-14)
    np.testing.assert_allclose(res.history.log_step_size[0], math.log(alpha * 2**0.2) - res.history.log_loss[0])


def test_loss_based_never_increases_loss_and_undoes_bad_steps():
    X, y = _data()
    # a huge initial α forces rejections: each undone step leaves θ unchanged and shrinks α
    res = cr.train(_net(), X, y, steps=400, schedule="loss-based", lr=1e3, max_alpha=1e3, record_every=1)
    logs = np.asarray(res.history.log_loss)
    assert np.all(np.diff(logs) <= 0)
    assert np.all(np.isfinite(logs))
    rej = np.asarray(res.history.rejected)
    assert rej.sum() > 0 and rej.sum() < 400
    # a rejected step leaves the loss exactly unchanged
    np.testing.assert_array_equal(np.diff(logs)[rej[1:] == 1], 0.0)
    # α follows the rule: ×2^{1/5} per accepted step, ÷2^{1/10} per rejected one (cap not reached)
    alpha = 1e3
    for bad in rej:
        alpha = alpha / 2**0.1 if bad else min(alpha * 2**0.2, 1e3)
    np.testing.assert_allclose(res.state.alpha, alpha, rtol=1e-12)
    assert float(logs[-1]) < float(cr.log_loss(_net(), X, y))


def test_loss_based_goes_below_float_range():
    """log 𝓛 far below log(1e-300) stays finite and the margins stay finite."""
    X, y = _data()
    res = cr.train(_net(), X, y, steps=3000, schedule="loss-based", lr=1e-2, max_alpha=0.05, record_every=100)
    h = res.history
    assert float(h.log_loss[-1]) < -3000 * math.log(10)  # 𝓛 < 1e-3000
    assert np.all(np.isfinite(np.asarray(h.normalized_margin)))
    assert np.all(np.isfinite(np.asarray(h.smoothed_margin)))
    # at such a loss γ̃ and γ agree to log n / ‖θ‖²
    gap = np.asarray(h.normalized_margin - h.smoothed_margin)
    assert np.all(gap[-5:] >= 0) and np.all(gap[-5:] <= math.log(N) / np.asarray(h.norm_sq[-5:]) + 1e-15)


@pytest.mark.parametrize("name", ["adam", "momentum"])
def test_optax_optimizer(name):
    X, y = _data()
    net = _net()
    opt = optax.adam(1e-2) if name == "adam" else optax.sgd(1e-2, momentum=0.9)
    # optax's adam mixes its int32 step count with Python floats, which strict promotion refuses
    with jax.numpy_dtype_promotion("standard"):
        res = cr.train(net, X, y, steps=30, optimizer=opt, record_every=30)
        # reference: the optax loop written out
        @jax.jit
        def step(params, state, X, y):
            upd, state = opt.update(jax.grad(cr.logistic_loss)(params, X, y), state, params)
            return optax.apply_updates(params, upd), state

        params, state = net, opt.init(net)
        for _ in range(30):
            params, state = step(params, state, X, y)
    _close(res.net, params, rtol=1e-10)
    # loss-based with an optimizer: never increases the loss
    res = cr.train(net, X, y, steps=200, optimizer=optax.sgd(1.0), schedule="loss-based", record_every=1, lr=1e-2)
    assert np.all(np.diff(np.asarray(res.history.log_loss)) <= 0)


# ------------------------------------------------------------------------ batching and resuming


@pytest.mark.parametrize("schedule", ["constant", "loss-based"])
def test_vmap_and_train_many_equal_python_loop(schedule):
    X, y = _data()
    r = 6
    nets = _nets(r)
    kw = dict(steps=30, schedule=schedule, lr=0.02, record_every=10, max_alpha=0.1)
    singles = [cr.train(jax.tree.map(lambda x: x[i], nets), X, y, **kw) for i in range(r)]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *singles)
    vm = jax.vmap(lambda n: cr.train(n, X, y, **kw))(nets)
    _close(vm, stacked, rtol=1e-9)
    for group in (3,):  # two groups of three (lax.map); test_train_many_with_optimizer: one group
        many = cr.train_many(nets, X, y, group_size=group, **kw)
        _close(many.net, stacked.net, rtol=1e-9)
        _close(many.history, stacked.history, rtol=1e-9)
        _close(many.state, stacked.state, rtol=1e-9)
    assert many.history.log_loss.shape == (r, 3)


def test_jit_of_vmap():
    """train inside an outer jit (data closed over) and vmap equals the single runs."""
    X, y = _data()
    nets = _nets(2)
    kw = dict(steps=10, lr=0.02, record_every=10)
    out = jax.jit(jax.vmap(lambda n: cr.train(n, X, y, **kw).net))(nets)
    one = cr.train(jax.tree.map(lambda x: x[1], nets), X, y, **kw).net
    _close(jax.tree.map(lambda x: x[1], out), one, rtol=1e-10)


def test_train_many_with_optimizer_equals_loop():
    X, y = _data()
    nets = _nets(3)
    opt = optax.sgd(1e-2, momentum=0.9)
    many = cr.train_many(nets, X, y, steps=20, optimizer=opt, record_every=10)
    for i in range(3):
        one = cr.train(jax.tree.map(lambda x: x[i], nets), X, y, steps=20, optimizer=opt, record_every=10)
        _close(jax.tree.map(lambda x: x[i], many.net), one.net, rtol=1e-9)


@pytest.mark.parametrize("schedule", ["constant", "loss-based"])
def test_chunked_calls_equal_one_long_call(schedule):
    X, y = _data()
    kw = dict(schedule=schedule, lr=0.02, record_every=10, max_alpha=0.1)
    long = cr.train(_net(), X, y, steps=30, **kw)
    a = cr.train(_net(), X, y, steps=10, **kw)
    b = cr.train(a.net, X, y, steps=10, state=a.state, **kw)
    c = cr.train(b.net, X, y, steps=10, state=b.state, **kw)
    _close(c.net, long.net, rtol=1e-10)
    _close(c.state, long.state, rtol=1e-10)
    joined = jax.tree.map(lambda *hs: jnp.concatenate(hs), a.history, b.history, c.history)
    _close(joined, long.history, rtol=1e-10)
    # the same for a batch, and with an optimizer state
    opt = optax.sgd(1e-2, momentum=0.9)
    nets = _nets(2)
    long = cr.train_many(nets, X, y, steps=20, optimizer=opt, **kw)
    a = cr.train_many(nets, X, y, steps=10, optimizer=opt, **kw)
    b = cr.train_many(a.net, X, y, steps=10, optimizer=opt, state=a.state, **kw)
    _close(b.net, long.net, rtol=1e-10)


def test_no_retracing():
    X, y = _data()
    cr.train(_net(), X, y, steps=10, lr=0.1, record_every=10)
    before = eqx.debug.get_num_traces(_train_fused)
    for seed, lr in [(3, 0.2), (4, 0.05)]:
        cr.train(_net(seed=seed), X + 0.01, y, steps=10, lr=lr, record_every=10)
    assert eqx.debug.get_num_traces(_train_fused) == before


# ------------------------------------------------------------------------ validation


def test_bad_inputs_refused():
    X, y = _data()
    net = _net()
    with pytest.raises(ValueError, match="±1"):
        cr.train(net, X, y.at[0].set(0.5), steps=10)
    with pytest.raises(ValueError, match="shape"):
        cr.train(net, X, y[:-1], steps=10)
    with pytest.raises(ValueError, match="NaN"):
        cr.train(net, X.at[0, 0].set(jnp.nan), y, steps=10)
    with pytest.raises(ValueError, match="d = "):
        cr.train(_net(d=D + 1), X, y, steps=10)
    for steps in (0, -3):
        with pytest.raises(ValueError, match="steps"):
            cr.train(net, X, y, steps=steps)
    for steps in (2.5, True):
        with pytest.raises(TypeError, match="steps"):
            cr.train(net, X, y, steps=steps)
    with pytest.raises(ValueError, match="record_every"):
        cr.train(net, X, y, steps=10, record_every=0)
    with pytest.raises(ValueError, match="schedule"):
        cr.train(net, X, y, steps=10, schedule="cosine")
    with pytest.raises(ValueError, match="loss"):
        cr.train(net, X, y, steps=10, loss="squared")
    with pytest.raises(ValueError, match="lr"):
        cr.train(net, X, y, steps=10, lr=-1.0)
    with pytest.raises(TypeError, match="optimizer"):
        cr.train(net, X, y, steps=10, optimizer="adam")
    with pytest.raises(TypeError, match="dtype"):
        cr.train(jax.tree.map(lambda x: x.astype(jnp.float32), net), X, y, steps=10)
    with pytest.raises(ValueError, match="batched"):
        cr.train_many(net, X, y, steps=10)
    with pytest.raises(ValueError, match="group_size"):
        cr.train_many(_nets(4), X, y, steps=10, group_size=3)
    with pytest.raises(TypeError, match="TrainState"):
        cr.train(net, X, y, steps=10, state=(0, 1.0))


def test_float32():
    """Library code follows the input dtype (x64 stays on here; float32 inputs stay float32)."""
    X, y = _data()
    X32, y32 = X.astype(jnp.float32), y.astype(jnp.float32)
    net = jax.tree.map(lambda x: x.astype(jnp.float32), _net())
    res = cr.train(net, X32, y32, steps=50, schedule="loss-based", lr=1e-2, record_every=10)
    assert res.net.W1.dtype == jnp.float32 and res.history.log_loss.dtype == jnp.float32
    assert np.all(np.diff(np.asarray(res.history.log_loss)) <= 0)


def test_divergence_flagged():
    X, y = _data()
    res = cr.train(_net(scale=1.0), X * 1e3, y, steps=50, lr=1e3, record_every=10)
    assert bool(res.diverged)


# ------------------------------------------------------------------------ the margin theorem


def _project_cone(g, A):
    """``Π_K(g)`` for ``K = {u : A u ≥ 0}`` by Moreau: ``g = Π_K(g) + Π_{K°}(g)``, ``K° = {-Aᵀη : η ≥ 0}``.

    ``Π_{K°}(g) = -Aᵀη*`` with ``η* = argmin_{η ≥ 0} ‖g + Aᵀη‖`` (an NNLS in ``η``), so
    ``Π_K(g) = g + Aᵀη*``.
    """
    from scipy.optimize import nnls

    eta, _ = nnls(A.T, -g)
    return g + A.T @ eta


def _violations(X, y, mu, D_all, tol):
    """Indices of patterns whose dual constraint ``‖Π_{K_j}(± Xᵀ D_j (y ⊙ μ))‖ ≤ 1`` fails."""
    lam = y * mu
    G = (D_all * lam[None, :]) @ X  # g_j = Xᵀ D_j λ, (p, d)
    worst = np.zeros(len(D_all))
    for j in np.nonzero(np.linalg.norm(G, axis=1) > 1 + tol)[0]:  # ‖Π_K(g)‖ ≤ ‖g‖
        A = (2.0 * D_all[j] - 1.0)[:, None] * X
        worst[j] = max(np.linalg.norm(_project_cone(s * G[j], A)) for s in (1.0, -1.0))
    return np.nonzero(worst > 1 + tol)[0], worst


def test_project_cone_is_a_projection():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 3))
    for _ in range(5):
        g = rng.standard_normal(3)
        p = _project_cone(g, A)
        assert np.all(A @ p >= -1e-10)  # in K
        # optimality: <g - p, u - p> ≤ 0 for u in K (checked on random points of K)
        us = rng.standard_normal((2000, 3))
        us = us[np.all(us @ A.T >= 0, axis=1)]
        assert np.all((us - p) @ (g - p) <= 1e-9)
        assert np.dot(g - p, p) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.slow
def test_loss_based_training_reaches_max_margin():
    """Orthogonally separable data, small balanced init: the normalized margin reaches γ* = 1/(2P*).

    P* is certified over ALL patterns by column generation: solve over a subset with cvxpy, then
    check the dual constraints of every enumerated pattern with exact cone projections; repeat
    until none is violated, at which point the subset's P* is the full program's P* (to tol).
    """
    n, d, m = 20, 5, 50
    X, y = cr.datasets.orthogonally_separable(n, d, key=jax.random.key(0))
    net = cr.init_network(d, m, scale=1e-3, balanced=True, key=jax.random.key(1))
    steps = 100_000
    res = cr.train(net, X, y, steps=steps, schedule="loss-based", lr=1e-3, max_alpha=5e-4, record_every=1000)
    gamma = float(res.history.normalized_margin[-1])
    assert np.all(np.diff(np.asarray(res.history.log_loss)) < 0)

    Xn, yn = np.asarray(X), np.asarray(y)
    D_all = np.asarray(cr.enumerate_patterns(X)).astype(np.float64)
    index = {row.tobytes(): j for j, row in enumerate(D_all.astype(bool))}
    trained = np.asarray(cr.neuron_patterns(res.net, X))
    subset = {index[row.tobytes()] for row in trained if row.tobytes() in index}
    subset |= set(np.random.default_rng(0).choice(len(D_all), 10, replace=False).tolist())
    tol = 1e-6
    for _ in range(20):
        S = sorted(subset)
        P, _, _, mu = max_margin_reference(Xn, yn, D_all[S].astype(bool))
        assert np.sum(mu) == pytest.approx(P, rel=1e-6)  # strong duality on the subset
        bad, worst = _violations(Xn, yn, np.asarray(mu), D_all, tol)
        if len(bad) == 0:
            break
        subset |= set(bad[np.argsort(-worst[bad])][:50].tolist())
    else:
        pytest.fail("column generation did not converge")
    # certificate: μ/(1+tol) is dual feasible over all patterns, so P*/(1+tol) ≤ P*_all ≤ P*
    gamma_star = 1.0 / (2.0 * P)
    ratio = gamma / gamma_star
    print(f"γ = {gamma:.8f}, γ* = {gamma_star:.8f}, ratio = {ratio:.6f}, {steps} steps, {len(S)} patterns")
    assert ratio <= (1 + tol) * (1 + 1e-7)  # weak duality: no network beats γ*
    assert ratio >= 1 - 1e-3
