"""MkDocs hooks: the pages that must follow the code are generated at build time.

- ``api/*.md``: one page per re-export group of ``convexrelu/__init__.py`` (each
  ``from ._module import (...)`` statement, groups of one module merged), a ``::: convexrelu.NAME``
  entry for every name, plus the public submodules. ``__init__.py`` is read with ``ast``, so a name
  added there appears in the reference without touching the docs.
- ``benchmarks/*.md``: the tables of ``benchmarks/results/*.md``, as written by the benchmarks.
- ``cli.md``: ``--help`` of ``convexrelu`` and of each subcommand, from ``convexrelu.cli.build_parser()``.
- ``notebooks/index.md``: the executed copies in ``docs/notebooks/`` (``docs/execute_notebooks.py``).
- ``assets/figure.png``: the landing page's figure, the first figure of the executed quickstart.
- On the landing page, ``<!-- readme-commands -->`` becomes the README's first two commands.
- In the rendered docstrings, Sphinx roles (``:func:`train```) become links to the API entry
  (mkdocs-autorefs), or plain code where the target has no entry (a private module).

The nav entries ``API reference``, ``Benchmarks`` and ``Notebooks`` of ``mkdocs.yml`` point at an
index page; the hook expands each into its generated pages. No plugin beyond mkdocs itself.
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import os
import pathlib
import re
import sys

from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "convexrelu"
PUBLIC_SUBMODULES = ("datasets", "bridge", "plotting", "estimators")  # bridge / plotting / estimators: cvxpy, matplotlib, scikit-learn
FIGURE = "assets/figure.png"

# Page titles of the re-export groups; a module not listed takes the first line of its docstring.
TITLES = {
    "_cache": "Compilation cache",
    "_losses": "Losses, margins, alignment",
    "_network": "Network",
    "_solution": "Solutions and statuses",
    "_patterns": "Activation patterns",
    "_train": "Gradient descent",
    "_programs": "Convex programs and optimality",
    "_solver": "Solvers",
    "_sensitivity": "Sensitivity",
    "_cones": "Cones",
    "_certificates": "Certificates",
    "_maps": "Maps between networks and convex solutions",
    "_crosscheck": "Cross-check",
    "_geometry": "Dual geometry",
    "_gated": "Gated ReLU program",
    "_path": "Regularization path",
}


# --- what to generate --------------------------------------------------------------------------


def _module_doc(module: str) -> str:
    path = PACKAGE / f"{module}.py"
    if not path.exists():
        path = PACKAGE / module / "__init__.py"
    if not path.exists():
        return ""
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def api_groups() -> list[tuple[str, list[str]]]:
    """``[(module, [public names])]`` in the order of ``convexrelu/__init__.py``'s imports."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    groups: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            names = [a.asname or a.name for a in node.names if not (a.asname or a.name).startswith("_")]
            if names:
                groups.setdefault(node.module, []).extend(n for n in names if n not in groups.get(node.module, []))
    return list(groups.items())


def _slug(module: str) -> str:
    return module.lstrip("_").replace(".", "-")


def _title(module: str) -> str:
    if module in TITLES:
        return TITLES[module]
    first = _module_doc(module).split("\n", 1)[0].strip().rstrip(".")
    return first.replace("``", "") or module.lstrip("_")


def _api_pages() -> list[tuple[str, str, str]]:
    """``[(title, path, markdown)]``: the overview, one page per group, one per public submodule."""
    pages = []
    overview = [
        "# API reference",
        "",
        "Every public name of `convexrelu`, grouped as in `convexrelu/__init__.py` (one group per private "
        "module; `import convexrelu as cr`, then `cr.NAME`). The optional submodules are imported by "
        "name: `from convexrelu import bridge, plotting`.",
        "",
    ]
    for module, names in api_groups():
        title, path = _title(module), f"api/{_slug(module)}.md"
        doc = _module_doc(module).split("\n\n", 1)[0]
        body = [f"# {title}", "", _rst_literals(doc), "", f"Module `convexrelu.{module}`, re-exported as:", ""]
        body += [f"::: convexrelu.{name}" for name in names]
        pages.append((title, path, "\n".join(body) + "\n"))
        overview.append(f"- [{title}]({_slug(module)}.md): " + ", ".join(f"[`{n}`][convexrelu.{n}]" for n in names))
    overview += ["", "Public submodules:", ""]
    for sub in PUBLIC_SUBMODULES:
        path = f"api/{sub}.md"
        body = f"# `convexrelu.{sub}`\n\n::: convexrelu.{sub}\n    options:\n      show_root_heading: false\n"
        pages.append((f"convexrelu.{sub}", path, body))
        overview.append(f"- [`convexrelu.{sub}`]({sub}.md)")
    return [("Overview", "api/index.md", "\n".join(overview) + "\n")] + pages


