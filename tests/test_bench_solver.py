"""The solver benchmark runs at a tiny size and its numbers are sane (not timings)."""

import numpy as np
from _benchmarks import load_benchmark


def test_bench_solver_quick(tmp_path):
    rows = load_benchmark("bench_solver").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "solver_quick.md").exists() and (tmp_path / "solver_quick.json").exists()
    mm = rows[0]
    assert mm["peer"] == "clarabel" and abs(mm["rel_diff"]) <= 1e-5
    assert mm["ours_gap"] <= 1e-6 and mm["ours_residual"] <= 1e-6
    reg = rows[1]
    assert reg["ours_status"] == "optimal" and reg["ours_gap"] <= 1e-6
    if reg.get("peer") == "scnn AL":  # ours solves to 1e-6: never worse than the peer beyond that
        assert reg["ours_objective"] <= reg["peer_objective"] * (1 + 1e-5) or reg["peer_residual"] > 1e-6
        assert np.isfinite(reg["peer_objective"])
