"""Interactive panels for the notebooks: play with a model's sampling knobs, pick a corpus.

    panel = SamplerPanel(model, vocab, prime="ROMEO:")
    panel                       # the last line of a cell shows the sliders, the sample and the chart

Every control re-samples when it changes: sliders only when released (``continuous_update=False``),
not at each position of a drag, so the kernel never falls behind the mouse. Beside each sample
a bar chart shows the distribution over the character that follows the prime, after the same
temperature, top-k and top-p, so you can watch the temperature flatten or sharpen it.

The callbacks only set widget values (the HTML of the sample and of the chart); they never print
or ``display``. Printed text would land in the notebook as stray output (and fails ``nbval``).
They sample on one CPU thread (see ``one_thread``).
The code uses only what ipywidgets 7.7 (Colab) and 8 have in common.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import ipywidgets as widgets
import torch
import torch.nn as nn
from IPython.display import display

from .checkpoints import Loaded
from .config import TextlabError
from .corpora import Text, get_corpus, load_corpus, load_text, registry
from .plots import show_char
from .sampling import next_char_probs, probabilities, sample
from .vocab import CharVocab

# The controls' ranges. A top-k of 0 and a top-p of 1.0 mean "off".
TEMPERATURE_RANGE = (0.0, 2.0, 0.1)  # (min, max, step); 0 = greedy
TOP_P_RANGE = (0.05, 1.0, 0.05)
LENGTH_RANGE = (10, 1000, 10)
SEED_MAX = 2**31 - 1  # the seed box clamps to [0, SEED_MAX]; torch's generator takes any of them
CHART_BARS = 15  # the most likely characters the chart shows

_MONO = "font-family: monospace; font-size: 13px;"
_SAMPLE_STYLE = f"{_MONO} white-space: pre-wrap; word-break: break-word; line-height: 1.35;"
_HEADER_STYLE = "color: #555; font-size: 12px; margin-bottom: 4px;"
_PRIME_STYLE = "background: #fff3b0;"
_ERROR_STYLE = (f"{_MONO} color: #a40000; background: #fdecea; border-left: 3px solid #a40000; "
                "padding: 4px 8px; white-space: pre-wrap;")
_BAR_COLOR, _TRACK_COLOR = "#4c72b0", "#e8e8e8"


def visible_char_tail(prime: str, width: int = 12) -> str:
    """The end of the prime with its invisible characters shown, e.g. ``…ROMEO:⏎``."""
    tail = "".join(show_char(c) for c in prime[-width:])
    return ("…" if len(prime) > width else "") + tail


def settings_line(temperature: float, top_k: int | None, top_p: float | None, seed: int) -> str:
    """The header above a sample, e.g. ``T=0.8, top-k off, top-p off, seed 0``."""
    t = "T=0 (greedy)" if temperature == 0 else f"T={temperature:g}"
    k = f"top-k {top_k}" if top_k else "top-k off"
    p = f"top-p {top_p:g}" if top_p else "top-p off"
    return f"{t}, {k}, {p}, seed {seed}"


def sample_html(header: str, prime: str, text: str) -> str:
    """The sample as HTML: escaped, line breaks kept, the prime highlighted."""
    generated = text[len(prime):]
    return (f'<div style="{_HEADER_STYLE}">{html.escape(header)}</div>'
            f'<div style="{_SAMPLE_STYLE}"><span style="{_PRIME_STYLE}">{html.escape(prime)}</span>'
            f"{html.escape(generated)}</div>")


def failure_message(err: Exception) -> str:
    """What the panel shows instead of a sample: the error's type and message, and what to try.

    An exception raised in a widget callback is not shown anywhere by Jupyter or Colab: without
    this the panel would simply look frozen.
    """
    if isinstance(err, (TextlabError, ValueError)):  # bad input, e.g. a prime the vocabulary lacks
        hint = "change the prime or the sliders above"
    else:                                            # the model or the library itself failed
        hint = ("move a slider to try again; if it keeps failing, re-run the cells that build the "
                "model and this panel (`raise panel.error` in a cell shows the full traceback)")
    return f"cannot sample: {type(err).__name__}: {err}\nTry: {hint}."


def error_html(header: str, message: str) -> str:
    return (f'<div style="{_HEADER_STYLE}">{html.escape(header)}</div>'
            f'<div style="{_ERROR_STYLE}">{html.escape(message)}</div>')


def chart_html(bars: list[tuple[str, float]], title: str) -> str:
    """Horizontal bars in plain HTML/CSS: one row per character, its probability written beside it.

    A bar's length is the probability itself (a full bar is 1.0), so a flatter distribution
    shows as shorter bars, not rescaled ones.
    """
    rows = []
    for char, prob in bars:
        rows.append(
            '<div style="display: flex; align-items: center; gap: 6px; height: 17px;">'
            f'<span style="width: 2.5em; text-align: right;">{html.escape(show_char(char))}</span>'
            f'<div style="flex: 1; height: 11px; background: {_TRACK_COLOR};">'
            f'<div style="width: {100 * prob:.1f}%; height: 100%; background: {_BAR_COLOR};"></div></div>'
            f'<span style="width: 3.5em; text-align: right;">{prob:.3f}</span></div>')
    return (f'<div style="{_MONO} width: 22em;"><div style="{_HEADER_STYLE}">{html.escape(title)}</div>'
            + "".join(rows) + "</div>")


def next_char_bars(model: nn.Module, vocab: CharVocab, prime: str, temperature: float,
                   top_k: int | None, top_p: float | None, bars: int = CHART_BARS) -> list[tuple[str, float]]:
    """The ``bars`` most likely next characters and their probabilities after the sampling knobs.

    Characters are ranked by the model's own preference (temperature 1, nothing cut), so those
    that top-k or top-p removed stay on the chart with probability 0. The knobs are applied to
    the log-probabilities: they differ from the logits by a constant, which softmax ignores.
    """
    base = next_char_probs(model, vocab, prime)                          # (V,), temperature 1
    probs = probabilities(base.log(), temperature, top_k, top_p)          # (V,)
    order = base.argsort(descending=True, stable=True)[:bars]
    return [(vocab.chars[i], float(probs[i])) for i in order.tolist()]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run PyTorch on one CPU thread inside the block; the thread count comes back after.

    One stream's sample is a string of one-row products and small operations, and a second
    thread makes it no faster. But when the browser runs on the same machine as the kernel (a
    notebook on a laptop), it draws the page while the kernel samples, and on two cores a kernel
    that wants both waits for one: the slider's round trip took 1.2–1.4× as long
    (benchmarks/RESULTS.md, "Round 2q").
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def model_pairs(models, vocab: CharVocab | None) -> dict[str, tuple[nn.Module, CharVocab]]:
    """Accept one model plus its vocab, a checkpoint, or a dict of name → (model, vocab) / checkpoint."""
    if not isinstance(models, dict):
        if isinstance(models, Loaded):
            models, vocab = models.model, models.vocab
        if vocab is None:
            raise TextlabError("SamplerPanel(model, vocab): pass the vocabulary the model was trained "
                               "with, or a dict {name: (model, vocab)}")
        models = {type(models).__name__: (models, vocab)}
    if not models:
        raise TextlabError("SamplerPanel needs at least one model")
    pairs = {}
    for name, entry in models.items():
        if isinstance(entry, Loaded):
            entry = (entry.model, entry.vocab)
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], nn.Module)
                and isinstance(entry[1], CharVocab)):
            raise TextlabError(f"models[{name!r}] must be a (model, vocab) pair or a loaded checkpoint")
        pairs[str(name)] = entry
    return pairs


class _Shown:
    """Shows ``self.widget`` when the object is the last line of a cell, or given to ``display``."""

    widget: widgets.Box

    def _ipython_display_(self, **kwargs) -> None:
        # ipywidgets 8 shows a widget through _repr_mimebundle_, 7 through _ipython_display_;
        # display() on the widget itself picks whichever the installed version has.
        display(self.widget)


@dataclass
class _View:
    """One model's part of the panel: its sample box and its chart."""

    model: nn.Module
    vocab: CharVocab
    sample: widgets.HTML
    chart: widgets.HTML


