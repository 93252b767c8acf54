"""What a cross-validated path costs, in single fits.

``RegularizationPathCV(cv=5)`` over 16 alphas fits 80 networks (5 folds x 16
stages of ``max_iter`` epochs each, warm-started along the path). This script
times it against one fit of the same estimator on all the rows for the same
epochs (the unit: "single fits"), with the folds of a stage batched into one
network (``engine="batched"``, the default), one fit at a time
(``engine="sequential"``, ``n_jobs=None``) and as a cold grid (``path="cold"``:
every alpha fitted from the initial weights, all 80 networks as one batched
network). Every fit runs its fixed epochs
(``tol=0``, no early stop); the searches are timed without their refit
and with penalized stage scores (``refit=False, stage_score="penalized"``: the
path's fits are what batching changes), and the whole search with its
defaults (relaxed stage scores, one relaxed fit per fold and stage, run one at
a time; the refit on all the data: the path up to the chosen alpha, then the
relaxed fit) is timed once, with its refit on its own. The issue's target on
this 2-core CPU is at most 15 single fits for the batched search (one at a time
it costs about 80).

The floor: what the search's matrix products alone (forward, weight gradients,
hidden-input gradients of the dense network, for every fold's rows at every
alpha) cost at this CPU's peak float32 rate, measured in the same run on a
2048 x 2048 product; no engine on this CPU does the search in less. It is
given where the widths stay dense (``remove_dead=False``).

Cells: scikit-learn's digits (1797 x 64, 10 classes) and ``letter`` (15000
training rows of 16 features, 26 classes; from ``../shared/datasets``) at
hidden layers (64, 32) and (256, 128) and batch sizes 32, 128 and 1024 (letter:
(256, 128) at 256 and 1024, 5 epochs), and three cells with ``remove_dead=True``
(units removed while training: single fits shrink, and the batch narrows to the
units some fold still keeps). Each time is the
best of ``--repeats`` runs after an untimed warm-up.

Run from the repository root::

    python benchmarks/path_cv_speed.py
    python benchmarks/path_cv_speed.py --quick --output ''
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    RegularizationPathCV,
    datasets,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET = 15.0


def cells(quick: bool) -> list[dict]:
    digits = [
        dict(data="digits", hidden=h, batch=b, epochs=20)
        for h in ((64, 32), (256, 128))
        for b in (32, 128, 1024)
    ]
    letter = [
        dict(data="letter", hidden=(256, 128), batch=b, epochs=5) for b in (256, 1024)
    ]
    # units removed while training: single fits shrink, the batch narrows
    removing = [
        dict(data="digits", hidden=h, batch=128, epochs=20, remove_dead=True)
        for h in ((64, 32), (256, 128))
    ] + [dict(data="letter", hidden=(256, 128), batch=256, epochs=5, remove_dead=True)]
    if quick:
        return [dict(data="digits", hidden=(64, 32), batch=128, epochs=5)]
    return digits + letter + removing


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return (X / 16.0).astype(np.float32), y
    X, y = datasets.load_benchmark(name)
    X = StandardScaler().fit_transform(X[:15000]).astype(np.float32)
    return X, np.asarray(y)[:15000]


def peak_flops(repeats: int = 5) -> float:
    """This CPU's float32 rate on a large matrix product (FLOP/s), best of runs."""
    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    torch.mm(a, b)
    return 2 * 2048**3 / timed(lambda: torch.mm(a, b), repeats)


def search_flops(n_features: int, hidden, n_outputs: int, rows: float) -> float:
    """FLOPs of the products of ``rows`` training rows through the dense net.

    Forward, the weight gradients and the gradients of every hidden layer's
    input (none for the data): two FLOPs a multiply-add.
    """
    sizes = [n_features, *hidden, n_outputs]
    products = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 2.0 * rows * (2 * sum(products) + sum(products[1:]))


