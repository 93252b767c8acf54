"""How far the fixed-seed record's fits move when another CPU's kernels run them.

``tests/test_fixed_seed.py`` keeps a record of fixed-seed fits as a guard, and
it must pass on any x86-64 machine. Another CPU runs other kernels: torch
dispatches its vectorised code by the instruction sets it finds
(``ATEN_CPU_CAPABILITY``), OpenBLAS picks a kernel per core type
(``OPENBLAS_CORETYPE``), MKL per instruction set (``MKL_ENABLE_INSTRUCTIONS``),
and thread counts change how sums are split. Each of these is forced here in a
child process that fits every case (``python tests/fixed_seed_cases.py
--dump``), in float32 (what users train in) and in float64 (what the record
is trained in); the table gives, per setting, the largest absolute difference
from this machine's own choice over every case and both CPU engines, and the
cases whose ``active_neurons_`` differ.

The test's tolerances come from this table: float64 fits are compared at
``1e-9`` (the largest float64 spread times more than 10,000), float32 fits to the
float64 record at ``1e-3`` (the largest float32 spread, Haswell's or SSE's
kernels, times 3), with ``active_neurons_`` exact in both.

Run from the repository root::

    python benchmarks/fixed_seed_spread.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: name -> environment of the child process (the machine's own choice first)
SETTINGS = {
    "this machine": {},
    "torch: no vector ISA": {"ATEN_CPU_CAPABILITY": "default"},
    "torch: AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "OpenBLAS: Haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "OpenBLAS: Sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge"},
    "MKL: AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "all: SSE only": {
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ATEN_CPU_CAPABILITY": "default",
        "OPENBLAS_CORETYPE": "Prescott",
    },
    "one thread": {
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    },
}


def _dump(folder: Path, name: str, env: dict, dtype: str) -> dict:
    out = folder / f"{abs(hash(name))}-{dtype}.npz"
    subprocess.run(
        [sys.executable, "tests/fixed_seed_cases.py", "--dump", str(out), dtype],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    return dict(np.load(out))


def _spread(base: dict, other: dict) -> tuple[float, str, list[str]]:
    worst, where, flips = 0.0, "", []
    for key, value in base.items():
        if key.endswith(":active"):
            if not np.array_equal(value, other[key]):
                flips.append(key.split(":")[0])
            continue
        d = float(np.max(np.abs(value - other[key])))
        if d > worst:
            worst, where = d, key
    return worst, where, flips


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks" / "results" / "fixed_seed_spread")
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fits = {
            (name, dtype): _dump(folder, name, env, dtype)
            for name, env in SETTINGS.items()
            for dtype in ("float64", "float32")
        }
    base64, base32 = fits["this machine", "float64"], fits["this machine", "float32"]
    for name in list(SETTINGS)[1:]:
        for dtype, base in (("float64", base64), ("float32", base32)):
            worst, where, flips = _spread(base, fits[name, dtype])
            rows.append(
                f"| {name} | {dtype} | {worst:.3g} | {where or '-'} | "
                f"{', '.join(flips) or 'none'} |"
            )
    worst, where, flips = _spread(base64, base32)
    rows.append(
        f"| float32 against float64 (this machine) | - | {worst:.3g} | {where} | "
        f"{', '.join(flips) or 'none'} |"
    )
    body = [
        "Largest absolute difference of the record's outputs (every case, both "
        "CPU engines) from this machine's own kernel choice; cases whose "
        "active_neurons_ differ.",
        "",
        "| setting | dtype | max abs difference | where | active differs |",
        "|---|---|---|---|---|",
        *rows,
    ]
    print("\n".join(body))
    _report.publish("Fixed-seed fits under other kernels", began, body, args.output)


if __name__ == "__main__":
    main()
