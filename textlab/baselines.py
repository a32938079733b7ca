"""Scores a model must beat, in bits per character, from counting alone."""

from __future__ import annotations

import math
from collections import Counter


def unigram_bpc(train: str, val: str | None = None) -> float:
    """Bits per character of a model that knows only how often each character occurs.

    With ``val`` omitted this is the entropy of ``train``'s character distribution. With
    ``val`` it is the cross-entropy on ``val`` of frequencies counted on ``train`` (add-one
    smoothed, so a character unseen in training still gets a small probability).
    """
    counts = Counter(train)
    if val is None:
        n = len(train)
        return -sum(c / n * math.log2(c / n) for c in counts.values())
    alphabet = set(counts) | set(val)
    total = len(train) + len(alphabet)
    return -sum(math.log2((counts[ch] + 1) / total) for ch in val) / len(val)
