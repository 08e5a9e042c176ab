"""The gradient benchmark runs at a tiny size and its gradients agree with cvxpylayers."""

from _benchmarks import load_benchmark


def test_bench_grad_quick(tmp_path):
    res = load_benchmark("bench_grad").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "grad_quick.md").exists() and (tmp_path / "grad_quick.json").exists()
    for row in res["rows"] + res["large"]:
        assert row["forward_s"] > 0 and row["fwd_bwd_s"] > 0
    for row in res["rows"]:
        if "grad_rel_diff" in row:  # cvxpylayers installed: the same gradient
            assert row["grad_rel_diff"] < 1e-3
