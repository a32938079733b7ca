"""Point every "Open in Colab" badge and Colab set-up cell at your fork, in one command.

    python notebooks/set_repo.py OWNER/REPO

The current value lives in ``textlab/notebook.py`` (``GITHUB_REPO``); this rewrites it there, in
the README and in every notebook. ``tests/test_notebooks.py`` checks they all agree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textlab.notebook import GITHUB_REPO  # noqa: E402

FILES = [ROOT / "README.md", ROOT / "textlab" / "notebook.py", *sorted((ROOT / "notebooks").glob("*.ipynb"))]


def main(new: str) -> None:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", new):
        raise SystemExit(f"expected OWNER/REPO, got {new!r}")
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        if GITHUB_REPO in text:
            path.write_text(text.replace(GITHUB_REPO, new), encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: {GITHUB_REPO} → {new}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
