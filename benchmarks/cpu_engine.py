"""The CPU engine's choices, each against what it replaced, in one run.

What it answers, with the figures the docs and the CHANGELOG quote:

* **threads** (``training.cpu_threads_for``): a fit as shipped (torch on one
  thread while the numba kernels drive; BLAS on all its threads from
  ``training.BLAS_THREADS_FROM`` multiply-adds a batch, one below) against
  - no thread rule at all (both pools as the process has them, the way the
    issue found them fighting), on letter, hidden (256, 128), batch 256;
  - BLAS on all its threads below the size rule too, on a digits fit
    (hidden (64, 32), batch 200, 200 epochs), on a quiet machine and with
    another process keeping one core busy;
  - BLAS on one thread above it, on letter, hidden (512, 256, 128), batch 1024;
* **subnormals**: a fit as shipped (subnormal floats flushed to zero on the
  main thread during the fit) against one without the flush, on letter,
  hidden (512, 256, 128), batch 32, Adam;
* **prox kernel** (``_kernels.prox_l1_group``): one prox of a trained
  (54, 512, 256, 128, 7) network, in Adam's metric and in the identity, with
  the outgoing groups solved as column blocks against the same kernel reading
  every group on its own (the layout of the kernel before the blocks).

Fits are timed whole (3 epochs unless said; 200 for digits), the two variants
interleaved, median of ``--repeats``, each after a 0.5 s pause (an idle BLAS
pool spins about 0.1 s after a call). Run from the repository root::

    python benchmarks/cpu_engine.py

It prints the table and writes it to ``benchmarks/results/cpu_engine.md``
(``--output ''`` writes nothing). The header states how long the run took.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import GroupLassoMLPClassifier, _base, _kernels  # noqa: E402
from skgroupsparse import datasets as sgs_datasets  # noqa: E402
from skgroupsparse.training import OPTIMIZER_CODES, device, loop  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "cpu_engine.md"
PAUSE_S = 0.5


@contextlib.contextmanager
def no_thread_rule():
    """Fits leave every thread pool as the process has it."""

    @contextlib.contextmanager
    def untouched(*args, **kwargs):
        yield

    saved = loop.cpu_threads_for, _base.cpu_threads_for
    loop.cpu_threads_for = _base.cpu_threads_for = untouched
    try:
        yield
    finally:
        loop.cpu_threads_for, _base.cpu_threads_for = saved


@contextlib.contextmanager
def blas_threads_from(work):
    """The size rule moved: BLAS on all threads from ``work`` multiply-adds."""
    saved = device.BLAS_THREADS_FROM
    device.BLAS_THREADS_FROM = work
    try:
        yield
    finally:
        device.BLAS_THREADS_FROM = saved


@contextlib.contextmanager
def no_flush():
    """Fits keep subnormal floats (``torch.set_flush_denormal`` does nothing)."""
    saved = torch.set_flush_denormal
    torch.set_flush_denormal = lambda mode: True
    try:
        yield
    finally:
        torch.set_flush_denormal = saved


def _spin(stop):
    while not stop.is_set():
        pass


@contextlib.contextmanager
def busy_core():
    """One other process keeps a core busy meanwhile (a machine in use)."""
    stop = multiprocessing.Event()
    worker = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join()


def letter():
    X, y = sgs_datasets.load_benchmark("letter")
    return StandardScaler().fit_transform(X).astype(np.float32), y


def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def timed(fit):
    time.sleep(PAUSE_S)
    start = time.perf_counter()
    fit()
    return time.perf_counter() - start


def compare_fits(name, data, hidden, batch, variant, variant_label, repeats, **kw):
    """Median fit times of ours as shipped and of ``variant`` (a context)."""
    X, y = data
    params = dict(
        hidden_layer_sizes=hidden,
        batch_size=batch,
        max_iter=kw.pop("epochs", 3),
        tol=0.0,
        n_iter_no_change=10**6,
        alpha=1e-4,
        random_state=0,
        **kw,
    )

    def ours():
        GroupLassoMLPClassifier(**params).fit(X, y)

    ours()  # untimed: kernels loaded, buffers touched
    shipped, other = [], []
    for _ in range(repeats):
        shipped.append(timed(ours))
        with variant():
            other.append(timed(ours))
    row = dict(
        case=name,
        shipped=statistics.median(shipped),
        variant=variant_label,
        variant_s=statistics.median(other),
    )
    row["ratio"] = row["variant_s"] / row["shipped"]
    return row


def sklearn_time(data, hidden, batch, repeats, epochs=3):
    X, y = data
    mlp = MLPClassifier(
        hidden_layer_sizes=hidden,
        batch_size=batch,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=10**6,
        random_state=0,
    )
    return statistics.median(timed(lambda: mlp.fit(X, y)) for _ in range(repeats))


def prox_rows(repeats):
    """One prox call of a trained (54, 512, 256, 128, 7) net, blocks vs per group."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 54)).astype(np.float32)
    y = rng.integers(0, 7, 4096)
    est = GroupLassoMLPClassifier(
        hidden_layer_sizes=(512, 256, 128), batch_size=64, max_iter=1, random_state=0
    ).fit(X, y)
    trainer = est._trainer
    arrays = trainer.engine._prox_arrays()
    theta, index, sizes, first, blocks, t1, t2, t3, second = arrays[:9]
    z, d, zt, dt, r_state = arrays[9:]
    _, bc2, eps = trainer.optimizer.metric_spec()
    per_group = (_kernels.contiguous_starts(index, sizes), blocks[:0])
    width = index.shape[1]
    rows = []
    for name, metric in (("adam", "Adam's metric"), ("sgd", "identity (SGD)")):
        code = OPTIMIZER_CODES[name]
        times = {"blocks": [], "per group": []}
        for _ in range(repeats * 20):
            for label, (plan, plan_blocks) in (
                ("blocks", (first, blocks)),
                ("per group", per_group),
            ):
                th, r = theta.copy(), r_state.copy()
                start = time.perf_counter()
                _kernels.prox_l1_group(
                    th, index, sizes, plan, plan_blocks, t1, t2, t3, 1e-3, second,
                    code, bc2, eps, np.zeros(width), np.zeros(width), zt, dt, r,
                    1e-12,
                )  # fmt: skip
                times[label].append(time.perf_counter() - start)
        shipped = statistics.median(times["blocks"])
        other = statistics.median(times["per group"])
        rows.append(
            dict(
                case=f"prox of {len(theta) - 1} float32 parameters, {metric}",
                shipped=shipped,
                variant="every group on its own",
                variant_s=other,
                ratio=other / shipped,
            )
        )
    return rows


