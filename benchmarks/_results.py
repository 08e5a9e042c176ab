"""Where every benchmark writes its result: ``<out>/<name>.md`` (the table) and ``<out>/<name>.json``."""

from __future__ import annotations

import json
import os

import numpy as np


def _plain(o):
    """JSON fallback: NumPy scalars as Python numbers, anything else as its string."""
    return o.item() if isinstance(o, np.generic) else str(o)


def write_results(out: str | os.PathLike, name: str, markdown: str, data) -> None:
    """Write ``markdown`` to ``out/name.md`` and ``data`` to ``out/name.json`` (creating ``out``)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write(markdown + "\n")
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(data, f, indent=2, default=_plain)
