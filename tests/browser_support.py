"""Helpers for the real-browser test: a throw-away JupyterLab server and what a user does in it.

    with JupyterLab.start(root, env, state) as lab:  # jupyter lab on 127.0.0.1, a free port, a random token
        page.goto(lab.url("notebook.ipynb"))         # a Playwright page in headless Chromium
        run_all_cells(page); wait_until_executed(page)
        ...
    # here the server and its kernels are stopped: nothing is left running, even after a SIGTERM

Everything the server writes (settings, workspaces, runtime files, kernel specs) goes to a
temporary folder, so the test neither reads nor changes the settings of the person running it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textlab.widgets import TEMPERATURE_RANGE

# Debian's chromium, driven by the Python playwright package: nothing is downloaded.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}

SERVER_START_TIMEOUT = 60.0   # seconds for `jupyter lab` to answer HTTP
SERVER_STOP_TIMEOUT = 15.0    # seconds for it to shut down its kernels after SIGTERM
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 is never proxied

# JupyterLab user settings: no news or update pop-ups over the notebook, every cell kept in the
# page (no virtual scrolling) so the test finds the panel wherever it is, and no autosave.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

# Where a front end shows a code cell's prompt and its outputs: JupyterLab, classic Notebook 6.
LAB_CELLS = {"prompts": ".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", "outputs": ".jp-OutputArea-output"}
CLASSIC_CELLS = {"prompts": ".code_cell .input_prompt", "outputs": ".output_area .output_subarea"}

# What a cell's prompt shows: "[*]:" queued or running, "[ ]:" not run, "[12]:" done.
_PROMPTS_JS = """(cells) => {
    const prompts = [...document.querySelectorAll(cells.prompts)]
        .map(p => p.innerText.trim());
    return {
        total: prompts.length,
        running: prompts.filter(p => p.includes('*')).length,
        done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length,
    };
}"""
_ERRORS_JS = """(cells) => [...document.querySelectorAll(cells.outputs)]
    .map(o => o.innerText).filter(t => /Traceback|Error:/.test(t)).map(t => t.slice(-1500))"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(settings_dir: Path) -> None:
    """Write LAB_SETTINGS where JupyterLab looks for a user's settings (JUPYTERLAB_SETTINGS_DIR)."""
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        path = settings_dir / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def copy_notebook(source: Path, dest_dir: Path, disconnect_slider: bool = False) -> Path:
    """Copy a notebook without its outputs, so whatever the test sees was made by this run.

    ``disconnect_slider=True`` sabotages the copy: the SamplerPanel's temperature slider no
    longer re-samples. The browser test must fail on such a copy; it is how we check the test.
    """
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.get("metadata", {}).pop("widgets", None)
    if disconnect_slider:
        _disconnect_slider(nb)
    dest = dest_dir / source.name
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return dest


def _disconnect_slider(nb: dict) -> None:
    """Rewrite the cell ending in ``SamplerPanel(...)`` so its temperature slider does nothing."""
    for cell in nb["cells"]:
        lines = "".join(cell["source"]).rstrip().splitlines()
        if cell["cell_type"] == "code" and lines and lines[-1].startswith("SamplerPanel("):
            lines[-1:] = [f"panel = {lines[-1]}",
                          'panel.temperature.unobserve(panel._on_change, names="value")',
                          "panel"]
            cell["source"] = "\n".join(lines)
            return
    raise ValueError("no cell ends in SamplerPanel(...): cannot disconnect its slider")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@dataclass
class JupyterLab:
    """A `jupyter lab` server this process started, in its own process group.

    Use it as ``with JupyterLab.start(...) as lab:``. The server runs in a session of its own, so
    it outlives this process unless ``stop`` runs; and a SIGTERM (``timeout``, a cancelled CI job)
    ends Python at once, skipping every ``finally``. Inside the ``with`` block a SIGTERM raises
    KeyboardInterrupt instead, as Ctrl-C would: the block and pytest's fixtures unwind and the
    server is stopped.
    """

    process: subprocess.Popen
    port: int
    token: str
    log_path: Path
    _sigterm_before: Any = field(default=None, repr=False)

    def __enter__(self) -> "JupyterLab":
        self._sigterm_before = signal.signal(signal.SIGTERM, _interrupt)
        return self

    def __exit__(self, *exc_info) -> None:
        signal.signal(signal.SIGTERM, self._sigterm_before)
        self.stop()

    @classmethod
    def command(cls, port: int, token: str, root: Path) -> list[str]:
        return [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                "--ServerApp.port_retries=0", "--allow-root", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]

    @classmethod
    def start(cls, root: Path, env: dict[str, str], state_dir: Path) -> "JupyterLab":
        """Serve ``root`` on 127.0.0.1 with a random token; its own files go under ``state_dir``.

        The kernels it starts inherit ``env``: that is how TEXTLAB_QUICK and friends reach them.
        """
        port, token = free_port(), secrets.token_hex(16)
        env = dict(env)
        for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("IPYTHONDIR", "ipython")]:
            env[var] = str(state_dir / sub)
        write_lab_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
        log_path = state_dir / "jupyter-lab.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(cls.command(port, token, root), env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        lab = cls(process, port, token, log_path)
        try:
            lab._wait_until_ready()
        except BaseException:
            lab.stop()
            raise
        return lab

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{type(self).__name__} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with _NO_PROXY.open(f"http://127.0.0.1:{self.port}/api/status?token={self.token}",
                                    timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"{type(self).__name__} did not answer within {SERVER_START_TIMEOUT:.0f} s:\n"
                           + self.log_tail())

    def stop(self) -> None:
        """SIGTERM to the server's process group; SIGKILL if it has not exited in time.

        On SIGTERM the server shuts its kernels down. Kernels run in sessions of their own, but
        each also watches its parent and exits when the server is gone, even after a SIGKILL.
        """
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


