"""Training throughput of GroupLassoMLPClassifier against a bare torch loop on a GPU.

What it answers: how many training samples per second our estimator
(``penalty="group_lasso"``, ``optimizer="adam"``) pushes through a wide MLP on
one GPU, with the exact prox (``prox="preconditioned"``, the default) and with
the Euclidean prox after the Adam step (``prox="decoupled"``), against the
fastest plain loop a user would write: ``nn.Sequential`` of Linear + ReLU layers
of the same widths, ``torch.optim.Adam(fused=True)``, cross-entropy, no prox,
the same batch size, the data already on the device and shuffled each epoch
with ``torch.randperm`` on the device.

The problem is synthetic: ``--rows`` x ``--features`` float32 Gaussian rows,
labelled by a fixed random teacher (``argmax(tanh(X A) B)``) into ``--classes``
classes, so the task is learnable; generated with a seeded ``torch.Generator``
on the CPU and moved to the device once. For every batch size each contender
first runs one untimed warm-up epoch on 20,000 rows (CUDA context, cuBLAS
handles, kernel loading, numba compilation on the CPU), then trains for
``--epochs`` epochs, timed:

* steady samples/s: rows over the median epoch time (ours: ``history_[i]
  ["seconds"]``; the bare loop: wall time between ``torch.cuda.synchronize()``
  calls at the epoch ends);
* whole-fit samples/s: rows x epochs over the wall time of ``fit`` (ours: input
  validation, moving X to the device, compaction included; the bare loop: the
  model and optimizer built, then the epochs);
* the ratio of the steady samples/s to the bare loop's at the same batch;
* the peak GPU memory of the contender (``torch.cuda.max_memory_allocated``
  after a reset, less what was allocated before; it includes the training data
  on the device for every contender);
* the training accuracy on the first 100,000 rows (untimed), so that a speed-up
  that comes from training less shows.

After the table it says whether the acceptance holds: ours with
``prox="preconditioned"`` at least 0.8 x the bare loop's steady samples/s at
every batch size, and ours with ``prox="decoupled"`` at least 1.0 x (no
slower). ``--profile`` runs ``torch.profiler`` over about 20 steps of ours
(preconditioned) at the largest batch and prints the top 15 ops by CUDA time
(CPU time on the CPU).

Run from the repository root (meant for one NVIDIA GPU; not run on one yet)::

    python benchmarks/gpu_throughput.py
    python benchmarks/gpu_throughput.py --profile --output ''
    python benchmarks/gpu_throughput.py --device cpu --rows 20000 --hidden 64,64 \\
        --batch-sizes 1024 --epochs 1 --output /tmp/gt.md
"""

from __future__ import annotations

import argparse
import datetime
import gc
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from skgroupsparse import GroupLassoMLPClassifier  # noqa: E402
from skgroupsparse.training import resolve_device  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "gpu_throughput.md"
WARMUP_ROWS = 20_000
ACCURACY_ROWS = 100_000
PROFILE_STEPS = 20
TEACHER_WIDTH = 64
BARE = "bare torch loop"
OURS = {"preconditioned": "ours preconditioned", "decoupled": "ours decoupled"}
#: acceptance: smallest ratio of steady samples/s to the bare loop's
ACCEPT = {"preconditioned": 0.8, "decoupled": 1.0}


def make_data(rows, features, classes, seed):
    """Gaussian rows labelled by a fixed random teacher ``argmax(tanh(X A) B)``.

    Parameters
    ----------
    rows, features, classes : int
        Shape of ``X`` and number of classes.
    seed : int
        Seeds a CPU ``torch.Generator``: the same data on every device.

    Returns
    -------
    X : Tensor of shape (rows, features), float32, on the CPU
    y : Tensor of shape (rows,), int64, on the CPU
    """
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(rows, features, generator=gen)
    A = torch.randn(features, TEACHER_WIDTH, generator=gen) / features**0.5
    B = torch.randn(TEACHER_WIDTH, classes, generator=gen)
    y = (torch.tanh(X @ A) @ B).argmax(dim=1)
    return X, y


def synchronize(device):
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_adam(params, lr, device):
    """``torch.optim.Adam(fused=True)``; unfused where this build cannot fuse.

    Returns
    -------
    optimizer : torch.optim.Adam
    fused : bool
    """
    try:
        return torch.optim.Adam(params, lr=lr, fused=True), True
    except (RuntimeError, ValueError):
        if device.type == "cuda":
            raise
        return torch.optim.Adam(params, lr=lr, fused=False), False


