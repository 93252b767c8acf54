"""Regularization paths and the target-sparsity search.

* :func:`alpha_max` and :func:`alpha_grid`: where a path starts and the
  geometric grid over it.
* :func:`regularization_path`: one estimator fitted over a sequence of alphas,
  each fit warm-started from the previous one, one record per alpha.
  :func:`regularization_growing` is Dwork's schedule for it (ALGORITHMS.md
  section 2.4): ``alpha = 10**p`` with step ``2 * 10**-(p + 2)``, from small to
  large alpha. :func:`regularization_path_cv` runs independent paths over
  cross-validation folds through joblib (``n_jobs``; any joblib backend, Dask
  included).
* :class:`SearchTarget`, :func:`next_alpha` and :class:`TargetReached`: the
  pieces of Shen et al.'s Algorithms 1-3 (ALGORITHMS.md section 4) that
  :class:`~skgroupsparse.TargetSparsityCV` drives.

The estimators are used through ``get_params``, ``set_params`` and ``fit``
only, so this module does not import scikit-learn.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from joblib import Parallel, delayed

from skgroupsparse.training import ProximalTrainer, ThresholdReading, read_thresholds

__all__ = [
    "UPDATE_RULES",
    "SearchTarget",
    "TargetReached",
    "alpha_grid",
    "alpha_max",
    "layer_sizes",
    "next_alpha",
    "regularization_growing",
    "regularization_path",
    "regularization_path_cv",
    "target_search",
    "update_alphas",
]

#: how the search chooses the next alpha from a training's zero thresholds
UPDATE_RULES = ("gradient", "median", "bracket")

#: factor by which alpha moves while only one end of its bracket is known
EXPAND = 10.0


def _fresh(estimator):
    """An unfitted copy with the same parameters (``sklearn.clone`` without sklearn)."""
    return type(estimator)(**copy.deepcopy(estimator.get_params(deep=False)))


def _as_alpha(alpha):
    alpha = np.asarray(alpha, dtype=float)
    return float(alpha) if alpha.ndim == 0 else alpha.tolist()


# ----------------------------------------------------------------------
# where a path starts
# ----------------------------------------------------------------------
@torch.no_grad()
def alpha_max(estimator, X, y) -> float:
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

    Returns
    -------
    alpha_max : float
        In the units of the estimator's ``alpha`` (a per-sample strength).
    """
    est = _fresh(estimator)
    X, targets, n_outputs, loss, layer_sizes = _read_data(est, X, y)
    dtype = torch.float64
    generator = torch.Generator().manual_seed(_initial_seed(est.random_state))
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
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float64))
    Y_t = est._targets_tensor(targets, loss, n_outputs, dtype, "cpu")
    _set_best_constant(net, X_t, Y_t, loss)
    reading = read_thresholds(net, group_map, penalty, X_t, Y_t, loss)
    return float(reading.units[first].max())


def _read_data(est, X, y) -> tuple:
    """``(X, targets, n_outputs, loss, layer_sizes)`` as ``est.fit`` reads them.

    The estimator's own validation reads the data, so bad input gets its
    errors; ``est`` (an unfitted copy) records the classes.
    """
    X, y = est._validate_X_y(X, y, reset=True)
    targets, n_outputs, loss = est._encode_targets(y, False, False)
    return X, targets, n_outputs, loss, (X.shape[1], *est._hidden_sizes(), n_outputs)


def layer_sizes(estimator, X, y) -> tuple[int, ...]:
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
    return _read_data(_fresh(estimator), X, y)[-1]


