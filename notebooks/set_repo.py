"""Write the set-up cell into every notebook, and point every "Open in Colab" badge and set-up
cell at your fork, in one command.

    python notebooks/set_repo.py              # every notebooks/*.ipynb gets textlab.notebook.setup_cell()
    python notebooks/set_repo.py OWNER/REPO   # the same, for your fork, after changing the address

The set-up cell lives in ``textlab/notebook.py`` (``setup_cell()``) and the repository in
``GITHUB_REPO`` beside it; this rewrites the address there, in the README and in every notebook,
and replaces each notebook's first code cell. ``tests/test_notebooks.py`` checks they all agree.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textlab.notebook import GITHUB_REPO, setup_cell  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FILES = [ROOT / "README.md", ROOT / "textlab" / "notebook.py", *NOTEBOOKS]


def write_setup_cells(repo: str = GITHUB_REPO) -> None:
    """Make the first code cell of every notebook ``setup_cell(repo)``; outputs stay as they are."""
    source = setup_cell(repo).splitlines(keepends=True)
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
        if cell["source"] != source:
            cell["source"] = source
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: set-up cell written")


def set_repo(new: str) -> None:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", new):
        raise SystemExit(f"expected OWNER/REPO, got {new!r}")
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        if GITHUB_REPO in text:
            path.write_text(text.replace(GITHUB_REPO, new), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {GITHUB_REPO} → {new}")


if __name__ == "__main__":
    if len(sys.argv) > 2 or sys.argv[1:] in (["-h"], ["--help"]):
        raise SystemExit(__doc__)
    repo = sys.argv[1] if len(sys.argv) == 2 else GITHUB_REPO
    if repo != GITHUB_REPO:
        set_repo(repo)
    write_setup_cells(repo)
