"""Batches for training: (inputs, targets) pairs where targets are inputs shifted by one.

Two ways to cut a long text into batches:

* ``stream_batches`` (the default): the text is cut into ``batch_size`` long streams, read
  side by side, ``seq_len`` characters at a time. Window k+1 of a row continues exactly where
  window k ended, so the LSTM's state can be carried over and every character is predicted
  with all the context before it.
* ``random_batches``: windows at random places. Simple, but each window starts with an empty
  memory, so its first characters are predicted with almost no context.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch

from .config import TextlabError


class Batch(NamedTuple):
    x: torch.Tensor  # (batch_size, seq_len) input ids
    y: torch.Tensor  # (batch_size, seq_len) target ids: x shifted left by one
    reset: bool  # True when the rows do not continue the previous batch: start from a fresh state


def _check_length(n: int, needed: int, what: str, smaller: str) -> None:
    """Raise unless ``n`` ids are enough; ``train`` batches only the part left after the hold-outs."""
    if n < needed:
        raise TextlabError(f"the text to batch has {n:,} characters (in train(): what is left after the "
                           f"validation and dev hold-outs) but {what} needs at least {needed:,}; use a "
                           f"longer text or a smaller {smaller}")


def stream_batches(ids: torch.Tensor, batch_size: int, seq_len: int,
                   generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Endless contiguous batches for truncated backpropagation through time (TBPTT).

    Row r of every batch reads the r-th of ``batch_size`` equal slices of the text. The
    trainer carries the LSTM state from one batch to the next but *detaches* it: gradients
    flow back only ``seq_len`` steps (the truncation), while the state still remembers
    everything before. Without the detach, backward would have to run through the whole
    text read so far, slower every step, until memory ran out.

    Each pass over the text starts at a random offset below ``seq_len`` (``reset=True``),
    so the window edges fall in new places every epoch.
    """
    _check_length(len(ids), batch_size * seq_len + 1, f"batch_size={batch_size} × seq_len={seq_len}",
                  "batch_size or seq_len")
    return _streams(ids, batch_size, seq_len, generator)


def _streams(ids: torch.Tensor, batch_size: int, seq_len: int,
             generator: torch.Generator | None) -> Iterator[Batch]:
    while True:
        offset = int(torch.randint(seq_len, (1,), generator=generator)) if generator is not None else 0
        usable = len(ids) - offset - 1
        if usable < batch_size * seq_len:
            offset, usable = 0, len(ids) - 1
        row_len = usable // batch_size // seq_len * seq_len
        data = ids[offset:offset + batch_size * row_len + 1]
        x = data[:-1].view(batch_size, row_len)
        y = data[1:].view(batch_size, row_len)
        for i, start in enumerate(range(0, row_len, seq_len)):
            yield Batch(x[:, start:start + seq_len], y[:, start:start + seq_len], reset=i == 0)


def random_batches(ids: torch.Tensor, batch_size: int, seq_len: int,
                   generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Endless batches of windows starting at random places (every batch starts fresh)."""
    _check_length(len(ids), seq_len + 1, f"seq_len={seq_len}", "seq_len")
    return _random_windows(ids, batch_size, seq_len, generator)


def _random_windows(ids: torch.Tensor, batch_size: int, seq_len: int,
                    generator: torch.Generator | None) -> Iterator[Batch]:
    offsets = torch.arange(seq_len + 1)
    while True:
        starts = torch.randint(len(ids) - seq_len, (batch_size, 1), generator=generator)
        window = ids[starts + offsets]  # (batch_size, seq_len + 1)
        yield Batch(window[:, :-1], window[:, 1:], reset=True)


def make_batches(kind: str, ids: torch.Tensor, batch_size: int, seq_len: int,
                 generator: torch.Generator | None = None) -> Iterator[Batch]:
    """``kind`` is "streams" or "random" (``TrainConfig.batching``)."""
    makers = {"streams": stream_batches, "random": random_batches}
    if kind not in makers:
        raise ValueError(f"batching must be one of {list(makers)}, not {kind!r}")
    return makers[kind](ids, batch_size, seq_len, generator)


def score_windows(n: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """How to score ``n`` ids exactly once each: windows ``(start, end, first_scored)``, by position.

    Window k reads ids ``[k·stride, k·stride + context + stride)`` and scores the targets from
    ``first_scored`` on: its last ``stride`` of them (window 0 scores all of its own). So every
    target after the very first ones is predicted with at least ``context`` ids before it, and the
    windows depend only on the positions, never on how many are run at once.

        score_windows(10, 2, 4)  →  [(0, 6, 0), (4, 10, 6)]
    """
    if context < 0 or stride < 1:
        raise ValueError(f"need context ≥ 0 and stride ≥ 1, not context={context}, stride={stride}")
    out = [(0, min(context + stride, n), 0)]
    while out[-1][1] < n:
        start = out[-1][1] - context
        out.append((start, min(start + context + stride, n), out[-1][1]))
    return out
