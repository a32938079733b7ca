"""Training: the one yardstick (bits per character), the lr schedule, what train() really does each
step, reproducibility, callbacks, choosing on dev, checkpoints, stopping."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from textlab import (CharLSTM, CharVocab, CheckpointError, MiniGPT, TrainConfig, evaluate, load_checkpoint,
                     TextlabError, sample, split_text, train, unigram_bpc)
from textlab.batches import score_windows
from textlab.corpora import hold_out
from textlab.training import PrintSamples, _autocast, describe_context, lr_at, nll, parameter_groups

TINY = TrainConfig(batch_size=4, seq_len=16, lr=1e-2, warmup=0.1, steps=20, minutes=None, eval_every=10,
                   progress=False, device="cpu")


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


@given(n=st.integers(1, 300), context=st.integers(0, 40), stride=st.integers(1, 40))
def test_windows_score_every_target_once_with_enough_context(n, context, stride):
    scored = []
    for start, end, first in score_windows(n, context, stride):
        assert 0 <= start <= first < end <= n and end - start <= context + stride
        assert first == 0 or first - start >= context  # at least `context` ids before each scored one
        scored += range(first, end)
    assert scored == list(range(n))


def test_evaluate_is_cross_entropy_in_bits_window_by_window(data):
    vocab, _, val = data
    model = tiny_model(vocab).eval()
    ids = val[:101]
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        full = F.cross_entropy(logits[0], ids[1:], reduction="sum").item()
        # By hand: windows of 30 starting cold every 20, each scoring its last 20 (the first, all 30).
        by_hand = 0.0
        for start in range(0, 100, 20):
            end = min(start + 30, 100)
            first = 0 if start == 0 else start + 10
            if first >= end:
                break
            window_logits, _ = model(ids[None, start:end])
            by_hand += F.cross_entropy(window_logits[0, first - start:], ids[first + 1:end + 1], reduction="sum").item()
    assert nll(model, ids, context=200, stride=200) == (pytest.approx(full, rel=1e-5), 100)  # one window: all context
    assert nll(model, ids, context=10, stride=20)[0] == pytest.approx(by_hand, rel=1e-5)
    assert evaluate(model, ids, context=10, stride=20) == pytest.approx(by_hand / 100 / math.log(2), rel=1e-5)
    assert evaluate(model, ids, context=10, stride=20, chars=50) == pytest.approx(by_hand / 50 / math.log(2), rel=1e-5)


def test_the_score_does_not_depend_on_how_many_windows_run_at_once(shakespeare):
    vocab = CharVocab.from_text(shakespeare)
    torch.manual_seed(0)
    ids = vocab.encode(shakespeare[:6000])
    for model in (CharLSTM(len(vocab), embed_dim=16, hidden_size=32), MiniGPT(len(vocab), 32, 2, 2, block_size=64)):
        scores = [evaluate(model, ids, batch_size=b) for b in (1, 16, 128)]
        assert scores == pytest.approx([scores[0]] * 3, abs=1e-4)


def test_sliding_windows_equal_one_full_pass_when_the_block_covers_the_text(data):
    vocab, _, val = data
    torch.manual_seed(0)
    model = MiniGPT(len(vocab), 32, 2, 2, block_size=128).eval()
    ids = val[:101]
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        cold = torch.cat([model(ids[None, :64])[0][0], model(ids[None, 64:100])[0][0]])  # two fresh windows
    full = F.cross_entropy(logits[0], ids[1:]).item() / math.log(2)
    assert evaluate(model, ids) == pytest.approx(full, rel=1e-5)  # default window: the whole block
    # nanoGPT's protocol: cold windows of 64, each read from scratch.
    assert evaluate(model, ids, context=0, stride=64) == pytest.approx(
        F.cross_entropy(cold, ids[1:]).item() / math.log(2), rel=1e-5)


def test_each_model_is_described_by_how_it_is_read():
    assert describe_context(CharLSTM(10)) == "1024-char chunks, each from a fresh state warmed up on the 256 chars before it"
    assert describe_context(MiniGPT(10, 32, 2, 2, block_size=64)) == "sliding window of 64: every char sees ≥ 32"


def test_evaluate_restores_training_mode_and_rejects_tiny_input(data):
    vocab, _, val = data
    model = tiny_model(vocab).train()
    evaluate(model, val[:50])
    assert model.training
    with pytest.raises(Exception, match="at least 2 characters"):
        evaluate(model, val[:1])
    with pytest.raises(ValueError, match="block_size"):
        evaluate(MiniGPT(len(vocab), 32, 2, 2, block_size=16), val[:100], context=10, stride=10)


# ---------------------------------------------------------------------------- learning-rate schedule

def test_lr_warms_up_linearly_then_decays_by_cosine():
    cfg = TrainConfig(lr=1e-3, warmup=0.1, min_lr_ratio=0.1)
    assert lr_at(0.0, cfg) == 0.0
    assert lr_at(0.05, cfg) == pytest.approx(5e-4)
    assert lr_at(0.1, cfg) == pytest.approx(1e-3)     # the cosine starts at the peak ...
    assert lr_at(0.55, cfg) == pytest.approx(0.55e-3)  # ... is halfway half-way through the rest ...
    assert lr_at(1.0, cfg) == pytest.approx(1e-4)     # ... and ends at lr * min_lr_ratio
    assert lr_at(1.7, cfg) == pytest.approx(1e-4)     # never below it


def test_the_trainers_schedule_is_continuous(data):
    """The learning rates train() really used: up smoothly, then down in small steps — no cliff."""
    vocab, train_ids, val = data
    rec = Recorder()
    cfg = replace(TINY, steps=60, eval_every=100)
    train(tiny_model(vocab), train_ids, val, cfg, callbacks=[rec])
    lrs = [s["lr"] for s in rec.steps]
    assert lrs == pytest.approx([lr_at((i + 1) / 60, cfg) for i in range(60)])  # the schedule where each step ends
    assert lrs[0] > 0 and lrs[-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio)  # no wasted step; the whole curve
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(cfg.lr, rel=0.05)
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    drops = [a - b for a, b in zip(lrs[peak:], lrs[peak + 1:])]
    assert all(0 <= d < 0.05 * cfg.lr for d in drops), max(drops)


# ---------------------------------------------------------------------------- what each step does

class Watch:
    """Wraps AdamW.step: records each step's learning rate, gradient norm and parameters."""

    def __init__(self, monkeypatch):
        self.lrs, self.grad_norms, self.params = [], [], []
        original = torch.optim.AdamW.step

        def step(opt, *args, **kwargs):
            self.lrs.append([g["lr"] for g in opt.param_groups])
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            self.grad_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            self.params.append([p for g in opt.param_groups for p in g["params"]])
            return original(opt, *args, **kwargs)

        monkeypatch.setattr(torch.optim.AdamW, "step", step)


