"""A matrix-free solver of the regularized ReLU program: an augmented Lagrangian on the cone
constraints whose subproblems are solved by accelerated proximal gradient (R-FISTA).

The program (DESIGN.md), on the data scaled by :mod:`convexrelu._scaling`, with ``z = (U, V)``:

    min ℓ(A z) + β Σ_b ‖z_b‖   s.t.   G_b z_b = S_j ⊙ X z_b ≥ 0,

``A z = Σ_j D_j X (u_j - v_j)``, ``S = 2D - 1``. The augmented Lagrangian with multipliers
``ν ≥ 0`` of shape ``(2, p, n)`` and penalty ``δ`` (scnn's AL method, Mishkin et al. 2022) is

    L_δ(z; ν) = ℓ(A z) + β Σ‖z_b‖ + (‖(ν - δ G z)_+‖² - ‖ν‖²) / (2δ);

its smooth part has gradient ``-g`` with the dual blocks of :func:`convexrelu.dual_blocks`,
``g_b = ±Xᵀ(D_j ⊙ r) + Xᵀ(S_j ⊙ π_b)``, ``r = -∇_f ℓ`` and ``π = (ν - δ G z)_+``. So every
gradient evaluation also yields the certificate: ``(r, π)`` is a dual point of the original
program, scored by the same formulas as :func:`convexrelu.optimality` (primal value, dual bound
scaled onto the feasible set, relative gap and cone violation), at no extra pass over the data.
The stopping test is therefore checked at every iteration.

Outer loop: the subproblem's own duality gap (its dual bound is the program's minus
``‖μ - ν‖² / (2δ)``) measures how well ``L_δ(·; ν)`` is minimized; the multipliers are updated
(``ν ← π``, the momentum restarted) when that relative gap falls below half of the constraint
error ``max |min(G z, ν/δ)| = max |π - ν| / δ`` (relative like the violation), and ``δ`` doubles
when an update did not shrink that error by 4× (the classical rule, Bertsekas 1982).
Inner loop: R-FISTA as :func:`convexrelu.solve_gated`: a backtracking line search on the
quadratic bound of the smooth part (one forward pass a trial) from a step that grows 1.25× per
iteration, starting at ``1/L``, ``L = ℓ''‖A‖² + δ‖X‖²`` (``‖A‖²`` by power iteration), and
gradient-mapping restarts (O'Donoghue & Candès 2015). The penalty's curvature is ``δ`` times that
of the active constraints' rows only, far below ``δ‖X‖²``: the line search finds steps several
times ``1/L``.

Why this and not ADMM with a PCG linear step (CRONOS, Feng, Frangella & Pilanci 2024): ADMM on
this program (:mod:`convexrelu._admm`) keeps the slacks ``s = G z`` and their multipliers, two
more ``(2, p, n)`` arrays, and needs Anderson acceleration (ten further copies) to converge in a
few thousand iterations; its z-step ``(I ⊗ B + ρ AᵀA) z = rhs`` then costs several CG iterations,
each one application of ``A`` and ``Aᵀ``. The AL keeps one ``(2, p, n)`` array, costs about one
application of ``A``, ``G`` and their adjoints per iteration plus the line search's forward
pass, and certifies each iterate as a side effect. Its weakness, measured on teacher data
(commit messages, ``benchmarks/results/reach.md``): it needs about ten times more iterations
than ADMM with exact solves, as the multiplier updates converge slowly when the cones bind.

Outputs: the softmax cross-entropy of ``c`` outputs (one-hot targets) couples the outputs through
the loss only; every output has its own blocks, cone constraints and multipliers. So the iterate
carries a leading output axis throughout, ``z (c, 2, p, d)``, ``ν (c, 2, p, n)``, fits ``(c, n)``
(``c = 1`` for the squared and logistic losses): each output's pass over the patterns is the
single-output pass, batched over that axis (:func:`_each_output`), and the loss, its gradient
``r (c, n)`` and the certificate are evaluated on all outputs at once (the dual bound takes the
largest block norm over every output). The loss' curvature bound is 1 (squared), ¼ (logistic)
or ½ (softmax: ``‖∇² logsumexp‖ ≤ ½``).

Memory: the operator ``W ↦ Σ_j D_j X w_j``, ``G`` and their adjoints are applied over chunks of
patterns (``lax.fori_loop`` with dynamic slices of :data:`CHUNK_BYTES` each), never forming
``D_j X`` nor an ``n × n`` matrix: ``O(nd + pd)`` plus the boolean patterns and the multipliers
``ν`` (``2pn`` floats, the certificate's cone multipliers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ._programs import (
    Optimality,
    conjugate_bound,
    convex_loss,
    duality_gap,
    group_norm,
    loss_domain,
    loss_of_program,
    negative_loss_gradient,
    normalize_regularized,
)
from ._scaling import Candidate, SolverResult, scale_problem
from ._solution import RESULTS, RUNNING

MAX_ITERS = 20_000
CHUNK_BYTES = 1 << 25
"""Bytes of one chunk's ``(2, c, n)`` temporaries (of every output together): patterns are processed ``c`` at a time."""
CURVATURE = {"squared": 1.0, "logistic": 0.25, "softmax": 0.5}
"""A bound on the loss' curvature ``ℓ''`` in the fit (softmax: ``‖∇² logsumexp‖ ≤ ½``)."""
_POWER_ITERS = 20
_SAFETY = 1.1  # on the power-iteration estimate of ‖A‖² (a lower bound)
_KAPPA = 0.5  # update ν when the subproblem's gap is below _KAPPA × the constraint error
_SHRINK = 0.25  # expected shrink of the constraint error per multiplier update, else δ doubles
_DELTA0 = 1.0  # initial δ‖X‖² / (ℓ''‖A‖²)
_DELTA_MAX = 1e8
_BACKTRACK, _GROW, _MAX_BACKTRACKS = 0.7, 1.25, 60  # R-FISTA's line search (as convexrelu.solve_gated)


