"""The widget wiring, tested without a browser: set a control's value, check what the panel shows.

Run these under ipywidgets 8 (the venv) and 7.7 (what Colab ships); with
TEXTLAB_EXPECT_IPYWIDGETS=7 or 8 the first test checks that the run really used that version.
"""

import os

import ipywidgets
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output
from traitlets.config import Config

from textlab import CharLSTM, CharVocab, TextlabError
from textlab.checkpoints import Loaded
from textlab.plots import show_char
from textlab.widgets import OWN_FILE, SEED_MAX, SamplerPanel, corpus_picker

# ipywidgets 7 creates its comms through a class that ipykernel 7 has deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:The `ipykernel.comm.Comm` class has been deprecated")

TEXT = "to be, or not to be: that is the question.\n<b>&</b> ROMEO\n"


def tiny_model(seed: int = 0) -> tuple[CharLSTM, CharVocab]:
    torch.manual_seed(seed)
    vocab = CharVocab.from_text(TEXT)
    model = CharLSTM(len(vocab), embed_dim=8, hidden_size=16)
    with torch.no_grad():
        model.head.weight.mul_(20)  # an untrained but opinionated model: a peaked distribution
    return model, vocab


@pytest.fixture
def panel():
    model, vocab = tiny_model()
    return SamplerPanel(model, vocab, prime="to ", length=60, temperature=0.8, seed=0)


def nonzero(chart):
    return sum(p > 0 for _, p in chart)


