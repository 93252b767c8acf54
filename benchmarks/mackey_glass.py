"""The Mackey-Glass generator against the shared ``mg`` data: the figures of the guide.

Prints the lag autocorrelations (first feature against each later one) and the
target's range of ``mg_scale.csv`` and of ``make_mackey_glass`` for seeds 0-9,
and for sampling intervals other than 6 time units.

Run from the repository root::

    python benchmarks/mackey_glass.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from skgroupsparse import datasets  # noqa: E402


def statistics(X, y) -> tuple[np.ndarray, tuple[float, float]]:
    lags = np.array([np.corrcoef(X[:, 0], X[:, j])[0, 1] for j in range(1, X.shape[1])])
    return lags, (float(y.min()), float(y.max()))


def main() -> int:
    X, y = datasets.load_dataset("mg")
    file_lags, file_range = statistics(np.asarray(X), np.asarray(y))
    print("| source | lag 6, 12, 18, 24, 30 | max deviation | target range |")
    print("|---|---|---|---|")

    def row(name, lags, value_range):
        print(
            f"| {name} | {', '.join(f'{v:.3f}' for v in lags)} | "
            f"{np.abs(lags - file_lags).max():.3f} | "
            f"{value_range[0]:.3f}-{value_range[1]:.3f} |"
        )

    row("mg_scale.csv", file_lags, file_range)
    for seed in range(10):
        row(
            f"generator, random_state={seed}",
            *statistics(*datasets.make_mackey_glass(random_state=seed)),
        )
    for interval in (1.0, 5.5, 6.5):
        Xg, yg = datasets.make_mackey_glass(sampling_interval=interval, random_state=0)
        row(f"sampling every {interval:g} (random_state=0)", *statistics(Xg, yg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
