"""The notebooks' links and set-up cells agree with the package (no kernel needed)."""

import json
import re
from pathlib import Path

import pytest

from textlab.notebook import FINGERPRINT_LABEL, GITHUB_REPO, saved_fingerprint, source_fingerprint, stale_notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_the_four_lessons_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_data.ipynb", "02_charlstm.ipynb", "03_gpt2_compare.ipynb",
                                         "04_serve.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_badge_and_setup_point_at_the_same_repository(path):
    first_md = "".join(cells(path)[0]["source"])
    badge = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{path.name}"
    assert badge in first_md, "the first cell must carry this notebook's Open in Colab badge"
    setup = "".join(next(c for c in cells(path) if c["cell_type"] == "code")["source"])
    assert f"https://github.com/{GITHUB_REPO}" in setup
    assert "--no-deps" in setup, "Colab's own torch and ipywidgets must never be reinstalled"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_with_outputs_and_no_errors(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "commit notebooks executed top to bottom"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "silence warnings properly"


def test_readme_badges_use_the_same_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", readme))
    assert found == {GITHUB_REPO}


def test_saved_outputs_were_made_by_the_current_source():
    """`make check-notebooks`: a change to textlab/ means the notebooks must be re-run (`make notebooks`)."""
    assert stale_notebooks(NOTEBOOKS) == []


def test_the_fingerprint_check_catches_outputs_made_by_other_code(tmp_path):
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
    setup["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"{FINGERPRINT_LABEL}0123456789ab\n"]}]
    old = tmp_path / "old.ipynb"
    old.write_text(json.dumps(nb), encoding="utf-8")
    assert saved_fingerprint(old) == "0123456789ab"
    [message] = stale_notebooks([old])
    assert "0123456789ab" in message and source_fingerprint() in message and "make notebooks" in message
    setup["outputs"] = []  # never run: no fingerprint at all
    old.write_text(json.dumps(nb), encoding="utf-8")
    assert stale_notebooks([old])
