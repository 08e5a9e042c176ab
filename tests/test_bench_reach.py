"""The reach benchmark runs at a tiny size and its numbers are sane (not timings)."""

from _benchmarks import load_benchmark


def test_bench_reach_quick(tmp_path):
    out = load_benchmark("bench_reach").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "reach_quick.md").exists() and (tmp_path / "reach_quick.json").exists()
    relu = out["relu"][0]  # the matrix-free solver certifies the ReLU program; scnn AL ran or said why not
    assert relu["ours_status"] == "optimal" and relu["ours_gap"] <= 1e-4 and relu["ours_residual"] <= 1e-4
    assert relu["ours_peak_mb"] > 0 and ("peer_objective" in relu or "peer_note" in relu)
    row = out["gated"][0]
    assert row["ours_status"] == "optimal" and row["ours_gap"] <= 1e-4
    if row.get("peer") == "scnn R-FISTA":  # ours reaches scnn's objective at some tolerance
        assert "ours_equal_s" in row and row["ours_equal_objective"] <= row["peer_objective"]
    else:
        assert row["peer"].startswith("skipped")
    for r in out["estimators"]:
        assert r["convex_relu_acc"] >= 0.6 and r["convex_gated_acc"] >= 0.6
