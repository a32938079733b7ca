"""Save and load a trained model as one file: weights, config, vocabulary and history.

The file holds only tensors and plain Python containers, so it loads with
``torch.load(path, weights_only=True)``: no pickled code runs when you open a checkpoint
someone sent you.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from .config import ModelConfig, TextlabError, TrainConfig, from_dict, pick_device, to_dict
from .models import build_model
from .vocab import CharVocab

FORMAT, VERSION = "textlab-checkpoint", 1


class CheckpointError(TextlabError):
    """A file that is not a usable textlab checkpoint."""


@dataclass
class Loaded:
    """A checkpoint, ready to sample from."""

    model: nn.Module
    vocab: CharVocab
    train_config: TrainConfig | None = None
    history: list[dict] = field(default_factory=list)
    prime: str = "\n"  # where samples start: the training text's (Text.prime), or a new line


def check_fits(model: nn.Module, vocab: CharVocab) -> None:
    """Raise unless ``model`` reads and writes exactly the characters of ``vocab``."""
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"the vocabulary has {len(vocab)} characters but the model "
                              f"{model.config.vocab_size}: pass the vocabulary the model was built with")


def check_prime(prime: str | None, vocab: CharVocab) -> None:
    """Raise unless ``prime`` (None: none stored) is text the vocabulary can write."""
    if prime is not None and (not isinstance(prime, str) or not prime or vocab.unknown(prime)):
        raise TextlabError(f"prime={prime!r} must be text made of the vocabulary's characters, e.g. '\\n'")


def save_checkpoint(path: str | Path, model: nn.Module, vocab: CharVocab, train_config: TrainConfig | None = None,
                    history: list[dict] | None = None, prime: str | None = None) -> Path:
    """Write the checkpoint atomically: to a temporary file, then one rename over ``path``.

    ``prime`` is where samples of the model should start (the training text's ``Text.prime``).
    """
    check_fits(model, vocab)
    check_prime(prime, vocab)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": to_dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "vocab": list(vocab.chars),
        "train_config": to_dict(train_config) if train_config is not None else None,
        "history": list(history or []),
    }
    if prime is not None:  # optional: older checkpoints have no "prime"
        payload["prime"] = prime
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; a checkpoint is meant to be shared
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Loaded:
    """Rebuild the model and vocabulary saved in ``path``, in eval mode on ``device`` ("auto" allowed)."""
    device = pick_device(str(device))  # a clear error for a device this machine lacks
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    with warnings.catch_warnings(record=True) as caught:  # a damaged file's warnings would bury the error
        warnings.simplefilter("always")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a damaged zip or pickle
            named = re.search(r"\bGLOBAL ([\w.]+)", str(err))  # the class or function it would build
            if named:  # weights_only refused to build a Python object, so none of its code ran
                raise CheckpointError(f"{path} is not a textlab checkpoint: it holds Python objects ({named[1]}), "
                                      "e.g. a whole model saved with torch.save(model). textlab loads tensors and "
                                      "plain data only; save models with textlab.save_checkpoint") from None
            raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or truncated: "
                                  f"{type(err).__name__}). Train again or copy the file again.") from None
    for w in caught:  # the file loaded: its warnings are worth seeing after all
        warnings.warn(w.message, w.category, stacklevel=2)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = " (it looks like a bare state_dict)" if isinstance(payload, dict) else ""
        raise CheckpointError(f"{path} is not a textlab checkpoint{hint}; save models with "
                              "textlab.save_checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} is checkpoint version {payload.get('version')}, this textlab "
                              f"reads version {VERSION}; use the textlab release that wrote it")
    try:
        model = build_model(from_dict(ModelConfig, payload["model_config"]))
        model.load_state_dict(payload["state_dict"])
        vocab = CharVocab(payload["vocab"])
        train_config = payload.get("train_config")
        train_config = from_dict(TrainConfig, train_config) if train_config else None
        prime = payload.get("prime", "\n")
        if not isinstance(prime, str) or not prime:
            raise ValueError(f"its prime is {prime!r}, not text")
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path} is damaged: its weights, configs and vocabulary do not fit together "
                              f"({err})") from None
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"{path} is damaged: its vocabulary has {len(vocab)} characters and its "
                              f"model {model.config.vocab_size}")
    return Loaded(model.to(device).eval(), vocab, train_config, payload.get("history", []), prime)


def list_models(folder: str | Path = "models") -> dict[str, Path]:
    """Checkpoints in a folder by name: ``NAME.pt`` files and ``NAME/model.pt`` run folders."""
    folder = Path(folder)
    found = {p.stem: p for p in folder.glob("*.pt")}
    found.update({p.parent.name: p for p in folder.glob("*/model.pt")})
    return dict(sorted(found.items()))


def load_model(name: str, folder: str | Path = "models", device: str | torch.device = "cpu") -> Loaded:
    """Load a checkpoint by name from a folder of them (see ``list_models``)."""
    models = list_models(folder)
    if name not in models:
        raise CheckpointError(f"no model {name!r} in {folder}; found: {', '.join(models) or 'none'}")
    return load_checkpoint(models[name], device)
