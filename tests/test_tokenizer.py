"""GPT-2's real tokenizer, offline: the ranks file fetched like a corpus, rebuilt with transformers and tiktoken."""

from __future__ import annotations

import math
import sys

import pytest

from textlab import gpt2
from textlab.corpora import CorpusError

ENGLISH = "Hello world! The quick brown fox's 1,234 jumps — don't they?\n\n  Indented   spaces\tand tabs.  "
RUSSIAN = "Мой дядя самых честных правил,\nКогда не в шутку занемог,\nОн уважать себя заставил."


@pytest.fixture(scope="module")
def ranks(shared_data, tmp_path_factory):
    """GPT-2's ranks, fetched through the course's mirror into a fresh cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTLAB_MIRROR", str(shared_data))
        mp.setenv("TEXTLAB_CACHE", str(tmp_path_factory.mktemp("tokenizer-cache")))
        return gpt2.bpe_ranks()


@pytest.fixture(scope="module")
def tokenizer(ranks):
    pytest.importorskip("transformers")
    return gpt2.tokenizer_from_ranks(ranks)


def test_the_ranks_come_from_the_mirror_sha256_checked(mirror_env, shared_data, tmp_path):
    ranks = gpt2.bpe_ranks()
    assert len(ranks) == 50256 and ranks[b"!"] == 0 and ranks[b" the"] == 262
    assert (mirror_env / "gpt2.tiktoken").is_file()  # cached for the next time

    tampered = tmp_path / "mirror"
    tampered.mkdir()
    raw = (shared_data / "gpt2.tiktoken").read_bytes()
    (tampered / "gpt2.tiktoken").write_bytes(raw.replace(b"IQ== 0", b"Ig== 0", 1))  # one rank changed
    (mirror_env / "gpt2.tiktoken").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTLAB_MIRROR", str(tampered))
        with pytest.raises(CorpusError, match="sha256"):
            gpt2.bpe_ranks()
    assert not (mirror_env / "gpt2.tiktoken").exists()  # nothing wrong was cached


def test_known_ids_for_known_strings(tokenizer):
    assert gpt2.encode(tokenizer, "Hello world") == [15496, 995]
    assert gpt2.encode(tokenizer, " the\n") == [262, 198]
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == 50256 and len(tokenizer) == 50257


def test_transformers_and_tiktoken_give_the_same_ids(ranks, tokenizer):
    pytest.importorskip("tiktoken")
    encoding = gpt2.tokenizer_from_ranks(ranks, backend="tiktoken")
    for text in (ENGLISH, RUSSIAN, ENGLISH + RUSSIAN, "   ", "a\n\n\nb  \n"):
        ids = gpt2.encode(tokenizer, text)
        assert gpt2.encode(encoding, text) == ids, text
        assert gpt2.decode(tokenizer, ids) == gpt2.decode(encoding, ids) == text
    assert gpt2.token_pieces(encoding, RUSSIAN) == gpt2.token_pieces(tokenizer, RUSSIAN)


def test_the_text_end_of_text_is_thirteen_characters_in_both_backends(ranks, tokenizer):
    pytest.importorskip("tiktoken")
    encoding = gpt2.tokenizer_from_ranks(ranks, backend="tiktoken")
    ids = [64, 27, 91, 437, 1659, 5239, 91, 29, 65]  # a < | end of text | > b: no id 50256
    assert gpt2.encode(tokenizer, "a<|endoftext|>b") == gpt2.encode(encoding, "a<|endoftext|>b") == ids


def test_russian_is_cut_into_pieces_of_letters(tokenizer):
    pieces = gpt2.token_pieces(tokenizer, "Hello world, my friend")
    assert pieces == ["Hello", " world", ",", " my", " friend"]
    assert "\N{REPLACEMENT CHARACTER}" in "".join(gpt2.token_pieces(tokenizer, RUSSIAN))
    english = gpt2.chars_per_token(tokenizer, "It is a truth universally acknowledged, that a single man in "
                                              "possession of a good fortune, must be in want of a wife.")
    russian = gpt2.chars_per_token(tokenizer, RUSSIAN)
    assert english > 4 and russian < 1.2


def test_chars_per_token_table_over_the_course_corpora(mirror_env, tokenizer):
    rows = gpt2.chars_per_token_table(tokenizer, ["frankenstein", "onegin_ru"])
    en, ru = rows["frankenstein"], rows["onegin_ru"]
    assert en["language"] == "en" and ru["language"] == "ru"
    assert en["chars/token"] == pytest.approx(en["characters"] / en["GPT-2 tokens"])
    assert en["chars/token"] > 3.5 and ru["chars/token"] < 1.0  # English is ~4× shorter, Russian longer
    assert 60 < en["distinct chars"] < 120


def test_offline_the_tokenizer_is_rebuilt_from_the_file(mirror_env, monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = gpt2.load_tokenizer("gpt2", cache_dir=tmp_path)  # an empty hub cache
    assert gpt2.encode(tokenizer, "Hello world") == [15496, 995]
    with pytest.raises(gpt2.PretrainedUnavailable, match="offline only GPT-2"):
        gpt2.load_tokenizer("some/other-model", cache_dir=tmp_path)


def test_without_transformers_tiktoken_reads_the_file(mirror_env, monkeypatch):
    pytest.importorskip("tiktoken")
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes ``import transformers`` fail
    encoding = gpt2.load_tokenizer()
    assert type(encoding).__name__ == "Encoding"
    assert gpt2.encode(encoding, "Hello world") == [15496, 995]
    assert gpt2.token_pieces(encoding, "Hello world") == ["Hello", " world"]


def test_token_perplexity_to_bits_per_character():
    # 100 tokens at perplexity 16 = 400 bits; over 250 characters: 1.6 bits each.
    assert gpt2.perplexity_to_bpc(16, 100, 250) == pytest.approx(1.6)
    assert gpt2.perplexity_to_bpc(20, 1, 4) == pytest.approx(math.log2(20) / 4)
    with pytest.raises(ValueError):
        gpt2.perplexity_to_bpc(0.5, 10, 10)
    with pytest.raises(ValueError, match="perplexity ≥ 1"):
        gpt2.perplexity_to_bpc(math.nan, 10, 40)  # a diverged run's NaN is not a score
