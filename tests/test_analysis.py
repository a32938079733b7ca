"""The analysis views: surprisal, neurons, features and the temperature sweep, checked on their data."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from conftest import REPETITIVE_TEXT  # noqa: E402

from textlab import CharVocab, MiniGPT, TextlabError, evaluate, sample  # noqa: E402
from textlab.analysis import (  # noqa: E402
    Neuron, distinct_ngrams, find_neurons, generated_words, known_words, lstm_activations,
    neuron_html, next_char_logits, plot_temperature_sweep, real_word_share, show_neuron,
    show_surprisal, surprisal, surprisal_html, temperature_sweep, text_features, words,
)
from textlab.sampling import next_char_probs  # noqa: E402

TEXT = REPETITIVE_TEXT[:150]
PRIME = ". "  # REPETITIVE_TEXT has no newline, the default prime: its sentences follow ". "
LN2 = math.log(2)


@pytest.fixture
def tiny_gpt() -> tuple[MiniGPT, CharVocab]:
    """An untrained MiniGPT with a short block (8), so a short text already needs windows."""
    torch.manual_seed(0)
    vocab = CharVocab.from_text(REPETITIVE_TEXT)
    return MiniGPT(len(vocab), hidden_size=16, num_layers=2, n_head=2, block_size=8).eval(), vocab


@pytest.fixture(params=["tiny_lstm", "trained_lstm", "tiny_gpt"])
def any_model(request):
    return request.getfixturevalue(request.param)


# --- surprisal ------------------------------------------------------------------------------


def test_surprisal_is_the_cross_entropy_of_the_text(any_model):
    model, vocab = any_model
    text = TEXT[:6] if isinstance(model, MiniGPT) else TEXT  # within MiniGPT's block: one window
    bits = surprisal(model, vocab, text, PRIME)
    assert bits.shape == (len(text),)
    ids = vocab.encode(PRIME + text)
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
    per_char = F.cross_entropy(logits[0, len(PRIME) - 1:], ids[len(PRIME):], reduction="none") / LN2
    torch.testing.assert_close(bits, per_char, atol=1e-4, rtol=0)
    assert bits.mean().item() == pytest.approx(per_char.mean().item(), abs=1e-4)


def test_surprisal_mean_is_what_evaluate_reports(trained_lstm):
    model, vocab = trained_lstm
    bpc = evaluate(model, vocab.encode(TEXT))  # one stream: each character after the first, scored
    assert surprisal(model, vocab, TEXT[1:], prime=TEXT[0]).mean().item() == pytest.approx(bpc, abs=1e-4)


def test_a_trained_model_is_surprised_at_word_starts_not_inside_words(trained_lstm):
    model, vocab = trained_lstm
    bits = surprisal(model, vocab, TEXT, PRIME).numpy()
    letters = np.array([c.isalpha() for c in TEXT])
    starts = letters & np.r_[True, ~letters[:-1]]     # a letter after a non-letter
    inside = letters & ~starts
    assert bits[starts].mean() > 2 * bits[inside].mean()


def test_surprisal_reads_a_long_text_in_windows_for_minigpt(tiny_gpt):
    model, vocab = tiny_gpt
    block, text = model.config.block_size, TEXT[:40]
    bits = surprisal(model, vocab, text, prime=".")
    assert bits.shape == (len(text),)
    ids = vocab.encode("." + text)

    def bits_from(start: int, i: int) -> float:
        """Surprisal of ids[i + 1] read from ids[start:i + 1]."""
        with torch.no_grad():
            logits, _ = model(ids[None, start:i + 1])
        return F.cross_entropy(logits[0, -1], ids[i + 1]).item() / LN2

    for i in range(len(text)):
        if i < block:  # the first window: all the context there is
            assert bits[i].item() == pytest.approx(bits_from(0, i), abs=1e-5)
        else:          # later: between half a block and a full block of context
            options = [bits_from(i + 1 - n, i) for n in range(block // 2 + 1, block + 1)]
            assert min(abs(bits[i].item() - o) for o in options) < 1e-5, f"character {i}"


def test_next_char_logits_batch_rows_are_independent(tiny_lstm):
    model, vocab = tiny_lstm
    ids = torch.stack([vocab.encode(TEXT[:30]), vocab.encode(TEXT[30:60])])
    both = next_char_logits(model, ids)
    assert both.shape == (2, 30, len(vocab))
    torch.testing.assert_close(both[1], next_char_logits(model, ids[1:])[0])


def test_surprisal_errors(tiny_lstm):
    model, vocab = tiny_lstm
    with pytest.raises(ValueError, match="prime"):
        surprisal(model, vocab, TEXT, prime="")
    with pytest.raises(TextlabError, match="not in the vocabulary"):
        surprisal(model, vocab, "the cat: Z", PRIME)
    assert surprisal(model, vocab, "", prime=TEXT[0]).shape == (0,)  # nothing to score, as for MiniGPT


# --- HTML -----------------------------------------------------------------------------------


def test_surprisal_html_escapes_and_has_one_span_per_character():
    text = 'a<b> & "c"\nd'
    bits = torch.arange(len(text), dtype=torch.float) / 2
    html = surprisal_html(text, bits, max_bits=bits.max().item())
    assert html.count("<span") == len(text)
    assert "&lt;" in html and "&gt;" in html and "&amp;" in html and "&quot;" in html
    assert "<b>" not in html
    assert "⏎\n</span>" in html  # the newline is kept, with a mark that can be coloured
    assert 'title="a: 0.00 bits"' in html and 'title="d: 5.50 bits"' in html
    assert "rgba(214,39,40,0.000)" in html and "rgba(214,39,40,1.000)" in html  # white → full red
    assert "mean 2.75 bits/char" in html


def test_surprisal_html_scale_and_errors():
    half = surprisal_html("ab", [1.0, 2.0], max_bits=4.0)
    assert "rgba(214,39,40,0.250)" in half and "rgba(214,39,40,0.500)" in half
    with pytest.raises(ValueError, match="one value per character"):
        surprisal_html("abc", [1.0, 2.0])
    with pytest.raises(ValueError, match="max_bits"):
        surprisal_html("ab", [1.0, 2.0], max_bits=0)
    assert "rgba(214,39,40,0.000)" in surprisal_html("a", [0.0])  # all certain: white, no error


def test_show_surprisal_wraps_the_html(trained_lstm):
    model, vocab = trained_lstm
    shown = show_surprisal(model, vocab, TEXT[:20], PRIME, max_bits=8.0)
    assert shown.data == surprisal_html(TEXT[:20], surprisal(model, vocab, TEXT[:20], PRIME), 8.0)


def test_neuron_html_colours_by_sign():
    html = neuron_html("ab<", [0.5, -1.0, 0.0], label="cell 3")
    assert html.count("<span") == 3 and "&lt;" in html and "cell 3" in html
    assert "rgba(214,39,40,0.500)" in html   # positive: red, scaled by the largest |value|
    assert "rgba(31,119,180,1.000)" in html  # negative: blue
    assert 'title="b: -1.000"' in html
    assert "rgba(214,39,40,0.000)" in neuron_html("ab", [0.0, 0.0])  # a silent cell stays white


# --- activations ----------------------------------------------------------------------------


def test_activation_shapes(tiny_lstm):
    model, vocab = tiny_lstm
    H = model.config.hidden_size
    for layer in (0, 1):
        for kind in ("cell", "hidden"):
            assert lstm_activations(model, vocab, TEXT, layer, kind).shape == (len(TEXT), H)
    assert lstm_activations(model, vocab, TEXT, layer=None).shape == (2, len(TEXT), H)


def test_activations_match_nn_lstm(tiny_lstm):
    model, vocab = tiny_lstm
    ids = vocab.encode(TEXT)[None]
    with torch.no_grad():
        out, (h_n, c_n) = model.lstm(model.embed(ids))  # out: the last layer's h at every step
        first = nn.LSTM(model.config.embed_dim, model.config.hidden_size, batch_first=True)
        first.load_state_dict({k: v for k, v in model.lstm.state_dict().items() if k.endswith("_l0")})
        out0, _ = first(model.embed(ids))
    hidden = lstm_activations(model, vocab, TEXT, layer=None, kind="hidden")
    cell = lstm_activations(model, vocab, TEXT, layer=None, kind="cell")
    torch.testing.assert_close(hidden[1], out[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(hidden[0], out0[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cell[:, -1], c_n[:, 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(hidden[:, -1], h_n[:, 0], atol=1e-5, rtol=1e-4)


def test_activation_errors(tiny_lstm, tiny_gpt):
    model, vocab = tiny_lstm
    with pytest.raises(ValueError, match="layer"):
        lstm_activations(model, vocab, TEXT, layer=2)
    with pytest.raises(ValueError, match="kind"):
        lstm_activations(model, vocab, TEXT, kind="gate")
    with pytest.raises(ValueError, match="empty"):
        lstm_activations(model, vocab, "")
    with pytest.raises(TextlabError, match="CharLSTM"):
        lstm_activations(*tiny_gpt, TEXT)
    with pytest.raises(ValueError, match="cell"):
        show_neuron(model, vocab, TEXT, layer=0, cell=16)


def test_show_neuron_shows_that_cell(tiny_lstm):
    model, vocab = tiny_lstm
    values = lstm_activations(model, vocab, TEXT[:12], layer=1, kind="hidden")[:, 3]
    shown = show_neuron(model, vocab, TEXT[:12], layer=1, cell=3, kind="hidden")
    assert shown.data == neuron_html(TEXT[:12], values, label="layer 1, cell 3 (hidden):")


# --- features and the neuron search ---------------------------------------------------------


def test_text_features_on_a_hand_made_text():
    text = 'a "b c"\n“d” e'
    f = text_features(text)
    assert set(f) == {"inside_quotes", "position_in_line", "chars_to_line_end", "inside_word"}
    assert all(v.shape == (len(text),) and v.dtype == float for v in f.values())
    #                     a     "  b     c  "  ⏎  “  d  ”     e
    assert f["inside_quotes"].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0]
    assert f["position_in_line"].tolist() == [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5]
    assert f["chars_to_line_end"].tolist() == [7, 6, 5, 4, 3, 2, 1, 0, 5, 4, 3, 2, 1]
    assert f["inside_word"].tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1]


def test_find_neurons_finds_a_planted_cell():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list('ab "\n'), size=600))
    features = text_features(text)
    acts = torch.randn(2, len(text), 16, generator=torch.Generator().manual_seed(0))
    acts[1, :, 5] = torch.tensor(features["inside_quotes"]) + 0.3 * acts[1, :, 5]
    acts[0, :, 9] = -torch.tensor(features["position_in_line"]) + 0.5 * acts[0, :, 9]
    found = find_neurons(acts, features, top=3)
    assert len(found) == 3 * len(features) and all(isinstance(n, Neuron) for n in found)
    quotes = [n for n in found if n.feature == "inside_quotes"]
    assert (quotes[0].layer, quotes[0].cell) == (1, 5) and quotes[0].correlation > 0.8
    assert abs(quotes[1].correlation) < 0.3 and abs(quotes[0].correlation) >= abs(quotes[2].correlation)
    line = next(n for n in found if n.feature == "position_in_line")
    assert (line.layer, line.cell) == (0, 9) and line.correlation < -0.8
    one_layer = find_neurons(acts[1], {"inside_quotes": features["inside_quotes"]}, top=1)
    assert [(n.layer, n.cell) for n in one_layer] == [(0, 5)]


def test_find_neurons_skips_constant_features_and_checks_lengths():
    acts = torch.randn(10, 4)
    found = find_neurons(acts, {"flat": np.zeros(10), "ramp": np.arange(10.0)}, top=2)
    assert [n.feature for n in found] == ["ramp", "ramp"]
    with pytest.raises(ValueError, match="same text"):
        find_neurons(acts, {"ramp": np.arange(9.0)})
    for top in (2.5, True, 0):
        with pytest.raises(ValueError, match="top must be an integer"):
            find_neurons(acts, {"ramp": np.arange(10.0)}, top=top)
    assert len(find_neurons(acts, {"ramp": np.arange(10.0)}, top=np.int64(2))) == 2  # NumPy's ints are ints


# --- temperature sweep ----------------------------------------------------------------------


def test_word_helpers_on_hand_made_cases():
    assert words("O'er the Cat, 3 dogs!") == ["o", "er", "the", "cat", "dogs"]
    assert known_words("The cat. the CAT") == {"the", "cat"}
    assert generated_words("the c", "at sat on the ma") == ["sat", "on", "the"]  # ends cut off
    assert generated_words("the ", "cat sat.") == ["cat", "sat"]
    assert real_word_share(["the", "cat", "xqz", "the"], {"the", "cat"}) == 0.75
    assert math.isnan(real_word_share([], {"the"}))
    assert distinct_ngrams(["a", "b", "a", "b", "a"], 2) == 0.5  # ab ba ab ba: 2 distinct of 4
    assert distinct_ngrams(["a", "b", "c"], 3) == 1.0
    assert math.isnan(distinct_ngrams(["a", "b"], 3))


def test_temperature_sweep_on_a_trained_model(trained_lstm):
    model, vocab = trained_lstm
    temperatures = (0.25, 0.5, 1.0, 1.5, 2.0)
    rows = temperature_sweep(model, vocab, known_words(REPETITIVE_TEXT), prime="the ",
                             temperatures=temperatures, length=120, num_samples=4, seed=1)
    assert [r["temperature"] for r in rows] == list(temperatures)
    assert all(set(r) == {"temperature", "entropy_bits", "real_word_share", "distinct_2grams",
                          "distinct_3grams", "example"} for r in rows)
    entropy = [r["entropy_bits"] for r in rows]
    assert all(a < b for a, b in zip(entropy, entropy[1:])), entropy
    assert 0 <= entropy[0] and entropy[-1] < math.log2(len(vocab))
    assert rows[0]["real_word_share"] > 0.9 > rows[-1]["real_word_share"]
    assert all(0 < r[k] <= 1 for r in rows for k in ("distinct_2grams", "distinct_3grams"))
    # The batched samples are the sampler's own: same seed, same text.
    assert rows[2]["example"] == sample(model, vocab, "the ", 120, 1.0, seed=1, num_samples=4)[0]


def test_sweep_entropy_is_that_of_the_sampling_distribution(trained_lstm):
    model, vocab = trained_lstm
    (row,) = temperature_sweep(model, vocab, set(), prime="the ", temperatures=(0.7,), length=25,
                               num_samples=1, seed=3)
    text = row["example"]
    expected = []
    for i in range(len("the "), len(text)):
        p = next_char_probs(model, vocab, text[:i], temperature=0.7)
        expected.append(-(p[p > 0] * p[p > 0].log2()).sum().item())
    assert row["entropy_bits"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    assert math.isnan(row["real_word_share"]) or row["real_word_share"] == 0.0  # nothing is known


def test_sweep_keeps_minigpt_within_its_block(tiny_gpt):
    model, vocab = tiny_gpt
    rows = temperature_sweep(model, vocab, {"the"}, prime="the", temperatures=(0.5, 1.0), num_samples=2)
    assert [len(r["example"]) for r in rows] == [model.config.block_size] * 2
    with pytest.raises(ValueError, match="length"):
        temperature_sweep(model, vocab, {"the"}, length=0)


def test_minigpt_sweep_entropy_is_the_sampler_s_and_longer_samples_are_refused(tiny_gpt):
    model, vocab = tiny_gpt
    prime, length = "the", model.config.block_size + 1 - len("the")  # the last character reads a full block
    (row,) = temperature_sweep(model, vocab, set(), prime=prime, temperatures=(0.7,), length=length,
                               num_samples=1, seed=3)
    text = row["example"]
    expected = []
    for i in range(len(prime), len(text)):
        p = next_char_probs(model, vocab, text[:i], temperature=0.7)
        expected.append(-(p[p > 0] * p[p > 0].log2()).sum().item())
    assert row["entropy_bits"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
    with pytest.raises(ValueError, match="do not fit MiniGPT's block"):  # past the block: other distributions
        temperature_sweep(model, vocab, set(), prime=prime, length=length + 1)


def test_attention_of_an_empty_text_is_refused(tiny_gpt):
    from textlab.analysis import attention_weights

    with pytest.raises(ValueError, match="empty"):
        attention_weights(*tiny_gpt, "")


def test_plot_temperature_sweep_draws_three_panels():
    rows = [{"temperature": t, "entropy_bits": t, "real_word_share": 1 - t / 3, "distinct_2grams": 0.5,
             "distinct_3grams": 0.6, "example": ""} for t in (0.5, 1.0, 2.0)]
    axes = plot_temperature_sweep(rows)
    assert len(axes) == 3
    assert [len(ax.get_lines()) for ax in axes] == [2, 2, 3]  # data (+ 2 n-gram lines) and the T=1 mark
    assert list(axes[0].get_lines()[0].get_ydata()) == [0.5, 1.0, 2.0]
    plt.close(axes[0].figure)
