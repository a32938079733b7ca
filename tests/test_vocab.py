"""CharVocab: round trips (property-based), stable order, saving, unknown characters."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from textlab import CharVocab, TextlabError

# Any single character but lone surrogates (which cannot be encoded to a file), plus a fixed mix
# of Latin, Cyrillic, emoji, combining marks and control characters so each run includes them.
ANY_CHAR = st.characters(exclude_categories=["Cs"])
MIXED = "aZ \n\t.,!Ёёжщ🙂🐍é\u0301\x00\u200b"


@given(alphabet=st.text(ANY_CHAR, min_size=1) | st.just(MIXED), data=st.data())
def test_encode_decode_round_trip(alphabet, data):
    vocab = CharVocab.from_text(alphabet)
    text = data.draw(st.text(st.sampled_from(vocab.chars)), label="text")
    ids = vocab.encode(text)
    assert ids.dtype == torch.long and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.tolist()) == text
    if len(text):
        assert vocab.decode(ids[0]) == text[0]  # one id, e.g. logits.argmax(): a 0-d tensor
    assert all(0 <= i < len(vocab) for i in ids.tolist())


@given(st.text(ANY_CHAR, min_size=1))
def test_ids_follow_sorted_order_and_ignore_text_order(text):
    vocab = CharVocab.from_text(text)
    assert vocab.chars == sorted(set(text))
    assert len(vocab) == len(set(text))
    assert CharVocab.from_text(text[::-1]) == vocab
    assert [vocab.index[c] for c in vocab.chars] == list(range(len(vocab)))


def test_cyrillic_and_emoji_example():
    vocab = CharVocab.from_text("мир 🙂 peace")
    assert vocab.chars[0] == " " and vocab.chars[-1] == "🙂"
    assert vocab.decode(vocab.encode("🙂 мир")) == "🙂 мир"


@given(st.text(ANY_CHAR, min_size=1))
def test_save_load_round_trip(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("vocab") / "vocab.json"
    vocab = CharVocab.from_text(text)
    vocab.save(path)
    loaded = CharVocab.load(path)
    assert loaded == vocab and loaded.chars == vocab.chars


def test_saved_file_is_readable_json(tmp_path):
    CharVocab.from_text("ба").save(tmp_path / "v.json")
    data = json.loads((tmp_path / "v.json").read_text(encoding="utf-8"))
    assert data["format"] == "textlab-vocab" and data["chars"] == ["а", "б"]


def test_unknown_characters_are_named():
    vocab = CharVocab.from_text("abc ")
    with pytest.raises(TextlabError, match=r"2 character\(s\) not in the vocabulary: 'z', 'é'.*unknown=' '"):
        vocab.encode("a zzz é")
    assert vocab.unknown("a zzz é b") == ["z", "é"]  # most frequent first


def test_unknown_characters_can_be_mapped():
    vocab = CharVocab.from_text("abc ")
    assert vocab.decode(vocab.encode("a?b!", unknown=" ")) == "a b "
    # A replacement that is not id 0: the unknown characters get the replacement's own id.
    assert vocab.index["c"] != 0
    assert vocab.encode("a?b!", unknown="c").tolist() == [vocab.index[ch] for ch in "acbc"]
    with pytest.raises(TextlabError, match="itself not in the vocabulary"):
        vocab.encode("a?", unknown="#")


def test_empty_text_is_an_error():
    with pytest.raises(TextlabError, match="empty"):
        CharVocab.from_text("")


def test_encoding_empty_text_gives_no_ids():
    assert CharVocab.from_text("ab").encode("").shape == (0,)


@pytest.mark.parametrize("content", ['{"chars": ["a"]}', '["a", "b"]', '{"format": "textlab-checkpoint"}'])
def test_loading_a_non_vocab_json_is_an_error(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TextlabError, match="not a textlab vocabulary"):
        CharVocab.load(path)


@pytest.mark.parametrize("bad", [-1, 4])
def test_decoding_an_id_outside_the_vocabulary_is_an_error(bad):
    """-1 would otherwise index from the end and quietly give the last character."""
    vocab = CharVocab.from_text("abcd")
    with pytest.raises(TextlabError, match=rf"id {bad} is not in this vocabulary of 4 characters \(ids 0 to 3\)"):
        vocab.decode([0, bad])
    with pytest.raises(TextlabError, match=f"id {bad}"):
        vocab.decode(torch.tensor([bad]))
