"""A catalogue of bad and edge inputs across the public API and the command line (issue 18).

Every case asserts its outcome: a clear error naming the problem (``match=`` on the message),
or the correct status or value. One problem shape (8 samples, 2 features) serves every case, so
each solver compiles once. The policy the cases check is :mod:`convexrelu._validation`'s.
"""

from __future__ import annotations

import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import cli, datasets

N, D_FEAT, M = 8, 2, 3
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def prob():
    X, y = datasets.orthogonally_separable(N, D_FEAT, key=jax.random.key(7))
    return X, y, cr.enumerate_patterns(X)


@pytest.fixture(scope="module")
def net():
    return cr.init_network(D_FEAT, M, scale=0.5, key=jax.random.key(1))


@pytest.fixture(scope="module")
def mm_sol(prob):
    X, y, D = prob
    return cr.solve_max_margin(X, y, D)


def _bad_X(kind, X):
    Xn = np.asarray(X)
    return {
        "float16": lambda: Xn.astype(np.float16),
        "bfloat16": lambda: jnp.asarray(Xn, jnp.bfloat16),
        "complex": lambda: Xn.astype(np.complex128),
        "nan": lambda: np.where(np.arange(Xn.size).reshape(Xn.shape) == 3, np.nan, Xn),
        "inf": lambda: np.where(np.arange(Xn.size).reshape(Xn.shape) == 0, np.inf, Xn),
        "1-D": lambda: Xn[:, 0],
        "no samples": lambda: Xn[:0],
        "strings": lambda: Xn.astype(str),
        "bool": lambda: Xn > 0,
    }[kind]()


# (kind, exception, message) of a bad X: what every function taking data must say
BAD_X = [
    ("float16", TypeError, "float16.*float32 or float64"),
    ("bfloat16", TypeError, "bfloat16.*float32 or float64"),
    ("complex", TypeError, "complex"),
    ("nan", ValueError, "NaN or infinite"),
    ("inf", ValueError, "NaN or infinite"),
    ("1-D", ValueError, "2-D"),
    ("no samples", ValueError, "at least one sample"),
    ("strings", TypeError, "numeric"),
    ("bool", TypeError, "bool"),
]


def _x_functions(prob, net):
    X, y, D = prob
    return {
        "forward": lambda Z: cr.forward(net, Z),
        "logistic_loss": lambda Z: cr.logistic_loss(net, Z, y),
        "squared_loss": lambda Z: cr.squared_loss(net, Z, y),
        "normalized_margin": lambda Z: cr.normalized_margin(net, Z, y),
        "smoothed_margin": lambda Z: cr.smoothed_margin(net, Z, y),
        "neuron_alignment": lambda Z: cr.neuron_alignment(net, Z, y),
        "enumerate_patterns": lambda Z: cr.enumerate_patterns(Z),
        "sample_patterns": lambda Z: cr.sample_patterns(Z, num=4, key=KEY),
        "solve_max_margin": lambda Z: cr.solve_max_margin(Z, y, D),
        "solve_regularized": lambda Z: cr.solve_regularized(Z, y, D, beta=0.1),
        "dual_certificate": lambda Z: cr.dual_certificate(Z, y),
        "to_convex": lambda Z: cr.to_convex(net, Z),
        "is_orthogonally_separable": lambda Z: datasets.is_orthogonally_separable(Z, y),
        "train": lambda Z: cr.train(net, Z, y, steps=2),
    }


X_FUNCS = [
    "forward", "logistic_loss", "squared_loss", "normalized_margin", "smoothed_margin", "neuron_alignment",
    "enumerate_patterns", "sample_patterns", "solve_max_margin", "solve_regularized", "dual_certificate",
    "to_convex", "is_orthogonally_separable", "train",
]


@pytest.mark.parametrize("func", X_FUNCS)
@pytest.mark.parametrize("kind, exc, match", BAD_X, ids=[b[0] for b in BAD_X])
def test_bad_X_is_refused_by_name(prob, net, func, kind, exc, match):
    X = prob[0]
    with pytest.raises(exc, match=match):
        _x_functions(prob, net)[func](_bad_X(kind, X))


@pytest.mark.parametrize("func", ["forward", "logistic_loss", "normalized_margin", "to_convex", "dual_certificate"])
def test_integer_X_is_cast_to_the_default_float(prob, net, func):
    # documented cast: integer data become float64 (x64 on) and give the float results
    Xi = np.round(4 * np.asarray(prob[0])).astype(np.int32)
    Xf = Xi.astype(np.float64)
    f = _x_functions(prob, net)[func]
    a, b = f(Xi), f(Xf)
    a = a.value if hasattr(a, "value") else a
    b = b.value if hasattr(b, "value") else b
    assert np.allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------------- labels


def _bad_y(kind, y):
    yn = np.asarray(y)
    return {
        "0/1": lambda: (yn > 0).astype(np.float64),
        "nan": lambda: np.where(np.arange(N) == 2, np.nan, yn),
        "short": lambda: yn[:-1],
        "2-D": lambda: yn[:, None],
        "complex": lambda: yn.astype(np.complex128),
    }[kind]()


BAD_Y = [
    ("0/1", ValueError, "±1"),
    ("nan", ValueError, "NaN"),
    ("short", ValueError, r"shape \(8,\)"),
    ("2-D", ValueError, r"shape \(8,\)"),
    ("complex", TypeError, "complex"),
]


def _y_functions(prob, net):
    X, y, D = prob
    return {
        "logistic_loss": lambda t: cr.logistic_loss(net, X, t),
        "normalized_margin": lambda t: cr.normalized_margin(net, X, t),
        "smoothed_margin": lambda t: cr.smoothed_margin(net, X, t),
        "log_loss": lambda t: cr.log_loss(net, X, t),
        "neuron_alignment": lambda t: cr.neuron_alignment(net, X, t),
        "solve_max_margin": lambda t: cr.solve_max_margin(X, t, D),
        "solve_regularized_logistic": lambda t: cr.solve_regularized(X, t, D, beta=0.1, loss="logistic"),
        "train": lambda t: cr.train(net, X, t, steps=2),
        "is_orthogonally_separable": lambda t: datasets.is_orthogonally_separable(X, t),
        "kkt_certificate": lambda t: cr.kkt_certificate(net, X, t),
    }


