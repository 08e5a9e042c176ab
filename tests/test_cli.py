"""The command line: ``convexrelu crosscheck`` and ``convexrelu solve`` at tiny sizes."""

import json

import pytest

from convexrelu import cli

RUN_FIELDS = {
    "final_margin",
    "margin_ratio",
    "reached_gamma_star",
    "early_alignment",
    "kkt_certificate",
    "kkt_residual",
    "certified_optimal",
    "psi_output_cosine",
    "psi_sign_agreement",
    "psi_direction_cosine",
}


@pytest.mark.slow
def test_crosscheck_tiny_passes_and_writes_report(tmp_path, capsys):
    code = cli.main(
        ["crosscheck", "--dataset", "2d", "--n", "12", "--m", "10", "--runs", "2", "--steps", "30000",
         "--out", str(tmp_path), "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["passed"] and all(rep["checks"].values())
    assert rep["patterns"]["exact"]
    # P* from both solvers agree, γ* = 1/(2P*), and every run reached it (orthogonally separable data)
    assert rep["bridge"]["ran"] and rep["bridge"]["relative_difference"] <= 1e-4
    assert rep["gamma_star"] == pytest.approx(1 / (2 * rep["native"]["value"]))
    assert rep["native"]["certificate"] == pytest.approx(1.0, abs=1e-4)  # c(y ⊙ μ*) = 1 at the optimum
    for run in rep["runs_detail"]:
        assert RUN_FIELDS <= set(run)
        assert 1 - 1e-3 <= run["margin_ratio"] <= 1 + 1e-6  # γ(θ) ≤ γ* always (weak duality)
        assert run["certified_optimal"] and run["psi_output_cosine"] > 0.999
    assert set(rep["times_s"]) >= {"training", "patterns", "native solver", "cvxpy solver", "certificates"}
    for png in ("margins.png", "alignment.png", "directions.png"):
        assert (tmp_path / png).stat().st_size > 0
    assert "crosscheck PASSED" in out


@pytest.mark.slow
def test_crosscheck_with_far_too_few_steps_fails(capsys):
    code = cli.main(
        ["crosscheck", "--dataset", "2d", "--n", "12", "--m", "10", "--runs", "2", "--steps", "50",
         "--no-bridge", "--quiet"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] every run reaches γ*" in out and "crosscheck FAILED" in out


def test_solve_prints_value_status_gap(tmp_path, capsys):
    import jax
    import numpy as np

    from convexrelu import datasets

    X, y = datasets.orthogonally_separable(10, 2, key=jax.random.key(3))
    path = tmp_path / "data.npz"
    np.savez(path, X=np.asarray(X), y=np.asarray(y))
    assert cli.main(["solve", "--data", str(path), "--program", "regularized", "--beta", "0.1"]) == 0
    out = capsys.readouterr().out
    for field in ("value", "status    : optimal", "gap", "time"):
        assert field in out


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["crosscheck", "--runs", "0"])
    with pytest.raises(SystemExit, match="unknown dataset"):
        cli.main(["crosscheck", "--dataset", "no-such-data"])
    with pytest.raises(SystemExit, match="--beta is required"):
        cli.main(["solve", "--program", "regularized", "--n", "8", "--d", "2"])
