"""The host BLAS's threads while the interior-point solver runs.

jaxlib's LAPACK kernels (the interior-point method's batched ``(d+1) × (d+1)`` Cholesky factors,
triangular solves and QR factors, and the ``n × n`` capacitance factor) call SciPy's OpenBLAS,
which by default runs its own pool of threads beside XLA:CPU's workers. On kernels this small
those threads only contend with the workers for the cores: on a 2-core CPU a repeated solve of
max-margin (200, 10, 1004) took 2.5-2.8 s with the default pool and 1.6-1.9 s with one BLAS
thread (A/B in one window). :func:`one_blas_thread` holds the BLAS to one thread while a solver
runs. Problems whose capacitance Gram runs on the host BLAS (``_ipm.host_gram``) keep every
thread: there the GEMM of tens of milliseconds needs them (scnn's synthetic (1000, 50, 500): 22 s
with, 25-28 s without); raising the count for the GEMM alone, from inside the callback, is no way
out: OpenBLAS (0.3.30 and 0.3.31 here) ignored a count set from a thread other than the caller's.
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
