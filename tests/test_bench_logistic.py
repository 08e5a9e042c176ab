"""The logistic benchmark runs at a tiny size and its numbers are sane (not timings)."""

from _benchmarks import load_benchmark


def test_bench_logistic_quick(tmp_path):
    rows = load_benchmark("bench_logistic").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "logistic_quick.md").exists() and (tmp_path / "logistic_quick.json").exists()
    for row in rows:
        assert row["ipm_status"] == "optimal" and row["ipm_gap"] <= 1e-6 and row["ipm_iters"] <= 100
        if row["clarabel_status"] == "optimal":  # the peer, where it certifies optimality
            assert abs(row["clarabel_rel_diff"]) <= 1e-5
