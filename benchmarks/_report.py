"""What every benchmark states about the machine, and how it writes results."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
import torch


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not Unix
        return "n/a"


def command() -> str:
    """The command line that ran this script."""
    return shlex.join(["python", *sys.argv])


def machine_lines() -> list[str]:
    """Markdown bullets: machine, load, library versions."""
    return [
        f"- machine: {platform.platform()}, CPU {cpu_model()!r}, "
        f"os.cpu_count()={os.cpu_count()}; load average at the end "
        f"{load_average()} (1, 5, 15 min)",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
    ]


def header(title: str, seconds: float, *extra: str) -> list[str]:
    """A result file's first lines: title, date, command, machine, run time.

    ``extra`` bullets (e.g. thread counts) come before the run time.
    """
    return [
        f"# {title}",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command()}`",
        *machine_lines(),
        *extra,
        f"- run time: {seconds:.0f} s",
    ]


def write_markdown(text: str, output: str) -> Path | None:
    """Write ``text`` to ``output`` with the suffix ``.md``; say where.

    ``output`` empty writes nothing (and returns None); the folder is made.
    """
    if not output:
        return None
    out = Path(output).with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"\nwritten to {out}")
    return out


def publish(title: str, began: float, body: list[str], output: str, *extra: str) -> str:
    """A result file: :func:`header` (the run time since ``began``), a blank
    line, then ``body``; written to ``output``.md (empty: nowhere). Returns it.

    ``extra`` bullets go in the header. The body is printed by the caller as
    it is made (rows as they come), so only where it is written is said here.
    """
    import time

    text = "\n".join([*header(title, time.perf_counter() - began, *extra), "", *body])
    write_markdown(text, output)
    return text


def write_report(text: str, output: str, draw: Callable[[Path], None]) -> None:
    """Print ``text``; write it to ``output``.md and ``draw`` ``output``.png.

    ``output`` is a path without suffix; empty writes nothing.
    """
    print(text)
    out = write_markdown(text, output)
    if out is not None:
        draw(out.with_suffix(".png"))
        print(f"and drawn in {out.with_suffix('.png')}")
