"""MiniGPT: shapes, causality, the key/value cache, weight tying, and the shared trainer/sampler/checkpoints."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import REPETITIVE_TEXT

from textlab import (CharLSTM, CharVocab, MiniGPT, TrainConfig, build_model, count_parameters,
                     default_configs, evaluate, load_checkpoint, sample, sample_refeed, save_checkpoint, train)

V = 20


@pytest.fixture
def tiny_gpt() -> MiniGPT:
    torch.manual_seed(0)
    return MiniGPT(V, hidden_size=32, num_layers=2, n_head=4, block_size=8).eval()


@pytest.fixture(scope="module")
def trained_gpt() -> tuple[MiniGPT, CharVocab, float, float]:
    """A MiniGPT trained for a few seconds on REPETITIVE_TEXT; also its val bpc before and after."""
    torch.manual_seed(0)
    vocab = CharVocab.from_text(REPETITIVE_TEXT)
    ids = vocab.encode(REPETITIVE_TEXT)
    cut = len(ids) * 9 // 10
    model = MiniGPT(len(vocab), hidden_size=32, num_layers=2, n_head=2, block_size=32)
    before = evaluate(model, ids[cut:])
    cfg = TrainConfig(batch_size=16, seq_len=32, lr=3e-3, warmup=0.05, steps=400, minutes=None, dev_fraction=0.1,
                      eval_every=100, progress=False, device="cpu")
    result = train(model, ids[:cut], ids[cut:], cfg)
    return result.model.eval(), vocab, before, result.val_bpc


def test_shapes_and_state(tiny_gpt):
    x = torch.randint(V, (3, 8))
    logits, (caches, seen) = tiny_gpt(x)
    assert logits.shape == (3, 8, V)
    assert len(caches) == 2 and caches[0][0].shape == (3, 4, 8, 8)  # (B, heads, T, head size)
    assert torch.equal(seen, x)


def test_causal_a_later_character_never_changes_earlier_logits(tiny_gpt):
    x = torch.randint(V, (2, 8))
    changed = x.clone()
    changed[:, 5] = (x[:, 5] + 1) % V
    a, _ = tiny_gpt(x)
    b, _ = tiny_gpt(changed)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-4)


def test_cached_steps_equal_the_full_forward_also_past_block_size(tiny_gpt):
    x = torch.randint(V, (3, 21))  # block_size is 8: the cache fills and is rebuilt many times
    step = tiny_gpt.stepper()
    with torch.no_grad():
        logits, state = tiny_gpt(x[:, :3])
        stepped = [logits[:, -1]]
        for t in range(3, x.shape[1]):
            logits, state = step(x[:, t], state)
            stepped.append(logits)
        for i, t in enumerate(range(2, x.shape[1])):
            full, _ = tiny_gpt(x[:, max(0, t - 7):t + 1])  # at most block_size characters, ending at t
            assert torch.allclose(stepped[i], full[:, -1], atol=1e-5), f"position {t}"
    assert state[1].shape == (3, 8)  # the state never holds more than block_size ids


def test_bad_inputs_are_clear_errors(tiny_gpt):
    with pytest.raises(ValueError, match="block_size=8"):
        tiny_gpt(torch.zeros(1, 9, dtype=torch.long))
    _, state = tiny_gpt(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="one new character"):
        tiny_gpt(torch.zeros(1, 2, dtype=torch.long), state)
    with pytest.raises(ValueError, match="multiple of n_head"):
        MiniGPT(V, hidden_size=30, n_head=4)


def test_weights_are_tied_and_counted_once(tiny_gpt):
    assert tiny_gpt.head.weight is tiny_gpt.tok.weight
    C, L, block = 32, 2, 8
    per_block = 12 * C * C + 13 * C  # qkv, proj, two-layer MLP (4C wide), two LayerNorms
    expected = V * C + block * C + L * per_block + 2 * C
    assert count_parameters(tiny_gpt) == expected


def test_build_model_and_the_gpt_defaults(monkeypatch):
    monkeypatch.delenv("TEXTLAB_QUICK", raising=False)  # the sizes a student gets, not CI's toys
    model_cfg, train_cfg = default_configs("cpu", kind="gpt")
    gpt = build_model(replace(model_cfg, vocab_size=65))
    lstm = build_model(replace(default_configs("cpu")[0], vocab_size=65))
    assert isinstance(gpt, MiniGPT) and isinstance(lstm, CharLSTM)
    assert gpt.config.block_size >= train_cfg.seq_len
    assert 0.8 < count_parameters(gpt) / count_parameters(lstm) < 1.25  # compared at equal size
    with pytest.raises(ValueError, match="kind"):
        default_configs("cpu", kind="rnn")


def test_trains_with_the_shared_trainer(trained_gpt):
    _, _, before, after = trained_gpt
    assert after < before - 2.0, f"val bpc {before:.2f} → {after:.2f}"


def test_checkpoint_round_trip(trained_gpt, tmp_path):
    model, vocab, _, _ = trained_gpt
    path = save_checkpoint(tmp_path / "gpt.pt", model, vocab)
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, MiniGPT) and loaded.model.config == model.config
    assert loaded.model.head.weight is loaded.model.tok.weight
    x = vocab.encode("the cat sat on the")[None]
    with torch.no_grad():
        assert torch.allclose(loaded.model(x)[0], model(x)[0], atol=1e-6)


def test_sampling_with_the_cache_equals_rereading(trained_gpt):
    model, vocab, _, _ = trained_gpt
    prime = "the dog sat on the log. " * 2  # longer than block_size: the prime is cropped
    fast = sample(model, vocab, prime, length=80, temperature=0)
    assert fast == sample_refeed(model, vocab, prime, length=80, temperature=0)
    assert "sat on the" in fast[len(prime):]
    a, b = (sample(model, vocab, "the", length=50, temperature=1.0, seed=3) for _ in range(2))
    assert a == b and len(a) == 53


def test_residual_projections_are_named_and_scaled_by_depth():
    torch.manual_seed(0)
    model = MiniGPT(V, hidden_size=64, num_layers=8, n_head=4, block_size=8)
    for block in model.blocks:  # 0.02 / √(2 × 8) = 0.005: the sum of 16 residual additions stays O(1)
        for proj in (block.attn.proj, block.mlp.proj):
            assert proj.weight.std().item() == pytest.approx(0.005, rel=0.1)
        assert block.mlp.fc.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)


def test_checkpoints_from_before_the_names_still_load(tiny_gpt):
    old = {k.replace("mlp.fc.", "mlp.0.").replace("mlp.proj.", "mlp.2."): v
           for k, v in tiny_gpt.state_dict().items()}
    assert "blocks.0.mlp.2.weight" in old and "blocks.0.mlp.proj.weight" not in old
    torch.manual_seed(1)
    fresh = MiniGPT(V, hidden_size=32, num_layers=2, n_head=4, block_size=8).eval()
    fresh.load_state_dict(old)  # strict: every key found, none left over
    x = torch.randint(V, (2, 8))
    assert torch.equal(fresh(x)[0], tiny_gpt(x)[0])


def test_attention_by_hand_equals_the_module(trained_gpt):
    from textlab.analysis import attention_by_hand, attention_input, attention_weights, plot_attention

    model, vocab, _, _ = trained_gpt
    line = "the cat sat on the mat."
    for layer in range(len(model.blocks)):
        x = attention_input(model, vocab, line, layer)               # (T, C)
        weights, y = attention_by_hand(model.blocks[layer].attn, x)
        with torch.no_grad():
            own, _ = model.blocks[layer].attn(x[None])               # the fused kernel
        assert torch.allclose(y, own[0], atol=1e-5)
        assert weights.shape == (model.config.n_head, len(line), len(line))
        assert torch.allclose(weights.sum(-1), torch.ones(model.config.n_head, len(line)), atol=1e-6)
        assert torch.all(weights.triu(1) == 0)                      # nothing looks ahead
    maps = attention_weights(model, vocab, line, layer=1)
    assert torch.equal(maps, weights)
    ax = plot_attention(maps[0], line)
    assert len(ax.get_xticklabels()) == len(line) and ax.get_xticklabels()[3].get_text() == "␣"
    with pytest.raises(ValueError, match="one head"):
        plot_attention(maps, line)