def test_each_step_uses_the_scheduled_lr_and_clips_the_gradient(data, monkeypatch):
    vocab, train_ids, val = data
    watch, rec = Watch(monkeypatch), Recorder()
    cfg = replace(TINY, grad_clip=0.01)  # far below the natural norm: every step is clipped
    model = tiny_model(vocab)
    train(model, train_ids, val, cfg, callbacks=[rec])
    assert watch.lrs == [[s["lr"]] * 2 for s in rec.steps]  # both groups, at the schedule's value
    assert all(n <= cfg.grad_clip * 1.001 for n in watch.grad_norms), max(watch.grad_norms)
    # Every parameter is in the optimizer, exactly once.
    assert sorted(map(id, watch.params[0])) == sorted(map(id, model.parameters()))


@pytest.mark.parametrize("make", [lambda v: CharLSTM(v, 8, 16, num_layers=2), lambda v: MiniGPT(v, 32, 2, 2, 32)],
                         ids=["lstm", "gpt"])
def test_weight_decay_is_chosen_by_module_type(make):
    model = make(20)
    decay, no_decay = parameter_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(map(id, decay + no_decay)) == sorted(map(id, model.parameters()))  # each exactly once
    assert all(p.dim() == 2 and "embed" not in names[id(p)] and "tok" not in names[id(p)] for p in decay)
    assert any(names[id(p)].endswith("bias") for p in no_decay)
    assert [names[id(p)] for p in decay if "pos" in names[id(p)]] == []
    with pytest.raises(TypeError, match="no weight-decay rule"):
        parameter_groups(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3)))


class StateSpy(CharLSTM):
    """A CharLSTM that records the state each training forward received and returned."""

    def __init__(self, vocab_size: int):
        super().__init__(vocab_size, embed_dim=8, hidden_size=16)
        self.calls = []

    def forward(self, x, state=None):
        logits, new_state = super().forward(x, state)
        if self.training:
            self.calls.append((None if state is None else [s.clone() for s in state],
                               [s.detach().clone() for s in new_state]))
        return logits, new_state


