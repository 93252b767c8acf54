"""Figures of regularization paths and target searches (matplotlib, optional).

Install with ``pip install "skgroupsparse[plot]"``. The functions take the
records of :func:`~skgroupsparse.regularization.regularization_path` (or the
``history_`` of :class:`~skgroupsparse.TargetSparsityCV`, which has the same
``alpha``, ``sparsity`` and ``live_neurons`` keys), or a fitted
:class:`~skgroupsparse.RegularizationPathCV`, and return the axes they drew on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skgroupsparse.path import selection_threshold, stage_size, standard_error

__all__ = ["plot_path", "plot_path_cv", "plot_size_space"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "skgroupsparse.plotting needs matplotlib: pip install "
            '"skgroupsparse[plot]" (or pip install matplotlib)'
        ) from error
    return plt


def _alphas(records: Sequence[dict]) -> np.ndarray:
    """One number per record: the alpha, or the mean of per-layer alphas."""
    if not records:
        raise ValueError("no records to plot")
    return np.array([float(np.mean(r["alpha"])) for r in records])


def plot_path(records: Sequence[dict], score: str = "validation_score", ax=None):
    """Sparsity and score against alpha along a path.

    Parameters
    ----------
    records : sequence of dict
        From :func:`~skgroupsparse.regularization.regularization_path`.
    score : str, default="validation_score"
        The record key plotted on the right axis (``"train_score"`` when the
        path had no validation data; skipped if missing or None).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.

    Returns
    -------
    ax, ax_score : matplotlib Axes
        The sparsity axis (left, log alpha) and the score axis (right, or
        None when no score was recorded).
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    order = np.argsort(_alphas(records))
    alphas = _alphas(records)[order]
    sparsity = np.array([records[i]["sparsity"] for i in order])
    ax.plot(alphas, sparsity, "o-", color="C0", label="sparsity")
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("fraction of zero weights", color="C0")
    ax.set_ylim(-0.02, 1.02)
    scores = [records[i].get(score) for i in order]
    ax_score = None
    if all(s is not None for s in scores):
        ax_score = ax.twinx()
        ax_score.plot(alphas, scores, "s--", color="C1", label=score)
        ax_score.set_ylabel(score.replace("_", " "), color="C1")
    return ax, ax_score


def plot_size_space(records: Sequence[dict], ax=None, annotate: bool = True):
    """The "size space" trajectory of a two-hidden-layer network.

    Live neurons of the first hidden layer (x) against the second (y), one
    point per record, joined in order of decreasing alpha: the path a
    network's size takes as the penalty is relaxed.

    Parameters
    ----------
    records : sequence of dict
        Path records or a search's ``history_``, with ``live_neurons`` of
        length 2.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    annotate : bool, default=True
        Label the points with their alpha.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.
    """
    plt = _pyplot()
    sizes = [list(r["live_neurons"]) for r in records]
    if not sizes or any(len(s) != 2 for s in sizes):
        raise ValueError(
            "plot_size_space needs records of a network with two hidden layers "
            f"(live_neurons of length 2), got {sizes[:3]!r}"
        )
    alphas = _alphas(records)
    order = np.argsort(-alphas, kind="stable")
    xy = np.array(sizes, dtype=float)[order]
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.plot(xy[:, 0], xy[:, 1], "o-", color="C2")
    if annotate:
        for (x, y), alpha in zip(xy, alphas[order]):
            ax.annotate(
                f"{alpha:.2g}",
                (x, y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    ax.set_xlabel("live neurons, hidden layer 1")
    ax.set_ylabel("live neurons, hidden layer 2")
    ax.set_title("size space (alpha decreasing along the line)")
    return ax


def plot_path_cv(search, ax=None, rule_line: bool = True):
    """A cross-validated path: mean score +- one standard error against size.

    One point per stage of the path at its mean size over the folds, as the
    search's ``size`` counts it (parameters, live hidden neurons, or live
    features; a network without hidden layers: features for neurons), with
    error bars of one standard error of the mean score (``std /
    sqrt(n_splits)``), joined in path order; the chosen stage is circled.

    Parameters
    ----------
    search : RegularizationPathCV
        A fitted search (its ``cv_results_``, ``best_index_``, ``n_splits_``
        and ``selection`` are read).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure if None.
    rule_line : bool, default=True
        Draw the score threshold of the selection rule (the best mean score
        less one standard error, or less the tolerance) as a dashed line.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.
    """
    plt = _pyplot()
    results = search.cv_results_
    neurons = np.asarray(results["mean_live_neurons"], dtype=float)
    kind = search.size
    size = np.asarray(
        stage_size(
            kind, results["mean_n_params"], results["mean_live_features"], neurons
        ),
        dtype=float,
    )
    if kind == "neurons" and neurons.shape[1] == 0:
        kind = "features"
    xlabel = {
        "params": "mean parameters of the compacted network",
        "neurons": "mean live hidden neurons",
        "features": "mean live input features",
    }[kind]
    mean = np.asarray(results["mean_test_score"], dtype=float)
    se = standard_error(results["std_test_score"], search.n_splits_)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(size, mean, yerr=se, fmt="o-", color="C0", capsize=3, label="stages")
    chosen = search.best_index_
    ax.plot(
        size[chosen],
        mean[chosen],
        "o",
        markersize=13,
        markerfacecolor="none",
        markeredgewidth=2,
        color="C3",
        label=f"chosen (alpha={np.mean(search.alpha_):.3g})",
    )
    if rule_line and search.selection != "best":
        ax.axhline(
            selection_threshold(
                mean, results["std_test_score"], search.n_splits_, search.selection
            ),
            color="k",
            linestyle="--",
            linewidth=0.8,
            label=f"threshold ({search.selection})",
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean held-out score")
    ax.set_title(f"cross-validated path ({search.n_splits_} folds)")
    ax.legend(fontsize=8)
    return ax
