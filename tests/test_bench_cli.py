"""The benchmarks' command lines: a mistake ends in one line that says what to fix, and what they print
is what ran, in named units.

The scripts are run in a subprocess where they fail before training; their ``main`` is run here with
``run`` (the training) and the RESULTS.md appender replaced, so nothing trains and nothing is appended.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_train  # noqa: E402
import common  # noqa: E402
import sweep_minigpt  # noqa: E402
import try_levers  # noqa: E402

import textlab  # noqa: E402


@pytest.mark.parametrize("script, args, says", [
    ("bench_train.py", ["--seconds", "-5"], "--seconds"),
    ("bench_train.py", ["--seconds", "nan"], "--seconds"),
    ("bench_train.py", ["--threads", "0"], "--threads"),
    ("bench_train.py", ["--corpus", "nope"], "unknown corpus 'nope'"),
    ("bench_train.py", [], "TEXTLAB_MIRROR"),  # the mirror below holds no corpus
    ("bench_sample.py", ["--repeats", "0"], "--repeats"),
    ("bench_sample.py", ["--length", "0"], "--length"),
])
def test_a_bad_option_is_one_line_not_a_traceback(tmp_path, script, args, says):
    env = dict(os.environ, TEXTLAB_MIRROR=str(tmp_path / "nonexistent"), TEXTLAB_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1 and says in done.stderr


def fake_row(name: str, *args, **kwargs) -> dict:
    """What ``bench_train.run`` returns, with made-up figures."""
    return {"name": name, "params": 1, "steps": 2, "chars": 3, "seconds": 4.0, "cps": 5.0, "flops": 6.0,
            "dev_loss": 1.3, "val_loss": 1.4, "window_loss": 1.5, "derailed": 0.0, "dynamic": None}


@pytest.fixture
def no_training(monkeypatch):
    """No corpus, no matmul timing, no training, nothing appended to RESULTS.md; 3 cores to run on."""
    monkeypatch.setattr(textlab, "load_corpus", lambda name: SimpleNamespace(text="abc"))
    monkeypatch.setattr(bench_train, "matmul_peaks", lambda: {"torch.mm": 1e9})
    monkeypatch.setattr(bench_train, "run", fake_row)
    for module in (bench_train, sweep_minigpt):
        monkeypatch.setattr(module, "append_results", lambda *args: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    return threads


def test_bench_train_prints_the_config_that_ran_and_names_its_units(no_training, monkeypatch, capsys):
    monkeypatch.setenv("TEXTLAB_QUICK", "1")  # default_configs then asks for 60 steps, which run() drops
    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--seconds", "30", "--skip-baseline"])
    bench_train.main()
    out = capsys.readouterr().out
    assert "steps=None" in out and "minutes=0.5" in out and "progress=False" in out
    assert "| train s (scoring excluded) |" in out and "| dev loss (nats, chooses) |" in out
    assert out.splitlines()[-1] == "textlab_val_loss=1.400 textlab_window_loss=1.500 seconds=30"
    assert no_training == [3]  # one thread per core it may run on


def test_try_levers_runs_on_as_many_threads_as_bench_train(no_training, monkeypatch):
    for module, name in [(textlab.training, "make_optimizer"), (textlab.models.CharLSTM, "forward"),
                         (textlab.training, "build_model"), (textlab.training, "_next_char_loss"),
                         (textlab.training, "apply_lr"), (textlab.training, "update_average")]:
        monkeypatch.setattr(module, name, getattr(module, name))  # main patches them: undone after the test
    monkeypatch.setattr(try_levers, "run", fake_row)
    monkeypatch.setattr(sys, "argv", ["try_levers.py", "--seconds", "30", "row:"])
    try_levers.main()
    assert no_training == [3]


def test_the_progress_line_names_its_unit():
    assert bench_train.loss_curve([{"seconds": 0.0, "val_bpc": 2.0}]) == "val loss (nats) by seconds trained: 0s:1.386"


def test_the_sweeps_best_finalist_is_chosen_on_dev_not_val(no_training, monkeypatch, capsys):
    names = list(sweep_minigpt.CANDIDATES)

    def run(name, text, model_cfg, train_cfg, seconds, dev_chars=None) -> dict:
        """Dev ranks the candidates in their listed order; val ranks them the other way round."""
        rank = names.index(name) if name in names else len(names)
        score = 1 + rank / 10 if dev_chars else 2 - rank / 10
        return {"name": name, "params": 1, "steps": 1, "chars/s": 1.0, "seconds": 1.0, "sliding": score,
                "cold": score, "model": model_cfg, "train": train_cfg}

    monkeypatch.setattr(sweep_minigpt, "run", run)
    monkeypatch.setattr(sys, "argv", ["sweep_minigpt.py", "--finalists", "3"])
    sweep_minigpt.main()
    out = capsys.readouterr().out
    assert "the start of the training part" in out
    assert out.splitlines()[-1].startswith("tuned_sliding=2.000 ")  # the best on dev, not 1.800 (best on val)


def test_positive_numbers_refuse_zero_negatives_and_nan():
    assert common.positive(float)("2.5") == 2.5 and common.positive(int)("3") == 3
    for kind, text in [(float, "0"), (float, "-1"), (float, "nan"), (float, "inf"), (int, "1.5"), (int, "x")]:
        with pytest.raises(argparse.ArgumentTypeError, match="is not a positive"):
            common.positive(kind)(text)
