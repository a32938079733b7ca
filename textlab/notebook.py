"""What the first cell of every notebook calls: versions, device, seeds."""

from __future__ import annotations

import platform
import random

import torch

from . import __version__
from .config import pick_device, quick_mode

GITHUB_REPO = "textlab-course/textlab"  # notebooks/set_repo.py changes it everywhere at once


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, so a re-run draws the same numbers."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0) -> torch.device:
    """Print the versions and the device, seed everything, and return the device."""
    import ipywidgets

    seed_everything(seed)
    device = pick_device()
    mode = "QUICK (CI) mode" if quick_mode() else "full mode"
    print(f"textlab {__version__} · Python {platform.python_version()} · torch {torch.__version__} · "
          f"ipywidgets {ipywidgets.__version__}")
    print(f"device: {device} · {mode} · seed {seed}")
    return device


def upload_text(folder: str = "data/user") -> str | None:
    """In Colab: pick a text file on your computer; it is saved under ``folder``. Returns its path."""
    from pathlib import Path

    from google.colab import files  # only exists in Colab

    uploaded = files.upload()
    if not uploaded:
        return None
    name, data = next(iter(uploaded.items()))
    path = Path(folder) / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)
