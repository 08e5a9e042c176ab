"""Load a script of ``benchmarks/`` as a module (the folder is not a package), for the tests."""

from __future__ import annotations

import importlib.util
import pathlib

BENCHMARKS = pathlib.Path(__file__).parents[1] / "benchmarks"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` executed as a fresh module named ``name``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
