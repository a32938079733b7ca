"""The course as Colab runs it: the real set-up cell, Colab's package versions, its widget protocol.

Two parts:

* the set-up cell itself (``textlab.notebook.setup_cell()``), run by this venv's Python in a
  temporary "/content" with a stub ``google.colab`` (``tests/colab_stub``) on PYTHONPATH and
  ``TEXTLAB_REPO_URL`` pointing at a local copy of this repository: fresh, stale and half
  clones, an unreachable repository, one that asks for a password;
* the Colab-like environment ``.venv-colab`` (``make .venv-colab/.installed``: ipywidgets 7.7.1,
  IPython 7.34, ipykernel 6.17, Notebook 6.5, …, no textlab installed). There every notebook
  runs top to bottom under nbval through its set-up cell, ``!python -m textlab`` works from
  the student's folder, and notebook 02's temperature slider re-samples in classic Notebook 6.5
  in headless Chromium (``TEXTLAB_BROWSER_DISCONNECT=1`` must make that test fail).

The copy of the repository is a snapshot of the working tree (tracked and untracked, not
ignored files), so uncommitted changes are what gets cloned. Without ``.venv-colab`` the
second part is skipped, except under CI.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from browser_support import CLASSIC_CELLS, ClassicNotebook, copy_notebook
from conftest import SHARED_DATA
from test_browser import ARTIFACTS, DISCONNECT, NOTEBOOK, OPEN_TIMEOUT, empty_folder, move_slider_and_check
from textlab.notebook import GITHUB_REPO, setup_cell

REPO = Path(__file__).resolve().parents[1]
STUB = REPO / "tests" / "colab_stub"
COLAB_PYTHON = Path(os.environ.get("TEXTLAB_COLAB_PYTHON") or REPO / ".venv-colab" / "bin" / "python")
CELL_TIMEOUT = 120  # seconds: the set-up cell clones a local repository and imports torch
GIT = ["git", "-c", "user.name=textlab tests", "-c", "user.email=tests@textlab.invalid"]


def snapshot(dest: Path) -> Path:
    """A git repository holding the working tree as it is now: what the set-up cell will clone."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not source.is_symlink():  # not deleted files, not the .venv link
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-qm", "snapshot"], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    return snapshot(tmp_path_factory.mktemp("origin"))


def run_cell(content: Path, repo_url: str) -> subprocess.CompletedProcess:
    """Run the set-up cell as a Colab kernel would, in ``content``; print where textlab came from."""
    env = dict(os.environ, PYTHONPATH=str(STUB), TEXTLAB_REPO_URL=repo_url, TEXTLAB_QUICK="1")
    env.pop("GIT_TERMINAL_PROMPT", None)
    code = setup_cell() + "print('FROM', textlab.__file__)\nprint('PYTHONPATH', os.environ['PYTHONPATH'])\n"
    return subprocess.run([sys.executable, "-c", code], cwd=content, env=env, capture_output=True,
                          text=True, timeout=CELL_TIMEOUT, stdin=subprocess.DEVNULL)


def imported_from(result: subprocess.CompletedProcess) -> Path:
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("FROM "))
    return Path(line.split(" ", 1)[1])


# ---------------------------------------------------------------------------- the set-up cell

def test_fresh_clone_is_imported_and_exported(origin, tmp_path):
    result = run_cell(tmp_path, origin.as_uri())
    src = tmp_path / "textlab-src"
    assert imported_from(result) == src / "textlab" / "__init__.py"
    assert f"PYTHONPATH {src}" in result.stdout, "`!python -m textlab` would not find the clone"
    assert "Colab supports only 7.x" in result.stderr, "ipywidgets 8 in Colab must be warned about"


def test_a_stale_clone_is_refreshed(origin, tmp_path):
    imported_from(run_cell(tmp_path, origin.as_uri()))
    (origin / "NEWS.txt").write_text("a commit made after the student cloned\n")
    subprocess.run(["git", "add", "NEWS.txt"], cwd=origin, check=True)
    subprocess.run([*GIT, "commit", "-qm", "news"], cwd=origin, check=True)
    try:
        imported_from(run_cell(tmp_path, origin.as_uri()))
        assert (tmp_path / "textlab-src" / "NEWS.txt").is_file(), "git pull --ff-only did not run"
    finally:
        subprocess.run(["git", "reset", "-q", "--hard", "HEAD~1"], cwd=origin, check=True)


def test_a_half_clone_is_replaced(origin, tmp_path):
    half = tmp_path / "textlab-src"
    (half / ".git").mkdir(parents=True)
    (half / "textlab").mkdir()
    (half / "textlab" / "__init__.py").write_text("raise ImportError('half a clone')\n")
    assert imported_from(run_cell(tmp_path, origin.as_uri())) == half / "textlab" / "__init__.py"
    assert (half / "pyproject.toml").is_file()


