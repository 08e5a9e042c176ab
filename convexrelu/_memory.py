"""Memory estimates of the native solvers, and the refusal of a problem too large for the machine.

Each estimate counts the arrays a method keeps and its largest temporaries, in elements of the
solve's float dtype (``itemsize`` bytes), plus the boolean patterns (1 byte each):

* ``"ipm"``: the ``n × n`` capacitance, its Cholesky factor and their temporaries (8 ``n²``), and
  the ``(2, p, n)`` iterates, slacks, multipliers and directions (12 of them, ``24 pn``);
* ``"admm"``: the ``n × n`` capacitance factor, ``DᵀD`` and temporaries (4 ``n²``), and the
  iterate with its Anderson history (``2 · MEMORY + 4`` copies of ``4 pn``);
* ``"matrix-free"``: the multipliers ``ν``, their update and the returned ``ν`` (3 × ``2pn``), the
  data and blocks (``4 nd + 20 pd``), and 8 chunk temporaries of ``(2, c, n)`` floats (``c`` patterns a chunk:
  :data:`convexrelu._matrix_free.CHUNK_BYTES`).

A float32 solve adds its float64 verification on the host (:mod:`convexrelu._solver`): the
certificate's ``ν`` and the data in float64.
"""

from __future__ import annotations

import os

from . import _anderson
from ._matrix_free import chunk_size


def physical_memory() -> int:
    """Bytes of physical memory (``os.sysconf``); 0 when the platform does not say (no refusal)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def memory_estimate(method: str, n: int, d: int, p: int, itemsize: int) -> int:
    """Estimated peak bytes of one solve by ``method`` (``"ipm"``, ``"admm"``, ``"matrix-free"``)
    of a problem with ``n`` samples, ``d`` features and ``p`` patterns (see the module docstring)."""
    pn = p * n
    if method == "ipm":
        floats = 8 * n * n + 24 * pn
    elif method == "admm":
        floats = 4 * n * n + (2 * _anderson.MEMORY + 4) * 4 * pn
    elif method == "matrix-free":
        floats = 6 * pn + 16 * chunk_size(p, n, itemsize) * n  # 8 chunk temporaries of (2, c, n)
    else:
        raise ValueError(f"no memory estimate for method {method!r}")
    total = pn + (4 * n * d + 20 * p * d + floats) * itemsize  # boolean patterns, data and blocks, the method's arrays
    if itemsize < 8:  # the float64 verification of a float32 status on the host
        total += 8 * (2 * pn + n * d)
    return int(total)


def fits_in_memory(method: str, n: int, d: int, p: int, itemsize: int) -> bool:
    """Whether :func:`memory_estimate` is within :func:`physical_memory` (True when unknown)."""
    have = physical_memory()
    return not have or memory_estimate(method, n, d, p, itemsize) <= have


def check_memory(method: str, n: int, d: int, p: int, itemsize: int) -> None:
    """Refuse, before any work, a solve whose :func:`memory_estimate` exceeds :func:`physical_memory`.

    Raises:
        MemoryError: with the estimate, the machine's memory and what to do.
    """
    need, have = memory_estimate(method, n, d, p, itemsize), physical_memory()
    if have and need > have:
        hint = (
            "use method='matrix-free' (no n × n matrices)"
            if method != "matrix-free"
            else "use fewer patterns, float32, or a machine with more memory"
        )
        raise MemoryError(
            f"the {method} solver needs about {need / 2**30:.1f} GiB for n = {n}, d = {d}, p = {p} "
            f"({itemsize * 8}-bit floats), more than this machine's {have / 2**30:.1f} GiB of memory: {hint}"
        )
