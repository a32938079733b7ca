"""Dynamic evaluation in ``bench_train.py``: a row of its own beside the yardstick, never the headline.

The model reads the text once and learns from each segment after scoring it; these tests pin that
every character is scored before the model has learned from it, and that lr=0 is the plain score.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_train import dynamic_evaluation, dynamic_nll  # noqa: E402

from textlab import CharLSTM, CharVocab, MiniGPT, TextlabError, evaluate  # noqa: E402

TEXT = "the cat sat on the mat. " * 40


def model_and_ids():
    torch.manual_seed(0)
    vocab = CharVocab.from_text(TEXT)
    return CharLSTM(len(vocab), embed_dim=8, hidden_size=16), vocab.encode(TEXT)


def test_lr_zero_is_one_cold_started_read():
    model, ids = model_and_ids()
    one_read = evaluate(model, ids, context=0, stride=len(ids) - 1) * math.log(2)  # one window: state carried
    assert math.isclose(dynamic_nll(model, ids, 0.0), one_read, rel_tol=1e-5)


def test_each_segment_is_scored_before_the_model_learns_from_it():
    model, ids = model_and_ids()
    first = ids[:51]  # exactly one segment of 50 predictions
    assert math.isclose(dynamic_nll(model, first, 1.0), dynamic_nll(model, first, 0.0), rel_tol=1e-6)
    assert dynamic_nll(model, ids, 1.0) < dynamic_nll(model, ids, 0.0)  # then it learns the repeating line


def test_the_trained_model_is_left_as_it_was():
    model, ids = model_and_ids()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    result = dynamic_evaluation(model, ids[:300], ids[300:], rates=(0.1, 1.0))
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert result["lr"] in (0.1, 1.0) and result["dev"] <= result["dev_static"]


def test_a_rate_that_hurts_on_dev_is_never_reported():
    model, ids = model_and_ids()
    result = dynamic_evaluation(model, ids[:300], ids[300:], rates=(1e4,))  # steps this big wreck the model
    assert result["lr"] == 0.0 and result["dev"] == result["dev_static"] and result["val"] == result["val_static"]


def test_a_model_without_state_to_carry_is_refused():
    vocab = CharVocab.from_text(TEXT)
    gpt = MiniGPT(len(vocab), hidden_size=16, num_layers=1, n_head=2, block_size=16)
    with pytest.raises(TextlabError, match="stateful"):
        dynamic_nll(gpt, vocab.encode(TEXT), 0.1)
