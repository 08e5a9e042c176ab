"""The package's layout rules (STYLE.md; issue 17), checked on the source with ``ast``.

* No function or method is longer than 80 lines, its docstring excluded.
* No module of ``convexrelu`` uses another module's private (underscore) name, whether imported
  (``from ._mod import _name``) or as an attribute (``_mod._name``); dunder names are fine, and
  so is importing a private *module* of the package (``from . import _programs``).

``import convexrelu`` not loading cvxpy, cvxpylayers or matplotlib is checked in test_import.py.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "convexrelu"
MAX_BODY_LINES = 80


def _modules():
    return sorted(PACKAGE.glob("*.py"))


def _parse(path: pathlib.Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _body_lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = func.body
    first = body[0]
    has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    if has_docstring:
        if len(body) == 1:
            return 0
        first = body[1]
    return func.end_lineno - first.lineno + 1


def _long_functions(path: pathlib.Path):
    rel = f"{path.parent.name}/{path.name}"
    for node in ast.walk(_parse(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = _body_lines(node)
            if length > MAX_BODY_LINES:
                yield f"{rel}:{node.lineno} {node.name}: {length} lines"


def _package_module_aliases(tree: ast.Module, package_modules: set[str]) -> dict[str, str]:
    """Local names bound to modules of the package: ``from . import _programs as prog`` -> prog."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
            (node.level == 1 and node.module is None) or (node.level == 0 and node.module == "convexrelu")
        ):
            for alias in node.names:
                if alias.name in package_modules:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if len(parts) == 2 and parts[0] == "convexrelu" and parts[1] in package_modules and alias.asname:
                    aliases[alias.asname] = parts[1]
    return aliases


def _imported_module(node: ast.ImportFrom) -> str | None:
    """The package module an ``ImportFrom`` reads from (``from ._x import`` / ``from convexrelu._x import``)."""
    if node.level == 1 and node.module:
        return node.module
    if node.level == 0 and node.module and node.module.startswith("convexrelu."):
        return node.module.split(".", 1)[1]
    return None


def _private_uses(path: pathlib.Path, package_modules: set[str]):
    rel = f"{path.parent.name}/{path.name}"
    tree = _parse(path)
    aliases = _package_module_aliases(tree, package_modules)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_module(node)
            if source is None or source == path.stem:
                continue
            for alias in node.names:
                if _is_private(alias.name) and alias.name not in package_modules:
                    yield f"{rel}:{node.lineno} imports {alias.name} from {source}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if module != path.stem and _is_private(node.attr):
                yield f"{rel}:{node.lineno} uses {module}.{node.attr}"


def test_no_function_is_over_80_lines():
    offenders = [line for path in _modules() for line in _long_functions(path)]
    assert not offenders, (
        f"functions over {MAX_BODY_LINES} lines (docstring excluded); split them into named helpers:\n  "
        + "\n  ".join(offenders)
    )


def test_no_module_uses_another_modules_private_names():
    package_modules = {path.stem for path in _modules()}
    offenders = [line for path in _modules() for line in _private_uses(path, package_modules)]
    assert not offenders, "private names used across modules of convexrelu:\n  " + "\n  ".join(offenders)


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The walkers themselves: a long function and both kinds of private use are reported."""
    source = tmp_path / "example.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_BODY_LINES + 1))
    source.write_text(
        'def long():\n    """Doc."""\n' + body + "\n\n"
        "def short():\n    '''Doc.'''\n    return 1\n\n"
        "from ._other import _hidden, visible, __version__\n"
        "from . import _other as other\n"
        "y = other._secret + other.public + other.__name__\n",
        encoding="utf-8",
    )
    long_ones = list(_long_functions(source))
    private = list(_private_uses(source, {"example", "_other"}))
    assert len(long_ones) == 1 and ":1 long: " in long_ones[0] and f"{MAX_BODY_LINES + 1} lines" in long_ones[0]
    assert sorted(line.split("/", 1)[1] for line in private) == [
        f"example.py:{MAX_BODY_LINES + 9} imports _hidden from _other",
        f"example.py:{MAX_BODY_LINES + 11} uses _other._secret",
    ], private
