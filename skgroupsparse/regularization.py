"""Fitting estimators along alpha: where a path starts, paths, the target search.

The estimator-layer half of choosing alpha; the pure maths (grids, Dwork's
schedule, the search's target and alpha update rules) is in
:mod:`skgroupsparse.path`.

* :func:`alpha_max`: where a path starts, read off the estimator's initial
  network; :func:`layer_sizes`: the widths of the network it would build.
* :func:`regularization_path`: one estimator fitted over a sequence of alphas,
  each fit warm-started from the previous one, one record per alpha.
  :func:`regularization_path_cv` runs independent paths over cross-validation
  folds through joblib (``n_jobs``; any joblib backend, Dask included).
* :func:`relaxed_fit`: a fitted model's support trained on without the
  penalty (the relaxed lasso's second step), so that a size found under a
  penalty comes with a model trained for it.
* :func:`target_search`: Shen et al.'s Algorithms 1 and 2 (ALGORITHMS.md
  section 4), trainings and zero-threshold readings until a target sparsity
  holds, as :class:`~skgroupsparse.TargetSparsityCV` drives it.

These functions build networks and read data through the estimators' own
(private) methods, and run the target search's trainings through ``_fit``
with its stop rule, so they belong to the estimator layer: they use
scikit-learn (``clone``, ``check_random_state``, ``_safe_indexing``,
``_fit_context``) and nothing below that layer
imports them.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from joblib import Parallel, delayed
from numpy.typing import ArrayLike
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from skgroupsparse._base import BaseGroupSparseMLP, _weighted, draw_seed
from skgroupsparse._sklearn import _fit_context, _safe_indexing
from skgroupsparse.path import SearchTarget, TargetReached, alpha_grid, update_alphas
from skgroupsparse.training import (
    BatchedTrainer,
    ProximalTrainer,
    SparseRows,
    TrainingDiverged,
    batch_refusal,
    read_thresholds,
)

__all__ = [
    "alpha_max",
    "fit_together",
    "layer_sizes",
    "located",
    "stage_record",
    "path_stage",
    "regularization_path",
    "regularization_path_cv",
    "relaxed_fit",
    "target_search",
]


def _as_alpha(alpha):
    """A float alpha, or the list of a per-layer one (as ``set_params`` takes it)."""
    alpha = np.asarray(alpha, dtype=float)
    return float(alpha) if alpha.ndim == 0 else alpha.tolist()


# ----------------------------------------------------------------------
# where a path starts
# ----------------------------------------------------------------------
@torch.no_grad()
def alpha_max(
    estimator: BaseGroupSparseMLP, X: ArrayLike, y: ArrayLike, sample_weight=None
) -> float:
    """The alpha at which the first penalised layer of units is switched off.

    The estimator's initial network (its ``random_state``) is taken with the
    groups of the first layer of units that has groups set to zero (the input
    features with ``groups="outgoing"`` and for ShrinkNets; the first hidden
    layer with ``groups="incoming"``) and the last bias set so that the now
    constant output is the best constant. ``alpha_max`` is the largest zero
    threshold of those groups there: above it, that point satisfies their
    optimality conditions. For a linear model (``hidden_layer_sizes=()``) the
    point is the all-zero model with the best intercept, and this is exactly
    the ``alpha_max`` of the lasso or group lasso (the smallest alpha whose
    solution is zero). With hidden layers it is the same bound read with the
    other layers at their initial weights: a natural top for a grid.

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators (unfitted or fitted; it is not
        changed).
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    sample_weight : array-like of shape (n_samples,), default=None
        The rows' weights, as ``fit`` takes them: the loss is their weighted
        mean, so integer weights give the ``alpha_max`` of the rows repeated,
        and scaling every weight by one factor changes nothing (the penalty
        keeps its scale). A classifier's ``class_weight`` multiplies them, as
        in its ``fit``.

    Returns
    -------
    alpha_max : float
        In the units of the estimator's ``alpha`` (a per-sample strength).
    """
    est = clone(estimator)
    X, y_checked, targets, n_outputs, loss, layer_sizes = _read_data(est, X, y)
    # a classifier's class_weight too, as its fit weighs the rows
    sample_weight = est._checked_row_weights(X, y_checked, sample_weight)
    dtype = torch.float64
    # est is a clone: drawing from its random_state leaves the user's alone
    seed = draw_seed(check_random_state(est.random_state))
    generator = torch.Generator().manual_seed(seed)
    net = est._build_network(layer_sizes, generator, dtype, "cpu")
    group_map = est._build_group_map(net.layout)
    penalty = est._threshold_penalty(group_map, dtype, torch.device("cpu"))
    candidates = group_map.unit_layer
    if group_map.switch is not None:
        candidates = torch.where(group_map.switch, candidates, candidates.max() + 1)
    first = int(candidates.min())
    rows = candidates == first
    theta = net.theta.detach()
    index = group_map.index[rows]
    theta[index[index != net.layout.sentinel]] = 0.0
    # in full batch: a sparse X is made dense whole (a copy: validated data
    # can be a read-only view of a DataFrame, which torch warns about)
    X_t = torch.tensor(X.toarray() if sp.issparse(X) else np.asarray(X), dtype=dtype)
    Y_t = est._targets_tensor(targets, loss, n_outputs, dtype, "cpu")
    weights = None
    if sample_weight is not None:
        weights = torch.as_tensor(sample_weight, dtype=dtype)
        if not bool(weights.sum() > 0):
            raise ValueError("sample_weight sums to zero: no row to read alpha_max on")
    _set_best_constant(net, X_t, Y_t, loss, weights)
    reading = read_thresholds(
        net, group_map, penalty, X_t, _weighted(Y_t, weights), loss
    )
    return float(reading.units[first].max())


def _read_data(est, X, y) -> tuple:
    """``(X, y, targets, n_outputs, loss, layer_sizes)`` as ``est.fit`` reads
    them (``y`` validated, ``targets`` encoded).

    The estimator's own validation reads the data, so bad input gets its
    errors; ``est`` (an unfitted copy) records the classes.
    """
    X, y = est._validate_X_y(X, y, reset=True)
    targets, n_outputs, loss = est._encode_targets(y, False, False)
    layer_sizes = (X.shape[1], *est._hidden_sizes(), n_outputs)
    return X, y, targets, n_outputs, loss, layer_sizes


def layer_sizes(
    estimator: BaseGroupSparseMLP, X: ArrayLike, y: ArrayLike
) -> tuple[int, ...]:
    """The widths of the network ``estimator`` would build on ``(X, y)``.

    Nothing is trained; the data are validated as ``fit`` validates them.

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators (it is not changed).
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets (they set the number of outputs).

    Returns
    -------
    tuple of int
        The widths of the inputs, of the hidden layers, then of the outputs.
    """
    return _read_data(clone(estimator), X, y)[-1]


def _set_best_constant(net, X, Y, loss: str, weights=None) -> None:
    """Shift the last bias so that a constant output is the loss-optimal constant
    (of the weighted mean loss with ``weights``)."""
    out = net(X[:1])[0]
    mean = Y.mean(dim=0) if weights is None else weights @ Y / weights.sum()
    if loss == "squared":
        best = mean
    elif loss == "softmax":
        best = torch.log(mean.clamp(min=1e-12))
    else:  # logistic outputs
        p = mean.clamp(1e-12, 1 - 1e-12)
        best = torch.log(p / (1 - p))
    net.biases[-1].add_(best - out)


# ----------------------------------------------------------------------
# the relaxed fit
# ----------------------------------------------------------------------
def relaxed_fit(
    fitted: BaseGroupSparseMLP,
    X: ArrayLike,
    y: ArrayLike,
    *,
    validation_fraction: float = 0.1,
    neurons: Sequence[int] | None = None,
    max_iter: int | None = None,
    patience: int | None = None,
    all_rows: bool = True,
) -> BaseGroupSparseMLP:
    """Train a fitted model on without its penalty, on the support it selected.

    The penalty that chose the size also shrank the weights that survive, and
    a search that stops as soon as a size is reached leaves them under-trained.
    The relaxed fit (Meinshausen's relaxed lasso, for networks) keeps what was
    selected and trains the rest freely: a copy of ``fitted`` has every
    weight and switch that is zero held at zero (so dead units cannot revive;
    with ``remove_dead=True`` they are removed first), and is trained on
    warm-started with ``alpha=0`` and a new optimizer state.

    How long: early stopping on a held-out ``validation_fraction`` of
    ``(X, y)``, watching the held-out mean loss (smoother than an accuracy on
    a few rows), for at most ``max_iter`` epochs and with the estimator's
    ``n_iter_no_change`` and ``tol``, gives the best number of epochs; the
    relaxed model is then trained for that many epochs on all of ``(X, y)``,
    so no row is lost to the hold-out. When ``(X, y)`` is too small to hold
    out a part (fewer than two rows on either side, or for a classifier a
    class with one row) it trains on all rows with the training loss's stop.

    Parameters
    ----------
    fitted : estimator object
        A fitted estimator of this package; it is copied, not changed.
    X : array-like of shape (n_samples, n_features)
        Training data (the data ``fitted`` was fitted on, usually).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    validation_fraction : float, default=0.1
        The part of ``(X, y)`` held out to choose the number of epochs.
    neurons : sequence of int, default=None
        The most live neurons to keep in each hidden layer: in a layer with
        more, the weakest (by the product of their incoming and outgoing
        weight norms) are removed first, so that a size searched within a
        tolerance comes out exact. None keeps every live neuron.
    max_iter : int, default=None
        The most epochs (of the probe and of the training on all the rows);
        None: ``fitted``'s ``max_iter``.
    patience : int, default=None
        Epochs without improvement of the held-out loss (by ``tol``) that end
        the probe; None: ``fitted``'s ``n_iter_no_change``.
    all_rows : bool, default=True
        Train on all the rows for the probe's best number of epochs (two
        trainings). False: return the probe itself, at its best held-out
        epoch: one short training on ``1 - validation_fraction`` of the rows
        (the stage scores of :class:`~skgroupsparse.RegularizationPathCV`).

    Returns
    -------
    estimator
        The relaxed copy: the same live neurons, features and zero weights as
        ``fitted`` (less the surplus neurons dropped with ``neurons``). Its
        parameters are ``fitted``'s with ``alpha=0``, ``warm_start=True``,
        ``early_stopping=False``, and without RVSM
        (``solver="prox", penalty="group_lasso"``) or the sign-variance
        detector (``switch_death="prox"``), which act only through a penalty;
        a further warm-started ``fit`` or ``partial_fit`` no longer holds the
        zeros.
    """
    est = copy.deepcopy(fitted)
    _, y_checked = est._validate_X_y(X, y, reset=False)
    if neurons is not None:
        est._trainer.net.keep_strongest_units(neurons)
    stopping = {k: getattr(est, k) for k in ("max_iter", "tol", "n_iter_no_change")}
    est.set_params(
        alpha=0.0, warm_start=True, early_stopping=False, **est._relaxed_params()
    )
    if max_iter is not None:
        est.set_params(max_iter=int(max_iter))
    if patience is not None:
        est.set_params(n_iter_no_change=int(patience))
    if not _can_hold_out(est, y_checked, validation_fraction):
        est._fit(X, y, incremental=False, freeze_support=True)
        return est.set_params(**stopping)
    # the probe: a copy of its own only when est is trained after it
    probe = (copy.deepcopy(est) if all_rows else est).set_params(
        early_stopping=True, validation_fraction=float(validation_fraction)
    )
    scored = len(probe._trainer.validation_scores)
    probe._fit(X, y, incremental=False, freeze_support=True, validate_on="loss")
    if not all_rows:  # at its best held-out epoch (the fit restores it)
        return probe.set_params(
            early_stopping=False,
            validation_fraction=fitted.validation_fraction,
            **stopping,
        )
    epochs = 1 + int(np.argmax(probe.validation_scores_[scored:]))
    # exactly that many epochs on all the rows, then the user's stopping rule back
    est.set_params(max_iter=epochs, tol=0.0, n_iter_no_change=epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est._fit(X, y, incremental=False, freeze_support=True)
    return est.set_params(**stopping)


def _can_hold_out(est, y: np.ndarray, fraction: float) -> bool:
    """Whether ``est``'s early stopping can hold out ``fraction`` of ``y``.

    As ``fit`` splits: at least two validation rows and, for single-label
    classifiers (a stratified split), every class twice and at least one
    row per class on each side.
    """
    n = len(y)
    n_val = int(np.ceil(fraction * n))
    if n_val < 2 or n - n_val < 2:
        return False
    if is_classifier(est) and np.ndim(y) == 1:
        counts = np.unique(y, return_counts=True)[1]
        return counts.min() >= 2 and min(n_val, n - n_val) >= len(counts)
    return True


# ----------------------------------------------------------------------
# paths
# ----------------------------------------------------------------------
def regularization_path(
    estimator: BaseGroupSparseMLP,
    X: ArrayLike,
    y: ArrayLike,
    alphas: Sequence | None = None,
    *,
    n_alphas: int = 10,
    eps: float = 1e-2,
    learning_rates: Sequence[float] | None = None,
    validation_data: tuple | None = None,
    warm_start: bool = True,
    return_estimators: bool = False,
) -> list[dict]:
    """Fit ``estimator`` over a sequence of alphas, each fit starting from the last.

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators; it is copied, not changed. Its
        ``max_iter`` is the budget of every stage.
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    alphas : sequence of float (or of per-layer sequences), default=None
        The path, in the order it is taken. Default: the grid
        ``alpha_grid(alpha_max(estimator, X, y), n_alphas, eps)`` taken from
        small to large (regularization growing). The lasso's usual order,
        large to small, suits networks with hidden layers poorly: its first
        stage zeroes every group, and a network with every group zero is a
        stationary point of the objective for every alpha (no gradient
        reaches a weight whose neighbours are all zero once the output bias
        fits), so the warm-started stages after it recover only through
        mini-batch noise, if at all.
    n_alphas : int, default=10
        Length of the default grid.
    eps : float, default=1e-2
        Ratio of the smallest to the largest alpha of the default grid.
    learning_rates : sequence of float, default=None
        ``learning_rate_init`` of every stage (e.g. from
        :func:`~skgroupsparse.path.regularization_growing`); default: the estimator's.
    validation_data : tuple (X_val, y_val), default=None
        Scored after every stage.
    warm_start : bool, default=True
        Start every stage from the previous stage's weights (a new optimizer
        state); ``False`` fits every stage from scratch.
    return_estimators : bool, default=False
        Put a copy of every stage's fitted estimator in its record.

    Returns
    -------
    records : list of dict
        One per alpha: ``alpha``, ``learning_rate_init``, ``sparsity``,
        ``live_neurons``, ``live_features``, ``objective`` (the last epoch's
        objective, loss plus penalty, as in ``loss_curve_``), ``train_loss``
        (the mean loss on ``(X, y)`` at the end, in full batch),
        ``train_score``, ``validation_score`` (or None), ``epochs``,
        ``seconds`` (and ``estimator``).
    """
    if alphas is None:
        alphas = alpha_grid(alpha_max(estimator, X, y), n_alphas, eps)[::-1]
    alphas = list(alphas)
    if not alphas:
        raise ValueError("alphas must not be empty")
    if learning_rates is not None:
        learning_rates = list(learning_rates)
        if len(learning_rates) != len(alphas):
            raise ValueError(
                f"learning_rates has {len(learning_rates)} values for {len(alphas)} "
                "alphas"
            )
    est = clone(estimator)
    records = []
    for k, alpha in enumerate(alphas):
        rate = None if learning_rates is None else float(learning_rates[k])
        record = path_stage(est, X, y, alpha, bool(warm_start and k > 0), rate)
        record["train_loss"] = est._training_loss(X, y)
        record["train_score"] = float(est.score(X, y))
        record["validation_score"] = (
            None if validation_data is None else float(est.score(*validation_data))
        )
        if return_estimators:
            record["estimator"] = copy.deepcopy(est)
        records.append(record)
        if est._trainer.interrupted:
            break  # Ctrl-C ends the path too, with the stages so far
    return records


def fit_together(
    estimators: Sequence[BaseGroupSparseMLP],
    data: Sequence[tuple],
    names: Sequence[str] | None = None,
    settle: int | None = None,
    keep_optimizer: bool = False,
) -> str | None:
    """Fit every estimator on its own data, as one batched network if they allow.

    Each ``estimators[k].fit(*data[k])`` is what happens, with one difference:
    when the trainings share an architecture and the settings the batched
    engine needs (:func:`~skgroupsparse.training.batch_refusal`), they run as
    one network whose products are batched
    (:class:`~skgroupsparse.training.BatchedTrainer`). Otherwise each runs on
    its own, one after another. Either way each estimator ends as its own
    ``fit`` leaves it (up to floating-point rounding), warm starts included;
    if any training fails, every estimator is left as it was.

    Parameters
    ----------
    estimators : sequence of estimator objects
        This package's estimators (distinct objects), fitted in place.
    data : sequence of (X, y)
        The training data of each.
    names : sequence of str, default=None
        What to call each in an error (e.g. ``"fold 2 of 5 at alpha=0.01"``);
        default ``"network k"``.
    settle : int, default=None
        End each training once its support and objective have settled for
        this many epochs (a warm stage of a path; see
        :meth:`~skgroupsparse.training.ProximalTrainer.settled`).
    keep_optimizer : bool, default=False
        Warm starts go on with the optimizer state of the last fit.

    Returns
    -------
    str or None
        Why they were fitted one after another, or None when batched.
    """
    if names is None:
        names = [f"network {k}" for k in range(len(estimators))]
    with contextlib.ExitStack() as restore:
        for est in estimators:
            est._validate_params()
            restore.enter_context(est._restore_state_on_failure())
        plans = [
            _named(
                est._plan_fit,
                name,
                X,
                y,
                False,
                keep_optimizer,
                full_width=True,
                settle=settle,
            )
            for est, (X, y), name in zip(estimators, data, names)
        ]
        trainers = [plan.trainer for plan in plans]
        reason = batch_refusal(trainers, [len(plan.X) for plan in plans])
        if len(plans) < 2:
            reason = "a single network"
        if any(plan.validation_score is not None for plan in plans):
            reason = "early stopping (a validation split per network)"
        if any(isinstance(plan.X, SparseRows) for plan in plans):
            reason = "sparse input"
        if reason is None:
            try:
                stopped = BatchedTrainer(trainers).fit(
                    [(plan.X, plan.y) for plan in plans],
                    [plan.generator for plan in plans],
                    plans[0].max_iter,
                )
            except TrainingDiverged as error:
                # named by the caller's name instead of the engine's "network k"
                cause = error.__cause__ or error
                raise located(cause, names[error.network]) from error
        else:
            stopped = [
                _named(_run_plan, name, est, plan)
                for est, plan, name in zip(estimators, plans, names)
            ]
        for est, plan, stop in zip(estimators, plans, stopped):
            est._end_fit(plan, stop, incremental=False)
    return reason


def _run_plan(est: BaseGroupSparseMLP, plan) -> bool:
    """Train one planned fit on its own, under the fit's owner of the cores."""
    with est._cpu_threads():
        return est._run_plan(plan)


