"""Shared by the benchmarks: their command lines, nanoGPT's recipe, timing, the machine description and
the RESULTS.md appender."""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import torch

from textlab.cli import exit_status
from textlab.config import ModelConfig, TrainConfig

RESULTS = Path(__file__).with_name("RESULTS.md")
# Tiny Shakespeare's 65 characters: the vocabulary of the speed benchmarks, whose models have random
# weights (speed does not depend on them), so they need no corpus.
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# nanoGPT's README "I only have a MacBook" recipe (config/train_shakespeare_char.py, CPU overrides):
# 4 layers × 4 heads, width 128, block 64, batch 12, lr 1e-3 cosine to 1e-4, no dropout, random
# windows; its 100 warm-up iterations of 2,000 become 5% of the budget; AdamW betas (0.9, 0.99), as
# textlab's, and decay 0.1. How often it is evaluated is each script's own choice (``eval_every``).
NANOGPT_RECIPE = (ModelConfig(kind="gpt", embed_dim=128, hidden_size=128, num_layers=4, n_head=4,
                              block_size=64, dropout=0.0),
                  TrainConfig(batching="random", seq_len=64, batch_size=12, lr=1e-3, min_lr_ratio=0.1,
                              warmup=0.05, weight_decay=0.1))
# nanoGPT's protocol, as ``textlab.evaluate`` arguments: cold 64-character windows, each scored on its own.
COLD_WINDOWS = {"context": 0, "stride": 64}


class Parser(argparse.ArgumentParser):
    """argparse's parser, but a bad option ends in one line on stderr (what to fix), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def positive(kind: type) -> Callable[[str], float]:
    """An argparse ``type``: a number of ``kind`` (int or float) above zero; NaN and infinity are refused."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            number = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive {number}")
        return value
    return parse


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one): the default thread count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_main(main: Callable[[], None]) -> NoReturn:
    """Run a benchmark's ``main`` and exit as ``python -m textlab`` does: a problem the user can fix (a
    corpus that cannot be loaded, a value textlab refuses) ends in one line on stderr and status 2."""
    sys.exit(exit_status(main))


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
