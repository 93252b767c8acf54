"""A warm stage's budget: how many epochs, and whether the optimizer state carries.

``RegularizationPathCV`` gives its first stage ``max_iter`` epochs and every
later (warm) stage at most ``stage_iter``; by default ``STAGE_FRACTION`` of
``max_iter``. Each warm stage starts either with a new optimizer state or with
the last stage's (``CARRY_OPTIMIZER``). This script sweeps both module
constants on a few datasets, with the search otherwise at its defaults (cv=5),
and reports for each setting the whole search in single fits (the estimator at
the chosen alpha on all the training rows for ``max_iter`` epochs, ``tol=0``),
the chosen size and the test score: the measurement behind the defaults.

Data: scikit-learn's digits (``X / 16``, a stratified quarter held out), and
the suite's ``segment`` and ``phoneme`` with ``suite.py``'s split and
preprocessing (at most 5000 training rows). Network: ``(64, 32)``,
``max_iter=60``, batch 128, the estimator's defaults otherwise.

Run from the repository root::

    python benchmarks/path_budget.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
import suite  # noqa: E402

import skgroupsparse.path_cv as path_cv  # noqa: E402
from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
)

ROOT = Path(__file__).resolve().parent.parent
FRACTIONS = (0.1, 0.2, 1 / 3)


def load(name: str) -> dict:
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(
            (X / 16).astype(np.float32), y, test_size=0.25, stratify=y, random_state=0
        )
        return dict(train=(X_tr, y_tr), test=(X_te, y_te), classification=True)
    data = suite.prepare(name, 5000, 5000, 0)
    X = np.concatenate([data["train"][0], data["validation"][0]])
    y = np.concatenate([data["train"][1], data["validation"][1]])
    return dict(train=(X, y), test=data["test"], classification=data["classification"])


def run(data: dict, fraction: float, carry: bool, repeats: int) -> dict:
    cls = GroupLassoMLPClassifier if data["classification"] else GroupLassoMLPRegressor
    net = cls((64, 32), max_iter=60, batch_size=128, random_state=0)
    X, y = data["train"]
    clone(net).set_params(max_iter=2).fit(X[:300], y[:300])  # untimed warm-up
    path_cv.STAGE_FRACTION, path_cv.CARRY_OPTIMIZER = fraction, carry
    try:
        began = time.perf_counter()
        search = RegularizationPathCV(net).fit(X, y)
        seconds = time.perf_counter() - began
    finally:
        path_cv.STAGE_FRACTION, path_cv.CARRY_OPTIMIZER = DEFAULTS
    unit = clone(net).set_params(alpha=search.alpha_, tol=0.0, n_iter_no_change=61)
    single = np.inf
    for _ in range(repeats):
        began = time.perf_counter()
        unit.fit(X, y)
        single = min(single, time.perf_counter() - began)
    best, results = search.best_estimator_, search.cv_results_
    return dict(
        fits=seconds / single,
        score=100 * best.score(*data["test"]),
        neurons=list(best.active_neurons_),
        features=int(best.support_.sum()),
        params=int(best.network_.n_params),
        stages=int(results["stage_fitted"].sum()),
        inserted=int(results["stage_inserted"].sum()),
    )


DEFAULTS = (path_cv.STAGE_FRACTION, path_cv.CARRY_OPTIMIZER)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["digits", "segment", "phoneme"]
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "path_budget")
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    header = (
        "| data | stage fraction | optimizer state | search in single fits | "
        "test score (points) | chosen neurons | features | params | stages "
        "(inserted) |"
    )
    lines = [header, "|---" * 9 + "|"]
    print(header)
    print(lines[1])
    for name in args.datasets:
        data = load(name)
        for fraction in FRACTIONS:
            for carry in (False, True):
                r = run(data, fraction, carry, args.repeats)
                line = (
                    f"| {name} | {fraction:.2f} | {'carried' if carry else 'new'} | "
                    f"{r['fits']:.1f} | {r['score']:.2f} | {r['neurons']} | "
                    f"{r['features']} | {r['params']} | {r['stages']} "
                    f"({r['inserted']}) |"
                )
                print(line, flush=True)
                lines.append(line)
    _report.publish(
        "RegularizationPathCV: a warm stage's budget and optimizer state",
        began,
        lines,
        args.output,
        f"- defaults when run: STAGE_FRACTION={DEFAULTS[0]:.2f}, "
        f"CARRY_OPTIMIZER={DEFAULTS[1]}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
