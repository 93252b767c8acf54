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

import copy
import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import rankdata
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
    SIZES,
    alpha_grid,
    select_stage,
    selection_threshold,
    stage_size,
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

#: a warm stage's default budget, as a fraction of ``max_iter`` (``stage_iter``).
#: ``benchmarks/path_budget.py`` (digits, segment, phoneme at (64, 32)): a tenth
#: cost 28-32 single fits against 36-51 for a fifth, but kept larger networks
#: (segment 2950 parameters against 1921, phoneme 2394 against 1723) at test
#: scores within 1.2 points; a third cost 54-68 for a little less size
STAGE_FRACTION = 0.2

#: a stage smaller than the one before by more than this factor gets an alpha
#: inserted between them (``refine``)
REFINE_RATIO = 2.0

#: whether a warm stage goes on with the last stage's optimizer state. Measured
#: by ``benchmarks/path_budget.py``: no consistent gain in time (faster on
#: two datasets, slower on one at a fifth) and larger networks on all three at
#: a fifth; folds whose stages stopped after different steps cannot be batched
#: with it. So a warm stage starts with a new state, as a warm-started ``fit``
#: does.
CARRY_OPTIMIZER = False

#: stages fitted before the path may stop early (``stop_margin``; at least 2)
MIN_STAGES = 4


