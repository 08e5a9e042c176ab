"""The logistic benchmark runs at a tiny size and its numbers are sane (not timings); the peer
(Clarabel through cvxpy) agrees where it certifies optimality, and its test is a reported skip
where cvxpy is not installed."""

import pytest
from _benchmarks import run_quick


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    return run_quick("bench_logistic", tmp_path_factory)


def test_bench_logistic_quick(rows):
    for row in rows:
        assert row["ipm_status"] == "optimal" and row["ipm_gap"] <= 1e-6 and row["ipm_iters"] <= 100


def test_bench_logistic_agrees_with_clarabel(rows):
    pytest.importorskip("cvxpy", reason="the peer (cvxpy + Clarabel) is not installed")
    assert all("clarabel_status" in row for row in rows)  # the peer ran on every row
    optimal = [row for row in rows if row["clarabel_status"] == "optimal"]
    if not optimal:
        pytest.skip("Clarabel certified none of the quick problems: nothing to compare")
    for row in optimal:
        assert abs(row["clarabel_rel_diff"]) <= 1e-5
