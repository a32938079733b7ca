"""Every default in one place: the model's shape and how it is trained.

The CLI, the notebooks and the benchmarks all start from these dataclasses, so a
number changed here changes it everywhere. ``default_configs`` sizes them for the
device and the budget; ``quick_mode`` (``TEXTLAB_QUICK=1``) shrinks them for CI. ``pick_device``,
``quick_mode`` and ``in_colab`` say where the code runs; they are here, in a module that imports
little, so every other module can ask.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, dataclass, fields, replace

import torch


class TextlabError(Exception):
    """A problem the user can fix; the message says how. The CLI prints it as one line."""


@dataclass
class ModelConfig:
    """The shape of a model. ``kind`` picks the class: "lstm" (CharLSTM) or "gpt" (MiniGPT)."""

    kind: str = "lstm"
    vocab_size: int = 0  # filled in from the vocabulary
    embed_dim: int = 64
    hidden_size: int = 384  # LSTM: cells per layer; GPT: width of the residual stream
    num_layers: int = 1
    dropout: float = 0.0  # no dropout: a few minutes of training never reaches overfitting
    n_head: int = 4  # GPT only
    block_size: int = 128  # GPT only: the longest context it can attend to


@dataclass
class TrainConfig:
    """How a model is trained. A budget in steps, in minutes, or both (whichever ends first)."""

    batch_size: int = 32
    seq_len: int = 128  # characters per window (backprop-through-time length)
    batching: str = "streams"  # "streams" (contiguous, state carried) or "random" windows
    lr: float = 6e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup: float = 0.02  # share of the budget over which the learning rate rises from 0 to lr
    schedule: str = "cosine"  # after warm-up: "cosine" down to lr * min_lr_ratio, or "hold" lr then cool down
    cooldown: float = 0.3  # "hold" only: the last share of the budget, a straight line down to lr * min_lr_ratio
    ema: float = 0.0  # > 0: score and keep an average of the weights that forgets at 1 - ema per step
    # streams: share of rows whose LSTM state is zeroed before each window. Every sample starts from a
    # zero state; a model that never met one can fall into loops of rare characters ("Round 2d").
    state_reset: float = 0.2
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    steps: int | None = None
    minutes: float | None = 3.0
    eval_every: int = 200  # steps between evaluations (each scores the dev and the whole val text)
    patience: int | None = None  # stop after this many evals without a new best dev bpc
    val_fraction: float = 0.1  # the last 10% of the text: validation, never trained or chosen on
    dev_fraction: float = 0.03  # the start of the training part, held out to choose the best weights on
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    progress: bool = True  # a tqdm.auto bar


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` → the fastest device present: CUDA, then Apple's MPS, then the CPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return torch.device("cuda" if gpus else "mps" if mps else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise TextlabError(f"unknown device {device!r}: use auto, cpu, cuda or mps") from None
    if (chosen.index or 0) >= {"cuda": gpus, "mps": int(mps)}.get(chosen.type, 1):  # how many this machine has
        raise TextlabError(f"device {device!r} is not available on this machine: use auto or cpu")
    return chosen


def quick_mode() -> bool:
    """True when ``TEXTLAB_QUICK`` is 1, true or yes: the notebooks' CI mode (tiny models, seconds of training)."""
    return os.environ.get("TEXTLAB_QUICK", "").strip().lower() in ("1", "true", "yes")


def in_colab() -> bool:
    """Whether this kernel runs in Google Colab (its ``google.colab`` module is imported)."""
    return "google.colab" in sys.modules


# The CPU LSTM for a budget of up to so many minutes: (minutes, ModelConfig fields, TrainConfig fields).
# Measured on tiny Shakespeare, two idle CPU threads (benchmarks/RESULTS.md, "Round 2b"): batches of
# 16 streams, not 32, give twice the updates for the same characters read, and that pays for 448
# cells. A longer budget reads the text more times over, so it gets a longer average and enough
# regularisation that the validation loss never turns up before the end ("Round 2c"). Both learn
# more with stronger weight decay than TrainConfig's 0.01 ("Round 2e"); for the longer budget, decay
# 0.2 does part of dropout's work, so dropout falls from 0.35 to 0.25 ("Round 2f"). Then the batch
# halves once more, to 8 streams, evaluated every 400 steps: as often per character read as batch 16
# every 200, so the dev text chooses among as many scores ("Round 2h" for the shorter budget, "Round
# 2i" for the longer, whose average keeps its span in characters: ema 0.9975 per step of 8 streams
# is 0.995 per step of 16). Last, the shorter budget's neighbours were screened again on dev alone, as
# its learning rate, width and decay had been chosen with val in view: lr 9e-3 beat 6e-3 on dev with
# two seeds, and the width and decay stayed ("Round 2u"). The longer budget's learning rate, screened
# the same way, went from 6e-3 to 9e-3 too ("Round 2v").
CPU_LSTM_BUDGETS: tuple[tuple[float, dict, dict], ...] = (
    (4.0, {"hidden_size": 448},
     {"batch_size": 8, "eval_every": 400, "lr": 9e-3, "ema": 0.99, "weight_decay": 0.1}),
    (math.inf, {"hidden_size": 512, "dropout": 0.25},
     {"batch_size": 8, "eval_every": 400, "lr": 9e-3, "ema": 0.9975, "weight_decay": 0.2}),
)


