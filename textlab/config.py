"""Every default in one place: the model's shape and how it is trained.

The CLI, the notebooks and the benchmarks all start from these dataclasses, so a
number changed here changes it everywhere. ``for_device`` scales the defaults up on
a GPU; ``quick`` shrinks them for CI (``TEXTLAB_QUICK=1``).
"""

from __future__ import annotations

import os
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
    hidden_size: int = 512  # LSTM: cells per layer; GPT: width of the residual stream
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
    lr: float = 4e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 30
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    steps: int | None = None
    minutes: float | None = 3.0
    eval_every: int = 100
    eval_chars: int = 20_000  # periodic evals score a fixed slice of val; the final one all of it
    patience: int | None = None  # stop after this many evals without a new best val bpc
    val_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    progress: bool = True  # a tqdm.auto bar


def pick_device(device: str = "auto") -> torch.device:
    """``"auto"`` → the fastest device present: CUDA, then Apple's MPS, then the CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def quick_mode() -> bool:
    """True when ``TEXTLAB_QUICK=1``: the notebooks' CI mode (tiny models, seconds of training)."""
    return os.environ.get("TEXTLAB_QUICK", "") not in ("", "0")


def default_configs(device: str = "auto") -> tuple[ModelConfig, TrainConfig]:
    """The configuration a student gets: sized for a CPU laptop, bigger on a GPU, tiny in QUICK mode."""
    model, train = ModelConfig(), TrainConfig(device=device)
    if quick_mode():
        return replace(model, hidden_size=64), replace(train, steps=60, minutes=None, eval_every=30,
                                                       eval_chars=5_000, batch_size=16, seq_len=64,
                                                       progress=False)
    if pick_device(device).type == "cuda":
        # A GPU is idle at batch 32: more parallel streams and a wider, deeper LSTM cost no extra time.
        return (replace(model, hidden_size=768, num_layers=2, dropout=0.1),
                replace(train, batch_size=128, lr=2e-3, minutes=5.0))
    return model, train


def to_dict(config) -> dict:
    """A dataclass as a plain dict (what a checkpoint stores)."""
    return asdict(config)


def from_dict(cls, data: dict):
    """Rebuild a config from a dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
