"""The notebooks: each jupytext ``.py`` source is paired with an up-to-date ``.ipynb`` and runs.

Every ``notebooks/*.py`` (jupytext percent format) must have a ``.ipynb`` twin with the same cells
(what ``jupytext --to ipynb`` produces, outputs stripped), and must execute without error in a
fresh ``python3`` kernel with ``CONVEXRELU_SMALL=1`` (tiny sizes) and the Agg backend.
"""

from __future__ import annotations

import os
import pathlib

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
CELL_TIMEOUT = 600  # seconds per cell (the small sizes take seconds; compilation dominates)


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert {p.stem for p in SOURCES} >= {"quickstart", "gradient_flow_max_margin", "regularized_optimal_sets", "bridge"}


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_ipynb_in_sync_with_py(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), f"{paired.name} missing: run `jupytext --to ipynb {source.name}`"
    expected = jupytext.read(source)
    actual = nbformat.read(paired, as_version=4)
    assert _cells(actual) == _cells(expected), (
        f"{paired.name} is out of sync with {source.name}: run `jupytext --to ipynb {source.name}`"
    )
    for cell in actual.cells:  # commit-ready: no outputs
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{paired.name} has stored outputs"


def test_colab_install_cell_is_a_magic_only_in_the_notebook():
    """The ``.py`` stays plain Python (magic commented), the notebook gets the ``%pip`` magic."""
    for source in SOURCES:
        text = source.read_text()
        assert '# %pip install -q "convexrelu[all]"' in text, source.name
        nb = jupytext.read(source)
        install = [c.source for c in nb.cells if c.cell_type == "code" and "%pip install" in c.source]
        assert install and '    %pip install -q "convexrelu[all]"' in install[0], source.name
        compile(text, str(source), "exec")  # plain Python outside Colab


def _project_repository():
    """The repository URL named in pyproject.toml's ``[project.urls]``, or None."""
    import tomllib

    urls = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())["project"].get("urls", {})
    for key in ("Repository", "repository", "Source", "source", "Source Code", "Code"):
        if key in urls:
            return urls[key]
    return None


def test_install_cell_installs_only_when_missing_from_pypi_or_the_named_repository():
    """Install only where ``convexrelu`` is not importable: from PyPI, else from the repository that
    pyproject.toml names (``REPOSITORY`` in the cell, kept equal to ``[project.urls]``); a markdown
    cell right above says what the cell does."""
    repository = _project_repository()
    for source in SOURCES:
        nb = jupytext.read(source)
        index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "%pip install" in c.source)
        cell, above = nb.cells[index].source, nb.cells[index - 1]
        assert 'if importlib.util.find_spec("convexrelu") is None:' in cell, source.name
        assert '%pip install -q "convexrelu[all] @ git+{REPOSITORY}"' in cell, source.name
        namespace = {}
        exec(cell.split("\n\nif ", 1)[0], namespace)  # the imports and REPOSITORY
        assert namespace["REPOSITORY"] == repository, (
            f"{source.name}: REPOSITORY must be pyproject.toml's [project.urls] repository ({repository!r})"
        )
        assert above.cell_type == "markdown" and "PyPI" in above.source and "does nothing" in above.source, source.name
        if repository is None:
            assert "No repository is named yet" in above.source, source.name


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_executes(source, monkeypatch):
    monkeypatch.setenv("CONVEXRELU_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    repo = str(NOTEBOOKS.parent)  # the package under test, even when it is not installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p))
    nb = jupytext.read(source)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # jupyter_client starts the `python3` kernel with sys.executable (this venv)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
