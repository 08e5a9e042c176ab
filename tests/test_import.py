"""``import convexrelu`` stays light: the bridge and plotting load lazily (STYLE.md §1)."""

import subprocess
import sys


def test_import_does_not_load_heavy_optional_dependencies():
    code = (
        "import sys, convexrelu\n"
        "heavy = [m for m in ('cvxpy', 'cvxpylayers', 'matplotlib', 'sklearn', 'torch') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import convexrelu loaded {out.stdout.strip()}"
