"""The cross-check as a library function: ``cr.crosscheck`` on the tiny 2-D dataset."""

import json

import jax
import numpy as np
import pytest

import convexrelu as cr

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


def _tiny():
    """The CLI's ``--dataset 2d --n 12``: orthogonally separable points in the plane."""
    return cr.datasets.two_d(12, key=jax.random.key(0), kind="orthogonal")


@pytest.mark.slow
def test_crosscheck_tiny_passes():
    X, y = _tiny()
    rep = cr.crosscheck(X, y, m=10, runs=2, steps=30_000, key=jax.random.key(1), info={"dataset": "2d", "seed": 0})
    assert isinstance(rep, cr.CrosscheckReport)
    assert rep.passed and all(c.passed for c in rep.checks)
    assert rep.exact and rep.orthogonally_separable and (rep.n, rep.d, rep.runs) == (12, 2, 2)
    # P* from both solvers agree, γ* = 1/(2P*), and every run reached it (orthogonally separable data)
    assert rep.bridge["ran"] and rep.bridge["relative_difference"] <= 1e-4
    assert rep.gamma_star == pytest.approx(1 / (2 * rep.native["value"]))
    assert rep.native["value"] == pytest.approx(float(rep.solution.value))
    assert rep.native["certificate"] == pytest.approx(1.0, abs=1e-4)  # c(y ⊙ μ*) = 1 at the optimum
    assert len(rep.rows) == 2
    for run in rep.rows:
        assert 1 - 1e-3 <= run.margin_ratio <= 1 + 1e-6  # γ(θ) ≤ γ* always (weak duality)
        assert run.certified_optimal and run.psi_output_cosine > 0.999
        assert run.reached_gamma_star and not run.diverged
        assert run.kkt_certificate <= 1 + 1e-3  # the certificate behind "certified"
    # the recorded margins are the networks' own: γ(θ_T) of each trained run
    margins = jax.vmap(lambda net: cr.normalized_margin(net, X, y))(rep.networks)
    assert np.allclose([r.final_margin for r in rep.rows], np.asarray(margins))
    assert set(rep.timings) >= {"training", "patterns", "native solver", "cvxpy solver", "certificates"}
    names = [c.name for c in rep.checks]
    assert names == [
        "native solver optimal",
        "cvxpy agrees with native (1e-4 rel.)",
        "weak duality γ(θ) ≤ γ* (all runs)",
        "every run reaches γ* (within 0.001)",
        "certificates consistent with margins",
    ]
    tol = {c.name: c.tolerances for c in rep.checks}
    assert tol["every run reaches γ* (within 0.001)"] == {"margin_tol": 1e-3}
    assert tol["certificates consistent with margins"] == {"margin_tol": 1e-3, "kkt_tol": 1e-2, "cert_tol": 1e-3}
    # history and alignment record: (r, k) and (r, c), alignment steps from 0 to steps
    assert rep.history.normalized_margin.shape[0] == 2 and rep.alignment.shape == (2, len(rep.alignment_steps))
    assert rep.alignment_steps[0] == 0 and rep.alignment_steps[-1] == 30_000

    # to_json: plain JSON with the report's keys (what `convexrelu crosscheck` writes)
    js = json.loads(json.dumps(rep.to_json()))
    assert js["passed"] and all(js["checks"].values())
    assert js["dataset"] == "2d" and js["seed"] == 0 and js["patterns"]["exact"]
    assert js["gamma_star"] == pytest.approx(1 / (2 * js["native"]["value"]))
    assert js["bridge"]["ran"] and js["bridge"]["relative_difference"] <= 1e-4
    assert set(js["times_s"]) >= {"training", "patterns", "native solver", "cvxpy solver", "certificates"}
    for run in js["runs_detail"]:
        assert RUN_FIELDS <= set(run)
        assert 1 - 1e-3 <= run["margin_ratio"] <= 1 + 1e-6
        assert run["certified_optimal"] and run["psi_output_cosine"] > 0.999
    assert set(js["check_tolerances"]) == set(js["checks"])


@pytest.mark.slow
def test_crosscheck_with_far_too_few_steps_fails():
    X, y = _tiny()
    rep = cr.crosscheck(X, y, m=10, runs=2, steps=50, bridge=False, key=jax.random.key(1))
    assert not rep.passed
    checks = {c.name: c.passed for c in rep.checks}
    assert checks["every run reaches γ* (within 0.001)"] is False
    assert checks["native solver optimal"]  # the convex side is fine; gradient descent is not there yet
    assert not any(r.reached_gamma_star for r in rep.rows)
    assert not rep.bridge["ran"] and "cvxpy solver" not in rep.timings
    assert rep.to_json()["passed"] is False


def test_crosscheck_refuses_bad_input():
    X, y = _tiny()
    with pytest.raises(ValueError, match="runs"):
        cr.crosscheck(X, y, runs=0, key=jax.random.key(0))
    with pytest.raises(TypeError, match="steps"):
        cr.crosscheck(X, y, steps=10.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="labels"):
        cr.crosscheck(X, 2 * y, key=jax.random.key(0))
    with pytest.raises(ValueError, match="2-D"):
        cr.crosscheck(X[:, 0], y, key=jax.random.key(0))
