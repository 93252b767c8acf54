"""The peer suite: group-lasso MLPs against a dense MLP, a linear model and LassoNet.

On each of 14 shared datasets (8 classification, 6 regression; ``--quick``: 3 of
them), with one fixed split and preprocessing per dataset, it fits

* ``GroupLassoMLP`` (ours, ``remove_dead=True``), its size chosen by
  :class:`~skgroupsparse.RegularizationPathCV` on the training and validation
  rows together, with the library's defaults (issue 23: the suite measures
  what users get): a warm-started, budgeted path of alphas from small to
  large, every stage scored on the held-out rows after a short relaxed
  fine-tune; the stage kept has the fewest compacted parameters whose mean
  held-out score is within one standard error of the best stage's (or within
  ``--tolerance`` points), and is refitted on all those rows and relaxed. The
  search cross-validates on five folds (``--cv 5``, the default); with
  ``--cv 1`` the held-out rows are the validation part (one split, as the
  suite's own procedure before it);
* scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` of the same starting size
  (dense, its defaults otherwise);
* ``LogisticRegression`` / ``Ridge`` (scikit-learn defaults);
* LassoNet (``lassonet`` from PyPI) with the same hidden layers: its own path,
  dense to sparse, stopped at the first model that keeps at most as many input
  features as ours; that model is scored.

All train on the same rows (the training part less the validation part) and are
scored on the same test rows: accuracy for classification, R^2 for regression,
both in points (percent). The table records score, live neurons per hidden
layer, kept input features (after one-hot encoding), parameters after
compaction (weights and biases of the network that predicts) and fit time (for
ours and LassoNet: the whole path, every stage). Per dataset it says whether
ours is within 0.5 points of the dense MLP while keeping at most 30% of the
hidden neurons, and counts the datasets where that holds. The figure plots
every path stage's test score, relative to the dense MLP's, against the
fraction of hidden neurons it keeps.

Run from the repository root (``pip install -e ".[bench]"`` installs lassonet)::

    python benchmarks/suite.py
    python benchmarks/suite.py --quick --output /tmp/suite
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import PredefinedSplit, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
    datasets,
)

ROOT = Path(__file__).resolve().parent.parent
DATASETS = [
    "optdigits",
    "pendigits",
    "satimage",
    "segment",
    "spambase",
    "magic",
    "phoneme",
    "credit-g",
    "mg",
    "kin8nm",
    "cpu_act",
    "pol",
    "elevators",
    "ailerons",
]
QUICK = ["segment", "phoneme", "mg"]
NEAR_CONSTANT = 0.995
TARGET_POINTS = 0.5
TARGET_NEURONS = 0.30


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------
def prepare(name: str, max_train: int, max_test: int, seed: int) -> dict:
    """The fixed split and preprocessing of one dataset.

    25% of the rows (at most ``max_test``) are the test set; of the rest, at
    most ``max_train`` rows are drawn, and a fifth of them is the validation
    part. Categorical columns are one-hot encoded, numeric ones standardised
    (both fitted on the training part), and columns with one value on at least
    99.5% of the training rows are dropped; regression targets are standardised
    on the training part (R^2 does not change).
    """
    X, y = datasets.load_dataset(name)
    task = datasets.list_datasets().loc[name, "task"]
    classification = task == "classification"
    if classification:
        y = LabelEncoder().fit_transform(np.asarray(y))
    else:
        y = np.asarray(y, dtype=np.float64).ravel()
    stratify = y if classification else None
    n_test = min(int(round(0.25 * len(y))), max_test)
    X_pool, X_te, y_pool, y_te = train_test_split(
        X, y, test_size=n_test, random_state=seed, stratify=stratify
    )
    if len(y_pool) > max_train:
        X_pool, _, y_pool, _ = train_test_split(
            X_pool,
            y_pool,
            train_size=max_train,
            random_state=seed,
            stratify=y_pool if classification else None,
        )
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_pool,
        y_pool,
        test_size=0.2,
        random_state=seed,
        stratify=y_pool if classification else None,
    )
    categorical = make_column_selector(dtype_exclude=np.number)
    pre = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
            (
                "numeric",
                StandardScaler(),
                make_column_selector(dtype_include=np.number),
            ),
        ]
    ).fit(X_tr)
    n_categorical = len(categorical(X_tr))
    X_tr, X_val, X_te = (
        np.asarray(pre.transform(A), dtype=np.float32) for A in (X_tr, X_val, X_te)
    )
    # a column (numeric or one-hot) that is constant on all but a few training
    # rows explodes under standardisation: in ailerons one test row sits 379
    # standard deviations out and wrecks the dense MLP's R^2
    keep = np.array([_mode_share(column) < NEAR_CONSTANT for column in X_tr.T])
    X_tr, X_val, X_te = (A[:, keep] for A in (X_tr, X_val, X_te))
    if not classification:
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_val, y_te = ((v - mean) / std for v in (y_tr, y_val, y_te))
    return dict(
        name=name,
        classification=classification,
        n_classes=len(np.unique(y)) if classification else None,
        n_categorical=n_categorical,
        n_dropped=int((~keep).sum()),
        train=(X_tr, y_tr),
        validation=(X_val, y_val),
        test=(X_te, y_te),
    )


def _mode_share(column: np.ndarray) -> float:
    """Fraction of the rows holding the column's most frequent value."""
    return np.unique(column, return_counts=True)[1].max() / len(column)