Y_FUNCS = [
    "logistic_loss", "normalized_margin", "smoothed_margin", "log_loss", "neuron_alignment", "solve_max_margin",
    "solve_regularized_logistic", "train", "is_orthogonally_separable", "kkt_certificate",
]


@pytest.mark.parametrize("func", Y_FUNCS)
@pytest.mark.parametrize("kind, exc, match", BAD_Y, ids=[b[0] for b in BAD_Y])
def test_bad_labels_are_refused_by_name(prob, net, func, kind, exc, match):
    with pytest.raises(exc, match=match):
        _y_functions(prob, net)[func](_bad_y(kind, prob[1]))


# ------------------------------------------------------------------------- values under jit


def test_labels_01_under_filter_jit_name_the_cause(prob, net):
    X, y, _ = prob
    y01 = (y > 0).astype(X.dtype)
    with pytest.raises(eqx.EquinoxRuntimeError, match="±1"):
        jax.block_until_ready(eqx.filter_jit(cr.normalized_margin)(net, X, y01))


def test_labels_01_under_jax_jit_carry_the_cause(prob, net):
    X, y, _ = prob
    y01 = (y > 0).astype(X.dtype)
    with pytest.raises(Exception, match="labels y must be ±1"):
        jax.block_until_ready(jax.jit(cr.logistic_loss)(net, X, y01))


def test_labels_01_under_vmap_name_the_cause(prob, net):
    X, y, _ = prob
    ys = jnp.stack([y, (y > 0).astype(X.dtype)])
    with pytest.raises(eqx.EquinoxRuntimeError, match="±1"):
        jax.block_until_ready(eqx.filter_jit(jax.vmap(lambda t: cr.log_loss(net, X, t)))(ys))


def test_nan_data_under_jit_name_the_cause(prob, net):
    X = jnp.asarray(prob[0]).at[0, 0].set(jnp.nan)
    with pytest.raises(eqx.EquinoxRuntimeError, match="NaN or infinite"):
        jax.block_until_ready(eqx.filter_jit(cr.forward)(net, X))


def test_zero_network_margin_under_jit_names_the_cause(prob):
    X, y, _ = prob
    zero = cr.Network(jnp.zeros((D_FEAT, M)), jnp.zeros(M))
    with pytest.raises(eqx.EquinoxRuntimeError, match="network is zero"):
        jax.block_until_ready(eqx.filter_jit(cr.normalized_margin)(zero, X, y))


@pytest.mark.slow
def test_labels_01_in_a_jitted_solve_name_the_cause(prob):
    X, y, D = prob
    y01 = (y > 0).astype(X.dtype)
    with pytest.raises(eqx.EquinoxRuntimeError, match="±1"):
        jax.block_until_ready(eqx.filter_jit(lambda t: cr.solve_max_margin(X, t, D).value)(y01))


@pytest.mark.parametrize("solve", [cr.solve_regularized, cr.solve_gated])
def test_traced_negative_beta_is_refused_by_name(prob, solve):
    """Under jit a negative β (an unbounded program) is an error, not an 'optimal' zero network."""
    X, y, D = prob
    with pytest.raises(eqx.EquinoxRuntimeError, match="beta must be a finite positive"):
        jax.block_until_ready(eqx.filter_jit(lambda b: solve(X, y, D, beta=b, loss="logistic", throw=False).value)(jnp.asarray(-1.0)))


def test_traced_negative_lr_is_refused_by_name(prob, net):
    X, y, _ = prob
    with pytest.raises(eqx.EquinoxRuntimeError, match="lr must be"):
        jax.block_until_ready(eqx.filter_jit(lambda lr: cr.train(net, X, y, steps=2, lr=lr).net)(jnp.asarray(-0.1)))


# ------------------------------------------------------------------ scalars in every form


def _negative_forms(v):
    """``v`` (a bad value) as a Python float, a NumPy float32 and float64, and a JAX scalar."""
    return [("python", v), ("np.float32", np.float32(v)), ("np.float64", np.float64(v)), ("jax", jnp.asarray(v))]


def _scalar_calls(prob, net):
    X, y, D = prob
    return {
        "train lr": lambda v: cr.train(net, X, y, steps=2, lr=v),
        "train max_alpha": lambda v: cr.train(net, X, y, steps=2, schedule="loss-based", max_alpha=v),
        "init_network scale": lambda v: cr.init_network(D_FEAT, M, scale=v, key=KEY),
        "regularized_objective beta": lambda v: cr.regularized_objective(net, X, y, beta=v),
        "regularized_certificate beta": lambda v: cr.regularized_certificate(net, X, y, beta=v),
        "solve_regularized beta": lambda v: cr.solve_regularized(X, y, D, beta=v),
        "kkt_certificate support_tol": lambda v: cr.kkt_certificate(net, X, y, support_tol=v),
        "to_network tol": lambda v: cr.to_network(cr.to_convex(net, X), tol=v),
        "prune zero_tol": lambda v: cr.prune(cr.to_convex(net, X), X, zero_tol=v),
        "teacher min_margin": lambda v: datasets.teacher(N, D_FEAT, key=KEY, min_margin=v),
    }


# (call, a value out of range, the name the message must give)
SCALAR_CASES = [
    ("train lr", -0.1, "lr must be"),
    ("train max_alpha", -1.0, "max_alpha must be"),
    ("init_network scale", -1e-3, "scale must be"),
    ("regularized_objective beta", -0.5, "beta must be"),
    ("regularized_certificate beta", -0.5, "beta must be"),
    ("solve_regularized beta", -0.1, "beta must be"),
    ("kkt_certificate support_tol", -0.1, "support_tol must be"),
    ("to_network tol", -0.5, "tol must be"),
    ("prune zero_tol", -0.5, "zero_tol must be"),
    ("teacher min_margin", -1.0, "min_margin must be"),
]


