"""What the first cell of every notebook does and calls: set-up, versions, device, seeds, the source
fingerprint, your text.

``setup_cell()`` is the notebooks' first code cell, kept here in one place;
``python notebooks/set_repo.py`` writes it into every notebook.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import sys
import warnings
from pathlib import Path

import torch

from . import __version__
from .config import in_colab, pick_device, quick_mode
from .corpora import DATA_DIR, REGISTRY_PATH, CorpusError

GITHUB_REPO = "textlab-course/textlab"  # notebooks/set_repo.py changes it everywhere at once
PACKAGE_DIR = Path(__file__).resolve().parent
FINGERPRINT_LABEL = "textlab source fingerprint: "


def source_fingerprint() -> str:
    """12 hex digits that change whenever any file of the textlab package, or the corpus registry, changes.

    ``setup()`` prints it, so a notebook's saved outputs say which code made them, and
    ``make check-notebooks`` can tell outputs made by older code from current ones. The registry
    (``data/corpora.json``) counts too: it says what each text is and where a sample starts.
    """
    files = {p.relative_to(PACKAGE_DIR).as_posix(): p for p in PACKAGE_DIR.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    files["../data/corpora.json"] = REGISTRY_PATH
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


IMPORTED_FINGERPRINT = source_fingerprint()  # the source this kernel runs, whatever is on disk later


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
USER_DIR = DATA_DIR / "user"  # your own texts: data/user/ here, /content/textlab-src/data/user/ in Colab


def setup_cell(repo: str = GITHUB_REPO) -> str:
    """The source of every notebook's first code cell.

    In Colab it clones the repository into ``textlab-src/`` (a name that cannot shadow the
    package) and imports textlab from there. Nothing is pip-installed: an editable install's
    ``.pth`` is read only when Python starts, so a running kernel would ignore it, and Colab's own
    torch and ipywidgets must stay as they are. ``TEXTLAB_REPO_URL`` replaces the address (the
    tests clone a local copy). Elsewhere the cell just imports the installed package.
    """
    return f"""\
# Set-up. In Colab: fetch textlab into textlab-src/ and import it from there. Nothing is installed,
# so Colab's own torch and ipywidgets stay as they are and no restart is needed.
# On your own machine `pip install -e .` did this already.
import os, shutil, subprocess, sys
try:
    import google.colab  # only exists in Colab
    IN_COLAB = True
except ImportError:
    IN_COLAB = False
if IN_COLAB:
    REPO = os.environ.get("TEXTLAB_REPO_URL", "https://github.com/{repo}")
    SRC = os.path.abspath("textlab-src")
    os.environ["GIT_TERMINAL_PROMPT"] = "0"  # a missing or private repository fails instead of asking for a password
    if os.path.isfile(f"{{SRC}}/pyproject.toml"):  # cloned before: bring it up to date
        subprocess.run(["git", "-C", SRC, "pull", "--quiet", "--ff-only"])
    else:                                          # never cloned, or only half: start again
        shutil.rmtree(SRC, ignore_errors=True)
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", REPO, SRC])
    if not os.path.isfile(f"{{SRC}}/pyproject.toml"):
        raise SystemExit(f"Could not download textlab from {{REPO}}: check that address and the internet connection, then run this cell again.")
    if SRC not in sys.path:
        sys.path.insert(0, SRC)

import textlab
from textlab.notebook import setup
device = setup(seed=0)
"""


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, so a re-run draws the same numbers."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0) -> torch.device:
    """Print the versions and the device, seed everything, and return the device.

    In Colab it also puts the package's folder in ``PYTHONPATH`` (for ``!python -m textlab``) and
    warns if ipywidgets 8 was installed: Colab's front end speaks only ipywidgets 7.
    """
    import ipywidgets

    if in_colab():
        # `!python -m textlab …` runs a new Python: tell it where the package is.
        root = str(Path(__file__).resolve().parent.parent)
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        os.environ["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p and p != root])
        if int(ipywidgets.__version__.split(".")[0]) >= 8:
            warnings.warn(f"ipywidgets {ipywidgets.__version__} is installed, but Colab supports only 7.x: "
                          "sliders and progress bars will not work. Run `%pip install ipywidgets==7.7.1`, "
                          "then Runtime > Restart session.", stacklevel=2)
    if source_fingerprint() != IMPORTED_FINGERPRINT:  # e.g. the set-up cell ran again and pulled new code
        warnings.warn("textlab's files changed after this kernel imported it, and the old code is still the "
                      "one running: restart the kernel (in Colab: Runtime > Restart session) and run the "
                      "notebook from the top.", stacklevel=2)
    seed_everything(seed)
    device = pick_device()
    mode = "QUICK (CI) mode" if quick_mode() else "full mode"
    print(f"textlab {__version__} · Python {platform.python_version()} · torch {torch.__version__} · "
          f"ipywidgets {ipywidgets.__version__}")
    print(f"device: {device} · {mode} · seed {seed}")
    print(f"{FINGERPRINT_LABEL}{IMPORTED_FINGERPRINT}")
    return device


def upload_text(folder: str | os.PathLike | None = None) -> str | None:
    """In Colab: pick a text file on your computer; it is saved under ``folder`` (default
    ``data/user/``). Returns its path, or None if no file was picked."""
    from google.colab import files  # only exists in Colab

    uploaded = files.upload()
    if not uploaded:
        return None
    name, data = next(iter(uploaded.items()))
    path = Path(folder or USER_DIR) / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def my_text(my_file: str | os.PathLike | None = None, upload: bool = False) -> str | None:
    """The path of your own text, or None to use a course corpus.

    ``upload=True`` (Colab) opens a file picker and saves the file in ``data/user/``. Otherwise
    ``my_file`` is taken as given, or, if no such file is there, looked up in ``data/user/`` by
    its name — so ``"../data/user/my_book.txt"`` works both here and in Colab.
    """
    if upload:
        if not in_colab():
            raise CorpusError("upload=True works in Colab only; here, save the file in "
                              f"{USER_DIR} and set MY_FILE to its path")
        return upload_text()
    if not my_file:
        return None
    path = Path(my_file).expanduser()
    for candidate in (path, USER_DIR / path.name):
        if candidate.is_file():
            return str(candidate)
    raise CorpusError(f"no text file at {path} nor at {USER_DIR / path.name}: save your book "
                      f"(UTF-8 .txt) in {USER_DIR} and set MY_FILE to its name")


if __name__ == "__main__":  # python -m textlab.notebook NOTEBOOK…: fail if any has stale outputs
    stale = stale_notebooks(sys.argv[1:])
    print("\n".join(stale) or f"{len(sys.argv) - 1} notebook(s) made by the current source {source_fingerprint()}")
    sys.exit(1 if stale else 0)
