"""What the first cell of every notebook calls: versions, device, seeds, the source fingerprint."""

from __future__ import annotations

import hashlib
import json
import platform
import random
from pathlib import Path

import torch

from . import __version__
from .config import pick_device, quick_mode

GITHUB_REPO = "textlab-course/textlab"  # notebooks/set_repo.py changes it everywhere at once
PACKAGE_DIR = Path(__file__).resolve().parent
FINGERPRINT_LABEL = "textlab source fingerprint: "


def source_fingerprint() -> str:
    """12 hex digits that change whenever any file of the textlab package changes.

    ``setup()`` prints it, so a notebook's saved outputs say which code made them, and
    ``make check-notebooks`` can tell outputs made by older code from current ones.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def saved_fingerprint(notebook: str | Path) -> str | None:
    """The fingerprint a saved notebook's set-up cell printed, or None if it printed none."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.startswith(FINGERPRINT_LABEL):
                    return line[len(FINGERPRINT_LABEL):].split()[0]
    return None


def stale_notebooks(notebooks) -> list[str]:
    """The notebooks whose saved outputs were not made by the textlab source as it is now."""
    current = source_fingerprint()
    return [f"{nb}: outputs made by textlab source {saved_fingerprint(nb)}, the source is now {current}; "
            "re-run it with `make notebooks`" for nb in notebooks if saved_fingerprint(nb) != current]


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
    print(f"{FINGERPRINT_LABEL}{source_fingerprint()}")
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


if __name__ == "__main__":  # python -m textlab.notebook NOTEBOOK…: fail if any has stale outputs
    import sys

    stale = stale_notebooks(sys.argv[1:])
    print("\n".join(stale) or f"{len(sys.argv) - 1} notebook(s) made by the current source {source_fingerprint()}")
    sys.exit(1 if stale else 0)