class ClassicNotebook(JupyterLab):
    """A classic Notebook 6 server (what Colab's front end speaks to widgets), run by ``PYTHON``.

    Set ``ClassicNotebook.python`` to the interpreter of the environment that has ``notebook``
    6.5 installed; its kernels are that environment's too.
    """

    python = sys.executable

    @classmethod
    def command(cls, port: int, token: str, root: Path) -> list[str]:
        return [cls.python, "-m", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                "--NotebookApp.port_retries=0", "--allow-root", f"--NotebookApp.token={token}",
                f"--notebook-dir={root}"]

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/notebooks/{notebook}?token={self.token}"


def wait_for_kernel_idle(page, timeout_s: float) -> None:
    """Wait until the status bar says "<kernel name> | Idle": a kernel started, connected, free.

    (The toolbar's execution indicator says "idle" before any kernel exists: not a signal.)
    """
    status = page.locator("#jp-main-statusbar .jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    status.wait_for(timeout=timeout_s * 1000)


def run_all_cells(page) -> None:
    """What a user does: the Run menu, then "Run All Cells"."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def wait_until_executed(page, timeout_s: float, cells: dict[str, str] = LAB_CELLS) -> None:
    """Wait until every code cell of a notebook opened without outputs has run: each shows a number.

    A cell that raises stops "Run All": the cells after it stay unrun ("[ ]"), and we fail at
    once with the traceback shown in the page.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = page.evaluate(_PROMPTS_JS, cells)
        if state["running"] == 0 and state["done"] > 0:
            if state["done"] == state["total"]:
                return
            raise AssertionError(f"Run All stopped after {state['done']} of {state['total']} cells:\n"
                                 + "\n---\n".join(page.evaluate(_ERRORS_JS, cells)))
        page.wait_for_timeout(500)
    state = page.evaluate(_PROMPTS_JS, cells)
    raise TimeoutError(f"the notebook did not finish within {timeout_s:.0f} s "
                       f"({state['done']} of {state['total']} cells done)")


# ---------------------------------------------------------------- textlab's SamplerPanel

# The panel as the user sees it: the slider's number, the sample's header line, its text, the chart.
PANEL_JS = """() => {
    const panel = document.querySelector('.textlab-sampler');
    const [header, text] = panel.querySelectorAll('.textlab-sample .widget-html-content > div');
    return {
        readout: panel.querySelector('.textlab-temperature .widget-readout').innerText.trim(),
        header: header.innerText.trim(),
        text: text.innerText,
        chart: panel.querySelector('.textlab-chart').innerText.trim(),
    };
}"""

# Arms a timer: from the next key press until the panel shows a sample headed `prefix` and a new chart.
# It resolves to [the press's, the drawing's] times in ms since 1970, the wall clock the kernel's time.time() reads.
ARM_ROUND_TRIP_JS = """(prefix) => {
    const panel = document.querySelector('.textlab-sampler');
    const chart = () => panel.querySelector('.textlab-chart').innerText;
    const header = () => panel.querySelector('.textlab-sample .widget-html-content > div').innerText.trim();
    const oldChart = chart();
    window.__pressed = undefined;  // set by the next key press, not left over from the last round trip
    document.addEventListener('keydown', () => { window.__pressed = performance.now(); }, {capture: true, once: true});
    window.__roundTrip = new Promise((resolve, reject) => {
        const giveUp = setTimeout(() => {  // fail with what the page shows, rather than wait for ever
            observer.disconnect();
            const seen = window.__pressed === undefined ? 'no key press reached the page'
                : `the header reads "${header().slice(0, 40)}", the chart ` +
                  (chart() === oldChart ? 'did not change' : 'changed');
            reject(new Error(`no sample headed "${prefix}" with a new chart 30 s after arming: ${seen}`));
        }, 30000);
        const observer = new MutationObserver(() => {
            if (window.__pressed !== undefined && header().startsWith(prefix) && chart() !== oldChart) {
                observer.disconnect();
                clearTimeout(giveUp);
                resolve([performance.timeOrigin + window.__pressed, performance.timeOrigin + performance.now()]);
            }
        });
        observer.observe(panel, {subtree: true, childList: true, characterData: true});
    });
}"""


@dataclass(frozen=True)
class RoundTrip:
    """One key press on the temperature slider until the new sample and chart are drawn."""

    pressed: float  # when, in ms since 1970 (the clock Python's ``time.time()`` reads, × 1000)
    drawn: float

    @property
    def ms(self) -> float:
        return self.drawn - self.pressed


def slider_round_trips(page, handle_selector: str, presses: int) -> list[RoundTrip]:
    """Time ``presses`` key presses on the temperature slider, each until its sample and chart are drawn.

    The presses alternate right and left, so the temperature stays near where it started.
    """
    handle = page.locator(f".textlab-temperature {handle_selector}")
    times = []
    for i in range(presses):
        key, step = ("ArrowLeft", -1) if i % 2 else ("ArrowRight", 1)
        readout = float(page.evaluate(PANEL_JS)["readout"])
        target = round(readout + step * TEMPERATURE_RANGE[2], 1)
        page.evaluate(ARM_ROUND_TRIP_JS, f"T={target:g},")
        handle.press(key)
        times.append(RoundTrip(*page.evaluate("() => window.__roundTrip")))
    return times
