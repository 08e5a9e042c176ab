"""The XLA:CPU intra-op pool and host devices (convexrelu/_hostpool.py).

jaxlib's batched Cholesky splits its batch over the intra-op pool and waits; on ``K`` host
devices each program holds a pool thread, so a pool of ``K`` threads deadlocks. These tests run
the minimal reproduction (a sharded batch of Choleskys inside a ``fori_loop``) in a subprocess
with 2 host devices: importing convexrelu first widens the pool and it returns; the pool left at
2 threads is what :func:`check_intra_op_pool` warns about.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from convexrelu import _hostpool

REPRO = textwrap.dedent(
    """
    import os, sys
    import jax
    import convexrelu  # widens the pool before JAX starts
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    jax.config.update("jax_enable_x64", True)
    mesh = Mesh(jax.devices(), ("batch",))
    A = jax.random.normal(jax.random.key(0), (64, 120, 120))
    A = A @ jnp.swapaxes(A, 1, 2) + 120 * jnp.eye(120)
    A = jax.device_put(A, NamedSharding(mesh, PartitionSpec("batch")))
    body = lambda i, x: x + 1e-3 * jnp.linalg.cholesky(x)
    out = jax.jit(lambda A: jax.lax.fori_loop(0, 50, body, A))(A)
    print(os.environ.get("NPROC"), len(out.sharding.device_set), bool(jnp.all(jnp.isfinite(out))))
    """
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "NPROC"}
    env.update(XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu", **extra)
    return env


def test_two_host_devices_batched_cholesky_in_a_loop_returns():
    proc = subprocess.run([sys.executable, "-c", REPRO], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nproc, devices, finite = proc.stdout.split()
    assert int(nproc) >= 3 and int(devices) == 2 and finite == "True"


def test_widen_sets_nproc_only_for_several_host_devices(monkeypatch):
    monkeypatch.delenv("NPROC", raising=False)
    monkeypatch.delenv("JAX_NUM_CPU_DEVICES", raising=False)
    monkeypatch.setattr(_hostpool, "_backends_started", lambda: False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    assert _hostpool.widen_intra_op_pool() is None and "NPROC" not in os.environ
    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1 --xla_force_host_platform_device_count=6")
    size = _hostpool.widen_intra_op_pool()
    assert size == max(_hostpool._cores(), 7) and os.environ["NPROC"] == str(size)
    monkeypatch.setenv("NPROC", "2")  # a user's own setting is kept
    assert _hostpool.widen_intra_op_pool() is None and os.environ["NPROC"] == "2"


def test_check_warns_when_the_pool_is_not_wider_than_the_devices(monkeypatch):
    class Cpu:
        platform = "cpu"

    monkeypatch.setenv("NPROC", "2")
    with pytest.warns(RuntimeWarning, match="NPROC to at least 3"):
        assert not _hostpool.check_intra_op_pool([Cpu(), Cpu()])
    monkeypatch.setenv("NPROC", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _hostpool.check_intra_op_pool([Cpu(), Cpu()])
        assert _hostpool.check_intra_op_pool([Cpu()])