@pytest.mark.parametrize("batching", ["streams", "random"])
def test_the_lstm_state_is_carried_between_stream_windows_only(data, batching):
    vocab, train_ids, val = data
    torch.manual_seed(0)
    model = StateSpy(len(vocab))
    train(model, train_ids, val, replace(TINY, batching=batching, state_reset=0.0))
    given_states = [received for received, _ in model.calls]
    if batching == "random":
        assert given_states == [None] * len(model.calls)
        return
    # 4 rows × 16 = 64 characters a step; an epoch of ~7,700 characters lasts ~120 steps: no reset in 20.
    assert given_states[0] is None and None not in given_states[1:]
    for (_, returned), (received, _) in zip(model.calls, model.calls[1:]):
        assert all(torch.equal(a, b) for a, b in zip(returned, received))  # the values flow on, detached


def test_by_default_some_stream_rows_start_cold_and_the_rest_carry_on(data):
    vocab, train_ids, val = data
    torch.manual_seed(0)
    model = StateSpy(len(vocab))
    train(model, train_ids, val, replace(TINY, steps=40))
    rows_zeroed = rows_carried = 0
    for (_, returned), (received, _) in zip(model.calls, model.calls[1:]):
        cold = (received[0] == 0).all(-1)[0]  # (B,): rows whose state was zeroed before this window
        for a, b in zip(returned, received):
            assert torch.equal(a[:, ~cold], b[:, ~cold]) and (b[:, cold] == 0).all()
        rows_zeroed, rows_carried = rows_zeroed + int(cold.sum()), rows_carried + int((~cold).sum())
    share = rows_zeroed / (rows_zeroed + rows_carried)  # 39 windows × 4 rows
    assert rows_zeroed > 0 and abs(share - TrainConfig().state_reset) < 0.1


def test_sampling_in_a_callback_does_not_switch_dropout_off(data):
    vocab, train_ids, val = data
    model = tiny_model(vocab, num_layers=2, dropout=0.3)
    modes = []

    class SampleAndWatch:
        def on_eval(self, record):
            sample(model, vocab, "the ", length=20, seed=0)
            modes.append(("after sampling", model.training))

        def on_step(self, info):
            modes.append(("step", model.training))

    train(model, train_ids, val, TINY, callbacks=[SampleAndWatch()])
    assert [m for _, m in modes] == [True] * len(modes)


def test_print_samples_shows_the_text_improving_at_each_evaluation(data, capsys):
    vocab, train_ids, val = data
    model = tiny_model(vocab)
    result = train(model, train_ids, val, replace(TINY, steps=60, eval_every=30),
                   callbacks=[PrintSamples(model, vocab, "the ", length=30)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(result.history) == 3
    for line, record in zip(lines, result.history):
        assert line.startswith(f"step {record['step']:>5} · ") and f"val {record['val_bpc']:.3f} bpc │ the " in line
        assert len(line.split("│ ", 1)[1]) == 34 and "\n" not in line
    assert lines[0].split("│")[1] != lines[-1].split("│")[1]  # the model changed, the seed did not


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
    assert a.val_bpc == b.val_bpc
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)
    c = train(tiny_model(vocab), train_ids, val, replace(TINY, seed=1))
    assert [r["train_bpc"] for r in c.history[1:]] != [r["train_bpc"] for r in a.history[1:]]


@pytest.mark.parametrize("batching", ["streams", "random"])
def test_history_callbacks_and_result(data, batching):
    vocab, train_ids, val = data
    rec = Recorder()
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, batching=batching), callbacks=[rec])
    assert result.stopped == "budget" and result.steps == 20 and result.message == ""
    assert [r["step"] for r in result.history] == [0, 10, 20]  # step 0: the untrained model
    assert result.history[0]["train_bpc"] is None  # no training yet
    assert result.history[0]["val_bpc"] == pytest.approx(math.log2(len(vocab)), abs=0.5)
    for record in result.history:
        assert set(record) == {"step", "chars_seen", "seconds", "train_bpc", "dev_bpc", "val_bpc", "lr"}
        assert record["chars_seen"] == record["step"] * TINY.batch_size * TINY.seq_len
        assert 0 < record["val_bpc"] < 10 and 0 < record["dev_bpc"] < 10 and record["seconds"] >= 0
    # train_bpc is the mean training loss since the last evaluation, in bits (the losses are in nats).
    for i, record in enumerate(result.history[1:]):
        losses = [s["loss"] for s in rec.steps[i * 10:(i + 1) * 10]]
        assert record["train_bpc"] == pytest.approx(sum(losses) / len(losses) / math.log(2), rel=1e-9)
    assert [s["step"] for s in rec.steps] == list(range(1, 21))
    assert all(math.isfinite(s["loss"]) for s in rec.steps) and all(s["lr"] > 0 for s in rec.steps[1:])
    assert rec.evals == result.history
    assert rec.ends == [result]
    kept = min(result.history, key=lambda r: r["dev_bpc"])
    assert (result.kept_step, result.val_bpc) == (kept["step"], kept["val_bpc"])


