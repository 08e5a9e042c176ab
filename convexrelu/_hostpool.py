"""XLA:CPU's intra-op thread pool must outnumber the host devices that run at once.

Why. jaxlib's CPU linear-algebra kernels (``lapack_dpotrf_ffi`` behind ``jnp.linalg.cholesky``,
the triangular solves, …) split a batch over XLA's intra-op pool (``jax::ParallelBatchMap``) and
block until the pieces are done. A program on a host device runs its ``while_loop`` body on a
thread of that same pool. With ``--xla_force_host_platform_device_count=K`` the ``K`` devices'
programs can hold ``K`` pool threads at once; when the pool has only ``K`` threads (its default
size is the number of cores, 2 here), every thread waits for pieces that no free thread can run,
and the process hangs. Seen with jax 0.10.2: a sharded batch of 64 Choleskys of 120×120 inside a
50-step ``lax.fori_loop`` on 2 host devices never returns on a 2-core machine, and returns in
0.6 s with a 3-thread pool (the interior point's small dense normal equations in a sharded
sweep are exactly this).

The fix. XLA sizes the pool from the ``NPROC`` environment variable when it creates the CPU
client, else from the cores. :func:`widen_intra_op_pool` (run when ``convexrelu`` is imported)
sets ``NPROC = max(cores, K + 1)`` when the host platform is asked for ``K > 1`` devices, ``NPROC``
is unset, and JAX has not started its backends yet. :func:`check_intra_op_pool` warns where that
could not be done (JAX started first, or ``NPROC`` set too small), naming the fix. Real
accelerators and a single host device are unaffected.
"""

from __future__ import annotations

import os
import re
import warnings

__all__ = ["check_intra_op_pool", "widen_intra_op_pool"]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def _requested_host_devices() -> int:
    """Host devices asked for, before JAX starts: ``XLA_FLAGS`` or ``JAX_NUM_CPU_DEVICES``."""
    found = re.findall(r"--xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
    count = int(found[-1]) if found else 1
    env = os.environ.get("JAX_NUM_CPU_DEVICES", "")
    if env.strip().lstrip("-").isdigit() and int(env) > 0:
        count = max(count, int(env))
    return count


def _backends_started() -> bool:
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "_backends", {}))


def widen_intra_op_pool() -> int | None:
    """Set ``NPROC`` so the intra-op pool outnumbers the requested host devices; the value set.

    Does nothing (returns ``None``) when fewer than 2 host devices are requested, ``NPROC`` is
    already set, or JAX's backends have started (the pool exists then)."""
    k = _requested_host_devices()
    if k < 2 or "NPROC" in os.environ or _backends_started():
        return None
    size = max(_cores(), k + 1)
    os.environ["NPROC"] = str(size)
    return size


def intra_op_pool_size() -> int:
    """The pool size XLA:CPU takes from this environment (``NPROC``, else the cores)."""
    value = os.environ.get("NPROC", "")
    return int(value) if value.isdigit() else _cores()


def check_intra_op_pool(devices) -> bool:
    """Warn when ``devices`` (CPU devices running at once) are as many as the intra-op pool.

    Returns True when the pool is wide enough (or the devices are not CPU host devices)."""
    devices = list(devices)
    cpu = [d for d in devices if getattr(d, "platform", "") == "cpu"]
    if len(cpu) < 2 or intra_op_pool_size() > len(cpu):
        return True
    warnings.warn(
        f"{len(cpu)} CPU host devices share an XLA intra-op pool of {intra_op_pool_size()} threads: batched "
        "linear algebra inside a loop can deadlock in XLA:CPU (a jaxlib bug). Set NPROC to at least "
        f"{len(cpu) + 1} in the environment before JAX starts (convexrelu does this itself when it is "
        "imported before JAX's first computation).",
        RuntimeWarning,
        stacklevel=3,
    )
    return False
