"""Sampling: seeds, greedy decoding, top-k / top-p, parameter checks, streaming, the refeed sampler."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from textlab import (CharLSTM, CharVocab, TextlabError, next_char_probs, probabilities, sample, sample_refeed,
                     stream)

PRIME = "the "


def fixed_logits_model(vocab: CharVocab, logits: list[float]) -> CharLSTM:
    """A CharLSTM whose next-character logits are always ``logits``, whatever it has read."""
    model = CharLSTM(len(vocab), embed_dim=4, hidden_size=4)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor(logits))
    return model.eval()


def greedy_chain(model, vocab: CharVocab, prime: str, length: int) -> str:
    """Greedy decoding the plain way: re-read the text, append the argmax, repeat."""
    text = prime
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(vocab.encode(text)[None])
            text += vocab.chars[int(logits[0, -1].argmax())]
    return text


# ---------------------------------------------------------------------------- seeds and greedy

def test_same_seed_same_text_different_seed_different_text(tiny_lstm):
    model, vocab = tiny_lstm
    a = sample(model, vocab, PRIME, 80, temperature=1.0, seed=1)
    assert a == sample(model, vocab, PRIME, 80, temperature=1.0, seed=1)
    assert a != sample(model, vocab, PRIME, 80, temperature=1.0, seed=2)
    assert a.startswith(PRIME) and len(a) == len(PRIME) + 80
    assert set(a) <= set(vocab.chars)


def test_no_seed_gives_fresh_randomness(tiny_lstm):
    model, vocab = tiny_lstm
    assert sample(model, vocab, PRIME, 80) != sample(model, vocab, PRIME, 80)


@pytest.mark.parametrize("fixture", ["tiny_lstm", "trained_lstm"])
def test_temperature_zero_is_the_argmax_chain(request, fixture):
    model, vocab = request.getfixturevalue(fixture)
    greedy = greedy_chain(model, vocab, PRIME, 40)
    assert sample(model, vocab, PRIME, 40, temperature=0, seed=1) == greedy
    assert sample(model, vocab, PRIME, 40, temperature=0, seed=2) == greedy  # the seed does not matter
    assert sample(model, vocab, PRIME, 40, temperature=1.0, top_k=1, seed=3) == greedy
    assert sample(model, vocab, PRIME, 40, temperature=2.0, top_p=1e-6, seed=4) == greedy


def test_greedy_on_the_trained_model_continues_the_pattern(trained_lstm):
    model, vocab = trained_lstm
    prime = "the cat sat on the "
    continuation = "mat. the dog sat on the log. the cat"
    assert sample(model, vocab, prime, len(continuation), temperature=0) == prime + continuation


def test_low_temperature_on_a_trained_model_is_nearly_greedy(trained_lstm):
    model, vocab = trained_lstm
    length = 300
    text = sample(model, vocab, PRIME, length, temperature=0.05, seed=0)
    with torch.no_grad():  # what greedy would have picked after each prefix of the sampled text
        logits, _ = model(vocab.encode(text[:-1])[None])
    picks = logits[0, len(PRIME) - 1:].argmax(-1)
    agree = (picks == vocab.encode(text[len(PRIME):])).float().mean().item()
    assert agree >= 0.95
    # At temperature 1 the same model is free to wander: the check above is not trivially true.
    hot = sample(model, vocab, PRIME, length, temperature=3.0, seed=0)
    with torch.no_grad():
        logits, _ = model(vocab.encode(hot[:-1])[None])
    hot_agree = (logits[0, len(PRIME) - 1:].argmax(-1) == vocab.encode(hot[len(PRIME):])).float().mean().item()
    assert hot_agree < agree


def test_refeed_sampler_matches_at_temperature_zero(trained_lstm, tiny_lstm):
    for model, vocab in (trained_lstm, tiny_lstm):
        assert sample_refeed(model, vocab, PRIME, 40, temperature=0) == sample(model, vocab, PRIME, 40, temperature=0)


def test_refeed_sampler_is_seeded(tiny_lstm):
    model, vocab = tiny_lstm
    a = sample_refeed(model, vocab, PRIME, 30, seed=5)
    assert a == sample_refeed(model, vocab, PRIME, 30, seed=5) and len(a) == len(PRIME) + 30
    assert a != sample_refeed(model, vocab, PRIME, 30, seed=6)  # the seed is used, not a fixed one
    assert sample_refeed(model, vocab, PRIME, 0) == PRIME


def test_next_char_probs_match_the_stateful_sampler(trained_lstm):
    """At every step, the distribution from re-reading the text equals the stateful step's."""
    model, vocab = trained_lstm
    text = sample(model, vocab, PRIME, 20, temperature=0)
    for i in range(len(PRIME), len(text)):
        probs = next_char_probs(model, vocab, text[:i])
        assert probs.shape == (len(vocab),) and probs.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert vocab.chars[int(probs.argmax())] == text[i]