def bare_net(features, hidden, classes):
    """``nn.Sequential`` of Linear + ReLU layers, a Linear output layer."""
    layers, width = [], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def bare_fit(X, y, classes, args, batch, epochs, device):
    """Train the bare loop on ``X``, ``y`` (already on ``device``).

    Returns
    -------
    model : nn.Sequential
    epoch_seconds : list of float
    seconds : float
        Wall time of the whole run: model and optimizer built, all epochs.
    fused : bool
        Whether Adam ran fused.
    """
    synchronize(device)
    began = time.perf_counter()
    torch.manual_seed(args.random_state)
    model = bare_net(X.shape[1], args.hidden, classes).to(device)
    optimizer, fused = make_adam(model.parameters(), args.learning_rate_init, device)
    gen = torch.Generator(device=device).manual_seed(args.random_state)
    n = X.shape[0]
    epoch_seconds = []
    for _ in range(epochs):
        start_epoch = time.perf_counter()
        perm = torch.randperm(n, device=device, generator=gen)
        X_s, y_s = X.index_select(0, perm), y.index_select(0, perm)
        for start in range(0, n, batch):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(
                model(X_s[start : start + batch]), y_s[start : start + batch]
            )
            loss.backward()
            optimizer.step()
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - start_epoch)
    return model, epoch_seconds, time.perf_counter() - began, fused


def bare_accuracy(model, X, y, chunk=65536):
    """Training accuracy of the bare loop's model on ``X``, ``y`` (on its device)."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            pred = model(X[start : start + chunk]).argmax(dim=1)
            correct += int((pred == y[start : start + chunk]).sum())
    return correct / X.shape[0]


def ours_estimator(args, prox, batch, epochs):
    """Our classifier with the benchmark's settings, unfitted."""
    return GroupLassoMLPClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        penalty="group_lasso",
        optimizer="adam",
        prox=prox,
        alpha=args.alpha,
        learning_rate_init=args.learning_rate_init,
        batch_size=batch,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        early_stopping=False,
        random_state=args.random_state,
        device=args.device,
    )


class PeakMemory:
    """Peak GPU memory (MiB) of a block, less what was allocated before it.

    ``None`` on the CPU.
    """

    def __init__(self, device):
        self.device = device
        self.mib = None

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.mib = (peak - self.base) / 2**20
        return False


def run_bare(X, y, classes, args, batch, device):
    """Warm up, then time the bare loop at ``batch``; one table row."""
    n_warm = min(WARMUP_ROWS, X.shape[0])
    X_w, y_w = X[:n_warm].to(device), y[:n_warm].to(device)
    bare_fit(X_w, y_w, classes, args, batch, 1, device)
    del X_w, y_w
    with PeakMemory(device) as memory:
        # the data is on the device before the clock starts (counted in memory)
        X_d, y_d = X.to(device), y.to(device)
        model, epoch_seconds, seconds, fused = bare_fit(
            X_d, y_d, classes, args, batch, args.epochs, device
        )
    n_acc = min(ACCURACY_ROWS, X.shape[0])
    accuracy = bare_accuracy(model, X_d[:n_acc], y_d[:n_acc])
    del model, X_d, y_d
    notes = [] if fused else ["Adam not fused (this build cannot fuse here)"]
    return make_row(
        batch, BARE, X.shape[0], epoch_seconds, seconds, memory.mib, accuracy, notes
    )


def run_ours(X_np, y_np, args, prox, batch, device):
    """Warm up, then time our fit at ``batch`` with ``prox``; one table row."""
    n_warm = min(WARMUP_ROWS, X_np.shape[0])
    ours_estimator(args, prox, batch, 1).fit(X_np[:n_warm], y_np[:n_warm])
    estimator = ours_estimator(args, prox, batch, args.epochs)
    with PeakMemory(device) as memory:
        synchronize(device)
        began = time.perf_counter()
        estimator.fit(X_np, y_np)
        synchronize(device)
        seconds = time.perf_counter() - began
    epoch_seconds = [row["seconds"] for row in estimator.history_]
    n_acc = min(ACCURACY_ROWS, X_np.shape[0])
    accuracy = float(np.mean(estimator.predict(X_np[:n_acc]) == y_np[:n_acc]))
    notes = []
    if estimator.n_iter_ != args.epochs:
        notes.append(f"ran {estimator.n_iter_} epochs, not {args.epochs}")
    del estimator
    return make_row(
        batch,
        OURS[prox],
        X_np.shape[0],
        epoch_seconds,
        seconds,
        memory.mib,
        accuracy,
        notes,
        epochs=len(epoch_seconds),
    )


