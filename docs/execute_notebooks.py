"""Execute the notebooks and write the copies the documentation site shows, with their figures.

    .venv/bin/python docs/execute_notebooks.py [NAME ...]

Each ``notebooks/NAME.py`` (the jupytext source of ``notebooks/NAME.ipynb``, which stays without
outputs) is executed in a fresh ``python3`` kernel with nbclient and written with its outputs to
``docs/notebooks/NAME.ipynb``, which mkdocs-jupyter renders without executing anything.

A notebook runs at its normal sizes when that finishes within ``--budget`` seconds (default 120)
on this machine; otherwise it is run again with ``CONVEXRELU_SMALL=1`` (the test suite's tiny
sizes). Which one was used, and how long it took, is recorded in the copy's metadata
(``metadata.convexrelu``) and shown on the site's notebooks page. ``tests/test_docs.py`` checks
that every copy has the same cells as its source, so re-run this script after editing a notebook.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import jupytext
import nbclient
import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
TARGET = ROOT / "docs" / "notebooks"


class _OverBudget(Exception):
    pass


def _execute(source: pathlib.Path, *, small: bool, budget: float) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of ``source`` in a fresh kernel; raise ``_OverBudget`` past ``budget`` seconds."""
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "CONVEXRELU_SMALL")}
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    if small:
        env["CONVEXRELU_SMALL"] = "1"
    # ipykernel's inline backend (MPLBACKEND unset) turns each figure into an image/png output
    nb = jupytext.read(source)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=int(budget) + 1, resources={"metadata": {"path": str(SOURCES)}}
    )
    client.reset_execution_trackers()
    start = time.perf_counter()
    with client.setup_kernel(env=env):  # NotebookClient.execute, with a budget for the whole notebook
        info = client.wait_for_reply(client.kc.kernel_info())
        nb.metadata["language_info"] = info["content"]["language_info"]
        for index, cell in enumerate(nb.cells):
            left = budget - (time.perf_counter() - start)
            if left <= 0:
                raise _OverBudget
            client.timeout = max(1, int(left))
            try:
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except nbclient.exceptions.CellTimeoutError as err:
                raise _OverBudget from err
    return nb, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: every notebooks/*.py)")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds at normal sizes before falling back to CONVEXRELU_SMALL=1 (default 120)")
    parser.add_argument("--small", action="store_true", help="use CONVEXRELU_SMALL=1 directly")
    args = parser.parse_args(argv)
    sources = [SOURCES / f"{n}.py" for n in args.names] if args.names else sorted(SOURCES.glob("*.py"))
    TARGET.mkdir(parents=True, exist_ok=True)
    for source in sources:
        small = args.small
        nb = None
        if not small:
            try:
                nb, seconds = _execute(source, small=False, budget=args.budget)
            except _OverBudget:
                print(f"{source.stem}: over {args.budget:.0f} s at normal sizes, running with CONVEXRELU_SMALL=1", file=sys.stderr)
                small = True
        if nb is None:
            nb, seconds = _execute(source, small=True, budget=1800.0)
        nb.metadata["convexrelu"] = {"small": small, "seconds": round(seconds, 1)}
        nbformat.write(nb, TARGET / f"{source.stem}.ipynb")
        print(f"{source.stem}: {'CONVEXRELU_SMALL=1' if small else 'normal sizes'}, {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
