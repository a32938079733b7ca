"""Scores a model must beat, in bits per character, from counting alone.

* ``unigram_bpc``: a model that knows only how often each character occurs.
* ``CharNGram``: a model that looks at the previous ``order - 1`` characters and predicts the
  next one from counts, smoothed with interpolated Kneser–Ney. ``choose_order`` picks the
  order on validation text: how far does counting get you?

Counting is all the "training" an n-gram model gets. Every n-gram of the text becomes one
integer (its characters as digits in base V, the alphabet size), so numpy can sort and count
a million of them in a fraction of a second.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from .config import TextlabError
from .sampling import check_params, probabilities, seeded_generator
from .vocab import show_chars

FALLBACK_DISCOUNT = 0.75  # Kneser–Ney's usual discount, for a level with no n-gram seen exactly once


def unigram_bpc(train: str, val: str | None = None) -> float:
    """Bits per character of a model that knows only how often each character occurs.

    With ``val`` omitted this is the entropy of ``train``'s character distribution. With
    ``val`` it is the cross-entropy on ``val`` of frequencies counted on ``train`` (add-one
    smoothed, so a character unseen in training still gets a small probability).
    """
    if not train:
        raise TextlabError("the training text is empty: give the text whose characters are counted")
    if val == "":
        raise TextlabError("cannot score an empty text")
    counts = Counter(train)
    if val is None:
        n = len(train)
        return -sum(c / n * math.log2(c / n) for c in counts.values())
    alphabet = set(counts) | set(val)
    total = len(train) + len(alphabet)
    return -sum(math.log2((counts[ch] + 1) / total) for ch in val) / len(val)


def count_ngrams(ids: np.ndarray, base: int, max_order: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For k = 1 … max_order: the distinct k-grams of ``ids`` as sorted integer keys, and their counts.

    The key of characters (c1, …, ck) is c1·V^(k-1) + … + ck, so ``key // V`` is the key of its
    context (c1, …, c(k-1)) and ``key % V**(k-1)`` the key of its last k-1 characters.
    """
    keys = np.zeros(len(ids) + 1, dtype=np.int64)
    counted = []
    for k in range(1, max_order + 1):
        keys = keys[:len(ids) - k + 1] * base + ids[k - 1:]  # keys[i] = key of ids[i:i+k]
        counted.append(np.unique(keys, return_counts=True))
    return counted