class SamplerPanel(_Shown):
    """Sliders and boxes that re-sample one or several models; one shared set of controls.

        SamplerPanel(model, vocab)                                       # one model
        SamplerPanel({"CharLSTM": (lstm, v1), "MiniGPT": (gpt, v2)})     # side by side

    After each change ``text`` holds the current sample of the first model and ``chart_data``
    its chart as (character, probability) pairs; ``texts`` and ``charts`` hold every model's,
    by name (empty after an error, which shows in the sample box instead of being raised;
    ``error`` keeps the last one, for its traceback).
    """

    def __init__(self, models, vocab: CharVocab | None = None, prime: str = "\n", length: int = 300,
                 temperature: float = 0.8, seed: int = 0):
        pairs = model_pairs(models, vocab)
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        self.temperature = widgets.FloatSlider(
            value=temperature, min=TEMPERATURE_RANGE[0], max=TEMPERATURE_RANGE[1],
            step=TEMPERATURE_RANGE[2], readout_format=".1f", description="temperature", **slider)
        self.top_k = widgets.IntSlider(value=0, min=0, max=max(len(v) for _, v in pairs.values()),
                                       description="top-k (0 = off)", **slider)
        self.top_p = widgets.FloatSlider(value=1.0, min=TOP_P_RANGE[0], max=TOP_P_RANGE[1],
                                         step=TOP_P_RANGE[2], readout_format=".2f",
                                         description="top-p (1 = off)", **slider)
        self.length = widgets.IntSlider(value=length, min=LENGTH_RANGE[0], max=LENGTH_RANGE[1],
                                        step=LENGTH_RANGE[2], description="length", **slider)
        # A Textarea, not a Text: a one-line box cannot hold a prime such as "\n" or "ROMEO:\n".
        self.prime = widgets.Textarea(value=prime, description="prime", rows=2, **slider)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=SEED_MAX, description="seed",
                                           layout=widgets.Layout(width="11em"),
                                           style={"description_width": "initial"})
        self.regenerate = widgets.Button(description="regenerate", tooltip="draw again with the next seed")
        self.regenerate.on_click(self._next_seed)

        self.views = {name: _View(model, vocab, widgets.HTML(), widgets.HTML())
                      for name, (model, vocab) in pairs.items()}
        self.texts: dict[str, str] = {}
        self.charts: dict[str, list[tuple[str, float]]] = {}
        self.error: Exception | None = None
        self.widget = self._layout()
        for control in (self.temperature, self.top_k, self.top_p, self.length, self.prime, self.seed):
            control.observe(self._on_change, names="value")
        self.update()

    def _layout(self) -> widgets.Box:
        for name in ("temperature", "top_k", "top_p", "length", "prime", "seed", "regenerate"):
            getattr(self, name).add_class("textlab-" + name.replace("_", "-"))
        for view in self.views.values():
            view.sample.add_class("textlab-sample")
            view.chart.add_class("textlab-chart")
            view.sample.layout = widgets.Layout(flex="1 1 auto", min_width="18em")
        controls = widgets.VBox([widgets.HBox([self.temperature, self.top_k, self.top_p]),
                                 widgets.HBox([self.length, self.seed, self.regenerate]),
                                 self.prime])
        if len(self.views) == 1:  # one model: the chart beside its sample
            view = next(iter(self.views.values()))
            outputs = widgets.HBox([view.sample, view.chart])
        else:                     # several: one column per model, its chart under its sample
            outputs = widgets.HBox([widgets.VBox([v.sample, v.chart], layout=widgets.Layout(flex="1 1 0"))
                                    for v in self.views.values()])
        box = widgets.VBox([controls, outputs])
        box.add_class("textlab-sampler")
        return box

    @property
    def text(self) -> str:
        """The current sample of the first model ("" after an error)."""
        return next(iter(self.texts.values()))

    @property
    def chart_data(self) -> list[tuple[str, float]]:
        """The first model's chart: (character, probability), most likely first."""
        return next(iter(self.charts.values()))

    def _next_seed(self, _button=None) -> None:
        self.seed.value = (self.seed.value + 1) % (SEED_MAX + 1)  # the seed's observer re-samples

    def _on_change(self, _change=None) -> None:
        self.update()

    def update(self) -> None:
        """Re-sample every model with the controls' current values and redraw the charts."""
        temperature, prime, length, seed = (self.temperature.value, self.prime.value, self.length.value,
                                            self.seed.value)
        top_k = self.top_k.value or None
        top_p = self.top_p.value if self.top_p.value < 1 else None
        header = settings_line(temperature, top_k, top_p, seed)
        title = f"next character after {visible_char_tail(prime)}"
        self.error = None
        for name, view in self.views.items():
            label = header if len(self.views) == 1 else f"{name}: {header}"
            try:
                with one_thread():
                    text = sample(view.model, view.vocab, prime, length, temperature, top_k, top_p, seed)
                    bars = next_char_bars(view.model, view.vocab, prime, temperature, top_k, top_p)
            except Exception as err:  # noqa: BLE001 — raised in a widget callback it would vanish
                self.error, self.texts[name], self.charts[name] = err, "", []
                view.sample.value = error_html(label, failure_message(err))
                view.chart.value = ""
                continue
            self.texts[name], self.charts[name] = text, bars
            view.sample.value = sample_html(label, prime, text)
            view.chart.value = chart_html(bars, title)



