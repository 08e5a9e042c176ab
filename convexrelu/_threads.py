"""The host BLAS's threads while the interior-point solver runs.

jaxlib's LAPACK kernels (the interior-point method's batched ``(d+1) × (d+1)`` Cholesky factors,
triangular solves and QR factors, and the ``n × n`` capacitance factor) call SciPy's OpenBLAS,
which by default runs its own pool of threads beside XLA:CPU's workers. On kernels this small
those threads only contend with the workers for the cores. :func:`one_blas_thread` holds the BLAS
to one thread while a solver runs. Problems whose capacitance Gram runs on the host BLAS
(``_ipm.uses_host_gram``) keep every thread: there the large GEMM needs them. Raising the count
for the GEMM alone, from inside the callback, does not work: OpenBLAS ignores a count set from a
thread other than the caller's. (Measurements: ``benchmarks/results/solver.md`` and the commit log.)
"""

from __future__ import annotations

import contextlib
import functools


@functools.cache
def _controller():
    """The process's thread pools (threadpoolctl), found once: NumPy's BLAS and the LAPACK that
    jaxlib's kernels call, SciPy's (``GetLapackKernelsFromScipy``), loaded here first."""
    import scipy.linalg.cython_lapack  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread(active: bool = True):
    """Run the body with the host BLAS on one thread (when ``active``), then restore its count."""
    if not active:
        yield
        return
    with _controller().limit(limits=1, user_api="blas"):
        yield