def _initial_seed(random_state) -> int:
    """The seed the estimators draw their initialisation from (as ``fit`` does)."""
    if isinstance(random_state, np.random.RandomState):
        rng = copy.deepcopy(random_state)
    else:
        rng = np.random.RandomState(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


def _set_best_constant(net, X, Y, loss: str) -> None:
    """Shift the last bias so that a constant output is the loss-optimal constant."""
    out = net(X[:1])[0]
    if loss == "squared":
        best = Y.mean(dim=0)
    elif loss == "softmax":
        best = torch.log(Y.mean(dim=0).clamp(min=1e-12))
    else:  # logistic outputs
        p = Y.mean(dim=0).clamp(1e-12, 1 - 1e-12)
        best = torch.log(p / (1 - p))
    net.biases[-1].add_(best - out)


def alpha_grid(alpha_max: float, n_alphas: int = 20, eps: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``alpha_max`` down to ``eps * alpha_max``.

    Parameters
    ----------
    alpha_max : float
        Top of the grid (see :func:`alpha_max`).
    n_alphas : int, default=20
        Number of values.
    eps : float, default=1e-3
        Ratio of the smallest to the largest value.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        Decreasing.
    """
    if not np.isfinite(alpha_max) or alpha_max <= 0:
        raise ValueError(f"alpha_max must be positive and finite, got {alpha_max!r}")
    if int(n_alphas) < 1:
        raise ValueError(f"n_alphas must be at least 1, got {n_alphas!r}")
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    return np.geomspace(alpha_max, alpha_max * eps, int(n_alphas))


def regularization_growing(p_start: int, p_stop: int) -> list[tuple[float, float]]:
    """Dwork's "regularization growing" schedule (ALGORITHMS.md section 2.4).

    Stage ``p`` trains at ``alpha = 10**p`` with step ``2 * 10**-(p + 2)``, so
    that every stage applies the same shrinkage ``step * alpha = 0.02`` while
    the objective moves towards heavier regularization.

    Parameters
    ----------
    p_start, p_stop : int
        First and last exponent (inclusive), ``p_start <= p_stop``.

    Returns
    -------
    schedule : list of (alpha, learning_rate_init)
        For :func:`regularization_path` (``alphas`` and ``learning_rates``).
    """
    if int(p_start) > int(p_stop):
        raise ValueError(f"p_start must not exceed p_stop, got {p_start} > {p_stop}")
    return [
        (10.0**p, 2.0 * 10.0 ** -(p + 2)) for p in range(int(p_start), int(p_stop) + 1)
    ]


# ----------------------------------------------------------------------
# paths
# ----------------------------------------------------------------------
def regularization_path(
    estimator,
    X,
    y,
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
        :func:`regularization_growing`); default: the estimator's.
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
    est = _fresh(estimator)
    records = []
    epochs = 0
    for k, alpha in enumerate(alphas):
        params = dict(alpha=_as_alpha(alpha), warm_start=bool(warm_start and k > 0))
        if learning_rates is not None:
            params["learning_rate_init"] = float(learning_rates[k])
        est.set_params(**params)
        began = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - began
        ran = est.n_iter_ - epochs if params["warm_start"] else est.n_iter_
        epochs = est.n_iter_
        record = dict(
            alpha=_as_alpha(alpha),
            learning_rate_init=float(est.learning_rate_init),
            sparsity=float(est.sparsity_),
            live_neurons=list(est.active_neurons_),
            live_features=int(est.support_.sum()),
            objective=float(est.loss_),
            train_loss=est._training_loss(X, y),
            train_score=float(est.score(X, y)),
            validation_score=(
                None if validation_data is None else float(est.score(*validation_data))
            ),
            epochs=int(ran),
            seconds=seconds,
        )
        if return_estimators:
            record["estimator"] = copy.deepcopy(est)
        records.append(record)
        if est._trainer.interrupted:
            break  # Ctrl-C ends the path too, with the stages so far
    return records


def _index(data, rows):
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    return np.asarray(data)[rows]


def _fold_path(estimator, X, y, train, test, alphas, kwargs) -> list[dict]:
    return regularization_path(
        estimator,
        _index(X, train),
        _index(y, train),
        alphas,
        validation_data=(_index(X, test), _index(y, test)),
        **kwargs,
    )


def regularization_path_cv(
    estimator,
    X,
    y,
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
@dataclass
class SearchTarget:
    """What a target search aims at, as counts, and which alpha moves what.

    Parameters
    ----------
    kind : {"weights", "neurons"}
        Nonzero weights (for the whole net, or per weight matrix) or live
        neurons per hidden layer.
    counts : ndarray of shape (n_entries,)
        Target count of every entry.
    slack : ndarray of shape (n_entries,)
        Tolerance of every entry, in the same units.
    layers : list
        Per entry: the weight matrix it counts (its index from 0; ``None``:
        all of them), or the hidden layer (1-based layer of units) whose
        neurons it counts.
    alpha_index : list
        Per entry: the entry of the per-layer ``alpha`` that moves it
        (``None``: a single alpha for the net).
    min_met : int
        Entries that must be within tolerance (Algorithm 2's threshold).
    freeze : list
        Per entry: the weight matrices that stop training once the entry is
        within tolerance (see :class:`TargetReached`); empty to only check.
    """

    kind: str
    counts: np.ndarray
    slack: np.ndarray
    layers: list
    alpha_index: list
    min_met: int
    freeze: list

    def achieved(self, nonzero: Sequence[int], neurons: Sequence[int]) -> np.ndarray:
        """The entries' counts, from nonzero weights per matrix or live neurons.

        Parameters
        ----------
        nonzero : sequence of int
            Nonzero weights of every weight matrix (read when ``kind`` is
            ``"weights"``).
        neurons : sequence of int
            Live neurons of every hidden layer (read when ``kind`` is
            ``"neurons"``).

        Returns
        -------
        ndarray of shape (n_entries,)
            The count of every entry, as floats.
        """
        if self.kind == "neurons":
            return np.array([neurons[h - 1] for h in self.layers], dtype=float)
        return np.array(
            [sum(nonzero) if l is None else nonzero[l] for l in self.layers],
            dtype=float,
        )

    def achieved_by(self, estimator) -> np.ndarray:
        """The entries' counts in a fitted estimator.

        Parameters
        ----------
        estimator : estimator object
            A fitted estimator of this package; its ``coefs_`` and
            ``active_neurons_`` are read.

        Returns
        -------
        ndarray of shape (n_entries,)
            The count of every entry, as :meth:`achieved` gives it.
        """
        nonzero = [int(np.count_nonzero(W)) for W in estimator.coefs_]
        return self.achieved(nonzero, list(estimator.active_neurons_))

    def within(self, achieved: np.ndarray) -> np.ndarray:
        """Which entries are within their tolerance of the target.

        Parameters
        ----------
        achieved : ndarray of shape (n_entries,)
            The entries' counts (see :meth:`achieved`).

        Returns
        -------
        ndarray of shape (n_entries,), dtype=bool
            ``|achieved - counts| <= slack``.
        """
        return np.abs(achieved - self.counts) <= self.slack

    def met(self, achieved: np.ndarray) -> bool:
        """Whether the target holds: ``min_met`` entries are within tolerance.

        Parameters
        ----------
        achieved : ndarray of shape (n_entries,)
            The entries' counts (see :meth:`achieved`).

        Returns
        -------
        bool
            True when at least ``min_met`` entries are :meth:`within`
            tolerance.
        """
        return int(self.within(achieved).sum()) >= self.min_met

    def values(self, reading: ThresholdReading, entry: int) -> np.ndarray:
        """The zero thresholds that entry ``entry``'s alpha acts on.

        Parameters
        ----------
        reading : ThresholdReading
            The zero thresholds read after a training.
        entry : int
            The index of the entry.

        Returns
        -------
        ndarray of shape (n_values,)
            Flattened: the thresholds of the units of the entry's hidden layer
            (``"neurons"``), or of the entries of its weight matrix (of all of
            them when its layer is ``None``).
        """
        layer = self.layers[entry]
        if self.kind == "neurons":
            values = reading.units[layer]
        elif layer is None:
            values = torch.cat([W.reshape(-1) for W in reading.weights])
        else:
            values = reading.weights[layer]
        return values.detach().cpu().numpy().reshape(-1)


@dataclass
class TargetReached:
    """Algorithm 3's check after every mini-batch: True once the target holds.

    Set as a :class:`~skgroupsparse.training.ProximalTrainer`'s ``stop_rule``.
    An entry counts as reached within half its tolerance, or within it once
    its count has crossed the target or moved by at least twice the
    remaining gap, so that a training stops near the target rather than at
    the edge of the band. With several entries
    (per-layer targets) and ``freeze``, once an entry's target holds its
    weight matrices (``target.freeze``) stop training for the rest of the run
    (their weights are put back after every later step) while the others go
    on: the per-layer form of the same check, so that every layer can stop
    where its target holds instead of all at one batch. Without it a layer
    that reaches its target first overshoots it while the others catch up,
    and a neuron, once dead, does not come back. A switch network holds the
    switches on a matrix's inputs with it; units removed while training are
    sliced out of the held values.

    Parameters
    ----------
    target : SearchTarget
        What the search aims at.
    freeze : bool, default=False
        Hold the weight matrices of an entry once its target holds (see
        above); it acts only with several entries.
    """

    target: SearchTarget
    freeze: bool = False

    def __call__(self, trainer: ProximalTrainer) -> bool:
        """Check the target after a mini-batch (held matrices put back first).

        Parameters
        ----------
        trainer : ProximalTrainer
            The trainer running the training.

        Returns
        -------
        bool
            True once at least ``target.min_met`` entries have settled.
        """
        target = self.target
        hold = self._can_freeze(trainer)
        if hold:
            self._put_back(trainer)  # undo the last step on the held matrices
        weights = target.kind == "weights"
        nonzero = trainer.nonzero_weights() if weights else []
        neurons = [] if weights else trainer.live_neurons()
        settled = self._settled(target.achieved(nonzero, neurons), hold)
        if hold:
            self._hold(trainer, settled)
        return int(settled.sum()) >= target.min_met

    def _settled(self, achieved: np.ndarray, hold: bool) -> np.ndarray:
        """Entries to stop at, so that a training ends near the target rather
        than at the edge of its band: within half the tolerance, or within it
        once the count crossed the target since the last batch, or within it
        when the last change was at least twice the remaining gap (counts that
        move a whole group at a time may have no value in the inner half).
        Held entries stay settled while they stay within the tolerance."""
        gap = achieved - self.target.counts
        slack = self.target.slack
        within = np.abs(gap) <= slack
        previous = vars(self).get("_gap")
        if previous is None:
            crossed = coarse = np.zeros_like(within)
        else:
            crossed = gap * previous <= 0
            coarse = np.abs(gap - previous) >= 2 * np.abs(gap)
        settled = (np.abs(gap) <= slack / 2) | (within & (crossed | coarse))
        self._gap = gap
        done = vars(self).setdefault("_done", np.zeros_like(settled))
        if hold:
            done |= settled
        # a held matrix can still lose weights when later units are removed
        return settled | (done & within)

    def _can_freeze(self, trainer: ProximalTrainer) -> bool:
        return self.freeze and len(self.target.layers) > 1

    @staticmethod
    def _parts(trainer: ProximalTrainer) -> tuple:
        net = trainer.net
        switches = net.switches if net.layout.switches else None
        kept = [*trainer.kept, torch.arange(trainer.original_sizes[-1])]
        return net.weights, switches, kept

    @torch.no_grad()
    def _put_back(self, trainer: ProximalTrainer) -> None:
        """Put the held matrices back.

        A held matrix is stored with the original indices of its units, so it
        can be put back after units were removed while training (the net's
        matrices are then slices of it). A switch network holds the switches
        that scale the matrix's inputs too.
        """
        weights, switches, kept = self._parts(trainer)
        for layer, (W, beta, rows, cols) in vars(self).get("_frozen", {}).items():
            at_rows = torch.searchsorted(rows, kept[layer + 1]).to(W.device)
            at_cols = torch.searchsorted(cols, kept[layer]).to(W.device)
            weights[layer].copy_(W[at_rows][:, at_cols])
            if beta is not None:
                switches[layer].copy_(beta[at_cols])

    @torch.no_grad()
    def _hold(self, trainer: ProximalTrainer, settled: np.ndarray) -> None:
        """Hold the matrices of the entries that just settled."""
        frozen = vars(self).setdefault("_frozen", {})
        weights, switches, kept = self._parts(trainer)
        for i, matrices in enumerate(self.target.freeze):
            if not settled[i]:
                continue
            for layer in matrices:
                if layer not in frozen:
                    frozen[layer] = (
                        weights[layer].detach().clone(),
                        None if switches is None else switches[layer].detach().clone(),
                        kept[layer + 1].clone(),
                        kept[layer].clone(),
                    )


def next_alpha(
    rule: str, alpha: float, lo: float, hi: float, thresholds: np.ndarray, count: float
) -> float:
    """One entry's next alpha inside its bracket ``(lo, hi)``.

    * ``"gradient"``: keep the ``count`` largest thresholds, i.e. alpha at the
      ``(count + 1)``-th largest (Shen et al.'s reading of Theorem 4), when
      that lies inside the bracket;
    * ``"median"``: the median of the thresholds inside the bracket (the seed
      paper's words);
    * otherwise, and for ``"bracket"``: the geometric middle of the bracket,
      or a factor :data:`EXPAND` beyond its known end.

    While only the lower end is known (the net is too dense) the thresholds
    cannot say how far to go: at a stationary point every nonzero weight
    reads exactly ``alpha``, and before one they read less (measured: the
    proposals then crawl). Alpha grows by :data:`EXPAND` unless a rule
    proposes more; overshooting is safe because the next training stops as
    soon as the target holds.

    Parameters
    ----------
    rule : {"gradient", "median", "bracket"}
        How the next alpha is chosen (see above).
    alpha : float
        The alpha of the last training.
    lo : float
        The lower end of the bracket: the largest alpha known to leave the
        entry too dense (0 while none is known).
    hi : float
        The upper end of the bracket: the smallest alpha known not to (``inf``
        while none is known).
    thresholds : ndarray of shape (n_values,)
        The zero thresholds read after training at ``alpha`` (see
        :meth:`SearchTarget.values`).
    count : float
        The number of them that should be nonzero.

    Returns
    -------
    float
        The next alpha.
    """
    finite = np.isfinite(thresholds)
    t = np.sort(thresholds[finite])[::-1]
    # entries no alpha penalises (infinite thresholds) stay nonzero anyway
    count = count - int((~finite).sum())
    candidate = None
    if rule == "gradient" and 0 <= count < t.size:
        candidate = float(t[int(count)])
    elif rule == "median":
        inside = t[(t > lo) & (t < hi)]
        if inside.size:
            candidate = float(np.median(inside))
    if not np.isfinite(hi):
        return max(EXPAND * max(alpha, lo), candidate or 0.0)
    if candidate is not None and lo < candidate < hi:
        return candidate
    if lo > 0:
        return float(np.sqrt(lo * hi))
    return min(alpha, hi) / EXPAND


def update_alphas(
    rule: str,
    target: SearchTarget,
    reading: ThresholdReading,
    alpha: np.ndarray,
    achieved: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray:
    """Narrow every entry's bracket (``lo``, ``hi`` in place); the next alphas.

    An entry with more nonzeros (or neurons) than asked moves its bracket's
    lower end up to its alpha, one with fewer its upper end down. With several
    entries (Algorithm 2) an entry within tolerance keeps its alpha.

    Parameters
    ----------
    rule : {"gradient", "median", "bracket"}
        The rule of :func:`next_alpha`.
    target : SearchTarget
        What the search aims at.
    reading : ThresholdReading
        The zero thresholds read after the training.
    alpha : float or ndarray
        The alpha of the training: a float (0-d), or one per layer of units
        (``target.alpha_index`` says which one moves each entry).
    achieved : ndarray of shape (n_entries,)
        The entries' counts after the training.
    lo : ndarray of shape (n_entries,)
        The lower end of every entry's bracket; updated in place.
    hi : ndarray of shape (n_entries,)
        The upper end of every entry's bracket; updated in place.

    Returns
    -------
    ndarray
        The next alpha, shaped like ``alpha`` (a new array).
    """
    alpha = np.array(alpha, dtype=float)
    within = target.within(achieved)
    for i in range(len(target.counts)):
        if within[i] and len(target.counts) > 1:
            continue
        where = () if alpha.ndim == 0 else target.alpha_index[i]
        current = float(alpha[where])
        if achieved[i] > target.counts[i]:
            lo[i] = max(lo[i], current)
        else:
            hi[i] = min(hi[i], current)
        alpha[where] = next_alpha(
            rule, current, lo[i], hi[i], target.values(reading, i), target.counts[i]
        )
    return alpha


def target_search(
    estimator,
    X,
    y,
    target: SearchTarget,
    alpha0,
    *,
    max_trainings: int = 5,
    update: str = "gradient",
    stop_at_target: bool = True,
    warm_start: bool = True,
    verbose: bool = False,
) -> tuple:
    """Algorithms 1 and 2: trainings and threshold readings until the target holds.

    ``estimator`` is copied. After a training that misses the target the zero
    thresholds are read on ``(X, y)`` and :func:`update_alphas` gives the next
    alpha. With ``warm_start`` every training after the first starts from the
    weights (and optimizer state) of the last training that left no entry too
    sparse: sparsity grows while training at a larger alpha, where the check
    after every batch catches it in the band, but a net made too sparse
    recovers its weights only slowly at a smaller alpha (and dead neurons not
    at all), so the search steps back to the denser side instead of climbing
    down from an overshoot (to a new network when the first training already
    overshot).

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
        The rule of :func:`next_alpha`.
    stop_at_target : bool, default=True
        End a training at the first mini-batch after which the target holds
        (:class:`TargetReached`, with ``freeze=True``).
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
    est = _fresh(estimator)
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
            est = _fresh(estimator) if fresh else copy.deepcopy(dense_side)
            warm = not fresh
        est.set_params(alpha=_as_alpha(alpha), warm_start=warm)
        est._keep_optimizer = True
        if stop_at_target:
            est._stop_rule = TargetReached(target, freeze=True)
        epochs_before = est.n_iter_ if warm else 0
        began = time.perf_counter()
        try:
            est.fit(X, y)
        finally:
            vars(est).pop("_stop_rule", None)
            vars(est).pop("_keep_optimizer", None)
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
