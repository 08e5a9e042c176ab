"""β_max (exact, against per-block cvxpy programs) and the regularization path; the CLI's ``fit``."""

import json

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import convexrelu as cr
from convexrelu import cli


def _problem(n=24, d=3, num=12, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    X = jax.random.normal(k1, (n, d), jnp.float64)
    y = jnp.sign(X @ jax.random.normal(k2, (d,), jnp.float64) + 0.2)
    D, G = cr.sample_patterns(X, num=num, key=k3, return_gates=True)
    return X, y, D, G


def _cone_support(X, pattern, h):
    """``max_{u ∈ K, ‖u‖ ≤ 1} hᵀu`` by cvxpy: the independent reference of ``‖Π_K(h)‖``."""
    X, h = np.asarray(X), np.asarray(h)
    S = 2.0 * np.asarray(pattern, float) - 1.0
    u = cp.Variable(X.shape[1])
    prob = cp.Problem(cp.Maximize(h @ u), [cp.multiply(S, X @ u) >= 0, cp.norm(u) <= 1])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return max(prob.value, 0.0)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_beta_max_relu_matches_the_cone_programs(loss):
    X, y, D, _ = _problem()
    g = y if loss == "squared" else 0.5 * y
    H = (np.asarray(D, float) * np.asarray(g)) @ np.asarray(X)
    ref = max(max(_cone_support(X, D[j], H[j]), _cone_support(X, D[j], -H[j])) for j in range(D.shape[0]))
    assert abs(float(cr.beta_max(X, y, D, loss=loss)) - ref) <= 1e-7 * ref
    gated = float(cr.beta_max(X, y, D, loss=loss, model="gated"))
    assert gated == pytest.approx(float(np.max(np.linalg.norm(H, axis=1))), rel=1e-12) and gated >= ref


def test_beta_max_relu_is_exact():
    """At β_max the zero solution is certified optimal; just below it the optimum is not zero."""
    X, y, D, _ = _problem(seed=1)
    bmax = float(cr.beta_max(X, y, D))
    loss0 = 0.5 * float(jnp.sum(y * y))
    path = cr.regularization_path(X, y, D, betas=[bmax, 0.99 * bmax], solver_options={"tol": 1e-8})
    zero = path.solutions[0]
    assert path.status[0] == "optimal" and float(zero.gap) <= 1e-12 and path.active[0] == 0
    assert float(jnp.max(jnp.abs(zero.U))) == 0.0 and float(zero.value) == pytest.approx(loss0, rel=1e-14)
    # the certificate is the library's own optimality with the projections' cone multipliers
    opt = cr.optimality(X, y, D, zero.U, zero.V, zero.dual, zero.cone_dual, program="regularized-squared", beta=bmax)
    assert float(opt.gap) <= 1e-12
    # just below: a point within the certified gap 1e-8 lies clearly below ℓ(0), so zero is not optimal
    assert path.status[1] == "optimal" and path.objective[1] < loss0 * (1 - 1e-6) and path.active[1] > 0


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_path_group_norm_grows_as_beta_decreases(model):
    X, y, D, G = _problem(seed=2)
    Xv, yv, _, _ = _problem(seed=3)
    path = cr.regularization_path(
        X, y, D, num=8, model=model, X_val=Xv, y_val=yv, gates=G, solver_options={"tol": 1e-7}
    )
    assert np.all(np.diff(path.betas) < 0) and path.betas[0] == pytest.approx(path.beta_max)
    assert all(s == "optimal" for s in path.status), path.status
    assert np.all(np.diff(path.group_norm) >= -1e-3 * path.group_norm.max())
    assert path.group_norm[0] == 0 and path.group_norm[-1] > 0 and path.active[-1] > 0
    assert np.all(np.diff(path.objective) <= 1e-6 * path.objective[0])  # the optimum falls with β
    assert path.metric == "accuracy" and path.train_score[-1] >= 0.9 and path.val_score.shape == (8,)
    rec = json.loads(json.dumps(path.to_json()))
    assert rec["model"] == model and len(rec["betas"]) == 8


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_softmax_path(model):
    """c = 3 classes, softmax loss: the zero network at β_max (value n log c), the optimum falls and
    the group norm grows as β decreases, warm-started points equal cold solves."""
    X, _, D, G = _problem(n=30, num=6, seed=5)
    labels = np.asarray(jnp.argmax(X @ jax.random.normal(jax.random.key(7), (3, 3)), axis=1))
    Y = np.eye(3)[labels]
    path = cr.regularization_path(
        X[:24], Y[:24], D[:, :24], num=4, min_ratio=0.1, loss="softmax", model=model, X_val=X[24:], y_val=Y[24:], gates=G,
    )
    assert all(s == "optimal" for s in path.status), path.status
    assert path.beta_max == pytest.approx(float(cr.beta_max(X[:24], Y[:24], D[:, :24], loss="softmax", model=model)))
    assert path.objective[0] == pytest.approx(24 * np.log(3)) and path.group_norm[0] == 0
    assert np.all(np.diff(path.objective) < 0) and np.all(np.diff(path.group_norm) > 0)
    assert path.metric == "accuracy" and path.train_score[-1] > path.train_score[0] and path.val_score.shape == (4,)
    solve = cr.solve_gated if model == "gated" else cr.solve_regularized
    cold = solve(X[:24], Y[:24], D[:, :24], beta=float(path.betas[-1]), loss="softmax")
    assert float(cold.value) == pytest.approx(path.objective[-1], rel=3e-6)
    with pytest.raises(ValueError, match="constant feature"):
        cr.regularization_path(X, Y, D, loss="softmax", model=model, intercept=True)
    with pytest.raises(ValueError, match="accuracy"):
        cr.regularization_path(X, Y, D, loss="softmax", model=model, metric="r2")


def test_path_regression_r2_and_bad_input():
    X, _, D, G = _problem(seed=4)
    t = jnp.sin(2.0 * X[:, 0]) + X[:, 1]
    path = cr.regularization_path(X, t, D, num=4, model="gated")
    assert path.metric == "r2" and path.train_score[-1] > path.train_score[0]
    with pytest.raises(ValueError, match="gates"):
        cr.regularization_path(X, t, D, num=3, model="gated", X_val=X, y_val=t)
    with pytest.raises(ValueError, match="betas"):
        cr.regularization_path(X, t, D, betas=[1.0, -1.0])
    with pytest.raises(ValueError, match="model"):
        cr.regularization_path(X, t, D, model="linear")
    with pytest.raises(ValueError, match="beta_max is 0"):
        cr.regularization_path(X, jnp.zeros_like(t), D)


def test_cli_fit_and_path(tmp_path, capsys):
    args = ["--no-cache", "fit", "--data", "breast_cancer", "--n", "120", "--patterns", "20", "--quiet"]
    assert cli.main(args + ["--model", "gated", "--beta", "1.0", "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["status"] == "optimal" and one["n_test"] == 24 and one["test_score"] > 0.8 and one["active"] > 0
    out = tmp_path / "run"
    assert cli.main(args + ["--model", "relu", "--path", "--num", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "β_max" in text and "active" in text
    rec = json.loads((out / "fit.json").read_text())
    assert len(rec["betas"]) == 4 and rec["active"][0] == 0 and (out / "path.png").stat().st_size > 0
    # an unregularized intercept: the program's value can only drop (b = 0 is feasible)
    assert cli.main(args + ["--model", "gated", "--beta", "1.0", "--json", "--intercept"]) == 0
    with_b = json.loads(capsys.readouterr().out)
    assert with_b["status"] == "optimal" and with_b["objective"] <= one["objective"] * (1 + 1e-6)
    assert with_b["intercept"] is True and one["intercept_b"] == 0.0
    # the ReLU program's logistic intercept, against its program without one
    relu = [args + ["--model", "relu", "--beta", "1.0", "--json"] + extra for extra in ([], ["--intercept"])]
    assert cli.main(relu[0]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert cli.main(relu[1]) == 0
    with_b = json.loads(capsys.readouterr().out)
    assert with_b["status"] == "optimal" and with_b["objective"] <= plain["objective"] * (1 + 1e-6)
    with pytest.raises(SystemExit):
        cli.main(["--no-cache", "fit", "--data", "breast_cancer"])  # no --beta and no --path
