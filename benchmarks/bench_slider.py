"""How long does the temperature slider take, from key press to the new text and chart on screen?

Shows ``SamplerPanel`` for the default CPU CharLSTM of a ``--minutes`` budget (random weights, with
a spread read-out bias so that its chart changes with the temperature; speed does not depend on
them) in JupyterLab, in headless Chromium, and presses the arrow keys on its temperature slider.
Each round trip is timed in the page, from the key press until the panel shows a 300-character
sample headed by the new temperature and a new next-character chart, and split in three by the
kernel, which notes when each ``SamplerPanel.update()`` (sample + chart + the new HTML sent to the
page) starts and ends on the same wall clock: the press reaching the kernel (browser, widget
protocol, Jupyter server), the update itself, and its HTML reaching the page. Beside them, the
same update and the sample alone timed in turn in a loop in the kernel, as the other benchmarks
time code. Each figure is a median, so the parts need not add up to the whole exactly. Last, the
CPU time each taking part used per key press (the kernel, the browser's processes, the Jupyter
server, Playwright and this script), all on the same cores: on a two-core machine the update runs
slower during the presses than in the loop, while the browser draws.

    python benchmarks/bench_slider.py                 # about 30 s; needs Debian's chromium
    python benchmarks/bench_slider.py --presses 21 --threads 1

The browser test (``tests/test_browser.py``) runs the same timing on notebook 02's QUICK model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from common import SHAKESPEARE_CHARS, Parser, append_results, cores, positive, run_main, table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_support import (CHROMIUM_ARGS, VIEWPORT, JupyterLab, RoundTrip, run_all_cells,  # noqa: E402
                             slider_round_trips, wait_for_kernel_idle, wait_until_executed)

LENGTH = 300
# The notebook the browser opens: the default model, the panel, then the kernel's own timings.
CELLS = [
    """import statistics, time, timeit
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
update_log = open({log!r}, "a")


def logged_update(update=panel.update):  # when each update starts and ends, in ms since 1970
    start = time.time()
    update()
    print(f"{{1000 * start:.1f}} {{1000 * time.time():.1f}}", file=update_log, flush=True)


panel.update = logged_update  # the sliders' observer calls panel.update()
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


ROLES = ("kernel", "browser", "Jupyter server", "Playwright and this script")


def cpu_ms_by_role() -> dict[str, float]:
    """CPU time (user + system) used so far by this process and those it started, grouped by role."""
    used = dict.fromkeys(ROLES, 0.0)
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            command, times = " ".join(proc.cmdline()), proc.cpu_times()
        except psutil.Error:  # it ended meanwhile
            continue
        role = ("kernel" if "ipykernel" in command else "browser" if "chrom" in command
                else "Jupyter server" if "jupyter" in command else "Playwright and this script")
        used[role] += 1000 * (times.user + times.system)
    return used


def split_round_trips(trips: list[RoundTrip], updates: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """Each round trip's three parts in ms: the press reaching the kernel, the update, its HTML reaching the page.

    ``updates`` are the kernel's (start, end) times, on the clock of the trips' ``pressed`` and
    ``drawn``; a trip's update is the one that started between its key press and its drawing (the
    kernel's timing loop also calls the update, outside the presses' windows).
    """
    parts = []
    for trip in trips:
        mine = [(start, end) for start, end in updates if trip.pressed <= start <= trip.drawn]
        if len(mine) != 1:
            raise RuntimeError(f"{len(mine)} kernel updates between a key press and its drawing, "
                               f"not 1: the kernel's log {updates}, the trip {trip}")
        start, end = mine[0]
        parts.append((start - trip.pressed, end - start, trip.drawn - end))
    return parts


def write_notebook(path: Path, threads: int, minutes: float, log: Path) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": c.format(threads=threads, minutes=minutes, length=LENGTH, chars=SHAKESPEARE_CHARS,
                                 log=str(log))} for c in CELLS]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=positive(int), default=11)
    parser.add_argument("--minutes", type=positive(float), default=3.0,
                        help="the training budget whose default model to show")
    parser.add_argument("--threads", type=positive(int), default=cores(),
                        help="the kernel's torch threads (default: one per core, as a student's kernel has)")
    args = parser.parse_args()
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is not installed: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "notebooks"
        root.mkdir()
        log = Path(tmp) / "updates.txt"
        write_notebook(root / "slider.ipynb", args.threads, args.minutes, log)
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
                cpu_before, wall_before = cpu_ms_by_role(), time.perf_counter()
                times = slider_round_trips(page, ".noUi-handle", args.presses)
                wall_ms = 1000 * (time.perf_counter() - wall_before)
                cpu = {role: (ms - cpu_before[role]) / args.presses for role, ms in cpu_ms_by_role().items()}
                browser.close()
        updates = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]

    found = dict(re.findall(r"(\w+)=([\d.]+)", kernel))
    sample_ms, update_ms = float(found["sample_ms"]), float(found["update_ms"])
    trip_ms = [t.ms for t in times]
    trip = statistics.median(trip_ms)
    to_kernel, in_kernel, to_page = (statistics.median(part) for part in zip(*split_round_trips(times, updates)))
    rows = [["key press → new text and chart drawn (browser)", f"{trip:.0f}", "100%"],
            ["  the press reaches the kernel (browser, widget protocol, Jupyter server)", f"{to_kernel:.0f}",
             f"{to_kernel / trip:.0%}"],
            [f"  kernel: SamplerPanel.update() ({LENGTH}-char sample, chart, HTML), during the presses",
             f"{in_kernel:.0f}", f"{in_kernel / trip:.0%}"],
            ["  its HTML reaches the page and is drawn", f"{to_page:.0f}", f"{to_page / trip:.0%}"],
            ["the same update timed in a loop in the kernel", f"{update_ms:.0f}", f"{update_ms / trip:.0%}"],
            [f"  of which the {LENGTH}-char sample", f"{sample_ms:.0f}", f"{sample_ms / trip:.0%}"]]
    body = table([f"slider round trip, {args.minutes:g}-minute default CharLSTM "
                  f"({int(found['parameters']):,} parameters), {args.presses} presses", "ms (median)", "share"], rows)
    body += (f"\n\nround trips: min {min(trip_ms):.0f} ms, max {max(trip_ms):.0f} ms "
             f"(target ≤ 150 ms); kernel threads: {args.threads}\n"
             f"CPU time per key press ({wall_ms / args.presses:.0f} ms of wall time each, on {os.cpu_count()} cores): "
             + ", ".join(f"{role} {ms:.0f} ms" for role, ms in cpu.items()))
    print(body)
    append_results("bench_slider", " ".join(["python"] + sys.argv), body)
    print(f"round_trip_ms={trip:.0f} update_ms={update_ms:.1f} sample_ms={sample_ms:.1f} "
          f"to_kernel_ms={to_kernel:.1f} update_during_presses_ms={in_kernel:.1f} to_page_ms={to_page:.1f}")


if __name__ == "__main__":
    run_main(main)
