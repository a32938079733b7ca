"""Shared by the benchmarks: timing, the machine description and the RESULTS.md appender."""

from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
# Tiny Shakespeare's 65 characters: the vocabulary of the speed benchmarks, whose models have random
# weights (speed does not depend on them), so they need no corpus.
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_in_turn(fns: list, repeats: int) -> list[list[float]]:
    """Seconds per call of each function, called in turn ``repeats`` times (after a warm-up)."""
    for fn in fns:
        fn()
    rounds = [[seconds(fn) for fn in fns] for _ in range(repeats)]
    return [list(times) for times in zip(*rounds)]


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The line under each result's title: which CPU (or GPU), how many cores, torch, threads."""
    cpu, generation = platform.processor() or platform.machine(), ""
    try:
        pairs = (line.split(":", 1) for line in cpuinfo.read_text().splitlines() if ":" in line)
        info = {key.strip(): value.strip() for key, value in pairs}  # the last core's; all cores alike
        cpu = info.get("model name", cpu)
        if "cpu family" in info and "model" in info:
            generation = f", family {info['cpu family']} model {info['model']}"
    except OSError:
        pass
    # Machines that print the same model name ("AMD EPYC") have differed here in CPU generation,
    # in their widest vector instructions (AVX2 or AVX-512) and in speed: the vector instructions,
    # family and model tell them apart, and benchmark figures compare only within one kind.
    cpu += f" ({torch.backends.cpu.get_cpu_capability()}{generation})"
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (prints well in a terminal too)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def append_results(title: str, command: str, body: str) -> None:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(f"\n## {title} — {stamp}\n\n{machine()}\n\n`{command}`\n\n{body}\n")