def make_row(
    batch, contender, rows, epoch_seconds, seconds, mib, accuracy, notes, epochs=None
):
    """A table row from the timings of one contender."""
    epochs = len(epoch_seconds) if epochs is None else epochs
    steady = rows / statistics.median(epoch_seconds) if epoch_seconds else None
    return dict(
        batch=batch,
        contender=contender,
        steady=steady,
        whole=rows * epochs / seconds,
        epoch_seconds=epoch_seconds,
        mib=mib,
        accuracy=accuracy,
        notes=notes,
    )


COLUMNS = [
    "batch",
    "contender",
    "samples/s (steady epochs)",
    "samples/s (whole fit)",
    "ratio to bare (steady)",
    "peak GPU MiB",
    "train acc (100k rows)",
    "epoch s",
]
TABLE_HEAD = [
    "| " + " | ".join(COLUMNS) + " |",
    "|---:|---|" + "---:|" * (len(COLUMNS) - 2),
]


def format_row(row):
    """One markdown table line (missing values as '-')."""

    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    return (
        "| "
        + " | ".join(
            [
                str(row["batch"]),
                row["contender"],
                num(row["steady"], ",.0f"),
                num(row["whole"], ",.0f"),
                num(row.get("ratio"), ".2f"),
                num(row["mib"], ",.0f"),
                num(row["accuracy"], ".4f"),
                ", ".join(f"{s:.3f}" for s in row["epoch_seconds"]),
            ]
        )
        + " |"
    )


def acceptance(rows, batch_sizes):
    """Lines saying whether ours reaches the target ratios at every batch."""
    lines, holds = ["", "Acceptance (steady samples/s, ratio to the bare loop):"], True
    for prox, least in ACCEPT.items():
        for batch in batch_sizes:
            row = next(
                r for r in rows if r["batch"] == batch and r["contender"] == OURS[prox]
            )
            ratio = row.get("ratio")
            ok = ratio is not None and ratio >= least
            holds &= ok
            shown = "-" if ratio is None else f"{ratio:.2f}"
            lines.append(
                f"- {OURS[prox]}, batch {batch}: {shown} >= {least:.1f}: "
                f"{'yes' if ok else 'NO'}"
            )
    lines.append(f"- acceptance {'HOLDS' if holds else 'FAILS'}")
    return lines


def header_lines(args, device, data_note, tail=""):
    """Lines that say where and how the table was made."""
    if device.type == "cuda":
        matmul = torch.backends.cuda.matmul.allow_tf32
        gpu = (
            f"- device: {torch.cuda.get_device_name(device)} ({device}); torch "
            f"{torch.__version__}, CUDA {torch.version.cuda}; "
            f"torch.backends.cuda.matmul.allow_tf32={matmul}, "
            f"float32_matmul_precision={torch.get_float32_matmul_precision()!r}"
        )
    else:
        gpu = (
            f"- device: {device} (no GPU timings: a smoke test); torch "
            f"{torch.__version__}, CUDA {torch.version.cuda}, "
            f"torch.get_num_threads()={torch.get_num_threads()}"
        )
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return [
        "# GPU throughput: GroupLassoMLPClassifier against a bare torch loop",
        "",
        f"- command: `{_report.command()}`{tail}",
        f"- date: {now}",
        *_report.machine_lines(),
        gpu,
        f"- data: {data_note}",
        f"- settings: hidden {tuple(args.hidden)}, relu, Adam (lr "
        f"{args.learning_rate_init}, betas (0.9, 0.999), eps 1e-8), {args.epochs} "
        f"epochs per fit, shuffled every epoch, random_state={args.random_state}; "
        f"ours: penalty='group_lasso', alpha={args.alpha}, tol=0, "
        f"n_iter_no_change={args.epochs + 1}, early_stopping=False, "
        f"device={args.device!r}; bare loop: nn.Sequential, cross-entropy, "
        "torch.optim.Adam(fused=True), no penalty, X and y on the device, "
        "torch.randperm on the device",
        f"- timing: one untimed warm-up epoch on {WARMUP_ROWS:,} rows per "
        "contender and batch; steady = rows / median epoch seconds (ours: "
        "history_; bare: synchronize at epoch ends); whole fit = rows x epochs "
        "/ fit wall time; peak GPU MiB is max_memory_allocated after a reset, "
        "less what was allocated before (data on the device included); train "
        f"accuracy on the first {ACCURACY_ROWS:,} rows, untimed",
        "",
    ]


