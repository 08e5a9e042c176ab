"""Datasets: synthetic (orthogonally separable, ReLU teacher, 2-D pictures) and real.

* :func:`orthogonally_separable`, :func:`is_orthogonally_separable`: the data of Wang & Pilanci
  (arXiv 2110.06488, §5), on which gradient descent provably reaches the convex max margin.
* :func:`teacher`: Gaussian inputs labelled by a random two-layer ReLU teacher; the teacher's
  gates give patterns on which the convex max-margin program is feasible.
* :func:`two_d`: small 2-D datasets for pictures.
* :func:`load` (scikit-learn's bundled datasets, standardized, binary) and :func:`load_file`
  (the user's ``.npz`` or ``.csv``).

Every function returns labels ``y ∈ {-1, +1}`` in ``X``'s floating dtype. Synthetic data are
sampled on the host by a NumPy generator seeded from the JAX ``key`` (so the same key gives the
same data with or without x64). scikit-learn is
imported only inside :func:`load` (``pip install convexrelu[datasets]``).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ._validation import check_dtype, check_int, check_key, check_scalar, check_Xy

__all__ = [
    "DATASETS",
    "TeacherData",
    "is_orthogonally_separable",
    "load",
    "load_file",
    "orthogonally_separable",
    "teacher",
    "two_d",
]

DATASETS = ("breast_cancer", "iris", "wine", "digits")
TWO_D_KINDS = ("orthogonal", "teacher", "xor")
_MAX_TRIES = 100


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    return check_int(name, value, minimum=minimum)


def _resolve_dtype(dtype):
    """``dtype`` (float32 or float64), or JAX's default float dtype when it is ``None``."""
    return check_dtype(dtype)


# ------------------------------------------------------------------ orthogonally separable


def is_orthogonally_separable(X: Float[Array, "n d"], y: Float[Array, " n"]) -> bool:
    """Whether ``x_iᵀ x_k > 0`` when ``y_i = y_k`` and ``x_iᵀ x_k ≤ 0`` when ``y_i ≠ y_k``.

    The pairs include ``i = k``, so a zero sample makes the data not orthogonally separable.

    Args:
        X: data ``(n, d)``.
        y: labels ``(n,)`` in {-1, +1}.

    Returns:
        A Python bool.

    Raises:
        TypeError, ValueError: bad ``X`` or ``y`` (shapes, NaN, labels not ±1).

    Reference: Wang & Pilanci, "The Convex Geometry of Backpropagation", arXiv 2110.06488, §5.
    """
    X, y = check_Xy(X, y)
    gram = X @ X.T
    same = y[:, None] == y[None, :]
    return bool(jnp.all(jnp.where(same, gram > 0, gram <= 0)))


def _rng(key: PRNGKeyArray) -> np.random.Generator:
    """A NumPy generator seeded by 128 bits of the JAX key (data are sampled on the host, once)."""
    return np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))


def _cone_points(rng: np.random.Generator, center: np.ndarray, count: int, spread: float) -> np.ndarray:
    """``count`` points at angle ≤ ``spread`` from the unit vector ``center``, radii in [0.5, 1.5]."""
    d = center.shape[0]
    if d == 1:
        directions = np.repeat(center[None, :], count, axis=0)
    else:
        v = rng.standard_normal((count, d))
        v -= (v @ center)[:, None] * center[None, :]  # orthogonal to the centre
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        phi = spread * rng.uniform(size=count)
        directions = np.cos(phi)[:, None] * center[None, :] + np.sin(phi)[:, None] * v
    radii = rng.uniform(0.5, 1.5, size=count)
    return radii[:, None] * directions


