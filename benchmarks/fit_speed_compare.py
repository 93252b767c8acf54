"""Two runs of ``fit_speed.py`` side by side: did a change slow fits down?

Reads two tables written by ``benchmarks/fit_speed.py`` (the grid of
GroupLassoMLPClassifier against MLPClassifier) and, per cell present in both,
compares our fit time and our ratio against sklearn. Each run measures sklearn
beside ours on the same machine, so the ratio is the number that survives a
change of machine load; our own time is shown too. The fits themselves are
compared: test accuracy and live neurons must be the same in both runs when the
change was not meant to change fits.

Run from the repository root, e.g. against the table committed before a
change::

    git show <commit>:benchmarks/results/fit_speed.md > /tmp/before.md
    python benchmarks/fit_speed_compare.py /tmp/before.md \\
        benchmarks/results/fit_speed.md

It prints the cells whose ratio moved by more than ``--band`` (relative) and a
summary (median and extremes of ratio_after / ratio_before and of
ours_after / ours_before), and writes the same to
``benchmarks/results/fit_speed_compare.md``. It times nothing itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "fit_speed_compare.md"


def read_table(path: Path) -> dict:
    """``{(dataset, hidden, optimizer, batch): row}`` of a fit_speed table."""
    header, cells = None, {}
    for line in path.read_text().splitlines():
        if not line.startswith("| "):
            continue
        fields = [f.strip() for f in line.strip().strip("|").split("|")]
        if fields[0] == "dataset":
            header = fields
            continue
        if header is None or set(fields[0]) <= {"-", ":"}:
            continue
        row = dict(zip(header, fields, strict=True))
        key = (row["dataset"], row["hidden"], row["optimizer"], row["batch"])
        cells[key] = row
    if not cells:
        raise ValueError(f"{path}: no fit_speed table found")
    return cells


def compare(before: dict, after: dict, band: float) -> list[str]:
    """Markdown lines: the cells that moved, then the summary."""
    shared = [key for key in before if key in after]
    if not shared:
        raise ValueError("the two tables share no cell")
    lines = [
        "| dataset | hidden | optimizer | batch | ratio before | ratio after | "
        "after / before | ours_s before | ours_s after | same fit |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    moved, ours, same = [], [], 0
    for key in shared:
        b, a = before[key], after[key]
        change = float(a["ratio"]) / float(b["ratio"])
        moved.append(change)
        ours.append(float(a["ours_s"]) / float(b["ours_s"]))
        fit_same = all(
            a[column] == b[column] for column in ("acc_ours", "active neurons")
        )
        same += fit_same
        if abs(change - 1) > band or not fit_same:
            lines.append(
                f"| {' | '.join(key)} | {b['ratio']} | {a['ratio']} | "
                f"{change:.2f} | {b['ours_s']} | {a['ours_s']} | "
                f"{'yes' if fit_same else '**no**'} |"
            )
    lines += [
        "",
        f"- cells compared: {len(shared)} (only in before: "
        f"{len(before) - len(shared)}, only in after: {len(after) - len(shared)})",
        f"- rows above: cells whose ratio moved by more than {band:.0%}, or "
        "whose fit differs",
        f"- ratio after / before: median {statistics.median(moved):.3f}, "
        f"min {min(moved):.3f}, max {max(moved):.3f}",
        f"- ours_s after / before: median {statistics.median(ours):.3f}, "
        f"min {min(ours):.3f}, max {max(ours):.3f}",
        f"- same test accuracy and live neurons: {same} of {len(shared)} cells",
    ]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path, help="fit_speed table of the baseline")
    parser.add_argument("after", type=Path, help="fit_speed table after the change")
    parser.add_argument(
        "--band",
        type=float,
        default=0.15,
        help="list the cells whose ratio moved by more than this (relative)",
    )
    parser.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="'' writes nothing"
    )
    args = parser.parse_args(argv)
    lines = [
        "# fit_speed: two runs compared",
        "",
        f"- command: `{_report.command()}`",
        f"- before: `{args.before}`",
        f"- after: `{args.after}`",
        "",
        *compare(read_table(args.before), read_table(args.after), args.band),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    _report.write_markdown(text.rstrip("\n"), args.output)


if __name__ == "__main__":
    main()
