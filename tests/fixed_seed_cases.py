"""Fixed-seed fits whose CPU predictions are recorded, to keep fits the same.

``python tests/fixed_seed_cases.py`` records the predictions of every case in
``tests/data/fixed_seed_predictions.npz``; ``tests/test_fixed_seed.py`` refits
each case and compares. Record only on purpose: when a change is meant to
change fits, say so in its commit and in the CHANGELOG.

The cases cover every CPU code path of a step: the four optimizers, both prox
modes, the fused prox kernel and the tensor prox (nonconvex penalties), RVSM,
removal while training, switch networks, regression, and a network wide enough
that its matrix products are multi-threaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

RECORD = Path(__file__).resolve().parent / "data" / "fixed_seed_predictions.npz"


def _data(kind: str, n: int = 400, d: int = 20):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, 3))
    W[d // 2 :] = 0.0  # half the features are noise
    Z = np.tanh(X @ W)
    if kind == "classification":
        return X, Z.argmax(axis=1)
    return X, Z.sum(axis=1)


def cases() -> dict:
    """``{name: (estimator, task)}``: unfitted estimators with fixed seeds."""
    from skgroupsparse import (
        GroupLassoMLPClassifier,
        GroupLassoMLPRegressor,
        ShrinkNetClassifier,
        ShrinkNetRegressor,
    )

    common = dict(random_state=0, max_iter=6, batch_size=64, alpha=3e-3)
    small = dict(hidden_layer_sizes=(32, 16), **common)
    clf = "classification"
    return {
        "adam_group": (GroupLassoMLPClassifier(**small), clf),
        "adam_sparse_group": (
            GroupLassoMLPClassifier(penalty="sparse_group_lasso", **small),
            clf,
        ),
        "sgd_sparse_group": (
            GroupLassoMLPClassifier(
                optimizer="sgd",
                penalty="sparse_group_lasso",
                learning_rate_init=0.05,
                **small,
            ),
            clf,
        ),
        "adamax_group": (GroupLassoMLPClassifier(optimizer="adamax", **small), clf),
        "rmsprop_l1": (
            GroupLassoMLPClassifier(optimizer="rmsprop", penalty="l1", **small),
            clf,
        ),
        "adam_decoupled": (GroupLassoMLPClassifier(prox="decoupled", **small), clf),
        "adam_incoming_tanh": (
            GroupLassoMLPClassifier(groups="incoming", activation="tanh", **small),
            clf,
        ),
        "adam_remove_dead": (
            GroupLassoMLPClassifier(remove_dead=True, **{**small, "alpha": 2e-2}),
            clf,
        ),
        "sgd_tl1": (
            GroupLassoMLPClassifier(
                optimizer="sgd", penalty="tl1", learning_rate_init=0.05, **small
            ),
            clf,
        ),
        "adam_rvsm": (
            GroupLassoMLPClassifier(solver="rvsm", penalty="sparse_group_tl1", **small),
            clf,
        ),
        "regressor_adam": (GroupLassoMLPRegressor(**small), "regression"),
        "regressor_sgd": (
            GroupLassoMLPRegressor(optimizer="sgd", learning_rate_init=0.01, **small),
            "regression",
        ),
        "shrinknet_classifier": (
            ShrinkNetClassifier(hidden_layer_sizes=(32, 16), **common),
            clf,
        ),
        "shrinknet_regressor": (
            ShrinkNetRegressor(hidden_layer_sizes=(32, 16), **common),
            "regression",
        ),
        # wide enough for multi-threaded matrix products
        "wide_adam": (
            GroupLassoMLPClassifier(
                hidden_layer_sizes=(256, 128),
                **{**common, "batch_size": 256, "max_iter": 3},
            ),
            clf,
        ),
        "wide_sgd": (
            GroupLassoMLPClassifier(
                hidden_layer_sizes=(256, 128),
                optimizer="sgd",
                learning_rate_init=0.02,
                **{**common, "batch_size": 256, "max_iter": 3},
            ),
            clf,
        ),
    }


def predictions(estimator, task: str) -> np.ndarray:
    """Fit ``estimator`` on its case's data; its outputs on that data."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y = _data(task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    if task == "classification":
        return estimator.predict_proba(X)
    return estimator.predict(X)


def record() -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    out = {name: predictions(*case) for name, case in cases().items()}
    np.savez_compressed(RECORD, **out)
    print(f"recorded {len(out)} cases in {RECORD}")


if __name__ == "__main__":
    record()
