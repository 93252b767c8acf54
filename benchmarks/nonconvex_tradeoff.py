"""Accuracy against live neurons and nonzero weights: convex and nonconvex penalties.

On three shared classification datasets (optdigits, pendigits, satimage; one
fixed split each, the suite's preprocessing: ``suite.prepare``), a
``GroupLassoMLPClassifier`` with hidden layers (128, 64) is trained at every
alpha of one grid (1e-5 to 1e-1, quarter decades) with each penalty: l1, group
lasso, sparse group lasso, TL1 (a=1), l0, l1 - l2 (per group) and the
nonconvex sparse group lasso (group lasso + TL1). The convex ones and TL1 and
l0 take exact prox steps in Adam's metric; l1 - l2 (no prox in that metric)
and the nonconvex sparse group lasso (a split penalty) train with
``solver="rvsm"``. Every fit: Adam lr 1e-3, batch 128, the same epochs, the same
seed, no refit (the penalty's own bias is part of what is compared).

Per dataset and penalty the table gives the fewest live neurons (and the
fewest nonzero weights) among the fits whose validation accuracy is within
0.5 points of the unpenalised network's (alpha = 0), with that fit's test
accuracy; then, per dataset, whether a nonconvex penalty keeps at least 20%
fewer live neurons than the group lasso at that accuracy, and the count over
datasets. The figure plots test accuracy against live neurons and against
nonzero weights for every fit.

Run from the repository root::

    python benchmarks/nonconvex_tradeoff.py
    python benchmarks/nonconvex_tradeoff.py --quick --output /tmp/nc
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
from suite import points, prepare  # noqa: E402

from skgroupsparse import GroupLassoMLPClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ["optdigits", "pendigits", "satimage"]
# name -> estimator parameters
PENALTIES = {
    "l1": dict(penalty="l1"),
    "group lasso": dict(penalty="group_lasso"),
    "sparse group lasso": dict(penalty="sparse_group_lasso"),
    "TL1": dict(penalty="tl1", tl1_a=1.0),
    "l0": dict(penalty="l0"),
    "l1 - l2": dict(penalty="l1_l2", solver="rvsm"),
    "nonconvex SGL (TL1)": dict(penalty="sparse_group_tl1", solver="rvsm"),
}
CONVEX = {"l1", "group lasso", "sparse group lasso"}
TOLERANCE = 0.5
FEWER = 0.20


def fit(data: dict, params: dict, alpha: float, args) -> dict:
    est = GroupLassoMLPClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        alpha=alpha,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0,
        random_state=args.seed,
        **params,
    )
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(*data["train"])
    return dict(
        alpha=alpha,
        neurons=int(sum(est.active_neurons_)),
        live=tuple(est.active_neurons_),
        weights=int(sum(np.count_nonzero(W) for W in est.coefs_)),
        validation=points(est, *data["validation"]),
        test=points(est, *data["test"]),
        seconds=time.perf_counter() - began,
    )


def frontier(fits: list[dict], reference: float, key: str) -> dict | None:
    """The fit with the fewest ``key`` within the tolerance of ``reference``."""
    ok = [f for f in fits if f["validation"] >= reference - TOLERANCE]
    return min(ok, key=lambda f: (f[key], -f["validation"])) if ok else None


def run(args) -> list[dict]:
    names = args.datasets or (DATASETS[:1] if args.quick else DATASETS)
    grid = np.logspace(-5, -1, 17) if not args.quick else np.logspace(-5, -2, 4)
    rows = []
    for name in names:
        data = prepare(name, args.max_train, args.max_test, args.seed)
        dense = fit(data, dict(penalty="group_lasso"), 0.0, args)
        fits = {
            p: [fit(data, params, a, args) for a in grid]
            for p, params in PENALTIES.items()
        }
        best = {
            p: (
                frontier(f, dense["validation"], "neurons"),
                frontier(f, dense["validation"], "weights"),
            )
            for p, f in fits.items()
        }
        group = best["group lasso"][0]
        nonconvex = [
            (p, b[0]) for p, b in best.items() if p not in CONVEX and b[0] is not None
        ]
        winner = min(nonconvex, key=lambda x: x[1]["neurons"]) if nonconvex else None
        holds = (
            group is not None
            and winner is not None
            and winner[1]["neurons"] <= (1 - FEWER) * group["neurons"]
        )
        rows.append(
            dict(
                name=name,
                data=data,
                dense=dense,
                fits=fits,
                best=best,
                winner=winner,
                holds=holds,
                group=group,
            )
        )
        print(
            f"{name}: dense {dense['test']:.2f}; group lasso "
            f"{group and group['neurons']} neurons; best nonconvex "
            f"{winner and (winner[0], winner[1]['neurons'])} -> "
            f"{'holds' if holds else 'does not hold'}",
            flush=True,
        )
    return rows


def _cell(fit_: dict | None, key: str) -> str:
    if fit_ is None:
        return "none within 0.5"
    return f"{fit_[key]} ({fit_['test']:.2f})"


def _alpha(fit_: dict | None) -> str:
    return "" if fit_ is None else f"{fit_['alpha']:.0e}"


def table(rows) -> list[str]:
    lines = []
    for row in rows:
        lines += [
            f"### {row['name']} (alpha = 0: validation "
            f"{row['dense']['validation']:.2f}, "
            f"test {row['dense']['test']:.2f}, {row['dense']['neurons']} neurons, "
            f"{row['dense']['weights']} weights)",
            "",
            "| penalty | fewest live neurons (test acc.) | alpha | live per layer | "
            "fewest nonzero weights (test acc.) | alpha | fit s (median) |",
            "|---|---|---|---|---|---|---|",
        ]
        for p, (by_neurons, by_weights) in row["best"].items():
            seconds = np.median([f["seconds"] for f in row["fits"][p]])
            lines.append(
                f"| {p} | {_cell(by_neurons, 'neurons')} | {_alpha(by_neurons)} | "
                f"{by_neurons and by_neurons['live']} | "
                f"{_cell(by_weights, 'weights')} | {_alpha(by_weights)} | "
                f"{seconds:.1f} |"
            )
        winner = row["winner"]
        group = row["group"]
        if winner is not None and group is not None:
            fewer = 1 - winner[1]["neurons"] / max(group["neurons"], 1)
            verdict = (
                f"best nonconvex: {winner[0]} with {winner[1]['neurons']} neurons "
                f"against the group lasso's {group['neurons']} ({fewer:+.0%} fewer): "
                f"**{'holds' if row['holds'] else 'does not hold'}**"
            )
        else:
            verdict = "no comparison (a penalty has no fit within 0.5 points)"
        lines += ["", verdict, ""]
    return lines


def draw(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(rows), figsize=(5 * len(rows), 8), squeeze=False)
    for j, row in enumerate(rows):
        for i, key in enumerate(("neurons", "weights")):
            ax = axes[i][j]
            for k, (p, fits) in enumerate(row["fits"].items()):
                xs = [max(f[key], 1) for f in fits]
                ys = [f["test"] for f in fits]
                ax.plot(
                    xs,
                    ys,
                    "o-" if p in CONVEX else "s--",
                    markersize=3,
                    label=p,
                    color=plt.get_cmap("tab10").colors[k],
                )
            ax.axhline(
                row["dense"]["test"] - TOLERANCE,
                color="k",
                linestyle=":",
                linewidth=0.8,
            )
            ax.set_xscale("log")
            ax.set_ylim(max(0, row["dense"]["test"] - 15), row["dense"]["test"] + 2)
            ax.set_xlabel(
                f"live {'hidden neurons' if key == 'neurons' else 'nonzero weights'}"
            )
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(row["name"], fontsize=10)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--quick", action="store_true", help="optdigits, 4 alphas")
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-train", type=int, default=3000)
    parser.add_argument("--max-test", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output",
        default=str(ROOT / "benchmarks" / "results" / "nonconvex_tradeoff"),
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows = run(args)
    count = sum(row["holds"] for row in rows)
    lines = [
        "# Convex and nonconvex penalties: accuracy against size",
        "",
        f"- command: `{_report.command()}` "
        f"({time.perf_counter() - began:.0f} s in all)",
        f"- date: {datetime.date.today().isoformat()}",
        *_report.machine_lines(),
        f"- data: the suite's split and preprocessing (seed {args.seed}; at most "
        f"{args.max_train} training rows, a fifth of them for validation; at most "
        f"{args.max_test} test rows)",
        f"- model: `GroupLassoMLPClassifier(hidden_layer_sizes={tuple(args.hidden)})`, "
        f"outgoing groups, Adam lr 1e-3, batch {args.batch_size}, {args.epochs} "
        "epochs, the same seed for every fit; l1 - l2 and the nonconvex sparse "
        'group lasso (l1_ratio 0.5) with `solver="rvsm"` (beta 1, x1.25 every 20 '
        "epochs), the others with exact prox steps in Adam's metric.",
        "- per penalty: among its fits (one per alpha of the grid) whose validation "
        f"accuracy is within {TOLERANCE} points of the alpha = 0 network's, the one "
        "with the fewest live neurons and the one with the fewest nonzero weights "
        "(test accuracy in brackets).",
        "",
        *table(rows),
        f"A nonconvex penalty keeps at least {FEWER:.0%} fewer live neurons than the "
        f"group lasso at equal accuracy on **{count} of {len(rows)}** datasets.",
    ]
    _report.write_report("\n".join(lines), args.output, lambda path: draw(rows, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