def test_every_evaluation_scores_the_whole_val_text_and_the_held_out_dev(data):
    vocab, train_ids, val = data
    seen = []

    def score(model, ids):
        seen.append(len(ids))
        return evaluate(model, ids)

    result = train(tiny_model(vocab), train_ids, val, TINY, score=score)
    fit, dev = hold_out(train_ids, TINY.dev_fraction)
    assert seen == [len(dev), len(val)] * 3
    kept = next(r for r in result.history if r["step"] == result.kept_step)
    assert kept["val_bpc"] == pytest.approx(evaluate(result.model, val), rel=1e-6)  # the whole val text


class SlowPlot:
    """An ``on_eval`` callback as slow as a big figure redrawn in a notebook."""

    def on_eval(self, record):
        time.sleep(0.8)


@pytest.mark.parametrize("slow", ["score", "plot"])
def test_a_time_budget_counts_training_not_measuring(data, slow):
    """A model slow to score, or a notebook slow to plot, must not lose training time to measurement."""
    vocab, train_ids, val = data

    def slow_score(model, ids):
        time.sleep(0.4)
        return evaluate(model, ids)

    cfg = replace(TINY, steps=None, minutes=0.01, eval_every=10_000)  # 0.6 s of training
    start = time.perf_counter()
    if slow == "score":
        result = train(tiny_model(vocab), train_ids, val, cfg, score=slow_score)
    else:
        result = train(tiny_model(vocab), train_ids, val, cfg, callbacks=[SlowPlot()])
    assert time.perf_counter() - start > 1.6  # two evaluations of 0.8 s each came on top …
    assert result.steps > 0 and 0.6 <= result.seconds < 1.5  # … of the 0.6 s of training
    assert [r["step"] for r in result.history] == [0, result.steps]
    assert result.history[-1]["seconds"] == pytest.approx(result.seconds, abs=0.05)


def test_the_kept_weights_are_chosen_on_dev_never_on_val(data):
    vocab, train_ids, val = data
    # Scripted scores: dev is best at step 10, val would be best at step 20.
    script = iter([(3.0, 3.0), (1.0, 2.5), (2.0, 1.0)])
    pending = []

    def score(model, ids):
        if not pending:
            pending.extend(next(script))
        return pending.pop(0)

    result = train(tiny_model(vocab), train_ids, val, TINY, score=score)
    assert [(r["dev_bpc"], r["val_bpc"]) for r in result.history] == [(3.0, 3.0), (1.0, 2.5), (2.0, 1.0)]
    assert result.kept_step == 10 and result.val_bpc == 2.5


def test_an_unfinished_eval_interval_is_scored_at_the_end(data):
    vocab, train_ids, val = data
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, steps=25))
    assert [r["step"] for r in result.history] == [0, 10, 20, 25]


def test_training_learns_and_keeps_the_best_weights(data, tmp_path):
    vocab, train_ids, val = data
    cfg = replace(TINY, steps=60)
    result = train(tiny_model(vocab), train_ids, val, cfg, vocab=vocab, checkpoint=tmp_path / "best.pt")
    val_bpcs = [r["val_bpc"] for r in result.history]
    assert val_bpcs[-1] < val_bpcs[0] - 1
    loaded = load_checkpoint(tmp_path / "best.pt")
    assert loaded.vocab == vocab and loaded.history == result.history
    assert loaded.train_config == cfg
    assert evaluate(loaded.model, val) == pytest.approx(result.val_bpc, rel=1e-5)