def test_an_unreachable_repository_stops_with_one_sentence(tmp_path):
    url = (tmp_path / "no-such-repository").as_uri()
    result = run_cell(tmp_path, url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Could not download textlab from {url}: check that address and the internet connection, "
        "then run this cell again.")
    assert not (tmp_path / "textlab-src").exists()


class AskForPassword(http.server.BaseHTTPRequestHandler):
    """What GitHub answers for a private or missing repository: 401, "who are you?"."""

    def do_GET(self):
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_repository_that_asks_for_a_password_fails_instead_of_hanging(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AskForPassword)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/private/textlab"
    try:
        start = time.monotonic()
        result = run_cell(tmp_path, url)
        elapsed = time.monotonic() - start
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 1 and f"Could not download textlab from {url}" in result.stderr
    assert "terminal prompts disabled" in result.stderr, "git must not ask for a password (Colab would block)"
    assert elapsed < 60


def test_outside_colab_the_cell_uses_the_installed_package(tmp_path):
    env = dict(os.environ, TEXTLAB_REPO_URL=(tmp_path / "never-used").as_uri())
    env.pop("PYTHONPATH", None)
    code = setup_cell() + "print('FROM', textlab.__file__)\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=CELL_TIMEOUT)
    assert imported_from(result).parent.parent != tmp_path / "textlab-src"
    assert not (tmp_path / "textlab-src").exists() and "Colab supports" not in result.stderr


def test_the_cell_clones_this_repository_by_default():
    assert f'"https://github.com/{GITHUB_REPO}"' in setup_cell()


# ---------------------------------------------------------------------------- the Colab-like stack

def _require_colab_env() -> None:
    if not COLAB_PYTHON.is_file():
        reason = f"no Colab-like environment at {COLAB_PYTHON} (make .venv-colab/.installed)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}: CI must run it")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def colab_env(origin) -> dict[str, str]:
    """A Colab kernel's environment: google.colab importable, `python` is the Colab-like one,
    QUICK mode, corpora from the local mirror, the repository cloned from the snapshot."""
    _require_colab_env()
    env = dict(os.environ, PYTHONPATH=str(STUB), TEXTLAB_REPO_URL=origin.as_uri(), TEXTLAB_QUICK="1",
               HF_HUB_OFFLINE="1", PATH=f"{COLAB_PYTHON.parent}{os.pathsep}{os.environ['PATH']}")
    env.setdefault("OMP_NUM_THREADS", "1")
    for var in ("TEXTLAB_CACHE", "VIRTUAL_ENV", "GIT_TERMINAL_PROMPT", "TEXTLAB_EXPECT_IPYWIDGETS"):
        env.pop(var, None)
    if not env.get("TEXTLAB_MIRROR") and (SHARED_DATA / "MANIFEST.json").is_file():
        env["TEXTLAB_MIRROR"] = str(SHARED_DATA)
    return env


def code_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


# What a student then types: the command line, from the folder the set-up cell left them in.
STUDENT_CLI = """\
out = !python -m textlab corpora
assert any(line.startswith("tiny_shakespeare") for line in out), out
out = !python -m textlab train --corpus tiny_shakespeare --steps 4 --eval-every 4 --out runs/cli
assert out and out[-1].startswith("val_bpc="), out
out = !python -m textlab sample runs/cli/model.pt --prime "ROMEO:" --length 40 --seed 1
assert any("ROMEO:" in line for line in out), out
assert textlab.__file__ == os.path.abspath("textlab-src/textlab/__init__.py"), textlab.__file__
import ipywidgets, IPython
assert (ipywidgets.__version__, IPython.__version__[0]) == ("7.7.1", "7"), "not the Colab-like stack"
"""


