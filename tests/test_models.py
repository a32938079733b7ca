"""CharLSTM: shapes, state, parameter count, the fast generation stepper, build_model.

(MiniGPT has its own tests.)
"""

from __future__ import annotations

import pytest
import torch

from textlab import CharLSTM, ModelConfig, build_model, count_parameters

V, E, H = 11, 6, 10


def test_forward_shapes_and_state():
    model = CharLSTM(V, embed_dim=E, hidden_size=H, num_layers=2)
    x = torch.randint(0, V, (3, 7))
    logits, (h, c) = model(x)
    assert logits.shape == (3, 7, V)
    assert h.shape == c.shape == (2, 3, H)
    logits2, state2 = model(x[:, :1], (h, c))  # a state goes back in
    assert logits2.shape == (3, 1, V) and state2[0].shape == (2, 3, H)


def test_carried_state_equals_one_long_forward():
    torch.manual_seed(0)
    model = CharLSTM(V, embed_dim=E, hidden_size=H, num_layers=2).eval()
    x = torch.randint(0, V, (2, 12))
    whole, _ = model(x)
    first, state = model(x[:, :5])
    rest, _ = model(x[:, 5:], state)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole)


@pytest.mark.parametrize("layers", [1, 3])
def test_parameter_count_matches_the_formula(layers):
    model = CharLSTM(V, embed_dim=E, hidden_size=H, num_layers=layers)
    embed = V * E
    lstm = 4 * H * (E + H) + 8 * H + (layers - 1) * (4 * H * (H + H) + 8 * H)  # W_ih, W_hh, two biases
    head = H * V + V
    assert count_parameters(model) == embed + lstm + head
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_parameter_count_skips_frozen_weights():
    model = CharLSTM(V, embed_dim=E, hidden_size=H)
    model.embed.weight.requires_grad_(False)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters()) - V * E


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_stepper_matches_forward_one_char_at_a_time(layers):
    torch.manual_seed(layers)
    model = CharLSTM(V, embed_dim=E, hidden_size=H, num_layers=layers).eval()
    with torch.no_grad():  # non-zero biases, so a bias left out of the stepper would show
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randint(0, V, (4, 9))
    with torch.no_grad():
        expected, (h_ref, c_ref) = model(x)
    step, state = model.stepper(), None
    for t in range(x.shape[1]):
        logits, state = step(x[:, t], state)
        torch.testing.assert_close(logits, expected[:, t], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state[0], h_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state[1], c_ref, atol=1e-5, rtol=1e-4)


def test_stepper_continues_from_a_forward_state():
    """Sampling reads the prime with forward(), then steps: the two states must be the same kind."""
    torch.manual_seed(0)
    model = CharLSTM(V, embed_dim=E, hidden_size=H, num_layers=2).eval()
    x = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        expected, _ = model(x)
        _, state = model(x[:, :4])
    step = model.stepper()
    for t in (4, 5):
        logits, state = step(x[:, t], state)
        torch.testing.assert_close(logits, expected[:, t], atol=1e-5, rtol=1e-4)


def test_build_model_from_config():
    cfg = ModelConfig(kind="lstm", vocab_size=V, embed_dim=E, hidden_size=H, num_layers=2, dropout=0.1)
    model = build_model(cfg)
    assert isinstance(model, CharLSTM) and model.stateful
    assert model.config == cfg
    assert model.lstm.num_layers == 2 and model.lstm.hidden_size == H and model.embed.embedding_dim == E
    assert model.lstm.dropout == 0.1 and model.drop.p == 0.1
    assert count_parameters(model) == count_parameters(CharLSTM(V, E, H, 2))


def test_build_model_bad_kind():
    with pytest.raises(ValueError, match="unknown model kind 'rnn'"):
        build_model(ModelConfig(kind="rnn", vocab_size=V))


def test_build_model_needs_a_vocab_size():
    with pytest.raises(ValueError, match="vocab_size"):
        build_model(ModelConfig(kind="lstm"))