def profile_ours(X_np, y_np, args, batch, device):
    """Top 15 ops of ~20 steps of ours (preconditioned) at ``batch``."""
    n = min(X_np.shape[0], PROFILE_STEPS * batch)
    estimator = ours_estimator(args, "preconditioned", batch, 1)
    estimator.fit(X_np[:n], y_np[:n])  # warm-up
    activities = [torch.profiler.ProfilerActivity.CPU]
    sort_by = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        sort_by = "self_cuda_time_total"
    with torch.profiler.profile(activities=activities) as prof:
        clone(estimator).fit(X_np[:n], y_np[:n])
        synchronize(device)
    table = prof.key_averages().table(sort_by=sort_by, row_limit=15)
    return [
        "",
        f"## Profile: ours preconditioned, batch {batch}, one epoch of {n:,} rows "
        f"(~{-(-n // batch)} steps, fit set-up included), top 15 by {sort_by}",
        "",
        "```",
        table.rstrip(),
        "```",
    ]


def parse_args(argv=None):
    def int_list(text):
        return [int(v) for v in text.replace(",", " ").split()]

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=54)
    parser.add_argument("--classes", type=int, default=7)
    parser.add_argument(
        "--hidden", type=int_list, default=[512, 512, 512], help="e.g. 512,512,512"
    )
    parser.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int_list,
        default="1024,8192",
        help="e.g. 1024 8192 or 1024,8192",
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=1e-5, help="ours only")
    parser.add_argument("--learning-rate-init", type=float, default=1e-3)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--device", default="cuda", help="'cuda', 'cuda:N' or 'cpu'")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="torch.profiler over ~20 steps of ours (preconditioned) at the "
        "largest batch; prints the top 15 ops",
    )
    parser.add_argument(
        "--output",
        default=str(DEFAULT_OUTPUT),
        help="markdown file to write ('' to write none)",
    )
    args = parser.parse_args(argv)
    # a string default goes through ``type`` whole: a flat list, not a list of lists
    args.batch_sizes = [
        b for v in args.batch_sizes for b in (v if isinstance(v, list) else [v])
    ]
    counts = [args.rows, args.features, args.epochs, *args.hidden, *args.batch_sizes]
    if not args.hidden or not args.batch_sizes or min(counts) < 1:
        parser.error(
            "--rows, --features, --epochs, --hidden and --batch-sizes must be >= 1"
        )
    if args.classes < 2:
        parser.error("--classes must be >= 2")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        sys.exit(
            f"--device {args.device}: {exc} (torch {torch.__version__}, CUDA "
            f"build {torch.version.cuda}); run on a machine with a GPU, or pass "
            "--device cpu for a smoke test"
        )
    warnings.simplefilter("ignore", ConvergenceWarning)
    began = time.perf_counter()

    X, y = make_data(args.rows, args.features, args.classes, args.random_state)
    X_np, y_np = X.numpy(), y.numpy()
    counts = np.bincount(y_np, minlength=args.classes)
    data_note = (
        f"{args.rows:,} x {args.features} float32 Gaussian rows, {args.classes} "
        f"classes from a fixed random teacher argmax(tanh(X A) B) (width "
        f"{TEACHER_WIDTH}); classes present {int((counts > 0).sum())}, majority "
        f"class {counts.max() / args.rows:.3f} of the rows"
    )
    print("\n".join(header_lines(args, device, data_note)), flush=True)
    print("\n".join(TABLE_HEAD), flush=True)

    rows = []
    for batch in args.batch_sizes:
        bare = run_bare(X, y, args.classes, args, batch, device)
        bare["ratio"] = 1.0
        rows.append(bare)
        print(format_row(bare), flush=True)
        for prox in OURS:
            row = run_ours(X_np, y_np, args, prox, batch, device)
            if row["steady"] is not None and bare["steady"] is not None:
                row["ratio"] = row["steady"] / bare["steady"]
            rows.append(row)
            print(format_row(row), flush=True)

    notes = [
        f"- batch {r['batch']}, {r['contender']}: {n}" for r in rows for n in r["notes"]
    ]
    if device.type != "cuda":
        notes.append(
            f"- device {device}: a smoke test; the acceptance is meant for a GPU"
        )
    if args.epochs == 1:
        notes.append("- one epoch per fit: steady is that epoch, the warm-up aside")
    elif args.epochs == 2:
        notes.append("- two epochs per fit: the median epoch time is their mean")
    tail = ["", "Notes:", *notes] if notes else []
    tail += acceptance(rows, args.batch_sizes)
    print("\n".join(tail), flush=True)
    if args.profile:
        profile = profile_ours(X_np, y_np, args, max(args.batch_sizes), device)
        print("\n".join(profile), flush=True)
        tail += profile

    if args.output:
        total = f" ({time.perf_counter() - began:.0f} s in all)"
        header = header_lines(args, device, data_note, total)
        table = TABLE_HEAD + [format_row(row) for row in rows]
        _report.write_markdown("\n".join(header + table + tail), args.output)


if __name__ == "__main__":
    main()
