"""The training benchmark runs at a tiny size and its implementations agree."""

from _benchmarks import load_benchmark


def test_bench_train_quick(tmp_path):
    res = load_benchmark("bench_train").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "train_quick.md").exists() and (tmp_path / "train_quick.json").exists()
    for row in res["rows"]:
        assert row["single_steps_per_s"] > 0 and row["batched_steps_per_s"] > 0 and row["vmap_steps_per_s"] > 0
        assert row["batched_vs_single_max_abs_diff"] < 1e-12  # run 0 of the batch is the single run
        if "torch_final_loss" in row:  # PyTorch installed: the same descent reaches the same loss
            assert row["loss_rel_diff"] < 1e-10