@dataclass
class _Level:
    """The counts of one n-gram length k, ready for lookups (all arrays sorted by key)."""

    grams: np.ndarray     # (M,) keys of the k-grams
    counts: np.ndarray    # (M,) their counts: raw at the top level, continuation counts below
    contexts: np.ndarray  # (H,) keys of the distinct (k-1)-character contexts
    totals: np.ndarray    # (H,) sum of the counts of the k-grams with that context
    backoff: np.ndarray   # (H,) probability mass the context hands down to the level below
    discount: float

    @classmethod
    def build(cls, grams: np.ndarray, counts: np.ndarray, base: int) -> "_Level":
        n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
        discount = n1 / (n1 + 2 * n2) if n1 else FALLBACK_DISCOUNT  # Ney, Essen & Kneser's estimate
        # The k-grams are sorted, so those sharing a context are neighbours.
        contexts, starts, kinds = np.unique(grams // base, return_index=True, return_counts=True)
        totals = np.add.reduceat(counts, starts)
        return cls(grams, counts, contexts, totals, discount * kinds / totals, discount)


def _lookup(keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each query sits in the sorted ``keys``, and whether it is there at all."""
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return at, keys[at] == queries


class CharNGram:
    """A character n-gram model with interpolated Kneser–Ney smoothing.

    P(c | the previous order-1 characters) mixes, level by level, what followed this context
    in training (each count lowered by a discount D) with the next shorter context's estimate,
    which receives exactly the mass the discounts freed:

        P_k(c | h) = max(count(h c) − D, 0) / count(h ·)  +  D · distinct(h ·) / count(h ·) · P_(k−1)(c | h')

    Below the top level the counts are *continuation* counts: how many different characters
    preceded the n-gram (Kneser and Ney's idea: "Francisco" is frequent, but only after "San",
    so it is a poor guess in a new context). At the bottom is the uniform distribution over
    the alphabet, so every character, even one never seen in training, keeps a probability > 0.

    Build one with ``CharNGram.fit(train, order)``.
    """

    def __init__(self, chars: Iterable[str], counted: list[tuple[np.ndarray, np.ndarray]]):
        """From the alphabet and ``count_ngrams``'s output; the order is ``len(counted)``."""
        self.chars = sorted(set(chars))
        self.order = len(counted)
        base = len(self.chars)
        self.codepoints = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self.levels = [_Level.build(*counted[-1], base)]  # the top level: raw counts
        for k in range(self.order - 1, 0, -1):  # lower levels: continuation counts, from the level above
            suffixes = counted[k][0] % base ** k  # each distinct (k+1)-gram without its first character
            self.levels.insert(0, _Level.build(*np.unique(suffixes, return_counts=True), base))

    @classmethod
    def fit(cls, train: str, order: int = 5, chars: Iterable[str] = "") -> "CharNGram":
        """Count the n-grams of ``train`` up to length ``order``.

        The alphabet is ``train``'s characters plus ``chars``: pass the full vocabulary
        (e.g. ``vocab.chars``) so that validation characters absent from ``train`` can be scored.
        """
        alphabet = sorted(set(train) | set(chars))
        _check_order(order, len(alphabet), len(train))
        return cls(alphabet, count_ngrams(_encode(train, alphabet), len(alphabet), order))

    def __repr__(self) -> str:
        return f"CharNGram(order={self.order}, {len(self.chars)} chars, {self.size():,} n-grams)"

    def size(self) -> int:
        """How many n-grams the model stores: its "parameters"."""
        return sum(len(level.grams) for level in self.levels)

    def encode(self, text: str) -> np.ndarray:
        """Text → ids (int64), with a clear error for characters outside the alphabet."""
        return _encode(text, self.chars, self.codepoints)

    def _probs(self, history: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """P(nxt[m] | history[m]) for M cases at once.

        history: (M, order-1) ids of the preceding characters, -1 where the text had none yet.
        nxt: (M,) ids. Returns (M,) probabilities.
        """
        base = len(self.chars)
        p = np.full(len(nxt), 1.0 / base)       # level 0: uniform over the alphabet
        context = np.zeros(len(nxt), np.int64)  # key of the last k-1 characters of each history
        for k, level in enumerate(self.levels, start=1):
            known = np.ones(len(nxt), bool)
            if k > 1:  # put the character k-1 places back in front of the context
                back = history[:, -(k - 1)]
                known = back >= 0
                context = context + np.where(known, back, 0) * base ** (k - 2)
            h, seen = _lookup(level.contexts, context)
            g, found = _lookup(level.grams, context * base + nxt)
            count = np.where(found, level.counts[g], 0)
            p_k = np.maximum(count - level.discount, 0) / level.totals[h] + level.backoff[h] * p
            p = np.where(known & seen, p_k, p)  # an unseen context leaves it to the shorter one
        return p

    def _history(self, ids: np.ndarray) -> np.ndarray:
        """(N,) ids → (N, order-1): for each position, the ids before it (-1 before the start)."""
        padded = np.concatenate([np.full(self.order - 1, -1, np.int64), ids])
        return np.lib.stride_tricks.sliding_window_view(padded, self.order)[:, :-1]

    def bpc(self, text: str) -> float:
        """Bits per character on ``text``: -mean log2 P(each character | the ones before it)."""
        if not text:
            raise TextlabError("cannot score an empty text")
        ids = self.encode(text)
        return float(-np.log2(self._probs(self._history(ids), ids)).mean())

    def next_char_probs(self, context: str) -> np.ndarray:
        """The distribution (V,) over the character after ``context``, in ``self.chars`` order."""
        base, width = len(self.chars), self.order - 1
        ids = self.encode(context[max(0, len(context) - width):])  # at most the last order-1 characters
        history = np.full((base, width), -1, np.int64)              # the same history for every candidate
        history[:, width - len(ids):] = ids
        return self._probs(history, np.arange(base))

    def sample(self, prime: str = "\n", length: int = 300, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> str:
        """The prime followed by ``length`` generated characters (same knobs as ``textlab.sample``)."""
        check_params(temperature, top_k, top_p, length)
        self.encode(prime)  # every character of the prime must be known, not only the last order-1
        generator = seeded_generator(seed)
        text = prime
        for _ in range(length):
            logits = torch.from_numpy(np.log(self.next_char_probs(text)))
            text += self.chars[int(torch.multinomial(probabilities(logits, temperature, top_k, top_p), 1,
                                                     generator=generator))]
        return text


def choose_order(fit: str, dev: str, orders: Iterable[int] = range(1, 9),
                 chars: Iterable[str] = "") -> tuple[int, list[dict]]:
    """The n-gram order with the lowest bits per character on ``dev``, and the table of all tried.

    Counted on ``fit``, chosen on ``dev`` (``corpora.hold_out`` cuts both from the training text),
    so the validation text stays unseen. Each row: ``order``, ``dev_bpc``, ``fit_bpc`` (on the
    first ``len(dev)`` characters of ``fit``: low values there and high ones on dev mean
    memorising), ``ngrams`` (the model's size) and ``seconds``. The n-grams are counted once,
    for the highest order.
    """
    orders = sorted(set(orders))
    if not orders or orders[0] < 1:
        raise ValueError(f"orders must be integers ≥ 1, got {orders}")
    alphabet = sorted(set(fit) | set(dev) | set(chars))
    _check_order(orders[-1], len(alphabet), len(fit))
    counted = count_ngrams(_encode(fit, alphabet), len(alphabet), orders[-1])
    fit_slice = fit[:len(dev)]
    table = []
    for order in orders:
        start = time.perf_counter()
        model = CharNGram(alphabet, counted[:order])
        table.append({"order": order, "dev_bpc": model.bpc(dev), "fit_bpc": model.bpc(fit_slice),
                      "ngrams": model.size(), "seconds": round(time.perf_counter() - start, 2)})
    best = min(table, key=lambda row: row["dev_bpc"])
    return best["order"], table


def _check_order(order: int, alphabet_size: int, text_length: int) -> None:
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"order must be an integer ≥ 1, not {order!r}")
    if text_length < order:
        raise TextlabError(f"the training text has {text_length} characters, fewer than order={order}")
    if alphabet_size ** order >= 2 ** 63:  # the n-gram keys are int64
        raise ValueError(f"order={order} is too high for {alphabet_size} characters (keys overflow "
                         f"64 bits); use order ≤ {int(63 * math.log(2) / math.log(alphabet_size))}")


def _encode(text: str, alphabet: list[str], codepoints: np.ndarray | None = None) -> np.ndarray:
    """Text → int64 ids in the sorted ``alphabet`` (vectorised: a million characters in milliseconds)."""
    if codepoints is None:
        codepoints = np.array([ord(c) for c in alphabet], dtype=np.uint32)
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ids = np.minimum(np.searchsorted(codepoints, points), len(codepoints) - 1)
    missing = codepoints[ids] != points
    if missing.any():
        unknown = sorted({chr(p) for p in points[missing]})
        raise TextlabError(f"{len(unknown)} character(s) outside the model's alphabet: {show_chars(unknown)}; fit it "
                           "with chars=vocab.chars so it knows every character")
    return ids.astype(np.int64)
