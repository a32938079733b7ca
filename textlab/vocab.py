"""A character vocabulary: every distinct character gets an integer id."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable

import torch

from .config import TextlabError


def show_chars(chars: list[str], limit: int = 10) -> str:
    """``['Ж', 'и']`` → ``"'Ж', 'и'"``: characters for an error message, at most ``limit`` of them."""
    return ", ".join(repr(c) for c in chars[:limit]) + (" …" if len(chars) > limit else "")


class CharVocab:
    """Maps characters to ids and back. Ids follow sorted character order, so the same text
    always gives the same vocabulary (on any machine, in any run)."""

    def __init__(self, chars: Iterable[str]):
        self.chars: list[str] = sorted(set(chars))
        if not self.chars:
            raise TextlabError("cannot build a vocabulary from empty text")
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("a vocabulary holds single characters")
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        return cls(text)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and other.chars == self.chars

    def __repr__(self) -> str:
        preview = "".join(self.chars[:40]).replace("\n", "⏎")
        return f"CharVocab({len(self)} chars: {preview!r}{'…' if len(self) > 40 else ''})"

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` this vocabulary lacks, most frequent first."""
        return [c for c, _ in Counter(c for c in text if c not in self.index).most_common()]

    def encode(self, text: str, unknown: str | None = None) -> torch.Tensor:
        """Text → a 1-D LongTensor of ids.

        A character the vocabulary lacks is an error naming it, unless ``unknown`` names a
        character of the vocabulary to use in its place (e.g. ``unknown=" "``).
        """
        missing = self.unknown(text)
        if missing:
            if unknown is None:
                raise TextlabError(f"{len(missing)} character(s) not in the vocabulary: {show_chars(missing)}. "
                                   "Remove them, or pass unknown=' ' to replace them")
            if unknown not in self.index:
                raise TextlabError(f"unknown={unknown!r} is itself not in the vocabulary")
        fallback = self.index.get(unknown) if unknown is not None else None
        return torch.tensor([self.index.get(c, fallback) for c in text], dtype=torch.long)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Ids → text. An id outside 0 … len(vocab) - 1 is an error (Python would read -1 as the last)."""
        ids = ids.reshape(-1).tolist() if isinstance(ids, torch.Tensor) else list(ids)  # a 0-d tensor too
        if ids and (min(ids) < 0 or max(ids) >= len(self)):
            bad = min(ids) if min(ids) < 0 else max(ids)
            raise TextlabError(f"id {bad} is not in this vocabulary of {len(self)} characters "
                               f"(ids 0 to {len(self) - 1}): was it made with another vocabulary?")
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps({"format": "textlab-vocab", "version": 1, "chars": self.chars},
                                         ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharVocab":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != "textlab-vocab":
            raise TextlabError(f"{path} is not a textlab vocabulary file")
        return cls(data["chars"])
