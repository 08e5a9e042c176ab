"""Activation patterns ``D = 1[X g ≥ 0]`` of a ReLU neuron on the data, sampled or enumerated.

The convex reformulations (Pilanci & Ergen 2020, arXiv 2002.10553; Wang & Pilanci 2021,
arXiv 2110.06488) have one block of variables per pattern ``D_j = 1[X g_j ≥ 0] ∈ {0, 1}^n``.
The patterns are the cells of the central hyperplane arrangement ``{g : x_iᵀ g = 0}``; for ``n``
points in general position in rank ``r`` there are exactly ``2 Σ_{k<r} C(n-1, k)`` of them (Cover
1965), at most ``2r (e(n-1)/r)^r``.

* :func:`sample_patterns` draws Gaussian gates in chunks (one jitted function reused for every
  chunk) and keeps the distinct patterns, deduplicated on the host by their packed bits.
* :func:`enumerate_patterns` lists every pattern exactly from the extreme rays of the cells.
* :func:`merge_patterns` is the distinct union of pattern sets (sampled, enumerated, a trained
  network's own).
"""

from __future__ import annotations

import itertools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._validation import check_X

_CHUNK_ELEMENTS = 2**23  # default chunk: about 2^23 entries of X g (64 MiB of float64)
_WORK_FACTOR = 100  # enumeration refuses more than this many candidates per allowed pattern


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------- counts


def pattern_count(n: int, r: int) -> int:
    """Number of activation patterns of ``n`` points in general position in rank ``r`` (Cover).

    ``|{1[X g ≥ 0] : g}| = 2 Σ_{k=0}^{r-1} C(n-1, k)``: the number of cells of a central
    arrangement of ``n`` hyperplanes in general position in ``R^r``. Degenerate data has fewer.

    Args:
        n: number of (nonzero) samples, a positive int.
        r: rank of the data, a positive int (``r ≥ n`` gives ``2^n``, every pattern).

    Returns:
        The exact count, a Python int.

    Raises:
        TypeError, ValueError: ``n`` or ``r`` not a positive int.

    Reference: T. Cover, "Geometrical and statistical properties of systems of linear
    inequalities", IEEE Trans. Electronic Computers, 1965.
    """
    n = _positive_int("n", n)
    r = _positive_int("r", r)
    return 2 * sum(math.comb(n - 1, k) for k in range(min(r, n)))


def pattern_bound(n: int, r: int) -> float:
    """Upper bound ``2r (e(n-1)/r)^r`` on the number of patterns (Pilanci & Ergen 2020, §2).

    Valid (``≥`` :func:`pattern_count`) for ``n ≥ 2`` and ``1 ≤ r ≤ n``; for ``n = 1`` the formula
    is ``0`` while there are 2 patterns.

    Args:
        n: number of samples, a positive int.
        r: rank of the data, a positive int.

    Returns:
        The bound as a Python float (``inf`` on overflow).
    """
    n = _positive_int("n", n)
    r = _positive_int("r", r)
    try:
        return float(2 * r * (math.e * (n - 1) / r) ** r)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------------- sampling

def _gate_chunk(X: Float[Array, "n d"], keys) -> tuple[Array, Float[Array, "c d"]]:
    """Gates ``g = normal(key)`` for a chunk of keys, and their packed patterns ``1[X g ≥ 0]``.

    Returns ``(bits, G)``: ``bits`` is ``(c, ceil(n/8))`` uint8 (``np.packbits`` order) and ``G``
    the ``(c, d)`` gates. One gate per key (``jax.vmap``), so gate ``j`` does not depend on how
    the keys are chunked.
    """
    d = X.shape[1]
    G = jax.vmap(lambda k: jax.random.normal(k, (d,), X.dtype))(keys)
    D = (G @ X.T) >= 0  # (c, n)
    return jnp.packbits(D, axis=1), G


@jax.jit
@eqx.debug.assert_max_traces(max_traces=None)  # counts traces: one per call of sample_patterns
def _gate_chunk_jit(X: Float[Array, "n d"], keys) -> tuple[Array, Float[Array, "c d"]]:
    """:func:`_gate_chunk`, jitted; its traces are counted (``eqx.debug.get_num_traces``)."""
    return _gate_chunk(X, keys)


def _pack_rows_to_keys(bits: np.ndarray) -> np.ndarray:
    """A 1-D view of packed rows that ``np.unique`` can sort (uint64 when a row fits 8 bytes)."""
    bits = np.ascontiguousarray(bits)
    nb = bits.shape[1]
    if nb <= 8:
        padded = np.zeros((bits.shape[0], 8), np.uint8)
        padded[:, :nb] = bits
        return padded.view(">u8").ravel()
    return bits.view(np.dtype((np.void, nb))).ravel()