@pytest.mark.parametrize("call, value, match", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
@pytest.mark.parametrize("form", ["python", "np.float32", "np.float64", "jax"])
def test_out_of_range_scalars_are_refused_in_every_form(prob, net, call, value, match, form):
    v = dict(_negative_forms(value))[form]
    with pytest.raises(ValueError, match=match):
        _scalar_calls(prob, net)[call](v)


# (call, value, exception, message): NaN, inf, zero, wrong types
SCALAR_SPECIAL = [
    ("init_network scale", math.inf, ValueError, "scale must be a finite number > 0"),
    ("init_network scale", np.inf, ValueError, "scale must be"),
    ("init_network scale", math.nan, ValueError, "scale must be"),
    ("init_network scale", 0.0, ValueError, "scale must be"),
    ("init_network scale", "1e-3", TypeError, "scale must be"),
    ("init_network scale", True, TypeError, "bool"),
    ("init_network scale", 1e-3 + 0j, TypeError, "scale must be"),
    ("init_network scale", np.array([1e-3, 1e-3]), ValueError, "scalar"),
    ("train lr", math.nan, ValueError, "lr must be"),
    ("train lr", math.inf, ValueError, "lr must be"),
    ("train lr", 0.0, ValueError, "lr must be"),
    ("train lr", "0.1", TypeError, "lr must be"),
    ("train lr", np.complex64(0.1), TypeError, "lr must be"),
    ("train max_alpha", math.nan, ValueError, "max_alpha must be"),
    ("train max_alpha", 0.0, ValueError, "max_alpha must be"),
    ("regularized_objective beta", math.nan, ValueError, "beta must be"),
    ("regularized_objective beta", math.inf, ValueError, "beta must be"),
    ("regularized_certificate beta", 0.0, ValueError, "beta must be"),
    ("regularized_certificate beta", math.inf, ValueError, "beta must be"),
    ("regularized_certificate beta", None, TypeError, "beta must be"),
    ("solve_regularized beta", 0.0, ValueError, "beta must be"),
    ("solve_regularized beta", math.inf, ValueError, "beta must be"),
    ("solve_regularized beta", math.nan, ValueError, "beta must be"),
    ("to_network tol", 1.5, ValueError, "tol must be"),
    ("to_network tol", math.nan, ValueError, "tol must be"),
    ("to_network tol", "small", TypeError, "tol must be"),
    ("prune zero_tol", 1.0, ValueError, "zero_tol must be"),
    ("kkt_certificate support_tol", math.nan, ValueError, "support_tol must be"),
]


@pytest.mark.parametrize("call, value, exc, match", SCALAR_SPECIAL, ids=[f"{c[0]}={c[1]!r}" for c in SCALAR_SPECIAL])
def test_special_scalars_are_refused(prob, net, call, value, exc, match):
    with pytest.raises(exc, match=match):
        _scalar_calls(prob, net)[call](value)


@pytest.mark.parametrize("form", ["np.float32", "np.float64", "jax"])
def test_valid_scalars_are_accepted_in_every_form(prob, net, form):
    # the same lr as a Python float, a NumPy scalar or a JAX scalar: the same training
    X, y, _ = prob
    v = dict(_negative_forms(0.05))[form]
    ref = cr.train(net, X, y, steps=5, lr=0.05)
    got = cr.train(net, X, y, steps=5, lr=v)
    assert np.allclose(np.asarray(got.net.W1), np.asarray(ref.net.W1), rtol=1e-6)


# (call, value, exception, message) for size arguments
def _int_calls(prob, net):
    X, y, D = prob
    return {
        "train steps": lambda v: cr.train(net, X, y, steps=v),
        "train record_every": lambda v: cr.train(net, X, y, steps=4, record_every=v),
        "init_network d": lambda v: cr.init_network(v, M, key=KEY),
        "init_network m": lambda v: cr.init_network(D_FEAT, v, key=KEY),
        "dual_certificate num_samples": lambda v: cr.dual_certificate(X, y, num_samples=v),
        "dual_certificate ascent_steps": lambda v: cr.dual_certificate(X, y, ascent_steps=v),
        "split num": lambda v: cr.split(net, num=v, key=KEY),
        "to_network pad_to": lambda v: cr.to_network(cr.to_convex(net, X), pad_to=v),
        "orthogonally_separable n": lambda v: datasets.orthogonally_separable(v, D_FEAT, key=KEY),
        "teacher d": lambda v: datasets.teacher(N, v, key=KEY),
    }


INT_CASES = [
    ("train steps", 0, ValueError, "steps must be an int ≥ 1"),
    ("train steps", -5, ValueError, "steps must be"),
    ("train steps", 2.5, TypeError, "steps must be"),
    ("train steps", True, TypeError, "bool"),
    ("train steps", "10", TypeError, "steps must be"),
    ("train steps", np.int64(0), ValueError, "steps must be"),
    ("train record_every", 0, ValueError, "record_every must be"),
    ("train record_every", 1.0, TypeError, "record_every must be"),
    ("init_network d", 0, ValueError, "d must be"),
    ("init_network d", 2.0, TypeError, "d must be"),
    ("init_network m", -1, ValueError, "m must be"),
    ("init_network m", None, TypeError, "m must be"),
    ("dual_certificate num_samples", -1, ValueError, "num_samples must be"),
    ("dual_certificate ascent_steps", 1.5, TypeError, "ascent_steps must be"),
    ("split num", 0, ValueError, "num must be"),
    ("split num", 2.0, TypeError, "num must be"),
    ("to_network pad_to", 0, ValueError, "pad_to must be"),
    ("to_network pad_to", 1.5, TypeError, "pad_to must be"),
    ("orthogonally_separable n", 1, ValueError, "n must be"),
    ("teacher d", 0, ValueError, "d must be"),
]


@pytest.mark.parametrize("call, value, exc, match", INT_CASES, ids=[f"{c[0]}={c[1]!r}" for c in INT_CASES])
def test_bad_sizes_are_refused(prob, net, call, value, exc, match):
    with pytest.raises(exc, match=match):
        _int_calls(prob, net)[call](value)


def test_numpy_and_jax_int_sizes_are_accepted(prob, net):
    X, y, _ = prob
    a = cr.train(net, X, y, steps=np.int64(3))
    b = cr.train(net, X, y, steps=3)
    assert np.array_equal(np.asarray(a.net.W1), np.asarray(b.net.W1))
    assert cr.init_network(np.int32(2), jnp.asarray(3), key=KEY).W1.shape == (2, 3)


DTYPE_CASES = [
    ("init_network", jnp.float16, "float32 or float64"),
    ("init_network", jnp.bfloat16, "float32 or float64"),
    ("init_network", jnp.complex64, "float32 or float64"),
    ("init_network", jnp.int32, "float32 or float64"),
    ("orthogonally_separable", np.float16, "float32 or float64"),
    ("teacher", "complex128", "float32 or float64"),
    ("two_d", jnp.bfloat16, "float32 or float64"),
    ("init_network", "no-such-dtype", "float32 or float64"),
]


@pytest.mark.parametrize("func, dtype, match", DTYPE_CASES, ids=[f"{c[0]}-{c[1]}" for c in DTYPE_CASES])
def test_unsupported_dtype_arguments_are_refused(func, dtype, match):
    call = {
        "init_network": lambda: cr.init_network(D_FEAT, M, key=KEY, dtype=dtype),
        "orthogonally_separable": lambda: datasets.orthogonally_separable(N, D_FEAT, key=KEY, dtype=dtype),
        "teacher": lambda: datasets.teacher(N, D_FEAT, key=KEY, dtype=dtype),
        "two_d": lambda: datasets.two_d(N, key=KEY, dtype=dtype),
    }[func]
    with pytest.raises(TypeError, match=match):
        call()


KEY_CASES = [
    (None, TypeError, "PRNG key"),
    (0, TypeError, r"jax.random.key\(0\)"),
    ("seed", TypeError, "PRNG key"),
    (np.zeros(3, np.uint32), TypeError, "PRNG key"),
]


@pytest.mark.parametrize("func", ["init_network", "orthogonally_separable", "teacher", "split"])
@pytest.mark.parametrize("key, exc, match", KEY_CASES, ids=["None", "int", "str", "uint32x3"])
def test_bad_keys_are_refused(net, func, key, exc, match):
    if func == "split" and key is None:
        exc, match = ValueError, "needs key="  # split(num=...) without a key
    call = {
        "init_network": lambda: cr.init_network(D_FEAT, M, key=key),
        "orthogonally_separable": lambda: datasets.orthogonally_separable(N, D_FEAT, key=key),
        "teacher": lambda: datasets.teacher(N, D_FEAT, key=key),
        "split": lambda: cr.split(net, num=2, key=key),
    }[func]
    with pytest.raises(exc, match=match):
        call()


def test_a_batch_of_keys_is_refused():
    with pytest.raises(ValueError, match="one key"):
        cr.init_network(D_FEAT, M, key=jax.random.split(KEY, 2))


# ---------------------------------------------------------------------------------- networks


def _bad_net(kind):
    W1, w2 = np.ones((D_FEAT, M)), np.array([1.0, -1.0, 0.5])
    return {
        "nan W1": lambda: cr.Network(jnp.asarray(np.where(W1 > 0, np.nan, W1)), jnp.asarray(w2)),
        "inf w2": lambda: cr.Network(jnp.asarray(W1), jnp.asarray(np.array([np.inf, 1.0, 1.0]))),
        "float16": lambda: cr.Network(jnp.asarray(W1, jnp.float16), jnp.asarray(w2, jnp.float16)),
        "complex": lambda: cr.Network(jnp.asarray(W1, jnp.complex128), jnp.asarray(w2, jnp.complex128)),
        "W1 1-D": lambda: cr.Network(jnp.ones(D_FEAT), jnp.asarray(w2)),
        "m mismatch": lambda: cr.Network(jnp.asarray(W1), jnp.ones(M + 1)),
        "d mismatch": lambda: cr.Network(jnp.ones((D_FEAT + 1, M)), jnp.asarray(w2)),
        "not a network": lambda: (jnp.asarray(W1), jnp.asarray(w2)),
    }[kind]()


BAD_NET = [
    ("nan W1", ValueError, "NaN or infinite weights"),
    ("inf w2", ValueError, "NaN or infinite weights"),
    ("float16", TypeError, "float16"),
    ("complex", TypeError, "complex"),
    ("W1 1-D", ValueError, r"W1 \(d, m\) and w2 \(m,\)"),
    ("m mismatch", ValueError, r"W1 \(d, m\) and w2 \(m,\)"),
    ("d mismatch", ValueError, "d = 3 features but X has d = 2"),
    ("not a network", TypeError, "Network"),
]


@pytest.mark.parametrize("func", ["forward", "logistic_loss", "normalized_margin", "to_convex", "train"])
@pytest.mark.parametrize("kind, exc, match", BAD_NET, ids=[b[0] for b in BAD_NET])
def test_bad_networks_are_refused_by_name(prob, func, kind, exc, match):
    if func == "to_convex" and kind == "not a network":
        match = "Network|W1"
    with pytest.raises(exc, match=match):
        _x_functions(prob, _bad_net(kind))[func](prob[0])


def test_zero_network_margins_are_errors_not_nan(prob):
    X, y, _ = prob
    zero = cr.Network(jnp.zeros((D_FEAT, M)), jnp.zeros(M))
    with pytest.raises(ValueError, match="network is zero.*normalized margin"):
        cr.normalized_margin(zero, X, y)
    with pytest.raises(ValueError, match="network is zero.*smoothed margin"):
        cr.smoothed_margin(zero, X, y)
    with pytest.raises(ValueError, match="does not separate"):
        cr.kkt_certificate(zero, X, y)


def test_zero_network_has_documented_values(prob):
    X, y, _ = prob
    zero = cr.Network(jnp.zeros((D_FEAT, M)), jnp.zeros(M))
    assert float(cr.logistic_loss(zero, X, y)) == pytest.approx(N * math.log(2), rel=1e-14)
    assert np.array_equal(np.asarray(cr.neuron_alignment(zero, X, y)), np.zeros(M))  # documented 0
    sol = cr.to_convex(zero, X)  # documented: one all-ones pattern, zero blocks
    assert sol.patterns.shape == (1, N) and float(sol.value) == 0.0
    assert cr.to_network(sol).m == 0


@pytest.mark.parametrize("c", [1e-150, 1e150])
def test_margin_is_scale_invariant_at_the_float_range_ends(prob, net, c):
    X, y, _ = prob
    big = cr.Network(net.W1 * c, net.w2 * c)
    assert float(cr.normalized_margin(big, X, y)) == pytest.approx(float(cr.normalized_margin(net, X, y)), rel=1e-12)


def test_to_convex_of_overflowing_weights_is_an_error_not_zero(prob, net):
    big = cr.Network(net.W1 * 1e200, net.w2 * 1e200)
    with pytest.raises(ValueError, match="overflow"):
        cr.to_convex(big, prob[0])


def test_a_diverged_run_in_a_vmapped_batch_gives_nan_not_an_error(prob, net):
    # documented: traced weights are not checked for NaN (TrainResult.diverged flags them)
    X, y, _ = prob
    nets = jax.tree.map(lambda a: jnp.stack([a, jnp.full_like(a, jnp.nan)]), net)
    m = jax.vmap(lambda n_: cr.normalized_margin(n_, X, y))(nets)
    assert np.isfinite(float(m[0])) and np.isnan(float(m[1]))


# --------------------------------------------------------------------------------- solutions


def _with_status(sol, code):
    return eqx.tree_at(lambda s: s.status, sol, jnp.asarray(int(code), jnp.int32))


NON_OPTIMAL = ["max_iters", "infeasible", "numerical_error", "inaccurate"]


@pytest.mark.parametrize("status", NON_OPTIMAL)
@pytest.mark.parametrize("func", ["to_network", "prune"])
def test_non_optimal_solutions_are_not_mapped(prob, mm_sol, status, func):
    sol = _with_status(mm_sol, getattr(cr.RESULTS, status))
    call = {"to_network": lambda **kw: cr.to_network(sol, **kw), "prune": lambda **kw: cr.prune(sol, prob[0], **kw)}[func]
    with pytest.raises(ValueError, match=f"status '{status}'.*allow_inexact=True"):
        call()
    out = call(allow_inexact=True)  # asked for: mapped
    assert out is not None


def test_optimal_solution_maps_to_a_network_of_the_optimal_margin(prob, mm_sol):
    X, y, _ = prob
    assert int(mm_sol.status) == cr.RESULTS.optimal
    psi = cr.to_network(mm_sol, tol=1e-6)
    assert float(cr.normalized_margin(psi, X, y)) == pytest.approx(1 / (2 * float(mm_sol.value)), rel=1e-4)


def test_to_network_of_a_non_solution_is_a_type_error(net):
    with pytest.raises(TypeError, match="ConvexSolution"):
        cr.to_network(net)


# ---------------------------------------------------------------------------------- training


def test_float32_loss_based_training_that_never_moves_is_flagged_stalled():
    X, y = datasets.orthogonally_separable(40, 5, key=jax.random.key(0), dtype=jnp.float32)
    net32 = cr.init_network(5, 50, scale=1e-3, key=jax.random.key(1), dtype=jnp.float32)
    res = cr.train(net32, X, y, steps=200, schedule="loss-based")
    # issue 18: every step is rejected at the default scale in float32; the result says so
    assert bool(res.stalled) and not bool(res.diverged)
    assert np.array_equal(np.asarray(res.net.W1), np.asarray(net32.W1))
    assert np.all(np.asarray(res.history.rejected) == 100)


def test_constant_steps_below_the_loss_resolution_are_flagged_stalled(prob, net):
    X, y, _ = prob
    res = cr.train(net, X, y, steps=3, lr=1e-300)
    assert bool(res.stalled) and not bool(res.diverged)


def test_training_that_moves_is_not_stalled(prob, net):
    X, y, _ = prob
    res = cr.train(net, X, y, steps=20, schedule="loss-based")
    assert not bool(res.stalled)
    many = cr.train_many(jax.tree.map(lambda a: jnp.stack([a, a]), net), X, y, steps=20, lr=1e-300)
    assert many.stalled.shape == (2,) and bool(np.all(np.asarray(many.stalled)))


# ------------------------------------------------------------------------------------- files


GOOD_ROWS = ["0.5,1.0,1", "-0.5,-1.0,0", "0.4,0.9,1", "-0.3,-1.1,0"]


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


CSV_BAD = [
    ("typo in the first row", "0.1,O.5,1\n" + "\n".join(GOOD_ROWS), r"line 1, column 2: 'O.5' is not a real number"),
    ("typo in a later row", "\n".join(GOOD_ROWS[:2] + ["0.2,0..3,1"] + GOOD_ROWS[2:]), "line 3, column 2"),
    ("typo after a header", "a,b,label\n" + "\n".join(GOOD_ROWS[:1] + ["x,0.1,1"]), "line 3, column 1"),
    ("header only", "a,b,label\n", "header line but no data rows"),
    ("empty", "", "the file is empty"),
    ("blank lines only", "\n  \n\n", "the file is empty"),
    ("comments only", "# nothing\n# here\n", "the file is empty"),
    ("one column", "1\n0\n1\n", "no feature columns"),
    ("header and one column", "label\n1\n0\n", "no feature columns"),
    ("ragged row", "\n".join(GOOD_ROWS[:2] + ["0.1,1"]), "line 3: 2 fields, expected 3"),
    ("complex value", "\n".join(GOOD_ROWS[:2] + ["1+2j,0.5,1"]), "'1\\+2j' is not a real number"),
    ("nan feature", "\n".join(GOOD_ROWS[:2] + ["nan,0.5,1"]), "NaN or infinite"),
    ("inf label", "\n".join(GOOD_ROWS[:2] + ["0.1,0.5,inf"]), "NaN or infinite"),
    ("three classes", "\n".join(GOOD_ROWS + ["0.1,0.2,2"]), "exactly two classes, found 3"),
    ("one class", "0.1,0.2,1\n0.3,0.4,1\n", "exactly two classes, found 1"),
    ("semicolons", "0.1;0.2;1\n0.3;0.4;0\n", "line 2, column 1: .* separated by commas"),
]


@pytest.mark.parametrize("content, match", [c[1:] for c in CSV_BAD], ids=[c[0] for c in CSV_BAD])
def test_bad_csv_files_are_named(tmp_path, content, match):
    path = _write(tmp_path, "d.csv", content)
    with pytest.raises(ValueError, match=match):
        datasets.load_file(path)


def test_binary_garbage_csv_is_named(tmp_path):
    path = _write(tmp_path, "d.csv", bytes([0xFF, 0xFE, 0x00, 0x81, 0x9C]) * 20)
    with pytest.raises(ValueError, match="not a text CSV file"):
        datasets.load_file(path)


@pytest.mark.parametrize(
    "content",
    [
        "\n".join(GOOD_ROWS),  # no header: the first row is data
        "x1,x2,y\n" + "\n".join(GOOD_ROWS),  # a header
        "# a comment\n\n" + "\n".join(GOOD_ROWS) + "\n\n",  # comments and blank lines
        "\n".join(r.replace(",", " , ") for r in GOOD_ROWS),  # spaces around the commas
    ],
    ids=["headerless", "header", "comments", "spaces"],
)
def test_good_csv_files_keep_every_data_row(tmp_path, content):
    X, y = datasets.load_file(_write(tmp_path, "d.csv", content))
    assert X.shape == (4, 2) and float(X[0, 0]) == 0.5  # the first data row is never dropped
    assert np.array_equal(np.asarray(y), [1.0, -1.0, 1.0, -1.0])


def _npz(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


Y4 = np.array([0, 1, 0, 1])

NPZ_BAD = [
    ("complex X", dict(X=np.ones((4, 2)) * (1 + 1j), y=Y4), "X is complex"),
    ("complex y", dict(X=np.ones((4, 2)), y=Y4 * (1 + 1j)), "labels y are complex"),
    ("string y", dict(X=np.ones((4, 2)), y=np.array(["a", "b", "a", "b"])), "labels y must be numeric"),
    ("string X", dict(X=np.array([["a", "b"]] * 4), y=Y4), "X must be numeric"),
    ("no samples", dict(X=np.ones((0, 2)), y=np.ones(0)), "no samples"),
    ("no features", dict(X=np.ones((4, 0)), y=Y4), "no features"),
    ("3-D X", dict(X=np.ones((4, 2, 1)), y=Y4), "2-D"),
    ("2-D y", dict(X=np.ones((4, 2)), y=Y4[:, None]), r"shape \(4,\)"),
    ("missing y", dict(X=np.ones((4, 2))), "missing \\['y'\\]"),
    ("inf X", dict(X=np.full((4, 2), np.inf), y=Y4), "NaN or infinite"),
]


@pytest.mark.parametrize("arrays, match", [c[1:] for c in NPZ_BAD], ids=[c[0] for c in NPZ_BAD])
def test_bad_npz_files_are_named(tmp_path, arrays, match):
    with pytest.raises(ValueError, match=match):
        datasets.load_file(_npz(tmp_path, "d.npz", **arrays))


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 not really a zip archive" * 3, "not a valid .npz"),
        (b"\x00" * 64, "not a valid .npz"),
        (b"\x93NUMPY fake npy header", "not a valid .npz"),
    ],
    ids=["empty", "truncated zip", "zeros", "npy magic"],
)
def test_corrupt_npz_files_are_named(tmp_path, content, match):
    with pytest.raises(ValueError, match=match):
        datasets.load_file(_write(tmp_path, "d.npz", content))


