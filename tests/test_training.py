"""Training: bits per character, the lr schedule, reproducibility, callbacks, checkpoints, stopping."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from textlab import (CharLSTM, CharVocab, TrainConfig, evaluate, load_checkpoint, split_text, train,
                     unigram_bpc)
from textlab.training import lr_at

TINY = TrainConfig(batch_size=4, seq_len=16, lr=1e-2, warmup_steps=3, steps=20, minutes=None, eval_every=10,
                   eval_chars=400, progress=False, device="cpu")


@pytest.fixture
def data(repetitive_text) -> tuple[CharVocab, torch.Tensor, torch.Tensor]:
    vocab = CharVocab.from_text(repetitive_text)
    ids = vocab.encode(repetitive_text)
    return vocab, ids[:8000], ids[8000:]


def tiny_model(vocab: CharVocab, seed: int = 0, **kwargs) -> CharLSTM:
    torch.manual_seed(seed)
    return CharLSTM(len(vocab), embed_dim=8, hidden_size=16, **kwargs)


class Recorder:
    """A callback that records every event."""

    def __init__(self):
        self.steps, self.evals, self.ends = [], [], []

    def on_step(self, info):
        self.steps.append(info)

    def on_eval(self, record):
        self.evals.append(record)

    def on_end(self, result):
        self.ends.append(result)


# ---------------------------------------------------------------------------- bits per character

def test_uniform_model_scores_log2_of_the_vocabulary(data):
    vocab, _, val = data
    model = tiny_model(vocab)
    with torch.no_grad():  # zero read-out: equal logits for every character
        model.head.weight.zero_()
        model.head.bias.zero_()
    assert evaluate(model, val) == pytest.approx(math.log2(len(vocab)), rel=1e-6)


def test_evaluate_is_cross_entropy_in_bits_with_the_state_carried(data):
    vocab, _, val = data
    model = tiny_model(vocab).eval()
    ids = val[:101]
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        nats = F.cross_entropy(logits[0], ids[1:]).item()
    # One stream read in windows of 7: the state must flow from window to window to match.
    assert evaluate(model, ids, seq_len=7, batch_size=1) == pytest.approx(nats / math.log(2), rel=1e-5)
    assert model.training is False


def test_evaluate_restores_training_mode_and_rejects_tiny_input(data):
    vocab, _, val = data
    model = tiny_model(vocab).train()
    evaluate(model, val[:50])
    assert model.training
    with pytest.raises(Exception, match="at least 2 characters"):
        evaluate(model, val[:1])


# ---------------------------------------------------------------------------- learning-rate schedule

def test_lr_warms_up_linearly_then_decays_by_cosine():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 0.0, cfg) == pytest.approx(1e-4)
    assert lr_at(4, 0.0, cfg) == pytest.approx(5e-4)
    assert lr_at(9, 0.0, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 0.0, cfg) == pytest.approx(1e-3)          # the cosine starts at the peak ...
    assert lr_at(50, 0.5, cfg) == pytest.approx(0.55e-3)       # ... is halfway at half the budget ...
    assert lr_at(99, 1.0, cfg) == pytest.approx(1e-4)          # ... and ends at lr * min_lr_ratio
    assert lr_at(99, 1.7, cfg) == pytest.approx(1e-4)          # never below it
    lrs = [lr_at(s, s / 100, cfg) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_history_records_the_scheduled_lr(data):
    vocab, train_ids, val = data
    result = train(tiny_model(vocab), train_ids, val, TINY)
    assert [r["lr"] for r in result.history] == pytest.approx(
        [lr_at(9, 9 / 20, TINY), lr_at(19, 19 / 20, TINY)])


# ---------------------------------------------------------------------------- a training run

def test_seeded_runs_are_reproducible(data):
    vocab, train_ids, val = data
    # Dropout draws random numbers while training: train() must seed them itself.
    model_a, model_b = (tiny_model(vocab, num_layers=2, dropout=0.3) for _ in range(2))
    a = train(model_a, train_ids, val, TINY)
    torch.rand(7)  # whatever happened to the global generator in between
    b = train(model_b, train_ids, val, TINY)
    drop_time = [{k: v for k, v in r.items() if k != "seconds"} for r in a.history]
    assert drop_time == [{k: v for k, v in r.items() if k != "seconds"} for r in b.history]
    assert a.best_val_bpc == b.best_val_bpc
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    c = train(tiny_model(vocab), train_ids, val, replace(TINY, seed=1))
    assert [r["train_bpc"] for r in c.history] != [r["train_bpc"] for r in a.history]


@pytest.mark.parametrize("batching", ["streams", "random"])
def test_history_callbacks_and_result(data, batching):
    vocab, train_ids, val = data
    rec = Recorder()
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, batching=batching), callbacks=[rec])
    assert result.stopped == "budget" and result.steps == 20 and result.message == ""
    assert [r["step"] for r in result.history] == [10, 20]
    for record in result.history:
        assert set(record) == {"step", "chars_seen", "seconds", "train_bpc", "val_bpc", "lr"}
        assert record["chars_seen"] == record["step"] * TINY.batch_size * TINY.seq_len
        assert 0 < record["val_bpc"] < 10 and 0 < record["train_bpc"] < 10 and record["seconds"] >= 0
    assert [s["step"] for s in rec.steps] == list(range(1, 21))
    assert all(math.isfinite(s["loss"]) and s["lr"] > 0 for s in rec.steps)
    assert rec.evals == result.history
    assert rec.ends == [result]
    assert math.isfinite(result.best_val_bpc)


def test_an_unfinished_eval_interval_is_scored_at_the_end(data):
    vocab, train_ids, val = data
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, steps=25))
    assert [r["step"] for r in result.history] == [10, 20, 25]


def test_training_learns_and_keeps_the_best_weights(data, tmp_path):
    vocab, train_ids, val = data
    cfg = replace(TINY, steps=60, eval_chars=len(val))  # periodic evals then score the whole val split
    result = train(tiny_model(vocab), train_ids, val, cfg, vocab=vocab, checkpoint=tmp_path / "best.pt")
    val_bpcs = [r["val_bpc"] for r in result.history]
    assert val_bpcs[-1] < val_bpcs[0] < math.log2(len(vocab))
    assert result.best_val_bpc == pytest.approx(min(val_bpcs), rel=1e-5)
    loaded = load_checkpoint(tmp_path / "best.pt")
    assert loaded.vocab == vocab and loaded.history == result.history
    assert loaded.train_config == cfg
    assert evaluate(loaded.model, val, batch_size=cfg.batch_size) == pytest.approx(result.best_val_bpc, rel=1e-5)


def test_a_worse_model_later_does_not_replace_the_best(data, tmp_path):
    vocab, train_ids, val = data
    model = tiny_model(vocab)

    class Scramble:
        """After the first evaluation, wreck the weights: every later evaluation is worse."""

        def on_eval(self, record):
            if record["step"] == 10:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(5 * torch.randn_like(p))

    cfg = replace(TINY, steps=30, lr=1e-4, eval_chars=len(val))
    result = train(model, train_ids, val, cfg, callbacks=[Scramble()], vocab=vocab, checkpoint=tmp_path / "m.pt")
    first, *later = [r["val_bpc"] for r in result.history]
    assert len(later) == 2 and min(later) > first + 0.5
    assert result.best_val_bpc == pytest.approx(first, rel=1e-5)
    assert evaluate(load_checkpoint(tmp_path / "m.pt").model, val, batch_size=cfg.batch_size) == \
        pytest.approx(first, rel=1e-5)


def test_best_checkpoint_is_written_at_each_new_best(data, tmp_path):
    vocab, train_ids, val = data
    path = tmp_path / "run" / "model.pt"
    seen = []

    class Peek:
        def on_eval(self, record):
            seen.append(len(load_checkpoint(path).history))

    train(tiny_model(vocab), train_ids, val, replace(TINY, lr=3e-2), callbacks=[Peek()], vocab=vocab,
          checkpoint=path)
    assert seen == [1, 2]  # both evaluations improved, so the file held the history up to each
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_early_stopping_after_patience(data):
    vocab, train_ids, val = data
    # lr=0: the weights never change, so no evaluation after the first is a new best.
    cfg = replace(TINY, lr=0.0, steps=200, eval_every=5, patience=2)
    result = train(tiny_model(vocab), train_ids, val, cfg)
    assert result.stopped == "early stop"
    assert result.steps == 15 and [r["step"] for r in result.history] == [5, 10, 15]


@pytest.mark.parametrize("budget, message", [({"steps": None, "minutes": None}, "give a budget"),
                                             ({"steps": 0}, "must be positive"),
                                             ({"steps": None, "minutes": 0.0}, "must be positive"),
                                             ({"eval_every": 0}, "eval_every")])
def test_train_needs_a_sensible_budget(data, budget, message):
    vocab, train_ids, val = data
    with pytest.raises(ValueError, match=message):
        train(tiny_model(vocab), train_ids, val, replace(TINY, **budget))


# ---------------------------------------------------------------------------- stopping on trouble

class NaNAfter(CharLSTM):
    """A CharLSTM whose output turns to NaN after ``ok_calls`` training forwards."""

    def __init__(self, vocab_size: int, ok_calls: int):
        super().__init__(vocab_size, embed_dim=8, hidden_size=16)
        self.ok_calls = ok_calls

    def forward(self, x, state=None):
        logits, state = super().forward(x, state)
        if self.training:
            if self.ok_calls <= 0:
                logits = logits * float("nan")
            self.ok_calls -= 1
        return logits, state


def test_nan_loss_stops_with_a_message(data, tmp_path):
    vocab, train_ids, val = data
    rec = Recorder()
    torch.manual_seed(0)
    result = train(NaNAfter(len(vocab), ok_calls=12), train_ids, val, replace(TINY, steps=100), callbacks=[rec],
                   vocab=vocab, checkpoint=tmp_path / "m.pt")
    assert result.stopped == "nan"
    assert "nan" in result.message and "step 12" in result.message and "learning rate" in result.message
    assert result.steps == 12 and [r["step"] for r in result.history] == [10]
    assert math.isfinite(result.best_val_bpc)  # the weights from before the NaN are kept
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert rec.ends == [result] and load_checkpoint(tmp_path / "m.pt").history == result.history


def test_nan_on_the_first_step(data):
    vocab, train_ids, val = data
    result = train(NaNAfter(len(vocab), ok_calls=0), train_ids, val, TINY)
    assert result.stopped == "nan" and result.steps == 0 and result.history == []
    assert result.best_val_bpc == math.inf


def test_huge_learning_rate_stops_on_nan(data):
    vocab, train_ids, val = data
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, lr=1e6, warmup_steps=0, grad_clip=1e30,
                                                             steps=200, eval_every=1000))
    assert result.stopped == "nan" and "Lower the learning rate" in result.message
    assert result.steps < 200


def test_keyboard_interrupt_keeps_model_history_and_checkpoint(data, tmp_path):
    vocab, train_ids, val = data

    class CtrlC(Recorder):
        def on_step(self, info):
            super().on_step(info)
            if info["step"] == 13:
                raise KeyboardInterrupt

    rec = CtrlC()
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, steps=100, eval_every=5), callbacks=[rec],
                   vocab=vocab, checkpoint=tmp_path / "m.pt")
    assert result.stopped == "interrupted" and "interrupted at step 13" in result.message
    assert result.steps == 13 and [r["step"] for r in result.history] == [5, 10]
    assert result.model is not None and math.isfinite(result.best_val_bpc)
    assert rec.ends == [result]
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.history == result.history
    assert evaluate(loaded.model, val, batch_size=TINY.batch_size) == pytest.approx(result.best_val_bpc, rel=1e-5)


# ---------------------------------------------------------------------------- it really learns

@pytest.mark.slow
def test_end_to_end_lstm_beats_the_unigram_baseline(shakespeare):
    text = shakespeare[:200_000]
    vocab = CharVocab.from_text(text)
    split = split_text(text)
    baseline = unigram_bpc(split.val)
    torch.manual_seed(0)
    model = CharLSTM(len(vocab), embed_dim=32, hidden_size=128)
    cfg = TrainConfig(batch_size=32, seq_len=64, lr=1e-2, warmup_steps=10, steps=300, minutes=None,
                      eval_every=100, progress=False, device="cpu")
    result = train(model, vocab.encode(split.train), vocab.encode(split.val), cfg)
    assert result.stopped == "budget"
    assert result.best_val_bpc < baseline - 0.5, (result.best_val_bpc, baseline)
    assert result.history[-1]["val_bpc"] < result.history[0]["val_bpc"]
