"""How long does the temperature slider take, from key press to the new text and chart on screen?

Shows ``SamplerPanel`` for the default CPU CharLSTM of a ``--minutes`` budget (random weights, with
a spread read-out bias so that its chart changes with the temperature; speed does not depend on
them) in JupyterLab, in headless Chromium, and presses the arrow keys on its temperature slider.
Each round trip is timed in the page, from the key press until the panel shows a 300-character
sample headed by the new temperature and a new next-character chart. Beside it, what the kernel
spends on its side of one round trip, timed in the kernel: the sample alone, and
``SamplerPanel.update()`` (sample + chart + the new HTML sent to the page), timed in turn. The rest
is the widget protocol and the browser. Each figure is a median.

    python benchmarks/bench_slider.py                 # about 30 s; needs Debian's chromium
    python benchmarks/bench_slider.py --presses 21 --threads 2

The browser test (``tests/test_browser.py``) runs the same timing on notebook 02's QUICK model.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import SHAKESPEARE_CHARS, append_results, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_support import (CHROMIUM_ARGS, VIEWPORT, JupyterLab, run_all_cells,  # noqa: E402
                             slider_round_trips, wait_for_kernel_idle, wait_until_executed)

LENGTH = 300
# The notebook the browser opens: the default model, the panel, then the kernel's own timings.
CELLS = [
    """import statistics, timeit
from dataclasses import replace

import torch
import textlab
from textlab.config import default_configs
from textlab.widgets import SamplerPanel

torch.set_num_threads({threads})
vocab = textlab.CharVocab({chars!r})
model_cfg, _ = default_configs("cpu", minutes={minutes})
torch.manual_seed(0)
model = textlab.build_model(replace(model_cfg, vocab_size=len(vocab))).eval()
# Untrained, its next-character distribution is nearly flat (every bar ~0.015), and the chart can
# read the same at two temperatures: the page would wait for a change that never comes. A spread
# read-out bias gives the distribution a shape; the time a step takes does not depend on weights.
torch.nn.init.normal_(model.head.bias, std=2.0)""",
    """panel = SamplerPanel(model, vocab, prime="ROMEO:", length={length})
panel""",
    """def median_ms(*fns, repeat=11):
    # Timed in turn, so a slow moment of the machine falls on all of them alike, and the part
    # (the sample) does not come out longer than the whole (the update that contains it).
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ms in zip(fns, times):
            ms.append(1000 * timeit.timeit(fn, number=1))
    return [statistics.median(ms) for ms in times]

sample_ms, update_ms = median_ms(lambda: textlab.sample(model, vocab, "ROMEO:", {length}, 0.8, seed=0),
                                 panel.update)
print(f"kernel: sample_ms={{sample_ms:.1f}} update_ms={{update_ms:.1f}} "
      f"parameters={{textlab.count_parameters(model)}}")""",
]


def write_notebook(path: Path, threads: int, minutes: float) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": c.format(threads=threads, minutes=minutes, length=LENGTH, chars=SHAKESPEARE_CHARS)} for c in CELLS]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=11)
    parser.add_argument("--minutes", type=float, default=3.0, help="the training budget whose default model to show")
    parser.add_argument("--threads", type=int, default=1, help="the kernel's torch threads")
    args = parser.parse_args()
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "notebooks"
        root.mkdir()
        write_notebook(root / "slider.ipynb", args.threads, args.minutes)
        env = {k: v for k, v in os.environ.items() if k != "TEXTLAB_QUICK"}  # the default model, not QUICK's
        env["OMP_NUM_THREADS"] = str(args.threads)
        with JupyterLab.start(root, env, state_dir=Path(tmp) / "jupyter") as lab:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(lab.url("slider.ipynb"))
                wait_for_kernel_idle(page, 90)
                run_all_cells(page)
                wait_until_executed(page, 300)
                kernel = page.locator(".jp-OutputArea-output", has_text="kernel: ").inner_text()
                page.locator(".textlab-sampler").scroll_into_view_if_needed()
                times = slider_round_trips(page, ".noUi-handle", args.presses)
                browser.close()

    found = dict(re.findall(r"(\w+)=([\d.]+)", kernel))
    sample_ms, update_ms = float(found["sample_ms"]), float(found["update_ms"])
    trip = statistics.median(times)
    rest = trip - update_ms
    rows = [["key press → new text and chart drawn (browser)", f"{trip:.0f}", "100%"],
            [f"  kernel: SamplerPanel.update() ({LENGTH}-char sample, chart, HTML)", f"{update_ms:.0f}",
             f"{update_ms / trip:.0%}"],
            [f"    of which the {LENGTH}-char sample", f"{sample_ms:.0f}", f"{sample_ms / trip:.0%}"],
            ["  widget protocol and browser (the rest)", f"{rest:.0f}", f"{rest / trip:.0%}"]]
    body = table([f"slider round trip, {args.minutes:g}-minute default CharLSTM "
                  f"({int(found['parameters']):,} parameters), {args.presses} presses", "ms (median)", "share"], rows)
    body += (f"\n\nround trips: min {min(times):.0f} ms, max {max(times):.0f} ms (target ≤ 150 ms); "
             f"kernel threads: {args.threads}")
    print(body)
    append_results("bench_slider", " ".join(["python"] + sys.argv), body)
    print(f"round_trip_ms={trip:.0f} update_ms={update_ms:.1f} sample_ms={sample_ms:.1f}")


if __name__ == "__main__":
    main()