def test_object_arrays_in_npz_are_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([[1, "a"]] * 4, dtype=object), y=Y4)
    with pytest.raises(ValueError, match="cannot read the .npz arrays"):
        datasets.load_file(path)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_])
def test_integer_and_narrow_npz_features_are_cast(tmp_path, dtype):
    Xs = (np.arange(8).reshape(4, 2) % 3).astype(dtype)
    X, _ = datasets.load_file(_npz(tmp_path, "d.npz", X=Xs, y=Y4))
    assert X.dtype == jnp.float64 and np.array_equal(np.asarray(X), Xs.astype(np.float64))


def test_load_file_values_beyond_float32_are_named(tmp_path):
    path = _npz(tmp_path, "big.npz", X=np.full((4, 2), 1e300), y=Y4)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        datasets.load_file(path, dtype=jnp.float32)


def test_load_file_refuses_a_float16_dtype(tmp_path):
    with pytest.raises(TypeError, match="float32 or float64"):
        datasets.load_file(_npz(tmp_path, "d.npz", X=np.ones((4, 2)), y=Y4), dtype=jnp.float16)


def test_load_file_missing_and_unsupported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        datasets.load_file(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="unsupported file type '.json'"):
        datasets.load_file(_write(tmp_path, "d.json", "{}"))


