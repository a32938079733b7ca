"""The training levers of round 2: weight averaging (``TrainConfig.ema``), the hold-then-cool-down
schedule (``schedule="hold"``) and cold starts for stream rows (``state_reset``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from textlab import CharLSTM, CharVocab, TrainConfig, train
from textlab.training import forget_rows, lr_at, update_average

TINY = TrainConfig(batch_size=4, seq_len=16, lr=1e-2, warmup=0.1, steps=5, minutes=None, eval_every=5,
                   progress=False, device="cpu")


@pytest.fixture
def data(repetitive_text):
    vocab = CharVocab.from_text(repetitive_text)
    ids = vocab.encode(repetitive_text)
    return vocab, ids[:8000], ids[8000:]


def tiny_model(vocab: CharVocab) -> CharLSTM:
    torch.manual_seed(0)
    return CharLSTM(len(vocab), embed_dim=8, hidden_size=16)


def test_update_average_is_the_running_mean_then_an_ema():
    average, model = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    seen = []
    for step in range(1, 8):
        torch.nn.init.normal_(model.weight)
        seen.append(model.weight.detach().clone())
        update_average(average, model, step, ema=0.75)  # a mean over up to 1 / (1 - 0.75) = 4 steps
        if step <= 4:
            assert torch.allclose(average.weight, torch.stack(seen).mean(0), atol=1e-6)
    expected = torch.stack(seen[:4]).mean(0)
    for w in seen[4:]:
        expected = 0.75 * expected + 0.25 * w
    assert torch.allclose(average.weight, expected, atol=1e-6)


def test_train_scores_and_keeps_the_average_and_model_holds_it(data):
    vocab, train_ids, val = data
    raw, snapshots = tiny_model(vocab), []  # trained without averaging: the steps the averaged run takes

    class Snapshot:
        def on_step(self, info):
            snapshots.append([p.detach().clone() for p in raw.parameters()])

    train(raw, train_ids, val, TINY, callbacks=[Snapshot()], score=lambda m, ids: 1.0)

    model, scored = tiny_model(vocab), []

    def score(m, ids):  # every evaluation "better" than the last: the final one is kept
        scored.append(m)
        return 10.0 - len(scored)

    result = train(model, train_ids, val, replace(TINY, ema=0.9), score=score)  # 5 steps: the plain mean
    assert all(m is model for m in scored)  # a callback holding `model` sees the weights that are scored
    mean = [torch.stack(ws).mean(0) for ws in zip(*snapshots)]
    for kept, expected, last in zip(result.model.parameters(), mean, snapshots[-1]):
        assert torch.allclose(kept, expected, atol=1e-6)
        assert not torch.allclose(kept, last)
    assert result.val_bpc == 10.0 - len(scored)


def test_without_ema_the_raw_weights_are_scored(data):
    vocab, train_ids, val = data
    model, scored = tiny_model(vocab), []
    train(model, train_ids, val, TINY, score=lambda m, ids: scored.append(m) or 1.0)
    assert all(m is model for m in scored)


def test_ema_must_be_a_decay(data):
    vocab, train_ids, val = data
    with pytest.raises(ValueError, match="ema"):
        train(tiny_model(vocab), train_ids, val, replace(TINY, ema=1.0))
    with pytest.raises(ValueError, match="schedule"):
        train(tiny_model(vocab), train_ids, val, replace(TINY, schedule="step"))


def test_hold_schedule_warms_up_holds_then_falls_in_a_straight_line():
    cfg = TrainConfig(lr=1e-3, warmup=0.1, schedule="hold", cooldown=0.4, min_lr_ratio=0.0)
    assert lr_at(0.05, cfg) == pytest.approx(5e-4)
    assert lr_at(0.1, cfg) == lr_at(0.35, cfg) == lr_at(0.6, cfg) == pytest.approx(1e-3)
    assert lr_at(0.8, cfg) == pytest.approx(5e-4)  # half-way down the cool-down
    assert lr_at(1.0, cfg) == pytest.approx(0.0)
    points = [lr_at(i / 1000, cfg) for i in range(1001)]
    assert max(abs(a - b) for a, b in zip(points, points[1:])) <= 1.01e-2 * cfg.lr  # no cliff anywhere


def test_forget_rows_zeroes_whole_rows_of_the_state():
    h, c = torch.ones(1, 1000, 3), torch.full((1, 1000, 3), 2.0)
    h2, c2 = forget_rows((h, c), 0.25, torch.Generator().manual_seed(0))
    cold = (h2 == 0).all(-1)[0]
    assert 0.2 < cold.float().mean() < 0.3
    assert torch.equal((c2 == 0).all(-1)[0], cold)  # h and c forget the same rows
    assert (h2[0, ~cold] == 1).all() and (c2[0, ~cold] == 2).all()  # the others are untouched


def test_state_reset_changes_training_only_when_asked(data):
    vocab, train_ids, val = data
    runs = [train(tiny_model(vocab), train_ids, val, replace(TINY, steps=12, state_reset=p)).history[-1]["train_bpc"]
            for p in (0.0, 0.0, 0.5)]
    assert runs[0] == runs[1] != runs[2]