class RegularizationPathCV(BestEstimatorDelegate, MetaEstimatorMixin, BaseEstimator):
    """Choose ``alpha`` (and so the network's size) by cross-validating a path.

    On every fold of ``cv`` a copy of ``estimator`` is fitted at each alpha
    of the path in turn, from small to large, each stage warm-started from
    the previous one (a new optimizer state; the first stage ``max_iter``
    epochs at most, the later ones a shared budget of ``stage_iter`` each,
    ending early once their support and objective settle), and each stage
    is scored on the held-out fold. Where the size collapses between two
    stages, alphas are inserted between them (``refine``); once the scores
    have fallen well below what the selection needs, the path stops
    (``stop_margin``). ``selection`` picks a
    stage from the mean scores; the path is then run on all the data up to
    the chosen alpha, and the model there is refitted without the penalty
    on the support it selected (``refit="relaxed"``,
    :func:`~skgroupsparse.regularization.relaxed_fit`).

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators (``GroupLassoMLP*`` with any
        penalty, ``ShrinkNet*``); it is cloned. Its ``max_iter`` is the
        budget of the first stage (and of the cold grid's fits; see
        ``stage_iter``); ``remove_dead=True`` makes the later, smaller stages
        faster.
    alphas : array-like, default=None
        The path, in the order it is taken: floats, or one sequence per stage
        of per-layer alphas (as the estimator's ``alpha`` takes them).
        Default: ``n_alphas`` values from ``eps * alpha_max`` up to
        ``alpha_max`` (:func:`~skgroupsparse.regularization.alpha_max` of the
        estimator on all the data), geometrically spaced, small to large
        (when ``alpha_max`` is 0, no gradient reaching the initial network's
        first layer, the top is 100 times the estimator's ``alpha``, with a
        warning). Penalties whose slope at zero is unbounded (``l0``,
        ``l_half``, ``group_l0``, ShrinkNet's ``l0`` and ``l_half`` switches)
        and ``solver="rvsm"`` have no ``alpha_max``: pass ``alphas`` for
        them (a ``ValueError`` says so).
    n_alphas : int, default=16
        Length of the default path.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the default path.
    cv : int, cross-validation generator or iterable, default=5
        As scikit-learn's ``check_cv`` takes it (stratified folds for
        classifiers).
    selection : {"one_se", "best"} or float, default="one_se"
        Which stage to keep (:func:`~skgroupsparse.path.select_stage`):
        ``"best"``, the highest mean held-out score; ``"one_se"``, the
        smallest network (as ``size`` counts it; then the latest stage: the
        largest alpha of a path from small to large) among the stages whose
        mean score is within one standard error of the best; a float, the
        same within that score tolerance (e.g. 0.005: half a point of
        accuracy). A looser rule never keeps a larger net.
    size : {"params", "neurons", "features"}, default="params"
        What "fewest" counts in the selection: the weights and biases of the
        compacted network (live input features times first-layer neurons,
        and so on, plus biases), so that dropping inputs makes a model
        smaller; the live hidden neurons (a linear model: the live
        features); or the live input features.
    stage_iter : int, default=None
        The most epochs of every warm stage after the first. None: a fifth of
        the estimator's ``max_iter`` (``STAGE_FRACTION``; a warm stage starts
        next to its solution). ``stage_iter=max_iter`` with
        ``stage_patience=None`` gives every stage a cold fit's budget.
    stage_patience : int or None, default=3
        A warm stage ends once its support (live features and neurons) has
        not changed for this many epochs and its objective has not improved
        by the estimator's ``tol`` for as many; also the patience of a relaxed
        stage score's early stopping. None: stages run their budget (and the
        estimator's ``n_iter_no_change`` is that patience).
    refine : int, default=8
        How many alphas may be inserted: where a stage's mean size (as
        ``size`` counts it) is less than half the stage before, the stage is
        undone and the geometric middle of the two alphas fitted first
        (``cv_results_["stage_inserted"]``). 0: the path as given.
    stop_margin : float or None, default=0.02
        After 4 stages (``MIN_STAGES``), the path stops once the mean scores
        of the last two stages are more than this below the score the
        selection needs (the best, less its standard error with
        ``"one_se"``), or as soon as every fold's network is empty; the
        alphas left are not fitted (NaN scores,
        ``cv_results_["stage_fitted"]`` False). None: every alpha is fitted.
    stage_score : {"relaxed", "penalized"}, default="relaxed"
        What each stage's held-out score measures: a short relaxed fine-tune
        of the stage's own weights on its support (no penalty; early
        stopping on a tenth of the fold's training rows with
        ``stage_patience``, at most the stage budget;
        :func:`~skgroupsparse.regularization.relaxed_fit` with
        ``all_rows=False``), once per support on a fold, or the stage's model
        as the penalty left it (less work). On the peer suite
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
        The path taken (with the inserted alphas), then the alphas an early
        stop left unfitted: the rows of ``cv_results_``.
    best_index_ : int
        Index of the chosen stage in ``alphas_`` and ``cv_results_``.
    best_score_ : float
        Its mean held-out score.
    cv_results_ : dict
        Per stage: ``alpha``; ``mean_test_score``, ``std_test_score``,
        ``rank_test_score`` and ``split{k}_test_score``; ``mean_live_neurons``
        (an array of shape ``(n_stages, n_hidden_layers)``),
        ``mean_n_neurons`` (their sum), ``mean_live_features``,
        ``mean_n_params`` (the compacted network's weights and biases);
        ``mean_fit_time`` (seconds per fold), ``mean_stage_epochs``;
        ``stage_fitted`` (False for the alphas an early stop left) and
        ``stage_inserted`` (alphas the refinement inserted). Ties rank alike
        (scikit-learn's rule) and unfitted stages rank last.
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
        "size": [StrOptions(set(SIZES))],
        "stage_iter": [Interval(Integral, 1, None, closed="left"), None],
        "stage_patience": [Interval(Integral, 1, None, closed="left"), None],
        "refine": [Interval(Integral, 0, None, closed="left")],
        "stop_margin": [Interval(Real, 0, None, closed="left"), None],
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
        size="params",
        stage_iter=None,
        stage_patience=3,
        refine=8,
        stop_margin=0.02,
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
        self.size = size
        self.stage_iter = stage_iter
        self.stage_patience = stage_patience
        self.refine = refine
        self.stop_margin = stop_margin
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
        alphas = results["alpha"]  # with inserted alphas and unfitted ones
        size = stage_size(
            self.size,
            results["mean_n_params"],
            results["mean_live_features"],
            results["mean_live_neurons"],
        )
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
                self._path_to,
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
            try:
                top = alpha_max(estimator, X, y)
            except NotImplementedError as error:
                raise ValueError(
                    "RegularizationPathCV(alphas=None) anchors its default path at "
                    "alpha_max, which this estimator does not have: "
                    f"{error}. Pass alphas: the path's alphas from small to "
                    "large, e.g. numpy.geomspace(1e-2 * a, a, 16) for an alpha a "
                    "at which one fit leaves few live neurons."
                ) from error
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

    def _stage_epochs(self, estimator) -> int:
        """The most epochs of a warm stage after the first (``stage_iter``)."""
        epochs = self.stage_iter
        if epochs is None:
            epochs = max(1, int(np.ceil(STAGE_FRACTION * estimator.max_iter)))
        return min(int(epochs), int(estimator.max_iter))

    def _cross_validate(self, estimator, X, y, alphas, folds, began) -> dict:
        """Every fold's path (or grid), stage by stage; the ``cv_results_`` dict.

        Its rows (``"alpha"``) are the path taken, with the alphas inserted
        where it was refined, then the alphas left unfitted when it stopped
        early.
        """
        n_splits = len(folds)
        fold_data = [
            tuple(_safe_indexing(A, part) for part in fold for A in (X, y))
            for fold in folds
        ]
        if self.path == "warm":
            stages, left = self._warm_path(estimator, alphas, fold_data, began)
        else:
            stages, left = self._cold_grid(estimator, alphas, fold_data, began), []
        n_hidden = len(estimator._hidden_sizes())
        blank = dict(
            scores=np.full(n_splits, np.nan),
            neurons=np.full((n_splits, n_hidden), np.nan),
            features=np.full(n_splits, np.nan),
            params=np.full(n_splits, np.nan),
            seconds=np.zeros(n_splits),
            epochs=np.zeros(n_splits),
            inserted=False,
            fitted=False,
        )
        rows = stages + [dict(blank, alpha=alpha) for alpha in left]
        scores = np.array([row["scores"] for row in rows])
        neurons = np.array([row["neurons"] for row in rows]).reshape(
            len(rows), n_splits, n_hidden
        )
        mean = scores.mean(axis=1)
        results = {"alpha": [row["alpha"] for row in rows]}
        for i in range(n_splits):
            results[f"split{i}_test_score"] = scores[:, i]
        results["mean_test_score"] = mean
        results["std_test_score"] = scores.std(axis=1)
        results["rank_test_score"] = _rank(mean)
        results["mean_live_neurons"] = neurons.mean(axis=1)
        results["mean_n_neurons"] = neurons.sum(axis=2).mean(axis=1)
        results["mean_live_features"] = np.array([r["features"].mean() for r in rows])
        results["mean_n_params"] = np.array([r["params"].mean() for r in rows])
        results["mean_fit_time"] = np.array([r["seconds"].mean() for r in rows])
        results["mean_stage_epochs"] = np.array([r["epochs"].mean() for r in rows])
        results["stage_fitted"] = np.array([r["fitted"] for r in rows])
        results["stage_inserted"] = np.array([r["inserted"] for r in rows])
        return results

    def _warm_path(self, estimator, alphas, fold_data, began) -> tuple:
        """Every fold's path, small alpha to large, each stage warm-started.

        The first stage gets ``max_iter`` epochs, the others the stage budget
        (:meth:`_stage_epochs`). Where a stage's mean size is less than
        1/:data:`REFINE_RATIO` of the stage before, the stage is undone and the
        geometric middle of the two alphas is fitted first (at most ``refine``
        times). The path stops once :meth:`_stop_reason` gives a reason.

        Returns the stages (dicts) and the alphas left unfitted.
        """
        n_splits = len(fold_data)
        epochs, settle = self._stage_epochs(estimator), self.stage_patience
        models = [clone(estimator) for _ in fold_data]
        queue = [(alpha, False) for alpha in alphas]
        stages, inserted = [], 0
        scored = [{} for _ in fold_data]  # per fold: support -> relaxed score
        while queue:
            alpha, is_inserted = queue.pop(0)
            k = len(stages)
            before = None
            if k > 0 and inserted < self.refine:
                before = [copy.deepcopy(model) for model in models]
            names = _names(alpha, n_splits)
            models, rows = self._fit_models(
                models,
                fold_data,
                [alpha] * n_splits,
                k > 0,
                names,
                announce=k == 0,
                max_iter=estimator.max_iter if k == 0 else epochs,
                settle=None if k == 0 else settle,
            )
            stage = _sized(alpha, rows, is_inserted)
            middle = None
            if before is not None:
                middle = _middle(stages[-1], stage, self._stage_size)
            if middle is not None:
                # undo the stage: the middle first, then this alpha from there
                queue[:0] = [(middle, True), (alpha, is_inserted)]
                models = before
                inserted += 1
                if self.verbose:
                    print(
                        "[RegularizationPathCV] size "
                        f"{self._stage_size(stages[-1]):.0f} -> "
                        f"{self._stage_size(stage):.0f} at alpha={_show(alpha)}:"
                        f" alpha={_show(middle)} inserted before it"
                    )
                continue
            self._score(stage, models, fold_data, scored, names, epochs)
            stages.append(stage)
            if self.verbose:
                self._report(stages, len(queue), began, n_splits)
            why = self._stop_reason(stages, n_splits)
            if why is not None:
                if self.verbose and queue:
                    print(
                        f"[RegularizationPathCV] path stopped after {len(stages)} "
                        f"stages: {why}; {len(queue)} alphas left unfitted"
                    )
                break
        return stages, [alpha for alpha, _ in queue]

    def _cold_grid(self, estimator, alphas, fold_data, began) -> list:
        """Every alpha fitted from the estimator's initial weights, all at once
        (one batched network with ``engine="batched"``); the stages."""
        n_splits = len(fold_data)
        models, rows = self._fit_models(
            [clone(estimator) for _ in alphas for _ in fold_data],
            [data for _ in alphas for data in fold_data],
            [alpha for alpha in alphas for _ in fold_data],
            False,
            [name for alpha in alphas for name in _names(alpha, n_splits)],
            announce=True,
            max_iter=estimator.max_iter,
            settle=None,
        )
        stages = []
        scored = [{} for _ in fold_data]
        epochs = self._stage_epochs(estimator)
        for k, alpha in enumerate(alphas):
            part = slice(k * n_splits, (k + 1) * n_splits)
            stage = _sized(alpha, rows[part], False)
            names = _names(alpha, n_splits)
            self._score(stage, models[part], fold_data, scored, names, epochs)
            stages.append(stage)
            if self.verbose:
                self._report(stages, len(alphas) - k - 1, began, n_splits)
        return stages

    def _score(self, stage, models, fold_data, scored, names, epochs) -> None:
        """Every fold's held-out score of a stage, into ``stage["scores"]``.

        A relaxed score is one short fine-tune of the stage's own weights on
        its support (:func:`~skgroupsparse.regularization.relaxed_fit` with
        ``all_rows=False``: early stopping on a tenth of the fold's training
        rows, ``stage_patience`` epochs of patience, ``epochs`` at most); a
        fold whose support was scored already keeps that score (``scored``:
        per fold, support to score).
        """
        stage["scores"] = np.array(
            [
                _stage_score(
                    model,
                    data,
                    self.stage_score,
                    name,
                    epochs,
                    self.stage_patience,
                    seen,
                )
                for model, data, name, seen in zip(models, fold_data, names, scored)
            ]
        )

    def _stage_size(self, stage: dict) -> float:
        """A stage's mean size over the folds, as the selection counts it."""
        size = stage_size(
            self.size, stage["params"], stage["features"], stage["neurons"]
        )
        return float(np.mean(size))

    def _stop_reason(self, stages: list, n_splits: int) -> str | None:
        """Why the path stops after these stages (None: it goes on).

        Every fold's network empty (no live neuron; a linear model: no live
        feature): larger alphas keep it so. After :data:`MIN_STAGES` stages,
        the last two mean scores more than ``stop_margin`` below the score the
        selection rule needs: the stages after them are sparser still.
        """
        last = stages[-1]
        empty = last["features"] if last["neurons"].shape[1] == 0 else last["neurons"]
        if np.all(empty.reshape(n_splits, -1).min(axis=1) == 0):
            return "every fold's network is empty"
        if self.stop_margin is None or len(stages) < MIN_STAGES:
            return None
        mean = np.array([stage["scores"].mean() for stage in stages])
        std = np.array([stage["scores"].std() for stage in stages])
        threshold = selection_threshold(mean, std, n_splits, self.selection)
        floor = threshold - self.stop_margin
        if np.all(mean[-2:] < floor):
            return (
                f"the last two mean scores ({mean[-2]:.4f}, {mean[-1]:.4f}) are more "
                f"than stop_margin={self.stop_margin:g} below the {threshold:.4f} "
                "the selection needs"
            )
        return None

    def _fit_models(
        self, models, data, alphas, warm_start, names, announce, max_iter, settle
    ) -> tuple:
        """Fit ``models[j]`` at ``alphas[j]`` on ``data[j]``; ``(models, records)``.

        For at most ``max_iter`` epochs, ending once settled for ``settle``
        epochs (None: no such end). As one batched network
        (``engine="batched"``, where the estimator allows it; with
        ``verbose`` and ``announce``, a line says why not) or one fit each,
        in parallel with ``n_jobs``.
        """
        for model in models:
            model.set_params(max_iter=int(max_iter))
        if self.engine == "batched":
            rows, why = _fit_stages(models, data, alphas, warm_start, names, settle)
            if why is not None and self.verbose and announce:
                print(f"[RegularizationPathCV] fitted one by one: {why}")
            return models, rows
        outcome = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_stage)(model, fold, alpha, warm_start, name, settle)
            for model, fold, alpha, name in zip(models, data, alphas, names)
        )
        return [model for model, _ in outcome], [row for _, row in outcome]

    def _path_to(self, estimator, X, y, alphas):
        """A copy of ``estimator`` fitted on all rows along ``alphas`` with the
        folds' budget (warm-started; the cold grid: its one alpha)."""
        model = clone(estimator)
        epochs, settle = self._stage_epochs(estimator), self.stage_patience
        for k, alpha in enumerate(alphas):
            model.set_params(max_iter=estimator.max_iter if k == 0 else epochs)
            path_stage(
                model,
                X,
                y,
                alpha,
                k > 0,
                settle=None if k == 0 else settle,
                keep_optimizer=CARRY_OPTIMIZER,
            )
        return model.set_params(max_iter=estimator.max_iter)

    def _report(self, stages, n_left, began, n_splits) -> None:
        """The verbose line after a stage: its alpha, size, score, the time so
        far and an estimate of the time left (the stages left at this pace,
        then the refit: the path on all the data up to the chosen stage)."""
        k = len(stages)
        stage = stages[-1]
        elapsed = time.perf_counter() - began
        per_stage = elapsed / k
        fit = np.mean([row["seconds"].mean() for row in stages])
        refit = fit * k * n_splits / max(n_splits - 1, 1)
        left = per_stage * n_left + refit
        live = np.round(stage["neurons"].mean(axis=0), 1).tolist()
        se = standard_error(stage["scores"].std(), n_splits)
        mark = " (inserted)" if stage["inserted"] else ""
        print(
            f"[RegularizationPathCV] stage {k}/{k + n_left} "
            f"alpha={_show(stage['alpha'])}"
            f"{mark} live neurons {live} features {stage['features'].mean():.1f} "
            f"params {stage['params'].mean():.0f} score "
            f"{stage['scores'].mean():.4f} +- {se:.4f} (se); {elapsed:.1f} s so "
            f"far, about {left:.0f} s left"
        )