def orthogonally_separable(
    n: int,
    d: int,
    *,
    key: PRNGKeyArray,
    angle: float = 2 * math.pi / 3,
    spread: float = math.pi / 18,
    min_gap: float = 0.05,
    dtype=None,
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """Orthogonally separable data: ``x_iᵀx_k > 0`` if ``y_i = y_k``, ``≤ 0`` otherwise.

    Each class lives in a circular cone: class ``+1`` around a random unit direction ``a``, class
    ``-1`` around ``b`` with ``∠(a, b) = angle``; a sample is at angle ``φ ~ U[0, spread]`` from
    its centre in a random direction, with radius ``U[0.5, 1.5]``. Same-class angles are at most
    ``2·spread < π/2`` and cross-class angles at least ``angle - 2·spread > π/2``, so the data is
    orthogonally separable with a gap: the normalized inner products satisfy
    ``cos ∠(x_i, x_k) ≥ min_gap`` (same class) and ``≤ -min_gap`` (different), verified, with
    resampling. The points are in general position (full-dimensional cones), so gradient descent
    training is free of ties. Both classes have at least one sample.

    Args:
        n: number of samples, ``n ≥ 2``.
        d: dimension, ``d ≥ 1`` (for ``d = 1`` the cones are the two half-lines).
        key: a JAX PRNG key.
        angle: angle between the class centres, in radians, in ``(π/2, π]``.
        spread: angular radius of each cone, in radians, ``< π/4`` and ``< (angle - π/2)/2``.
        min_gap: required ``|cos|`` margin of the separability, in ``[0, 1)``.
        dtype: float dtype of ``X`` and ``y`` (default: JAX's default float).

    Returns:
        ``(X, y)``: ``X (n, d)``, ``y (n,)`` in {-1, +1}.

    Raises:
        TypeError, ValueError: bad sizes or geometry parameters; no valid sample after 100 tries.

    Reference: Wang & Pilanci, arXiv 2110.06488, §5 (orthogonal separability).

    Example:
        >>> X, y = orthogonally_separable(40, 5, key=jax.random.key(0))
        >>> is_orthogonally_separable(X, y)
        True
    """
    n = _positive_int("n", n, 2)
    d = _positive_int("d", d, 1)
    angle = check_scalar("angle", angle, lo=math.pi / 2, hi=math.pi, hi_closed=True)
    spread = check_scalar("spread", spread)
    min_gap = check_scalar("min_gap", min_gap)
    if not 0 <= spread < min(math.pi / 4, (angle - math.pi / 2) / 2):
        raise ValueError(
            f"spread must be in [0, min(π/4, (angle - π/2)/2)) = [0, "
            f"{min(math.pi / 4, (angle - math.pi / 2) / 2):.4g}), got {spread!r}"
        )
    if not 0 <= min_gap < 1:
        raise ValueError(f"min_gap must be in [0, 1), got {min_gap!r}")
    dtype = _resolve_dtype(dtype)
    key = check_key(key)
    if d == 1:
        # the two half-lines; the gap is |cos| = 1
        angle = math.pi
    rng = _rng(key)
    for _ in range(_MAX_TRIES):
        if d == 1:
            a = np.array([1.0])
            b = np.array([-1.0])
        else:
            a = rng.standard_normal(d)
            a /= np.linalg.norm(a)
            w = rng.standard_normal(d)
            w -= (w @ a) * a
            w /= np.linalg.norm(w)
            b = math.cos(angle) * a + math.sin(angle) * w
        labels = np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0)
        if np.all(labels == labels[0]):
            continue
        n_pos = int(np.sum(labels > 0))
        X = np.empty((n, d))
        X[labels > 0] = _cone_points(rng, a, n_pos, spread)
        X[labels < 0] = _cone_points(rng, b, n - n_pos, spread)
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        cos = U @ U.T
        same = labels[:, None] == labels[None, :]
        if np.all(np.where(same, cos >= min_gap, cos <= -min_gap)):
            X_out = jnp.asarray(X, dtype=dtype)
            y_out = jnp.asarray(labels, dtype=dtype)
            if is_orthogonally_separable(X_out, y_out):  # also after rounding to ``dtype``
                return X_out, y_out
    raise ValueError(  # pragma: no cover - the geometry above makes the first try succeed
        f"could not sample orthogonally separable data with min_gap={min_gap} in {_MAX_TRIES} tries"
    )


# ----------------------------------------------------------------------------- teacher


class TeacherData(NamedTuple):
    """A dataset labelled by a two-layer ReLU teacher ``f(x) = relu(xᵀ W) a``.

    Attributes:
        X: inputs ``(n, d)``.
        y: labels ``sign(f(X))``, ``(n,)`` in {-1, +1} (never 0).
        gates: the teacher's first-layer weights as gates, ``(m, d)`` (``W = gates.T``).
        w2: the teacher's second-layer weights ``a``, ``(m,)``, entries ±1.
        patterns: the teacher's activation patterns ``1[X g_j ≥ 0]``, bool ``(m, n)``; the convex
            max-margin program over them is feasible (``u_j = c·g_j`` for ``a_j > 0``, ``v_j = c·g_j``
            for ``a_j < 0`` fits ``y ⊙ c f(X) > 0``).
    """

    X: Float[Array, "n d"]
    y: Float[Array, " n"]
    gates: Float[Array, "m d"]
    w2: Float[Array, " m"]
    patterns: Bool[Array, "m n"]


