"""The sweep benchmark runs at a tiny size and its numbers are sane (not timings)."""

from _benchmarks import load_benchmark


def test_bench_sweep_quick(tmp_path):
    *rows, summary = load_benchmark("bench_sweep").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "sweep_quick.md").exists() and (tmp_path / "sweep_quick.json").exists()
    assert [r["devices"] for r in rows] == [1, 2]
    assert all(r["cells"] == 8 and r["cells_per_s"] > 0 for r in rows)
    acc = summary["accuracy"]
    assert acc["statuses_equal"] and acc["optimal"] == 8
    assert acc["p_star_max_rel_diff"] <= 1e-6  # the batched, padded solve reaches the loop's P*
