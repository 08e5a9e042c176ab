"""The patterns benchmark runs at a tiny size and its two implementations agree."""

import convexrelu as cr
from _benchmarks import load_benchmark


def test_bench_patterns_quick(tmp_path):
    res = load_benchmark("bench_patterns").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "patterns_quick.md").exists() and (tmp_path / "patterns_quick.json").exists()
    ours = [r for r in res["rows"] if r["impl"] == "convexrelu"]
    assert ours and all(0 < r["patterns"] <= min(r["gates"], cr.pattern_count(res["n"], res["d"])) for r in ours)
    assert all(r["seconds"] > 0 for r in res["rows"])
    if "agreement" in res:  # scnn installed: same gates give the same pattern set
        for tag in ("agreement", "agreement_low_dim"):
            a = res[tag]
            assert a["identical_sets"] and a["ours"] == a["scnn"] > 0
        # the low-dimensional case really deduplicates: far fewer patterns than gates
        assert res["agreement_low_dim"]["ours"] <= cr.pattern_count(60, 2) < res["agreement_low_dim"]["gates"]
        scnn_row = [r for r in res["rows"] if r["impl"] == "scnn"][0]
        same = [r for r in ours if r["gates"] == scnn_row["gates"]][0]
        assert same["patterns"] == scnn_row["patterns"]  # Gaussian data: every gate distinct in both