# --------------------------------------------------------------------------------------- CLI


def _cli(argv, capsys):
    """``(exit status, stderr)`` of ``convexrelu ARGV`` (a raised SystemExit gives its code)."""
    try:
        code = cli.main(["--no-cache", *argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture
def files(tmp_path):
    X, y = datasets.orthogonally_separable(10, 2, key=jax.random.key(3))
    paths = {
        "good": _npz(tmp_path, "good.npz", X=np.asarray(X), y=np.asarray(y)),
        "zero": _npz(tmp_path, "zero.npz", X=np.zeros((10, 2)), y=np.asarray(y)),
        "typo": _write(tmp_path, "typo.csv", "0.1,O.5,1\n" + "\n".join(GOOD_ROWS)),
        "empty": _write(tmp_path, "empty.csv", ""),
        "header": _write(tmp_path, "header.csv", "a,b,y\n"),
        "corrupt": _write(tmp_path, "corrupt.npz", b"PK\x03\x04garbage" * 4),
        "complex": _npz(tmp_path, "complex.npz", X=np.ones((4, 2)) * 1j, y=Y4),
        "nofeat": _npz(tmp_path, "nofeat.npz", X=np.ones((4, 0)), y=Y4),
        "labels": _npz(tmp_path, "labels.npz", X=np.ones((4, 2)), y=np.array([0, 1, 2, 0])),
    }
    return {k: str(v) for k, v in paths.items()}


CLI_BAD_DATA = [
    ("zero", "every feature of .* is zero"),
    ("typo", r"line 1, column 2: 'O.5' is not a real number"),
    ("empty", "the file is empty"),
    ("header", "header line but no data rows"),
    ("corrupt", "not a valid .npz"),
    ("complex", "X is complex"),
    ("nofeat", "no features"),
    ("labels", "exactly two classes"),
]


@pytest.mark.parametrize("which, match", CLI_BAD_DATA, ids=[c[0] for c in CLI_BAD_DATA])
@pytest.mark.parametrize("command", ["solve", "crosscheck"])
def test_cli_bad_data_exits_2_naming_the_cause(files, capsys, monkeypatch, which, match, command):
    monkeypatch.setattr(cr, "crosscheck", _never_called)
    monkeypatch.setattr(cr, "solve_max_margin", _never_called)
    flag = "--data" if command == "solve" else "--dataset"
    code, err = _cli([command, flag, files[which], "--quiet"], capsys)
    assert code == 2
    assert __import__("re").search(match, err), err


def _never_called(*args, **kwargs):
    raise AssertionError("the command did work before refusing its input")


def _unwritable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return str(blocker / "out")  # a folder below a file: unwritable, for root too


def test_cli_unwritable_out_exits_3_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cr, "crosscheck", _never_called)
    code, err = _cli(["crosscheck", "--dataset", "2d", "--n", "8", "--out", _unwritable(tmp_path), "--quiet"], capsys)
    assert code == 3 and "cannot write to --out" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_cli_read_only_out_exits_3_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cr, "crosscheck", _never_called)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, err = _cli(["crosscheck", "--dataset", "2d", "--out", str(ro), "--quiet"], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 3 and "cannot write to --out" in err


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_cli_unreadable_data_file_exits_3(files, capsys):
    os.chmod(files["good"], 0)
    try:
        code, err = _cli(["solve", "--data", files["good"], "--quiet"], capsys)
    finally:
        os.chmod(files["good"], 0o600)
    assert code == 3 and "cannot open" in err


def test_cli_data_folder_exits_3(tmp_path, capsys):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    code, err = _cli(["solve", "--data", str(folder), "--quiet"], capsys)
    assert code == 3 and "cannot open" in err


def test_cli_library_refusal_exits_2(files, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("labels y must be ±1")

    monkeypatch.setattr(cr, "solve_max_margin", refuse)
    code, err = _cli(["solve", "--data", files["good"], "--quiet"], capsys)
    assert code == 2 and "labels y must be ±1" in err


def test_cli_io_failure_mid_way_exits_3(files, capsys, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cr, "solve_max_margin", disk_full)
    code, err = _cli(["solve", "--data", files["good"], "--quiet"], capsys)
    assert code == 3 and "No space left on device" in err


CLI_USAGE = [
    ["solve", "--tol", "-1"],
    ["solve", "--tol", "abc"],
    ["solve", "--beta", "0", "--program", "regularized"],
    ["solve", "--program", "regularized"],
    ["solve", "--program", "lasso"],
    ["solve", "--repeat", "0"],
    ["solve", "--n", "abc"],
    ["solve", "--d", "0"],
    ["solve", "--data", "2d", "--d", "3"],
    ["solve", "--data", "no-such-dataset"],
    ["solve", "--loss", "hinge"],
    ["crosscheck", "--runs", "0"],
    ["crosscheck", "--steps", "-5"],
    ["crosscheck", "--scale", "0"],
    ["crosscheck", "--lr", "nan-ish"],
    ["crosscheck", "--lr", "nan"],
    ["crosscheck", "--scale", "inf"],
    ["solve", "--program", "regularized", "--beta", "nan"],
    ["crosscheck", "--dataset", "no-such-dataset"],
    ["no-such-command"],
    [],
]


@pytest.mark.parametrize("argv", CLI_USAGE, ids=[" ".join(a) or "nothing" for a in CLI_USAGE])
def test_cli_usage_errors_exit_2(argv, capsys, monkeypatch):
    monkeypatch.setattr(cr, "crosscheck", _never_called)
    monkeypatch.setattr(cr, "solve_max_margin", _never_called)
    monkeypatch.setattr(cr, "solve_regularized", _never_called)
    code, err = _cli(argv, capsys)
    assert code == 2 and "error" in err


def test_cli_documents_every_exit_status():
    text = " ".join(cli.build_parser().format_help().split())
    for status in ("0 pass", "1 a failed check", "2 bad input or usage", "3 an I/O failure", "130 interrupted"):
        assert status in text
    assert (cli.EXIT_PASSED, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_IO, cli.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)


def test_cli_solve_of_good_data_exits_0(files, capsys):
    assert cli.main(["--no-cache", "solve", "--data", files["good"], "--quiet"]) == 0
    assert "status    : optimal" in capsys.readouterr().out


# ------------------------------------------------------- patterns, certificates: other arguments


PATTERN_CASES = [
    (lambda X, y, D: cr.solve_max_margin(X, y, D[:, :-1]), ValueError, r"patterns must have shape \(p, 8\)"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D[:0]), ValueError, "patterns is empty"),
    (lambda X, y, D: cr.solve_max_margin(X, y, 2 * D.astype(jnp.int32)), ValueError, "boolean or 0/1"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D.astype(jnp.complex64)), TypeError, "patterns must be boolean"),
    (lambda X, y, D: cr.dual_certificate(X, y, patterns=D[:, :3]), ValueError, "patterns must have shape"),
    (lambda X, y, D: cr.dual_certificate(X, y[:3]), ValueError, r"lam must have shape \(8,\)"),
    (lambda X, y, D: cr.dual_certificate(X, jnp.asarray(y).at[0].set(jnp.inf)), ValueError, "lam has 1 NaN or infinite"),
    (lambda X, y, D: cr.dual_certificate(X, np.asarray(y).astype(np.complex64)), TypeError, "lam is complex"),
    (lambda X, y, D: cr.merge_patterns(D, D[:, :3]), ValueError, "different numbers of samples"),
    (lambda X, y, D: cr.sample_patterns(X, num=0, key=KEY), ValueError, "num must be a positive int"),
    (lambda X, y, D: cr.solve_regularized(X, jnp.asarray(y).at[0].set(jnp.nan), D, beta=0.1), ValueError, "y has 1 NaN"),
    (lambda X, y, D: cr.solve_regularized(X, y, D, beta=0.1, loss="hinge"), ValueError, "loss must be"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D, tol=1.5), ValueError, "tol must be"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D, tol=-1e-6), ValueError, "tol must be"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D, max_iters=0), ValueError, "max_iters must be"),
    (lambda X, y, D: cr.solve_max_margin(X, y, D, method="newton"), ValueError, "method must be"),
    (lambda X, y, D: cr.solve_regularized(X, y, D, beta=jnp.ones(2)), ValueError, "beta must be a scalar"),
    (lambda X, y, D: cr.regularized_certificate(cr.init_network(2, 3, key=KEY), X, y, beta=0.1, loss="hinge"),
     ValueError, "loss must be"),
    (lambda X, y, D: cr.kkt_certificate(cr.init_network(2, 3, key=KEY), X, y, tie_tol=-1.0), ValueError, "tie_tol must be"),
    (lambda X, y, D: cr.logistic_loss(cr.init_network(2, 3, key=KEY), X, y, reduction="max"), ValueError, "reduction"),
    (lambda X, y, D: cr.smoothed_margin(cr.init_network(2, 3, key=KEY), X, y, loss="squared"), ValueError,
     "smoothed margin is defined"),
    (lambda X, y, D: cr.train(cr.init_network(2, 3, key=KEY), X, y, steps=2, schedule="adam"), ValueError, "schedule"),
    (lambda X, y, D: cr.train(cr.init_network(2, 3, key=KEY), X, y, steps=2, loss="squared"), ValueError, "loss must be"),
    (lambda X, y, D: cr.train(cr.init_network(2, 3, key=KEY, dtype=jnp.float32), X, y, steps=2), TypeError, "dtype"),
]


