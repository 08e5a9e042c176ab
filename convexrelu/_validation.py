"""Input checks shared by every entry point (STYLE.md §8: errors by what is known when).

The one place where convexrelu decides what an argument may be. The policy:

* **Dtypes** (known at trace time, always checked, ``TypeError``): arrays of data, labels,
  targets, multipliers and weights are float32 or float64. Integer arrays (and Python lists of
  ints) are cast to JAX's default float dtype (float64 when x64 is on, else float32). float16,
  bfloat16 and other narrow floats are refused (their range and precision cannot carry the
  solvers' gaps or the log-space margins); complex, boolean (for data), string and object arrays
  are refused.
* **Shapes** (known at trace time, ``ValueError`` naming the shapes).
* **Values** (NaN or infinite entries, labels not ±1, a zero network where ``‖θ‖²`` divides):
  with concrete arrays, ``ValueError`` at once; with traced ones (inside ``jit``/``vmap``)
  through ``eqx.error_if``, whose message names the cause (``EquinoxRuntimeError`` under ``eqx.filter_jit``; under a
  plain ``jax.jit`` JAX wraps the same message in its runtime error). A network's weights are
  checked for NaN only when concrete: a vmapped batch of runs may hold a diverged one, which
  ``TrainResult.diverged`` flags.
* **Scalar options** (``lr``, ``scale``, ``beta``, tolerances): Python, NumPy and JAX scalars
  are checked alike (:func:`check_scalar`); a traced scalar, where one is allowed, is checked
  with ``eqx.error_if``. Sizes (``steps``, ``num``) are Python or NumPy ints (:func:`check_int`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


SOFTMAX_INTERCEPT = (
    "intercept=True is available for the squared and logistic losses; for the softmax loss append a constant "
    "feature to X instead"
)
"""The refusal of an intercept with the softmax loss (every program and entry point)."""


def check_beta(beta):
    """The regularization ``β``: a finite positive scalar. Concrete: ``ValueError`` otherwise; traced
    (``vmap`` over a grid of β, ``jit``): returned checked by ``eqx.error_if``, so a negative β
    under ``jit`` is an error, not an "optimal" zero network of an unbounded program."""
    b = jnp.asarray(beta)
    if b.ndim != 0:
        raise ValueError(f"beta must be a scalar (vmap over a batch of β), got shape {b.shape}")
    if is_concrete(b):
        if not (np.isfinite(float(b)) and float(b) > 0):
            raise ValueError(f"beta must be a finite positive number, got {float(b)!r}")
        return beta
    return eqx.error_if(b, ~(jnp.isfinite(b) & (b > 0)), "beta must be a finite positive number")


def is_concrete(*arrays) -> bool:
    """True when none of ``arrays`` is a JAX tracer (so their values can be inspected)."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


def raise_if(x, bad, message: str, *, error=ValueError):
    """Refuse ``x`` when ``bad``: raise ``error(message)`` when ``bad`` is concrete, else return
    ``eqx.error_if(x, bad, message)`` (the check runs with the compiled program)."""
    if is_concrete(bad):
        if bool(np.any(np.asarray(bad))):
            raise error(message)
        return x
    return eqx.error_if(x, bad, message)


def default_float():
    """JAX's default float dtype: float64 when x64 is on, else float32."""
    return jnp.zeros(()).dtype


def check_dtype(dtype, *, name: str = "dtype"):
    """A ``dtype=`` argument: ``None`` (the default float) or float32/float64, as a NumPy dtype."""
    if dtype is None:
        return default_float()
    try:
        dt = jnp.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def _float_array(a, name: str, *, allow_bool: bool = False):
    """``a`` as a JAX array of float32/float64 (integers cast to the default float; see the
    module's policy). Tracers keep their dtype rules without being converted."""
    if not hasattr(a, "dtype"):
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array, got {type(a).__name__}") from err
    dt = np.dtype(a.dtype)
    if jnp.issubdtype(dt, jnp.complexfloating):
        raise TypeError(f"{name} is complex ({dt}); convexrelu needs real data: pass its real part explicitly")
    if dt == np.bool_ and not allow_bool:
        raise TypeError(f"{name} has dtype bool; pass a float array (activation patterns go in D)")
    if jnp.issubdtype(dt, jnp.floating):
        if dt not in FLOAT_DTYPES:
            raise TypeError(
                f"{name} has dtype {dt}, which convexrelu does not support (its solvers and log-space "
                f"margins need float32 or float64): cast it, e.g. {name}.astype(jnp.float32)"
            )
        return jnp.asarray(a)
    if jnp.issubdtype(dt, jnp.integer) or dt == np.bool_:
        return jnp.asarray(a).astype(default_float())
    raise TypeError(f"{name} must be a numeric (float32 or float64) array, got dtype {dt}")


