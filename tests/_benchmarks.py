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


def run_quick(name: str, tmp_path_factory):
    """``benchmarks/<name>.py --quick`` into a fresh folder; checks that it wrote its quick
    ``.md`` and ``.json`` tables (``bench_solver`` → ``solver_quick.*``) and returns ``main``'s result."""
    out = tmp_path_factory.mktemp(name)
    res = load_benchmark(name).main(["--quick", "--out", str(out)])
    stem = name.removeprefix("bench_") + "_quick"
    assert (out / f"{stem}.md").exists() and (out / f"{stem}.json").exists()
    return res
