"""The opt-in persistent compilation cache writes compiled programs and serves them back."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr


@pytest.fixture
def restore_cache_config():
    from jax.experimental.compilation_cache import compilation_cache as cc

    old = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    yield
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])
    cc.reset_cache()


def test_cache_writes_and_serves_a_compiled_program(tmp_path, restore_cache_config):
    path = cr.enable_compilation_cache(tmp_path / "xla", min_compile_time=0.0)
    assert path == os.fspath(tmp_path / "xla")

    @jax.jit
    def f(x):  # a program no other test compiles
        return jnp.cumsum(jnp.sin(x) * 3.25) @ x

    x = jnp.linspace(0.0, 1.0, 17)
    first = f(x)
    entries = os.listdir(path)
    assert entries, "nothing was written to the cache"
    hits = []

    def listener(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    jax.monitoring.register_event_listener(listener)
    try:
        jax.clear_caches()  # drop the in-memory executables: the next call reads the disk cache
        again = f(x)
    finally:
        jax.monitoring.unregister_event_listener(listener)
    np.testing.assert_array_equal(again, first)
    assert hits, "the second call compiled again instead of loading the cached program"


def test_cache_default_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVEXRELU_CACHE_DIR", os.fspath(tmp_path / "c"))
    assert cr._jit.default_cache_dir() == os.fspath(tmp_path / "c")
    monkeypatch.delenv("CONVEXRELU_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", os.fspath(tmp_path))
    assert cr._jit.default_cache_dir() == os.path.join(os.fspath(tmp_path), "convexrelu", "xla")


def test_cache_refuses_bad_arguments(tmp_path, restore_cache_config):
    with pytest.raises(ValueError, match="min_compile_time"):
        cr.enable_compilation_cache(tmp_path, min_compile_time=-1.0)
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        cr.enable_compilation_cache(f)


def test_solver_jit_matches_jax_jit_under_transformations():
    """The solvers' compiler options change the compile, not the mathematics: a small loop
    with a static argument agrees with plain ``jax.jit`` called directly and under ``vmap``,
    ``jit``, ``grad`` and ``lax.map`` (where the options must be dropped)."""

    def newton_sqrt(a, *, mode):
        def body(_, x):
            return 0.5 * (x + a / x)

        x = jax.lax.fori_loop(0, 30, body, jnp.ones_like(a))
        return x if mode == "root" else x * x

    ours = cr._jit.solver_jit(newton_sqrt, static_argnames=("mode",))
    ref = jax.jit(newton_sqrt, static_argnames=("mode",))
    a = jnp.linspace(0.5, 9.0, 7)
    np.testing.assert_allclose(ours(a, mode="root"), np.sqrt(np.asarray(a)), rtol=1e-12)
    np.testing.assert_allclose(ours(a, mode="square"), ref(a, mode="square"), rtol=1e-14)
    batched = jax.vmap(lambda v: ours(v, mode="root"))(a.reshape(7, 1))
    np.testing.assert_allclose(batched[:, 0], ref(a, mode="root"), rtol=1e-14)
    nested = jax.jit(lambda v: ours(v, mode="root") + 1.0)(a)
    np.testing.assert_allclose(nested, ref(a, mode="root") + 1.0, rtol=1e-14)
    inside = jax.jit(jax.vmap(lambda v: ours(v, mode="root")))(a.reshape(7, 1))
    np.testing.assert_allclose(inside[:, 0], ref(a, mode="root"), rtol=1e-14)
    slope = jax.grad(lambda v: ours(v, mode="square"))(jnp.asarray(2.0))
    np.testing.assert_allclose(slope, 1.0, rtol=1e-12)  # d(√a)²/da = 1
    looped = jax.lax.map(lambda v: ours(v, mode="root"), a)
    np.testing.assert_allclose(looped, ref(a, mode="root"), rtol=1e-14)
