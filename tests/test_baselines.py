"""Counting baselines: the unigram entropy and the Kneser–Ney character n-gram model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textlab import TextlabError, unigram_bpc
from textlab.baselines import CharNGram, choose_order
from textlab.corpora import hold_out


@pytest.fixture(scope="module")
def shakespeare_split(shakespeare) -> tuple[str, str]:
    return shakespeare[:300_000], shakespeare[300_000:330_000]


def test_kneser_ney_by_hand():
    # Bigrams of "abababacac": ab×3, ba×3, ac×2, ca×1 → discount 1/3 (one seen once, one twice).
    # Continuation counts (distinct left neighbours): a 2, b 1, c 1 → discount 2/(2 + 2·1) = 1/2.
    model = CharNGram.fit("abababacac", order=2, chars="d")
    assert model.chars == ["a", "b", "c", "d"]
    unigram = [(2 - .5) / 4 + 3 / 8 / 4, (1 - .5) / 4 + 3 / 8 / 4, (1 - .5) / 4 + 3 / 8 / 4, 3 / 8 / 4]
    np.testing.assert_allclose(model.next_char_probs(""), unigram)
    np.testing.assert_allclose(model.next_char_probs("d"), unigram)  # a context never seen: back off
    after_a = [2 / 15 * unigram[0], (3 - 1 / 3) / 5 + 2 / 15 * unigram[1],
               (2 - 1 / 3) / 5 + 2 / 15 * unigram[2], 2 / 15 * unigram[3]]
    np.testing.assert_allclose(model.next_char_probs("ca"), after_a)


@pytest.mark.parametrize("order", [1, 3, 6])
def test_probabilities_are_positive_and_sum_to_one(order):
    model = CharNGram.fit("the cat sat on the mat. the dog sat on the log. " * 20, order, chars="xyzQ!")
    for context in ["", "t", "the c", "the cat sat on the m", "zzzz", "Q!x", "xthe"]:
        p = model.next_char_probs(context)
        assert p.shape == (len(model.chars),)
        assert p.min() > 0, f"a zero probability after {context!r}"
        assert math.isclose(p.sum(), 1.0, abs_tol=1e-9), f"{p.sum()} after {context!r}"


def test_bpc_scores_each_character_given_the_ones_before_it():
    model = CharNGram.fit("abracadabra, abracadabra! cadabra abra", order=3, chars="z")
    text = "zabracadabraz"
    by_hand = -np.mean([math.log2(model.next_char_probs(text[:i])[model.chars.index(c)])
                        for i, c in enumerate(text)])
    assert model.bpc(text) == pytest.approx(by_hand, abs=1e-12)


def test_order_one_is_the_unigram_model(shakespeare_split):
    train, val = shakespeare_split
    assert CharNGram.fit(train, 1, chars=val).bpc(val) == pytest.approx(unigram_bpc(train, val), abs=0.01)


def test_longer_contexts_beat_counting_characters(shakespeare_split):
    train, val = shakespeare_split
    fit, dev = hold_out(train, 0.03)
    best, table = choose_order(fit, dev, orders=range(1, 7))
    assert [row["order"] for row in table] == [1, 2, 3, 4, 5, 6]
    scores = {row["order"]: row["dev_bpc"] for row in table}
    assert best >= 4 and scores[best] == min(scores.values())
    assert scores[best] < unigram_bpc(train, val) - 2.0  # ≈ 4.8 → ≈ 2.4 bpc on Shakespeare
    assert all(scores[n + 1] < scores[n] for n in range(1, 4))
    assert table[-1]["fit_bpc"] < table[-1]["dev_bpc"]  # the counts remember their own text
    assert table[-1]["ngrams"] > table[0]["ngrams"] == len(set(fit))


def test_an_8_gram_counts_a_million_characters(shakespeare):
    """A long order fits the whole book; on text it has read, it is nearly sure of each character."""
    model = CharNGram.fit(shakespeare, order=8)
    assert 0 < model.bpc(shakespeare[:110_000]) < 2.0


def test_unknown_characters_and_bad_orders_are_clear_errors():
    model = CharNGram.fit("hello world", order=2)
    with pytest.raises(TextlabError, match="chars=vocab.chars"):
        model.bpc("hello, world")
    assert math.isfinite(CharNGram.fit("hello world", 2, chars=",").bpc("hello, world"))
    with pytest.raises(ValueError, match="order"):
        CharNGram.fit("hello", order=0)
    with pytest.raises(TextlabError, match="fewer than order"):
        CharNGram.fit("hi", order=3)


def test_sample_is_reproducible_and_greedy_follows_the_counts():
    model = CharNGram.fit("the cat sat on the mat. " * 10, order=6)
    a, b = model.sample("the", 40, seed=1), model.sample("the", 40, seed=1)
    assert a == b and a.startswith("the") and len(a) == 43
    assert model.sample("the c", 10, temperature=0) == "the cat sat on "


def test_a_prime_with_unknown_characters_is_refused_whole():
    model = CharNGram.fit("abcabcabd", order=3)
    with pytest.raises(TextlabError, match="3 character.*'x', 'y', 'z'"):  # not only the last order-1
        model.sample("xyz", 5)


def test_unigram_bpc_is_in_bits():
    assert unigram_bpc("abcd") == pytest.approx(2.0)  # four equally likely characters: two bits each
    assert unigram_bpc("aaaa") == 0.0
    # Cross-entropy with add-one smoothing: counts a=2, b=1 plus one each over the alphabet {a, b, c}.
    assert unigram_bpc("aab", "ac") == pytest.approx(-(math.log2(3 / 6) + math.log2(1 / 6)) / 2)
    with pytest.raises(TextlabError, match="empty text"):
        unigram_bpc("aab", "")
    with pytest.raises(TextlabError, match="training text is empty"):
        unigram_bpc("")