def test_a_worse_model_later_does_not_replace_the_best(data, tmp_path):
    vocab, train_ids, val = data
    model = tiny_model(vocab)

    class Scramble:
        """After the evaluation at step 10, wreck the weights: every later evaluation is worse."""

        def on_eval(self, record):
            if record["step"] == 10:
                with torch.no_grad():
                    for p in model.parameters():
                        p.add_(5 * torch.randn_like(p))

    cfg = replace(TINY, steps=30, lr=1e-2)
    result = train(model, train_ids, val, cfg, callbacks=[Scramble()], vocab=vocab, checkpoint=tmp_path / "m.pt")
    _, at_10, *later = [r["dev_bpc"] for r in result.history]
    assert len(later) == 2 and min(later) > at_10 + 0.5
    assert result.kept_step == 10 and result.val_bpc == result.history[1]["val_bpc"]
    assert evaluate(load_checkpoint(tmp_path / "m.pt").model, val) == pytest.approx(result.val_bpc, rel=1e-5)


def test_best_checkpoint_is_written_at_each_new_best(data, tmp_path):
    vocab, train_ids, val = data
    path = tmp_path / "run" / "model.pt"
    seen = []

    class Peek:
        def on_eval(self, record):
            seen.append(len(load_checkpoint(path).history) if path.exists() else None)

    model = tiny_model(vocab)
    train(model, train_ids, val, replace(TINY, lr=3e-2), callbacks=[Peek()], vocab=vocab, checkpoint=path)
    # Step 0, the untrained model, is never saved; every later evaluation improved, so the file held
    # the history up to each.
    assert seen == [None, 2, 3]
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]
    assert not model.training  # the kept weights, ready to score and sample


def test_a_new_run_stopped_before_its_first_evaluation_keeps_the_earlier_checkpoint(data, tmp_path):
    vocab, train_ids, val = data
    path = tmp_path / "model.pt"
    train(tiny_model(vocab), train_ids, val, TINY, vocab=vocab, checkpoint=path)
    before = path.read_bytes()

    class CtrlC:
        def on_step(self, info):
            raise KeyboardInterrupt

    result = train(tiny_model(vocab, seed=1), train_ids, val, TINY, callbacks=[CtrlC()], vocab=vocab,
                   checkpoint=path)
    assert result.stopped == "interrupted" and result.kept_step == 0
    assert path.read_bytes() == before, "the untrained model replaced a trained one"


class CountSteps:
    """A callback that records each training step, to show that none ran."""

    def __init__(self):
        self.steps = []

    def on_step(self, info):
        self.steps.append(info)


def test_a_checkpoint_that_could_not_be_saved_is_refused_before_training(data, tmp_path):
    vocab, train_ids, val = data
    count = CountSteps()
    with pytest.raises(CheckpointError, match="vocabulary has 10 characters but the model"):
        train(tiny_model(vocab), train_ids, val, TINY, callbacks=[count], vocab=CharVocab("abcdefghij"),
              checkpoint=tmp_path / "m.pt")
    assert count.steps == [] and not (tmp_path / "m.pt").exists()


def test_the_texts_prime_is_saved_with_each_best(data, tmp_path):
    vocab, train_ids, val = data
    prime = vocab.decode(train_ids[:3].tolist())
    seen = []

    class Peek:
        def on_eval(self, record):
            seen.append(load_checkpoint(tmp_path / "m.pt").prime if record["step"] else None)

    train(tiny_model(vocab), train_ids, val, replace(TINY, lr=3e-2), callbacks=[Peek()], vocab=vocab,
          checkpoint=tmp_path / "m.pt", prime=prime)
    assert seen == [None, prime, prime]  # one save per new best, each with the prime: no second write


@pytest.mark.parametrize("prime", ["", "Жизнь"])
def test_a_prime_the_vocabulary_cannot_write_is_refused_before_training(data, tmp_path, prime):
    vocab, train_ids, val = data
    count = CountSteps()
    with pytest.raises(TextlabError, match="must be text made of the vocabulary's characters"):
        train(tiny_model(vocab), train_ids, val, TINY, callbacks=[count], vocab=vocab,
              checkpoint=tmp_path / "m.pt", prime=prime)
    assert count.steps == [] and not (tmp_path / "m.pt").exists()


def test_early_stopping_after_patience(data):
    vocab, train_ids, val = data
    # lr=0: the weights never change, so no evaluation after the first is a new best.
    cfg = replace(TINY, lr=0.0, steps=200, eval_every=5, patience=2)
    result = train(tiny_model(vocab), train_ids, val, cfg)
    assert result.stopped == "early stop"
    assert result.steps == 10 and [r["step"] for r in result.history] == [0, 5, 10]


