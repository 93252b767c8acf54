"""RegularizationPathCV: the size chosen by cross-validation along a path of alphas.

On every fold the wrapped estimator is fitted along a path of alphas, from
small to large, each stage warm-started from the last (as regularization
growing does), and every stage is scored on the held-out fold. A rule picks
the stage: the best mean score, or the fewest live neurons whose mean score is
within one standard error (or a tolerance) of the best. The path is then run
on all the data up to that alpha and its model trained on without the penalty
(the relaxed fit), so the user gets the size chosen and a model trained for
it.
"""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils.validation import indexable

from skgroupsparse._base import BaseGroupSparseMLP
from skgroupsparse._meta import BestEstimatorDelegate
from skgroupsparse._sklearn import (
    HasMethods,
    Interval,
    Options,
    StrOptions,
    _safe_indexing,
)
from skgroupsparse.path import (
    SELECTION_RULES,
    alpha_grid,
    select_stage,
    standard_error,
)
from skgroupsparse.regularization import (
    _as_alpha,
    _named,
    _read_data,
    alpha_max,
    fit_together,
    path_stage,
    relaxed_fit,
    stage_record,
)

__all__ = ["RegularizationPathCV"]


class RegularizationPathCV(BestEstimatorDelegate, MetaEstimatorMixin, BaseEstimator):
    """Choose ``alpha`` (and so the network's size) by cross-validating a path.

    On every fold of ``cv`` a copy of ``estimator`` is fitted at each alpha
    of the path in turn, from small to large, each stage warm-started from
    the previous one (a new optimizer state, ``max_iter`` epochs at most),
    and each stage is scored on the held-out fold. ``selection`` picks a
    stage from the mean scores; the path is then run on all the data up to
    the chosen alpha, and the model there is refitted without the penalty
    on the support it selected (``refit="relaxed"``,
    :func:`~skgroupsparse.regularization.relaxed_fit`).

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators (``GroupLassoMLP*`` with any
        penalty, ``ShrinkNet*``); it is cloned. Its ``max_iter`` is the
        budget of every stage; ``remove_dead=True`` makes the later, smaller
        stages faster.
    alphas : array-like, default=None
        The path, in the order it is taken: floats, or one sequence per stage
        of per-layer alphas (as the estimator's ``alpha`` takes them).
        Default: ``n_alphas`` values from ``eps * alpha_max`` up to
        ``alpha_max`` (:func:`~skgroupsparse.regularization.alpha_max` of the
        estimator on all the data), geometrically spaced, small to large
        (when ``alpha_max`` is 0, no gradient reaching the initial network's
        first layer, the top is 100 times the estimator's ``alpha``, with a
        warning).
    n_alphas : int, default=16
        Length of the default path.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the default path.
    cv : int, cross-validation generator or iterable, default=5
        As scikit-learn's ``check_cv`` takes it (stratified folds for
        classifiers).
    selection : {"one_se", "best"} or float, default="one_se"
        Which stage to keep (:func:`~skgroupsparse.path.select_stage`):
        ``"best"``, the highest mean held-out score; ``"one_se"``, the fewest
        live hidden neurons (then the latest stage: the largest alpha of a path
        from small to large) among the stages whose
        mean score is within one standard error of the best; a float, the
        same within that score tolerance (e.g. 0.005: half a point of
        accuracy). For a linear model (no hidden layer) live input features
        count instead of neurons. A looser rule never keeps a denser net.
    stage_score : {"relaxed", "penalized"}, default="relaxed"
        What each stage's held-out score measures: the stage's relaxed fit on
        the fold's training rows (as the model finally returned is), or the
        stage's model as the penalty left it (less work). On the peer suite
        (``benchmarks/suite.py``) penalized scores kept near-dense networks
        where the sparse stages score low before their relaxed fit (magic,
        credit-g: every first-layer neuron), relaxed scores did not; both
        met the suite's target on 8 of 14 datasets.
    refit : {"relaxed", "penalized", False}, default="relaxed"
        ``best_estimator_``: the relaxed fit of the path's model at the chosen
        alpha on all the data, that model itself, or none (``False``: the
        search only; ``predict`` is then unavailable).
    path : {"warm", "cold"}, default="warm"
        ``"warm"``: every fold's path, small alpha to large, each stage
        warm-started from the last. ``"cold"``: every alpha fitted from the
        estimator's initial weights (with ``engine="batched"``, every alpha
        and fold as one batched network), and the chosen alpha refitted from
        them on all the data. On the peer suite the cold grid kept denser
        networks (a cold fit at a large alpha prunes the second layer little
        in ``max_iter`` epochs) and met the suite's target on 5 of 14 datasets,
        the warm path on 8 (``benchmarks/results/suite_cold.md``, ``suite.md``).
    engine : {"batched", "sequential"}, default="batched"
        How the folds of a stage are fitted. ``"batched"``: as one network
        whose products are batched
        (:func:`~skgroupsparse.regularization.fit_together`; each fold's
        network goes exactly as its own fit would), which costs little more
        than one fit; estimators the batched engine does not take
        (ShrinkNets, RVSM, early stopping, a learning-rate schedule) are
        fitted one fold after another in this process (``verbose`` says
        why). ``"sequential"``: one fit per fold, in parallel with
        ``n_jobs``.
    n_jobs : int, default=None
        The folds of a stage in parallel with ``engine="sequential"`` (joblib;
        any joblib backend, Dask included).
    verbose : bool, default=False
        Print a line per stage: its alpha, the mean live neurons, the mean
        score, the time so far and an estimate of the time left.

    Attributes
    ----------
    alpha_ : float or list of float
        The chosen alpha.
    alphas_ : list
        The path taken.
    best_index_ : int
        Index of the chosen stage in ``alphas_`` and ``cv_results_``.
    best_score_ : float
        Its mean held-out score.
    cv_results_ : dict
        Per stage: ``alpha``; ``mean_test_score``, ``std_test_score``,
        ``rank_test_score`` and ``split{k}_test_score``; ``mean_live_neurons``
        (an array of shape ``(n_stages, n_hidden_layers)``),
        ``mean_n_neurons`` (their sum), ``mean_live_features``;
        ``mean_fit_time`` (seconds per fold).
    n_splits_ : int
        The number of folds.
    best_estimator_ : estimator
        The model to use (see ``refit``); absent with ``refit=False``.
    penalized_estimator_ : estimator
        The path's model at the chosen alpha, fitted on all the data (absent
        with ``refit=False``; ``best_estimator_`` itself with
        ``refit="penalized"``).
    refit_time_ : float
        Seconds spent on the refit on all the data.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray
        Names of the input features (when ``X`` has string column names).
    classes_ : ndarray
        Class labels (classifiers).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgroupsparse import GroupLassoMLPClassifier, RegularizationPathCV
    >>> X, y = load_digits(return_X_y=True)
    >>> net = GroupLassoMLPClassifier((32,), max_iter=20, random_state=0)
    >>> search = RegularizationPathCV(net, n_alphas=4, cv=3).fit(X / 16, y)
    >>> len(search.cv_results_["mean_test_score"])
    4
    >>> search.best_estimator_.active_neurons_[0] <= 32
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "alphas": ["array-like", None],
        "n_alphas": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "cv": ["cv_object"],
        "selection": [
            StrOptions(set(SELECTION_RULES)),
            Interval(Real, 0, None, closed="left"),
        ],
        "stage_score": [StrOptions({"penalized", "relaxed"})],
        "refit": [StrOptions({"relaxed", "penalized"}), Options(bool, {False})],
        "path": [StrOptions({"warm", "cold"})],
        "engine": [StrOptions({"batched", "sequential"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator,
        alphas=None,
        *,
        n_alphas=16,
        eps=1e-2,
        cv=5,
        selection="one_se",
        stage_score="relaxed",
        refit="relaxed",
        path="warm",
        engine="batched",
        n_jobs=None,
        verbose=False,
    ):
        self.estimator = estimator
        self.alphas = alphas
        self.n_alphas = n_alphas
        self.eps = eps
        self.cv = cv
        self.selection = selection
        self.stage_score = stage_score
        self.refit = refit
        self.path = path
        self.engine = engine
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y):
        """Cross-validate the path, choose a stage, refit it on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self : object
            The fitted search. A fit that fails (a stage that diverges, bad
            input) raises with the fold and alpha named, and leaves a
            previously fitted search as it was.
        """
        self._validate_params()
        if not isinstance(self.estimator, BaseGroupSparseMLP):
            raise TypeError(
                "RegularizationPathCV needs one of skgroupsparse's estimators "
                f"(GroupLassoMLP*, ShrinkNet*), got {type(self.estimator).__name__}"
            )
        estimator = clone(self.estimator)
        # bad input fails here, with the estimator's own messages; the reader
        # records the names and classes of all the data
        reader = clone(estimator)
        _read_data(reader, X, y)
        X, y = indexable(X, y)
        alphas = self._path(estimator, X, y)
        cv = check_cv(self.cv, y, classifier=is_classifier(estimator))
        folds = list(cv.split(X, y))
        began = time.perf_counter()
        results = self._cross_validate(estimator, X, y, alphas, folds, began)
        size = results["mean_n_neurons"]
        if len(estimator._hidden_sizes()) == 0:
            size = results["mean_live_features"]
        best = select_stage(
            results["mean_test_score"],
            results["std_test_score"],
            len(folds),
            size,
            self.selection,
        )
        fitted = {}
        refit_began = time.perf_counter()
        if self.refit is not False:
            path_model = _quiet(
                _path_to,
                "the refit on all the data",
                estimator,
                X,
                y,
                alphas[: best + 1] if self.path == "warm" else [alphas[best]],
            )
            fitted["penalized_estimator_"] = path_model
            fitted["best_estimator_"] = path_model
            if self.refit == "relaxed":
                fitted["best_estimator_"] = _quiet(
                    relaxed_fit, "the relaxed refit on all the data", path_model, X, y
                )
        refit_time = time.perf_counter() - refit_began
        if self.verbose and self.refit is not False:
            print(
                f"[RegularizationPathCV] refit at alpha={_show(alphas[best])} on all "
                f"the data: live neurons {fitted['best_estimator_'].active_neurons_}, "
                f"{refit_time:.1f} s (total {time.perf_counter() - began:.1f} s)"
            )
        # nothing of the previous fit is changed before here
        for name in ("best_estimator_", "penalized_estimator_"):
            if name not in fitted and hasattr(self, name):
                delattr(self, name)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.alphas_ = alphas
        self.alpha_ = alphas[best]
        self.best_index_ = int(best)
        self.best_score_ = float(results["mean_test_score"][best])
        self.cv_results_ = results
        self.n_splits_ = len(folds)
        self.refit_time_ = refit_time
        self._take_data_attributes(reader)
        return self

    # ------------------------------------------------------------------
    def _path(self, estimator, X, y) -> list:
        """The alphas of the path: given, or the default grid below alpha_max."""
        if self.alphas is None:
            top = alpha_max(estimator, X, y)
            if not (np.isfinite(top) and top > 0):
                # no gradient reaches the first layer at the initial network
                # (e.g. every ReLU of a small first layer starts inactive)
                top = 100.0 * max(float(np.max(estimator.alpha)), 1e-5)
                warnings.warn(
                    "RegularizationPathCV: alpha_max is 0 at this initial network "
                    "(no gradient reaches its first layer), so the path is "
                    f"anchored at 100 x the estimator's alpha ({top:.3g}); pass "
                    "alphas to choose it.",
                    UserWarning,
                    stacklevel=3,
                )
            return [float(a) for a in alpha_grid(top, self.n_alphas, self.eps)[::-1]]
        alphas = []
        for alpha in self.alphas:
            value = np.asarray(alpha, dtype=float)
            if value.ndim > 1 or not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(
                    "alphas must be finite values >= 0 (or one sequence of per-layer "
                    f"values a stage), got {alpha!r}"
                )
            alphas.append(float(value) if value.ndim == 0 else value.tolist())
        if not alphas:
            raise ValueError("alphas must not be empty")
        return alphas

    def _cross_validate(self, estimator, X, y, alphas, folds, began) -> dict:
        """Every fold's path (or grid), stage by stage; the ``cv_results_`` dict."""
        n_stages, n_splits = len(alphas), len(folds)
        n_hidden = len(estimator._hidden_sizes())
        scores = np.full((n_stages, n_splits), np.nan)
        neurons = np.zeros((n_stages, n_splits, n_hidden))
        features = np.zeros((n_stages, n_splits))
        seconds = np.zeros((n_stages, n_splits))
        fold_data = [
            tuple(_safe_indexing(A, part) for part in fold for A in (X, y))
            for fold in folds
        ]
        stages = self._warm_path if self.path == "warm" else self._cold_grid
        clock = began
        for k, models, rows in stages(estimator, alphas, fold_data):
            if k == 0 and self.path == "cold":
                clock = time.perf_counter()  # the grid is fitted: scoring is left
            names = _names(alphas[k], n_splits)
            for i, (model, data, name, row) in enumerate(
                zip(models, fold_data, names, rows)
            ):
                scores[k, i] = _stage_score(model, data, self.stage_score, name)
                neurons[k, i] = row["live_neurons"]
                features[k, i] = row["live_features"]
                seconds[k, i] = row["seconds"]
            if self.verbose:
                self._report(k, alphas, scores, neurons, seconds, began, clock)
        mean = scores.mean(axis=1)
        results = {"alpha": list(alphas)}
        for i in range(n_splits):
            results[f"split{i}_test_score"] = scores[:, i]
        results["mean_test_score"] = mean
        results["std_test_score"] = scores.std(axis=1)
        order = np.argsort(-mean, kind="stable")
        rank = np.empty(n_stages, dtype=np.int32)
        rank[order] = np.arange(1, n_stages + 1)
        results["rank_test_score"] = rank
        results["mean_live_neurons"] = neurons.mean(axis=1)
        results["mean_n_neurons"] = neurons.sum(axis=2).mean(axis=1)
        results["mean_live_features"] = features.mean(axis=1)
        results["mean_fit_time"] = seconds.mean(axis=1)
        return results

    def _warm_path(self, estimator, alphas, fold_data):
        """Yield ``(k, models, records)``: stage ``k`` of every fold's path."""
        n_splits = len(fold_data)
        models = [clone(estimator) for _ in fold_data]
        for k, alpha in enumerate(alphas):
            names = _names(alpha, n_splits)
            models, rows = self._fit_models(
                models, fold_data, [alpha] * n_splits, k > 0, names, announce=k == 0
            )
            yield k, models, rows

    def _cold_grid(self, estimator, alphas, fold_data):
        """Yield ``(k, models, records)``: every alpha fitted from the start,
        all of them at once (one batched network with ``engine="batched"``)."""
        n_splits = len(fold_data)
        models, rows = self._fit_models(
            [clone(estimator) for _ in alphas for _ in fold_data],
            [data for _ in alphas for data in fold_data],
            [alpha for alpha in alphas for _ in fold_data],
            False,
            [name for alpha in alphas for name in _names(alpha, n_splits)],
            announce=True,
        )
        for k in range(len(alphas)):
            part = slice(k * n_splits, (k + 1) * n_splits)
            yield k, models[part], rows[part]

    def _fit_models(self, models, data, alphas, warm_start, names, announce) -> tuple:
        """Fit ``models[j]`` at ``alphas[j]`` on ``data[j]``; ``(models, records)``.

        As one batched network (``engine="batched"``, where the estimator
        allows it; with ``verbose`` and ``announce``, a line says why not) or
        one fit each, in parallel with ``n_jobs``.
        """
        if self.engine == "batched":
            rows, why = _fit_stages(models, data, alphas, warm_start, names)
            if why is not None and self.verbose and announce:
                print(f"[RegularizationPathCV] fitted one by one: {why}")
            return models, rows
        outcome = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_stage)(model, fold, alpha, warm_start, name)
            for model, fold, alpha, name in zip(models, data, alphas, names)
        )
        return [model for model, _ in outcome], [row for _, row in outcome]

    def _report(self, k, alphas, scores, neurons, seconds, began, clock) -> None:
        """The verbose line after stage ``k``; ``clock``: when the stages' own
        work began (the cold grid: after the fit of every stage)."""
        n_stages, n_splits = scores.shape
        elapsed = time.perf_counter() - began
        per_stage = (time.perf_counter() - clock) / (k + 1)
        # the refit runs the path on all the data, up to the chosen stage (at
        # most every stage once more; the cold grid: one fit), on
        # n_splits / (n_splits - 1) the rows
        refits = n_stages if self.path == "warm" else 1
        refit = seconds[: k + 1].mean() * refits * n_splits / max(n_splits - 1, 1)
        left = per_stage * (n_stages - k - 1) + refit
        live = np.round(neurons[k].mean(axis=0), 1).tolist()
        se = standard_error(scores[k].std(), n_splits)
        print(
            f"[RegularizationPathCV] stage {k + 1}/{n_stages} alpha={_show(alphas[k])}"
            f" live neurons {live} score {scores[k].mean():.4f} "
            f"+- {se:.4f} (se); {elapsed:.1f} s so "
            f"far, about {left:.0f} s left"
        )