def sample_patterns(
    X: Float[Array, "n d"],
    *,
    num: int,
    key: PRNGKeyArray,
    chunk_size: int | None = None,
    return_gates: bool = False,
) -> Bool[Array, "p n"] | tuple[Bool[Array, "p n"], Float[Array, "p d"]]:
    """Distinct activation patterns ``D_j = 1[X g_j ≥ 0]`` of ``num`` Gaussian gates ``g_j``.

    The keys ``jax.random.split(key, num)`` give one gate each, ``g_j ~ N(0, I_d)`` (``jax.vmap``
    over the keys), so the result depends on ``key`` and ``num`` only, not on ``chunk_size``.
    Gates are processed ``chunk_size`` at a time by one jitted function (traced once per call:
    the last chunk is padded), which computes ``X g``, compares and packs the bits; the host then
    deduplicates the packed rows by hashing them. At most one ``(chunk_size, n)`` block exists at
    a time, so ``num = 10^6`` gates on ``n = 10^4`` samples fit in memory (the output itself is
    ``(p, n)``). Patterns are returned in first-seen order of their gates.

    Args:
        X: data, shape ``(n, d)``, floating, finite.
        num: number of gates to draw, a positive int.
        key: a JAX PRNG key.
        chunk_size: gates per chunk; default ``≈ 2^23 / n`` (capped by ``num``).
        return_gates: also return one gate per pattern (the first that produced it).

    Returns:
        ``D``, bool ``(p, n)`` with ``p ≤ num`` distinct rows; with ``return_gates=True`` the pair
        ``(D, G)`` where ``G`` is ``(p, d)`` in ``X``'s dtype and ``D[j] = 1[X G[j] ≥ 0]``.

    Raises:
        TypeError, ValueError: bad ``X`` (see ``check_X``), ``num`` or ``chunk_size`` not a
            positive int.

    Reference: Pilanci & Ergen, ICML 2020 (arXiv 2002.10553), sampled patterns; Mishkin, Sahiner
    & Pilanci, ICML 2022 (scnn).

    Example:
        >>> X = jax.random.normal(jax.random.key(0), (100, 5))
        >>> D = sample_patterns(X, num=1000, key=jax.random.key(1))   # bool (p, 100)
    """
    X = check_X(X)
    num = _positive_int("num", num)
    n, d = X.shape
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // n)
    chunk_size = min(_positive_int("chunk_size", chunk_size), num)
    if not isinstance(return_gates, bool):
        raise TypeError(f"return_gates must be a bool, got {return_gates!r}")

    keys = jax.random.split(key, num)
    seen: dict[bytes, None] = {}  # insertion-ordered: first-seen order of the patterns
    gate_rows: list[np.ndarray] = []
    traces_before = eqx.debug.get_num_traces(_gate_chunk_jit)
    for start in range(0, num, chunk_size):
        valid = min(chunk_size, num - start)
        idx = np.minimum(np.arange(start, start + chunk_size), num - 1)  # pad the last chunk
        bits, G = _gate_chunk_jit(X, keys[idx])
        bits = np.asarray(bits)[:valid]
        rows = _pack_rows_to_keys(bits)
        _, first = np.unique(rows, return_index=True)  # distinct within the chunk
        first.sort()  # first-seen order
        keep = []
        for i in first:
            b = bits[i].tobytes()
            if b not in seen:
                seen[b] = None
                keep.append(i)
        if return_gates and keep:
            gate_rows.append(np.asarray(G)[np.asarray(keep)])
    if eqx.debug.get_num_traces(_gate_chunk_jit) - traces_before > 1:  # pragma: no cover - a guard, not a code path
        raise RuntimeError("sample_patterns retraced its chunk function; chunk shapes changed")

    nb = (n + 7) // 8
    packed = np.frombuffer(b"".join(seen), dtype=np.uint8).reshape(len(seen), nb)
    D = jnp.asarray(np.unpackbits(packed, axis=1, count=n).view(bool))
    if return_gates:
        return D, jnp.asarray(np.concatenate(gate_rows, axis=0), dtype=X.dtype)
    return D


# ------------------------------------------------------------------------------ enumeration


