"""Compilation: the solvers' XLA:CPU options, and an opt-in persistent compilation cache.

The solvers are one large ``while_loop`` each. :func:`solver_jit` compiles them on the CPU with
XLA's classic elemental emitters and LLVM at ``-O1`` (:data:`CPU_COMPILER_OPTIONS`), which compile
these loops in about half the time at an unchanged run time (``benchmarks/results/solver.md``).
Under a transformation (``jax.jit``, ``jax.vmap``, ...) JAX takes no per-function options, and the
default ones apply.

:func:`enable_compilation_cache` turns on JAX's own persistent cache
(``jax.experimental.compilation_cache``): a later process loads a compiled solver in well under
a second instead of compiling it. It applies to every function JAX compiles in the process, not
only to convexrelu's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence

import jax

ENV_VAR = "CONVEXRELU_CACHE_DIR"


def default_cache_dir() -> str:
    """``$CONVEXRELU_CACHE_DIR``, else ``$XDG_CACHE_HOME/convexrelu/xla`` (``~/.cache/...``)."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "convexrelu", "xla")


def enable_compilation_cache(path: str | os.PathLike | None = None, *, min_compile_time: float = 1.0) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` and return the directory used.

    Programs whose compilation took at least ``min_compile_time`` seconds are written to
    ``path`` and loaded from it, instead of compiled, by any later process (same JAX version,
    same machine type, same shapes and options). The command line calls this unless given
    ``--no-cache``; the library never turns it on by itself.

    Args:
        path: cache directory (created if missing); default :func:`default_cache_dir`.
        min_compile_time: only programs that took this many seconds or more to compile are cached.

    Raises:
        ValueError: ``min_compile_time`` negative, or ``path`` an existing file.

    Example:
        >>> import convexrelu as cr
        >>> cr.enable_compilation_cache()  # once, before the first solve
    """
    from jax.experimental.compilation_cache import compilation_cache as cc

    if not min_compile_time >= 0:
        raise ValueError(f"min_compile_time must be ≥ 0 seconds, got {min_compile_time!r}")
    path = os.fspath(default_cache_dir() if path is None else path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"compilation cache path {path!r} exists and is not a directory")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time))
    jax.config.update("jax_compilation_cache_dir", path)
    cc.reset_cache()  # a cache JAX already initialized (or found disabled) is reopened at `path`
    return path


CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}
"""XLA options of the solvers on the CPU backend (measured in ``benchmarks/results/solver.md``)."""


def solver_jit(fun: Callable | None = None, *, static_argnames: Sequence[str] = ()) -> Callable:
    """``jax.jit`` with :data:`CPU_COMPILER_OPTIONS` when JAX's default backend is the CPU.

    The backend is read at each call, not at import, so ``import convexrelu`` does not start
    JAX's backends. Called under a transformation (``jit``, ``vmap``, ``grad``), where JAX refuses
    options on a nested ``jit``, it is a plain ``jax.jit``.
    """
    if fun is None:
        return functools.partial(solver_jit, static_argnames=static_argnames)
    plain = jax.jit(fun, static_argnames=static_argnames)
    tuned = jax.jit(fun, static_argnames=static_argnames, compiler_options=CPU_COMPILER_OPTIONS)

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        if jax.default_backend() != "cpu":
            return plain(*args, **kwargs)
        try:
            return tuned(*args, **kwargs)
        except ValueError as e:  # nested under a transformation: JAX takes options only at the top
            if "compiler_options" not in str(e):
                raise
            return plain(*args, **kwargs)

    return wrapper