# ---------------------------------------------------------------------------- top-k and top-p

LETTERS = CharVocab.from_text("abcdefgh")
RANKED = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0]  # "a" most likely, then "b", …


def draws(model, **knobs) -> Counter:
    texts = sample(model, LETTERS, "a", 50, seed=0, num_samples=64, **knobs)
    return Counter("".join(t[1:] for t in texts))


def test_top_k_never_emits_a_character_outside_the_k_most_likely():
    model = fixed_logits_model(LETTERS, RANKED)
    counts = draws(model, temperature=1.0, top_k=3)
    assert set(counts) == {"a", "b", "c"}  # all three appear, nothing else in 3,200 draws
    assert counts["a"] > counts["b"] > counts["c"]
    assert set(draws(model, temperature=1.0)) > {"a", "b", "c", "d", "e"}  # without top-k the tail shows


def test_top_p_samples_only_from_the_nucleus():
    model = fixed_logits_model(LETTERS, RANKED)
    # softmax(RANKED): a≈0.63, b≈0.23, c≈0.086 → the nucleus for p=0.8 is {a, b}
    assert set(draws(model, temperature=1.0, top_p=0.8)) == {"a", "b"}


@pytest.mark.parametrize("knobs", [dict(temperature=1.0), dict(temperature=0.5), dict(temperature=2.0),
                                   dict(temperature=1.0, top_k=3), dict(temperature=1.5, top_p=0.8)])
def test_draws_land_on_each_character_as_often_as_its_probability(knobs):
    """The Gumbel-max draws follow ``probabilities``: temperature, top-k and top-p act as documented."""
    model = fixed_logits_model(LETTERS, RANKED)
    samples, length = 200, 100
    n = samples * length
    texts = sample(model, LETTERS, "a", length, seed=0, num_samples=samples, **knobs)
    counts = Counter("".join(t[1:] for t in texts))
    freq = torch.tensor([counts[c] for c in LETTERS.chars], dtype=torch.float64) / n
    expected = probabilities(torch.tensor(RANKED), **knobs).double()
    standard_error = (expected * (1 - expected) / n).sqrt()
    assert torch.all((freq - expected).abs() <= 5 * standard_error), (freq, expected)


def test_probabilities_top_p_keeps_the_minimal_nucleus():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    for top_p, kept in [(0.45, 1), (0.7, 2), (0.85, 3), (0.97, 4), (1.0, 4)]:
        probs = probabilities(logits, top_p=top_p)
        assert (probs > 0).sum().item() == kept, top_p
        expected = torch.tensor([0.5, 0.3, 0.15, 0.05])[:kept]
        torch.testing.assert_close(probs[:kept], expected / expected.sum())
    shuffled = logits[[2, 0, 3, 1]]  # the order of the vocabulary does not matter
    torch.testing.assert_close(probabilities(shuffled, top_p=0.7), torch.tensor([0.0, 0.625, 0.0, 0.375]))


@given(st.lists(st.floats(-6, 6), min_size=2, max_size=20), st.floats(0.01, 1.0))
def test_probabilities_top_p_property(values, top_p):
    logits = torch.tensor(values)
    base = logits.softmax(-1)
    probs = probabilities(logits, top_p=top_p)
    kept = probs > 0
    mass = base[kept].sum().item()
    assert mass >= top_p - 1e-5                                  # the nucleus reaches p ...
    last = kept & (base == base[kept].min())                     # the least likely kept, and its ties
    assert mass - base[last].sum().item() < top_p + 1e-5         # ... and is minimal, ties aside
    if (~kept).any():
        assert base[kept].min() >= base[~kept].max() - 1e-7      # it holds the most likely ones
    torch.testing.assert_close(probs[kept], base[kept] / mass)   # renormalised, ratios kept


def test_top_p_keeps_ties_and_is_not_fooled_by_rounding():
    # Three equally likely characters at the cut: keep them all, as top-k does, not the lowest id.
    probs = probabilities(torch.tensor([2.0, 1.0, 1.0, 1.0, 0.0]), top_p=0.5)
    assert (probs > 0).tolist() == [True, True, True, True, False]
    # Six of ten characters of 0.1 reach 0.6; float32's running total says 0.59999996.
    probs = probabilities(torch.tensor([0.0] * 10 + [-30.0]), top_p=0.6)
    assert (probs > 0).sum() == 10  # the ten tie, and only the eleventh is cut
    logits = torch.tensor([0.1] * 6 + [0.01] * 40).log()  # six reach 0.6: the forty are cut
    assert (probabilities(logits, top_p=0.6) > 0).sum() == 6


