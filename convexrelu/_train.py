"""Jitted (sub)gradient descent on the two-layer ReLU network, one ``lax.scan`` per call.

Two schedules:

* ``"constant"``: ``θ ← θ - η ∇𝓛(θ)`` with a fixed step ``η = lr`` (or any optax optimizer fed
  ``∇𝓛``).
* ``"loss-based"`` (Lyu & Li, "Gradient Descent Maximizes the Margin of Homogeneous Neural
  Networks", arXiv 1906.05890): ``η = α / 𝓛(θ)``, i.e. ``θ ← θ - α ∇ log 𝓛(θ)``. After a
  step that lowers the loss ``α ← 2^{1/5} α``; a step that does not is undone and
  ``α ← α / 2^{1/10}``. The update and the comparison are both written in log space
  (``∇ log 𝓛 = ∇𝓛 / 𝓛`` from ``log 𝓛``), so training continues far below ``𝓛 = 1e-300``.
  ``α`` is capped at ``max_alpha`` (see :func:`train`): uncapped, it grows until steps jump.

:func:`train` trains one network and works under ``jax.vmap`` over the network (batched
initializations). :func:`train_many` trains ``r`` networks at once by fusing them into one wide
network (one ``(n, d) @ (d, r·m)`` matmul per step, per-run losses, step sizes and
accept/reject elementwise over ``r``); it is mathematically identical to ``jax.vmap(train)`` and trains the
runs in cache-sized groups (throughputs: ``benchmarks/bench_train.py``). Both are resumable: ``train(res.net, X, y, steps=k,
state=res.state)`` continues exactly where ``res`` stopped.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ._losses import log_loss_value, smoothed_margin_of_log_loss
from ._network import Network
from ._validation import is_concrete, check_int, check_network, check_scalar, check_Xy

Schedule = Literal["constant", "loss-based"]
SCHEDULES = ("constant", "loss-based")
TRAIN_LOSSES = ("logistic", "exponential")
_GROW = 2.0 ** (1.0 / 5.0)  # α multiplier after an accepted step (Lyu & Li's loss-based schedule)
_SHRINK = 2.0 ** (1.0 / 10.0)  # α divisor after a rejected (undone) step


class TrainState(eqx.Module):
    """Schedule and optimizer state, to resume training exactly where a call stopped.

    Attributes:
        step: number of steps taken so far (including rejected loss-based steps), shape ``()``.
        alpha: the loss-based scale ``α`` (``η = α / 𝓛``); for ``"constant"`` the step ``lr``.
        opt_state: the optax optimizer's state, or ``None`` for plain gradient descent.
    """

    step: Int[Array, ""]
    alpha: Float[Array, ""]
    opt_state: Any


class TrainHistory(eqx.Module):
    """Quantities recorded every ``record_every`` steps (after the step), shape ``(k,)`` each.

    Attributes:
        step: global step count at the record.
        log_loss: ``log 𝓛(θ)`` (log space, finite when ``𝓛`` underflows).
        normalized_margin: ``γ(θ) = min_i y_i f(θ; x_i) / ‖θ‖²``.
        smoothed_margin: ``γ̃(θ) = ℓ^{-1}(𝓛(θ)) / ‖θ‖²``.
        norm_sq: ``‖θ‖²``.
        log_step_size: ``log η`` of the next step ``θ ← θ - η ∇𝓛``: ``log lr`` (constant) or
            ``log α - log 𝓛`` (loss-based). With an optax optimizer, ``log`` of the factor
            multiplying the optimizer's update (``0`` constant, ``log α`` loss-based).
        rejected: number of loss-based steps undone since the previous record.
    """

    step: Int[Array, " k"]
    log_loss: Float[Array, " k"]
    normalized_margin: Float[Array, " k"]
    smoothed_margin: Float[Array, " k"]
    norm_sq: Float[Array, " k"]
    log_step_size: Float[Array, " k"]
    rejected: Int[Array, " k"]


class TrainResult(eqx.Module):
    """Result of :func:`train`: the trained network, its history and the state to resume.

    Attributes:
        net: the network after the last step.
        history: a :class:`TrainHistory`.
        state: a :class:`TrainState`; pass it back as ``train(res.net, X, y, state=res.state,
            ...)`` to continue (chunked calls equal one long call when each chunk's ``steps``
            is a multiple of ``record_every``).
        diverged: ``True`` when a parameter or the loss became NaN or infinite.
        stalled: ``True`` when the loss did not move over the call: ``log 𝓛`` at the end equals
            its value at the start. With the loss-based schedule every step was rejected (e.g. in
            float32 from a tiny initialization, where one step changes ``𝓛`` by less than its
            rounding); with a constant step, the step is below the loss's resolution. Raise
            ``lr``/``scale`` or train in float64.
    """

    net: Network
    history: TrainHistory
    state: TrainState
    diverged: Bool[Array, ""]
    stalled: Bool[Array, ""]


# --------------------------------------------------------------------------------------------
# The fused core: r networks of m neurons stored as one network of R = r·m neurons.
# --------------------------------------------------------------------------------------------


def _outputs(W, a, X, *, r, m):
    """Activation mask ``1[X W > 0]`` (n, R) (bool) and per-run outputs ``F`` (n, r)."""
    Z = X @ W
    F = jnp.sum((jax.nn.relu(Z) * a).reshape(Z.shape[0], m, r), axis=1)
    return Z > 0, F


def _log_losses(F, y, loss):
    """Per-run ``log 𝓛`` (r,) of the outputs ``F`` (n, r), computed in log space."""
    return jax.vmap(log_loss_value, in_axes=(1, None, None))(F, y, loss)


def _dloss_df(F, y, log_L, loss, *, log_space):
    """``∂𝓛/∂f`` (or ``∂ log 𝓛/∂f = (∂𝓛/∂f)/𝓛`` when ``log_space``), shape (n, r).

    logistic ``∂ℓ/∂f = -y σ(-y f) = -y exp(-softplus(y f))``; exponential ``-y exp(-y f)``.
    Dividing by ``𝓛`` is subtracting ``log 𝓛`` inside the exponential, so nothing overflows.
    """
    q = y[:, None] * F
    log_mag = -jax.nn.softplus(q) if loss == "logistic" else -q
    if log_space:
        log_mag = log_mag - log_L[None, :]
    return -y[:, None] * jnp.exp(log_mag)


def _grads(W, a, mask, gF, X, *, r, m):
    """Handwritten ``∂/∂W, ∂/∂a`` of ``Σ_i g_i f_i`` for every run (relu'(0) = 0, as autodiff).

    With ``M = Xᵀ (1[XW > 0] ⊙ g)`` (d, R): ``∂/∂W[:, j] = a_j M[:, j]`` and
    ``∂/∂a_j = Σ_i g_i relu(x_iᵀ w_j) = w_jᵀ M[:, j]``; one product serves both.
    """
    n = mask.shape[0]
    P = jnp.where(mask.reshape(n, m, r), gF[:, None, :], jnp.zeros((), gF.dtype)).reshape(n, m * r)
    M = X.T @ P
    return M * a, jnp.sum(W * M, axis=0)


def _per_neuron(v, m):
    """Per-run values (r,) -> per-neuron values (m·r,) of the fused network (a broadcast)."""
    return jnp.broadcast_to(v[None, :], (m, v.shape[0])).reshape(-1)


def _to_runs(W, a, *, r, m):
    """Fused group ``(d, m·r), (m·r,)`` (run index minor) -> batched ``(r, d, m), (r, m)``."""
    d = W.shape[0]
    return Network(jnp.transpose(W.reshape(d, m, r), (2, 0, 1)), a.reshape(m, r).T)


def _from_runs(net, *, r, m):
    """Batched ``(r, d, m), (r, m)`` -> fused group ``(d, m·r), (m·r,)``: neuron ``i`` of run ``k``
    is column ``i·r + k``, so per-run reductions over ``m`` run along a major axis (vectorized)."""
    d = net.W1.shape[1]
    return jnp.transpose(net.W1, (1, 2, 0)).reshape(d, m * r), net.w2.T.reshape(m * r)


def _norm_sq(W, a, *, r, m):
    d = W.shape[0]
    return jnp.sum((W * W).reshape(d, m, r), axis=(0, 1)) + jnp.sum((a * a).reshape(m, r), axis=0)


class _GroupSetup(NamedTuple):
    """What every step of one fused group reads: the data, the ``α`` cap and the configuration.

    ``r`` runs of ``m`` neurons each; ``loss_based`` selects Lyu & Li's schedule; ``optimizer``
    is an optax optimizer or ``None`` for plain gradient descent (Python values, static).
    """

    X: Array
    y: Array
    alpha_max: Array
    r: int
    m: int
    loss: str
    loss_based: bool
    optimizer: Any


class _GroupCarry(NamedTuple):
    """The loop state of a fused group of ``r`` runs (``R = r·m`` neurons).

    Attributes:
        W, a: fused parameters ``(d, R)``, ``(R,)``.
        mask: ``1[X W > 0]`` ``(n, R)`` of the current parameters.
        F: per-run outputs ``(n, r)``.
        log_L: per-run ``log 𝓛`` ``(r,)`` (kept current by the loss-based schedule only; the
            constant schedule computes it at the records, see :func:`_current_log_losses`).
        alpha: per-run ``α`` (loss-based) or ``lr`` (constant) ``(r,)``.
        opt_state: the optax state of the ``r`` runs, or ``None``.
        step: global step count ``()``.
        rejected: loss-based steps undone per run since the last record ``(r,)``.
    """

    W: Array
    a: Array
    mask: Array
    F: Array
    log_L: Array
    alpha: Array
    opt_state: Any
    step: Array
    rejected: Array


class _GroupResult(NamedTuple):
    """The end of a fused group's training: final parameters and state, history ``(k, r)``."""

    W: Array
    a: Array
    alpha: Array
    step: Array
    opt_state: Any
    history: TrainHistory
    diverged: Array
    stalled: Array


def _initial_carry(setup: _GroupSetup, W, a, alpha, step0, opt_state) -> _GroupCarry:
    mask, F = _outputs(W, a, setup.X, r=setup.r, m=setup.m)
    return _GroupCarry(
        W=W,
        a=a,
        mask=mask,
        F=F,
        log_L=_log_losses(F, setup.y, setup.loss),
        alpha=alpha,
        opt_state=opt_state,
        step=step0,
        rejected=jnp.zeros((setup.r,), jnp.asarray(0).dtype),
    )


def _proposed_parameters(setup: _GroupSetup, carry: _GroupCarry, gW, ga):
    """The step from the gradients ``(gW, ga)``: ``θ - α g`` or ``θ + α·update`` with an optimizer.

    ``α`` is the per-run ``α`` (loss-based) or ``lr`` (constant); an optax update is scaled by
    ``α`` only on the loss-based schedule. Returns ``(W_new, a_new, opt_state_new)``.
    """
    r, m = setup.r, setup.m
    if setup.optimizer is None:
        col = _per_neuron(carry.alpha, m)  # α (loss-based) or lr
        return carry.W - col * gW, carry.a - col * ga, carry.opt_state
    grads = _to_runs(gW, ga, r=r, m=m)
    params = _to_runs(carry.W, carry.a, r=r, m=m)
    upd, new_opt = jax.vmap(setup.optimizer.update)(grads, carry.opt_state, params)
    uW, ua = _from_runs(upd, r=r, m=m)
    if setup.loss_based:
        col = _per_neuron(carry.alpha, m)
        uW, ua = col * uW, col * ua
    return carry.W + uW, carry.a + ua, new_opt


def _accept_or_undo(setup: _GroupSetup, old: _GroupCarry, new: _GroupCarry) -> _GroupCarry:
    """Loss-based schedule: keep each run's step iff its loss went down, else undo it.

    Compared in log space; a step that overflows ``θ``, ``‖θ‖²`` or ``f`` is refused like any
    other bad step. ``α ← min(2^{1/5} α, α_max)`` after an accepted step, ``α ← 2^{-1/10} α``
    after an undone one, which also counts in ``rejected``.
    """
    r, m = setup.r, setup.m
    nsq_new = _norm_sq(new.W, new.a, r=r, m=m)
    ok = (new.log_L < old.log_L) & jnp.isfinite(nsq_new) & jnp.isfinite(new.log_L)
    okc = _per_neuron(ok, m)
    opt_state = new.opt_state
    if setup.optimizer is not None:
        opt_state = jax.tree.map(
            lambda n, o: jnp.where(ok.reshape((r,) + (1,) * (jnp.ndim(n) - 1)), n, o), new.opt_state, old.opt_state
        )
    return _GroupCarry(
        W=jnp.where(okc, new.W, old.W),
        a=jnp.where(okc, new.a, old.a),
        mask=jnp.where(okc, new.mask, old.mask),
        F=jnp.where(ok, new.F, old.F),
        log_L=jnp.where(ok, new.log_L, old.log_L),
        alpha=jnp.where(ok, jnp.minimum(old.alpha * _GROW, setup.alpha_max), old.alpha / _SHRINK),
        opt_state=opt_state,
        step=new.step,
        rejected=old.rejected + (~ok).astype(old.rejected.dtype),
    )


def _train_step(setup: _GroupSetup, carry: _GroupCarry, _) -> tuple[_GroupCarry, None]:
    """One (sub)gradient step of every run of the group (a ``lax.scan`` body)."""
    gF = _dloss_df(carry.F, setup.y, carry.log_L, setup.loss, log_space=setup.loss_based)
    gW, ga = _grads(carry.W, carry.a, carry.mask, gF, setup.X, r=setup.r, m=setup.m)
    W_new, a_new, opt_new = _proposed_parameters(setup, carry, gW, ga)
    mask_new, F_new = _outputs(W_new, a_new, setup.X, r=setup.r, m=setup.m)
    # constant steps never read log 𝓛: it is computed only at the records (_current_log_losses)
    log_L_new = _log_losses(F_new, setup.y, setup.loss) if setup.loss_based else carry.log_L
    new = carry._replace(
        W=W_new, a=a_new, mask=mask_new, F=F_new, log_L=log_L_new, opt_state=opt_new, step=carry.step + 1
    )
    if setup.loss_based:
        new = _accept_or_undo(setup, carry, new)
    return new, None


def _run_steps(setup: _GroupSetup, carry: _GroupCarry, length: int) -> _GroupCarry:
    return jax.lax.scan(functools.partial(_train_step, setup), carry, None, length=length)[0]


def _current_log_losses(setup: _GroupSetup, carry: _GroupCarry) -> Array:
    """Per-run ``log 𝓛`` of the current parameters (the carry's own, when it is kept current)."""
    return carry.log_L if setup.loss_based else _log_losses(carry.F, setup.y, setup.loss)


def _record(setup: _GroupSetup, carry: _GroupCarry) -> TrainHistory:
    """One history record: ``step ()`` and per-run fields ``(r,)``."""
    log_L = _current_log_losses(setup, carry)
    nsq = _norm_sq(carry.W, carry.a, r=setup.r, m=setup.m)
    alpha = carry.alpha
    if setup.optimizer is None:
        log_eta = jnp.log(alpha) - log_L if setup.loss_based else jnp.log(alpha)
    else:
        log_eta = jnp.log(alpha) if setup.loss_based else jnp.zeros_like(alpha)
    return TrainHistory(
        step=carry.step,
        log_loss=log_L,
        normalized_margin=jnp.min(setup.y[:, None] * carry.F, axis=0) / nsq,
        smoothed_margin=smoothed_margin_of_log_loss(log_L, nsq, setup.loss),
        norm_sq=nsq,
        log_step_size=log_eta,
        rejected=carry.rejected,
    )


def _train_and_record(setup: _GroupSetup, record_every: int, carry: _GroupCarry, _):
    """``record_every`` steps, then a record; the rejection count restarts after it."""
    carry = _run_steps(setup, carry, record_every)
    rec = _record(setup, carry)
    return carry._replace(rejected=jnp.zeros_like(carry.rejected)), rec


def _train_group(setup: _GroupSetup, W, a, alpha, step0, opt_state, *, steps: int, record_every: int) -> _GroupResult:
    """Run ``steps`` steps of the ``r`` fused networks of ``setup``, recording every ``record_every``."""
    carry = _initial_carry(setup, W, a, alpha, step0, opt_state)
    log_L0 = carry.log_L
    num, rem = divmod(steps, record_every)
    carry, hist = jax.lax.scan(functools.partial(_train_and_record, setup, record_every), carry, None, length=num)
    if rem:
        carry = _run_steps(setup, carry, rem)
        last = _record(setup, carry)
        hist = jax.tree.map(lambda h, x: jnp.concatenate([h, x[None]], axis=0), hist, last)
    r, m = setup.r, setup.m
    log_L = _current_log_losses(setup, carry)
    finite = jnp.all(jnp.isfinite(carry.W.reshape(-1, m, r)), axis=(0, 1)) & jnp.all(
        jnp.isfinite(carry.a.reshape(m, r)), axis=0
    )
    return _GroupResult(
        W=carry.W,
        a=carry.a,
        alpha=carry.alpha,
        step=carry.step,
        opt_state=carry.opt_state,
        history=hist,
        diverged=~(finite & jnp.isfinite(log_L)),
        stalled=log_L == log_L0,
    )


_CACHE_ELEMENTS = 8192  # target n·(runs per group)·m: a group's activations stay in L1/L2 cache


def _group_size(r: int, n: int, m: int) -> int:
    """Largest divisor of ``r`` with ``n · group · m ≤ _CACHE_ELEMENTS`` (at least 1)."""
    target = max(1, _CACHE_ELEMENTS // (n * m))
    return max(g for g in range(1, min(r, target) + 1) if r % g == 0)


def _merge_group_histories(hist: TrainHistory, r: int) -> TrainHistory:
    """Histories of ``num`` groups, ``step (num, k)`` and fields ``(num, k, group)``, as ``(k, r)``."""

    def runs_minor(h):
        return jnp.transpose(h, (1, 0, 2)).reshape(h.shape[1], r)

    return TrainHistory(
        step=hist.step[0],
        log_loss=runs_minor(hist.log_loss),
        normalized_margin=runs_minor(hist.normalized_margin),
        smoothed_margin=runs_minor(hist.smoothed_margin),
        norm_sq=runs_minor(hist.norm_sq),
        log_step_size=runs_minor(hist.log_step_size),
        rejected=runs_minor(hist.rejected),
    )


@eqx.filter_jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts traces; tests assert no retracing
def _train_fused(W1, w2, X, y, alpha, alpha_max, step0, opt_state, *, group, steps, record_every, schedule, loss, optimizer):
    """Train ``r`` runs ``W1 (r, d, m)``, ``w2 (r, m)`` in ``r // group`` fused groups of ``group`` runs.

    Each group is one fused network trained for all ``steps`` (``lax.map`` over groups, one
    after another), so its ``(n, group·m)`` activations stay in cache for the whole trajectory;
    one huge fused network would stream them through memory at every step. Returns the
    :class:`TrainResult` of all runs: the batched network, history fields ``(k, r)`` (``step``
    ``(k,)``, shared), ``state.step ()`` (shared), ``state.alpha (r,)`` and ``diverged (r,)``.
    """
    r, d, m = W1.shape
    num = r // group
    setup = _GroupSetup(
        X=X, y=y, alpha_max=alpha_max, r=group, m=m, loss=loss, loss_based=schedule == "loss-based", optimizer=optimizer
    )
    split = lambda t: jax.tree.map(lambda s: s.reshape((num, group) + s.shape[1:]), t)  # noqa: E731
    Wg, ag = jax.vmap(lambda n: _from_runs(n, r=group, m=m))(split(Network(W1, w2)))

    def train_one_group(args):
        Wi, ai, alphai, opti = args
        return _train_group(setup, Wi, ai, alphai, step0, opti, steps=steps, record_every=record_every)

    args = (Wg, ag, alpha.reshape(num, group), split(opt_state))
    if num == 1:
        out = jax.tree.map(lambda v: v[None], train_one_group(jax.tree.map(lambda v: v[0], args)))
    else:
        out = jax.lax.map(train_one_group, args)
    net = jax.vmap(lambda Wi, ai: _to_runs(Wi, ai, r=group, m=m))(out.W, out.a)
    merge = lambda t: jax.tree.map(lambda s: s.reshape((r,) + s.shape[2:]), t)  # noqa: E731
    return TrainResult(
        net=merge(net),
        history=_merge_group_histories(out.history, r),
        state=TrainState(step=out.step[0], alpha=out.alpha.reshape(r), opt_state=merge(out.opt_state)),
        diverged=out.diverged.reshape(r),
        stalled=out.stalled.reshape(r),
    )


# --------------------------------------------------------------------------------------------
# Public entry points.
# --------------------------------------------------------------------------------------------


def _check_options(steps, record_every, schedule, loss, lr, optimizer, max_alpha):
    """``(steps, record_every, lr, max_alpha)`` checked; ``lr`` and ``max_alpha`` in any scalar form
    (Python, NumPy, JAX; a traced one through ``eqx.error_if``)."""
    steps = check_int("steps", steps)
    record_every = min(steps, 100) if record_every is None else check_int("record_every", record_every)
    record_every = min(record_every, steps)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if loss not in TRAIN_LOSSES:
        raise ValueError(f"loss must be one of {TRAIN_LOSSES} for training, got {loss!r}")
    lr = check_scalar("lr", lr, lo=0.0, traced=True)
    max_alpha = check_scalar("max_alpha", max_alpha, lo=0.0, finite=False, traced=True)
    if optimizer is not None and not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    return steps, record_every, lr, max_alpha


def _check_state(state, *, batch, dtype):
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (from a previous result), got {type(state).__name__}")
    want = () if batch is None else (batch,)
    if jnp.shape(state.alpha) != want or jnp.shape(state.step) != want:
        raise ValueError(f"state.alpha and state.step must have shape {want}, got {jnp.shape(state.alpha)}")
    return TrainState(jnp.asarray(state.step), jnp.asarray(state.alpha).astype(dtype), state.opt_state)


def _check_data(net, X, y, *, batched):
    # Concrete X, y are checked eagerly even when train is traced by an outer jit/vmap (without
    # this, the checks' jnp ops on concrete arrays would themselves be traced).
    if is_concrete(X, y):
        with jax.ensure_compile_time_eval():
            X, y = check_Xy(X, y)
    else:  # traced data: the checks' value tests go through eqx.error_if in the traced program
        X, y = check_Xy(X, y)
    if batched:
        if net.W1.ndim != 3 or net.w2.ndim != 2 or net.W1.shape[0] != net.w2.shape[0]:
            raise ValueError(
                f"train_many needs a batched network W1 (r, d, m), w2 (r, m); got W1 {net.W1.shape}, w2 {net.w2.shape}"
            )
        check_network(Network(net.W1[0], net.w2[0]), X.shape[1])
    else:
        check_network(net, X.shape[1])
    if not jnp.issubdtype(net.W1.dtype, jnp.floating) or net.W1.dtype != X.dtype or net.w2.dtype != X.dtype:
        raise TypeError(f"network dtype ({net.W1.dtype}, {net.w2.dtype}) must match X's dtype {X.dtype}")
    return X, y


def train(
    net: Network,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    steps: int,
    schedule: Schedule = "constant",
    lr: float = 1e-3,
    optimizer=None,
    loss: str = "logistic",
    record_every: int | None = None,
    state: TrainState | None = None,
    max_alpha: float = 1e-3,
) -> TrainResult:
    """Train ``f(θ; X) = relu(X W1) w2`` by gradient descent on ``𝓛(θ) = Σ_i ℓ(y_i f(θ; x_i))``.

    The whole loop is one jitted ``lax.scan``. Steps:

    * ``schedule="constant"``: ``θ ← θ - lr ∇𝓛(θ)``.
    * ``schedule="loss-based"`` (Lyu & Li, arXiv 1906.05890): ``θ ← θ - α ∇ log 𝓛(θ)``, i.e. the
      step ``η = α / 𝓛``, starting from ``α = lr``; ``α ← 2^{1/5} α`` after a step that lowers
      ``𝓛``, and a step that does not is undone with ``α ← 2^{-1/10} α``. Everything is in log
      space, so training goes on when ``𝓛`` is ``1e-300`` or ``1e-3000``.
    * ``optimizer=`` any optax ``GradientTransformation`` is fed ``∇𝓛`` (constant) or ``∇ log 𝓛``
      with its update multiplied by ``α`` (loss-based). Reuse one optimizer object across calls
      (a new object means a new trace).

    Works under ``jax.vmap`` over ``net`` (and ``state``): values of ``X, y`` are checked eagerly
    only when they are not traced. For many runs on one dataset, :func:`train_many` is faster.

    Args:
        net: the initial :class:`Network` (``W1 (d, m)``, ``w2 (m,)``), same dtype as ``X``.
        X: data ``(n, d)``.
        y: labels ``(n,)`` in {-1, +1}.
        steps: number of steps (Python int > 0).
        schedule: ``"constant"`` or ``"loss-based"``.
        lr: the constant step, or the initial ``α`` of the loss-based schedule.
        max_alpha: cap on the loss-based ``α`` (``α ← min(2^{1/5} α, max_alpha)``). ``α`` is a
            *relative* step (``‖Δθ‖/‖θ‖ ≈ 2γα`` late in training, ``γ`` the margin); Lyu & Li's
            uncapped rule (``max_alpha=inf``) lets it grow until every step jumps, which on
            easily separated data ends in parameters at the float range's end within a thousand
            steps. The loss then falls like ``𝓛 ≈ exp(-c e^{4γαt})``: after about
            ``700 / (4γα)`` steps ``‖θ‖²`` reaches the float range, every further step is refused
            (``history.rejected == record_every``) and training stops moving.
        optimizer: an optax optimizer, or ``None`` for plain gradient descent.
        loss: ``"logistic"`` or ``"exponential"``.
        record_every: record the history every this many steps (default ``min(steps, 100)``);
            a remainder ``steps % record_every`` gets a last record at the end.
        state: a :class:`TrainState` from a previous result to resume from (``net`` is then the
            previous ``result.net``); ``lr`` is ignored when it is given.

    Returns:
        A :class:`TrainResult` ``(net, history, state, diverged, stalled)``.

    Raises:
        ValueError: bad shapes, labels not ±1, NaN/infinite data or weights, ``steps <= 0``,
            ``lr`` or ``max_alpha`` not positive (in any scalar form: Python, NumPy or JAX; a
            traced one through ``eqx.error_if``), an unknown schedule or loss.
        TypeError: a network of another dtype than ``X``, a bad optimizer, ``steps`` not an int.

    Example:
        >>> res = train(net, X, y, steps=2_000, schedule="loss-based")
        >>> res.history.normalized_margin[-1]
    """
    steps, record_every, lr, max_alpha = _check_options(steps, record_every, schedule, loss, lr, optimizer, max_alpha)
    X, y = _check_data(net, X, y, batched=False)
    if state is None:
        state = TrainState(
            jnp.asarray(0),
            jnp.asarray(lr, X.dtype),
            None if optimizer is None else optimizer.init(net),
        )
    else:
        state = _check_state(state, batch=None, dtype=X.dtype)
    opt_state = None if optimizer is None else jax.tree.map(lambda s: jnp.asarray(s)[None], state.opt_state)
    fused = _train_fused(
        net.W1[None],
        net.w2[None],
        X,
        y,
        state.alpha[None],
        jnp.asarray(max_alpha, X.dtype),
        state.step,
        opt_state,
        group=1,
        steps=steps,
        record_every=record_every,
        schedule=schedule,
        loss=loss,
        optimizer=optimizer,
    )
    only_run = lambda t: jax.tree.map(lambda v: v[0], t)  # noqa: E731
    hist = fused.history
    history = TrainHistory(
        step=hist.step,
        log_loss=hist.log_loss[:, 0],
        normalized_margin=hist.normalized_margin[:, 0],
        smoothed_margin=hist.smoothed_margin[:, 0],
        norm_sq=hist.norm_sq[:, 0],
        log_step_size=hist.log_step_size[:, 0],
        rejected=hist.rejected[:, 0],
    )
    new_state = TrainState(step=fused.state.step, alpha=fused.state.alpha[0], opt_state=only_run(fused.state.opt_state))
    return TrainResult(
        net=only_run(fused.net), history=history, state=new_state, diverged=fused.diverged[0], stalled=fused.stalled[0]
    )


def train_many(
    nets: Network,
    X: Float[Array, "n d"],
    y: Float[Array, " n"],
    *,
    steps: int,
    schedule: Schedule = "constant",
    lr: float = 1e-3,
    optimizer=None,
    loss: str = "logistic",
    record_every: int | None = None,
    state: TrainState | None = None,
    max_alpha: float = 1e-3,
    group_size: int | None = None,
) -> TrainResult:
    """Train ``r`` networks on the same data at once; equal to ``jax.vmap(train)`` over ``nets``.

    The ``r`` networks of ``m`` neurons are fused into one network of ``r·m`` neurons: one
    ``X @ W (n, r·m)`` product per step, reshaped to ``(n, r, m)`` for the per-run outputs. Each
    run's gradient of the summed loss is its own gradient (the runs share no parameter), and the
    per-run losses, step sizes ``α`` and accept/reject decisions are elementwise over ``r``, so
    every run follows exactly the trajectory :func:`train` gives it (up to rounding). The groups
    of ``group_size`` runs are trained one after another so that their activations stay in
    cache; measured throughputs are in ``benchmarks/results/train.md``.

    Args:
        nets: a batched :class:`Network`, ``W1 (r, d, m)``, ``w2 (r, m)`` (e.g.
            ``jax.vmap(lambda k: init_network(d, m, key=k))(jax.random.split(key, r))``).
        X, y, steps, schedule, lr, optimizer, loss, record_every, max_alpha: as in :func:`train`.
        state: a batched :class:`TrainState` (``alpha (r,)``, ``step (r,)``) to resume from.
        group_size: runs fused per group (a divisor of ``r``); groups are trained one after
            another so that each group's ``(n, group_size·m)`` activations stay in cache. Default:
            the largest divisor of ``r`` with ``n · group_size · m ≤ 8192``.

    Returns:
        A batched :class:`TrainResult`: ``net`` ``(r, d, m)/(r, m)``, history fields ``(r, k)``,
        ``state`` with leading axis ``r``, ``diverged (r,)``, ``stalled (r,)``.

    Raises:
        As :func:`train`, and ValueError when ``nets`` is not batched.

    Example:
        >>> keys = jax.random.split(jax.random.key(0), 64)
        >>> nets = jax.vmap(lambda k: init_network(5, 50, scale=1e-3, key=k))(keys)
        >>> res = train_many(nets, X, y, steps=5_000, schedule="loss-based")
    """
    steps, record_every, lr, max_alpha = _check_options(steps, record_every, schedule, loss, lr, optimizer, max_alpha)
    X, y = _check_data(nets, X, y, batched=True)
    r, _, m = nets.W1.shape
    if group_size is not None and r % check_int("group_size", group_size):
        raise ValueError(f"group_size must be a positive int dividing r = {r}, got {group_size!r}")
    if state is None:
        state = TrainState(
            jnp.zeros((r,), jnp.asarray(0).dtype),
            jnp.full((r,), lr, X.dtype),
            None if optimizer is None else jax.vmap(optimizer.init)(nets),
        )
    else:
        state = _check_state(state, batch=r, dtype=X.dtype)
    # all runs share the step counter (they take the same number of steps)
    fused = _train_fused(
        nets.W1,
        nets.w2,
        X,
        y,
        state.alpha,
        jnp.asarray(max_alpha, X.dtype),
        state.step[0],
        state.opt_state,
        group=_group_size(r, X.shape[0], m) if group_size is None else group_size,
        steps=steps,
        record_every=record_every,
        schedule=schedule,
        loss=loss,
        optimizer=optimizer,
    )
    hist = fused.history
    k = hist.step.shape[0]
    history = TrainHistory(
        step=jnp.broadcast_to(hist.step[None, :], (r, k)),
        log_loss=hist.log_loss.T,
        normalized_margin=hist.normalized_margin.T,
        smoothed_margin=hist.smoothed_margin.T,
        norm_sq=hist.norm_sq.T,
        log_step_size=hist.log_step_size.T,
        rejected=hist.rejected.T,
    )
    new_state = TrainState(step=jnp.full((r,), fused.state.step), alpha=fused.state.alpha, opt_state=fused.state.opt_state)
    return TrainResult(net=fused.net, history=history, state=new_state, diverged=fused.diverged, stalled=fused.stalled)