@pytest.mark.parametrize("call, exc, match", PATTERN_CASES, ids=[c[2][:40] for c in PATTERN_CASES])
def test_other_bad_arguments_are_refused_by_name(prob, call, exc, match):
    with pytest.raises(exc, match=match):
        call(*prob)


# ----------------------------------------------------------------------- statuses and values


def test_an_ordinary_problem_is_optimal_with_a_certified_value(prob, mm_sol):
    X, y, D = prob
    assert cr.status_name(mm_sol.status) == "optimal"
    cert = cr.dual_certificate(X, y * mm_sol.dual, patterns=D)
    assert float(cert.value) <= 1 + 1e-5  # the multipliers are dual feasible: P* certified
    assert float(jnp.sum(mm_sol.dual)) == pytest.approx(float(mm_sol.value), rel=1e-5)


def test_opposite_labels_on_one_point_are_infeasible(prob):
    X, y, D = prob
    X2 = jnp.asarray(X).at[1].set(X[0])
    y2 = jnp.asarray(y).at[1].set(-y[0])
    sol = cr.solve_max_margin(X2, y2, D, throw=False)
    assert cr.status_name(sol.status) == "infeasible" and float(sol.value) == math.inf
    with pytest.raises(ValueError, match="infeasible"):
        cr.solve_max_margin(X2, y2, D)
    with pytest.raises(ValueError, match="status 'infeasible'"):
        cr.to_network(sol)