def _ray_signs(Z: Float[Array, "q r"], S) -> tuple[Array, Array, Array]:
    """For each ``(r-1)``-subset ``S`` of rows: the ray ``g ⟂ Z_S`` and the signs of ``Z g``.

    Returns ``(ok, signs, g)``: ``ok`` is False when ``Z_S`` has rank ``< r-1`` (no ray);
    ``signs`` is int8 ``(b, q)`` in {-1, 0, +1}, zero on ``S`` and wherever ``|z_iᵀ g|`` is below
    the tolerance ``eps^{3/4}`` (rows of ``Z`` have unit norm, ``‖g‖ = 1``).
    """
    eps = jnp.finfo(Z.dtype).eps
    tol_zero = eps**0.75
    tol_rank = eps**0.5

    def one(s):
        _, sv, Vt = jnp.linalg.svd(Z[s], full_matrices=True)
        g = Vt[-1]
        ok = sv[-1] > tol_rank * sv[0]
        v = Z @ g
        sign = jnp.where(jnp.abs(v) <= tol_zero, 0, jnp.where(v > 0, 1, -1)).astype(jnp.int8)
        return ok, sign.at[s].set(0), g

    return jax.vmap(one)(S)


_ray_signs_jit = jax.jit(_ray_signs)


def _unique_bool_rows(D: np.ndarray) -> np.ndarray:
    """Distinct rows of a bool ``(k, q)`` array, sorted by their packed bits."""
    if D.shape[0] == 0:
        return D
    bits = np.packbits(D, axis=1)
    _, first = np.unique(_pack_rows_to_keys(bits), return_index=True)
    return D[first]