def _rank(mean: np.ndarray) -> np.ndarray:
    """Ranks of the mean scores as scikit-learn's searches give them: ties
    share the best rank (``rankdata(method="min")``), NaN scores rank last."""
    finite = np.isfinite(mean)
    if not finite.any():
        return np.ones(len(mean), dtype=np.int32)
    filled = np.where(finite, mean, np.min(mean[finite]) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


def _show(alpha) -> str:
    if isinstance(alpha, list):
        return "[" + ", ".join(f"{a:.3g}" for a in alpha) + "]"
    return f"{alpha:.3g}"


def _fold_stage(model, data, alpha, warm_start, name, settle):
    """One stage of one fold's path (a joblib task); ``(model, record)``."""
    X_train, y_train = data[:2]
    record = _quiet(
        path_stage,
        name,
        model,
        X_train,
        y_train,
        alpha,
        warm_start,
        None,
        settle,
        CARRY_OPTIMIZER,
    )
    return model, _with_params(model, record)


def _names(alpha, n_splits: int) -> list[str]:
    """What an error calls each fold's fit at ``alpha``."""
    return [
        f"fold {i + 1} of {n_splits} at alpha={_show(alpha)}" for i in range(n_splits)
    ]


def _fit_stages(models, fold_data, alphas, warm_start, names, settle) -> tuple:
    """Fit ``models[j]`` at ``alphas[j]`` on its fold, as one batched network.

    Returns the records and why they were fitted one by one (or None).
    """
    epochs = [model.n_iter_ if warm_start else 0 for model in models]
    for model, alpha in zip(models, alphas):
        model.set_params(alpha=_as_alpha(alpha), warm_start=warm_start)
    began = time.perf_counter()
    names = [f"RegularizationPathCV, {name}" for name in names]
    data = [d[:2] for d in fold_data]
    why = _quiet(fit_together, None, models, data, names, settle, CARRY_OPTIMIZER)
    seconds = (time.perf_counter() - began) / len(models)
    rows = [stage_record(m, e, seconds) for m, e in zip(models, epochs)]
    return [_with_params(m, row) for m, row in zip(models, rows)], why


def _with_params(model, record: dict) -> dict:
    """``record`` with ``n_params``: the weights and biases of the model's
    compacted network (its live features, live neurons and outputs)."""
    widths = [
        record["live_features"],
        *record["live_neurons"],
        len(model.intercepts_[-1]),
    ]
    record["n_params"] = int(sum(a * b + b for a, b in zip(widths[:-1], widths[1:])))
    return record


def _sized(alpha, rows: list, inserted: bool) -> dict:
    """A stage of the path from its folds' records: its alpha and every
    fold's live neurons, features, parameters, time and epochs."""

    def column(key):
        return np.array([row[key] for row in rows], dtype=float)

    return dict(
        alpha=alpha,
        fitted=True,
        inserted=inserted,
        neurons=column("live_neurons"),
        features=column("live_features"),
        params=column("n_params"),
        seconds=column("seconds"),
        epochs=column("epochs"),
    )


def _support(model) -> bytes:
    """Which weights of a fitted model are nonzero, as a key."""
    return np.packbits(
        np.concatenate([(W != 0).ravel() for W in model.coefs_])
    ).tobytes()


def _stage_score(model, data, stage_score, name, epochs, patience, seen) -> float:
    """The stage's held-out score: of one short relaxed fine-tune with
    ``"relaxed"`` (once per support: ``seen`` maps the fold's supports scored
    so far to their scores), of the model as it is with ``"penalized"``."""
    X_train, y_train, X_test, y_test = data
    if stage_score != "relaxed":
        return float(model.score(X_test, y_test))
    key = _support(model)
    if key not in seen:
        relaxed = _quiet(
            _relaxed_once,
            name + " (relaxed fit)",
            model,
            X_train,
            y_train,
            epochs,
            patience,
        )
        seen[key] = float(relaxed.score(X_test, y_test))
    return seen[key]


def _relaxed_once(model, X, y, epochs, patience):
    return relaxed_fit(model, X, y, max_iter=epochs, patience=patience, all_rows=False)


def _middle(previous: dict, stage: dict, size) -> float | list | None:
    """The alpha to insert between two neighbouring stages, or None.

    One is inserted where the size falls by more than :data:`REFINE_RATIO`
    (``size(previous) > REFINE_RATIO * size(stage)``) and the alphas are far
    enough apart to have a middle: their geometric middle (the arithmetic one
    from 0), per layer for per-layer alphas.
    """
    if not size(previous) > REFINE_RATIO * size(stage):
        return None
    a = np.asarray(previous["alpha"], dtype=float)
    b = np.asarray(stage["alpha"], dtype=float)
    if not np.all(b >= a) or not np.any(b > a * (1 + 1e-3) + 1e-300):
        return None
    middle = np.where(a > 0, np.sqrt(a * b), (a + b) / 2)
    return _as_alpha(middle)


def _quiet(fn, where: str | None, *args):
    """``fn(*args)`` without ConvergenceWarnings; errors say ``where``.

    A stage's budget is ``max_iter`` epochs: running it out is the rule.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if where is None:
            return fn(*args)
        return _named(fn, f"RegularizationPathCV, {where}", *args)
