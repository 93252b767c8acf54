"""A warm-started regularization path and the "size space" of a two-layer net.

Fits a ``GroupLassoMLPClassifier`` with hidden layers (128, 64) on optdigits over
a geometric grid of alphas below ``alpha_max``, from small to large
(regularization growing), each fit warm-started from the previous one
(:func:`skgroupsparse.regularization.regularization_path`), and scores every stage on
held-out data; the same grid is then taken from ``alpha_max`` down, the lasso's
order, for comparison. The tables give, per alpha, the sparsity, the live
features and neurons, and the train / held-out accuracy; the figure
(:mod:`skgroupsparse.plotting`) shows the path (sparsity and held-out accuracy
against alpha) and the trajectory of the live neurons of the two hidden layers
as alpha decreases (the "size space" of Scardapane et al.'s figure).

Run from the repository root::

    python benchmarks/regularization_path.py
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import GroupLassoMLPClassifier, datasets  # noqa: E402
from skgroupsparse.path import alpha_grid  # noqa: E402
from skgroupsparse.regularization import alpha_max, regularization_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _table(records) -> list[str]:
    lines = [
        "| alpha | sparsity | live features | live neurons | train acc. | "
        "held-out acc. | epochs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['alpha']:.3g} | {r['sparsity']:.3f} | {r['live_features']} | "
            f"{r['live_neurons']} | {r['train_score']:.4f} | "
            f"{r['validation_score']:.4f} | {r['epochs']} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="optdigits")
    parser.add_argument("--n-alphas", type=int, default=12)
    parser.add_argument("--eps", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "regularization_path")
    )
    args = parser.parse_args(argv)
    X, y = datasets.load_benchmark(args.dataset)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    est = GroupLassoMLPClassifier(
        hidden_layer_sizes=(128, 64), max_iter=args.epochs, tol=0, random_state=0
    )
    top = alpha_max(est, X_train, y_train)
    grid = alpha_grid(top, args.n_alphas, args.eps)

    def path(alphas):
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            records = regularization_path(
                est, X_train, y_train, alphas, validation_data=(X_test, y_test)
            )
        return records, time.perf_counter() - began

    # small to large (regularization growing), the default; and the lasso's
    # order, from alpha_max down, for comparison
    records, seconds = path(grid[::-1])
    down, down_seconds = path(grid)
    lines = [
        "# A warm-started regularization path",
        "",
        f"- command: `{_report.command()}`",
        f"- date: {datetime.date.today().isoformat()}",
        *_report.machine_lines(),
        f"- data: {args.dataset}, {X_train.shape[0]} train / {X_test.shape[0]} "
        "held-out rows, standardised",
        "- model: `GroupLassoMLPClassifier(hidden_layer_sizes=(128, 64))`, group "
        f"lasso on outgoing groups, Adam, batch 200, {args.epochs} epochs per "
        "alpha, each alpha warm-started from the previous one",
        f"- grid: {args.n_alphas} alphas between {args.eps:g} alpha_max and "
        f"alpha_max = {top:.4g}",
        "",
        f"From small to large alpha (regularization growing, the default; "
        f"{seconds:.1f} s):",
        "",
        *_table(records),
        "",
        "From alpha_max down (the lasso's order; a network with every group zero "
        "is a stationary point for every alpha, so the stages after the first "
        f"recover only through mini-batch noise, if at all; {down_seconds:.1f} s):",
        "",
        *_table(down),
    ]
    text = "\n".join(lines)

    def draw(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from skgroupsparse.plotting import plot_path, plot_size_space

        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
        plot_path(records, ax=left)
        left.set_title(f"{args.dataset}: warm-started path, small to large alpha")
        plot_size_space(records, ax=right)
        fig.tight_layout()
        fig.savefig(path, dpi=120)

    _report.write_report(text, args.output, draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
