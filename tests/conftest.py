"""Test configuration: float64 everywhere and strict dtype promotion (STYLE.md §11)."""

import os
import tempfile

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# the CLI turns the persistent compilation cache on: keep the test runs' entries out of ~/.cache
os.environ.setdefault("CONVEXRELU_CACHE_DIR", tempfile.mkdtemp(prefix="convexrelu-test-xla-"))