def test_float32_data_are_not_promoted_silently(prob, net):
    X, y, _ = prob
    X32, y32 = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    net32 = jax.tree.map(lambda a: a.astype(jnp.float32), net)
    assert cr.forward(net32, X32).dtype == jnp.float32
    assert cr.normalized_margin(net32, X32, y32).dtype == jnp.float32


def test_a_loose_tolerance_does_not_make_a_feasible_problem_infeasible(prob, mm_sol):
    X, y, D = prob
    sol = cr.solve_max_margin(X, y, D, tol=0.3, throw=False)
    assert cr.status_name(sol.status) == "optimal"
    assert float(sol.value) == pytest.approx(float(mm_sol.value), rel=0.3)


@pytest.mark.parametrize("c", [1e-300, 1e300])
def test_patterns_are_scale_invariant(prob, c):
    X, _, D = prob
    assert cr.enumerate_patterns(jnp.asarray(X) * c).shape == D.shape


# Scaled data: the programs' scaling law (DESIGN.md; s > 0 keeps every pattern and cone):
# P*(sX) = P*(X)/s, and the regularized value is unchanged at (sX, sβ). s = 2^k: exact in floating point.
SCALED = [  # the first three were silent-wrong before the normalized certificate (issue 18 item 2):
    ("max-margin", 17),  # P*(sX) = 2e-5 < 1, gap and violation divided by max(1, ·): s·value 2.70449 vs 2.70351
    ("max-margin", 664),  # 1e200: the feasible program was reported infeasible (Farkas residual 0)
    ("regularized-squared", -664),  # the zero solution was reported optimal (value 4.0 against 2.5642)
    ("max-margin", -332),
    ("regularized-squared", 332),
]


@pytest.mark.parametrize("program, log2_scale", SCALED)
def test_scaled_data_keep_the_status_and_the_scaling_law(prob, mm_sol, program, log2_scale):
    X, y, D = prob
    s = 2.0**log2_scale
    if program == "max-margin":
        sol = cr.solve_max_margin(X * s, y, D, throw=False)
        expected, value = float(mm_sol.value), float(sol.value) * s
    else:
        beta = 0.3 * float(cr.beta_max(X, y, D, loss="squared"))
        expected = float(cr.solve_regularized(X, y, D, beta=beta, loss="squared").value)
        sol = cr.solve_regularized(X * s, y, D, beta=beta * s, loss="squared", throw=False)
        value = float(sol.value)
    assert cr.status_name(sol.status) == "optimal"
    assert value == pytest.approx(expected, rel=1e-5)
