"""The documentation site: it builds with ``mkdocs build --strict`` and covers the whole library.

- The executed notebook copies in ``docs/notebooks/`` (written by ``docs/execute_notebooks.py``,
  rendered by mkdocs-jupyter without executing) have the same cells as ``notebooks/*.py`` and at
  least one figure each, so they cannot go stale silently.
- The built site has an API entry (its anchor ``convexrelu.NAME``) for every public name of
  ``convexrelu``, a page per public submodule, a page per notebook with its figures, the benchmark
  tables and the command line's help.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys
import time
import types

import pytest

import convexrelu

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
EXECUTED = ROOT / "docs" / "notebooks"
BUILD_TIMEOUT = 300  # seconds; the build itself takes 5-10 s on 2 cores (no notebook is executed)


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def _public_names() -> list[str]:
    return sorted(
        name
        for name in dir(convexrelu)
        if not name.startswith("_") and not isinstance(getattr(convexrelu, name), types.ModuleType)
    )


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_executed_notebook_matches_its_source_and_has_figures(source):
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    executed = EXECUTED / f"{source.stem}.ipynb"
    rerun = f"run `python docs/execute_notebooks.py {source.stem}`"
    assert executed.exists(), f"{executed.relative_to(ROOT)} missing: {rerun}"
    nb = nbformat.read(executed, as_version=4)
    assert _cells(nb) == _cells(jupytext.read(source)), f"{executed.name} is stale: {rerun}"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{executed.name} has an error output: {rerun}"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{executed.name} has no figure: {rerun}"
    assert "convexrelu" in nb.metadata and "small" in nb.metadata["convexrelu"], rerun


def test_no_executed_copy_without_a_source():
    assert {p.stem for p in EXECUTED.glob("*.ipynb")} == {p.stem for p in SOURCES}


def test_api_groups_cover_the_public_names():
    """docs/hooks.py reads ``__init__.py`` with ``ast``: every public name is in one group."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    grouped = [name for _, names in hooks.api_groups() for name in names]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == set(_public_names())


def _html(site, page: str) -> str:
    path = site / page / "index.html" if page else site / "index.html"
    assert path.exists(), f"the site has no page {page!r}"
    return path.read_text(encoding="utf-8")


def test_site_builds_strict_and_covers_the_library(tmp_path):
    """One build (a few seconds: nothing is executed), then every page the issue asks for."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]' (the `all` extra has it)")
    site = tmp_path / "site"
    env = dict(os.environ, JAX_PLATFORMS="cpu", NO_MKDOCS_2_WARNING="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")

    # an API entry (mkdocstrings' anchor) for every public name, a page per public submodule
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").rglob("index.html"))
    ids = set(re.findall(r'id="(convexrelu\.[A-Za-z0-9_.]+)"', html))
    missing = [name for name in _public_names() if f"convexrelu.{name}" not in ids]
    assert not missing, f"no API entry for {missing}"
    for sub in ("datasets", "bridge", "plotting"):
        assert f'id="convexrelu.{sub}.' in _html(site, f"api/{sub}"), sub

    # each notebook with its figures; the landing page's figure
    for source in SOURCES:
        assert "<img" in _html(site, f"notebooks/{source.stem}"), f"the page of {source.stem} has no figure"
    assert "<img" in _html(site, ""), "the landing page has no figure"

    # the benchmark tables, the command line's help, the hand-written pages
    for result in (ROOT / "benchmarks" / "results").glob("*.md"):
        assert "<table>" in _html(site, f"benchmarks/{result.stem}"), result.name
    from convexrelu.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    cli = _html(site, "cli")
    for name in commands:
        assert f"usage: convexrelu {name}" in cli, name
    for page in ("mathematics", "concepts"):
        _html(site, page)
