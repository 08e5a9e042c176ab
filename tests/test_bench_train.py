"""The training benchmark runs at a tiny size and its implementations agree; the PyTorch peer is
compared where installed (a reported skip otherwise)."""

import pytest
from _benchmarks import run_quick


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    return run_quick("bench_train", tmp_path_factory)


def test_bench_train_quick(res):
    for row in res["rows"]:
        assert row["single_steps_per_s"] > 0 and row["batched_steps_per_s"] > 0 and row["vmap_steps_per_s"] > 0
        assert row["batched_vs_single_max_abs_diff"] < 1e-12  # run 0 of the batch is the single run


def test_bench_train_agrees_with_torch(res):
    pytest.importorskip("torch", reason="the peer (PyTorch) is not installed")
    for row in res["rows"]:
        assert "torch_final_loss" in row  # installed: the peer branch ran
        assert row["loss_rel_diff"] < 1e-10  # the same descent reaches the same loss
