"""The levers ``benchmarks/try_levers.py`` measured (RESULTS.md): they compute what they claim to.

A lever that lost because of a bug would be a wrong row in the results, so the minGRU recurrence
is checked against the step-by-step definition, and the initialisations against their formulas.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from textlab import ModelConfig, TrainConfig
from textlab.models import CharLSTM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import try_levers  # noqa: E402


@pytest.fixture
def levers():
    """Set levers for one test; the defaults come back after it."""
    yield try_levers.active
    try_levers.active.update(try_levers.LEVERS)
    try_levers.tail.update(progress=0.0, steps=0)


def test_the_scan_and_its_backward_are_exact():
    a = torch.rand(7, 2, 3, dtype=torch.double, requires_grad=True)
    b = torch.randn(7, 2, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.double, requires_grad=True)
    h, expected = try_levers.LinearScan.apply(a, b, h0), []
    prev = h0
    for t in range(7):
        prev = a[t] * prev + b[t]
        expected.append(prev)
    torch.testing.assert_close(h, torch.stack(expected))
    assert torch.autograd.gradcheck(try_levers.LinearScan.apply, (a, b, h0))


def test_mingru_carries_its_state_and_steps_like_its_forward(levers):
    levers["mingru"] = 1
    torch.manual_seed(0)
    model = try_levers.build_model(ModelConfig(vocab_size=11, hidden_size=16, num_layers=2)).double()
    x = torch.randint(0, 11, (3, 20))
    whole, (state,) = model(x)
    first, carried = model(x[:, :9])
    second, (state_after_two,) = model(x[:, 9:], carried)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(state_after_two, state)
    step, state, logits = model.stepper(), None, []
    for t in range(20):
        out, state = step(x[:, t], state)
        logits.append(out)
    torch.testing.assert_close(torch.stack(logits, 1), whole)


def test_the_initialisation_levers(levers):
    levers.update(fbias=1.0, orth=1.0)
    lstm = try_levers.build_model(ModelConfig(vocab_size=11, hidden_size=8)).lstm
    torch.testing.assert_close((lstm.bias_ih_l0 + lstm.bias_hh_l0)[8:16], torch.ones(8))  # the forget gates
    for gate in lstm.weight_hh_l0.detach().split(8):
        torch.testing.assert_close(gate @ gate.T, torch.eye(8), atol=1e-5, rtol=0)


def test_ar_and_tar_add_their_penalties_to_the_loss(levers, monkeypatch):
    monkeypatch.setattr(CharLSTM, "forward", try_levers.lstm_forward)  # what try_levers.main patches in
    torch.manual_seed(0)
    model = try_levers.build_model(ModelConfig(vocab_size=11, hidden_size=8, dropout=0.0))
    x, y = torch.randint(0, 11, (2, 6)), torch.randint(0, 11, (2, 6))
    plain, _ = try_levers.next_char_loss(model, x, y, None)
    levers.update(ar=2.0, tar=3.0)
    with_penalty, _ = try_levers.next_char_loss(model, x, y, None)
    h, _ = model.lstm(model.embed(x))  # (B, T, H): no dropout, so AR and TAR read the same outputs
    expected = 2.0 * h.pow(2).mean() + 3.0 * (h[:, 1:] - h[:, :-1]).pow(2).mean()
    torch.testing.assert_close(with_penalty - plain, expected)


def test_tail_averaging_is_the_ema_then_the_plain_mean_of_the_last_steps(levers):
    levers["tail"] = 0.5
    average, model = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    for step, progress in enumerate([0.1, 0.3, 0.5, 0.7, 0.9], 1):
        try_levers.apply_lr(optimizer, progress, TrainConfig())
        with torch.no_grad():
            model.weight.fill_(float(step))
        seen.append(model.weight.detach().clone())
        try_levers.update_average(average, model, step, ema=0.9)
        if progress < 0.5:  # before the tail: textlab's EMA (the mean while it spans fewer steps)
            torch.testing.assert_close(average.weight, torch.stack(seen).mean(0))
    torch.testing.assert_close(average.weight, torch.stack(seen[2:]).mean(0))  # steps 3–5: the tail
