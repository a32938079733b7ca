"""The slider benchmark's model: each key press must change the chart, or the page waits in vain.

``bench_slider.py`` times a key press until the panel shows the new sample *and* a new chart. An
untrained model's next-character distribution is nearly flat, and its chart (probabilities to
three decimals) read the same at temperatures 0.8 and 0.9 for 5 of 20 random initialisations: the
benchmark then failed after 30 s. Its model cell spreads the read-out bias; checked here over
several initialisations, not only the benchmark's own seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_slider import CELLS  # noqa: E402
from common import SHAKESPEARE_CHARS  # noqa: E402

from textlab.widgets import TEMPERATURE_RANGE, chart_html, next_char_bars  # noqa: E402


def test_every_temperature_step_redraws_the_benchmark_models_chart():
    cell = CELLS[0].format(threads=torch.get_num_threads(), minutes=3.0, chars=SHAKESPEARE_CHARS)
    assert "torch.manual_seed(0)" in cell
    step = TEMPERATURE_RANGE[2]
    for seed in range(10):
        namespace = {}
        exec(cell.replace("torch.manual_seed(0)", f"torch.manual_seed({seed})"), namespace)
        model, vocab = namespace["model"], namespace["vocab"]
        charts = [chart_html(next_char_bars(model, vocab, "ROMEO:", t, None, None), "")
                  for t in (0.8 - step, 0.8, 0.8 + step)]
        assert charts[0] != charts[1] != charts[2], f"seed {seed}: two temperatures draw the same chart"