def located(error: Exception, where: str) -> Exception:
    """``error`` again, of its type where it can be rebuilt, its message prefixed.

    Parameters
    ----------
    error : Exception
        What was raised.
    where : str
        Which fit raised it (e.g. ``"fold 2 of 5 at alpha=0.01"``).

    Returns
    -------
    Exception
        A new exception of ``error``'s type (``RuntimeError`` where the type
        cannot be rebuilt from a message) saying ``where: error``.
    """
    message = f"{where}: {error}"
    try:
        new = type(error)(message)
    except Exception:
        return RuntimeError(message)
    return new if str(new) == message else RuntimeError(message)


def _named(fn, where: str, *args, **kwargs):
    """``fn(*args, **kwargs)``; an error it raises says ``where``."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:
        raise located(error, where) from error


def path_stage(
    est: BaseGroupSparseMLP,
    X: ArrayLike,
    y: ArrayLike,
    alpha,
    warm_start: bool,
    learning_rate: float | None = None,
    settle: int | None = None,
    keep_optimizer: bool = False,
) -> dict:
    """One stage of a path: ``est`` (changed in place) fitted at ``alpha``.

    Parameters
    ----------
    est : estimator object
        The path's own estimator: its parameters are set and it is fitted.
    X : array-like of shape (n_samples, n_features)
        Training data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    alpha : float or sequence of float
        The stage's alpha (per layer of units if a sequence).
    warm_start : bool
        Start from ``est``'s weights (a new optimizer state).
    learning_rate : float, default=None
        The stage's ``learning_rate_init``; None keeps ``est``'s.
    settle : int, default=None
        End the stage once its support and objective have settled for this
        many epochs (:meth:`~skgroupsparse.training.ProximalTrainer.settled`);
        ``est.max_iter`` is its budget either way.
    keep_optimizer : bool, default=False
        A warm stage goes on with the optimizer state of the last one
        instead of a new one.

    Returns
    -------
    dict
        ``alpha``, ``learning_rate_init``, ``sparsity``, ``live_neurons``,
        ``live_features``, ``objective`` (the last epoch's loss plus penalty),
        ``epochs`` (run in this stage) and ``seconds``.
    """
    params = dict(alpha=_as_alpha(alpha), warm_start=warm_start)
    if learning_rate is not None:
        params["learning_rate_init"] = learning_rate
    epochs = est.n_iter_ if warm_start else 0
    began = time.perf_counter()
    est.set_params(**params)
    if settle is None and not keep_optimizer:
        est.fit(X, y)
    else:
        _fit_stage(est, X, y, settle, keep_optimizer)
    return stage_record(est, epochs, time.perf_counter() - began)


@_fit_context(prefer_skip_nested_validation=True)
def _fit_stage(est: BaseGroupSparseMLP, X, y, settle, keep_optimizer):
    """``est.fit(X, y)`` as a stage of a path (see :func:`path_stage`)."""
    return est._fit(
        X, y, incremental=False, settle=settle, keep_optimizer=keep_optimizer
    )


def stage_record(est: BaseGroupSparseMLP, epochs_before: int, seconds: float) -> dict:
    """What a path records of a stage just fitted (see :func:`path_stage`).

    Parameters
    ----------
    est : estimator object
        The stage's fitted estimator.
    epochs_before : int
        Its ``n_iter_`` before the stage (0 for a fit from scratch).
    seconds : float
        The stage's fit time.

    Returns
    -------
    dict
        As :func:`path_stage` returns.
    """
    return dict(
        alpha=_as_alpha(est.alpha),
        learning_rate_init=float(est.learning_rate_init),
        sparsity=float(est.sparsity_),
        live_neurons=list(est.active_neurons_),
        live_features=int(est.support_.sum()),
        objective=float(est.loss_),
        epochs=int(est.n_iter_ - epochs_before),
        seconds=seconds,
    )


def _fold_path(estimator, X, y, train, test, alphas, kwargs) -> list[dict]:
    """The path on one training fold, scored on its held-out fold."""
    return regularization_path(
        estimator,
        _safe_indexing(X, train),
        _safe_indexing(y, train),
        alphas,
        validation_data=(_safe_indexing(X, test), _safe_indexing(y, test)),
        **kwargs,
    )


def regularization_path_cv(
    estimator: BaseGroupSparseMLP,
    X: ArrayLike,
    y: ArrayLike,
    folds: Iterable,
    alphas: Sequence | None = None,
    *,
    n_jobs: int | None = None,
    **kwargs,
) -> list[list[dict]]:
    """One warm-started path per cross-validation fold, run in parallel.

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators.
    X : array-like of shape (n_samples, n_features)
        Data.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    folds : iterable of (train, test) index arrays
        E.g. ``KFold(5).split(X)``; every path is scored on its held-out part
        (``validation_score``).
    alphas : sequence, default=None
        As in :func:`regularization_path`; default: the grid below
        :func:`alpha_max` of all the data, from small to large, the same for
        every fold.
    n_jobs : int, default=None
        The number of joblib jobs; under ``joblib.parallel_backend("dask")``
        the paths run on a Dask cluster.
    **kwargs
        Passed to :func:`regularization_path`.

    Returns
    -------
    paths : list of list of dict
        One path (list of records) per fold.
    """
    if alphas is None:
        alphas = alpha_grid(
            alpha_max(estimator, X, y),
            kwargs.pop("n_alphas", 10),
            kwargs.pop("eps", 1e-2),
        )[::-1]
    return Parallel(n_jobs=n_jobs)(
        delayed(_fold_path)(estimator, X, y, train, test, list(alphas), kwargs)
        for train, test in folds
    )


# ----------------------------------------------------------------------
# the target-sparsity search (Shen et al. 2024, Algorithms 1-3)
# ----------------------------------------------------------------------


def target_search(
    estimator: BaseGroupSparseMLP,
    X: ArrayLike,
    y: ArrayLike,
    target: SearchTarget,
    alpha0: float | ArrayLike,
    *,
    max_trainings: int = 5,
    update: str = "gradient",
    stop_at_target: bool = True,
    warm_start: bool = True,
    verbose: bool = False,
) -> tuple[BaseGroupSparseMLP, np.ndarray, list[dict]]:
    """Algorithms 1 and 2: trainings and threshold readings until the target holds.

    ``estimator`` is copied. After a training that misses the target the zero
    thresholds are read on ``(X, y)`` and
    :func:`~skgroupsparse.path.update_alphas` gives the next alpha. With
    ``warm_start`` every training after the first starts from the weights (and
    optimizer state) of the last training that left no entry too sparse:
    sparsity grows while training at a larger alpha, where the check after
    every batch catches it in the band, but a net made too sparse recovers its
    weights only slowly at a smaller alpha (and dead neurons not at all), so
    the search steps back to the denser side instead of climbing down from an
    overshoot (to a new network when the first training already overshot).

    Parameters
    ----------
    estimator : estimator object
        One of this package's estimators; it is copied, not changed.
    X : array-like of shape (n_samples, n_features)
        Training data (the thresholds are read on it too).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Targets.
    target : SearchTarget
        What the search aims at.
    alpha0 : float or ndarray
        The first alpha: a float, or one per layer of units.
    max_trainings : int, default=5
        Cap on the number of trainings.
    update : {"gradient", "median", "bracket"}, default="gradient"
        The rule of :func:`~skgroupsparse.path.next_alpha`.
    stop_at_target : bool, default=True
        End a training at the first mini-batch after which the target holds
        (:class:`~skgroupsparse.path.TargetReached`, with ``freeze=True``).
    warm_start : bool, default=True
        Start each training from an earlier one (see above); ``False`` trains
        every alpha from scratch.
    verbose : bool, default=False
        Print one line per training.

    Returns
    -------
    fitted : estimator
        The training that met the target, else the one closest to it.
    alpha : ndarray
        Its alpha (0-d for a single alpha).
    history : list of dict
        One row per training (see :class:`~skgroupsparse.TargetSparsityCV`).
    """
    est = clone(estimator)
    alpha = np.array(alpha0, dtype=float)
    lo = np.zeros(len(target.counts))
    hi = np.full(len(target.counts), np.inf)
    history = []
    best = None
    dense_side = None  # the last training with no entry too sparse
    too_sparse = np.zeros(len(target.counts), dtype=bool)
    for k in range(max_trainings):
        warm = warm_start and k > 0
        if warm and too_sparse.any():
            # back to the denser side; when even the first training was too
            # sparse, that is a new network
            fresh = dense_side is None
            est = clone(estimator) if fresh else copy.deepcopy(dense_side)
            warm = not fresh
        est.set_params(alpha=_as_alpha(alpha), warm_start=warm)
        stop_rule = TargetReached(target, freeze=True) if stop_at_target else None
        epochs_before = est.n_iter_ if warm else 0
        began = time.perf_counter()
        _fit_continuing(est, X, y, stop_rule)
        seconds = time.perf_counter() - began
        achieved = target.achieved_by(est)
        met = target.met(achieved)
        history.append(
            dict(
                training=k + 1,
                alpha=_as_alpha(alpha),
                sparsity=float(est.sparsity_),
                layer_sparsity=[float(np.mean(W == 0)) for W in est.coefs_],
                live_neurons=list(est.active_neurons_),
                live_features=int(est.support_.sum()),
                met=bool(met),
                score=float(est.score(X, y)),
                epochs=int(est.n_iter_ - epochs_before),
                seconds=seconds,
            )
        )
        if verbose:
            row = history[-1]
            print(
                f"training {k + 1}: alpha={row['alpha']}, sparsity="
                f"{row['sparsity']:.4f}, live neurons={row['live_neurons']}, "
                f"score={row['score']:.4f}, target met={met}"
            )
        gap = float(np.abs(achieved - target.counts).sum())
        snapshot = None
        if best is None or met or gap < best[0]:
            snapshot = copy.deepcopy(est)
            best = (gap, snapshot, alpha.copy())
        if met or k + 1 == max_trainings or est._trainer.interrupted:
            break  # Ctrl-C ends the search too, with the best training so far
        too_sparse = achieved < target.counts - target.slack
        if warm_start and not too_sparse.any():
            # snapshots are never trained on: a training starts from a copy
            dense_side = snapshot if snapshot is not None else copy.deepcopy(est)
        reading = est._read_thresholds(X, y)
        alpha = update_alphas(update, target, reading, alpha, achieved, lo, hi)
    _, fitted, alpha = best
    fitted.set_params(warm_start=estimator.warm_start)
    return fitted, alpha, history


@_fit_context(prefer_skip_nested_validation=True)
def _fit_continuing(
    est: BaseGroupSparseMLP,
    X,
    y,
    stop_rule: Callable[[ProximalTrainer], bool] | None,
) -> BaseGroupSparseMLP:
    """``est.fit(X, y)`` as one training of a search.

    The parameters are validated as ``fit`` validates them; the training ends
    once ``stop_rule`` holds (None: it runs its epochs), and a warm-started
    training keeps the optimizer state of the last one, so that the search
    goes on as one optimisation over its alphas. ``est`` is the search's own
    copy, so a training that raises needs no state put back.
    """
    return est._fit(X, y, incremental=False, stop_rule=stop_rule, keep_optimizer=True)