def _show(alpha) -> str:
    if isinstance(alpha, list):
        return "[" + ", ".join(f"{a:.3g}" for a in alpha) + "]"
    return f"{alpha:.3g}"


def _fold_stage(model, data, alpha, warm_start, name):
    """One stage of one fold's path (a joblib task); ``(model, record)``."""
    X_train, y_train = data[:2]
    record = _quiet(path_stage, name, model, X_train, y_train, alpha, warm_start)
    return model, record


def _names(alpha, n_splits: int) -> list[str]:
    """What an error calls each fold's fit at ``alpha``."""
    return [
        f"fold {i + 1} of {n_splits} at alpha={_show(alpha)}" for i in range(n_splits)
    ]


def _fit_stages(models, fold_data, alphas, warm_start, names) -> tuple:
    """Fit ``models[j]`` at ``alphas[j]`` on its fold, as one batched network.

    Returns the records and why they were fitted one by one (or None).
    """
    epochs = [model.n_iter_ if warm_start else 0 for model in models]
    for model, alpha in zip(models, alphas):
        model.set_params(alpha=_as_alpha(alpha), warm_start=warm_start)
    began = time.perf_counter()
    names = [f"RegularizationPathCV, {name}" for name in names]
    why = _quiet(fit_together, None, models, [d[:2] for d in fold_data], names)
    seconds = (time.perf_counter() - began) / len(models)
    return [stage_record(m, e, seconds) for m, e in zip(models, epochs)], why


def _stage_score(model, data, stage_score: str, name: str) -> float:
    """The stage's held-out score (of its relaxed fit with ``"relaxed"``)."""
    X_train, y_train, X_test, y_test = data
    if stage_score == "relaxed":
        model = _quiet(relaxed_fit, name + " (relaxed fit)", model, X_train, y_train)
    return float(model.score(X_test, y_test))


def _path_to(estimator, X, y, alphas):
    """A copy of ``estimator`` fitted along ``alphas`` (warm-started) on all rows."""
    model = clone(estimator)
    for k, alpha in enumerate(alphas):
        path_stage(model, X, y, alpha, k > 0)
    return model


def _quiet(fn, where: str | None, *args):
    """``fn(*args)`` without ConvergenceWarnings; errors say ``where``.

    A stage's budget is ``max_iter`` epochs: running it out is the rule.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if where is None:
            return fn(*args)
        return _named(fn, f"RegularizationPathCV, {where}", *args)
