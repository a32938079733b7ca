"""The word-level LSTM: tokens that spell the text, the unknown-word charge, bits per character by hand."""

from __future__ import annotations

import math
import re

import pytest
import torch

from textlab import TrainConfig, sample
from textlab.words import CODE_POINTS, UNK, Speller, WordVocab, tokenize, word_bpc, word_level_lstm


def uniform_lstm(vocab_size: int):
    """The course's LSTM with a zero read-out: every token gets probability 1 / vocab_size."""
    from textlab import CharLSTM

    model = CharLSTM(vocab_size, embed_dim=4, hidden_size=8)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    return model


def test_tokens_spell_the_text_exactly():
    text = "Mr. Darcy's  hand,\nwet — «ещё» 42!"
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:6] == ["Mr", ".", " ", "Darcy", "'", "s"] and "ещё" in tokens and "  " in tokens


def test_vocab_keeps_the_most_frequent_and_unknowns_become_unk():
    vocab = WordVocab.from_text("the cat the dog the cat", max_words=4)  # ⟨unk⟩ + 3 most frequent
    assert vocab.words == [UNK, " ", "the", "cat"]  # the space is the commonest token
    assert vocab.decode(vocab.encode("the dog")) == f"the {UNK}"


def test_bits_per_character_by_hand():
    train = "the cat the cat the"
    vocab = WordVocab(["the", " ", "cat"])        # 4 tokens with ⟨unk⟩
    speller = Speller(train, vocab)
    assert speller.ends == 0 and not speller.counts  # no unknown word in training: spelling is add-one only
    # alphabet {t, h, e, ␣, c, a}: 6 characters + unseen slot + end mark = 8 equally likely symbols
    assert speller.total == 8
    assert speller.bits("cat") == pytest.approx(4 * 3)        # c, a, t, end: 3 bits each
    # d, o, g unseen in training: each the shared slot (3 bits), then one of the other code points
    which = math.log2(CODE_POINTS - 6)                         # ≈ 20.1 bits
    assert speller.bits("dog") == pytest.approx(4 * 3 + 3 * which)
    text = "the cat dog"                                       # tokens: the ␣ cat ␣ dog
    score = word_bpc(uniform_lstm(len(vocab)), vocab, speller, text)
    # 4 scored tokens × log2(4) = 8 bits, + 12 + 3 × 20.1 bits to spell "dog"; 8 characters after "the"
    assert (score.model_bits, score.spelling_bits, score.chars, score.tokens, score.unknown) == \
           pytest.approx((8.0, 12.0 + 3 * which, 8, 4, 1))
    assert score.bpc == pytest.approx((20 + 3 * which) / 8)
    assert score.word_perplexity == pytest.approx(4.0) and score.unknown_share == 0.25


def test_the_speller_is_a_distribution_over_characters():
    speller = Speller("the cat sat, the zebra ran", WordVocab(["the", " ", "cat", "sat"]))
    end = 2 ** -speller.bits("")              # the word of no characters: only the end mark

    def p(c: str) -> float:  # the probability of the character c, from the one-character word's bits
        return 2 ** -speller.bits(c) / end

    seen = sum(p(c) for c in speller.alphabet)
    unseen = (CODE_POINTS - len(speller.alphabet)) * p("Ж")  # every unseen character alike
    assert seen + unseen + end == pytest.approx(1.0)
    assert p("Ж") == p("Q") < p("z")


def test_a_trained_word_model_beats_uniform_and_cannot_spell_new_words(repetitive_text):
    cut = len(repetitive_text) * 9 // 10
    train, val = repetitive_text[:cut], repetitive_text[cut:] + "the zebra sat."
    cfg = TrainConfig(batch_size=8, seq_len=32, lr=1e-2, warmup=0.1, steps=60, minutes=None, eval_every=60,
                      progress=False, device="cpu")
    torch.manual_seed(0)
    run = word_level_lstm(train, val, cfg, max_words=50, embed_dim=16, hidden_size=32)
    assert len(run.vocab) == 10  # the, cat, sat, on, mat, dog, log, ␣, ., ⟨unk⟩... all it ever saw
    assert run.score.unknown == 1 and run.score.spelling_bits > 5  # "zebra" had to be spelled
    assert run.score.bpc < 0.5 * math.log2(len(run.vocab)) * run.score.tokens / run.score.chars
    written = sample(run.model, run.vocab, "the", length=30, seed=0)
    assert set(re.findall(r"\w+", written)) <= set(run.vocab.words)  # it can only write words it knows


def test_the_progress_bar_names_bits_per_token_not_per_character(repetitive_text, capsys):
    """The word model's training scores are bits per *token*: its bar must not call them bpc."""
    cfg = TrainConfig(batch_size=8, seq_len=32, steps=4, minutes=None, eval_every=2, progress=True, device="cpu")
    word_level_lstm(repetitive_text[:2000], repetitive_text[2000:3000], cfg, max_words=50, embed_dim=8, hidden_size=8)
    bar = capsys.readouterr().err
    assert "val_bits_per_token=" in bar and "bpc" not in bar, bar
