"""The helpers behind notebook 3's comparison: the results table, side-by-side samples, the charts."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from textlab import plots  # noqa: E402
from textlab.sampling import chars_per_second  # noqa: E402
from textlab.training import results_row  # noqa: E402


def test_show_table_formats_aligns_and_marks_missing_values():
    rows = {"unigram": {"parameters": 65, "val bpc": 4.82914, "chars/s": 12_155},
            "GPT-2": {},
            "CharLSTM": {"parameters": 1_221_249, "val bpc": 1.6, "chars/s": None, "note": "best"}}
    lines = plots.show_table(rows, missing="not available").splitlines()
    assert lines[0].split() == ["model", "parameters", "val", "bpc", "chars/s", "note"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["unigram", "65", "4.829", "12,155", "not", "available"]
    assert lines[3].split()[0] == "GPT-2" and lines[3].count("not available") == 4
    assert lines[4].split()[:3] == ["CharLSTM", "1,221,249", "1.600"]
    # numbers align right: every number column ends at the same place in each row
    assert len({line.index("4.829") + 5 for line in lines[2:3]} | {lines[4].index("1.600") + 5}) == 1
    assert lines[0].startswith("model   ")  # the name column aligns left


def test_show_table_names_its_first_column_and_needs_rows():
    assert plots.show_table({"ru": {"chars/token": 1.2}}, first="corpus").splitlines()[0].split() == \
        ["corpus", "chars/token"]
    with pytest.raises(ValueError):
        plots.show_table({})


def test_show_columns_puts_texts_side_by_side_and_wraps():
    out = plots.show_columns({"left": "ab\ncd", "right": "x" * 25}, width=10).splitlines()
    assert out[0].split("│")[0].strip() == "left" and out[0].split("│")[1].strip() == "right"
    assert [line.split("│")[0].strip() for line in out[2:4]] == ["ab", "cd"]
    assert [line.split("│")[1].strip() for line in out[2:5]] == ["x" * 10, "x" * 10, "x" * 5]
    assert len(out) == 5  # the taller column sets the height; the shorter one is padded


def test_plot_histories_draws_val_train_the_kept_point_and_the_baseline():
    history = [{"chars_seen": 0, "seconds": 0.0, "train_bpc": None, "dev_bpc": 6.0, "val_bpc": 6.1},
               {"chars_seen": 1_000_000, "seconds": 60.0, "train_bpc": 3.0, "dev_bpc": 2.9, "val_bpc": 3.2},
               {"chars_seen": 2_000_000, "seconds": 120.0, "train_bpc": 2.5, "dev_bpc": 3.0, "val_bpc": 2.7}]
    ax = plots.plot_histories({"A": history, "B": history}, baseline_bpc=4.5, x="seconds")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["A validation", "A training", "A kept: 3.200", "B validation", "B training", "B kept: 3.200",
                      "unigram 4.50"]  # kept: the best on dev (step 1), not the best on validation
    assert list(ax.get_lines()[0].get_xdata()) == [0.0, 1.0, 2.0]  # minutes
    assert list(ax.get_lines()[1].get_xdata()) == [1.0, 2.0]  # no training loss before the first step
    assert ax.get_xlabel() == "minutes of training"
    ax = plots.plot_history(history)
    assert list(ax.get_lines()[0].get_xdata()) == [0.0, 1.0, 2.0] and ax.get_xlabel() == "millions of characters read"
    plt.close("all")


def test_plot_bpc_bars_keeps_a_row_for_a_missing_model():
    ax = plots.plot_bpc_bars({"unigram": 4.8, "GPT-2": None})
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["not available", "4.800"]  # barh draws bottom-up: the first model on top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["GPT-2", "unigram"]
    plt.close("all")


def test_plot_next_char_says_what_its_bars_are():
    import torch
    from textlab import CharVocab
    vocab = CharVocab.from_text("abcd")
    probs = {"T=1": torch.tensor([0.1, 0.6, 0.2, 0.1]), "T=2": torch.tensor([0.2, 0.3, 0.3, 0.2])}
    ax = plots.plot_next_char(probs, vocab, top=3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["b", "c", "a"]  # by the first distribution
    assert "next character" in ax.get_xlabel() and ax.get_ylabel() == "probability"
    assert len(ax.patches) == 6  # 3 characters × 2 distributions
    plt.close("all")


def test_chars_per_second_times_one_call_after_a_warm_up():
    calls = []

    def sampler(length: int) -> str:
        calls.append(length)
        return "x" * length

    assert chars_per_second(sampler, length=200) > 0
    assert calls == [10, 200]
    with pytest.raises(ValueError):
        chars_per_second(sampler, length=0)


def test_results_row_rounds_times_and_speeds():
    row = results_row(1234, 12.6, 1.5, lambda length: "x" * length)
    assert row["parameters"] == 1234 and row["train s"] == 13 and row["val bpc"] == 1.5
    assert isinstance(row["chars/s"], int) and row["chars/s"] > 0
