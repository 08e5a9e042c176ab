"""The patterns benchmark runs at a tiny size; with scnn installed its two implementations agree
(a reported skip otherwise)."""

import pytest

import convexrelu as cr
from _benchmarks import run_quick


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run_quick("bench_patterns", tmp_path_factory)


def test_bench_patterns_quick(res):
    ours = [r for r in res["rows"] if r["impl"] == "convexrelu"]
    assert ours and all(0 < r["patterns"] <= min(r["gates"], cr.pattern_count(res["n"], res["d"])) for r in ours)
    assert all(r["seconds"] > 0 for r in res["rows"])


def test_bench_patterns_agrees_with_scnn(res):
    pytest.importorskip("scnn", reason="the peer (pyscnn) is not installed")
    if str(res.get("scnn", "")).startswith("skipped"):
        pytest.skip(res["scnn"])  # too little memory for scnn's gates on this machine
    ours = [r for r in res["rows"] if r["impl"] == "convexrelu"]
    for tag in ("agreement", "agreement_low_dim"):  # same gates give the same pattern set
        a = res[tag]
        assert a["identical_sets"] and a["ours"] == a["scnn"] > 0
    # the low-dimensional case really deduplicates: far fewer patterns than gates
    assert res["agreement_low_dim"]["ours"] <= cr.pattern_count(60, 2) < res["agreement_low_dim"]["gates"]
    scnn_row = [r for r in res["rows"] if r["impl"] == "scnn"][0]
    same = [r for r in ours if r["gates"] == scnn_row["gates"]][0]
    assert same["patterns"] == scnn_row["patterns"]  # Gaussian data: every gate distinct in both
