"""A word-level LSTM, measured in bits per character like every other model of the course.

Older char-rnn projects trained LSTMs on *words* and reported word perplexity (~106 on Harry
Potter). Perplexity per word and bits per character are different units, and a word model has
a blind spot a character model lacks: it can only name the words in its vocabulary. Here the
same ``CharLSTM`` class reads a vocabulary of the most frequent words instead of characters:

* the text is cut into tokens that together spell it exactly: words, runs of white space,
  single punctuation marks (``tokenize``); every other token becomes ``⟨unk⟩``;
* the model pays for each token: ``-log2 p(token | tokens before)``. An unknown word costs the
  ``⟨unk⟩`` token's bits **plus** the bits to spell it with a unigram character model
  (``Speller``), so that every character of the text is paid for and nothing is free;
* bits per character = all those bits / the number of characters scored. That is the
  quantity a character model reports, on the same text.

    run = word_level_lstm(split.train, split.val, TrainConfig(minutes=3))
    run.score.bpc, run.score.word_perplexity, run.score.unknown_share
    sample(run.model, run.vocab, "ROMEO", length=60)      # ⟨unk⟩ where it cannot spell a word
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn as nn

from .config import TextlabError, TrainConfig, default_configs
from .models import CharLSTM
from .training import LN2, TrainResult, nll, train

TOKEN = re.compile(r"\w+|\s+|[^\w\s]")  # a word, a run of white space, or one other character
UNK = "⟨unk⟩"
CODE_POINTS = 0x110000  # every character Unicode can name, U+0000 … U+10FFFF


def tokenize(text: str) -> list[str]:
    """Words, white-space runs and single punctuation marks; joined together they are ``text`` again."""
    return TOKEN.findall(text)


class WordVocab:
    """The ``max_words - 1`` most frequent tokens of a text, plus ``⟨unk⟩`` (id 0) for all others.

    It encodes and decodes like ``CharVocab``, so ``textlab.sample`` writes with it (``length``
    then counts tokens).
    """

    def __init__(self, words: list[str]):
        self.words = [UNK] + [w for w in words if w != UNK]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_text(cls, text: str, max_words: int = 4096) -> "WordVocab":
        if max_words < 2:
            raise ValueError(f"max_words must be ≥ 2 (⟨unk⟩ and one word), not {max_words}")
        return cls([w for w, _ in Counter(tokenize(text)).most_common(max_words - 1)])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index.get(w, 0) for w in tokenize(text)], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.words[int(i)] for i in ids)


class Speller:
    """The cost of spelling a word the model cannot name: a unigram character model with an end mark.

    Its counts come from the out-of-vocabulary tokens of the training text: each character, and
    one end mark per word. Add-one smoothing over the training text's characters plus one shared
    slot for characters never seen in training keeps every spelling possible. The slot is split
    evenly among all the code points training never showed, so an unseen character pays for the
    slot and then ~20.1 bits (log2 of ~1.1 million) to say which character it is: the spellings'
    probabilities add up to 1, as a model's must. Spelling ``w`` costs ``-Σ log2 p(c) - log2 p(end)`` bits.
    """

    def __init__(self, train_text: str, vocab: WordVocab):
        unknown = [w for w in tokenize(train_text) if w not in vocab]
        self.counts = Counter("".join(unknown))
        self.ends = len(unknown)
        self.alphabet = set(train_text)
        self.total = sum(self.counts.values()) + self.ends + len(self.alphabet) + 2  # +1 each: unseen, end

    def bits(self, word: str) -> float:
        unseen = 1 / self.total / (CODE_POINTS - len(self.alphabet))  # the slot, shared by all the others
        spelled = sum(-math.log2((self.counts[c] + 1) / self.total if c in self.alphabet else unseen)
                      for c in word)
        return spelled - math.log2((self.ends + 1) / self.total)


@dataclass
class WordScore:
    """Bits per character of a word model on a text, and where the bits went."""

    bpc: float              # (model bits + spelling bits) / characters
    model_bits: float       # -Σ log2 p(token), ⟨unk⟩ counted as one token
    spelling_bits: float    # what spelling the unknown words cost on top
    chars: int              # characters scored: all but those of the first token (it has no context)
    tokens: int             # tokens scored
    unknown: int            # of which ⟨unk⟩

    @property
    def word_perplexity(self) -> float:
        """2^(model bits per token), the figure word-level papers report (it leaves out spelling)."""
        return 2 ** (self.model_bits / self.tokens)

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.tokens


def word_bpc(model: nn.Module, vocab: WordVocab, speller: Speller, text: str) -> WordScore:
    """Score a word-level model on ``text`` in bits per character (see the module's docstring).

    Tokens are read like a character LSTM reads characters (``textlab.training.nll``: chunks
    of 1024, each after its state warms up on the 256 tokens before). The first token is given
    (nothing predicts it), so its characters are not counted.
    """
    tokens = tokenize(text)
    if len(tokens) < 2:
        raise TextlabError("need a text of at least two tokens to score")
    ids = vocab.encode(text)
    model_bits = nll(model, ids)[0] / LN2  # the course's one scoring path: each token once
    unknown = [w for w in tokens[1:] if w not in vocab]
    spelling_bits = sum(speller.bits(w) for w in unknown)
    chars = len(text) - len(tokens[0])
    return WordScore((model_bits + spelling_bits) / chars, model_bits, spelling_bits, chars,
                     len(tokens) - 1, len(unknown))


@dataclass
class WordRun:
    """What ``word_level_lstm`` made: the model, its vocabulary and speller, training, the score."""

    model: CharLSTM
    vocab: WordVocab
    speller: Speller
    result: TrainResult
    score: WordScore


def word_level_lstm(train_text: str, val_text: str, cfg: TrainConfig | None = None, max_words: int = 4096,
                    embed_dim: int = 128, hidden_size: int = 384, num_layers: int = 1) -> WordRun:
    """Train the course's LSTM on words instead of characters; score it in bits per character on ``val_text``.

    The vocabulary (``max_words`` tokens, ``⟨unk⟩`` included) and the speller are counted on
    ``train_text`` only. ``cfg`` defaults to the character LSTM's training defaults, whose
    ``seq_len`` and ``batch_size`` then count tokens. During training, the progress bar and
    ``result.history`` are in bits per *token* with ``⟨unk⟩`` as one token; ``score`` is the figure
    to compare.
    """
    cfg = cfg or default_configs(kind="lstm")[1]
    vocab = WordVocab.from_text(train_text, max_words)
    model = CharLSTM(len(vocab), embed_dim, hidden_size, num_layers)
    result = train(model, vocab.encode(train_text), vocab.encode(val_text), cfg, unit="bits_per_token")
    speller = Speller(train_text, vocab)
    return WordRun(model, vocab, speller, result, word_bpc(model, vocab, speller, val_text))