@pytest.mark.parametrize("budget, message", [({"steps": None, "minutes": None}, "give a budget"),
                                             ({"steps": 0}, "must be positive"),
                                             ({"steps": None, "minutes": 0.0}, "must be positive"),
                                             ({"eval_every": 0}, "eval_every"),
                                             ({"warmup": 1.0}, "warmup"),
                                             ({"ema": 1.0}, "ema is a decay"),
                                             ({"state_reset": 1.5}, "state_reset is a share"),
                                             ({"schedule": "hold", "cooldown": 0.0}, "cooldown is a share"),
                                             ({"grad_clip": 0.0}, "grad_clip is the largest gradient norm"),
                                             ({"batch_size": 0}, "batch_size must be ≥ 1"),
                                             ({"seq_len": 0}, "seq_len must be ≥ 1"),
                                             ({"patience": 0}, "patience is a number of evaluations")])
def test_train_needs_a_sensible_budget(data, budget, message):
    vocab, train_ids, val = data
    with pytest.raises(ValueError, match=message):
        train(tiny_model(vocab), train_ids, val, replace(TINY, **budget))


def test_dev_is_held_out_from_the_start_so_training_ends_next_to_validation():
    fit, dev = hold_out("abcdefghijklmnopqrstuvwxyz" * 4, 0.1)
    assert dev == "abcdefghij" and fit.endswith("xyz") and len(fit) == 94


def test_a_training_text_too_short_to_hold_out_dev_gets_a_clear_error(data):
    vocab, train_ids, val = data
    with pytest.raises(Exception, match="too short to keep 3% aside"):
        train(tiny_model(vocab), train_ids[:40], val, TINY)


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
    assert result.steps == 12 and [r["step"] for r in result.history] == [0, 10]
    assert math.isfinite(result.val_bpc)  # the weights from before the NaN are kept
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert rec.ends == [result] and load_checkpoint(tmp_path / "m.pt").history == result.history


def test_nan_on_the_first_step_keeps_the_untrained_weights(data):
    vocab, train_ids, val = data
    result = train(NaNAfter(len(vocab), ok_calls=0), train_ids, val, TINY)
    assert result.stopped == "nan" and result.steps == 0 and [r["step"] for r in result.history] == [0]
    assert result.kept_step == 0 and result.val_bpc == result.history[0]["val_bpc"]


def test_huge_learning_rate_stops_on_nan(data):
    vocab, train_ids, val = data
    result = train(tiny_model(vocab), train_ids, val, replace(TINY, lr=1e6, warmup=0.0, grad_clip=1e30,
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
    assert result.steps == 13 and [r["step"] for r in result.history] == [0, 5, 10]
    assert result.model is not None and math.isfinite(result.val_bpc)
    assert rec.ends == [result]
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert evaluate(loaded.model, val) == pytest.approx(result.val_bpc, rel=1e-5)


# ---------------------------------------------------------------------------- it really learns

@pytest.mark.slow
def test_end_to_end_lstm_beats_the_unigram_baseline(shakespeare):
    text = shakespeare[:200_000]
    vocab = CharVocab.from_text(text)
    split = split_text(text)
    baseline = unigram_bpc(split.val)
    torch.manual_seed(0)
    model = CharLSTM(len(vocab), embed_dim=32, hidden_size=128)
    cfg = TrainConfig(batch_size=32, seq_len=64, lr=1e-2, warmup=0.03, steps=300, minutes=None,
                      eval_every=100, progress=False, device="cpu")
    result = train(model, vocab.encode(split.train), vocab.encode(split.val), cfg)
    assert result.stopped == "budget"
    assert result.val_bpc < baseline - 0.5, (result.val_bpc, baseline)
    assert result.history[-1]["val_bpc"] < result.history[0]["val_bpc"]


def test_a_gpu_with_bf16_only_in_emulation_trains_in_fp16(monkeypatch):
    """A T4, Colab's free GPU, has bf16 only in software emulation, slower than its fp16."""
    t4 = lambda including_emulation=True: including_emulation  # noqa: E731: what torch.cuda says on a T4
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", t4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CUDA here: autocast and the scaler warn they are off
        autocast, scaler = _autocast(torch.device("cuda"))
        assert autocast.fast_dtype == torch.float16 and scaler is not None
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # an A100
        autocast, scaler = _autocast(torch.device("cuda"))
        assert autocast.fast_dtype == torch.bfloat16 and scaler is None