def _finite(a, name: str):
    """Refuse NaN or infinite entries (concrete: ``ValueError`` with their count; traced: ``eqx.error_if``)."""
    if is_concrete(a):
        # NumPy, not jnp: inside a jit trace jnp turns even a concrete (closed-over) array into a tracer
        bad = int(np.sum(~np.isfinite(np.asarray(a))))
        if bad:
            raise ValueError(f"{name} has {bad} NaN or infinite entries")
        return a
    return eqx.error_if(a, ~jnp.all(jnp.isfinite(a)), f"{name} has NaN or infinite entries")


def check_X(X, *, name: str = "X"):
    """``X`` must be a 2-D real array with at least one sample and feature and finite entries.

    Returns it as a float32/float64 JAX array (integers cast to the default float).
    """
    X = _float_array(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape {X.shape}")
    return _finite(X, name)


def _labels_message(name: str, vals=None) -> str:
    found = "" if vals is None else f", found values {vals}"
    return f"labels {name} must be ±1 (-1 or +1; map {{0, 1}} labels with 2 * y - 1){found}"


def check_y(y, n: int, *, name: str = "y", dtype=None):
    """``y`` must be ``(n,)`` with values in {-1, +1}. Returns it as a JAX array of ``dtype``.

    Traced labels are checked by ``eqx.error_if`` (the message names the cause).
    """
    y = _float_array(y, name, allow_bool=True)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match X's {n} samples, got {y.shape}")
    if is_concrete(y):
        vals = np.asarray(y)
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{name} has NaN or infinite entries")
        if not np.all((vals == 1) | (vals == -1)):
            bad = np.unique(vals[(vals != 1) & (vals != -1)])[:5]
            raise ValueError(_labels_message(name, bad.tolist()))
    else:
        y = eqx.error_if(y, ~jnp.all((y == 1) | (y == -1)), _labels_message(name))
    return y if dtype is None else y.astype(dtype)


def check_Xy(X, y):
    """Check a labelled dataset and return ``(X, y)`` with ``y`` cast to ``X``'s dtype."""
    X = check_X(X)
    y = check_y(y, X.shape[0], dtype=X.dtype)
    return X, y


def check_targets(y, n: int, *, name: str = "y", dtype=None):
    """Real-valued vectors ``(n,)`` (regression targets, multipliers ``λ``): finite, any value."""
    y = _float_array(y, name)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match X's {n} samples, got {y.shape}")
    y = _finite(y, name)
    return y if dtype is None else y.astype(dtype)


def check_outputs(Y, n: int, loss: str, *, name: str = "y", dtype=None):
    """Targets of ``c`` outputs, ``(n, c)``, returned as ``(c, n)`` (the outputs on the leading
    axis): real and finite (squared loss), or one-hot rows with ``c ≥ 2`` (softmax)."""
    Y = _float_array(Y, name)
    if Y.ndim != 2 or Y.shape[0] != n or Y.shape[1] < 1:
        raise ValueError(f"{name} must have shape ({n}, c), one column per output, to match X's {n} samples, got {Y.shape}")
    Y = _finite(Y, name)
    if loss == "softmax":
        if Y.shape[1] < 2:
            raise ValueError(f"the softmax loss needs c ≥ 2 classes (one-hot columns), got {Y.shape[1]}")
        message = f"{name} must be one-hot for the softmax loss: 0/1 entries, a single 1 per row"
        if is_concrete(Y):
            A = np.asarray(Y)
            if not (np.all((A == 0) | (A == 1)) and np.all(A.sum(axis=1) == 1)):
                raise ValueError(message)
        else:
            Y = eqx.error_if(Y, ~(jnp.all((Y == 0) | (Y == 1)) & jnp.all(jnp.sum(Y, axis=1) == 1)), message)
    elif loss != "squared":
        raise ValueError(f"targets of shape (n, c) need the squared or softmax loss, got loss={loss!r}")
    Y = Y.T
    return Y if dtype is None else Y.astype(dtype)


def check_loss_targets(y, n: int, loss: str, *, name: str = "y", dtype=None):
    """The targets of one regularized program by its loss: one-hot ``(n, c)`` returned as ``(c, n)``
    (softmax, :func:`check_outputs`), real ``(n,)`` (squared, :func:`check_targets`) or labels ±1
    (logistic, :func:`check_y`)."""
    if loss == "softmax":
        return check_outputs(y, n, loss, name=name, dtype=dtype)
    return (check_targets if loss == "squared" else check_y)(y, n, name=name, dtype=dtype)


def check_patterns(D, n: int, *, name: str = "patterns"):
    """Activation patterns: a boolean (or 0/1 valued real) ``(p, n)`` array."""
    D = jnp.asarray(D)
    if jnp.issubdtype(D.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be boolean, got dtype {D.dtype}")
    if D.ndim != 2 or D.shape[1] != n:
        raise ValueError(f"{name} must have shape (p, {n}) to match X's {n} samples, got {D.shape}")
    if D.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one activation pattern is needed")
    if D.dtype != jnp.bool_:
        if is_concrete(D) and not np.all((np.asarray(D) == 0) | (np.asarray(D) == 1)):
            raise ValueError(f"{name} must be boolean or 0/1 valued")
        D = D.astype(bool)
    return D


def check_network(net, d: int, *, nonzero: str | None = None):
    """The network's shapes, dtypes (float32/float64) and input dimension ``d``, and finite
    weights (when concrete). With ``nonzero`` (the name of a quantity divided by ``‖θ‖²``), a zero network is
    refused: that quantity is undefined there.

    Returns the network with its weights as checked JAX arrays (integers cast to the default
    float; wrapped by ``eqx.error_if`` when traced).
    """
    W1, w2 = getattr(net, "W1", None), getattr(net, "w2", None)
    if W1 is None or w2 is None:
        raise TypeError(f"expected a Network (W1, w2), got {type(net).__name__}")
    W1, w2 = _float_array(W1, "network W1"), _float_array(w2, "network w2")
    if W1.ndim != 2 or w2.ndim != 1 or W1.shape[1] != w2.shape[0]:
        raise ValueError(f"network must have W1 (d, m) and w2 (m,), got W1 {W1.shape}, w2 {w2.shape}")
    if W1.shape[0] != d:
        raise ValueError(f"network expects d = {W1.shape[0]} features but X has d = {d}")
    if is_concrete(W1, w2):
        W1n, w2n = np.asarray(W1), np.asarray(w2)
        if not (np.all(np.isfinite(W1n)) and np.all(np.isfinite(w2n))):
            raise ValueError("network has NaN or infinite weights (a diverged run?)")
        zero = not (np.any(W1n) or np.any(w2n))
    else:
        # traced weights: not checked for NaN (a vmapped batch may hold a diverged run, which
        # TrainResult.diverged flags); a zero network still is, when asked (below)
        zero = ~(jnp.any(W1 != 0) | jnp.any(w2 != 0))
    if nonzero is not None:
        W1 = raise_if(W1, zero, f"the network is zero (‖θ‖ = 0): {nonzero} is undefined")
    return eqx.tree_at(lambda t: (t.W1, t.w2), net, (W1, w2))


def _scalar_description(lo, hi, lo_closed, hi_closed, finite) -> str:
    if lo is not None and hi is not None:
        text = f"in {'[' if lo_closed else '('}{lo:g}, {hi:g}{']' if hi_closed else ')'}"
    elif lo is not None:
        text = ("≥ " if lo_closed else "> ") + f"{lo:g}"
    elif hi is not None:
        text = ("≤ " if hi_closed else "< ") + f"{hi:g}"
    else:
        text = ""
    kind = "a finite number" if finite else "a number"
    return f"{kind} {text}".strip()


def _out_of_range(v, lo, hi, lo_closed, hi_closed, finite):
    """``True`` (NumPy or JAX bool) when ``v`` is NaN, infinite (with ``finite``) or out of range."""
    xp = np if isinstance(v, (float, np.floating)) else jnp
    bad = xp.isnan(v)
    if finite:
        bad = bad | ~xp.isfinite(v)
    if lo is not None:
        bad = bad | ((v < lo) if lo_closed else (v <= lo))
    if hi is not None:
        bad = bad | ((v > hi) if hi_closed else (v >= hi))
    return bad


def check_scalar(
    name: str,
    value,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_closed: bool = False,
    hi_closed: bool = False,
    finite: bool = True,
    traced: bool = False,
):
    """A real scalar option in any form (Python, NumPy or JAX scalar, 0-d array) in a range.

    ``lo``/``hi`` bound it (open unless ``lo_closed``/``hi_closed``); ``finite`` refuses ``±inf``;
    NaN is always refused. Returns a Python float; a traced value (allowed only with ``traced``)
    is returned as a JAX scalar checked by ``eqx.error_if``.

    Raises:
        TypeError: a bool, complex, string or other non-number; a traced value without ``traced``.
        ValueError: not a scalar (shape), NaN, infinite or out of range.
    """
    want = _scalar_description(lo, hi, lo_closed, hi_closed, finite)
    if isinstance(value, (bool, np.bool_)) or (hasattr(value, "dtype") and np.dtype(value.dtype) == np.bool_):
        raise TypeError(f"{name} must be {want}, got the bool {value!r}")
    if isinstance(value, jax.core.Tracer):
        if not traced:
            raise TypeError(f"{name} must be a concrete number (it sets the computation), not a traced value")
        if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.floating) and not jnp.issubdtype(value.dtype, jnp.integer):
            raise TypeError(f"{name} must be a real scalar, got {value.dtype}{list(value.shape)}")
        return eqx.error_if(value, _out_of_range(value, lo, hi, lo_closed, hi_closed, finite), f"{name} must be {want}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
    elif isinstance(value, (np.ndarray, jax.Array)):
        if value.shape != ():
            raise ValueError(f"{name} must be a scalar, got an array of shape {value.shape}")
        if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
            raise TypeError(f"{name} must be {want}, got dtype {value.dtype}")
        v = float(np.asarray(value))
    else:
        raise TypeError(f"{name} must be {want}, got {type(value).__name__} {value!r}")
    if _out_of_range(v, lo, hi, lo_closed, hi_closed, finite):
        raise ValueError(f"{name} must be {want}, got {value!r}")
    return v


def check_int(name: str, value, *, minimum: int = 1) -> int:
    """A size option: a Python or NumPy int (or a concrete integer JAX scalar) ``≥ minimum``.

    Raises:
        TypeError: a bool, float, string or traced value.
        ValueError: below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int ≥ {minimum}, got the bool {value!r}")
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer):
        if value.shape == () and jnp.issubdtype(value.dtype, jnp.integer):
            value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int ≥ {minimum} (a size, not traced), got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value!r}")
    return int(value)


def check_key(key, *, name: str = "key"):
    """A JAX PRNG key (``jax.random.key`` or a legacy ``PRNGKey`` uint32 pair)."""
    if key is None:
        raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got None")
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        raise TypeError(f"{name} must be a JAX PRNG key, got the int {key!r}: use jax.random.key({key!r})")
    dt = getattr(key, "dtype", None)
    if dt is None:
        raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}")
    if jnp.issubdtype(dt, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"{name} must be one key, got a batch of shape {key.shape} (vmap over it instead)")
        return key
    if np.dtype(dt) == np.uint32 and key.shape == (2,):
        return key
    raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(seed)), got dtype {dt} shape {key.shape}")