def test_probabilities_temperature_and_top_k():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    torch.testing.assert_close(probabilities(logits, temperature=2.0), (logits / 2).softmax(-1))
    torch.testing.assert_close(probabilities(logits, temperature=0), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    # A tiny temperature is all but greedy, not NaN (logits / 1e-40 alone overflows to inf - inf).
    torch.testing.assert_close(probabilities(logits * 50, temperature=1e-40), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    top2 = probabilities(logits, top_k=2)
    assert (top2[0, 2:] == 0).all()
    torch.testing.assert_close(top2[0, :2], logits[0, :2].softmax(-1))
    torch.testing.assert_close(probabilities(logits, top_k=10), logits.softmax(-1))  # k ≥ V keeps all


# ---------------------------------------------------------------------------- shapes and streaming

def test_num_samples_returns_that_many_texts(tiny_lstm):
    model, vocab = tiny_lstm
    texts = sample(model, vocab, PRIME, 25, seed=0, num_samples=16)
    assert isinstance(texts, list) and len(texts) == 16
    assert all(t.startswith(PRIME) and len(t) == len(PRIME) + 25 for t in texts)
    assert len(set(texts)) > 1
    assert texts[0] == sample(model, vocab, PRIME, 25, seed=0, num_samples=16)[0]


def test_length_zero_returns_the_prime(tiny_lstm):
    model, vocab = tiny_lstm
    assert sample(model, vocab, PRIME, 0) == PRIME
    assert sample(model, vocab, PRIME, 0, num_samples=3) == [PRIME] * 3


def test_stream_yields_the_same_characters_as_sample(tiny_lstm):
    model, vocab = tiny_lstm
    for knobs in ({"temperature": 1.0}, {"temperature": 0.7, "top_k": 5}, {"temperature": 1.3, "top_p": 0.9}):
        chars = list(stream(model, vocab, PRIME, 60, seed=11, **knobs))
        assert all(len(c) == 1 for c in chars) and len(chars) == 60
        assert "".join(chars) == sample(model, vocab, PRIME, 60, seed=11, **knobs)[len(PRIME):]


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("knobs, message", [
    ({"temperature": -0.5}, "temperature"), ({"temperature": math.nan}, "temperature"),
    ({"temperature": math.inf}, "temperature"), ({"top_k": True}, "top_k"),
    ({"temperature": 1e39}, "from 0 .greedy. to 100"), ({"temperature": True}, "temperature"),
    ({"top_p": True}, "top_p"), ({"length": True}, "length"), ({"num_samples": True}, "num_samples"),
    ({"temperature": "hot"}, "temperature"), ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"),
    ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"length": -1}, "length"),
    ({"num_samples": 0}, "num_samples"),
])
def test_bad_parameters_are_value_errors(tiny_lstm, knobs, message):
    model, vocab = tiny_lstm
    with pytest.raises(ValueError, match=message):
        sample(model, vocab, PRIME, **{"length": 10, **knobs})


def test_numpy_numbers_are_numbers(tiny_lstm):
    """A value from NumPy (a slider's array, ``np.linspace``) works as a plain int or float does."""
    model, vocab = tiny_lstm
    knobs = dict(temperature=np.float32(0.8), top_k=np.int64(5), top_p=np.float64(0.9), seed=np.int64(3))
    assert sample(model, vocab, PRIME, np.int64(30), **knobs) == sample(
        model, vocab, PRIME, 30, temperature=0.8, top_k=5, top_p=0.9, seed=3)


@pytest.mark.parametrize("call", [
    lambda m, v: list(stream(m, v, PRIME, 5, temperature=-1)),
    lambda m, v: next_char_probs(m, v, PRIME, top_p=2.0),
    lambda m, v: sample_refeed(m, v, PRIME, -3),
])
def test_every_sampler_checks_its_parameters(tiny_lstm, call):
    with pytest.raises(ValueError):
        call(*tiny_lstm)


def test_empty_prime_is_an_error(tiny_lstm):
    model, vocab = tiny_lstm
    with pytest.raises(ValueError, match="prime must hold at least one character"):
        sample(model, vocab, "", 10)


def test_prime_with_unknown_characters_is_an_error(tiny_lstm):
    model, vocab = tiny_lstm
    with pytest.raises(TextlabError, match="'Z'"):
        sample(model, vocab, "the Zebra", 10)
    with pytest.raises(TextlabError, match="'Z'"):
        list(stream(model, vocab, "Z", 10))


@pytest.mark.parametrize("seed", [2.5, True, "3"])
def test_a_seed_must_be_an_integer(tiny_lstm, seed):
    model, vocab = tiny_lstm
    with pytest.raises(ValueError, match="seed must be an integer or None"):
        sample(model, vocab, PRIME, 5, seed=seed)
