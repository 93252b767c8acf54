"""Does the chosen size say which inputs matter? Two recovery problems.

1. A teacher network (``datasets.make_teacher_network``): 30 standard normal
   inputs of which 5 are read, one tanh hidden layer of width 6, noise 0.1,
   3000 training and 1000 test rows (``random_state=0``). Searched by
   ``make_pipeline(StandardScaler(), RegularizationPathCV(
   GroupLassoMLPRegressor((32, 16), max_iter=80, random_state=0), cv=3))``,
   every search parameter at its default, against scikit-learn's dense
   ``MLPRegressor((32, 16), early_stopping=True)``. Issue 23's lines: F1 of the
   kept inputs against the 5 informative >= 0.9, R^2 within 0.02 of the dense
   MLP's, first hidden layer <= 24 neurons.
2. ``make_classification(n_samples=2000, n_features=500, n_informative=5,
   n_redundant=15, random_state=0)``, standardised, 75/25 stratified split,
   ``GroupLassoMLPClassifier((64,), random_state=0)`` searched with cv=3,
   against ``MLPClassifier((64,), early_stopping=True)``. Issue 23's line:
   test accuracy at least the dense MLP's with at most 30 inputs kept.

Run from the repository root::

    python benchmarks/feature_selection.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import (  # noqa: E402
    GroupLassoMLPClassifier,
    GroupLassoMLPRegressor,
    RegularizationPathCV,
)
from skgroupsparse.datasets import make_teacher_network  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def teacher() -> list[str]:
    X, y, truth = make_teacher_network(4000, 30, 5, (6,), noise=0.1, random_state=0)
    X_tr, X_te, y_tr, y_te = X[:3000], X[3000:], y[:3000], y[3000:]
    net = GroupLassoMLPRegressor((32, 16), max_iter=80, random_state=0)
    began = time.perf_counter()
    pipe = make_pipeline(StandardScaler(), RegularizationPathCV(net, cv=3))
    pipe.fit(X_tr, y_tr)
    seconds = time.perf_counter() - began
    model = pipe[-1].best_estimator_
    informative = np.zeros(30, dtype=bool)
    informative[truth["informative"]] = True
    f1 = f1_score(informative, model.support_)
    dense = make_pipeline(
        StandardScaler(),
        MLPRegressor(hidden_layer_sizes=(32, 16), early_stopping=True, random_state=0),
    ).fit(X_tr, y_tr)
    ours, theirs = pipe.score(X_te, y_te), dense.score(X_te, y_te)
    first = model.active_neurons_[0]
    holds = f1 >= 0.9 and ours >= theirs - 0.02 and first <= 24
    return [
        "## Teacher network (30 inputs, 5 read, tanh width 6)",
        "",
        "| | test R^2 | kept inputs (informative kept) | F1 of kept inputs | "
        "live neurons | search s |",
        "|---|---|---|---|---|---|",
        f"| ours | {ours:.4f} | {int(model.support_.sum())} "
        f"({int((model.support_ & informative).sum())} of 5) | {f1:.3f} | "
        f"{model.active_neurons_} | {seconds:.1f} |",
        f"| dense MLPRegressor | {theirs:.4f} | 30 | - | [32, 16] | - |",
        "",
        f"F1 >= 0.9, R^2 within 0.02 of the dense MLP's, first layer <= 24: "
        f"{'holds' if holds else 'does not hold'}",
    ]


def many_inputs() -> list[str]:
    X, y = make_classification(
        n_samples=2000,
        n_features=500,
        n_informative=5,
        n_redundant=15,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    net = GroupLassoMLPClassifier((64,), random_state=0)
    began = time.perf_counter()
    search = RegularizationPathCV(net, cv=3).fit(X_tr, y_tr)
    seconds = time.perf_counter() - began
    model = search.best_estimator_
    dense = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, random_state=0)
    dense.fit(X_tr, y_tr)
    ours, theirs = search.score(X_te, y_te), dense.score(X_te, y_te)
    kept = int(model.support_.sum())
    holds = ours >= theirs and kept <= 30
    inserted = int(search.cv_results_["stage_inserted"].sum())
    return [
        "## make_classification: 500 inputs, 5 informative, 15 redundant",
        "",
        "| | test accuracy | kept inputs | live neurons | alphas inserted | search s |",
        "|---|---|---|---|---|---|",
        f"| ours | {ours:.4f} | {kept} | {model.active_neurons_} | {inserted} | "
        f"{seconds:.1f} |",
        f"| dense MLPClassifier | {theirs:.4f} | 500 | [64] | - | - |",
        "",
        f"accuracy >= the dense MLP's with <= 30 inputs: "
        f"{'holds' if holds else 'does not hold'}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "feature_selection")
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()
    body = [*teacher(), "", *many_inputs()]
    print("\n".join(body))
    _report.publish("Feature selection by the size search", began, body, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
