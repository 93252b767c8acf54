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
        # added before the engine split of issue 15: every penalty, the
        # nonconvex sparse group lasso by RVSM, removal inside an epoch, early
        # stopping, partial removal of features, both ShrinkNet deaths and
        # switch penalties, invscaling and adaptive schedules
        **{
            f"adam_{name}": (
                GroupLassoMLPClassifier(penalty=name, **small),
                clf,
            )
            for name in ("l0", "l_half", "group_l0")
        },
        "adam_decoupled_group_tl1": (
            GroupLassoMLPClassifier(penalty="group_tl1", prox="decoupled", **small),
            clf,
        ),
        "adam_remove_dead_pruned": (
            GroupLassoMLPClassifier(
                remove_dead=True, **{**small, "alpha": 0.05, "max_iter": 10}
            ),
            clf,
        ),
        "shrinknet_pruned": (
            ShrinkNetClassifier(
                hidden_layer_sizes=(32, 16), **{**common, "alpha": 0.3, "max_iter": 10}
            ),
            clf,
        ),
        "sgd_l1_l2": (
            GroupLassoMLPClassifier(
                optimizer="sgd", penalty="l1_l2", learning_rate_init=0.05, **small
            ),
            clf,
        ),
        "rmsprop_sparse_group_l0_rvsm": (
            GroupLassoMLPClassifier(
                optimizer="rmsprop",
                solver="rvsm",
                penalty="sparse_group_l0",
                **{**small, "alpha": 0.01, "max_iter": 10},
            ),
            clf,
        ),
        "sgd_sparse_group_l1_l2_rvsm": (
            GroupLassoMLPRegressor(
                optimizer="sgd",
                solver="rvsm",
                penalty="sparse_group_l1_l2",
                learning_rate_init=0.01,
                **small,
            ),
            "regression",
        ),
        "adamax_remove_every_2": (
            GroupLassoMLPClassifier(
                optimizer="adamax",
                remove_dead=True,
                remove_every=2,
                penalty="sparse_group_lasso",
                **{**small, "alpha": 0.1, "max_iter": 10},
            ),
            clf,
        ),
        "sgd_incoming_remove_dead": (
            GroupLassoMLPRegressor(
                optimizer="sgd",
                groups="incoming",
                remove_dead=True,
                learning_rate_init=0.01,
                learning_rate="invscaling",
                **{**small, "alpha": 0.2, "max_iter": 10},
            ),
            "regression",
        ),
        "adam_early_stopping": (
            GroupLassoMLPClassifier(
                early_stopping=True,
                n_iter_no_change=2,
                tol=1e-2,
                **{**small, "alpha": 0.05, "max_iter": 12},
            ),
            clf,
        ),
        "adam_adaptive_plateau": (
            GroupLassoMLPRegressor(
                learning_rate="adaptive",
                n_iter_no_change=1,
                tol=1e-1,
                **{**small, "max_iter": 10},
            ),
            "regression",
        ),
        "shrinknet_sign_variance": (
            ShrinkNetClassifier(
                hidden_layer_sizes=(32, 16),
                switch_death="sign_variance",
                inertia=0.5,
                **{**common, "alpha": 0.1, "learning_rate_init": 0.03, "max_iter": 10},
            ),
            clf,
        ),
        "shrinknet_tl1_sgd": (
            ShrinkNetRegressor(
                hidden_layer_sizes=(32, 16),
                switch_penalty="tl1",
                optimizer="sgd",
                learning_rate_init=0.01,
                remove_every=3,
                **{**common, "alpha": 0.2, "max_iter": 10},
            ),
            "regression",
        ),
        "shrinknet_l_half_early_stopping": (
            ShrinkNetClassifier(
                hidden_layer_sizes=(32, 16),
                switch_penalty="l_half",
                early_stopping=True,
                n_iter_no_change=2,
                **{**common, "max_iter": 10},
            ),
            clf,
        ),
    }


ENGINES = ("numba", "torch")


def key(name: str, engine: str, what: str = "outputs") -> str:
    """The record's key of one array: the numba outputs keep the case name."""
    if engine == "numba" and what == "outputs":
        return name
    return f"{name}:{engine}:{what}"


def predictions(
    estimator, task: str, engine: str = "numba", dtype: str = "float64"
) -> dict:
    """Fit ``estimator`` on its case's data with one CPU step engine.

    The record is trained in float64 (``dtype``): in float32 the summation
    order of another CPU's kernels moves the fifth digit (see
    ``tests/test_fixed_seed.py``).

    Returns
    -------
    dict
        ``outputs`` (``predict_proba`` or ``predict`` on the training data)
        and ``active`` (``active_neurons_``).
    """
    import warnings

    import torch
    from sklearn.exceptions import ConvergenceWarning

    from skgroupsparse.training import use_dtype, use_engine

    X, y = _data(task)
    with (
        use_engine(engine),
        use_dtype(getattr(torch, dtype)),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    outputs = (
        estimator.predict_proba(X) if task == "classification" else estimator.predict(X)
    )
    return {"outputs": outputs, "active": np.asarray(estimator.active_neurons_)}


def record(overwrite: bool = False) -> None:
    """Add the arrays of the cases missing from the record (all: ``overwrite``)."""
    from sklearn.base import clone

    RECORD.parent.mkdir(parents=True, exist_ok=True)
    out = {} if overwrite or not RECORD.exists() else dict(np.load(RECORD))
    added = 0
    for name, (estimator, task) in cases().items():
        for engine in ENGINES:
            if key(name, engine) in out and key(name, engine, "active") in out:
                continue
            got = predictions(clone(estimator), task, engine)
            for what, value in got.items():
                out[key(name, engine, what)] = value
            added += 1
    np.savez_compressed(RECORD, **out)
    print(f"recorded {added} fits in {RECORD} ({len(out)} arrays)")


def dump(path: str, dtype: str) -> None:
    """Write every case's arrays, fitted in ``dtype``, to ``path`` (``.npz``).

    For measuring how far fits move between kernels: run it under other
    kernel choices (``ATEN_CPU_CAPABILITY``, ``OPENBLAS_CORETYPE``,
    ``MKL_ENABLE_INSTRUCTIONS``, thread counts) and compare the files
    (``benchmarks/fixed_seed_spread.py``).
    """
    from sklearn.base import clone

    out = {}
    for name, (estimator, task) in cases().items():
        for engine in ENGINES:
            got = predictions(clone(estimator), task, engine, dtype)
            for what, value in got.items():
                out[key(name, engine, what)] = value
    np.savez_compressed(path, **out)


if __name__ == "__main__":
    import sys

    if "--dump" in sys.argv:
        at = sys.argv.index("--dump")
        dump(
            sys.argv[at + 1], sys.argv[at + 2] if len(sys.argv) > at + 2 else "float64"
        )
    else:
        record(overwrite="--overwrite" in sys.argv)