def chunk_size(p: int, n: int, itemsize: int, outputs: int = 1) -> int:
    """Patterns per chunk: ``(2, c, n)`` floats of every output in :data:`CHUNK_BYTES`, at least 1, at most ``p``."""
    return int(max(1, min(p, CHUNK_BYTES // max(1, 2 * outputs * n * itemsize))))


def _over_chunks(p: int, c: int, body, init):
    """``body(start, valid, carry)`` over the chunks ``[start, start + c)`` of ``p`` rows; the last
    chunk is shifted back to fit (``start = p - c``) and ``valid`` masks the rows it repeats."""
    k = -(-p // c)

    def step(i, carry):
        start = jnp.minimum(i * c, p - c)
        valid = (start + jnp.arange(c)) >= i * c
        return body(start, valid, carry)

    return jax.lax.fori_loop(0, k, step, init)


def _rows(a, start, c, axis):
    return jax.lax.dynamic_slice_in_dim(a, start, c, axis=axis)


def _each_output(fn, *args):
    """``fn`` of one output's arrays, over the leading output axis of ``args`` (batched by
    ``vmap``; a single output is passed as it is)."""
    if args[0].shape[0] == 1:
        return jax.tree.map(lambda a: a[None], fn(*(a[0] for a in args)))
    return jax.vmap(fn)(*args)


class Problem(NamedTuple):
    """The scaled problem as the solver sees it (``D`` boolean ``(p, n)``, targets ``y (c, n)``), its
    scales and constants."""

    X: Array
    y: Array
    D: Array
    beta: Array
    sy: Array
    lam_A: Array  # ‖A‖² of W ↦ Σ_j D_j X w_j (power iteration, × _SAFETY)
    lam_X: Array  # ‖X‖², exact
    XDy: Array  # Xᵀ(D_j ⊙ y), (c, p, d): the squared loss' ray rescaling needs it
    tol: Array
    max_iters: Array
    offset: Array  # the fixed offset o of the fit, ℓ(f + o, y) (0 for the squared loss: its y is shifted)
    chunk: int
    loss: str


class Pass(NamedTuple):
    """One evaluation at ``z``: the fit, ``Xᵀ(S ⊙ π)``, ``Xᵀ(D ⊙ r)`` and the sums the certificate needs."""

    f: Array  # (c, n)
    back: Array  # (c, 2, p, d): Xᵀ(S_j ⊙ π_bj)
    Ga: Array  # (c, p, d): Xᵀ(D_j ⊙ r) at scale 1
    viol: Array  # max (-G z)_+
    absmax: Array  # max |X z_b|
    comp: Array  # πᵀ G z
    step: Array  # max |π - ν| = δ max |min(G z, ν/δ)|: the AL's constraint error
    pp: Array  # ‖π‖²
    pn: Array  # πᵀν
    nn: Array  # ‖ν‖²


def fit(X, D, Z, c: int):
    """``Σ_j D_j ⊙ X (z_0j - z_1j)`` over chunks of ``c`` patterns (``Z (2, p, d)``)."""
    p, dt = D.shape[0], X.dtype

    def body(start, valid, f):
        Dc = _rows(D, start, c, 0) & valid[:, None]
        P = _rows(Z[0] - Z[1], start, c, 0) @ X.T
        return f + jnp.sum(Dc.astype(dt) * P, axis=0)

    return _over_chunks(p, c, body, jnp.zeros(X.shape[:1], dt))


def adjoint(X, D, a, c: int):
    """``Xᵀ(D_j ⊙ a)`` for every pattern, ``(p, d)``, over chunks of ``c`` patterns."""
    p, dt = D.shape[0], X.dtype

    def body(start, valid, out):
        Dc = _rows(D, start, c, 0).astype(dt)
        return jax.lax.dynamic_update_slice_in_dim(out, (Dc * a) @ X, start, axis=0)

    return _over_chunks(p, c, body, jnp.zeros((p, X.shape[1]), dt))


def _adjoints(pr: Problem, a):
    """``Xᵀ(D_j ⊙ a_k)`` of every output ``k``: ``(c, p, d)``."""
    return _each_output(lambda ak: adjoint(pr.X, pr.D, ak, pr.chunk), a)


def _cone_pass(pr: Problem, Z, nu, delta) -> Pass:
    """The fit, ``π = (ν - δ G z)_+`` folded into ``Xᵀ(S ⊙ π)``, the cone sums (each output's
    :func:`_cone_sums`), then ``Xᵀ(D ⊙ r)``."""
    f, back, viol, absmax, comp, dmax, pp, pn, nn = _each_output(lambda Zk, nuk: _cone_sums(pr, Zk, nuk, delta), Z, nu)
    Ga = _adjoints(pr, negative_loss_gradient(f + pr.offset, pr.y, pr.loss))
    return Pass(
        f, back, Ga, jnp.max(viol), jnp.max(absmax), jnp.sum(comp), jnp.max(dmax), jnp.sum(pp), jnp.sum(pn), jnp.sum(nn)
    )


def _cone_sums(pr: Problem, Z, nu, delta):
    """One output's pass (``Z (2, p, d)``, ``ν (2, p, n)``): its fit, ``Xᵀ(S ⊙ π)`` and cone sums."""
    (p, n), d, c, dt = pr.D.shape, pr.X.shape[1], pr.chunk, pr.X.dtype
    zero = jnp.zeros((), dt)

    def body(start, valid, carry):
        f, back, viol, absmax, comp, dmax, pp, pn, nn = carry
        Df = _rows(pr.D, start, c, 0).astype(dt)
        S = 2.0 * Df - 1.0
        P = jnp.einsum("bcd,nd->bcn", _rows(Z, start, c, 1), pr.X)
        G = S * P
        nuc = _rows(nu, start, c, 1)
        pi = jax.nn.relu(nuc - delta * G)
        w = valid.astype(dt)[None, :, None]
        back = jax.lax.dynamic_update_slice_in_dim(back, jnp.einsum("bcn,nd->bcd", S * pi, pr.X), start, axis=1)
        return (
            f + jnp.sum(w[0] * Df * (P[0] - P[1]), axis=0), back, jnp.maximum(viol, jnp.max(jax.nn.relu(-G))),
            jnp.maximum(absmax, jnp.max(jnp.abs(P))), comp + jnp.sum(w * pi * G),
            jnp.maximum(dmax, jnp.max(jnp.abs(pi - nuc))), pp + jnp.sum(w * pi * pi),
            pn + jnp.sum(w * pi * nuc), nn + jnp.sum(w * nuc * nuc),
        )

    init = (jnp.zeros((n,), dt), jnp.zeros((2, p, d), dt)) + (zero,) * 7
    return _over_chunks(p, c, body, init)


def smooth_value(pr: Problem, Z, nu, delta):
    """The smooth part of ``L_δ`` at ``z``: ``ℓ(A z) + (‖(ν - δ G z)_+‖² - ‖ν‖²) / (2δ)`` (one forward pass)."""
    f, pen = _each_output(lambda Zk, nuk: _penalty_pass(pr, Zk, nuk, delta), Z, nu)
    return convex_loss(f + pr.offset, pr.y, pr.loss) + jnp.sum(pen) / (2.0 * delta)


def _penalty_pass(pr: Problem, Z, nu, delta):
    """One output's fit and ``‖(ν - δ G z)_+‖² - ‖ν‖²``."""
    (p, n), c, dt = pr.D.shape, pr.chunk, pr.X.dtype

    def body(start, valid, carry):
        f, pen = carry
        Df = _rows(pr.D, start, c, 0).astype(dt)
        P = jnp.einsum("bcd,nd->bcn", _rows(Z, start, c, 1), pr.X)
        nuc = _rows(nu, start, c, 1)
        pi = jax.nn.relu(nuc - delta * (2.0 * Df - 1.0) * P)
        w = valid.astype(dt)[None, :, None]
        return f + jnp.sum(w[0] * Df * (P[0] - P[1]), axis=0), pen + jnp.sum(w * (pi * pi - nuc * nuc))

    return _over_chunks(p, c, body, (jnp.zeros((n,), dt), jnp.zeros((), dt)))


def multipliers(pr: Problem, Z, nu, delta):
    """``π = (ν - δ G z)_+``, ``(c, 2, p, n)``: the multiplier update and the certificate's ``ν``."""
    p, c, dt = pr.D.shape[0], pr.chunk, pr.X.dtype

    def one(Zk, nuk):
        def body(start, valid, out):
            S = 2.0 * _rows(pr.D, start, c, 0).astype(dt) - 1.0
            G = S * jnp.einsum("bcd,nd->bcn", _rows(Zk, start, c, 1), pr.X)
            pi = jax.nn.relu(_rows(nuk, start, c, 1) - delta * G)
            return jax.lax.dynamic_update_slice_in_dim(out, pi, start, axis=1)

        return _over_chunks(p, c, body, jnp.zeros_like(nuk))

    return _each_output(one, Z, nu)


class Certificate(NamedTuple):
    """The candidate ``c z`` scored on the original program, and the outer loop's measures."""

    scale: Array  # the squared loss' best point on the ray of z (feasible_candidate's rule)
    r: Array  # r of the candidate, scaled data
    opt: Optimality  # original units
    sub: Array  # the subproblem's relative gap (at scale 1)
    outer: Array  # the constraint error max |min(G z, ν/δ)|, relative as the violation, at scale 1


def _dual(pr: Problem, r, Ga, back):
    """Dual value of ``(r, π)`` scaled onto the feasible set, and the scale ``t``."""
    g = jnp.stack([Ga, -Ga], axis=1) + back
    cn = jnp.max(jnp.sqrt(jnp.sum(g * g, axis=-1))) / pr.beta
    tmax = jnp.where(cn > 0, 1.0 / jnp.where(cn > 0, cn, 1.0), jnp.inf)
    if pr.loss == "squared":
        rr, ry = jnp.sum(r * r), jnp.sum(r * pr.y)
        t = jnp.clip(ry / jnp.where(rr > 0, rr, 1.0), 0.0, tmax)
    else:
        t = jnp.minimum(1.0, tmax)
    return conjugate_bound(r, pr.y, cn, pr.loss, pr.offset), t


def _primal(pr: Problem, f, norm, scale):
    return convex_loss(scale * f + pr.offset, pr.y, pr.loss) + pr.beta * scale * norm


def certify(pr: Problem, Z, ps: Pass, delta) -> Certificate:
    """The certificate of :class:`Pass` ``ps`` at ``z`` (see the module docstring)."""
    f, y, sy2 = ps.f, pr.y, pr.sy * pr.sy
    norm = group_norm(Z[:, 0], Z[:, 1])
    scale = jnp.ones((), f.dtype)
    if pr.loss == "squared":  # feasible_candidate's ray rule
        ff = jnp.sum(f * f)
        s = (jnp.sum(f * y) - pr.beta * norm) / jnp.where(ff > 0, ff, 1.0)
        scale = jnp.where(ff > 0, jnp.maximum(s, 0.0), 1.0)
    r = negative_loss_gradient(scale * f + pr.offset, y, pr.loss)
    Ga = pr.XDy - scale * (pr.XDy - ps.Ga) if pr.loss == "squared" else ps.Ga
    value, (dual, _) = _primal(pr, f, norm, scale) * sy2, _dual(pr, r, Ga, ps.back)
    dual = dual * sy2
    residual = pr.sy * scale * ps.viol / jnp.maximum(1.0, pr.sy * scale * ps.absmax)
    opt = Optimality(value, dual, duality_gap(value, dual), residual)
    # the subproblem at c = 1: gap = P - πᵀGz - D_t + ((t² - 1)‖π‖² - 2(t - 1)πᵀν) / (2δ)
    p1 = _primal(pr, f, norm, jnp.ones((), f.dtype))
    d1, t = _dual(pr, negative_loss_gradient(f + pr.offset, y, pr.loss), ps.Ga, ps.back)
    sub = p1 - ps.comp - d1 + ((t * t - 1.0) * ps.pp - 2.0 * (t - 1.0) * ps.pn) / (2.0 * delta)
    den = jnp.maximum(1.0, jnp.maximum(jnp.abs(value), jnp.abs(dual))) / sy2
    outer = pr.sy * ps.step / delta / jnp.maximum(1.0, pr.sy * ps.absmax)
    return Certificate(scale, r, opt, sub / den, outer)


class State(NamedTuple):
    """The loop state: prox iterate ``W``, extrapolated point ``Z`` (the scored candidate),
    momentum ``t``, multipliers ``ν``, penalty ``δ``, the constraint error at the last update."""

    W: Array
    Z: Array
    t: Array
    step: Array
    nu: Array
    delta: Array
    last_outer: Array
    iterations: Array
    status: Array
    gap: Array


def _group_prox(V, threshold):
    norms = jnp.sqrt(jnp.sum(V * V, axis=-1, keepdims=True))
    return V * jnp.maximum(0.0, 1.0 - threshold / jnp.where(norms > 0, norms, 1.0))


def _step_size(pr: Problem, delta):
    return 1.0 / (2.0 * CURVATURE[pr.loss] * pr.lam_A + delta * pr.lam_X)


def _status(pr: Problem, cert: Certificate, it, finite):
    opt = cert.opt
    done = (opt.gap <= pr.tol) & (opt.residual <= pr.tol)
    st = jnp.where(done, RESULTS.optimal, jnp.where(it >= pr.max_iters, RESULTS.max_iters, RUNNING))
    return jnp.where(finite, st, RESULTS.numerical_error).astype(jnp.int32)


def iteration(pr: Problem, progress, check_every: int, s: State) -> State:
    """Score the point ``Z`` (stop when certified), then either update the multipliers (restart
    from ``W``) or take the proximal gradient step from ``Z``."""
    ps = _cone_pass(pr, s.Z, s.nu, s.delta)
    cert = certify(pr, s.Z, ps, s.delta)
    finite = jnp.isfinite(cert.opt.value) & jnp.isfinite(cert.opt.gap) & jnp.all(jnp.isfinite(s.Z))
    status = _status(pr, cert, s.iterations, finite)
    if progress is not None:
        jax.lax.cond(s.iterations % check_every == 0, lambda: jax.debug.callback(progress, s.iterations, cert.opt.gap), lambda: None)
    running = status == RUNNING
    update = running & (cert.sub <= _KAPPA * cert.outer)
    nu = jax.lax.cond(update, lambda: multipliers(pr, s.Z, s.nu, s.delta), lambda: s.nu)
    grow = update & (cert.outer > _SHRINK * s.last_outer)
    delta = jnp.where(grow, jnp.minimum(2.0 * s.delta, _DELTA_MAX), s.delta)
    last_outer = jnp.where(update, cert.outer, s.last_outer)
    grad = -(jnp.stack([ps.Ga, -ps.Ga], axis=1) + ps.back)
    phi_z = convex_loss(ps.f + pr.offset, pr.y, pr.loss) + (ps.pp - ps.nn) / (2.0 * s.delta)
    W, step = _line_search(pr, s, grad, phi_z)
    restart = jnp.sum((W - s.W) * (s.Z - W)) > 0
    t_next = jnp.where(restart, 1.0, 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t)))
    Z = W + jnp.where(restart, 0.0, (s.t - 1.0) / t_next) * (W - s.W)
    # after a multiplier update: restart from the last prox iterate; once stopped: keep Z (the candidate)
    W = jnp.where(update, s.W, W)
    Z = jnp.where(running, jnp.where(update, s.W, Z), s.Z)
    t = jnp.where(update, 1.0, t_next).astype(s.t.dtype)
    it = s.iterations + running.astype(jnp.int32)
    step = jnp.where(grow, s.step * s.delta / delta, step * _GROW)  # δ doubled: the penalty's curvature too
    return State(W, Z, t, step, nu, delta, last_outer, it, status, cert.opt.gap)


def _line_search(pr: Problem, s: State, grad, phi_z):
    """The proximal step from ``Z`` with the largest step ``s.step · 0.7^k`` whose quadratic bound
    ``φ(W) ≤ φ(Z) + ⟨∇, W - Z⟩ + ‖W - Z‖² / (2 step)`` holds (``φ`` the smooth part of ``L_δ``)."""
    slack = 10 * jnp.finfo(pr.X.dtype).eps * jnp.maximum(jnp.abs(phi_z), 1.0)

    def trial(step):
        W = _group_prox(s.Z - step * grad, step * pr.beta)
        dW = W - s.Z
        bound = phi_z + jnp.sum(grad * dW) + jnp.sum(dW * dW) / (2.0 * step)
        return W, smooth_value(pr, W, s.nu, s.delta) <= bound + slack  # False on NaN: backtrack

    def again(carry):
        step, _, _, tries = carry
        W, ok = trial(step * _BACKTRACK)
        return step * _BACKTRACK, W, ok, tries + 1

    W0, ok0 = trial(s.step)
    step, W, _, _ = jax.lax.while_loop(lambda c: ~c[2] & (c[3] < _MAX_BACKTRACKS), again, (s.step, W0, ok0, 0))
    return W, step


def power_norm(X, D, c: int, iters: int = _POWER_ITERS):
    """``‖A‖²`` of ``W ↦ Σ_j D_j X w_j`` by power iteration on ``AᵀA`` (a lower bound)."""
    W = jnp.ones((D.shape[0], X.shape[1]), X.dtype)

    def body(_, W):
        W = adjoint(X, D, fit(X, D, jnp.stack([W, jnp.zeros_like(W)]), c), c)
        return W / jnp.maximum(jnp.sqrt(jnp.sum(W * W)), jnp.finfo(X.dtype).tiny)

    W = jax.lax.fori_loop(0, iters, body, W)
    f = fit(X, D, jnp.stack([W, jnp.zeros_like(W)]), c)
    return jnp.sum(f * f)


def problem(X, y, D, beta, program: str, tol, max_iters, chunk: int, offset=0.0) -> Problem:
    """Scale the data (:func:`convexrelu._scaling.scale_problem`, with the fit's fixed ``offset``)
    and set the solver's constants."""
    data = scale_problem(X, y, D, beta, program, offset)  # its float copy of D is unused: compiled away
    loss = loss_of_program(program)
    Xs = data.Xs
    ys = data.ys if loss == "softmax" else data.ys[None]  # the output axis: (c, n)
    lam_X = jnp.max(jnp.linalg.eigvalsh(Xs.T @ Xs))
    lam_A = _SAFETY * power_norm(Xs, D, chunk)  # c outputs: the same operator on each, the same norm
    XDy = _each_output(lambda a: adjoint(Xs, D, a, chunk), ys)
    return Problem(Xs, ys, D, data.beta_s, data.sy, lam_A, lam_X, XDy, tol, max_iters, data.offset, chunk, loss)


def init_state(pr: Problem, init, sx) -> State:
    """From zero, or from ``init = (U, V, dual, ν)`` of the original program (mapped to the scaled
    one; ``U (p, d)``, or ``(c, p, d)`` with ``c`` outputs)."""
    (p, n), d, dt, m = pr.D.shape, pr.X.shape[1], pr.X.dtype, pr.y.shape[0]
    if init is None:
        Z, nu = jnp.zeros((m, 2, p, d), dt), jnp.zeros((m, 2, p, n), dt)
    else:
        Z = jnp.reshape(jnp.stack([init[0], init[1]], axis=-3), (m, 2, p, d)) * (sx / pr.sy)
        nu = jnp.reshape(jnp.maximum(init[3], 0.0), (m, 2, p, n)) / pr.sy
    delta = _DELTA0 * 2.0 * CURVATURE[pr.loss] * pr.lam_A / jnp.maximum(pr.lam_X, jnp.finfo(dt).tiny)
    zero_it = jnp.zeros((), jnp.int32)
    inf = jnp.asarray(jnp.inf, dt)
    state = State(Z, Z, jnp.ones((), dt), jnp.ones((), dt), nu, delta, inf, zero_it, jnp.asarray(RUNNING, jnp.int32), inf)
    return state._replace(step=_step_size(pr, delta))


def matrix_free_solve(
    X, y, D, beta, init, tol, max_iters, *, program: str, check_every: int, chunk: int, progress: Callable | None = None,
    offset=0.0,
) -> SolverResult:
    """Solve one regularized problem (``vmap`` batches it) from zero or ``init = (U, V, dual, ν)``,
    with a fixed ``offset`` of the fit; returns the candidate at the last scored point ``Z`` with
    its optimality in original units (``c`` softmax outputs: ``U (c, p, d)``, ``dual (c, n)``,
    ``ν (c, 2, p, n)``; one output: without the output axis)."""
    pr = problem(X, y, D, beta, program, tol, max_iters, chunk, offset)
    sx = scale_problem(X, y, D, beta, program).sx
    s0 = init_state(pr, init, sx)
    s = jax.lax.while_loop(lambda s: s.status == RUNNING, lambda s: iteration(pr, progress, check_every, s), s0)
    ps = _cone_pass(pr, s.Z, s.nu, s.delta)
    cert = certify(pr, s.Z, ps, s.delta)
    nu = multipliers(pr, s.Z, s.nu, s.delta)
    factor = cert.scale * pr.sy / sx
    arrays = (s.Z[:, 0] * factor, s.Z[:, 1] * factor, cert.r * pr.sy, nu * pr.sy)
    if pr.loss != "softmax":
        arrays = tuple(a[0] for a in arrays)
    return SolverResult(Candidate(*arrays, cert.opt), s.status, s.iterations)


def chunked_optimality(X, y, D, U, V, dual, cone_dual, *, program: str, beta, offset=0.0) -> Optimality:
    """:func:`convexrelu.optimality` of a regularized program in one pass over chunks of patterns
    (the same formulas on the same normalized program, without its ``(2, p, n)`` temporaries):
    for large ``n`` and ``p``; ``offset`` a fixed offset of the fit; ``c`` softmax outputs on a
    leading axis of ``y``, the blocks and the multipliers."""
    loss = loss_of_program(program)
    if loss == "squared":
        y, offset = y - offset, 0.0
    (p, n), dt = D.shape, X.dtype
    X, y, beta, U, V, dual, cone_dual, k = normalize_regularized(X, y, U, V, dual, cone_dual, beta, loss)
    if loss != "softmax":  # the output axis
        y, U, V, dual, cone_dual = (a[None] for a in (y, U, V, dual, cone_dual))
    c = chunk_size(p, n, jnp.dtype(dt).itemsize, y.shape[0])
    r = loss_domain(dual, y, loss)
    zero = jnp.zeros((), dt)

    def one(Z, r, cone_dual):
        def body(start, valid, carry):
            f, viol, absmax, gmax = carry
            Df = _rows(D, start, c, 0).astype(dt)
            S = 2.0 * Df - 1.0
            P = jnp.einsum("bcd,nd->bcn", _rows(Z, start, c, 1), X)
            Ga = (Df * r) @ X
            g = jnp.stack([Ga, -Ga]) + jnp.einsum("bcn,nd->bcd", S * jax.nn.relu(_rows(cone_dual, start, c, 1)), X)
            return (
                f + jnp.sum(valid.astype(dt)[:, None] * Df * (P[0] - P[1]), axis=0),
                jnp.maximum(viol, jnp.max(jax.nn.relu(-S * P))), jnp.maximum(absmax, jnp.max(jnp.abs(P))),
                jnp.maximum(gmax, jnp.max(jnp.sqrt(jnp.sum(g * g, axis=-1)))),
            )

        return _over_chunks(p, c, body, (jnp.zeros((n,), dt), zero, zero, zero))

    f, viol, absmax, gmax = _each_output(one, jnp.stack([U, V], axis=1), r, cone_dual)
    value = convex_loss(f + offset, y, loss) + beta * group_norm(U, V)
    dval = conjugate_bound(r, y, jnp.max(gmax) / beta, loss, offset)
    residual = jnp.max(viol) / jnp.maximum(1.0, jnp.max(absmax))
    return Optimality(value * k, dval * k, duality_gap(value, dval, 1.0 / k), residual)
