"""The scikit-learn estimators: conventions (clone, parameters, fitted attributes), accuracy,
Pipeline + GridSearchCV, one-vs-rest, the regressor's intercept, ψ's network, bad input."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import convexrelu as cr
from convexrelu.estimators import ConvexReLUClassifier, ConvexReLURegressor


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X[:240], y[:240], test_size=0.25, random_state=0)


def test_clone_and_params_round_trip():
    est = ConvexReLUClassifier(model="gated", beta=3e-3, patterns=17, loss="squared", random_state=4,
                               solver_options={"tol": 1e-5})
    params = est.get_params()
    assert params == clone(est).get_params()
    assert ConvexReLUClassifier(**params).get_params() == params
    est.set_params(beta=0.5, model="relu")
    assert est.beta == 0.5 and est.model == "relu" and clone(est).beta == 0.5
    assert set(ConvexReLURegressor().get_params()) == set(params)


@pytest.mark.parametrize("model", ["relu", "gated"])
def test_classifier_fits_breast_cancer(cancer, model):
    Xtr, Xte, ytr, yte = cancer
    clf = ConvexReLUClassifier(model=model, patterns=40, random_state=0)
    assert clf.fit(Xtr, ytr) is clf
    assert clf.score(Xte, yte) >= 0.9 and clf.n_features_in_ == Xtr.shape[1]
    P = clf.predict_proba(Xte)
    assert P.shape == (len(Xte), 2) and np.allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(Xte), clf.classes_[(clf.decision_function(Xte) >= 0).astype(int)])
    Xa = jnp.concatenate([jnp.asarray(Xte), jnp.ones((len(Xte), 1))], axis=1)
    b = clf.intercept_[0]
    if model == "relu":  # ψ's network on [X, 1], plus the output intercept, is the decision function
        np.testing.assert_allclose(cr.forward(clf.network_, Xa) + b, clf.decision_function(Xte), atol=1e-6)
    else:
        np.testing.assert_allclose(cr.gated_forward(clf.network_, Xa) + b, clf.decision_function(Xte), atol=1e-8)
    # the unregularized intercept's optimality condition: r = y σ(-y f) sums to zero on the training set
    r = clf.solutions_[0].dual
    assert abs(float(jnp.sum(r))) <= 1e-8 * float(jnp.linalg.norm(r))


def test_pipeline_and_grid_search(cancer):
    Xtr, _, ytr, _ = cancer
    pipe = make_pipeline(StandardScaler(), ConvexReLUClassifier(model="gated", patterns=15, random_state=0))
    grid = GridSearchCV(pipe, {"convexreluclassifier__beta": [1e-3, 1e-1]}, cv=2).fit(Xtr[:80], ytr[:80])
    assert grid.best_params_["convexreluclassifier__beta"] in (1e-3, 1e-1) and grid.best_score_ > 0.8


def test_multiclass_one_vs_rest():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = ConvexReLUClassifier(model="gated", patterns=30, random_state=0).fit(X, y)
    assert len(clf.solutions_) == 3 and clf.decision_function(X).shape == (150, 3)
    assert clf.score(X, y) >= 0.9 and np.allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_regressor_and_intercept():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    y = 5.0 + np.maximum(X[:, 0], 0.0) - 0.5 * X[:, 1]
    reg = ConvexReLURegressor(patterns=30, beta=1e-4, random_state=0).fit(X, y)
    # the unregularized intercept's optimality condition: the residuals sum to zero
    assert np.mean(reg.predict(X)) == pytest.approx(np.mean(y), abs=1e-4) and reg.score(X, y) >= 0.95
    shifted = ConvexReLURegressor(patterns=30, beta=1e-4, random_state=0).fit(X, y + 10.0)
    np.testing.assert_allclose(shifted.predict(X), reg.predict(X) + 10.0, atol=1e-3)  # translation equivariance
    gated = ConvexReLURegressor(model="gated", patterns=30, beta=1e-4, random_state=0).fit(X, y)
    assert gated.score(X, y) >= 0.95


def test_bad_input():
    X = np.random.default_rng(1).standard_normal((20, 2))
    with pytest.raises(ValueError, match="2 classes"):
        ConvexReLUClassifier().fit(X, np.ones(20))
    with pytest.raises(ValueError):
        ConvexReLUClassifier().fit(np.where(X > 1, np.nan, X), np.arange(20) % 2)
    with pytest.raises(ValueError, match="model"):
        ConvexReLUClassifier(model="tree").fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError, match="loss"):
        ConvexReLURegressor(loss="logistic").fit(X, X[:, 0])
    clf = ConvexReLUClassifier(model="gated", patterns=5, random_state=0).fit(X, np.arange(20) % 2)
    with pytest.raises(ValueError):
        clf.predict(X[:, :1])  # wrong number of features


def test_softmax_classifier_is_one_multi_output_program():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = ConvexReLUClassifier(model="gated", loss="softmax", patterns=20, random_state=0).fit(X, y)
    W = clf.solutions_[0].W
    assert len(clf.solutions_) == 1 and W.shape[0] == 3 and W.shape[2] == 5  # (c, p, d + 1)
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.array_equal(np.argmax(P, axis=1), np.argmax(clf.decision_function(X), axis=1))
    assert clf.score(X, y) >= 0.9
    relu = ConvexReLUClassifier(loss="softmax", beta=1e-2, patterns=20, random_state=0, solver_options={"tol": 1e-4})
    relu.fit(X, y)  # the matrix-free ReLU program, certified to 1e-4
    U = relu.solutions_[0].U
    assert relu.solutions_[0].ok and U.shape[0] == 3 and U.shape[2] == 5 and len(relu.network_) == 3
    Xa = np.concatenate([X, np.ones((len(X), 1))], axis=1)  # each class's ψ network gives that output
    F = np.stack([np.asarray(cr.forward(net, jnp.asarray(Xa))) for net in relu.network_], axis=1)
    np.testing.assert_allclose(F, relu.decision_function(X), atol=1e-8)
    assert relu.score(X, y) >= 0.9
