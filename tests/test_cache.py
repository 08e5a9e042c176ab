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
    assert cr._cache.default_cache_dir() == os.fspath(tmp_path / "c")
    monkeypatch.delenv("CONVEXRELU_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", os.fspath(tmp_path))
    assert cr._cache.default_cache_dir() == os.path.join(os.fspath(tmp_path), "convexrelu", "xla")


def test_cache_refuses_bad_arguments(tmp_path, restore_cache_config):
    with pytest.raises(ValueError, match="min_compile_time"):
        cr.enable_compilation_cache(tmp_path, min_compile_time=-1.0)
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        cr.enable_compilation_cache(f)
