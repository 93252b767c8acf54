"""What a cross-validated path costs, in single fits.

The unit, a single fit: the estimator at the alpha the search chose, on all
the rows, for its ``max_iter`` epochs (``tol=0``: no early stop), best of
``--repeats`` runs after an untimed warm-up.

Default: the whole default search, ``RegularizationPathCV(net, cv=5)`` and
``cv=3`` with every other parameter at its default (16 alphas, budgeted warm
stages that settle, the refined and early-stopped path, relaxed stage scores,
the relaxed refit on all the data), timed once each, with the stages it
fitted, the alphas it inserted and the size it chose. The targets of issue
23: at most 20 single fits at cv=5 and 12 at cv=3 on every cell.

``--engines``: the engines on the path as it was before issue 23 (every stage
``max_iter`` epochs: ``stage_iter=max_iter, stage_patience=None, refine=0,
stop_margin=None``), timed without the refit and with penalized stage scores:
the folds of a stage batched into one network (``engine="batched"``), one fit
at a time (``engine="sequential"``), and the cold grid (``path="cold"``: every
alpha fitted from the initial weights, all 80 networks as one batched
network), next to the floor: what the search's matrix products alone
(forward, weight gradients, hidden-input gradients of the dense network, for
every fold's rows at every alpha) cost at this CPU's peak float32 rate,
measured in the same run on a 2048 x 2048 product (given where the widths
stay dense, ``remove_dead=False``). Written to ``path_cv_speed_engines.md``.

Cells: scikit-learn's digits (1797 x 64, 10 classes) and ``letter`` (15000
training rows of 16 features, 26 classes; from ``../shared/datasets``) at
hidden layers (64, 32) and (256, 128) and batch sizes 32, 128 and 1024
(letter: (256, 128) at 256 and 1024), and three cells with
``remove_dead=True``. ``max_iter``: 60 on digits, 20 on letter (the default
mode); 20 and 5 (``--engines``, as before).

Run from the repository root::

    python benchmarks/path_cv_speed.py
    python benchmarks/path_cv_speed.py --engines
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
from sklearn.base import clone
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
TARGET = 15.0  # --engines: the batched search of issue 16
#: the whole default search's targets of issue 23, per number of folds
TARGETS = {5: 20.0, 3: 12.0}
#: the path as it was before issue 23: every stage a cold fit's budget
FULL_BUDGET = dict(stage_patience=None, refine=0, stop_margin=None)


def cells(quick: bool, engines: bool) -> list[dict]:
    small, large = (20, 5) if engines else (60, 20)
    digits = [
        dict(data="digits", hidden=h, batch=b, epochs=small)
        for h in ((64, 32), (256, 128))
        for b in (32, 128, 1024)
    ]
    letter = [
        dict(data="letter", hidden=(256, 128), batch=b, epochs=large)
        for b in (256, 1024)
    ]
    # units removed while training: single fits shrink, the batch narrows
    removing = [
        dict(data="digits", hidden=h, batch=128, epochs=small, remove_dead=True)
        for h in ((64, 32), (256, 128))
    ] + [
        dict(
            data="letter", hidden=(256, 128), batch=256, epochs=large, remove_dead=True
        )
    ]
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


def _net(cell: dict, **kw) -> GroupLassoMLPClassifier:
    return GroupLassoMLPClassifier(
        cell["hidden"],
        batch_size=cell["batch"],
        max_iter=cell["epochs"],
        remove_dead=cell.get("remove_dead", False),
        random_state=0,
        **kw,
    )


def fixed_epochs(net: GroupLassoMLPClassifier) -> GroupLassoMLPClassifier:
    """``net`` running all its ``max_iter`` epochs (no early stop): the unit."""
    return net.set_params(tol=0.0, n_iter_no_change=net.max_iter + 1)


def measure_search(cell: dict, repeats: int) -> dict:
    """The whole default search at every ``TARGETS`` cv, in single fits."""
    X, y = load(cell["data"])
    net = _net(cell)
    fixed_epochs(clone(net)).fit(X[:300], y[:300])  # untimed: kernels, threads
    row = dict(cell, rows=len(y))
    for cv in TARGETS:
        search = RegularizationPathCV(net, cv=cv)
        began = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - began
        unit = fixed_epochs(clone(net).set_params(alpha=search.alpha_))
        single = timed(lambda u=unit: u.fit(X, y), repeats)
        results, best = search.cv_results_, search.best_estimator_
        row[cv] = dict(
            seconds=seconds,
            single=single,
            fits=seconds / single,
            stages=int(results["stage_fitted"].sum()),
            inserted=int(results["stage_inserted"].sum()),
            n_alphas=len(results["alpha"]),
            neurons=list(best.active_neurons_),
            features=int(best.support_.sum()),
            params=int(results["mean_n_params"][search.best_index_]),
            score=float(search.best_score_),
        )
    return row


def measure(cell: dict, repeats: int, n_alphas: int, cv: int, peak: float) -> dict:
    X, y = load(cell["data"])
    net = fixed_epochs(_net(cell))
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
            stage_iter=cell["epochs"],
            **FULL_BUDGET,
        )
        row[key] = timed(lambda s=search: s.fit(X, y), repeats)
    if not cell.get("remove_dead", False):
        # every fold's rows (a fraction (cv - 1) / cv of them) at every alpha
        rows = n_alphas * (cv - 1) * len(y) * cell["epochs"]
        flops = search_flops(X.shape[1], cell["hidden"], len(np.unique(y)), rows)
        row["floor"] = flops / peak
    full = RegularizationPathCV(
        net, n_alphas=n_alphas, cv=cv, stage_iter=cell["epochs"], **FULL_BUDGET
    )
    began = time.perf_counter()
    full.fit(X, y)
    row["refit"] = full.refit_time_
    row["whole"] = time.perf_counter() - began
    row["chosen"] = list(full.best_estimator_.active_neurons_)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small cell")
    parser.add_argument("--engines", action="store_true", help="the engines' table")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-alphas", type=int, default=16)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    name = "path_cv_speed_engines" if args.engines else "path_cv_speed"
    if args.output is None:
        args.output = str(ROOT / "benchmarks" / "results" / name)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    run = engines_table if args.engines else search_table
    lines, summary = run(args)
    _report.publish(
        "RegularizationPathCV: the search in single fits"
        + (" (engines, the path before issue 23)" if args.engines else ""),
        began,
        [*lines, "", summary],
        args.output,
        f"- torch threads: {torch.get_num_threads()}",
    )
    return 0


def search_table(args) -> tuple[list[str], str]:
    """The whole default search at cv=5 and cv=3, per cell."""
    per_cv = " | ".join(
        f"cv={cv}: search s | in single fits | stages fitted (inserted) of alphas "
        f"| chosen neurons, features, params | cv score"
        for cv in TARGETS
    )
    header = (
        "| data | rows | hidden | batch | max_iter | remove_dead | single fit s | "
        + per_cv
        + " |"
    )
    lines = [header, "|---" * (7 + 5 * len(TARGETS)) + "|"]
    print(header)
    print(lines[1])
    worst = {cv: [] for cv in TARGETS}
    for cell in cells(args.quick, False):
        r = measure_search(cell, args.repeats)
        parts = []
        for cv in TARGETS:
            m = r[cv]
            worst[cv].append(m["fits"])
            parts.append(
                f"{m['seconds']:.2f} | {m['fits']:.1f} | {m['stages']} "
                f"({m['inserted']}) of {m['n_alphas']} | {m['neurons']}, "
                f"{m['features']}, {m['params']} | {m['score']:.4f}"
            )
        line = (
            f"| {r['data']} | {r['rows']} | {r['hidden']} | {r['batch']} | "
            f"{r['epochs']} | {r.get('remove_dead', False)} | "
            f"{r[5]['single']:.3f} | " + " | ".join(parts) + " |"
        )
        print(line, flush=True)
        lines.append(line)
    summary = "\n\n".join(
        f"whole default search at cv={cv}: {min(w):.1f} to {max(w):.1f} single "
        f"fits (the single fit of the cv={cv} search's alpha); target <= "
        f"{TARGETS[cv]:.0f}: holds on {sum(f <= TARGETS[cv] for f in w)} of "
        f"{len(w)} cells"
        for cv, w in worst.items()
    )
    print("\n" + summary)
    return lines, summary


def engines_table(args) -> tuple[list[str], str]:
    """The engines on the path as it was before issue 23, per cell."""
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
    for cell in cells(args.quick, True):
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
    return lines, summary


if __name__ == "__main__":
    sys.exit(main())