def tree(widget):
    """The widget and everything inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from tree(child)


def test_runs_under_the_expected_ipywidgets():
    expected = os.environ.get("TEXTLAB_EXPECT_IPYWIDGETS")
    if not expected:
        pytest.skip("set TEXTLAB_EXPECT_IPYWIDGETS=7 or 8 to check which ipywidgets this run uses")
    assert ipywidgets.__version__.split(".")[0] == expected, ipywidgets.__version__


def test_first_sample_and_chart(panel):
    assert panel.text.startswith("to ") and len(panel.text) == 3 + 60
    assert len(panel.chart_data) == 15
    probs = [p for _, p in panel.chart_data]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    sample = panel.views["CharLSTM"].sample.value
    assert "T=0.8, top-k off, top-p off, seed 0" in sample and "white-space: pre-wrap" in sample


def test_temperature_resamples_and_redraws_without_printing(panel, capsys):
    text, chart, chart_html = panel.text, panel.chart_data, panel.views["CharLSTM"].chart.value
    panel.temperature.value = 1.5
    hot = panel.text
    assert hot != text and hot.startswith("to ")
    assert "T=1.5," in panel.views["CharLSTM"].sample.value
    assert panel.views["CharLSTM"].chart.value != chart_html
    assert panel.chart_data[0][1] < chart[0][1]  # a higher temperature flattens the distribution
    panel.temperature.value = 0.8
    assert panel.text == text and panel.chart_data == chart  # seeded: same settings, same sample
    panel.temperature.value = 1.5
    assert panel.text == hot
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # a printing callback would break nbval


def test_greedy(panel):
    panel.temperature.value = 0.0
    assert "T=0 (greedy)" in panel.views["CharLSTM"].sample.value
    assert panel.chart_data[0][1] == 1.0 and nonzero(panel.chart_data) == 1


def test_top_k_and_top_p_cut_the_chart(panel):
    panel.temperature.value = 2.0  # flat enough that many characters have a chance
    assert nonzero(panel.chart_data) == 15
    panel.top_k.value = 3
    assert nonzero(panel.chart_data) == 3
    assert "top-k 3" in panel.views["CharLSTM"].sample.value
    kept = {c for c, p in panel.chart_data if p > 0}
    assert panel.text[3] in kept  # the chart is the distribution of the first sampled character
    panel.top_k.value = 0
    panel.top_p.value = 0.3
    assert 1 <= nonzero(panel.chart_data) < 15
    assert sum(p for _, p in panel.chart_data) == pytest.approx(1.0)
    assert "top-p 0.3" in panel.views["CharLSTM"].sample.value


def test_prime_length_and_regenerate(panel):
    chart = panel.chart_data
    panel.prime.value = "ROMEO\n"
    assert panel.text.startswith("ROMEO\n") and panel.chart_data != chart
    assert "ROMEO⏎" in panel.views["CharLSTM"].chart.value  # the chart's title shows the newline
    panel.length.value = 20
    assert len(panel.text) == 6 + 20
    before = panel.text
    panel.regenerate.click()
    assert panel.seed.value == 1 and panel.text != before
    assert "seed 1" in panel.views["CharLSTM"].sample.value


def test_sample_is_escaped(panel):
    panel.prime.value = "<b>&</b>"
    sample = panel.views["CharLSTM"].sample.value
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in sample and "<b>" not in sample


def test_bad_input_is_shown_not_raised(panel, capsys):
    panel.prime.value = "to €"  # € is not in the vocabulary
    assert panel.text == "" and panel.chart_data == []
    assert "not in the vocabulary" in panel.views["CharLSTM"].sample.value
    assert panel.views["CharLSTM"].chart.value == ""
    panel.prime.value = ""
    assert "at least one character" in panel.views["CharLSTM"].sample.value
    panel.prime.value = "to "
    assert panel.text.startswith("to ") and len(panel.chart_data) == 15  # recovers
    panel.seed.value = 2 ** 70  # the seed box clamps what torch's generator could not take
    assert panel.seed.value == SEED_MAX and "seed 2147483647" in panel.views["CharLSTM"].sample.value
    panel.regenerate.click()
    assert panel.seed.value == 0
    assert capsys.readouterr().out == ""


def test_the_panel_samples_on_one_thread_and_gives_the_rest_back(panel):
    """A second thread does not speed one stream up, and on two cores it competes with the browser."""
    seen = []
    forward = type(panel.views["CharLSTM"].model).forward

    def counting_forward(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return forward(panel.views["CharLSTM"].model, *args, **kwargs)

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        panel.views["CharLSTM"].model.forward = counting_forward
        panel.temperature.value = 1.2
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        panel.views["CharLSTM"].model.forward = broken_forward  # a failed sample gives them back too
        panel.temperature.value = 1.3
        assert isinstance(panel.error, RuntimeError) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_several_models_share_the_controls():
    lstm, vocab = tiny_model(0)
    other, other_vocab = tiny_model(1)
    panel = SamplerPanel({"A": (lstm, vocab), "B": Loaded(other, other_vocab)}, prime="to ", length=40)
    assert set(panel.texts) == set(panel.charts) == {"A", "B"}
    assert panel.texts["A"] != panel.texts["B"]
    before = dict(panel.texts)
    panel.temperature.value = 1.7
    for name in "AB":
        assert panel.texts[name] != before[name]
        assert "T=1.7," in panel.views[name].sample.value and f"{name}: " in panel.views[name].sample.value
    sliders = [w for w in tree(panel.widget) if "textlab-temperature" in w._dom_classes]
    assert sliders == [panel.temperature]
    assert sum("textlab-sample" in w._dom_classes for w in tree(panel.widget)) == 2
    assert panel.text == panel.texts["A"]  # the first model's


def test_css_classes_for_browser_tests(panel):
    classes = {c for w in tree(panel.widget) for c in w._dom_classes}
    assert {"textlab-sampler", "textlab-temperature", "textlab-top-k", "textlab-top-p", "textlab-length",
            "textlab-prime", "textlab-seed", "textlab-regenerate", "textlab-sample",
            "textlab-chart"} <= classes
    assert panel.temperature.continuous_update is False and panel.prime.continuous_update is False


@pytest.fixture
def ipython(monkeypatch, tmp_path):
    """An IPython shell for display() to publish through (no kernel); removed afterwards."""
    if InteractiveShell.initialized():
        yield InteractiveShell.instance()
        return
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # keep ~/.ipython untouched
    config = Config()
    config.HistoryManager.enabled = False
    yield InteractiveShell.instance(config=config)
    InteractiveShell.clear_instance()


def test_panel_and_picker_display_as_their_widgets(panel, ipython):
    picker = corpus_picker()
    with capture_output() as captured:
        display(panel)
        display(picker)
    views = [o.data.get("application/vnd.jupyter.widget-view+json") for o in captured.outputs]
    assert [v["model_id"] for v in views if v] == [panel.widget.model_id, picker.widget.model_id]


def test_needs_a_vocab():
    model, _ = tiny_model()
    with pytest.raises(TextlabError, match="vocabulary"):
        SamplerPanel(model)
    with pytest.raises(TextlabError, match="pair"):
        SamplerPanel({"A": model})


def test_visible_chars():
    assert [show_char(c) for c in " \n\ta\x07"] == ["␣", "⏎", "⇥", "a", "\\x07"]


def test_corpus_picker(mirror_env, tmp_path):
    picker = corpus_picker()
    assert "public domain" in picker.info.value
    text = picker.load()
    assert text.name == "tiny_shakespeare" and text.text.startswith("First Citizen")

    picker.choice.value = OWN_FILE
    with pytest.raises(TextlabError, match="path"):
        picker.load()
    mine = tmp_path / "mine.txt"
    mine.write_text("\ufeffmy own words\r\n", encoding="utf-8")
    picker.choice.value = "frankenstein"
    picker.path.value = str(mine)  # typing a path selects "your own file"
    assert picker.choice.value == OWN_FILE
    own = picker.load()
    assert own.name == "mine" and own.text == "my own words\n"


def test_corpus_picker_unknown_default():
    with pytest.raises(TextlabError, match="tiny_shakespeare"):
        corpus_picker("no_such_corpus")


def broken_forward(x, state=None):
    """A forward pass that fails the way a bug would: neither a TextlabError nor a ValueError."""
    raise RuntimeError("CUDA error: device-side assert triggered")


@pytest.mark.parametrize("control, value", [("temperature", 1.3), ("seed", 5), ("prime", "be")])
def test_any_callback_exception_is_shown_inside_the_panel(panel, capsys, control, value):
    """A widget callback that raises is swallowed by Jupyter and Colab: the panel must say it."""
    panel.views["CharLSTM"].model.forward = broken_forward
    setattr(getattr(panel, control), "value", value)  # the callback runs and must not raise
    shown = panel.views["CharLSTM"].sample.value
    assert "RuntimeError" in shown and "device-side assert" in shown and "Try:" in shown
    assert panel.text == "" and panel.views["CharLSTM"].chart.value == ""
    assert isinstance(panel.error, RuntimeError)
    assert capsys.readouterr().out == ""
    del panel.views["CharLSTM"].model.forward  # repaired: the next move draws again
    panel.regenerate.click()
    assert panel.text and panel.error is None and "Try:" not in panel.views["CharLSTM"].sample.value
