"""Fit time of GroupLassoMLPClassifier against scikit-learn's MLPClassifier.

Both estimators get the same settings: hidden layers, optimizer, step size,
batch size, a fixed number of epochs with no early stopping, and the same
``random_state``. Each (dataset, batch size) cell fits ours, then sklearn,
``--repeats`` times in turn, and reports the median fit time of each and their
ratio (ours / sklearn; below 1 means ours is faster). Test accuracy of both and
the live neurons of ours are reported beside the times, so a speed-up that
comes from training less, or worse, shows.

The table is printed and written to ``benchmarks/results/fit_speed.md`` with
the machine, the library versions, the thread counts and the command.

Run from the repository root::

    python benchmarks/fit_speed.py
    python benchmarks/fit_speed.py --datasets pendigits magic --batch-sizes 32
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import GroupLassoMLPClassifier, datasets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "fit_speed.md"
DEFAULT_DATASETS = ["pendigits", "optdigits", "satimage", "magic"]
TEST_FRACTION = 0.25
SPLIT_SEED = 0


def make_estimators(args, ours_class, batch_size):
    """``{"ours": ..., "sklearn": ...}`` unfitted, with the same settings."""
    common = dict(
        hidden_layer_sizes=tuple(args.hidden_layer_sizes),
        learning_rate_init=args.learning_rate_init,
        batch_size=batch_size,
        max_iter=args.epochs,
        early_stopping=False,
        n_iter_no_change=args.epochs + 1,
        tol=0.0,
        random_state=args.random_state,
    )
    device = {} if args.device is None else {"device": args.device}
    estimators = {
        "ours": ours_class(
            optimizer=args.optimizer, alpha=args.alpha, **device, **common
        )
    }
    # sklearn's ``alpha`` is an L2 penalty: left at its default (1e-4)
    estimators["sklearn"] = MLPClassifier(solver=args.optimizer, **common)
    return estimators


def split(X, y, max_train, dtype, seed=SPLIT_SEED):
    """Shuffle, hold out ``TEST_FRACTION`` for testing, cap the training rows.

    The features are standardized (scaler fitted on the training rows) and
    cast to ``dtype``.
    """
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(TEST_FRACTION * len(y)))
    test, train = order[:n_test], order[n_test:][:max_train]
    scaler = StandardScaler().fit(X[train])
    X_train = scaler.transform(X[train]).astype(dtype)
    X_test = scaler.transform(X[test]).astype(dtype)
    return X_train, y[train], X_test, y[test]


def timed_fit(estimator, X, y):
    """Fit a clone of ``estimator``; return it and the wall time in seconds."""
    model = clone(estimator)
    start = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - start


def run_cell(estimators, X_train, y_train, X_test, y_test, repeats, epochs):
    """Interleave fits of ``{"ours": ..., "sklearn": ...}``; return table cells.

    Every fit is scored on the test set (untimed): with a fixed
    ``random_state`` the repeats should agree, and a note says when they do not.
    """
    times = {key: [] for key in estimators}
    accuracies = {key: [] for key in estimators}
    models = {}
    row = {"notes": []}
    for _ in range(repeats):
        for key, estimator in estimators.items():
            models[key], seconds = timed_fit(estimator, X_train, y_train)
            times[key].append(seconds)
            accuracies[key].append(np.mean(models[key].predict(X_test) == y_test))
            note = f"{key} ran {models[key].n_iter_} epochs, not {epochs}"
            if models[key].n_iter_ != epochs and note not in row["notes"]:
                row["notes"].append(note)
    for key in estimators:
        row[f"{key}_s"] = statistics.median(times[key])
        row[f"acc_{key}"] = float(accuracies[key][0])
        if len(set(accuracies[key])) > 1:
            varied = ", ".join(f"{a:.4f}" for a in accuracies[key])
            row["notes"].append(f"{key} accuracy varied over repeats: {varied}")
    if "ours" in estimators:
        row["ratio"] = row["ours_s"] / row["sklearn_s"]
        row["active neurons"] = list(models["ours"].active_neurons_)
    return row


def machine_header(args, device):
    """Lines that say where and how the table was made."""
    command = shlex.join(["python", *sys.argv])
    blas = os.environ.get("OMP_NUM_THREADS", "unset")
    if args.blas_threads is not None:
        blas += f", BLAS pools limited to {args.blas_threads} by --blas-threads"
    threads = "torch's default"
    if args.torch_threads is not None:
        threads = "set by --torch-threads"
    title = "GroupLassoMLPClassifier vs sklearn MLPClassifier"
    return [
        f"# Fit speed: {title}",
        "",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- command: `{command}`",
        f"- machine: {platform.platform()}, platform.processor()="
        f"{platform.processor()!r}, CPU {_report.cpu_model()!r}, "
        f"os.cpu_count()={os.cpu_count()}, load average before the run "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
        f"- threads: torch.get_num_threads()={torch.get_num_threads()} "
        f"({threads}), OMP_NUM_THREADS={blas}; sklearn runs with these, ours "
        "runs fits this small on one torch and one BLAS thread by itself",
        f"- settings: hidden_layer_sizes={tuple(args.hidden_layer_sizes)}, "
        f"optimizer={args.optimizer!r} (sklearn solver={args.optimizer!r}), "
        f"learning_rate_init={args.learning_rate_init}, {args.epochs} epochs "
        f"(early_stopping=False, n_iter_no_change={args.epochs + 1}, tol=0), "
        f"random_state={args.random_state}; ours alpha={args.alpha} "
        f"(group lasso), device={device!r}; sklearn alpha=1e-4 (its L2 default)",
        f"- data: StandardScaler fitted on the training rows, X cast to "
        f"{args.dtype} for both (ours trains in float32, sklearn in X's dtype); "
        f"{TEST_FRACTION:.0%} of each dataset held out for the test accuracy, "
        f"training rows capped at {args.max_train}",
        f"- times: median of {args.repeats} fits each, ours and sklearn "
        f"interleaved; ratio = ours_s / sklearn_s (below 1: ours is faster)",
        "",
    ]


COLUMNS = [
    "dataset",
    "n_train",
    "n_features",
    "batch",
    "epochs",
    "ours_s",
    "sklearn_s",
    "ratio",
    "acc_ours",
    "acc_sklearn",
    "active neurons",
]


def format_row(row):
    """One markdown table line (missing values as '-')."""
    formats = {
        "ours_s": "{:.3f}",
        "sklearn_s": "{:.3f}",
        "ratio": "{:.2f}",
        "acc_ours": "{:.4f}",
        "acc_sklearn": "{:.4f}",
    }
    cells = []
    for column in COLUMNS:
        value = row.get(column)
        if value is None:
            cells.append("-")
        elif column in formats:
            cells.append(formats[column].format(value))
        else:
            cells.append(str(value))
    return "| " + " | ".join(cells) + " |"


TABLE_HEAD = [
    "| " + " | ".join(COLUMNS) + " |",
    "|" + "|".join("---" if c == "dataset" else "---:" for c in COLUMNS) + "|",
]


def format_notes(rows):
    """Lines flagging cells where a fit did not run the epochs it was given."""
    notes = [
        f"- {r['dataset']}, batch {r['batch']}: {n}" for r in rows for n in r["notes"]
    ]
    return ["", "Notes:", *notes] if notes else []


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 256])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=5000)
    parser.add_argument(
        "--hidden-layer-sizes", nargs="+", type=int, default=[100], metavar="N"
    )
    parser.add_argument("--learning-rate-init", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=1e-4, help="ours only")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument(
        "--device",
        default=None,
        help="passed to ours as device= (None: its own default)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit every BLAS/OpenMP pool to N threads with threadpoolctl for "
        "the whole run, sklearn included (default: leave them)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads(N) first (default: torch's own choice)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="dtype of X given to both; ours always trains in float32, sklearn "
        "in the dtype of X",
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="markdown file to write ('' to write none)",
    )
    args = parser.parse_args(argv)
    counts = [args.epochs, args.repeats, args.max_train, *args.batch_sizes]
    if args.torch_threads is not None:
        counts.append(args.torch_threads)
    if min(counts) < 1:
        parser.error(
            "--epochs, --repeats, --max-train, --batch-sizes and --torch-threads "
            "must be >= 1"
        )

    return args


def main(argv=None):
    args = parse_args(argv)
    if args.blas_threads is None:
        return _run(args)
    with threadpool_limits(limits=args.blas_threads):
        return _run(args)


def _run(args):
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    ours_class = GroupLassoMLPClassifier
    for name in args.datasets:
        spec = datasets.BENCHMARKS.get(name)
        if spec is None or spec.task != "classification":
            known = [
                k for k, v in datasets.BENCHMARKS.items() if v.task == "classification"
            ]
            sys.exit(
                f"--datasets: {name!r} is not a classification benchmark; "
                f"choose from {', '.join(known)}"
            )
    warnings.simplefilter("ignore", ConvergenceWarning)
    device = args.device
    if device is None:
        device = ours_class().get_params().get("device")
    header = machine_header(args, device)
    print("\n".join(header), flush=True)

    rows = []
    for name in args.datasets:
        X, y = datasets.load_benchmark(name)
        X_train, y_train, X_test, y_test = split(X, y, args.max_train, args.dtype)
        for batch_size in args.batch_sizes:
            estimators = make_estimators(args, ours_class, batch_size)
            if not rows:
                # one untimed short fit of each: first-call costs of torch, BLAS
                for estimator in estimators.values():
                    clone(estimator).set_params(max_iter=1).fit(X_train, y_train)
                print("\n".join(TABLE_HEAD), flush=True)
            row = dict(
                dataset=name,
                n_train=len(y_train),
                n_features=X_train.shape[1],
                batch=batch_size,
                epochs=args.epochs,
            )
            row.update(
                run_cell(
                    estimators,
                    X_train,
                    y_train,
                    X_test,
                    y_test,
                    args.repeats,
                    args.epochs,
                )
            )
            rows.append(row)
            print(format_row(row), flush=True)

    notes = format_notes(rows)
    if notes:
        print("\n".join(notes))
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        table = TABLE_HEAD + [format_row(row) for row in rows] + notes
        output.write_text("\n".join(header + table) + "\n")
        print(f"\nwritten to {output}")


if __name__ == "__main__":
    main()