def _rst_literals(text: str) -> str:
    """Docstrings write literals as ``x``; Markdown wants `x`."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _benchmark_pages() -> list[tuple[str, str, str]]:
    pages = []
    index = [
        "# Benchmarks",
        "",
        "Each script in `benchmarks/` measures this library and its peer in the same run and writes its "
        "table to `benchmarks/results/`; the pages below are those files as written. Peers are not "
        "dependencies (see the README for how to install them); the test suite runs each script once "
        "at a tiny size.",
        "",
    ]
    for result in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        first, _, rest = result.read_text(encoding="utf-8").lstrip().partition("\n")
        title = first.removeprefix("# ").strip()
        text = f"# {title}\n{rest}"  # a file without a heading (train.md) gets its first line as title
        pages.append((result.stem, f"benchmarks/{result.stem}.md", text))  # nav: the file's name
        index.append(f"- [{title}]({result.stem}.md) (`benchmarks/results/{result.name}`)")
    return [("Overview", "benchmarks/index.md", "\n".join(index) + "\n")] + pages


def _help(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; a fixed width for the page
    try:
        return parser.format_help()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _cli_page() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the CLI imports JAX; no accelerator probing
    import importlib

    import convexrelu.cli

    parser = importlib.reload(convexrelu.cli).build_parser()  # `mkdocs serve` rebuilds in one process
    lines = [
        "# Command line",
        "",
        "Installing the package (`pip install -e \".[all]\"` in a clone) installs the `convexrelu` "
        "command. Each command is a thin layer over a library function: it parses its options, calls "
        "the function, prints and saves the record. "
        "The help below is generated from the parser (`convexrelu.cli.build_parser()`) when the site "
        "is built.",
        "",
        "```text",
        _help(parser).rstrip(),
        "```",
        "",
    ]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                lines += [f"## `convexrelu {name}`", ""]
                if summaries.get(name):
                    lines += [summaries[name][0].upper() + summaries[name][1:] + ".", ""]
                lines += ["```text", _help(sub).rstrip(), "```", ""]
    return "\n".join(lines)


def _notebook_pages() -> tuple[list[tuple[str | None, str, str]], list[str]]:
    lines = [
        "# Notebooks",
        "",
        "The notebooks in `notebooks/` (each a jupytext `.py` paired with a `.ipynb`, ready for Colab: "
        "the first cells install the package when it is missing). The copies shown here were executed "
        "by `docs/execute_notebooks.py`, at the notebook's own sizes where that takes under two minutes "
        "on a 2-core CPU, else at the test suite's tiny sizes (`CONVEXRELU_SMALL=1`).",
        "",
    ]
    pages = []
    for nb_path in sorted((ROOT / "docs" / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        title = nb_path.stem
        for cell in nb["cells"]:
            src = "".join(cell["source"]).lstrip()
            if cell["cell_type"] == "markdown" and src.startswith("# "):
                title = src.split("\n", 1)[0][2:].strip()
                break
        meta = nb.get("metadata", {}).get("convexrelu", {})
        how = "tiny sizes (`CONVEXRELU_SMALL=1`)" if meta.get("small") else "its own sizes"
        took = f", {meta['seconds']:.0f} s" if "seconds" in meta else ""
        lines.append(f"- [{title}]({nb_path.name}): `notebooks/{nb_path.stem}.py`, executed at {how}{took}")
        pages.append(nb_path.name)
    return [("Overview", "notebooks/index.md", "\n".join(lines) + "\n")], pages


def _first_figure() -> bytes | None:
    for name in ("quickstart", *sorted(p.stem for p in (ROOT / "docs" / "notebooks").glob("*.ipynb"))):
        path = ROOT / "docs" / "notebooks" / f"{name}.ipynb"
        if not path.exists():
            continue
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if png:
                    return base64.b64decode("".join(png) if isinstance(png, list) else png)
    return None


def _readme_commands() -> str:
    blocks = re.findall(r"```bash\n.*?\n```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    return "\n\n".join(blocks[:2])


# --- known docstring warnings -------------------------------------------------------------------


# --- the hooks ---------------------------------------------------------------------------------

_GENERATED: dict[str, str | bytes] = {}


def _expand(nav: list, key: str, entries: list) -> None:
    for i, item in enumerate(nav):
        if isinstance(item, dict) and key in item and isinstance(item[key], str):
            nav[i] = {key: entries}
            return
    raise ValueError(f"mkdocs.yml: the nav needs an entry `{key}: <index page>` for docs/hooks.py to expand")


def on_config(config, **kwargs):
    _GENERATED.clear()
    api = _api_pages()
    bench = _benchmark_pages()
    nb_index, nb_files = _notebook_pages()
    for _, path, text in api + bench + nb_index:
        _GENERATED[path] = text
    _GENERATED["cli.md"] = _cli_page()
    figure = _first_figure()
    if figure is not None:
        _GENERATED[FIGURE] = figure
    nav = config["nav"]
    _expand(nav, "API reference", [{t: p} for t, p, _ in api])
    _expand(nav, "Benchmarks", [{t: p} for t, p, _ in bench])
    _expand(nav, "Notebooks", [{t: p} for t, p, _ in nb_index] + [f"notebooks/{f}" for f in nb_files])
    return config


def on_files(files, config, **kwargs):
    for path, content in _GENERATED.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):<code>(~?)([A-Za-z_][\w.]*)</code>")


def _role_to_ref(match: re.Match) -> str:
    tilde, name = match.groups()
    identifier = name if name.startswith("convexrelu.") else f"convexrelu.{name}"
    shown = name.rsplit(".", 1)[-1] if tilde else name  # Sphinx's ~: show the last component
    return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'


def on_page_content(html, page, config, files, **kwargs):
    # hooks run after the plugins, autorefs resolves these in on_env (optional: no warning if absent)
    return _ROLE.sub(_role_to_ref, html)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if "<!-- readme-commands -->" in markdown:
        markdown = markdown.replace("<!-- readme-commands -->", _readme_commands())
    if "<!-- figure -->" in markdown:
        figure = f"![Gradient descent runs and the convex optimum's margin]({FIGURE})" if FIGURE in _GENERATED else ""
        markdown = markdown.replace("<!-- figure -->", figure)
    return markdown