def default_configs(device: str = "auto", kind: str = "lstm",
                    minutes: float | None = None) -> tuple[ModelConfig, TrainConfig]:
    """The configuration a student gets: sized for a CPU laptop, bigger on a GPU, tiny in QUICK mode.

    ``minutes`` is the training budget (default ``TrainConfig.minutes``, 5 on a GPU); on a CPU the LSTM's
    size, dropout, batch, learning rate, weight decay, weight averaging and how often it is
    evaluated follow it (``CPU_LSTM_BUDGETS``).
    ``kind="gpt"`` gives MiniGPT's: 4 blocks of width 128, 0.81 M parameters against the
    448-cell LSTM's 0.95 M, so the two architectures are compared at about equal size; on a CPU it
    reads random windows of 64 characters, 12 at a time (``benchmarks/sweep_minigpt.py``).
    """
    if kind not in ("lstm", "gpt"):
        raise ValueError(f"unknown model kind {kind!r}: use 'lstm' or 'gpt'")
    if minutes is not None and not minutes > 0:  # written so that NaN is refused too
        raise ValueError(f"the budget must be positive, not minutes={minutes}")
    model, train = ModelConfig(kind=kind), TrainConfig(device=device)
    if minutes is not None:
        train = replace(train, minutes=minutes)
    gpt = kind == "gpt"
    if gpt:  # attention needs a gentler learning rate than the LSTM
        model, train = replace(model, embed_dim=128, hidden_size=128, num_layers=4), replace(train, lr=2e-3)
    if quick_mode():
        model = replace(model, hidden_size=64)
        if gpt:
            model = replace(model, embed_dim=64, num_layers=2, block_size=64)
        return model, replace(train, steps=60, minutes=None, eval_every=30, batch_size=16,
                              seq_len=64, progress=False)
    if pick_device(device).type == "cuda":
        train = replace(train, minutes=minutes or 5.0)
        if gpt:  # nanoGPT's "baby GPT" for Shakespeare: 10.7 M parameters, context 256
            return (replace(model, embed_dim=384, hidden_size=384, num_layers=6, n_head=6, block_size=256,
                            dropout=0.1),
                    replace(train, batch_size=64, seq_len=256, lr=1e-3))
        # A GPU is idle at batch 32: more parallel streams and a wider, deeper LSTM cost no extra time.
        return (replace(model, hidden_size=768, num_layers=2, dropout=0.1),
                replace(train, batch_size=128, lr=2e-3))
    if gpt:  # tuned for a CPU budget by benchmarks/sweep_minigpt.py (RESULTS.md): many small steps,
        # block 64, lr 3e-3; few evaluations, as each scores the whole dev and val texts.
        return (replace(model, block_size=64),
                replace(train, batching="random", batch_size=12, seq_len=64, lr=3e-3, eval_every=500))
    model_fields, train_fields = next((m, t) for up_to, m, t in CPU_LSTM_BUDGETS if train.minutes <= up_to)
    return replace(model, **model_fields), replace(train, **train_fields)


def fine_tune_config(device: str = "auto") -> TrainConfig:
    """How ``textlab.gpt2.fine_tune`` trains a pretrained GPT-2: a small learning rate, short windows.

    Sized for a free Colab T4: ``distilgpt2`` at batch 8 × 256 tokens in mixed precision. The
    weights already know English, so the learning rate is tens of times lower than from scratch
    (5e-5 against ``default_configs``' 1e-3 to 9e-3), with no weight decay (it would pull the
    pretrained weights towards zero). On a CPU, where one step of GPT-2 takes seconds, it is only a
    taste: 20 steps of 2 windows.
    """
    cfg = TrainConfig(batch_size=8, seq_len=256, batching="random", lr=5e-5, warmup=0.05,
                      weight_decay=0.0, minutes=3.0, eval_every=100, device=device)
    if quick_mode():
        return replace(cfg, batch_size=2, seq_len=64, steps=5, minutes=None, eval_every=5,
                       progress=False)
    if pick_device(device).type == "cpu":
        return replace(cfg, batch_size=2, steps=20, minutes=None)
    return cfg


def with_overrides(cfg: TrainConfig, **overrides) -> TrainConfig:
    """``replace(cfg, **overrides)``, where a budget given alone (``steps`` or ``minutes``) replaces both."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown training option(s) {unknown}; the options are TrainConfig's fields: "
                        f"{', '.join(sorted(known))}")
    if "steps" in overrides and "minutes" not in overrides:
        overrides["minutes"] = None
    if "minutes" in overrides and "steps" not in overrides:
        overrides["steps"] = None
    return replace(cfg, **overrides)


def to_dict(config) -> dict:
    """A dataclass as a plain dict (what a checkpoint stores)."""
    return asdict(config)


def from_dict(cls, data: dict):
    """Rebuild a config from a dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