def points(estimator, X, y) -> float:
    """Accuracy or R^2, in points."""
    return 100.0 * float(estimator.score(X, y))


# ----------------------------------------------------------------------------
# the methods
# ----------------------------------------------------------------------------
def stage_epochs(data: dict, args) -> int:
    """Epochs per path stage: ``--epochs``, or more to make ``--steps`` batches."""
    batches = -(-len(data["train"][1]) // args.batch_size)
    return max(args.epochs, -(-args.steps // batches))


def fit_ours(data: dict, args) -> dict:
    """RegularizationPathCV on the training and validation rows together."""
    cls = GroupLassoMLPClassifier if data["classification"] else GroupLassoMLPRegressor
    epochs = stage_epochs(data, args)
    est = cls(
        hidden_layer_sizes=args.hidden,
        batch_size=args.batch_size,
        learning_rate_init=args.learning_rate,
        max_iter=epochs,
        remove_dead=True,
        random_state=args.seed,
    )
    X_tr, y_tr = data["train"]
    X_val, y_val = data["validation"]
    X_pool = np.concatenate([X_tr, X_val])
    y_pool = np.concatenate([y_tr, y_val])
    if args.cv == 1:
        # one split: the training part trains, the validation part scores
        cv = PredefinedSplit(np.r_[np.full(len(y_tr), -1), np.zeros(len(y_val))])
    else:
        cv = args.cv
    began = time.perf_counter()
    # the library's defaults but for what the command line names
    options = dict(n_alphas=args.n_alphas, eps=args.eps, cv=cv, path=args.path)
    options["stage_score"] = args.stage_score
    if args.tolerance is not None:
        options["selection"] = args.tolerance / 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = RegularizationPathCV(est, **options).fit(X_pool, y_pool)
    seconds = time.perf_counter() - began
    model = search.best_estimator_
    results = search.cv_results_
    X_te, y_te = data["test"]
    total = sum(args.hidden)
    return dict(
        score=points(model, X_te, y_te),
        stage_score=points(search.penalized_estimator_, X_te, y_te),
        live=list(model.active_neurons_),
        features=int(model.support_.sum()),
        params=int(model.network_.n_params),
        seconds=seconds,
        alpha=search.alpha_,
        path=[
            (n / total, 100.0 * (m - search.best_score_))
            for n, m in zip(results["mean_n_neurons"], results["mean_test_score"])
        ],
        stages=[
            (a, tuple(round(float(n), 1) for n in live), 100.0 * m, 100.0 * sd)
            for a, live, m, sd in zip(
                results["alpha"],
                results["mean_live_neurons"],
                results["mean_test_score"],
                results["std_test_score"],
            )
        ],
        chosen=search.best_index_,
        epochs=epochs,
    )


def _dense_params(coefs, intercepts) -> int:
    return int(sum(c.size for c in coefs) + sum(b.size for b in intercepts))


def fit_dense(data: dict, args) -> dict:
    cls = MLPClassifier if data["classification"] else MLPRegressor
    # early stopping on a fifth of the training and validation rows: the same
    # data budget as ours, which trains on the first and selects on the second
    est = cls(
        hidden_layer_sizes=args.hidden,
        batch_size=args.batch_size,
        learning_rate_init=args.learning_rate,
        early_stopping=True,
        validation_fraction=0.2,
        random_state=args.seed,
    )
    X_pool = np.concatenate([data["train"][0], data["validation"][0]])
    y_pool = np.concatenate([data["train"][1], data["validation"][1]])
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_pool, y_pool)
    seconds = time.perf_counter() - began
    return dict(
        score=points(est, *data["test"]),
        live=list(args.hidden),
        features=X_pool.shape[1],
        params=_dense_params(est.coefs_, est.intercepts_),
        seconds=seconds,
        epochs=est.n_iter_,
    )


def fit_linear(data: dict, args) -> dict:
    est = LogisticRegression(max_iter=5000) if data["classification"] else Ridge()
    X_tr, y_tr = data["train"]
    began = time.perf_counter()
    est.fit(X_tr, y_tr)
    seconds = time.perf_counter() - began
    coef = np.atleast_2d(est.coef_)
    return dict(
        score=points(est, *data["test"]),
        live=[],
        features=int(np.any(coef != 0, axis=0).sum()),
        params=int(coef.size + np.size(est.intercept_)),
        seconds=seconds,
    )


class _EnoughSparsity(Exception):
    pass


def fit_lassonet(data: dict, args, n_features: int) -> dict:
    """LassoNet's path, dense to sparse, stopped at <= ``n_features`` features."""
    try:
        from lassonet import LassoNetClassifier, LassoNetRegressor
    except ImportError:
        return None
    cls = LassoNetClassifier if data["classification"] else LassoNetRegressor
    est = cls(
        hidden_dims=tuple(args.hidden),
        batch_size=args.batch_size,
        path_multiplier=args.lassonet_multiplier,
        n_iters=(5 * stage_epochs(data, args), stage_epochs(data, args)),
        patience=(10, 5),
        random_state=args.seed,
        torch_seed=args.seed,
        device=torch.device("cpu"),
        verbose=0,
    )
    X_tr, y_tr = data["train"]
    X_val, y_val = data["validation"]
    history = []

    def stop_when_sparse(model, hist):
        history[:] = hist
        if int(hist[-1].selected.sum()) <= n_features:
            raise _EnoughSparsity

    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.path(
                X_tr,
                y_tr,
                X_val=X_val,
                y_val=y_val,
                return_state_dicts=True,
                callback=stop_when_sparse,
            )
        except _EnoughSparsity:
            pass
    seconds = time.perf_counter() - began
    item = history[-1]
    est.load(item.state_dict)
    X_te, y_te = data["test"]
    score = points(est, X_te, y_te)
    kept = int(item.selected.sum())
    hidden = list(args.hidden)
    n_out = data["n_classes"] if data["classification"] else 1
    sizes = [kept, *hidden, n_out]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])) + kept * n_out
    return dict(
        score=score,
        live=hidden,
        features=kept,
        params=int(params),
        seconds=seconds,
        steps=len(history),
    )


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------
def _cell(result, key, fmt="{}"):
    return "n/a" if result is None else fmt.format(result[key])


