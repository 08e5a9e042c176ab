"""Tests of the losses, margins and the network (convexrelu._losses, convexrelu._network)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import convexrelu as cr
from convexrelu._losses import log_expm1, log_softplus

N, D, M = 12, 3, 6


def _data(seed=0):
    return cr.datasets.orthogonally_separable(N, D, key=jax.random.key(seed))


def _separating_net(X, y):
    """Two neurons along the class means: separates orthogonally separable data (x_iᵀx_k > 0 within a class)."""
    mu_pos = jnp.mean(X[y > 0], axis=0)
    mu_neg = jnp.mean(X[y < 0], axis=0)
    W1 = jnp.stack([mu_pos, mu_neg], axis=1)
    w2 = jnp.stack([jnp.linalg.norm(mu_pos), -jnp.linalg.norm(mu_neg)])
    return cr.Network(W1, w2)


def _scale(net, c):
    return cr.Network(c * net.W1, c * net.w2)


def test_forward_and_homogeneity():
    X, _ = _data()
    net = cr.init_network(D, M, scale=0.3, balanced=False, key=jax.random.key(1))
    np.testing.assert_allclose(cr.forward(net, X), np.maximum(np.asarray(X) @ np.asarray(net.W1), 0) @ np.asarray(net.w2))
    np.testing.assert_allclose(cr.forward(_scale(net, 3.0), X), 9.0 * cr.forward(net, X), rtol=1e-12)
    np.testing.assert_allclose(cr.param_norm_sq(net), np.sum(np.asarray(net.W1) ** 2) + np.sum(np.asarray(net.w2) ** 2))


def test_balanced_init_and_balance():
    net = cr.init_network(D, M, scale=0.3, balanced=True, key=jax.random.key(1))
    np.testing.assert_allclose(jnp.linalg.norm(net.W1, axis=0), jnp.abs(net.w2), rtol=1e-14)
    X, _ = _data()
    raw = cr.init_network(D, M, scale=0.3, balanced=False, key=jax.random.key(2))
    bal = cr.balance(raw)
    np.testing.assert_allclose(cr.forward(bal, X), cr.forward(raw, X), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jnp.linalg.norm(bal.W1, axis=0), jnp.abs(bal.w2), rtol=1e-12)
    # AM-GM: the balanced penalty is 2 Σ ‖w_i‖|a_i| ≤ the unbalanced one
    np.testing.assert_allclose(
        cr.param_norm_sq(bal), 2 * jnp.sum(jnp.linalg.norm(raw.W1, axis=0) * jnp.abs(raw.w2)), rtol=1e-12
    )
    assert float(cr.param_norm_sq(bal)) <= float(cr.param_norm_sq(raw))


def test_losses_closed_forms():
    X, y = _data()
    net = cr.init_network(D, M, scale=0.5, key=jax.random.key(3))
    q = np.asarray(y * cr.forward(net, X))
    np.testing.assert_allclose(cr.logistic_loss(net, X, y), np.sum(np.log1p(np.exp(-q))), rtol=1e-12)
    np.testing.assert_allclose(cr.exponential_loss(net, X, y), np.sum(np.exp(-q)), rtol=1e-12)
    f = np.asarray(cr.forward(net, X))
    np.testing.assert_allclose(cr.squared_loss(net, X, y), 0.5 * np.sum((f - np.asarray(y)) ** 2), rtol=1e-12)
    np.testing.assert_allclose(cr.logistic_loss(net, X, y, reduction="mean"), np.mean(np.log1p(np.exp(-q))), rtol=1e-12)
    np.testing.assert_allclose(cr.log_loss(net, X, y), np.log(np.sum(np.log1p(np.exp(-q)))), rtol=1e-12)
    np.testing.assert_allclose(
        cr.regularized_objective(net, X, y, beta=0.3), np.sum(np.log1p(np.exp(-q))) + 0.15 * float(cr.param_norm_sq(net))
    )


def test_margins_scale_invariance():
    """γ(cθ) = γ(θ); γ̃(cθ) increases with c towards γ, staying within log n / ‖cθ‖² (exponential)."""
    X, y = _data()
    net = _separating_net(X, y)
    g = float(cr.normalized_margin(net, X, y))
    assert g > 0
    prev = -np.inf
    for c in [0.5, 1.0, 2.0, 5.0, 20.0]:
        sc = _scale(net, c)
        np.testing.assert_allclose(cr.normalized_margin(sc, X, y), g, rtol=1e-12)
        gt = float(cr.smoothed_margin(sc, X, y, loss="exponential"))
        assert prev <= gt <= g
        assert g <= gt + math.log(N) / float(cr.param_norm_sq(sc)) + 1e-14
        prev = gt
    np.testing.assert_allclose(prev, g, rtol=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_margin_sandwich(seed):
    """Exponential: γ̃ ≤ γ ≤ γ̃ + log n/‖θ‖². Logistic: γ̃ ≤ γ ≤ γ̃ + (log n + 𝓛)/‖θ‖².

    (Logistic: 𝓛 ≤ n e^{-q_min} and ℓ^{-1}(s) = -log(e^s - 1) ≥ -log s - s. The ``+ 𝓛`` cannot be
    dropped: n = 2, q_1 = q_2 = q gives q - ℓ^{-1}(𝓛) = log(2 + e^{-q}) > log 2.)
    """
    X, y = _data(seed)
    for c in [0.3, 1.0, 3.0]:
        net = _scale(cr.init_network(D, M, scale=1.0, key=jax.random.key(seed + 10)), c)
        nsq = float(cr.param_norm_sq(net))
        g = float(cr.normalized_margin(net, X, y))
        ge = float(cr.smoothed_margin(net, X, y, loss="exponential"))
        gl = float(cr.smoothed_margin(net, X, y, loss="logistic"))
        L = float(cr.logistic_loss(net, X, y))
        assert ge <= g + 1e-14 and g <= ge + math.log(N) / nsq + 1e-14
        assert gl <= g + 1e-14 and g <= gl + (math.log(N) + L) / nsq + 1e-14
    # the logistic counterexample to the bare log n bound
    q = 3.0
    L = 2 * math.log1p(math.exp(-q))
    assert q - (-math.log(math.expm1(L))) > math.log(2)


@pytest.mark.parametrize("target_log10", [-300, -3000])
def test_margins_exact_far_below_float_range(target_log10):
    """Scale a separating net until 𝓛 ≈ 10^target; γ and γ̃ stay finite and match closed forms."""
    X, y = _data()
    net = _separating_net(X, y)
    q = np.asarray(y * cr.forward(net, X))
    c = math.sqrt(-target_log10 * math.log(10) / q.min())  # min_i c² q_i = -log 10^target
    sc = _scale(net, c)
    qs = c**2 * q
    nsq = c**2 * float(cr.param_norm_sq(net))
    lse = float(np.log(np.sum(np.exp(-(qs - qs.min())))) - qs.min())  # log Σ e^{-q_i}
    assert lse == pytest.approx(target_log10 * math.log(10), rel=0.01)
    # for q ≥ 690, log softplus(-q) = -q to double precision, so both losses have log 𝓛 = lse
    for loss in ("logistic", "exponential"):
        np.testing.assert_allclose(cr.log_loss(sc, X, y, loss=loss), lse, rtol=1e-13)
        gt = cr.smoothed_margin(sc, X, y, loss=loss)
        assert np.isfinite(float(gt))
        np.testing.assert_allclose(gt, -lse / nsq, rtol=1e-12)  # ℓ^{-1}(𝓛) = -log 𝓛 (- 𝓛/2 ≈ 0)
    np.testing.assert_allclose(cr.normalized_margin(sc, X, y), qs.min() / nsq, rtol=1e-12)
    if target_log10 < -400:
        assert float(cr.logistic_loss(sc, X, y)) == 0.0  # the plain loss underflows; log space does not


def test_log_space_helpers():
    z = jnp.array([-1e4, -800.0, -30.0, -20.5, -19.5, -1.0, 0.0, 3.0, 40.0])
    ref = np.array([float(v) - math.exp(float(v)) / 2 if v < -30 else math.log(math.log1p(math.exp(float(v)))) for v in z])
    np.testing.assert_allclose(log_softplus(z), ref, rtol=1e-13)
    ls = jnp.array([-1e4, -50.0, -21.0, -19.0, -1.0, 0.0, 2.0, 6.0])
    s = np.exp(np.asarray(ls))
    with np.errstate(divide="ignore"):
        ref = np.where(np.asarray(ls) < -30, np.asarray(ls) + s / 2, np.log(np.expm1(s)))
    np.testing.assert_allclose(log_expm1(ls), ref, rtol=1e-13)


def test_loss_gradients_match_finite_differences():
    X, y = _data()
    net = cr.init_network(D, M, scale=0.5, balanced=False, key=jax.random.key(4))
    losses = (
        lambda n, X, y: cr.logistic_loss(n, X, y),
        lambda n, X, y: cr.exponential_loss(n, X, y),
        lambda n, X, y: cr.smoothed_margin(n, X, y),  # through log 𝓛 and log_expm1
        lambda n, X, y: cr.regularized_objective(n, X, y, beta=0.1, loss="squared"),
    )
    for loss in losses:
        jitted = jax.jit(lambda W1, w2, X, y, loss=loss: loss(cr.Network(W1, w2), X, y))
        check_grads(lambda W1, w2: jitted(W1, w2, X, y), (net.W1, net.w2), order=1, modes=("fwd", "rev"), eps=1e-6)
    # the log-space helpers, on both sides of their branch points
    check_grads(jax.jit(log_softplus), (jnp.array([-40.0, -25.0, -5.0, 0.5, 30.0]),), order=1, eps=1e-5)
    check_grads(jax.jit(log_expm1), (jnp.array([-40.0, -25.0, -5.0, 0.5, 3.0]),), order=1, eps=1e-5)


def test_smoothed_margin_nondecreasing_along_gradient_descent():
    """Lyu & Li (Lemma 5.1 for L = 2): once 𝓛 < ℓ(0) = log 2, γ̃ does not decrease along small-step descent."""
    X, y = _data()
    net = _separating_net(X, y)
    net = cr.Network(net.W1 + 0.05 * jax.random.normal(jax.random.key(5), net.W1.shape), net.w2)
    # scale until 𝓛 < log 2 (the loss of 2-homogeneous separating nets falls as c grows)
    net = _scale(net, math.sqrt(math.log(4 * N) / float(cr.normalized_margin(net, X, y) * cr.param_norm_sq(net))))
    assert float(cr.logistic_loss(net, X, y)) < math.log(2)
    res = cr.train(net, X, y, steps=400, lr=1e-3, record_every=1)
    gt = np.asarray(res.history.smoothed_margin)
    assert np.all(np.diff(gt) >= -1e-12)
    assert gt[-1] > gt[0]


def test_neuron_alignment():
    X, y = _data()
    net = cr.init_network(D, M, scale=0.5, key=jax.random.key(6))
    cos = np.asarray(cr.neuron_alignment(net, X, y))
    Dm = np.asarray(cr.neuron_patterns(net, X)).astype(float)
    for i in range(M):
        t = np.sign(float(net.w2[i])) * (np.asarray(X).T @ (Dm[i] * np.asarray(y)))
        w = np.asarray(net.W1[:, i])
        np.testing.assert_allclose(cos[i], w @ t / (np.linalg.norm(w) * np.linalg.norm(t)), rtol=1e-12)


def test_public_functions_under_jit_and_vmap():
    X, y = _data()
    keys = jax.random.split(jax.random.key(7), 3)
    nets = jax.vmap(lambda k: cr.init_network(D, M, scale=0.5, key=k))(keys)
    fns = [
        cr.forward,
        cr.logistic_loss,
        cr.exponential_loss,
        cr.squared_loss,
        cr.log_loss,
        cr.normalized_margin,
        cr.smoothed_margin,
        cr.neuron_alignment,
        cr.neuron_patterns,
    ]
    for fn in fns:
        two = fn is cr.forward or fn is cr.neuron_patterns
        call = (lambda n, X, y, fn=fn: fn(n, X)) if two else fn
        batched = jax.jit(jax.vmap(call, in_axes=(0, None, None)))(nets, X, y)
        for i in (0, 2):
            one = call(jax.tree.map(lambda a: a[i], nets), X, y)
            np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(one), rtol=1e-12, atol=1e-15)
    for fn in (cr.param_norm_sq, cr.balance):
        out = jax.jit(jax.vmap(fn))(nets)
        one = fn(jax.tree.map(lambda a: a[0], nets))
        for u, v in zip(jax.tree.leaves(out), jax.tree.leaves(one)):
            np.testing.assert_allclose(np.asarray(u[0]), np.asarray(v), rtol=1e-12)


def test_bad_inputs_refused():
    X, y = _data()
    net = cr.init_network(D, M, key=jax.random.key(8))
    with pytest.raises(ValueError, match="±1"):
        cr.logistic_loss(net, X, y.at[0].set(2.0))
    with pytest.raises(ValueError, match="shape"):
        cr.normalized_margin(net, X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        cr.smoothed_margin(net, X.at[1, 1].set(jnp.inf), y)
    with pytest.raises(ValueError, match="d = "):
        cr.logistic_loss(cr.init_network(D + 1, M, key=jax.random.key(0)), X, y)
    with pytest.raises(ValueError, match="smoothed margin is defined"):
        cr.smoothed_margin(net, X, y, loss="squared")
    with pytest.raises(ValueError, match="reduction"):
        cr.logistic_loss(net, X, y, reduction="max")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="m must be an int"):
            cr.init_network(D, bad, key=jax.random.key(0))
    with pytest.raises(TypeError, match="m must be an int"):
        cr.init_network(D, 2.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="scale"):
        cr.init_network(D, M, scale=0.0, key=jax.random.key(0))
