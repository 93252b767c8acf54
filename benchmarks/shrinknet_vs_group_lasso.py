"""Loss against sparsity: ShrinkNet and group lasso (ShrinkNets figure 1).

Reproduces Figure 1 of the ShrinkNets paper (../shared/seeds, section 6.1) on
the project's offline datasets: for every panel (a dataset and a model) both
methods are fitted over a range of penalty strengths ``alpha`` that takes them
from no sparsity to all units dead, and every fit is placed by

* its sparsity: the fraction of units removed, (dead input features + dead
  hidden neurons) / (input features + hidden neurons), read from ``coefs_``
  (a unit is dead when its outgoing weights are all exactly zero); for a
  linear or logistic model, the fraction of input columns that are exactly
  zero (the paper's column sparsity, with exact zeros instead of its 1e-3
  threshold);
* its normalized training loss: the data loss on the training rows (no
  penalty), computed from ``predict`` / ``predict_proba``, divided by the loss
  of the null model (the training mean for regression, the class priors for
  classification), so that it lies in [0, 1].

Panels: oes97 multi-target linear regression, mg regression with an MLP, and
optdigits and satimage classification, each with a logistic model and an MLP.

The alphas of each (panel, method) are found the same way for both methods:
a coarse grid of decades (extended until one fit keeps every unit and one
kills at least 98% of them), then the segment of the curve that is longest in
the (sparsity, normalized loss) plane is bisected at the geometric mean of its
two alphas, again and again, until ``--fits`` fits per curve. Both methods get
the same optimizer, step size, batch size, epochs and ``random_state``.

Training is full-batch by default (``--batch-size`` 0: one batch of all the
training rows, capped at ``--max-train``) for a fixed 2000 epochs. With
mini-batches the gradient noise keeps many groups hovering just above zero
under the prox, so the sparsity read from exact zeros is far below that of the
minimiser: on oes97 at alpha 0.1 the default run gives the group lasso 87% of
zero columns, ``--batch-size 200 --epochs 400`` gives 23%, at a similar
training loss.

The per-fit table and a summary at matched sparsity are printed and written to
``benchmarks/results/shrinknet_vs_group_lasso.md``, the figure to
``benchmarks/results/shrinknet_vs_group_lasso.png``.

Run from the repository root::

    python benchmarks/shrinknet_vs_group_lasso.py
    python benchmarks/shrinknet_vs_group_lasso.py --quick
    python benchmarks/shrinknet_vs_group_lasso.py --datasets oes97 mg
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    ShrinkNetClassifier,
    ShrinkNetRegressor,
    datasets,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "shrinknet_vs_group_lasso"
TEST_FRACTION = 0.25
SPLIT_SEED = 0
METHODS = ("group lasso", "ShrinkNet")
LEVELS = (0.25, 0.5, 0.75, 0.9)
# a sparsity level is "covered" by a curve when fits on both sides of it lie
# at most this far apart in sparsity (else the interpolation spans a jump)
MAX_GAP = 0.2


@dataclass(frozen=True)
class Panel:
    """One panel of the figure: a dataset and a model."""

    dataset: str
    hidden: tuple[int, ...]

    @property
    def task(self) -> str:
        return datasets.BENCHMARKS[self.dataset].task

    @property
    def label(self) -> str:
        if self.hidden:
            return f"{self.dataset}, MLP {self.hidden}"
        kind = "linear" if self.task == "regression" else "logistic"
        return f"{self.dataset}, {kind}"


PANELS = (
    Panel("oes97", ()),
    Panel("mg", (64,)),
    Panel("optdigits", ()),
    Panel("optdigits", (64,)),
    Panel("satimage", ()),
    Panel("satimage", (64,)),
)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def split(name, max_train, seed=SPLIT_SEED):
    """Shuffle, hold out ``TEST_FRACTION``, cap the training rows, standardize.

    X is standardized with a scaler fitted on the training rows, and so are
    regression targets (oes97's are in thousands).
    """
    X, y = datasets.load_benchmark(name)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(TEST_FRACTION * len(y)))
    test, train = order[:n_test], order[n_test:][:max_train]
    # columns constant on the training rows carry nothing: any penalty zeroes
    # them at once, so they would count as free sparsity for both methods
    X = X[:, X[train].std(axis=0) > 0]
    scaler = StandardScaler().fit(X[train])
    X_train = scaler.transform(X[train]).astype(np.float32)
    X_test = scaler.transform(X[test]).astype(np.float32)
    y_train, y_test = y[train], y[test]
    if datasets.BENCHMARKS[name].task == "regression":
        y_scaler = StandardScaler().fit(y_train.reshape(len(y_train), -1))
        shape = (-1,) if y.ndim == 1 else (-1, y.shape[1])
        y_train = y_scaler.transform(y_train.reshape(len(y_train), -1)).reshape(shape)
        y_test = y_scaler.transform(y_test.reshape(len(y_test), -1)).reshape(shape)
    return X_train, y_train, X_test, y_test


def data_loss(model, X, y, task) -> float:
    """Mean training loss without the penalty (the estimators' convention).

    Regression: 1/2 * sum over outputs of the squared error; classification:
    cross-entropy.
    """
    if task == "regression":
        residual = np.asarray(model.predict(X)).reshape(len(y), -1) - y.reshape(
            len(y), -1
        )
        return float(0.5 * (residual**2).sum(axis=1).mean())
    proba = model.predict_proba(X)
    index = np.searchsorted(model.classes_, y)
    return float(-np.log(np.clip(proba[np.arange(len(y)), index], 1e-300, None)).mean())


def null_loss(y, task) -> float:
    """Loss of the null model: the training mean, or the class priors."""
    if task == "regression":
        return float(0.5 * y.reshape(len(y), -1).var(axis=0).sum())
    _, counts = np.unique(y, return_counts=True)
    priors = counts / counts.sum()
    return float(-(priors * np.log(priors)).sum())


def unit_sparsity(model) -> tuple[float, int, int]:
    """(fraction of units dead, dead units, units) from ``coefs_``.

    The units are the input features and the hidden neurons; one is dead when
    its outgoing weights (its row of the next weight matrix) are all zero.
    """
    dead = total = 0
    for coef in model.coefs_:
        rows = np.asarray(coef)
        dead += int((~rows.any(axis=1)).sum())
        total += rows.shape[0]
    return dead / total, dead, total


# --------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------
def make(method, panel, args, alpha):
    regression = panel.task == "regression"
    if method == "group lasso":
        Estimator = GroupLassoMLPRegressor if regression else GroupLassoMLPClassifier
        extra = dict(penalty="group_lasso", groups="outgoing")
    else:
        Estimator = ShrinkNetRegressor if regression else ShrinkNetClassifier
        extra = dict(alpha2=args.alpha2, p=2, switch_death="prox")
    lr = args.lr_linear if not panel.hidden else args.lr_mlp
    batch_size = args.batch_size or "all"
    return Estimator(
        hidden_layer_sizes=panel.hidden,
        activation=args.activation,
        alpha=alpha,
        optimizer="adam",
        learning_rate_init=lr,
        batch_size=batch_size,
        max_iter=args.epochs,
        tol=0.0,
        n_iter_no_change=args.epochs + 1,
        early_stopping=False,
        random_state=args.random_state,
        **extra,
    )


def fit_one(method, panel, args, alpha, data, null):
    X_train, y_train, X_test, y_test = data
    model = make(method, panel, args, alpha)
    if model.batch_size == "all":
        model.set_params(batch_size=len(y_train))
    began = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - began
    sparsity, dead, total = unit_sparsity(model)
    loss = data_loss(model, X_train, y_train, panel.task)
    return dict(
        panel=panel.label,
        method=method,
        alpha=alpha,
        sparsity=sparsity,
        dead=dead,
        units=total,
        loss=loss / null,
        test=float(model.score(X_test, y_test)),
        epochs=model.n_iter_,
        seconds=seconds,
    )


def longest_segment(fits, min_ratio):
    """Index ``i`` of the longest segment (fit i, fit i+1) that can be split.

    The fits are sorted by alpha; the length of a segment is its length in
    the (sparsity, normalized loss) plane. Segments whose alphas are within
    ``min_ratio`` of each other are not split further.
    """
    best, best_length = None, 0.0
    for i in range(len(fits) - 1):
        a, b = fits[i], fits[i + 1]
        if b["alpha"] / a["alpha"] < min_ratio:
            continue
        length = math.hypot(b["sparsity"] - a["sparsity"], b["loss"] - a["loss"])
        if length > best_length:
            best, best_length = i, length
    return best


def run_curve(method, panel, args, data, null):
    """Fit one method over alphas that span sparsity 0 to ~1 (see module doc)."""
    fits = {}

    def fit(alpha):
        alpha = float(f"{alpha:.4g}")
        if alpha not in fits:
            fits[alpha] = fit_one(method, panel, args, alpha, data, null)
        return fits[alpha]

    exponents = list(range(args.coarse[0], args.coarse[1] + 1, args.coarse_step))
    for e in exponents:
        fit(10.0**e)
    # extend the coarse grid until both ends are reached (a few decades at most)
    low, high = exponents[0], exponents[-1]
    for _ in range(3):
        if min(f["sparsity"] for f in fits.values()) <= 0.02:
            break
        low -= args.coarse_step
        fit(10.0**low)
    for _ in range(3):
        if max(f["sparsity"] for f in fits.values()) >= 0.98:
            break
        high += args.coarse_step
        fit(10.0**high)
    while len(fits) < args.fits:
        ordered = sorted(fits.values(), key=lambda f: f["alpha"])
        i = longest_segment(ordered, min_ratio=1.05)
        if i is None:
            break
        before = len(fits)
        fit(math.sqrt(ordered[i]["alpha"] * ordered[i + 1]["alpha"]))
        if len(fits) == before:  # rounding gave back an alpha already fitted
            break
    return sorted(fits.values(), key=lambda f: f["alpha"])


# --------------------------------------------------------------------------
# comparison at matched sparsity
# --------------------------------------------------------------------------
def front(fits):
    """Lower-left front: fits no other fit beats in both sparsity and loss.

    Returns (sparsity, loss) arrays sorted by sparsity: the best normalized
    loss reached at each sparsity or above.
    """
    points = sorted(((f["sparsity"], f["loss"]) for f in fits), key=lambda p: -p[0])
    kept, best = [], math.inf
    for s, loss in points:  # from the sparsest down
        if loss < best:
            kept.append((s, loss))
            best = loss
    kept.reverse()
    return np.array([p[0] for p in kept]), np.array([p[1] for p in kept])


def at_level(fits, level):
    """(interpolated loss, gap) of the front at sparsity ``level``.

    ``gap`` is the sparsity distance between the two front points around the
    level (0 for an exact hit); the loss is None when the level lies outside
    the sparsities the fits reached.
    """
    s, loss = front(fits)
    if len(s) == 0 or level < s[0] or level > s[-1]:
        return None, None
    j = int(np.searchsorted(s, level))
    if s[j] == level:
        return float(loss[j]), 0.0
    return float(np.interp(level, s, loss)), float(s[j] - s[j - 1])


def summary_rows(results):
    rows = []
    for label, curves in results.items():
        for level in LEVELS:
            row = dict(panel=label, level=level)
            for method in METHODS:
                row[method] = at_level(curves[method], level)
            rows.append(row)
    return rows


def verdict(row) -> str:
    gl, sn = row["group lasso"][0], row["ShrinkNet"][0]
    missing = [m for m in METHODS if row[m][0] is None]
    if missing:
        return f"not covered by {' and '.join(missing)}"
    jumps = [m for m in METHODS if row[m][1] > MAX_GAP]
    if sn < gl:
        text = f"ShrinkNet lower by {gl - sn:.3f} ({(gl - sn) / gl:.0%})"
    elif gl < sn:
        text = f"group lasso lower by {sn - gl:.3f} ({(sn - gl) / sn:.0%})"
    else:
        text = "equal"
    if jumps:
        text += (
            f"; interpolated across a sparsity jump > {MAX_GAP} ({' and '.join(jumps)})"
        )
    return text


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
FIT_COLUMNS = (
    "panel",
    "method",
    "alpha",
    "sparsity",
    "dead / units",
    "norm. train loss",
    "test score",
    "epochs",
    "fit s",
)


def fit_table(results) -> list[str]:
    lines = [
        "| " + " | ".join(FIT_COLUMNS) + " |",
        "|---|---|" + "---:|" * (len(FIT_COLUMNS) - 2),
    ]
    for curves in results.values():
        for method in METHODS:
            for f in curves[method]:
                lines.append(
                    f"| {f['panel']} | {f['method']} | {f['alpha']:.3g} "
                    f"| {f['sparsity']:.3f} | {f['dead']} / {f['units']} "
                    f"| {f['loss']:.4f} | {f['test']:.4f} | {f['epochs']} "
                    f"| {f['seconds']:.2f} |"
                )
    return lines


def summary_table(results) -> list[str]:
    lines = [
        "| panel | sparsity | group lasso | ShrinkNet | lower |",
        "|---|---:|---:|---:|---|",
    ]
    for row in summary_rows(results):
        cells = []
        for method in METHODS:
            value, gap = row[method]
            if value is None:
                cells.append("not reached")
            else:
                mark = f" (gap {gap:.2f})" if gap > MAX_GAP else ""
                cells.append(f"{value:.4f}{mark}")
        lines.append(
            f"| {row['panel']} | {row['level']:.2f} | {cells[0]} | {cells[1]} "
            f"| {verdict(row)} |"
        )
    return lines


def figure(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False
    )
    styles = {"group lasso": ("C0", "o"), "ShrinkNet": ("C3", "s")}
    for ax, (label, curves) in zip(axes.flat, results.items()):
        for method in METHODS:
            color, marker = styles[method]
            fits = curves[method]
            s, loss = front(fits)
            ax.plot(s, loss, "-", color=color, lw=1.5, label=f"{method} (front)")
            ax.plot(
                [f["sparsity"] for f in fits],
                [f["loss"] for f in fits],
                marker,
                color=color,
                ms=4,
                mfc="none",
                label=f"{method} (every fit)",
            )
        ax.set_title(label, fontsize=10)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("sparsity (fraction of units removed)")
        ax.set_ylabel("normalized training loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Loss / sparsity trade-off: group lasso vs ShrinkNet", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def header(args, seconds, sizes) -> list[str]:
    data = "; ".join(
        f"{name}: {n} train / {m} test rows, {d} features" for name, (n, m, d) in sizes
    )
    batch = (
        "full batch (batch_size = all training rows)"
        if not args.batch_size
        else f"batch_size {args.batch_size}"
    )
    coarse = ", ".join(
        f"1e{e}" for e in range(args.coarse[0], args.coarse[1] + 1, args.coarse_step)
    )
    return [
        "# Loss against sparsity: ShrinkNet vs group lasso (ShrinkNets figure 1)",
        "",
        f"- command: `{_report.command()}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}"
        f"; total run time {seconds / 60:.1f} min",
        *_report.machine_lines(),
        f"- data: {data}. {TEST_FRACTION:.0%} held out (split seed {SPLIT_SEED}), "
        f"training rows capped at {args.max_train}; features constant on the "
        "training rows dropped, X standardized on the training rows, "
        "regression targets too",
        f"- models: linear / logistic (`hidden_layer_sizes=()`) and MLPs "
        f"(hidden (64,), {args.activation}); the same settings for both methods: "
        f"Adam, learning_rate_init {args.lr_linear} (linear / logistic) and "
        f"{args.lr_mlp} (MLP), {batch}, a fixed "
        f"{args.epochs} epochs (tol=0, no early stopping), "
        f"random_state={args.random_state}",
        "- group lasso: `GroupLassoMLP*(penalty='group_lasso', groups='outgoing')` "
        "(group weight sqrt(group size), remove_dead=False, its default); "
        f"ShrinkNet: `ShrinkNet*(alpha2={args.alpha2:g}, p=2, switch_death='prox')` "
        "(switches initialised to ones, remove_dead=True, its default)",
        f"- alphas per (panel, method): coarse grid {coarse}, extended by "
        f"{args.coarse_step} decade(s) at a time (at most 3) until one fit has "
        "sparsity at most 0.02 and one at least 0.98; then the longest segment "
        "of the curve in the (sparsity, normalized loss) plane is bisected at "
        "the geometric "
        f"mean of its alphas until {args.fits} fits (segments whose alphas differ "
        "by less than 5% are not split)",
        "- sparsity: (dead input features + dead hidden neurons) / (input features "
        "+ hidden neurons), a unit dead when its outgoing weights in `coefs_` are "
        "all exactly zero; for linear / logistic models, the fraction of zero "
        "input columns",
        "- normalized train loss: data loss on the training rows (regression: "
        "1/2 sum of squared errors over outputs; classification: cross-entropy; "
        "mean over rows, no penalty) from predict / predict_proba, over the loss "
        "of the null model (training mean / class priors); test score: R^2 "
        "(uniform average over oes97's 16 targets) or accuracy",
        f"- summary: each method's lower-left front (the best normalized loss "
        f"reached at that sparsity or above) interpolated linearly at sparsity "
        f"{', '.join(str(v) for v in LEVELS)}; '(gap g)' marks an interpolation "
        f"between front points more than {MAX_GAP} apart in sparsity",
    ]


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    names = sorted({p.dataset for p in PANELS})
    parser.add_argument("--datasets", nargs="+", default=names, choices=names)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--fits", type=int, default=16, help="fits per curve")
    parser.add_argument("--max-train", type=int, default=1500)
    parser.add_argument(
        "--batch-size", type=int, default=0, help="0: full batch (all training rows)"
    )
    parser.add_argument("--lr-linear", type=float, default=1e-2)
    parser.add_argument("--lr-mlp", type=float, default=1e-2)
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--alpha2", type=float, default=1e-4, help="ShrinkNet")
    parser.add_argument(
        "--coarse",
        nargs=2,
        type=int,
        default=[-5, 1],
        metavar=("LOW", "HIGH"),
        help="decade exponents of the coarse alpha grid",
    )
    parser.add_argument("--coarse-step", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 300 epochs, 500 training rows, coarse grid "
        "1e-4..1e0 by 2 decades, 6 fits per curve",
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="path without suffix of the .md and .png to write ('' for none)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.max_train, args.fits = 300, 500, 6
        args.coarse, args.coarse_step = [-4, 0], 2
    if min(args.epochs, args.fits, args.max_train) < 1 or args.batch_size < 0:
        parser.error("--epochs, --fits and --max-train must be >= 1, --batch-size >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    panels = [p for p in PANELS if p.dataset in args.datasets]
    results, sizes = {}, {}
    for panel in panels:
        data = split(panel.dataset, args.max_train)
        sizes[panel.dataset] = (len(data[1]), len(data[3]), data[0].shape[1])
        null = null_loss(data[1], panel.task)
        curves = {}
        for method in METHODS:
            t0 = time.perf_counter()
            curves[method] = run_curve(method, panel, args, data, null)
            reached = [f["sparsity"] for f in curves[method]]
            print(
                f"{panel.label:<24} {method:<12} {len(reached)} fits, sparsity "
                f"{min(reached):.2f}..{max(reached):.2f}, "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
        results[panel.label] = curves
    seconds = time.perf_counter() - began
    lines = header(args, seconds, sizes.items())
    lines += ["", "## Every fit", "", *fit_table(results)]
    lines += ["", "## At matched sparsity", "", *summary_table(results)]
    print()
    _report.write_report(
        "\n".join(lines), args.output, lambda path: figure(results, path)
    )


if __name__ == "__main__":
    main()
