"""The notebooks' links and set-up cells agree with the package (no kernel needed)."""

import json
import re
import warnings
from pathlib import Path

import pytest

from textlab.notebook import (FINGERPRINT_LABEL, GITHUB_REPO, saved_fingerprint, setup_cell, source_fingerprint,
                              stale_notebooks)

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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_carries_the_one_setup_cell(path):
    setup = "".join(next(c for c in cells(path) if c["cell_type"] == "code")["source"])
    assert setup == setup_cell(), "run `python notebooks/set_repo.py` to write the set-up cell"


def test_the_setup_cell_keeps_its_promises():
    """What tests/test_colab.py checks by running it, stated once more where a reader looks."""
    setup = setup_cell()
    assert 'os.environ["GIT_TERMINAL_PROMPT"] = "0"' in setup, "a private repository must not prompt"
    assert 'os.path.abspath("textlab-src")' in setup and "sys.path.insert(0, SRC)" in setup
    assert "pyproject.toml" in setup and '"pull", "--quiet", "--ff-only"' in setup
    assert "TEXTLAB_REPO_URL" in setup
    assert "pip" not in setup.replace("pip install -e", ""), "a running kernel ignores what pip installs"
    assert "restart" not in setup.lower().replace("no restart", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_state_is_kept(path):
    """A notebook saved back from Colab loses metadata.widgets: GitHub then shows no widgets."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    views = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if views:
        state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
        shown = {v["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for v in views}
        assert shown <= set(state.get("state", {})), "widget state is missing: re-run and save locally"


def test_notebook_03_asks_colab_for_a_gpu():
    metadata = json.loads((ROOT / "notebooks" / "03_gpt2_compare.ipynb").read_text(encoding="utf-8"))["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"


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


def test_the_fingerprint_covers_the_corpus_registry(tmp_path, monkeypatch):
    """The registry says what each text is and where its samples start: editing it changes outputs too."""
    import textlab.notebook
    before = source_fingerprint()
    edited = tmp_path / "corpora.json"
    edited.write_text(textlab.notebook.REGISTRY_PATH.read_text(encoding="utf-8").replace("ROMEO:", "JULIET:"),
                      encoding="utf-8")
    monkeypatch.setattr(textlab.notebook, "REGISTRY_PATH", edited)
    assert source_fingerprint() != before


def test_setup_warns_when_the_code_on_disk_is_not_the_code_running(monkeypatch, capsys):
    """Running the set-up cell again pulls new code, but the kernel keeps the modules it imported."""
    import textlab.notebook
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        textlab.notebook.setup()  # nothing changed: no warning
    assert textlab.notebook.IMPORTED_FINGERPRINT in capsys.readouterr().out
    monkeypatch.setattr(textlab.notebook, "IMPORTED_FINGERPRINT", "0123456789ab")
    with pytest.warns(UserWarning, match="restart the kernel"):
        textlab.notebook.setup()
    assert "0123456789ab" in capsys.readouterr().out  # the outputs say which code made them