def _expand(base: np.ndarray, S: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Every sign choice on ``S`` around each ray: ``(b, q)`` bases → ``(b * 2^{r-1}, q)``."""
    b, q = base.shape
    c = choices.shape[0]
    D = np.repeat(base[:, None, :], c, axis=1)  # (b, c, q)
    rows = np.arange(b)[:, None, None]
    cols = np.arange(c)[None, :, None]
    D[rows, cols, S[:, None, :]] = choices[None, :, :]
    return D.reshape(b * c, q)


def _cells(Z: np.ndarray, batch: int) -> np.ndarray:
    """Sign patterns ``1[Z g > 0]`` of every open cell of the arrangement ``{g: z_iᵀ g = 0}``.

    ``Z`` is ``(q, r)`` with unit-norm rows and rank ``r``. Every cell is a pointed cone whose
    extreme rays are ``±g`` with ``g`` spanning the null space of some ``Z_S``, ``|S| = r - 1``.
    When the only rows orthogonal to ``g`` are ``S`` (general position) the cells at the ray are
    all ``2^{r-1}`` sign choices on ``S``; otherwise (rows ``Z0 ⊋ S`` orthogonal to ``g``) they are
    the cells of the rank ``r-1`` arrangement of ``Z0`` inside ``g^⊥``, found recursively.
    """
    q, r = Z.shape
    if r == 1:
        s = Z[:, 0] > 0
        return _unique_bool_rows(np.stack([s, ~s]))
    choices = np.array(list(itertools.product([False, True], repeat=r - 1)), dtype=bool)
    num_subsets = math.comb(q, r - 1)
    batch = max(1, min(batch, num_subsets))
    # host expansion in sub-batches of about 2^22 pattern entries
    sub = max(1, 2**22 // (2 * choices.shape[0] * q))
    Zj = jnp.asarray(Z)
    found: list[np.ndarray] = []
    pending, merge_at = 0, 2**21
    degenerate: list[tuple[np.ndarray, np.ndarray]] = []
    combos = itertools.combinations(range(q), r - 1)
    for _ in range(0, num_subsets, batch):
        S = np.array(list(itertools.islice(combos, batch)), dtype=np.int32).reshape(-1, r - 1)
        valid = S.shape[0]
        if valid < batch:  # pad the last batch to keep one trace
            S = np.concatenate([S, np.repeat(S[:1], batch - valid, axis=0)])
        ok, signs, g = _ray_signs_jit(Zj, jnp.asarray(S))
        ok = np.asarray(ok)[:valid]
        signs = np.asarray(signs)[:valid][ok]
        g = np.asarray(g)[:valid][ok]
        S = S[:valid][ok]
        general = np.sum(signs == 0, axis=1) == r - 1
        for sgn in (1, -1):  # the rays +g and -g
            base = (sgn * signs[general]) > 0
            Sg = S[general]
            for lo in range(0, base.shape[0], sub):
                found.append(_unique_bool_rows(_expand(base[lo : lo + sub], Sg[lo : lo + sub], choices)))
                pending += found[-1].shape[0]
            if np.any(~general):
                degenerate.append((sgn * signs[~general], sgn * g[~general]))
        if pending > merge_at:  # merge so memory stays near the number of distinct cells
            found = [_unique_bool_rows(np.concatenate(found))]
            pending = found[0].shape[0]
            merge_at = max(merge_at, 2 * pending)
    if degenerate:
        sg = np.concatenate([s for s, _ in degenerate])
        gg = np.concatenate([g for _, g in degenerate])
        _, first = np.unique(sg, axis=0, return_index=True)  # one recursion per distinct ray
        for i in first:
            zero = np.flatnonzero(sg[i] == 0)
            basis = np.linalg.svd(gg[i][None, :], full_matrices=True)[2][1:]  # (r-1, r) ⟂ g
            Zsub = Z[zero] @ basis.T
            Zsub /= np.linalg.norm(Zsub, axis=1, keepdims=True)
            subcells = _cells(Zsub, batch)
            D = np.repeat((sg[i] > 0)[None, :], subcells.shape[0], axis=0)
            D[:, zero] = subcells
            found.append(D)
    return _unique_bool_rows(np.concatenate(found))


def _numerical_rank(A: np.ndarray) -> int:
    if A.shape[0] == 0:
        return 0
    sv = np.linalg.svd(A, compute_uv=False)
    eps = np.finfo(A.dtype).eps
    return int(np.sum(sv > max(A.shape) * eps * sv[0])) if sv[0] > 0 else 0


def enumerate_patterns(
    X: Float[Array, "n d"],
    *,
    max_patterns: int = 10**6,
    batch_size: int = 4096,
) -> Bool[Array, "p n"]:
    """Every activation pattern ``{1[X g ≥ 0] : g ∈ R^d}`` of the data, exactly.

    Works in the row space of ``X`` (rank ``r``, coordinates ``Z = X V_r``, rows normalized):
    each cell of the central arrangement ``{g : x_iᵀ g = 0}`` is a pointed cone whose extreme
    rays are ``±g`` with ``g`` spanning the null space of ``r - 1`` rows ``X_S``. For every such
    subset (``jax.vmap`` over batches of subsets), the cells touching ``±g`` are the ``2^{r-1}``
    sign choices on ``S`` with every other sample's sign fixed by ``sign(x_iᵀ g)``; the union,
    deduplicated, is every pattern. For points in general position the count is Cover's
    ``2 Σ_{k<r} C(n-1, k)`` (:func:`pattern_count`).

    Patterns are those of the open cells (the patterns of almost every gate). Degenerate data is
    handled exactly: a zero row ``x_i = 0`` is active in every pattern (``0 ≥ 0``); repeated,
    antipodal or otherwise dependent rows (more than ``r - 1`` samples orthogonal to a ray) are
    resolved by enumerating the sub-arrangement at that ray recursively. Sign decisions use a
    relative tolerance ``eps^{3/4}`` of ``X``'s dtype (rows with ``|x_iᵀ g| ≤ eps^{3/4} ‖x_i‖`` count
    as on the hyperplane), so near-ties closer than that are treated as exact ties. ``r = 1``
    gives the two patterns ``1[x_i g ≥ 0]``, ``g = ±1``.

    Args:
        X: data ``(n, d)``, floating, finite.
        max_patterns: refuse (before enumerating) when Cover's count for the data's size and rank
            exceeds this, or the candidate work ``2 C(n, r-1) 2^{r-1}`` exceeds 100 times it.
        batch_size: subsets per vectorized batch.

    Returns:
        bool ``(p, n)``: the distinct patterns, sorted by their packed bits.

    Raises:
        TypeError, ValueError: bad ``X``; ``max_patterns``/``batch_size`` not positive ints;
            the enumeration too large (the message names the count).

    Reference: Pilanci & Ergen, ICML 2020 (arXiv 2002.10553), §2; Cover 1965.

    Example:
        >>> X = jax.random.normal(jax.random.key(0), (20, 3))
        >>> enumerate_patterns(X).shape       # (2 Σ_{k<3} C(19, k), 20) = (382, 20)
        (382, 20)
    """
    X = check_X(X)
    max_patterns = _positive_int("max_patterns", max_patterns)
    batch_size = _positive_int("batch_size", batch_size)
    n, d = X.shape
    Xh = np.asarray(X)
    top = float(np.max(np.abs(Xh))) if Xh.size else 0.0
    if top > 0:  # patterns are invariant to scale: norms of data at 1e±300 would overflow or vanish
        Xh = Xh / top
    norms = np.linalg.norm(Xh, axis=1)
    zero = norms <= np.finfo(Xh.dtype).eps * max(float(norms.max()), np.finfo(Xh.dtype).tiny) * d
    q = int(np.sum(~zero))
    if q == 0:  # every sample is zero: the single pattern "all active"
        return jnp.ones((1, n), dtype=bool)

    def too_big(r: int) -> str | None:
        count = pattern_count(q, r)
        if count > max_patterns:
            return f"{count} patterns (Cover's count for {q} nonzero samples in rank {r})"
        work = 2 * math.comb(q, r - 1) * 2 ** (r - 1)
        if work > _WORK_FACTOR * max_patterns:
            return f"{work} candidate patterns ({2 * math.comb(q, r - 1)} rays × {2 ** (r - 1)})"
        return None

    Xnz = Xh[~zero] / norms[~zero, None]
    r_max = min(q, d)
    if too_big(r_max) is not None:
        # fast refusal: the smallest rank that is too big, checked on a few rows only
        r_need = next(r for r in range(1, r_max + 1) if too_big(r) is not None)
        if _numerical_rank(Xnz[: min(q, 4 * r_need)]) >= r_need:
            raise ValueError(
                f"enumerate_patterns would produce {too_big(r_need)} at least, above "
                f"max_patterns={max_patterns}; use sample_patterns or raise max_patterns"
            )
    _, sv, Vt = np.linalg.svd(Xnz, full_matrices=False)
    r = _numerical_rank(Xnz)
    msg = too_big(r)
    if msg is not None:
        raise ValueError(
            f"enumerate_patterns would produce {msg}, above max_patterns={max_patterns}; "
            "use sample_patterns or raise max_patterns"
        )
    Z = Xnz @ Vt[:r].T
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    cells = _cells(Z, batch_size)
    D = np.ones((cells.shape[0], n), dtype=bool)
    D[:, ~zero] = cells
    return jnp.asarray(_unique_bool_rows(D))


# ---------------------------------------------------------------------------------- merging


def merge_patterns(*Ds: Bool[Array, "p_i n"]) -> Bool[Array, "p n"]:
    """Distinct union of pattern sets: every row of ``D_1, …, D_k``, each once.

    ``{D_j} = ⋃_i {rows of D_i}``, in first-seen order: the rows of ``D_1`` in their order
    (duplicates dropped), then the rows of ``D_2`` not seen before, and so on. The order is
    deterministic, and when ``D_1`` is already distinct it is a prefix of the result (block ``j``
    of a solution over ``D_1`` is block ``j`` over the union). Rows are compared by their packed
    bits on the host. A typical use: sampled (or enumerated) patterns plus the patterns of
    trained neurons (:func:`convexrelu.neuron_patterns`) or of a teacher network, so that the
    convex program over the union contains the trained network's blocks (Wang & Pilanci 2021,
    arXiv 2110.06488).

    Args:
        *Ds: one or more boolean arrays ``(p_i, n)`` with the same ``n`` (``p_i = 0`` allowed).

    Returns:
        bool ``(p, n)``, ``p ≤ Σ p_i``, with distinct rows.

    Raises:
        ValueError: no argument, an array that is not 2-D, or different ``n``.
        TypeError: an array that is not boolean.

    Example:
        >>> D1 = jnp.asarray([[True, False], [False, True]])
        >>> D2 = jnp.asarray([[False, True], [True, True]])
        >>> merge_patterns(D1, D2).astype(int).tolist()
        [[1, 0], [0, 1], [1, 1]]
    """
    if not Ds:
        raise ValueError("merge_patterns needs at least one pattern array")
    blocks = [np.asarray(D) for D in Ds]
    for i, D in enumerate(blocks):
        if D.ndim != 2:
            raise ValueError(f"merge_patterns: argument {i} must be 2-D (p, n), got shape {D.shape}")
        if D.dtype != np.bool_:
            raise TypeError(f"merge_patterns: argument {i} must be boolean, got dtype {D.dtype}")
    widths = sorted({D.shape[1] for D in blocks})
    if len(widths) > 1:
        shapes = ", ".join(str(D.shape) for D in blocks)
        raise ValueError(f"merge_patterns: the arrays have different numbers of samples n: {shapes}")
    allD = np.concatenate(blocks, axis=0)
    if allD.shape[0] == 0:
        return jnp.asarray(allD)
    _, first = np.unique(_pack_rows_to_keys(np.packbits(allD, axis=1)), return_index=True)
    return jnp.asarray(allD[np.sort(first)])
