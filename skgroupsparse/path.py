"""The pure maths of choosing alpha: grids and the target search's rules.

* :func:`alpha_grid`: the geometric grid below a path's top;
  :func:`regularization_growing` is Dwork's schedule for a path (ALGORITHMS.md
  section 2.4): ``alpha = 10**p`` with step ``2 * 10**-(p + 2)``, from small to
  large alpha.
* :func:`select_stage`: which stage of a cross-validated path to keep (the
  best mean score, the one-standard-error rule, or a score tolerance).
* :class:`SearchTarget`, :func:`next_alpha`, :func:`update_alphas` and
  :class:`TargetReached`: the pieces of Shen et al.'s Algorithms 1-3
  (ALGORITHMS.md section 4): what a search aims at, how it moves alpha from a
  training's zero thresholds, and the check after every mini-batch.

What fits estimators along these (:func:`~skgroupsparse.regularization.alpha_max`,
the paths, :func:`~skgroupsparse.regularization.target_search`) is in
:mod:`skgroupsparse.regularization`, in the estimator layer; this module
imports no estimator, no scikit-learn and no other module of the package
(``training`` is named in type hints only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover - type hints only
    from skgroupsparse.training import ProximalTrainer, ThresholdReading

__all__ = [
    "SELECTION_RULES",
    "UPDATE_RULES",
    "SearchTarget",
    "TargetReached",
    "alpha_grid",
    "next_alpha",
    "regularization_growing",
    "SIZES",
    "select_stage",
    "selection_threshold",
    "stage_size",
    "standard_error",
    "update_alphas",
]

#: the named rules of :func:`select_stage` (a float is a score tolerance)
SELECTION_RULES = ("best", "one_se")

#: what a network's size counts in :func:`stage_size`
SIZES = ("params", "neurons", "features")

#: how the search chooses the next alpha from a training's zero thresholds
UPDATE_RULES = ("gradient", "median", "bracket")

#: factor by which alpha moves while only one end of its bracket is known
EXPAND = 10.0


def alpha_grid(alpha_max: float, n_alphas: int = 20, eps: float = 1e-3) -> np.ndarray:
    """Geometric grid from ``alpha_max`` down to ``eps * alpha_max``.

    Parameters
    ----------
    alpha_max : float
        Top of the grid (see
        :func:`~skgroupsparse.regularization.alpha_max`).
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
        For :func:`~skgroupsparse.regularization.regularization_path`
        (``alphas`` and ``learning_rates``).
    """
    if int(p_start) > int(p_stop):
        raise ValueError(f"p_start must not exceed p_stop, got {p_start} > {p_stop}")
    return [
        (10.0**p, 2.0 * 10.0 ** -(p + 2)) for p in range(int(p_start), int(p_stop) + 1)
    ]


# ----------------------------------------------------------------------
# the target-sparsity search (Shen et al. 2024, Algorithms 1-3)
# ----------------------------------------------------------------------
def select_stage(
    mean_scores: Sequence[float],
    std_scores: Sequence[float],
    n_splits: int,
    neurons: Sequence[float],
    rule: str | float = "one_se",
) -> int:
    """The stage of a cross-validated path to keep.

    ``"best"`` keeps the highest mean score (the first stage among equals).
    The other rules keep, among the stages whose mean score is at least a
    threshold, the one with the fewest (mean) live neurons, and of those the
    latest (the largest alpha of a path taken from small to large):

    * ``"one_se"``: the threshold is the best mean score less its standard
      error, ``std / sqrt(n_splits)`` (Hastie, Tibshirani and Friedman's
      one-standard-error rule, section 7.10 of *The Elements of Statistical
      Learning*);
    * a float ``tol >= 0``: the threshold is the best mean score less
      ``tol`` (in the score's units: 0.005 is half a point of accuracy).

    Every stage the best one beats is a candidate, so a looser rule (a larger
    tolerance, or ``"one_se"`` against ``"best"``) never keeps more neurons.
    Stages with a NaN mean score are never kept.

    Parameters
    ----------
    mean_scores, std_scores : sequence of float
        Per stage, the mean and the standard deviation of the held-out
        scores over the folds.
    n_splits : int
        The number of folds.
    neurons : sequence of float
        Per stage, the mean number of live hidden neurons over the folds.
    rule : {"best", "one_se"} or float, default="one_se"
        The rule.

    Returns
    -------
    int
        The index of the stage kept.
    """
    mean = np.asarray(mean_scores, dtype=float)
    neurons = np.asarray(neurons, dtype=float)
    if not (mean.shape == np.shape(std_scores) == neurons.shape) or mean.ndim != 1:
        raise ValueError("mean_scores, std_scores and neurons need one value a stage")
    threshold = selection_threshold(mean, std_scores, n_splits, rule)
    if rule == "best":
        return int(np.argmax(np.where(np.isfinite(mean), mean, -np.inf)))
    candidates = np.flatnonzero(np.isfinite(mean) & (mean >= threshold))
    fewest = neurons[candidates].min()
    return int(candidates[neurons[candidates] == fewest].max())


def stage_size(size: str, params, features, neurons):
    """The size of stages (or of their folds) as :func:`select_stage` counts it.

    Parameters
    ----------
    size : {"params", "neurons", "features"}
        What counts: the weights and biases of the compacted network, the live
        hidden neurons (a network without hidden layers: its live input
        features), or the live input features.
    params, features : float or ndarray
        The parameter counts and the live input features.
    neurons : array-like of shape (..., n_hidden_layers)
        The live neurons of every hidden layer, on the last axis.

    Returns
    -------
    float or ndarray
        ``params``, ``features`` or the neurons summed over the layers.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    neurons = np.asarray(neurons, dtype=float)
    if size == "params":
        return params
    if size == "features" or neurons.shape[-1] == 0:
        return features
    return neurons.sum(axis=-1)


def selection_threshold(
    mean_scores: Sequence[float],
    std_scores: Sequence[float],
    n_splits: int,
    rule: str | float = "one_se",
) -> float:
    """The mean score a stage needs to be kept by a rule of :func:`select_stage`.

    Parameters
    ----------
    mean_scores, std_scores : sequence of float
        Per stage, the mean and the standard deviation of the held-out scores.
    n_splits : int
        The number of folds.
    rule : {"best", "one_se"} or float, default="one_se"
        The rule.

    Returns
    -------
    float
        The best mean score (``"best"``), less its standard error
        (``"one_se"``), or less the tolerance (a float).

    Raises
    ------
    ValueError
        For an unknown rule, a negative tolerance, or no finite mean score.
    """
    mean = np.asarray(mean_scores, dtype=float)
    finite = np.isfinite(mean)
    if not finite.any():
        raise ValueError("no stage has a score: every fold failed at every stage")
    best = int(np.argmax(np.where(finite, mean, -np.inf)))
    if isinstance(rule, str):
        if rule not in SELECTION_RULES:
            raise ValueError(
                f"selection must be one of {SELECTION_RULES} or a tolerance >= 0, "
                f"got {rule!r}"
            )
        tolerance = 0.0
        if rule == "one_se":
            tolerance = standard_error(np.asarray(std_scores)[best], n_splits)
    else:
        tolerance = float(rule)
        if not tolerance >= 0:
            raise ValueError(f"a score tolerance must be >= 0, got {rule!r}")
    return float(mean[best] - tolerance)


def standard_error(std, n_splits: int):
    """The standard error of a mean over ``n_splits`` folds: ``std / sqrt(n)``.

    Parameters
    ----------
    std : float or ndarray
        The standard deviation of the fold scores.
    n_splits : int
        The number of folds.

    Returns
    -------
    float or ndarray
        ``std / sqrt(n_splits)``.
    """
    return np.asarray(std, dtype=float) / np.sqrt(n_splits)


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