def run(names, args) -> tuple[list[dict], list[str]]:
    rows = []
    for name in names:
        data = prepare(name, args.max_train, args.max_test, args.seed)
        ours = fit_ours(data, args)
        dense = fit_dense(data, args)
        linear = fit_linear(data, args)
        lassonet = (
            None if args.no_lassonet else fit_lassonet(data, args, ours["features"])
        )
        kept = sum(ours["live"]) / sum(args.hidden)
        gap = ours["score"] - dense["score"]
        holds = gap >= -TARGET_POINTS and kept <= TARGET_NEURONS
        rows.append(
            dict(
                name=name,
                data=data,
                ours=ours,
                dense=dense,
                linear=linear,
                lassonet=lassonet,
                kept=kept,
                gap=gap,
                holds=holds,
            )
        )
        print(
            f"{name}: ours {ours['score']:.2f} ({ours['live']}, "
            f"{ours['features']} features, {ours['seconds']:.1f} s), dense "
            f"{dense['score']:.2f} ({dense['seconds']:.1f} s), linear "
            f"{linear['score']:.2f}, lassonet {_cell(lassonet, 'score', '{:.2f}')}"
            f" -> {'holds' if holds else 'does not hold'}",
            flush=True,
        )
    return rows


def table(rows, args) -> list[str]:
    lines = [
        "| dataset | task | train / val / test rows | features | dropped | "
        "epochs per stage | "
        "score: ours | "
        "ours before refit | dense MLP | linear | LassoNet | live neurons: ours | "
        "kept features: ours | "
        "LassoNet | params: ours | dense | LassoNet | fit s: ours (path) | dense | "
        "linear | LassoNet (path) | ours - dense | ours - best of dense, linear | "
        "hidden kept | within 0.5 and "
        "<= 30% |",
        "|" + "---|" * 24,
    ]
    for row in rows:
        data, ours, dense, linear, ln = (
            row[k] for k in ("data", "ours", "dense", "linear", "lassonet")
        )
        task = (
            f"classification ({data['n_classes']})"
            if data["classification"]
            else "regression"
        )
        parts = ("train", "validation", "test")
        sizes = " / ".join(str(len(data[k][1])) for k in parts)
        lines.append(
            f"| {row['name']} | {task} | {sizes} | {data['train'][0].shape[1]} | "
            f"{data['n_dropped']} | {ours['epochs']} | "
            f"{ours['score']:.2f} | {ours['stage_score']:.2f} | "
            f"{dense['score']:.2f} | {linear['score']:.2f} | "
            f"{_cell(ln, 'score', '{:.2f}')} | {tuple(ours['live'])} | "
            f"{ours['features']} | {_cell(ln, 'features')} | {ours['params']} | "
            f"{dense['params']} | {_cell(ln, 'params')} | {ours['seconds']:.1f} | "
            f"{dense['seconds']:.1f} | {linear['seconds']:.2f} | "
            f"{_cell(ln, 'seconds', '{:.1f}')} | {row['gap']:+.2f} | "
            f"{ours['score'] - max(dense['score'], linear['score']):+.2f} | "
            f"{row['kept']:.0%} | {'yes' if row['holds'] else 'no'} |"
        )
    return lines


