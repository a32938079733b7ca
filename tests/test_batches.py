"""Batches: targets are inputs shifted by one; streams continue row by row; random windows."""

from __future__ import annotations

import itertools

import pytest
import torch

from textlab import TextlabError, random_batches, stream_batches
from textlab.batches import make_batches

B, T = 4, 8


def positions(n: int) -> torch.Tensor:
    """Ids equal to their own positions: a batch then shows exactly where it was cut from."""
    return torch.arange(n)


def test_stream_targets_are_inputs_shifted_by_one_in_the_raw_ids():
    ids = torch.randint(0, 50, (1000,), generator=torch.Generator().manual_seed(1))
    gen_pos, gen_ids = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    pairs = zip(stream_batches(positions(len(ids)), B, T, gen_pos), stream_batches(ids, B, T, gen_ids))
    for where, batch in itertools.islice(pairs, 100):
        assert batch.x.shape == batch.y.shape == (B, T)
        assert torch.equal(batch.x, ids[where.x])       # the batch is cut from the raw ids ...
        assert torch.equal(batch.y, ids[where.x + 1])   # ... and each target is the next id


def test_stream_rows_continue_exactly_and_reset_at_each_epoch():
    n = 3 * B * T + 11
    batches = list(itertools.islice(stream_batches(positions(n), B, T, torch.Generator().manual_seed(0)), 40))
    assert batches[0].reset
    epoch_starts = [k for k, b in enumerate(batches) if b.reset]
    assert len(epoch_starts) >= 5  # several passes over the text were seen
    for k, batch in enumerate(batches):
        x = batch.x
        assert torch.equal(x[:, 1:], x[:, :-1] + 1) and torch.equal(batch.y, x + 1)
        if batch.reset:
            offset = int(x[0, 0])
            assert 0 <= offset < T  # each pass starts at a random offset below seq_len
            row_len = int(x[1, 0] - x[0, 0])
            assert torch.equal(x[:, 0], offset + row_len * torch.arange(B))  # rows: equal, disjoint slices
        else:
            assert torch.equal(x[:, 0], batches[k - 1].x[:, -1] + 1)  # row r continues row r exactly


def test_stream_epoch_covers_each_character_once():
    n = 5 * B * T + 3
    batches = stream_batches(positions(n), B, T, torch.Generator().manual_seed(3))
    first = next(batches)
    epoch = [first.x] + [b.x for b in itertools.takewhile(lambda b: not b.reset, batches)]
    seen = torch.cat([x.flatten() for x in epoch]).sort().values
    offset = int(first.x[0, 0])
    assert torch.equal(seen, torch.arange(offset, offset + len(seen)))


def test_stream_without_generator_starts_at_zero():
    batches = list(itertools.islice(stream_batches(positions(2 * B * T + 1), B, T), 4))
    assert [b.reset for b in batches] == [True, False, True, False]
    assert int(batches[0].x[0, 0]) == 0 and int(batches[2].x[0, 0]) == 0


def test_random_windows_shape_and_shift():
    ids = torch.randint(0, 30, (500,), generator=torch.Generator().manual_seed(2))
    gen_pos, gen_ids = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    pairs = zip(random_batches(positions(len(ids)), B, T, gen_pos), random_batches(ids, B, T, gen_ids))
    starts = set()
    for where, batch in itertools.islice(pairs, 50):
        assert batch.x.shape == batch.y.shape == (B, T) and batch.reset
        assert torch.equal(where.x[:, 1:], where.x[:, :-1] + 1)  # each row is one contiguous window
        assert torch.equal(batch.x, ids[where.x]) and torch.equal(batch.y, ids[where.x + 1])
        assert int(where.y.max()) < len(ids)
        starts.update(where.x[:, 0].tolist())
    assert len(starts) > 50  # windows really start at many places


def test_random_windows_are_seeded():
    a = next(random_batches(positions(300), B, T, torch.Generator().manual_seed(9)))
    b = next(random_batches(positions(300), B, T, torch.Generator().manual_seed(9)))
    assert torch.equal(a.x, b.x)


@pytest.mark.parametrize("kind, n, smaller", [("streams", B * T, "batch_size or seq_len"),
                                              ("random", T, "seq_len")])
def test_too_short_text_is_a_clear_error(kind, n, smaller):
    """Random windows need only one window's worth, so only a shorter seq_len helps them."""
    with pytest.raises(TextlabError, match=f"has {n} characters.*hold-outs.*a smaller {smaller}$"):
        next(make_batches(kind, positions(n), B, T))


def test_just_long_enough_text_works():
    assert next(make_batches("streams", positions(B * T + 1), B, T)).x.shape == (B, T)
    assert next(make_batches("random", positions(T + 1), B, T)).x.shape == (B, T)


def test_unknown_batching_kind():
    with pytest.raises(ValueError, match="batching must be one of"):
        make_batches("shuffled", positions(100), B, T)