# ---------------------------------------------------------------------------- corpus picker

OWN_FILE = "<your own file>"  # the dropdown's last entry: load the path typed below it


class CorpusPicker(_Shown):
    """A dropdown of the course's corpora plus a box for the path of your own text file."""

    def __init__(self, default: str = "tiny_shakespeare"):
        get_corpus(default)  # an unknown name: a clear error listing the known ones
        self.corpora = registry()
        options = [(f"{c.title} ({c.language})", name) for name, c in self.corpora.items()]
        self.choice = widgets.Dropdown(options=options + [("your own file (path below)", OWN_FILE)],
                                       value=default, description="corpus",
                                       layout=widgets.Layout(width="40em"))
        self.path = widgets.Text(placeholder="path/to/your_text.txt (UTF-8)", description="your own file",
                                 continuous_update=False, style={"description_width": "initial"},
                                 layout=widgets.Layout(width="40em"))
        self.info = widgets.HTML()
        self.choice.add_class("textlab-corpus")
        self.path.add_class("textlab-path")
        self.choice.observe(self._show_info, names="value")
        self.path.observe(self._pick_own_file, names="value")
        self.widget = widgets.VBox([self.choice, self.path, self.info])
        self._show_info()

    def _pick_own_file(self, _change=None) -> None:
        if self.path.value.strip():
            self.choice.value = OWN_FILE

    def _show_info(self, _change=None) -> None:
        corpus = self.corpora.get(self.choice.value)
        facts = (f"{corpus.author} · {corpus.bytes / 1e6:.2f} MB · {corpus.license}" if corpus
                 else "a UTF-8 text file of your own; the bigger the better (1 MB or more)")
        self.info.value = f'<div style="{_HEADER_STYLE}">{html.escape(facts)}</div>'

    def load(self) -> Text:
        """The chosen text, cleaned: a course corpus (downloaded once) or your own file."""
        if self.choice.value != OWN_FILE:
            return load_corpus(self.choice.value)
        if not self.path.value.strip():
            raise TextlabError("type the path of your text file into the 'your own file' box")
        return load_text(self.path.value.strip())


def corpus_picker(default: str = "tiny_shakespeare") -> CorpusPicker:
    """Show it in a cell, choose, then ``text = picker.load()`` in the next cell."""
    return CorpusPicker(default)