def format_table(rows):
    lines = [
        "| case | shipped (s) | against | its time (s) | its / shipped | sklearn (s) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        sk = r.get("sklearn")
        lines.append(
            f"| {r['case']} | {r['shipped']:.4g} | {r['variant']} | "
            f"{r['variant_s']:.4g} | {r['ratio']:.2f} | "
            f"{'-' if sk is None else f'{sk:.4g}'} |"
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    r = args.repeats
    began = time.perf_counter()
    letter_data, digits_data = letter(), digits()
    rows = []
    row = compare_fits(
        "letter, (256, 128), batch 256, Adam", letter_data, (256, 128), 256,
        no_thread_rule, "no thread rule (pools as the process has them)", r,
    )  # fmt: skip
    row["sklearn"] = sklearn_time(letter_data, (256, 128), 256, r)
    rows.append(row)
    # the same fit on a quiet machine and with another process on one core
    for case, load in (
        ("digits, (64, 32), batch 200, Adam, 200 epochs", contextlib.nullcontext),
        ("the same, another process busy on one core", busy_core),
    ):
        with load():
            row = compare_fits(
                case, digits_data, (64, 32), 200, lambda: blas_threads_from(0),
                "BLAS on all threads", r, epochs=200,
            )  # fmt: skip
            row["sklearn"] = sklearn_time(digits_data, (64, 32), 200, r, epochs=200)
        rows.append(row)
    for batch, variant, label in (
        (1024, lambda: blas_threads_from(2**62), "BLAS on one thread"),
        (32, no_flush, "subnormals not flushed"),
    ):
        rows.append(
            compare_fits(
                f"letter, (512, 256, 128), batch {batch}, Adam",
                letter_data,
                (512, 256, 128),
                batch,
                variant,
                label,
                r,
            )  # fmt: skip
        )
    rows.extend(prox_rows(r))
    text = "\n".join(
        [
            "# The CPU engine's choices against what they replaced",
            "",
            f"- command: `{_report.command()}`",
            *_report.machine_lines(),
            f"- threads: torch.get_num_threads()={torch.get_num_threads()} "
            "outside our fits; fits of 3 epochs unless said, median of "
            f"{r}, the two variants interleaved, a {PAUSE_S} s pause before each; "
            f"prox calls: median of {20 * r}; the whole run took "
            f"{time.perf_counter() - began:.0f} s",
            "- its / shipped above 1: the shipped choice is faster",
            "",
            *format_table(rows),
        ]
    )
    print(text)
    _report.write_markdown(text, args.output)


if __name__ == "__main__":
    main()
