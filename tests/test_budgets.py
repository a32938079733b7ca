"""Budget-aware defaults: ``default_configs(minutes=…)`` and the CLI's ``--minutes`` pick the CPU
LSTM from ``config.CPU_LSTM_BUDGETS``; QUICK mode and MiniGPT's CPU configuration ignore it."""

from __future__ import annotations

import pytest

import textlab.cli
import textlab.training
from textlab.config import CPU_LSTM_BUDGETS, TrainConfig, default_configs, quick_mode


@pytest.fixture
def full_mode(monkeypatch):
    monkeypatch.delenv("TEXTLAB_QUICK", raising=False)


def test_each_budget_gets_its_row_of_the_table(full_mode):
    for up_to, model_fields, train_fields in CPU_LSTM_BUDGETS:
        for minutes in (up_to * 0.99, up_to) if up_to != float("inf") else (60.0,):
            model, train = default_configs("cpu", minutes=minutes)
            assert train.minutes == minutes and train.steps is None
            assert all(getattr(model, k) == v for k, v in model_fields.items()), (minutes, model)
            assert all(getattr(train, k) == v for k, v in train_fields.items()), (minutes, train)


def test_no_budget_means_the_default_budget(full_mode):
    assert default_configs("cpu") == default_configs("cpu", minutes=TrainConfig().minutes)


def test_a_longer_budget_never_gets_less_dropout_or_a_smaller_model(full_mode):
    rows = [default_configs("cpu", minutes=m)[0] for m in (1, 3, 5, 10, 20, 60)]
    assert [r.dropout for r in rows] == sorted(r.dropout for r in rows)
    assert [r.hidden_size for r in rows] == sorted(r.hidden_size for r in rows)
    assert rows[0] != rows[-1]  # the budget does change the model


def test_quick_mode_and_minigpt_on_cpu_ignore_the_budget_table(monkeypatch, full_mode):
    gpt3, gpt10 = default_configs("cpu", "gpt", minutes=3), default_configs("cpu", "gpt", minutes=10)
    assert gpt3[0] == gpt10[0] == default_configs("cpu", "gpt")[0]
    assert gpt10[1].minutes == 10
    monkeypatch.setenv("TEXTLAB_QUICK", "1")
    assert default_configs("cpu", minutes=10) == default_configs("cpu")
    assert default_configs("cpu")[0].hidden_size == 64


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        default_configs("cpu", minutes=0)


def test_the_cli_budget_chooses_the_model(full_mode, monkeypatch, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be " * 100, encoding="utf-8")
    seen = []

    def fake_train(text, model_cfg, train_cfg, checkpoint=None, prime=None):
        seen.append((model_cfg, train_cfg))
        raise KeyboardInterrupt  # stop here (exit status 130): only the configuration is under test

    monkeypatch.setattr(textlab.training, "train_on_text", fake_train)
    for minutes in (3, 10):
        assert textlab.cli.main(["train", "--text", str(text), "--minutes", str(minutes), "--device", "cpu",
                                 "--out", str(tmp_path / "o")]) == 130
    (m3, t3), (m10, t10) = seen
    assert (m3, t3.minutes) == (default_configs("cpu", minutes=3)[0], 3)
    assert (m10, t10.minutes) == (default_configs("cpu", minutes=10)[0], 10)
    assert m3 != m10


def test_a_budget_of_nan_minutes_is_refused(full_mode):
    with pytest.raises(ValueError, match="positive"):
        default_configs("cpu", minutes=float("nan"))


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("Yes", True), ("TRUE", True),
                                       ("", False), ("0", False), ("false", False), ("no", False), ("off", False)])
def test_quick_mode_is_on_only_for_1_true_or_yes(monkeypatch, value, on):
    monkeypatch.setenv("TEXTLAB_QUICK", value)
    assert quick_mode() is on