def timed(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def measure(cell: dict, repeats: int, n_alphas: int, cv: int, peak: float) -> dict:
    X, y = load(cell["data"])
    net = GroupLassoMLPClassifier(
        cell["hidden"],
        batch_size=cell["batch"],
        max_iter=cell["epochs"],
        tol=0.0,
        n_iter_no_change=cell["epochs"] + 1,
        remove_dead=cell.get("remove_dead", False),
        random_state=0,
    )
    net.fit(X[:300], y[:300])  # untimed: kernels loaded, threads started
    single = timed(lambda: net.fit(X, y), repeats)
    row = dict(cell, rows=len(y), single=single)
    for key, engine, path in (
        ("batched", "batched", "warm"),
        ("sequential", "sequential", "warm"),
        ("cold", "batched", "cold"),
    ):
        search = RegularizationPathCV(
            net,
            n_alphas=n_alphas,
            cv=cv,
            path=path,
            engine=engine,
            stage_score="penalized",
            refit=False,
        )
        row[key] = timed(lambda s=search: s.fit(X, y), repeats)
    if not cell.get("remove_dead", False):
        # every fold's rows (a fraction (cv - 1) / cv of them) at every alpha
        rows = n_alphas * (cv - 1) * len(y) * cell["epochs"]
        flops = search_flops(X.shape[1], cell["hidden"], len(np.unique(y)), rows)
        row["floor"] = flops / peak
    full = RegularizationPathCV(net, n_alphas=n_alphas, cv=cv)
    began = time.perf_counter()
    full.fit(X, y)
    row["refit"] = full.refit_time_
    row["whole"] = time.perf_counter() - began
    row["chosen"] = list(full.best_estimator_.active_neurons_)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small cell")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-alphas", type=int, default=16)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "path_cv_speed")
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    peak = peak_flops()
    header = (
        "| data | rows | hidden | batch | epochs | remove_dead | single fit s "
        "| batched search s "
        "| in single fits | one at a time s | in single fits | cold grid s "
        "| in single fits | floor s | in single fits | refit s | whole "
        "search s (defaults) | chosen live neurons |"
    )
    lines = [header, "|---" * 18 + "|"]
    print(header)
    print(lines[1])
    ratios, floors = [], []
    for cell in cells(args.quick):
        r = measure(cell, args.repeats, args.n_alphas, args.cv, peak)
        ratios.append(min(r["batched"], r["cold"]) / r["single"])
        floor = "- | -"
        if "floor" in r:
            floor = f"{r['floor']:.2f} | {r['floor'] / r['single']:.1f}"
            floors.append(r["floor"] / r["single"])
        line = (
            f"| {r['data']} | {r['rows']} | {r['hidden']} | {r['batch']} | "
            f"{r['epochs']} | {r.get('remove_dead', False)} | {r['single']:.3f} | "
            f"{r['batched']:.2f} | "
            f"{r['batched'] / r['single']:.1f} | {r['sequential']:.2f} | "
            f"{r['sequential'] / r['single']:.1f} | {r['cold']:.2f} | "
            f"{r['cold'] / r['single']:.1f} | {floor} | {r['refit']:.2f} | "
            f"{r['whole']:.2f} | {r['chosen']} |"
        )
        print(line, flush=True)
        lines.append(line)
    worst = max(ratios)
    summary = (
        f"batched search (cv={args.cv}, {args.n_alphas} alphas, penalized stage "
        "scores, no refit; the faster of the warm path and the cold grid): "
        f"{min(ratios):.1f} to {worst:.1f} single fits; target <= {TARGET:.0f}: "
        f"{'holds' if worst <= TARGET else 'does not hold'}"
    )
    if floors:
        summary += (
            f"\n\nfloor: the search's products alone at this CPU's peak rate "
            f"({peak / 1e9:.0f} GFLOP/s, a 2048 x 2048 float32 matrix product), "
            f"{min(floors):.1f} to {max(floors):.1f} single fits; above "
            f"{TARGET:.0f} on {sum(f > TARGET for f in floors)} of {len(floors)} "
            "cells, where no engine can meet the target on this CPU"
        )
    print("\n" + summary)
    text = "\n".join(
        [
            *_report.header(
                "RegularizationPathCV: the search in single fits",
                time.perf_counter() - began,
                f"- torch threads: {torch.get_num_threads()}",
            ),
            "",
            *lines,
            "",
            summary,
        ]
    )
    _report.write_markdown(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
