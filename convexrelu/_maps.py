"""Maps between convex solutions and networks (Pilanci & Ergen 2020; Wang, Lacotte & Pilanci 2021).

* ψ, :func:`to_network`: each nonzero block ``u_j`` of a convex solution becomes the neuron
  ``(u_j / √‖u_j‖, +√‖u_j‖)``, each ``v_j`` the neuron ``(v_j / √‖v_j‖, -√‖v_j‖)``. Because
  ``u_j ∈ K_j`` the ReLU acts linearly on it, ``(X u_j)_+ = D_j X u_j``, so the network's output
  equals the convex fit ``Σ_j D_j X (u_j - v_j)`` and its penalty ``½‖θ‖²`` equals ``Σ‖u_j‖ + ‖v_j‖``.
* φ, :func:`to_convex`: group neurons by (activation pattern on ``X``, sign of ``w2``) and set
  ``u_j = Σ_{i ∈ group} |w2_i| W1[:, i]``; the output is kept, the penalty does not increase.
* :func:`split`: a neuron ``(w, a)`` becomes ``(√γ_k w, √γ_k a)``, ``Σ_k γ_k = 1``; output and
  ``‖θ‖²`` are unchanged.
* :func:`prune`: Carathéodory reduction of a convex solution to at most ``n`` active blocks with
  the same fit and objective.

ψ, φ and prune produce a data-dependent number of neurons/blocks: they are host-side functions
(not jittable). ``to_network(..., pad_to=m)`` gives a fixed width.

References: Pilanci & Ergen, ICML 2020, arXiv 2002.10553; Wang, Lacotte & Pilanci,
arXiv 2006.05900 (the maps, minimal networks, pruning).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._cones import project_onto_cone
from ._network import Network
from ._programs import cone_violation
from ._solution import RESULTS, ConvexSolution, status_name
from ._validation import check_int, check_key, check_network, check_patterns, check_scalar, check_X, is_concrete


def _check_solution(sol) -> None:
    if not isinstance(sol, ConvexSolution):
        raise TypeError(f"expected a ConvexSolution, got {type(sol).__name__}")
    if sol.U.ndim != 2 or sol.V.shape != sol.U.shape or sol.patterns.ndim != 2 or sol.patterns.shape[0] != sol.U.shape[0]:
        raise ValueError(
            "to_network/prune take one (unbatched) solution with U, V (p, d) and patterns (p, n); got "
            f"U {sol.U.shape}, V {sol.V.shape}, patterns {sol.patterns.shape}"
        )
    if not (np.all(np.isfinite(np.asarray(sol.U))) and np.all(np.isfinite(np.asarray(sol.V)))):
        raise ValueError("the solution's blocks U, V contain NaN or infinite entries")


def _check_status(sol: ConvexSolution, allow_inexact: bool, what: str) -> None:
    """Refuse a solution whose status is not optimal, unless ``allow_inexact``: its blocks are not
    a solution of the program (infeasible: a Farkas ray's by-products; else an unfinished iterate)."""
    if allow_inexact or not is_concrete(sol.status):
        return
    code = int(np.asarray(sol.status))
    if code == RESULTS.optimal:
        return
    name = status_name(code)
    raise ValueError(
        f"{what} of a solution with status {name!r}, not 'optimal' ({RESULTS(code).message}); "
        "pass allow_inexact=True to map its blocks anyway"
    )


def _check_tol(name, tol) -> float:
    return check_scalar(name, tol, lo=0.0, hi=1.0, lo_closed=True)


def to_network(
    sol: ConvexSolution, *, tol: float = 1e-9, pad_to: int | None = None, allow_inexact: bool = False
) -> Network:
    """ψ: the network of a convex solution, one neuron per nonzero block.

    Block ``u_j`` → neuron ``(u_j / √‖u_j‖, +√‖u_j‖)``, block ``v_j`` → ``(v_j / √‖v_j‖, -√‖v_j‖)``.
    The neurons are balanced and ``f(θ; X) = Σ_j D_j X (u_j - v_j)`` (since ``u_j, v_j ∈ K_j``),
    ``½‖θ‖² = Σ_j ‖u_j‖ + ‖v_j‖``. Applied to an optimal solution over all patterns it gives an
    optimal network of the non-convex problem.

    Host-side (the width depends on the data): not jittable.

    Args:
        sol: one :class:`ConvexSolution`.
        tol: blocks with norm ``≤ tol · max_k ‖block_k‖`` are treated as zero and dropped.
        pad_to: if given, append zero neurons up to exactly ``pad_to`` neurons (a fixed width).
        allow_inexact: map a solution whose status is not ``optimal`` (``max_iters``,
            ``inaccurate``, even ``infeasible``) too; by default that is an error, since its
            blocks are not an optimal solution and the network would not be optimal.

    Returns:
        A :class:`Network` with ``W1 (d, m)``: positive blocks first (in pattern order), then
        negative blocks, then padding.

    Raises:
        TypeError: ``sol`` is not a ConvexSolution.
        ValueError: a status other than optimal (without ``allow_inexact``), a batched solution,
            non-finite blocks, bad ``tol``, or ``pad_to`` smaller than the number of nonzero
            blocks.

    Example:
        >>> net = to_network(sol)
        >>> jnp.allclose(forward(net, X), convex_fit)
    """
    _check_solution(sol)
    _check_status(sol, allow_inexact, "to_network")
    tol = _check_tol("tol", tol)
    U, V = np.asarray(sol.U), np.asarray(sol.V)
    dtype = sol.U.dtype
    nu, nv = np.linalg.norm(U, axis=1), np.linalg.norm(V, axis=1)
    top = max(float(nu.max(initial=0.0)), float(nv.max(initial=0.0)))
    keep_u, keep_v = nu > tol * top, nv > tol * top
    if top == 0:
        keep_u[:] = False
        keep_v[:] = False
    cols = [U[keep_u] / np.sqrt(nu[keep_u])[:, None], V[keep_v] / np.sqrt(nv[keep_v])[:, None]]
    w2 = [np.sqrt(nu[keep_u]), -np.sqrt(nv[keep_v])]
    W1 = np.concatenate(cols, axis=0).T
    w2 = np.concatenate(w2)
    m = w2.shape[0]
    if pad_to is not None:
        if check_int("pad_to", pad_to) < m:
            raise ValueError(f"pad_to must be an int ≥ the {m} nonzero blocks (and > 0), got {pad_to!r}")
        pad_to = int(pad_to)
        W1 = np.concatenate([W1, np.zeros((W1.shape[0], pad_to - m))], axis=1)
        w2 = np.concatenate([w2, np.zeros(pad_to - m)])
    return Network(jnp.asarray(W1, dtype), jnp.asarray(w2, dtype))


def _solution(U, V, D, X, dtype, *, value=None, like: ConvexSolution | None = None) -> ConvexSolution:
    p, n = D.shape
    pen = float(np.linalg.norm(U, axis=1).sum() + np.linalg.norm(V, axis=1).sum())
    if like is None:
        return ConvexSolution(
            U=jnp.asarray(U, dtype),
            V=jnp.asarray(V, dtype),
            patterns=jnp.asarray(D),
            value=jnp.asarray(pen if value is None else value, dtype),
            dual=jnp.zeros((n,), dtype),
            cone_dual=jnp.zeros((2, p, n), dtype),
            gap=jnp.zeros((), dtype),
            residual=jnp.asarray(
                cone_violation(jnp.asarray(X, dtype), jnp.asarray(D), jnp.asarray(U, dtype), jnp.asarray(V, dtype)), dtype
            ),
            status=jnp.asarray(RESULTS.optimal, jnp.int32),
            iterations=jnp.zeros((), jnp.int32),
            beta=jnp.zeros((), dtype),
            program="max-margin",
        )
    return eqx.tree_at(lambda s: (s.U, s.V, s.value), like, (jnp.asarray(U, dtype), jnp.asarray(V, dtype), jnp.asarray(value, dtype)))


def to_convex(net: Network, X: Float[Array, "n d"], *, tol: float = 0.0) -> ConvexSolution:
    """φ: the convex blocks of a network, one per (activation pattern, sign of ``w2``).

    Neuron ``i`` has pattern ``D(w_i) = 1[X W1[:, i] ≥ 0]``; for each distinct pattern ``D_j`` of
    the live neurons, ``u_j = Σ_{i: D(w_i) = D_j, w2_i > 0} w2_i W1[:, i]`` and
    ``v_j = Σ_{i: D(w_i) = D_j, w2_i < 0} |w2_i| W1[:, i]``. Each ``u_j, v_j ∈ K_j`` (a cone is
    closed under sums), the fit ``Σ_j D_j X (u_j - v_j)`` equals ``f(θ; X)``, and
    ``Σ_j ‖u_j‖ + ‖v_j‖ ≤ Σ_i ‖W1[:, i]‖ |w2_i| ≤ ½‖θ‖²`` (equalities for a balanced network whose
    neurons in a group are aligned).

    Host-side (the number of patterns depends on the network): not jittable.

    Args:
        net: a :class:`Network`.
        X: data ``(n, d)``.
        tol: neurons with ``‖W1[:, i]‖ |w2_i| ≤ tol · max_k ‖W1[:, k]‖ |w2_k|`` are dropped.

    Returns:
        A :class:`ConvexSolution` with only the patterns it needs (``p ≥ 1``; a network with no
        live neuron gives one all-ones pattern with zero blocks). ``value`` is the convex
        objective ``Σ_j ‖u_j‖ + ‖v_j‖`` (no data term: ``y`` is not known here), ``status``
        optimal, ``dual``/``cone_dual``/``gap``/``iterations`` zero, ``residual`` the relative cone
        violation (zero up to rounding), ``program="max-margin"``.

    Raises:
        ValueError: on shape mismatches, NaN weights, blocks that overflow the float range, or a
            bad ``tol``.
    """
    X = check_X(X)
    check_network(net, X.shape[1])
    tol = _check_tol("tol", tol)
    dtype = X.dtype
    Xn = np.asarray(X)
    W1, w2 = np.asarray(net.W1, Xn.dtype), np.asarray(net.w2, Xn.dtype)
    if not (np.all(np.isfinite(W1)) and np.all(np.isfinite(w2))):
        raise ValueError("the network has NaN or infinite weights")
    size = np.linalg.norm(W1, axis=0) * np.abs(w2)
    if not np.all(np.isfinite(size)):
        raise ValueError(
            "the network's blocks |w2_i| W1[:, i] overflow the float range (weights too large): rescale "
            "it (the convex blocks of cθ are c² times those of θ)"
        )
    top = size.max(initial=0.0)
    alive = (size > tol * top) & (size > 0)
    n, d = Xn.shape
    if not alive.any():
        return _solution(np.zeros((1, d)), np.zeros((1, d)), np.ones((1, n), bool), Xn, dtype)
    pats = (Xn @ W1[:, alive]).T >= 0  # (m_alive, n)
    D, inv = np.unique(pats, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    U = np.zeros((D.shape[0], d))
    V = np.zeros((D.shape[0], d))
    for col, a, j in zip(W1[:, alive].T, w2[alive], inv):
        if a > 0:
            U[j] += a * col
        else:
            V[j] += -a * col
    return _solution(U, V, D, Xn, dtype)


def split(
    net: Network,
    *,
    weights: Float[Array, "... k"] | None = None,
    num: int | None = None,
    key: PRNGKeyArray | None = None,
) -> Network:
    """Split every neuron ``(w, a)`` into ``k`` neurons ``(√γ_l w, √γ_l a)``, ``Σ_l γ_l = 1``.

    The output ``Σ_l √γ_l a (√γ_l xᵀw)_+ = a (xᵀw)_+`` and the penalty
    ``Σ_l γ_l (‖w‖² + a²) = ‖w‖² + a²`` are unchanged (positive homogeneity of the ReLU).

    Either ``weights`` (``(k,)`` for all neurons, or ``(m, k)`` per neuron; positive, rows
    summing to 1) or ``num`` and ``key`` (per-neuron weights drawn from a flat Dirichlet).
    Pure JAX (jittable with ``num`` static).

    Args:
        net: the network, ``m`` neurons.
        weights: the fractions ``γ``.
        num: number of pieces per neuron (keyword-only int), with ``key``.
        key: PRNG key for random fractions.

    Returns:
        A network with ``m k`` neurons; neuron ``i``'s pieces are columns ``i k, …, i k + k - 1``.

    Raises:
        ValueError: neither or both of ``weights`` and ``num``, bad shapes, or weights that are
            not positive or do not sum to 1.
    """
    if net.W1.ndim != 2 or net.w2.ndim != 1 or net.W1.shape[1] != net.w2.shape[0]:
        raise ValueError(f"network must have W1 (d, m) and w2 (m,), got {net.W1.shape}, {net.w2.shape}")
    d, m = net.W1.shape
    dtype = net.W1.dtype
    if (weights is None) == (num is None):
        raise ValueError("pass exactly one of weights= or num= (with key=)")
    if num is not None:
        num = check_int("num", num)
        if key is None:
            raise ValueError("split(num=...) needs key= for the random fractions")
        key = check_key(key)
        E = jax.random.exponential(key, (m, num), dtype)  # E / ΣE is flat-Dirichlet distributed
        G = E / jnp.sum(E, axis=1, keepdims=True)
    else:
        G = jnp.asarray(weights)
        if not jnp.issubdtype(G.dtype, jnp.floating):
            G = G.astype(dtype)
        if G.ndim == 1:
            G = jnp.broadcast_to(G, (m, G.shape[0]))
        if G.ndim != 2 or G.shape[0] != m or G.shape[1] == 0:
            raise ValueError(f"weights must have shape (k,) or ({m}, k), got {jnp.shape(weights)}")
        G = G.astype(dtype)
        if is_concrete(G):
            Gn = np.asarray(G)
            if not np.all(Gn > 0):
                raise ValueError("split weights must be positive")
            if not np.allclose(Gn.sum(axis=1), 1.0, rtol=0, atol=10 * np.finfo(Gn.dtype).eps * Gn.shape[1]):
                raise ValueError("split weights must sum to 1 for every neuron")
    k = G.shape[1]
    r = jnp.sqrt(G)  # (m, k)
    W1 = (net.W1[:, :, None] * r[None, :, :]).reshape(d, m * k)
    w2 = (net.w2[:, None] * r).reshape(m * k)
    return Network(W1, w2)


@eqx.filter_jit
def _project_blocks(X, D, B):
    """Every block ``B[j]`` projected onto its pattern's cone ``K_j``."""
    return jax.vmap(lambda pat, b: project_onto_cone(X, pat, b))(D, B)


def _fits(X, D, blocks):
    """Columns ``s_k D_{j_k} ⊙ X b_k`` of the active blocks, ``(n, K)``."""
    return np.stack([s * (D[j] * (X @ b)) for j, s, b in blocks], axis=1)


def prune(
    sol: ConvexSolution,
    X: Float[Array, "n d"],
    *,
    tol: float = 1e-10,
    zero_tol: float = 0.0,
    cone_project: bool = True,
    allow_inexact: bool = False,
) -> ConvexSolution:
    """Carathéodory reduction: at most ``n`` active blocks, same fit, objective not increased.

    While the fits ``f_k = ±D_j X b_k`` of the active blocks ``b_k ∈ {u_j, v_j}`` (minus sign for
    ``v``) are linearly dependent, take a null vector ``t`` (``Σ_k t_k f_k = 0``) and rescale
    ``b_k ↦ (1 + s t_k) b_k``: the fit is unchanged, every block stays in its cone (a scaling by
    ``1 + s t_k ≥ 0``), and the penalty changes linearly, by ``s Σ_k t_k ‖b_k‖`` (computed in the
    unit-norm parametrization ``τ_k = t_k ‖b_k‖``, smallest blocks first). While more than
    ``n + 1`` blocks are active, ``t`` is an (exact) null vector of the ``(n+1) × (n+2)`` matrix of
    ``n + 2`` blocks' fits with their norms ``‖b_k‖`` appended, so the penalty is unchanged too.
    Below that, ``t`` is a null vector of the fits alone (exact for ``n + 1`` blocks; numerical
    dependence, smallest singular value ``≤ tol ×`` largest, otherwise) with its sign chosen so
    that the penalty change is ``≤ 0`` (at an optimum it is exactly 0, else moving the other way
    would improve). ``s = min_{t_k < 0} 1/|t_k|`` zeroes at least one block per step.
    Pilanci & Ergen 2020 (arXiv 2002.10553), Wang, Lacotte & Pilanci 2021 (arXiv 2006.05900).

    Host-side NumPy (float64): not jittable.

    Args:
        sol: one :class:`ConvexSolution` (any program).
        X: the data ``(n, d)`` it was solved on.
        tol: relative singular value threshold for numerical linear dependence.
        zero_tol: blocks with ``‖b‖ ≤ zero_tol · max_k ‖b_k‖`` are zeroed first.
        cone_project: first project every block that violates its cone onto it (solvers
            return blocks ~1e-10 outside; the fit moves by that much).
        allow_inexact: prune a solution whose status is not ``optimal`` too (by default an
            error: the reduction keeps the objective of an optimum, not of an unfinished iterate).

    Returns:
        The solution with the reduced ``U, V`` (same patterns, other fields kept) and ``value``
        updated: max-margin, the new ``Σ‖u_j‖ + ‖v_j‖``; regularized, ``value - rᵀΔf - β Δpenalty``
        with ``r = sol.dual = -∇_f ℓ`` (first order in the fit change ``Δf``, which comes only from
        the projection onto the cones and ``zero_tol``); at most
        ``min(n, rank)`` nonzero blocks, with linearly independent fits.

    Raises:
        TypeError: ``sol`` is not a ConvexSolution.
        ValueError: a status other than optimal (without ``allow_inexact``), shape mismatches
            between ``sol`` and ``X``, non-finite blocks, bad ``tol``.
    """
    _check_solution(sol)
    _check_status(sol, allow_inexact, "prune")
    X = check_X(X)
    tol = _check_tol("tol", tol)
    zero_tol = _check_tol("zero_tol", zero_tol)
    D = np.asarray(check_patterns(sol.patterns, X.shape[0], name="sol.patterns")).astype(np.float64)
    if sol.U.shape[1] != X.shape[1]:
        raise ValueError(f"solution blocks have d = {sol.U.shape[1]} but X has d = {X.shape[1]}")
    Xn = np.asarray(X, np.float64)
    U, V = np.array(sol.U, np.float64), np.array(sol.V, np.float64)
    pen0 = _penalty(U, V)
    fit0 = np.sum(D * ((U - V) @ Xn.T), axis=0)
    # Solver output violates the cones slightly (~1e-10 for interior-point methods); growing such
    # a block along a null vector would amplify the violation. Project every block onto its cone
    # first (exact active-set projection; a change of the size of the violation).
    if cone_project:
        _project_violating_blocks(Xn, D, U, V)
    if zero_tol > 0:
        top = max(np.linalg.norm(U, axis=1).max(), np.linalg.norm(V, axis=1).max())
        for B in (U, V):
            B[np.linalg.norm(B, axis=1) <= zero_tol * top] = 0.0
    _caratheodory_reduce(Xn, D, U, V, tol)
    pen = _penalty(U, V)
    if sol.program == "max-margin":
        value = float(np.asarray(sol.value)) - (pen0 - pen)
    else:
        # The fit moves only by the zeroed noise blocks; first-order loss change with r = -∇_f ℓ.
        df = np.sum(D * ((U - V) @ Xn.T), axis=0) - fit0
        r = np.asarray(sol.dual, np.float64)
        value = float(np.asarray(sol.value)) - float(r @ df) - float(np.asarray(sol.beta)) * (pen0 - pen)
    return _solution(U, V, np.asarray(sol.patterns), Xn, sol.U.dtype, value=value, like=sol)


def _penalty(U, V) -> float:
    """``Σ_j ‖u_j‖ + ‖v_j‖``."""
    return np.linalg.norm(U, axis=1).sum() + np.linalg.norm(V, axis=1).sum()


def _project_violating_blocks(Xn, D, U, V) -> None:
    """Replace, in place, every nonzero block of ``U`` and ``V`` outside its cone by its projection."""
    S = 2.0 * D - 1.0
    for B in (U, V):
        bad = np.flatnonzero(np.any(S * (B @ Xn.T) < 0, axis=1) & (np.linalg.norm(B, axis=1) > 0))
        if bad.size:  # all p blocks at once: one compilation per problem shape
            proj = np.asarray(_project_blocks(jnp.asarray(Xn), jnp.asarray(D > 0), jnp.asarray(B)))
            B[bad] = proj[bad]


def _active_blocks(U, V):
    """``(j, sign, kind)`` of every nonzero block: ``kind`` 0 for ``u_j`` (sign +1), 1 for ``v_j`` (-1)."""
    out = [(j, 1.0, 0) for j in np.flatnonzero(np.linalg.norm(U, axis=1) > 0)]
    return out + [(j, -1.0, 1) for j in np.flatnonzero(np.linalg.norm(V, axis=1) > 0)]


def _caratheodory_reduce(Xn, D, U, V, tol) -> None:
    """Zero blocks of ``U, V`` in place along null vectors of their fits (see :func:`prune`)."""
    n = Xn.shape[0]
    blocks = (U, V)
    for _ in range(U.shape[0] + V.shape[0] + 1):
        act = _active_blocks(U, V)
        if not act:
            break
        # Smallest blocks first: the moves that zero them are the shortest.
        act.sort(key=lambda e: np.linalg.norm(blocks[e[2]][e[0]]))
        sub = act[: n + 2] if len(act) > n + 1 else act
        a = np.array([np.linalg.norm(blocks[kd][j]) for j, _, kd in sub])
        # Unit-norm fits: the move is b_k ↦ b_k + s τ_k b_k/‖b_k‖ (penalty change s Σ τ_k).
        F = _fits(Xn, D, [(j, sg, blocks[kd][j]) for j, sg, kd in sub]) / a[None, :]
        tau = _penalty_neutral_null_vector(F, len(act), n, tol)
        if tau is None:
            break
        _move_along(blocks, sub, tau, a)


def _penalty_neutral_null_vector(F, K, n, tol):
    """A null vector ``τ`` of the unit-norm fits ``F`` with ``Σ τ_k ≤ 0``, or ``None``.

    With ``K > n + 1`` active blocks, a null vector of ``[F; 1ᵀ]`` keeps the fit and the penalty
    exactly; with ``K = n + 1`` an exact null vector of ``F``; below that the right singular
    vector of the smallest singular value, when it is ``≤ tol ×`` the largest (else ``None``).
    """
    eps = np.finfo(np.float64).eps
    if K > n + 1:
        tau = np.linalg.svd(np.vstack([F, np.ones((1, F.shape[1]))]), full_matrices=True)[2][-1]
    elif K == n + 1:
        tau = np.linalg.svd(F, full_matrices=True)[2][-1]  # exact null vector of n × (n+1)
    else:
        sv, vt = np.linalg.svd(F, full_matrices=False)[1:]
        if sv[0] == 0 or sv[-1] > tol * sv[0]:
            return None
        tau = vt[-1]
    c = float(tau.sum())
    if c > 0 or (abs(c) <= 1e3 * eps * np.abs(tau).sum() and not np.any(tau < 0)):
        tau = -tau
    return tau


def _move_along(blocks, sub, tau, a) -> None:
    """``b_k ↦ (1 + s τ_k/‖b_k‖) b_k`` in place, ``s = min_{τ_k < 0} ‖b_k‖/|τ_k|``: zeroes a block."""
    eps = np.finfo(np.float64).eps
    neg = tau < 0
    ratios = np.where(neg, a / np.where(neg, -tau, 1.0), np.inf)
    step = ratios.min()
    for (j, _, kd), tk, ak, rk in zip(sub, tau, a, ratios):
        blocks[kd][j] *= 0.0 if rk <= step * (1 + 1e3 * eps) else 1.0 + step * tk / ak


def _neuron_table(net: Network, X, tol):
    Xn = np.asarray(X, np.float64)
    W1, w2 = np.asarray(net.W1, np.float64), np.asarray(net.w2, np.float64)
    H = np.maximum(Xn @ W1, 0.0)  # (n, m) fits (X w_i)_+
    size = np.linalg.norm(H, axis=0) * np.abs(w2)
    alive = size > tol * max(size.max(initial=0.0), np.finfo(np.float64).tiny)
    keys = [(tuple((Xn @ W1[:, i] >= 0).tolist()), bool(w2[i] > 0)) for i in range(W1.shape[1])]
    return H, alive, keys


def is_nearly_minimal(net: Network, X: Float[Array, "n d"], *, tol: float = 1e-9) -> bool:
    """Whether every neuron is alive and no two neurons share (pattern on ``X``, sign of ``w2``).

    Definition used here (after Wang, Lacotte & Pilanci, arXiv 2006.05900, §4): a neuron is alive
    when its contribution ``w2_i (X w_i)_+`` is nonzero (``‖(X w_i)_+‖ |w2_i| > tol ×`` the
    largest); the network is *nearly minimal* when all neurons are alive and the pairs
    ``(D(w_i), sign w2_i)`` are distinct, i.e. φ (:func:`to_convex`) maps neurons one-to-one to
    nonzero blocks, so no two neurons can be merged into one. Host-side.

    Raises:
        ValueError: on shape mismatches or a bad ``tol``.
    """
    X = check_X(X)
    check_network(net, X.shape[1])
    tol = _check_tol("tol", tol)
    _, alive, keys = _neuron_table(net, X, tol)
    return bool(alive.all()) and len(set(keys)) == len(keys)


def is_minimal(net: Network, X: Float[Array, "n d"], *, tol: float = 1e-9) -> bool:
    """Whether the network is nearly minimal and its neurons' fits are linearly independent.

    Definition used here (after Wang, Lacotte & Pilanci, arXiv 2006.05900, §4, and the pruning
    argument of Pilanci & Ergen 2020): nearly minimal (:func:`is_nearly_minimal`) and the fits
    ``(X w_i)_+ ∈ R^n`` have full column rank ``m`` (smallest singular value ``> tol ×`` largest).
    Then no neuron can be removed by the Carathéodory move of :func:`prune` without changing
    the output, and ``m ≤ n``. ψ (:func:`to_network`) of a pruned solution is minimal. Host-side.

    Raises:
        ValueError: on shape mismatches or a bad ``tol``.
    """
    X = check_X(X)
    check_network(net, X.shape[1])
    tol = _check_tol("tol", tol)
    H, alive, keys = _neuron_table(net, X, tol)
    if not (alive.all() and len(set(keys)) == len(keys)):
        return False
    if H.shape[1] > H.shape[0]:
        return False
    sv = np.linalg.svd(H, compute_uv=False)
    return bool(sv[-1] > tol * sv[0])