def teacher(
    n: int,
    d: int,
    *,
    key: PRNGKeyArray,
    m_teacher: int = 4,
    min_margin: float = 1e-3,
    dtype=None,
) -> TeacherData:
    """Gaussian inputs labelled by a random ReLU teacher: ``y = sign(relu(X W) a)``.

    ``W`` has i.i.d. ``N(0, 1/d)`` entries, ``a`` alternates ``+1, -1, +1, …`` (both signs when
    ``m_teacher ≥ 2``). Samples with ``|f(x)| < min_margin · ‖x‖`` (in particular ``f(x) = 0``,
    which happens when every neuron is inactive) are rejected and redrawn, so no label is 0 and
    the labels are robust to rounding. Both classes are present (redrawn otherwise).

    Args:
        n: number of samples, ``n ≥ 2``.
        d: input dimension.
        key: a JAX PRNG key.
        m_teacher: number of teacher neurons, ``≥ 2``.
        min_margin: rejection threshold on ``|f(x)| / ‖x‖``, ``≥ 0``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        A :class:`TeacherData` ``(X, y, gates, w2, patterns)``.

    Raises:
        TypeError, ValueError: bad arguments, or no valid sample after 100 tries.

    Example:
        >>> data = teacher(30, 4, key=jax.random.key(0))
        >>> X, y = data.X, data.y
    """
    n = _positive_int("n", n, 2)
    d = _positive_int("d", d, 1)
    m = _positive_int("m_teacher", m_teacher, 2)
    min_margin = check_scalar("min_margin", min_margin, lo=0.0, lo_closed=True)
    dtype = _resolve_dtype(dtype)
    key = check_key(key)
    rng = _rng(key)
    W = rng.standard_normal((d, m)) / math.sqrt(d)
    a = np.where(np.arange(m) % 2 == 0, 1.0, -1.0)
    rows: list[np.ndarray] = []
    have = 0
    for _ in range(_MAX_TRIES):
        cand = rng.standard_normal((2 * n, d))
        f = np.maximum(cand @ W, 0) @ a
        ok = np.abs(f) >= max(min_margin, 1e-12) * np.linalg.norm(cand, axis=1)
        rows.append(cand[ok])
        have += int(ok.sum())
        if have >= n:
            X = np.concatenate(rows)[:n]
            f = np.maximum(X @ W, 0) @ a
            if np.all(f > 0) or np.all(f < 0):  # one class only: start over
                rows, have = [], 0
                continue
            Xd = jnp.asarray(X, dtype=dtype)
            Wd = jnp.asarray(W, dtype=dtype)
            ad = jnp.asarray(a, dtype=dtype)
            fd = jax.nn.relu(Xd @ Wd) @ ad  # labels from the stored (rounded) arrays
            if bool(jnp.any(fd == 0)):  # pragma: no cover - excluded by min_margin
                rows, have = [], 0
                continue
            y = jnp.where(fd > 0, 1.0, -1.0).astype(dtype)
            return TeacherData(Xd, y, Wd.T, ad, (Xd @ Wd).T >= 0)
    raise ValueError(  # pragma: no cover
        f"could not sample {n} points with |f(x)| ≥ {min_margin}·‖x‖ in {_MAX_TRIES} tries; "
        "lower min_margin"
    )


# ---------------------------------------------------------------------------------- 2-D


def two_d(
    n: int, *, key: PRNGKeyArray, kind: str = "orthogonal", dtype=None
) -> tuple[Float[Array, "n 2"], Float[Array, " n"]]:
    """A 2-D dataset for pictures.

    Kinds:
        ``"orthogonal"``: :func:`orthogonally_separable` in ``d = 2`` (default).
        ``"teacher"``: :func:`teacher` in ``d = 2`` with 4 neurons.
        ``"xor"``: uniform points in ``[-1, 1]²`` with ``y = sign(x₁ x₂)``; realizable by the
            bias-free network ``|x₁ + x₂| - |x₁ - x₂|`` (four neurons). Points within ``0.05`` of an
            axis are redrawn so no label is ambiguous.

    Args:
        n: number of samples, ``n ≥ 2``.
        key: a JAX PRNG key.
        kind: one of ``("orthogonal", "teacher", "xor")``.
        dtype: float dtype.

    Returns:
        ``(X, y)`` with ``X (n, 2)`` and ``y (n,)`` in {-1, +1}.

    Raises:
        ValueError: unknown ``kind`` or bad ``n``.
    """
    if kind not in TWO_D_KINDS:
        raise ValueError(f"kind must be one of {TWO_D_KINDS}, got {kind!r}")
    n = _positive_int("n", n, 2)
    key = check_key(key)
    if kind == "orthogonal":
        return orthogonally_separable(n, 2, key=key, dtype=dtype)
    if kind == "teacher":
        data = teacher(n, 2, key=key, m_teacher=4, dtype=dtype)
        return data.X, data.y
    dtype = _resolve_dtype(dtype)
    pts: list[np.ndarray] = []
    have = 0
    rng = _rng(key)
    while have < n:
        cand = rng.uniform(-1.0, 1.0, size=(2 * n, 2))
        cand = cand[np.min(np.abs(cand), axis=1) >= 0.05]
        pts.append(cand)
        have += cand.shape[0]
    X = np.concatenate(pts)[:n]
    y = np.sign(X[:, 0] * X[:, 1])
    if np.all(y == y[0]):  # one class only (probability 2^{1-n}): reflect the last point
        X[-1, 0] = -X[-1, 0]
        y[-1] = -y[-1]
    return jnp.asarray(X, dtype=dtype), jnp.asarray(y, dtype=dtype)


