"""TargetSparsityCV: ask for a sparsity (or a number of neurons), get the alpha.

Shen, Wang, Xu and Yan 2024 (ALGORITHMS.md section 4) choose the strength of
an l1 penalty from the optimality conditions so that the trained network has a
prescribed number of nonzero weights. At a stationary point of ``F + alpha
||w||_1`` every nonzero weight has ``|dF/dw_j| = alpha`` and every zero weight
``|dF/dw_j| <= alpha``: sorted in decreasing order, the gradient magnitudes
tell which ``alpha`` keeps the ``l`` largest. The search alternates training
(warm-started) and reading these values, inside a bracket
``[alpha_lo, alpha_hi]`` that it narrows as it goes (Algorithm 1; Algorithm 2
does the same per layer). Trainings end as soon as the target holds, checked
after every mini-batch (Algorithm 3).

The same scheme works for any of our penalties through their zero thresholds
(:meth:`~skgroupsparse.penalties.Penalty.zero_thresholds`): for a group the
threshold is the gradient norm divided by the group weight, which gives the
neuron-count targets (``target_neurons``, beyond the paper).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv

from skgroupsparse._base import BaseGroupSparseMLP
from skgroupsparse._meta import BestEstimatorDelegate
from skgroupsparse._sklearn import (
    HasMethods,
    Interval,
    Options,
    StrOptions,
    _safe_indexing,
)
from skgroupsparse.path import UPDATE_RULES, SearchTarget
from skgroupsparse.regularization import layer_sizes, relaxed_fit, target_search

__all__ = ["TargetSparsityCV"]


class TargetSparsityCV(BestEstimatorDelegate, MetaEstimatorMixin, BaseEstimator):
    """Find the ``alpha`` that gives a network a target sparsity or size.

    Wraps one of this package's estimators and searches its penalty strength
    so that the trained network has the asked fraction of zero weights
    (``target_sparsity``) or number of live neurons per hidden layer
    (``target_neurons``), in a few warm-started trainings (Shen et al. 2024,
    Algorithms 1-3; ALGORITHMS.md section 4).

    After each training the search reads, on the full training set, the zero
    threshold of every weight (for l1: ``|dF/dw_j|``; for a group: its
    gradient norm over its weight; for a ShrinkNet switch: ``|dF/dbeta_j|``).
    At a stationary point the nonzero weights all sit at ``alpha`` and the
    zeros below it, so the ``l``-th largest threshold is the ``alpha`` that
    keeps ``l`` weights. The next ``alpha`` is that value when it lies inside
    the bracket the previous trainings left, else the geometric middle of the
    bracket (``update="gradient"``); ``"median"`` is the seed paper's rule
    (the median of the thresholds inside the bracket); ``"bracket"`` uses
    the bracket only. While the net is too dense, alpha grows at least
    tenfold (the reading cannot say how far: at a stationary point every
    nonzero weight reads exactly ``alpha``).

    A training stops at the first mini-batch after which the target holds
    (``stop_at_target``, Algorithm 3: within half the tolerance, or within it
    once the count crossed the target or moved by at least twice the
    remaining gap). Each training starts from the
    previous weights and keeps the optimizer state, so the search is one
    continued optimisation with a moving alpha; after a training that made
    the net too sparse, the next one starts from the last training that was
    not (zeroed weights come back slowly, dead neurons never). With
    per-layer targets a layer whose target holds stops training while the
    others go on (its weights, and for ShrinkNets the switches on its
    inputs, are held; units removed while training are sliced out).

    The reading is exact at a stationary point of the objective. The theory
    (Shen et al.'s Theorem 4) is stated for the exact proximal-gradient
    step: for an exact reading train with ``optimizer="sgd"``,
    ``momentum=0`` and the full batch (their Algorithm 3 with the full
    batch) to convergence; a test checks that the search then gives a linear
    model the support scikit-learn's ``Lasso`` has at the alpha found. A
    converged preconditioned proximal Adam has the same fixed points
    (ALGORITHMS.md section 6.3).
    Mini-batch noise leaves weights that hover around zero, so the reading
    is then an estimate; it only proposes the next alpha, and the bracket
    keeps the search safe. The ``decoupled`` prox has no fixed objective in
    ``alpha`` and the reading does not apply to it.

    Parameters
    ----------
    estimator : estimator object
        A ``GroupLassoMLP*`` or ``ShrinkNet*`` estimator; it is cloned. Its
        ``alpha`` is the starting point unless ``alpha_init`` is given. With
        ``penalty="l1"`` this is Shen et al.'s model.
    target_sparsity : float or array-like of shape (n_hidden_layers + 1,), default=None
        Fraction of the weights (biases excluded) that must be exactly zero, as
        the estimator's ``sparsity_``: a float for the whole network (one
        alpha, Algorithm 1) or one value per weight matrix (one alpha per
        layer, Algorithm 2).
    target_neurons : array-like of int of shape (n_hidden_layers,), default=None
        Live neurons wanted in each hidden layer (one alpha per layer, chosen
        from group gradient norms over group weights). Exactly one of
        ``target_sparsity`` and ``target_neurons`` is given.
    tol : float, default=None
        Tolerance: with ``target_sparsity``, a fraction of the weights (of the
        net, or of each layer), default 0.01; with ``target_neurons``, a
        number of neurons per layer, default 1.
    max_trainings : int, default=5
        Cap on the number of trainings. When it runs out the training closest
        to the target is kept and a warning says so.
    min_layers : int, default=None
        Algorithm 2's threshold: the number of layers that must be within
        tolerance (default: all of them).
    update : {"gradient", "median", "bracket"}, default="gradient"
        How the next alpha is chosen (see above).
    alpha_init : float or array-like, default=None
        First alpha (a float, or one per layer of units as the estimators
        take it); default: the estimator's ``alpha``.
    stop_at_target : bool, default=True
        End a training at the first mini-batch after which the target holds.
    warm_start : bool, default=True
        Start each training from the previous one's weights and optimizer
        state (after a training that made the net too sparse: from the last
        one that did not); ``False`` trains every alpha from scratch.
    refit : {"relaxed", False}, default="relaxed"
        What ``best_estimator_`` is. ``"relaxed"``: the kept training's
        network trained on with ``alpha=0`` and every zero weight held at zero
        (dead units stay dead; removed with ``remove_dead=True``), with early
        stopping on a tenth of the
        training data choosing the epochs, then on all of it
        (:func:`~skgroupsparse.regularization.relaxed_fit`): the size the
        search found, trained for that size. With ``target_neurons`` a layer
        left with more neurons than asked (within ``tol``) loses its weakest
        surplus neurons first, so the size is the one asked (a layer left
        with fewer keeps what it has). ``False``: the
        kept training itself (whose weights the penalty shrank, and which a
        search that stops at the target leaves under-trained).
    cv : int, cross-validation generator or iterable, default=None
        If given, the search also runs on every training fold (in parallel
        with ``n_jobs``) and scores the result on the held-out fold
        (``cv_results_``); the search on all the data then starts from the
        geometric mean of the folds' alphas.
    n_jobs : int, default=None
        Jobs for the fold searches (joblib; any joblib backend, e.g. Dask).
    verbose : bool, default=False
        Print one line per training.

    Attributes
    ----------
    alpha_ : float or ndarray
        The alpha of the kept training (per layer of units for per-layer
        targets).
    best_estimator_ : estimator
        The model to use: the relaxed fit of the kept training
        (``refit="relaxed"``) or the kept training (``refit=False``).
    search_estimator_ : estimator
        The estimator of the kept training (``best_estimator_`` itself when
        ``refit=False``).
    history_ : list of dict
        One row per training: ``training`` (its number, from 1), ``alpha``,
        ``sparsity``, ``layer_sparsity``, ``live_neurons``, ``live_features``,
        ``met`` (target within tolerance), ``score`` (on the training data),
        ``epochs`` and ``seconds``.
    n_trainings_ : int
        Number of trainings run on all the data.
    target_met_ : bool
        Whether the kept training meets the target.
    cv_results_ : dict or None
        With ``cv``: per fold ``alpha``, ``score`` (held out), ``sparsity``,
        ``live_neurons`` and ``n_trainings``.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray
        Names of the input features (when ``X`` has string column names).
    classes_ : ndarray
        Class labels (classifiers).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgroupsparse import GroupLassoMLPClassifier, TargetSparsityCV
    >>> X, y = load_digits(return_X_y=True)
    >>> net = GroupLassoMLPClassifier((32,), penalty="l1", max_iter=30,
    ...                               random_state=0)
    >>> search = TargetSparsityCV(net, target_sparsity=0.7).fit(X / 16, y)
    >>> abs(search.best_estimator_.sparsity_ - 0.7) <= 0.01
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "target_sparsity": [Interval(Real, 0, 1, closed="left"), "array-like", None],
        "target_neurons": ["array-like", None],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "max_trainings": [Interval(Integral, 1, None, closed="left")],
        "min_layers": [Interval(Integral, 1, None, closed="left"), None],
        "update": [StrOptions(set(UPDATE_RULES))],
        "alpha_init": [Interval(Real, 0, None, closed="neither"), "array-like", None],
        "stop_at_target": ["boolean"],
        "warm_start": ["boolean"],
        "refit": [StrOptions({"relaxed"}), Options(bool, {False})],
        "cv": ["cv_object", None],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        target_sparsity=None,
        target_neurons=None,
        *,
        tol=None,
        max_trainings=5,
        min_layers=None,
        update="gradient",
        alpha_init=None,
        stop_at_target=True,
        warm_start=True,
        refit="relaxed",
        cv=None,
        n_jobs=None,
        verbose=False,
    ):
        self.estimator = estimator
        self.target_sparsity = target_sparsity
        self.target_neurons = target_neurons
        self.tol = tol
        self.max_trainings = max_trainings
        self.min_layers = min_layers
        self.update = update
        self.alpha_init = alpha_init
        self.stop_at_target = stop_at_target
        self.warm_start = warm_start
        self.refit = refit
        self.cv = cv
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------
    # the target
    # ------------------------------------------------------------------
    def _target(self, estimator, widths: tuple) -> SearchTarget:
        """The target as counts on a network of layer ``widths``."""
        if (self.target_sparsity is None) == (self.target_neurons is None):
            raise ValueError(
                "Give exactly one of target_sparsity and target_neurons, got "
                f"target_sparsity={self.target_sparsity!r} and "
                f"target_neurons={self.target_neurons!r}"
            )
        hidden = estimator._hidden_sizes()
        n_hidden = len(hidden)
        if self.target_neurons is not None:
            return self._neuron_target(estimator, hidden)
        sparsity = np.asarray(self.target_sparsity, dtype=float)
        if sparsity.ndim > 1 or (
            sparsity.ndim == 1 and sparsity.shape[0] != n_hidden + 1
        ):
            raise ValueError(
                "target_sparsity must be a float or one value per weight matrix "
                f"({n_hidden + 1} for hidden_layer_sizes={hidden}), got "
                f"{self.target_sparsity!r}"
            )
        if not np.all(np.isfinite(sparsity)) or np.any(
            (sparsity < 0) | (sparsity >= 1)
        ):
            raise ValueError(
                "target_sparsity must be in [0, 1) (a fraction of zero weights), "
                f"got {self.target_sparsity!r}"
            )
        tol = 0.01 if self.tol is None else float(self.tol)
        widths = np.asarray(widths, dtype=float)
        sizes = widths[:-1] * widths[1:]  # entries of every weight matrix
        if sparsity.ndim == 0:
            total = sizes.sum()
            return SearchTarget(
                "weights",
                np.array([np.round((1.0 - float(sparsity)) * total)]),
                np.array([tol * total]),
                [None],
                [None],
                1,
                [[]],
            )
        alpha_of_layer = estimator._alpha_of_weight_layer(n_hidden)
        for l, a in enumerate(alpha_of_layer):
            if a is None:
                raise ValueError(
                    f"weight matrix {l} is not penalised by alpha with these "
                    "estimator settings (e.g. the output layer with "
                    "groups='incoming'), so no target can be set for it"
                )
        return SearchTarget(
            "weights",
            np.round((1.0 - sparsity) * sizes),
            tol * sizes,
            list(range(n_hidden + 1)),
            list(alpha_of_layer),
            self._min_met(n_hidden + 1),
            [[l] for l in range(n_hidden + 1)],
        )

    def _neuron_target(self, estimator, hidden: tuple) -> SearchTarget:
        n_hidden = len(hidden)
        neurons = np.asarray(self.target_neurons)
        if (
            n_hidden == 0
            or neurons.shape != (n_hidden,)
            or not np.issubdtype(neurons.dtype, np.integer)
        ):
            raise ValueError(
                "target_neurons must be a sequence of integers, one per hidden "
                f"layer ({n_hidden} for hidden_layer_sizes={hidden}), got "
                f"{self.target_neurons!r}"
            )
        if np.any(neurons < 1) or np.any(neurons > np.asarray(hidden)):
            raise ValueError(
                f"target_neurons must be between 1 and the layer widths {hidden}, "
                f"got {self.target_neurons!r}"
            )
        tol = 1.0 if self.tol is None else float(self.tol)
        layers = list(range(1, n_hidden + 1))
        alpha_of_layer = estimator._alpha_of_weight_layer(n_hidden)
        return SearchTarget(
            "neurons",
            neurons.astype(float),
            np.full(n_hidden, tol),
            layers,
            layers,
            self._min_met(n_hidden),
            [[k for k, a in enumerate(alpha_of_layer) if a == h] for h in layers],
        )

    def _min_met(self, n: int) -> int:
        if self.min_layers is None:
            return n
        if self.min_layers > n:
            raise ValueError(
                f"min_layers={self.min_layers} is more than the {n} layers targeted"
            )
        return int(self.min_layers)

    def _alpha0(self, estimator, target: SearchTarget) -> np.ndarray:
        """The first alpha: a float, or one per layer of units."""
        alpha = estimator.alpha if self.alpha_init is None else self.alpha_init
        alpha = np.asarray(alpha, dtype=float)
        n_units = len(estimator._hidden_sizes()) + 1
        per_layer = target.alpha_index[0] is not None
        if per_layer and alpha.ndim == 0:
            alpha = np.full(n_units, float(alpha))
        if not per_layer and alpha.ndim != 0:
            raise ValueError(
                "a single target_sparsity moves a single alpha: give a float "
                f"alpha_init (or estimator alpha), got {alpha.tolist()!r}"
            )
        if alpha.ndim == 1 and alpha.shape[0] != n_units:
            raise ValueError(
                f"alpha_init must be a float or {n_units} values (one per layer of "
                f"units), got {alpha.tolist()!r}"
            )
        controlled = alpha if alpha.ndim == 0 else alpha[target.alpha_index]
        if not np.all(np.isfinite(alpha)) or np.any(controlled <= 0):
            raise ValueError(
                "the starting alpha must be positive where the search moves it, "
                f"got {alpha.tolist()!r}"
            )
        return alpha

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------
    def fit(self, X, y):
        """Search alpha and fit the estimator at the target.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self : object
            The fitted search.
        """
        self._validate_params()
        if not isinstance(self.estimator, BaseGroupSparseMLP):
            raise TypeError(
                "TargetSparsityCV needs one of skgroupsparse's estimators "
                f"(GroupLassoMLP*, ShrinkNet*), got {type(self.estimator).__name__}"
            )
        if self.estimator.prox == "decoupled":
            raise ValueError(
                "TargetSparsityCV reads alpha from the optimality conditions, which "
                "prox='decoupled' does not solve; use prox='preconditioned'"
            )
        estimator = clone(self.estimator)
        # the estimator validates the data, and the network it builds tells the
        # weight counts (the output width depends on y)
        target = self._target(estimator, layer_sizes(estimator, X, y))
        alpha0 = self._alpha0(estimator, target)
        params = dict(
            max_trainings=int(self.max_trainings),
            update=self.update,
            stop_at_target=bool(self.stop_at_target),
            warm_start=bool(self.warm_start),
            verbose=bool(self.verbose),
        )
        cv_results = None
        if self.cv is not None:
            alpha0, cv_results = self._cross_validate(
                estimator, X, y, target, alpha0, params
            )
        fitted, alpha, history = target_search(
            estimator, X, y, target, alpha0, **params
        )
        best = fitted
        if self.refit == "relaxed":
            # a neuron count met within tol comes out exact: the weakest
            # surplus neurons go before the relaxed fit
            best = relaxed_fit(fitted, X, y, neurons=self.target_neurons)
        # nothing of a previous fit is changed before here
        self.cv_results_ = cv_results
        self.search_estimator_ = fitted
        self.best_estimator_ = best
        self.alpha_ = float(alpha) if alpha.ndim == 0 else alpha
        self.history_ = history
        self.n_trainings_ = len(history)
        self.target_met_ = bool(target.met(target.achieved_by(fitted)))
        if not self.target_met_:
            warnings.warn(
                f"TargetSparsityCV: the target was not met in {self.max_trainings} "
                "trainings; the training closest to it is kept (see history_). "
                "Raise max_trainings or the estimator's max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._take_data_attributes(fitted)
        return self

    def _cross_validate(self, estimator, X, y, target, alpha0, params) -> tuple:
        """The search on every fold: the next search's first alpha, the results."""
        cv = check_cv(self.cv, y, classifier=is_classifier(estimator))
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_search)(estimator, X, y, train, test, target, alpha0, params)
            for train, test in cv.split(X, y)
        )
        cv_results = {
            key: [r[key] for r in results]
            for key in ("alpha", "score", "sparsity", "live_neurons", "n_trainings")
        }
        alphas = np.array([np.asarray(r["alpha"], dtype=float) for r in results])
        return np.exp(np.log(alphas).mean(axis=0)), cv_results


def _fold_search(estimator, X, y, train, test, target, alpha0, params) -> dict:
    """The search on one training fold, scored on its held-out fold."""
    X_train, y_train = _safe_indexing(X, train), _safe_indexing(y, train)
    X_test, y_test = _safe_indexing(X, test), _safe_indexing(y, test)
    fitted, alpha, history = target_search(
        estimator, X_train, y_train, target, alpha0, **params
    )
    return dict(
        alpha=float(alpha) if alpha.ndim == 0 else alpha.tolist(),
        score=float(fitted.score(X_test, y_test)),
        sparsity=float(fitted.sparsity_),
        live_neurons=list(fitted.active_neurons_),
        n_trainings=len(history),
    )