def path_table(rows) -> list[str]:
    lines = []
    for row in rows:
        lines += [
            f"### {row['name']} (dense MLP: {row['dense']['score']:.2f}; ours: "
            f"{row['ours']['score']:.2f})",
            "",
            "| alpha | mean live neurons | held-out score (mean) | std |",
            "|---|---|---|---|",
        ]
        for k, (alpha, live, mean, std) in enumerate(row["ours"]["stages"]):
            mark = " *" if k == row["ours"]["chosen"] else ""
            lines.append(f"| {alpha:.3g}{mark} | {live} | {mean:.2f} | {std:.2f} |")
        lines.append("")
    return lines


def draw(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.get_cmap("tab20").colors
    for k, row in enumerate(rows):
        frac, rel = (np.asarray(v) for v in zip(*row["ours"]["path"]))
        style = "-" if row["data"]["classification"] else "--"
        (line,) = ax.plot(
            frac,
            rel,
            style,
            color=colors[k % len(colors)],
            alpha=0.8,
            marker=".",
            label=row["name"],
        )
        chosen = row["ours"]["chosen"]
        ax.plot(
            frac[chosen],
            rel[chosen],
            "o",
            markersize=9,
            markerfacecolor="none",
            color=line.get_color(),
        )
    ax.axvline(TARGET_NEURONS, color="k", linestyle=":", linewidth=0.8)
    ax.set_xlabel("fraction of hidden neurons alive (mean over the folds)")
    ax.set_ylabel("held-out score - the best stage's (points)")
    ax.set_ylim(-10, 1)
    ax.set_title(
        "RegularizationPathCV paths (dashed: regression; circles: chosen stage)",
        fontsize=10,
    )
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: only {QUICK}, 8 alphas, 1000 steps per stage, at most "
        "2000 training rows, LassoNet path_multiplier 1.2",
    )
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--epochs", type=int, default=40, help="per path stage")
    parser.add_argument("--n-alphas", type=int, default=16)
    parser.add_argument("--eps", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--steps",
        type=int,
        default=2000,
        help="at least this many mini-batches per path stage (more epochs on "
        "small datasets)",
    )
    parser.add_argument(
        "--stage-score",
        choices=("relaxed", "penalized"),
        default="relaxed",
        help="what a stage's held-out score measures (RegularizationPathCV)",
    )
    parser.add_argument(
        "--path",
        choices=("warm", "cold"),
        default="warm",
        help="RegularizationPathCV's path: warm-started stages, or every alpha "
        "from the initial weights",
    )
    parser.add_argument(
        "--cv",
        type=int,
        default=5,
        help="folds of the search; 1: the validation part is the held-out part",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="points; default: the library's selection (one standard error)",
    )
    parser.add_argument("--max-train", type=int, default=5000)
    parser.add_argument("--max-test", type=int, default=5000)
    parser.add_argument("--lassonet-multiplier", type=float, default=1.1)
    parser.add_argument("--no-lassonet", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "suite")
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n_alphas, args.steps, args.max_train = 8, 1000, 2000
        args.lassonet_multiplier = 1.2
    names = args.datasets or (QUICK if args.quick else DATASETS)
    began = time.perf_counter()
    rows = run(names, args)
    total = time.perf_counter() - began
    count = sum(row["holds"] for row in rows)
    try:
        import lassonet

        ln_version = getattr(lassonet, "__version__", None) or _version("lassonet")
    except ImportError:
        ln_version = "not installed"
    lines = [
        "# The peer suite",
        "",
        f"- command: `{_report.command()}` ({total:.0f} s in all)",
        f"- date: {datetime.date.today().isoformat()}",
        *_report.machine_lines(),
        f"- lassonet {ln_version}, pandas {pd.__version__}",
        f"- split (seed {args.seed}): 25% of the rows (at most {args.max_test}) "
        f"are the test set; at most {args.max_train} of the rest are drawn, a fifth "
        "of them for validation; stratified for classification. Categorical columns "
        "one-hot encoded, numeric ones standardised, then columns with one value "
        f"on at least {NEAR_CONSTANT:.1%} of the training rows dropped (the "
        "'dropped' column); regression targets standardised (all fitted on the "
        "training part).",
        f"- every network: hidden layers {tuple(args.hidden)}, ReLU, Adam "
        f"lr {args.learning_rate:g}, batch {args.batch_size}.",
        "- ours: `GroupLassoMLP` (outgoing groups, remove_dead=True) in "
        "`RegularizationPathCV` on the training and validation rows together "
        + (
            "(one split: the validation part is held out)"
            if args.cv == 1
            else f"({args.cv} folds)"
        )
        + (
            f": a warm-started path over {args.n_alphas} alphas from {args.eps:g} "
            "alpha_max (of all those rows) to alpha_max, small to large, refined "
            "and stopped early as the library does by default"
            if args.path == "warm"
            else f": {args.n_alphas} alphas from {args.eps:g} alpha_max to "
            "alpha_max, each fitted from the initial weights (path='cold')"
        )
        + f"; max_iter is at least "
        f"{args.epochs} epochs and {args.steps} mini-batches (the table's "
        "epochs): the first stage's budget, the later stages' a fifth of it "
        "(the library's default stage_iter, ending once they settle); every "
        f"stage is scored after its {args.stage_score} fit; kept: "
        + (
            "the library's default, the stage with the fewest compacted "
            "parameters whose mean held-out score is within one standard error "
            "of the best stage's"
            if args.tolerance is None
            else f"the stage with the fewest compacted parameters whose mean "
            f"held-out score is within {args.tolerance:g} points of the best "
            "stage's"
        )
        + "; the path is then rerun on "
        "all those rows up to it (path='cold': that alpha alone), and relaxed "
        "(alpha=0 on the support it selected, "
        "epochs chosen by early stopping on a tenth of the rows, then run on all). "
        "'Before refit' is the path's model before the relaxed fit. Fit time: the "
        "whole search.",
        "- dense MLP: scikit-learn's `MLPClassifier` / `MLPRegressor` with the same "
        "layers, step and batch and `early_stopping=True, validation_fraction=0.2`, "
        "fitted on the training and validation rows together (the same data "
        "budget as ours), its defaults otherwise (L2 alpha 1e-4, up to 200 "
        "epochs, stops after 10 epochs without a better validation score).",
        "- linear: `LogisticRegression(max_iter=5000)` / `Ridge()`, defaults.",
        f"- LassoNet: `LassoNetClassifier` / `LassoNetRegressor` with the same "
        f"hidden layers and batch, `path_multiplier={args.lassonet_multiplier:g}`, "
        f"`n_iters=` five times / once our epochs per stage, `patience=(10, 5)`, early "
        "stopping on our validation part, its default optimizers (Adam lr 1e-3 for "
        "the dense start, SGD lr 1e-3 with momentum 0.9 along the path); its path "
        "(dense to sparse) stops at the first model keeping at most as many input "
        "features as ours, which is scored (its path moves in jumps, so it can "
        "keep fewer). It selects features only: every hidden neuron stays. Params "
        "count its skip connection. Fit time: the path up to that model.",
        "- score: test accuracy (classification) or R^2 (regression), in points "
        "(percent). Params: weights and biases of the network that predicts "
        "(ours: the compacted one).",
        "",
        *table(rows, args),
        "",
        f"Ours within {TARGET_POINTS} points of the dense MLP with at most "
        f"{TARGET_NEURONS:.0%} of the hidden neurons alive on **{count} of "
        f"{len(rows)}** datasets.",
        "",
        "## Every stage of our paths",
        "",
        "Alpha, mean live neurons and held-out score per stage (over the folds); "
        "* marks the stage kept.",
        "",
        *path_table(rows),
    ]
    text = "\n".join(lines)
    _report.write_report(text, args.output, lambda path: draw(rows, path))
    return 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    sys.exit(main())