# ------------------------------------------------------------------------------ real data


def _standardize(X: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance columns; constant columns are dropped (no unit variance)."""
    std = X.std(axis=0)
    keep = std > 1e-12 * max(1.0, float(np.abs(X).max()))
    return (X[:, keep] - X[:, keep].mean(axis=0)) / std[keep]


def load(name: str, *, dtype=None) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """A real binary classification dataset shipped inside scikit-learn, standardized.

    Datasets (``DATASETS``), label ``+1`` first:

    * ``"breast_cancer"``: benign (+1, 357) vs malignant (-1, 212); 569 × 30.
    * ``"iris"``: versicolor (+1, 50) vs virginica (-1, 50), the pair that is not linearly
      separable; 100 × 4.
    * ``"wine"``: cultivar 0 (+1, 59) vs cultivar 1 (-1, 71); 130 × 13.
    * ``"digits"``: digit 3 (+1, 183) vs digit 8 (-1, 174), 8×8 images; 357 × d, where the
      pixels constant over these samples are dropped (``d = 54``).

    Features are standardized to zero mean and unit variance (constant features removed).

    Args:
        name: one of ``DATASETS``.
        dtype: float dtype (default: JAX's default float).

    Returns:
        ``(X, y)`` with ``y ∈ {-1, +1}``.

    Raises:
        ValueError: unknown name.
        ImportError: scikit-learn missing (``pip install convexrelu[datasets]``).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {DATASETS}")
    try:
        import sklearn.datasets as skd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "convexrelu.datasets.load needs scikit-learn: pip install convexrelu[datasets]"
        ) from err
    if name == "breast_cancer":
        X, t = skd.load_breast_cancer(return_X_y=True)
        pos, neg = 1, 0
    elif name == "iris":
        X, t = skd.load_iris(return_X_y=True)
        pos, neg = 1, 2
    elif name == "wine":
        X, t = skd.load_wine(return_X_y=True)
        pos, neg = 0, 1
    else:
        X, t = skd.load_digits(return_X_y=True)
        pos, neg = 3, 8
    keep = (t == pos) | (t == neg)
    X = _standardize(np.asarray(X, dtype=np.float64)[keep])
    y = np.where(t[keep] == pos, 1.0, -1.0)
    dtype = _resolve_dtype(dtype)
    return jnp.asarray(X, dtype=dtype), jnp.asarray(y, dtype=dtype)


def _binary_labels(t: np.ndarray, path: str) -> np.ndarray:
    if np.iscomplexobj(t):
        raise ValueError(f"{path}: the labels y are complex ({t.dtype}); labels must be real")
    if not (np.issubdtype(t.dtype, np.number) or t.dtype == np.bool_):
        raise ValueError(f"{path}: the labels y must be numeric, got dtype {t.dtype}")
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{path}: labels contain NaN or infinite values")
    classes = np.unique(t)
    if classes.shape[0] != 2:
        raise ValueError(
            f"{path}: labels must have exactly two classes, found {classes.shape[0]}: "
            f"{classes[:10].tolist()}"
        )
    return np.where(t == classes[1], 1.0, -1.0)  # {0,1} → {-1,+1}; smaller class value → -1


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of an ``.npz`` file; a file that is not one (empty, corrupt) is named as such."""
    import zipfile

    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a valid .npz archive (corrupt, or another format)")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("X", "y") if k not in f.files]
            if missing:
                raise ValueError(f"{path}: .npz must contain arrays 'X' and 'y', missing {missing}")
            return np.asarray(f["X"]), np.asarray(f["y"])
    except (zipfile.BadZipFile, EOFError, KeyError) as err:
        raise ValueError(f"{path}: not a valid .npz archive (corrupt?): {err}") from None
    except ValueError as err:
        if str(err).startswith(path):
            raise
        raise ValueError(f"{path}: cannot read the .npz arrays (object arrays or corrupt data): {err}") from None


def _csv_fields(line: str) -> list[str]:
    return [v.strip() for v in line.split(",")]


def _parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of a ``.csv`` file (last column the label), parsed strictly: a first line is a
    header only when none of its fields is a number, and every other line must be numbers."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text CSV file (binary or corrupt content)") from None
    lines = [(k + 1, ln) for k, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{path}: the file is empty (no data rows)")
    first_line = lines[0][0]
    first = [_parse_number(v) for v in _csv_fields(lines[0][1])]
    if all(v is None for v in first):
        lines = lines[1:]  # a header: no field of it is a number
        if not lines:
            raise ValueError(f"{path}: the file has a header line but no data rows")
    width = len(_csv_fields(lines[0][1]))
    rows = []
    for lineno, line in lines:
        fields = _csv_fields(line)
        if len(fields) != width:
            raise ValueError(f"{path}, line {lineno}: {len(fields)} fields, expected {width} like the first data row")
        vals = [_parse_number(v) for v in fields]
        bad = [k for k, v in enumerate(vals) if v is None]
        if bad:
            k = bad[0]
            hint = " (a header line must have no numeric field)" if lineno == first_line else ""
            if any(c in fields[k] for c in ";\t"):
                hint = " (fields must be separated by commas)"
            raise ValueError(f"{path}, line {lineno}, column {k + 1}: {fields[k]!r} is not a real number{hint}")
        rows.append(vals)
    data = np.asarray(rows, dtype=np.float64)
    if data.shape[1] < 2:
        raise ValueError(f"{path}: no feature columns: a .csv needs at least one feature column and a label column")
    return data[:, :-1], data[:, -1]


def load_file(path: str | os.PathLike, *, dtype=None) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """A binary dataset from a ``.npz`` (arrays ``X``, ``y``) or ``.csv`` (last column = label).

    CSV files are comma separated (blank lines and lines starting with ``#`` are skipped), with an
    optional header line: the first line is a header only when *none* of its fields is a number,
    so a data row with a typo (``0.1,O.5,1``) is an error naming the line, never dropped as a
    header. Every other line must have the same number of fields, all real numbers. Labels with
    two distinct values are mapped to ±1, the smaller to ``-1`` (so {0, 1} → {-1, +1} and
    {-1, +1} is kept). Features are returned as stored, cast to ``dtype`` (integer and float16
    arrays of an ``.npz`` are cast too; complex ones are refused).

    Args:
        path: file path ending in ``.npz`` or ``.csv``.
        dtype: float32 or float64 (default: JAX's default float).

    Returns:
        ``(X, y)`` with ``X (n, d)`` and ``y (n,)`` in {-1, +1}.

    Raises:
        ValueError: unknown extension; an empty, header-only, corrupt or non-numeric file; missing
            keys, wrong shapes, no samples or no features, complex, NaN or infinite values; labels
            that are not two classes.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise ValueError(f"{path}: unsupported file type {ext!r}; use .npz (X, y) or .csv")
    dtype = _resolve_dtype(dtype)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    X, t = _read_npz(path) if ext == ".npz" else _read_csv(path)
    if np.iscomplexobj(X):
        raise ValueError(f"{path}: X is complex ({X.dtype}); convexrelu needs real data")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise ValueError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{path}: X must be 2-D (n, d), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{path}: no samples (X has shape {X.shape})")
    if X.shape[1] == 0:
        raise ValueError(f"{path}: no features (X has shape {X.shape})")
    if t.ndim != 1 or t.shape[0] != X.shape[0]:
        raise ValueError(f"{path}: y must have shape ({X.shape[0]},) to match X, got {t.shape}")
    y = _binary_labels(t, path)
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{path}: X has {int(np.sum(~np.isfinite(X)))} NaN or infinite entries")
    Xd = jnp.asarray(X, dtype=dtype)
    if not bool(jnp.all(jnp.isfinite(Xd))):
        raise ValueError(f"{path}: X has values beyond the range of {np.dtype(dtype).name}")
    return Xd, jnp.asarray(y, dtype=dtype)


from ._cone_data import two_cones as two_cones  # noqa: E402  (the phase diagram's data, issue 21)
