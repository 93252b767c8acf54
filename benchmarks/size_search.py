"""The race: our size search against the one users run without us.

On the 14 suite datasets, with ``suite.py``'s split and preprocessing (the
training and validation parts together are the training rows, the test part
scores), two searches for the size of a network:

* ours: ``RegularizationPathCV(GroupLassoMLP*((128, 64), ...), cv=5)`` with
  every search parameter at its default (16 alphas below ``alpha_max``, the
  budgeted, refined and early-stopped warm path, relaxed stage scores, the
  one-standard-error rule on the compacted network's parameters, the relaxed
  refit); the estimator has the suite's settings (batch 128, step 1e-3,
  ``max_iter``: at least 40 epochs and 2000 mini-batches, ``remove_dead=True``)
  and its defaults otherwise;
* theirs: ``GridSearchCV(MLPClassifier / MLPRegressor(early_stopping=True,
  batch_size=128, learning_rate_init=1e-3), {"hidden_layer_sizes": [(8,),
  (16,), (32, 16), (64, 32), (128, 64)], "alpha": [1e-4, 1e-2]}, cv=5)``.

Per dataset: the test score of each (accuracy or R^2, in points), the
parameters of the model each chose (weights and biases of the network that
predicts; ours compacted), and the wall time of each whole search, refit
included; then a count of wins: ours within 0.5 points of the grid's score or
above, with fewer parameters, in less time. Issue 23's targets: 12, 10 and 10
of 14.

Run from the repository root::

    python benchmarks/size_search.py
    python benchmarks/size_search.py --datasets segment phoneme --output ''
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
import suite  # noqa: E402

from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
)

ROOT = Path(__file__).resolve().parent.parent
GRID = {
    "hidden_layer_sizes": [(8,), (16,), (32, 16), (64, 32), (128, 64)],
    "alpha": [1e-4, 1e-2],
}
BATCH, STEP, HIDDEN = 128, 1e-3, (128, 64)
TARGETS = dict(score=12, params=10, time=10)


def _pool(data: dict) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate([data["train"][0], data["validation"][0]])
    y = np.concatenate([data["train"][1], data["validation"][1]])
    return X, y


def max_iter(n_rows: int) -> int:
    """The suite's epochs: at least 40, and at least 2000 mini-batches."""
    batches = -(-int(0.8 * n_rows) // BATCH)  # a fold's training rows
    return max(40, -(-2000 // batches))


def ours(data: dict, seed: int) -> dict:
    X, y = _pool(data)
    cls = GroupLassoMLPClassifier if data["classification"] else GroupLassoMLPRegressor
    net = cls(
        HIDDEN,
        batch_size=BATCH,
        learning_rate_init=STEP,
        max_iter=max_iter(len(y)),
        remove_dead=True,
        random_state=seed,
    )
    began = time.perf_counter()
    search = RegularizationPathCV(net, cv=5).fit(X, y)
    seconds = time.perf_counter() - began
    model = search.best_estimator_
    results = search.cv_results_
    return dict(
        score=suite.points(model, *data["test"]),
        params=int(model.network_.n_params),
        seconds=seconds,
        chosen=f"{list(model.active_neurons_)}, {int(model.support_.sum())} inputs",
        stages=f"{int(results['stage_fitted'].sum())} of {len(results['alpha'])}",
    )


def theirs(data: dict, seed: int) -> dict:
    X, y = _pool(data)
    cls = MLPClassifier if data["classification"] else MLPRegressor
    net = cls(
        early_stopping=True,
        batch_size=BATCH,
        learning_rate_init=STEP,
        random_state=seed,
    )
    began = time.perf_counter()
    search = GridSearchCV(net, GRID, cv=5).fit(X, y)
    seconds = time.perf_counter() - began
    model = search.best_estimator_
    return dict(
        score=suite.points(model, *data["test"]),
        params=suite._dense_params(model.coefs_, model.intercepts_),
        seconds=seconds,
        chosen=(
            f"{list(search.best_params_['hidden_layer_sizes'])}, "
            f"alpha={search.best_params_['alpha']:g}"
        ),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=suite.DATASETS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "size_search")
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    header = (
        "| data | ours: test | params | s | chosen | stages fitted | grid: test "
        "| params | s | chosen | within 0.5 or above | fewer params | less time |"
    )
    lines = [header, "|---" * 13 + "|"]
    print(header)
    print(lines[1])
    wins = dict(score=0, params=0, time=0)
    for name in args.datasets:
        data = suite.prepare(name, 5000, 5000, args.seed)
        a, b = ours(data, args.seed), theirs(data, args.seed)
        won = dict(
            score=a["score"] >= b["score"] - 0.5,
            params=a["params"] < b["params"],
            time=a["seconds"] < b["seconds"],
        )
        for key, value in won.items():
            wins[key] += value
        line = (
            f"| {name} | {a['score']:.2f} | {a['params']} | {a['seconds']:.1f} | "
            f"{a['chosen']} | {a['stages']} | {b['score']:.2f} | {b['params']} | "
            f"{b['seconds']:.1f} | {b['chosen']} | "
            + " | ".join("yes" if won[k] else "no" for k in ("score", "params", "time"))
            + " |"
        )
        print(line, flush=True)
        lines.append(line)
    n = len(args.datasets)
    summary = ", ".join(
        f"{what}: {wins[key]} of {n} (target {TARGETS[key]} of 14)"
        for key, what in (
            ("score", "within 0.5 points of the grid or above"),
            ("params", "fewer parameters"),
            ("time", "less wall time"),
        )
    )
    print("\n" + summary)
    _report.publish(
        "Size search: RegularizationPathCV against GridSearchCV over MLP sizes",
        began,
        [*lines, "", summary],
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