@pytest.mark.colab
def test_every_notebook_runs_through_its_setup_cell_in_the_colab_stack(colab_env, tmp_path):
    content = tmp_path / "content"  # Colab's working folder: notebooks run here, textlab-src/ lands here
    content.mkdir()
    names = [p.name for p in sorted((REPO / "notebooks").glob("*.ipynb"))]
    for name in names:
        shutil.copy(REPO / "notebooks" / name, content / name)
    student = {"cells": [code_cell(setup_cell()), code_cell(STUDENT_CLI)], "nbformat": 4, "nbformat_minor": 4,
               "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    (content / "zz_student_cli.ipynb").write_text(json.dumps(student), encoding="utf-8")
    (content / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    cmd = [str(COLAB_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "pytest.ini", "--rootdir", ".", "--nbval-lax",
           "--nbval-current-env", "--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"),
           *names, "zz_student_cli.ipynb"]
    result = subprocess.run(cmd, cwd=content, env=colab_env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert (content / "textlab-src" / "pyproject.toml").is_file()


WIDGET_MANAGER_TIMEOUT = 30.0  # seconds for ipywidgets 7.7's manager to look for the kernel's widgets


def wait_for_widget_manager(page, console: list[str]) -> None:
    """Wait until the classic Notebook's widget manager has asked the new kernel for its widgets.

    ipywidgets 7.7 first tries a "jupyter.widget.control" comm; a kernel that has not imported
    ipywidgets yet closes it, and the manager falls back to asking for each widget. Widgets made
    while that question waits behind running cells are then never drawn (seen here: with Run
    All at once, 4 of 5 widget outputs stayed empty). A person opens the notebook and reads
    for a moment before Run All; the test waits for that fallback, logged in the console.
    """
    deadline = time.monotonic() + WIDGET_MANAGER_TIMEOUT
    while not any("jupyter.widget.control" in text for text in console):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the widget manager did not start within {WIDGET_MANAGER_TIMEOUT:.0f} s: "
                               f"{console[-10:]}")
        page.wait_for_timeout(200)
    page.wait_for_timeout(1000)  # its question to the idle kernel: answered in milliseconds


@pytest.mark.browser
@pytest.mark.colab
def test_classic_notebook_slider_resamples_with_ipywidgets_7(page, colab_env, tmp_path, monkeypatch):  # noqa: F811
    """Notebook 02 in classic Notebook 6.5 + ipywidgets 7.7.1 (Colab's widget protocol), set-up cell included."""
    root = tmp_path / "content"
    root.mkdir()
    copy_notebook(NOTEBOOK, root, disconnect_slider=DISCONNECT)
    monkeypatch.setattr(ClassicNotebook, "python", str(COLAB_PYTHON))
    with ClassicNotebook.start(root, colab_env, state_dir=tmp_path / "jupyter") as server:
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(server.url(NOTEBOOK.name))
        page.wait_for_function("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                               " && Jupyter.notebook.kernel.is_connected()", timeout=OPEN_TIMEOUT * 1000)
        wait_for_widget_manager(page, console)
        move_slider_and_check(page, ".ui-slider-handle", empty_folder(ARTIFACTS / "classic-notebook"),
                              run_all=lambda: page.evaluate("Jupyter.notebook.execute_all_cells()"),
                              cells=CLASSIC_CELLS)
    assert (root / "textlab-src" / "pyproject.toml").is_file(), "the set-up cell did not clone"


# ---------------------------------------------------------------------------- the student's own text

@pytest.fixture
def user_dir(tmp_path, monkeypatch) -> Path:
    """data/user/ in a temporary folder; the working directory somewhere else, as in Colab's /content."""
    import textlab.notebook

    folder = tmp_path / "textlab-src" / "data" / "user"
    monkeypatch.setattr(textlab.notebook, "USER_DIR", folder)
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture
def colab_module(monkeypatch):
    """``google.colab`` (the stub) imported in this process, as it is in every Colab kernel."""
    monkeypatch.syspath_prepend(str(STUB))
    import google.colab.files

    yield google.colab.files
    for name in ("google.colab.files", "google.colab"):
        sys.modules.pop(name, None)


def test_my_text_finds_the_file_here_or_in_data_user(user_dir, tmp_path):
    from textlab.notebook import my_text

    assert my_text(None) is None and my_text("") is None
    user_dir.mkdir(parents=True)
    (user_dir / "my_book.txt").write_text("my own words\n", encoding="utf-8")
    # The notebooks' example path is relative to notebooks/; from Colab's /content it is looked up by name.
    assert my_text("../data/user/my_book.txt") == str(user_dir / "my_book.txt")
    (tmp_path / "here.txt").write_text("beside me\n", encoding="utf-8")
    assert my_text("here.txt") == "here.txt"


def test_my_text_missing_file_says_where_to_put_it(user_dir):
    from textlab import CorpusError
    from textlab.notebook import my_text

    with pytest.raises(CorpusError, match=f"save your book .* in {user_dir}"):
        my_text("missing.txt")


def test_upload_outside_colab_is_a_clear_error(user_dir):
    from textlab import CorpusError
    from textlab.notebook import my_text

    with pytest.raises(CorpusError, match="Colab only"):
        my_text(upload=True)


def test_upload_in_colab_lands_in_data_user(user_dir, colab_module, monkeypatch):
    from textlab.notebook import my_text

    assert my_text(upload=True) is None  # the picker closed without a file
    monkeypatch.setattr(colab_module, "upload", lambda: {"Book.txt": b"uploaded words\n"})
    path = my_text(upload=True)
    assert path == str(user_dir / "Book.txt")
    assert Path(path).read_bytes() == b"uploaded words\n"
