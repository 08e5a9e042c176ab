"""scikit-learn estimators of the convex two-layer ReLU (or gated ReLU) network.

``from convexrelu.estimators import ConvexReLUClassifier, ConvexReLURegressor`` (this module imports
scikit-learn, an optional extra: ``pip install convexrelu[datasets]``; ``import convexrelu`` never
loads it). Each ``fit`` samples ``patterns`` Gaussian gates on the (augmented) training data and
solves the convex program once, to a certified duality gap:

* ``model="relu"``: the regularized ReLU program (:func:`convexrelu.solve_regularized`), whose
  solution is the network ``network_`` by ψ (:func:`convexrelu.to_network`): globally optimal among
  networks whose neurons use the sampled patterns.
* ``model="gated"``: the gated ReLU program (:func:`convexrelu.solve_gated`, R-FISTA); ``network_`` is
  the :class:`convexrelu.GatedNetwork` of the gates.

Conventions, stated plainly:

* ``beta`` is per sample, as in scikit-learn and scnn: the estimator minimizes
  ``(1/n) ℓ(f, y) + beta Σ_j ‖·‖``, i.e. the library's program with ``β = n · beta``.
* ``fit_intercept=True`` appends a constant feature 1 to ``X`` (so every neuron, and every gate,
  gets a bias, regularized with its weights), and fits an unregularized output intercept inside
  the convex program (``intercept=True`` of the solvers: exact, certified; ``intercept_``, added
  back by ``predict`` and ``decision_function``; not for ``loss="softmax"``). ``network_`` acts on
  ``[X, 1]`` then, without the output intercept.
* Multi-class classification: with ``loss="softmax"`` one program with an output per class,
  softmax cross-entropy, every output its own neurons on the shared gates (scnn's convention; the
  ReLU program by the matrix-free solver, :func:`convexrelu.solve_regularized`); with the logistic loss one-vs-rest, one binary program per class (labels
  ±1) on the same patterns; with the squared loss one-vs-rest is exactly the program with one
  output per class (it separates). ``predict`` takes the largest decision value.
* ``predict_proba`` is the softmax of the outputs (softmax loss), ``σ(f)`` (logistic loss); for
  the squared loss it is the score ``clip((1 + f) / 2, 0, 1)`` (not calibrated). One-vs-rest rows
  are normalized to sum to 1.

The defaults (``beta=1e-3``, 100 gates, intercept) fit standardized features well: put a
``StandardScaler`` before the estimator in a ``Pipeline``.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._gated import GatedNetwork, solve_gated
from ._maps import to_network
from ._path import predict
from ._patterns import sample_patterns
from ._solver import solve_regularized

try:  # scikit-learn ≥ 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, X, y="no_validation", reset=True, **kw):
        return estimator._validate_data(X, y, reset=reset, **kw)


__all__ = ["ConvexReLUClassifier", "ConvexReLURegressor"]


class _ConvexNetwork(BaseEstimator):
    """What the classifier and the regressor share: parameters, fitting, the decision values."""

    def __init__(
        self, *, model="relu", beta=1e-3, patterns=100, loss="squared", fit_intercept=True, random_state=None,
        solver_options=None,
    ):
        self.model = model
        self.beta = beta
        self.patterns = patterns
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.solver_options = solver_options

    def _check_params(self, losses):
        if self.model not in ("relu", "gated"):
            raise ValueError(f"model must be 'relu' or 'gated', got {self.model!r}")
        if self.loss not in losses:
            raise ValueError(f"loss must be one of {losses}, got {self.loss!r}")
        if not (isinstance(self.beta, (int, float, np.floating)) and np.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta must be a finite positive number, got {self.beta!r}")
        if isinstance(self.patterns, bool) or not isinstance(self.patterns, (int, np.integer)) or self.patterns < 1:
            raise ValueError(f"patterns must be a positive int (the number of sampled gates), got {self.patterns!r}")
        if self.solver_options is not None and not isinstance(self.solver_options, dict):
            raise TypeError(f"solver_options must be a dict of solver keyword arguments, got {type(self.solver_options).__name__}")

    def _design(self, X):
        """``X`` (validated) as a JAX array of the default float dtype, with the constant column."""
        X = jnp.asarray(X, jnp.asarray(1.0).dtype)
        if self.fit_intercept:
            X = jnp.concatenate([X, jnp.ones((X.shape[0], 1), X.dtype)], axis=1)
        return X

    def _fit_targets(self, X, targets, intercept=False):
        """Sample the gates and solve one program per target column (labels ±1 or real), with an
        unregularized intercept when ``intercept``."""
        Xa = self._design(X)
        seed = check_random_state(self.random_state).randint(0, 2**31 - 1)
        D, G = sample_patterns(Xa, num=int(self.patterns), key=jax.random.key(seed), return_gates=True)
        beta = Xa.shape[0] * float(self.beta)
        opts = dict(self.solver_options or {})
        sols = []
        for t in targets:
            t = jnp.asarray(t, Xa.dtype)
            if self.model == "gated":
                sol = solve_gated(Xa, t, D, beta=beta, loss=self.loss, throw=False, intercept=intercept, **opts)
            else:
                sol = solve_regularized(Xa, t, D, beta=beta, loss=self.loss, throw=False, intercept=intercept, **opts)
            if not sol.ok:
                warnings.warn(
                    f"convex solver stopped with status {sol.status_name} (gap {float(sol.gap):.1e}); "
                    "raise solver_options['max_iters'] or loosen 'tol'",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            sols.append(sol)
        self.gates_ = G
        self.solutions_ = sols
        self.n_iter_ = np.array([int(s.iterations) for s in sols])
        nets = [GatedNetwork(gates=G, W=s.W) if self.model == "gated" else _relu_networks(s) for s in sols]
        self.network_ = nets[0] if len(nets) == 1 else nets
        return self

    def _decision(self, X) -> np.ndarray:
        """Decision values ``(n, k)``, one column per fitted program."""
        check_is_fitted(self, "solutions_")
        X = _validate_data(self, X, reset=False)
        Xa = self._design(X)
        cols = []
        for s in self.solutions_:  # ψ's (or the gated) network plus the intercept; (c, n) for c outputs
            f = np.asarray(predict(s, Xa, gates=self.gates_), np.float64)
            cols.extend(f if f.ndim == 2 else [f])  # a softmax program's (c, n) fits: one column per class
        return np.stack(cols, axis=1)


def _relu_networks(sol):
    """ψ's network of a ReLU program's solution (also of one that stopped short, which ``fit``
    warned about); a list of one network per output for ``c`` softmax outputs (blocks
    ``(c, p, d)``: each output its own neurons)."""
    if sol.U.ndim == 2:  # allow_inexact: fit warned about an unfinished solve; its blocks still give its fit
        return to_network(sol, allow_inexact=True)
    outputs = [eqx.tree_at(lambda t: (t.U, t.V), sol, (sol.U[k], sol.V[k])) for k in range(sol.U.shape[0])]
    return [to_network(s, allow_inexact=True) for s in outputs]


class ConvexReLUClassifier(ClassifierMixin, _ConvexNetwork):
    """A two-layer ReLU (or gated ReLU) classifier trained by its convex program.

    Parameters:
        model: ``"relu"`` (default) or ``"gated"``.
        beta: per-sample regularization (program ``β = n · beta``); default 1e-3.
        patterns: number of sampled gates (distinct patterns ≤ this); default 100.
        loss: ``"logistic"`` (default), ``"squared"`` (on labels ±1; one-vs-rest for more than two
            classes) or ``"softmax"`` (one program with an output per class, softmax cross-entropy;
            each output its own neurons on the shared gates).
        fit_intercept: append a constant feature (neuron biases) and fit the program's
            unregularized output intercept (not with ``loss="softmax"``); default True.
        random_state: seed of the gates (int, ``RandomState`` or None).
        solver_options: keyword arguments of the solver (``tol``, ``max_iters``, ...).

    Attributes:
        classes_: the class labels.
        n_features_in_: the number of features seen by ``fit``.
        intercept_: the programs' unregularized intercepts, one per binary problem (zeros without
            ``fit_intercept`` or with ``loss="softmax"``).
        gates_: the gates, ``(p, d)`` (``d + 1`` with the intercept feature).
        solutions_: one solution per binary problem: one for two classes, one per class
            otherwise (one-vs-rest); one multi-output solution for ``loss="softmax"``.
        network_: ψ's :class:`convexrelu.Network` (a list of them one-vs-rest, and one per class
            with ``loss="softmax"``), or a :class:`convexrelu.GatedNetwork` for ``model="gated"``.
        n_iter_: the solver's iterations.

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> clf = make_pipeline(StandardScaler(), ConvexReLUClassifier(random_state=0)).fit(X, y)
        >>> clf.score(X_test, y_test)
    """

    def __init__(
        self, *, model="relu", beta=1e-3, patterns=100, loss="logistic", fit_intercept=True, random_state=None,
        solver_options=None,
    ):
        super().__init__(
            model=model, beta=beta, patterns=patterns, loss=loss, fit_intercept=fit_intercept,
            random_state=random_state, solver_options=solver_options,
        )

    def fit(self, X, y):
        """Fit on ``X (n, d)`` and class labels ``y (n,)`` (two or more classes). Returns self."""
        self._check_params(("logistic", "squared", "softmax"))
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(f"the classifier needs at least 2 classes in y, got only {self.classes_.tolist()}")
        if self.loss == "softmax":
            targets = [(y[:, None] == self.classes_[None, :]).astype(np.float64)]  # one-hot (n, c)
        elif len(self.classes_) == 2:
            targets = [np.where(y == self.classes_[1], 1.0, -1.0)]
        else:
            targets = [np.where(y == c, 1.0, -1.0) for c in self.classes_]
        self._fit_targets(X, targets, intercept=bool(self.fit_intercept) and self.loss != "softmax")
        self.intercept_ = np.concatenate([np.ravel(np.asarray(s.intercept, np.float64)) for s in self.solutions_])
        if self.loss == "softmax":
            self.intercept_ = np.zeros(len(self.classes_))
        return self

    def decision_function(self, X) -> np.ndarray:
        """``f(x)``: shape ``(n,)`` for two classes (positive means ``classes_[1]``), else ``(n, c)``."""
        F = self._decision(X)
        if self.loss == "softmax" and F.shape[1] == 2:
            return F[:, 1] - F[:, 0]  # the binary convention: positive means classes_[1]
        return F[:, 0] if F.shape[1] == 1 else F

    def predict(self, X) -> np.ndarray:
        """The predicted class of each sample."""
        F = self.decision_function(X)
        idx = (F >= 0).astype(int) if F.ndim == 1 else np.argmax(F, axis=1)
        return self.classes_[idx]

    def predict_proba(self, X) -> np.ndarray:
        """Class scores ``(n, c)`` summing to 1 (see the module docstring for their meaning)."""
        F = self._decision(X)
        if self.loss == "softmax":
            E = np.exp(F - F.max(axis=1, keepdims=True))
            return E / E.sum(axis=1, keepdims=True)
        P = 1.0 / (1.0 + np.exp(-F)) if self.loss == "logistic" else np.clip((1.0 + F) / 2.0, 0.0, 1.0)
        if P.shape[1] == 1:
            return np.concatenate([1.0 - P, P], axis=1)
        total = P.sum(axis=1, keepdims=True)
        return np.where(total > 0, P / np.where(total > 0, total, 1.0), 1.0 / P.shape[1])


class ConvexReLURegressor(RegressorMixin, _ConvexNetwork):
    """A two-layer ReLU (or gated ReLU) regressor trained by its convex program (squared loss).

    Parameters: as :class:`ConvexReLUClassifier`, with ``loss="squared"`` (the only loss);
    ``fit_intercept`` also fits the program's unregularized output intercept ``intercept_``.

    Attributes:
        n_features_in_: the number of features seen by ``fit``.
        intercept_: the program's unregularized intercept ``b`` (0 without ``fit_intercept``).
        gates_: the gates, ``(p, d)`` (``d + 1`` with the intercept feature).
        solutions_: the one solution.
        network_: ψ's :class:`convexrelu.Network`, or a :class:`convexrelu.GatedNetwork`.
        n_iter_: the solver's iterations.
    """

    def __init__(
        self, *, model="relu", beta=1e-3, patterns=100, loss="squared", fit_intercept=True, random_state=None,
        solver_options=None,
    ):
        super().__init__(
            model=model, beta=beta, patterns=patterns, loss=loss, fit_intercept=fit_intercept,
            random_state=random_state, solver_options=solver_options,
        )

    def fit(self, X, y):
        """Fit on ``X (n, d)`` and real targets ``y (n,)``. Returns self."""
        self._check_params(("squared",))
        X, y = _validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        self._fit_targets(X, [y], intercept=bool(self.fit_intercept))
        self.intercept_ = float(self.solutions_[0].intercept)
        return self

    def predict(self, X) -> np.ndarray:
        """``f(x) + intercept_``, shape ``(n,)``."""
        return self._decision(X)[:, 0]
