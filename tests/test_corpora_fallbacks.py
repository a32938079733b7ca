"""Downloads that survive Colab: a real User-Agent, fallback URLs, a cache that cannot be altered
silently, and the cleaning of entities and illustration blocks.

Every server is a real HTTP server on 127.0.0.1 (``test_corpora.Server``): one refuses (403),
one truncates, one serves a different edition, one serves the right file.
"""

from __future__ import annotations

import http.server
import json
import shutil
import warnings

import pytest

import textlab.corpora as corpora
from test_corpora import Server, leftovers
from textlab import CorpusError, clean_text, load_corpus
from textlab.corpora import EditionWarning, fetch

NAME, FILE = "frankenstein", "pg84.txt"


class RefusingHandler(http.server.SimpleHTTPRequestHandler):
    """What Gutenberg answers some cloud machines: 403 Forbidden."""

    def send_head(self):
        self.send_error(403, "Forbidden")
        return None


@pytest.fixture
def www(shared_data, tmp_path, monkeypatch):
    """Three writable copies of the mirror ("good", "truncated", "edition"), an empty cache, no mirror."""
    roots = {}
    for kind in ("good", "truncated", "edition"):
        roots[kind] = tmp_path / kind
        roots[kind].mkdir()
        shutil.copy(shared_data / FILE, roots[kind] / FILE)
    raw = (shared_data / FILE).read_bytes()
    (roots["truncated"] / FILE).write_bytes(raw[: len(raw) // 2])
    (roots["edition"] / FILE).write_bytes(raw.replace(b"lost in darkness and distance",
                                                      b"lost in darkness and in distance"))
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TEXTLAB_CACHE", str(cache))
    monkeypatch.delenv("TEXTLAB_MIRROR", raising=False)
    return roots, cache


def use_urls(monkeypatch, tmp_path, urls: list[str]) -> None:
    """A registry in which frankenstein lives at ``urls[0]`` with ``urls[1:]`` as its fallbacks."""
    data = json.loads(corpora.REGISTRY_PATH.read_text(encoding="utf-8"))
    entry = next(e for e in data["corpora"] if e["name"] == NAME)
    entry["download_url"], entry["fallback_urls"] = urls[0], urls[1:]
    path = tmp_path / "corpora.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(corpora, "REGISTRY_PATH", path)


def test_fallbacks_are_tried_in_order_with_a_real_user_agent(www, tmp_path, monkeypatch):
    roots, cache = www
    agents = []

    class Recording(http.server.SimpleHTTPRequestHandler):
        def send_head(self):
            agents.append(self.headers["User-Agent"])
            return super().send_head()

    with Server(roots["good"], RefusingHandler) as refusing, \
            Server(roots["truncated"], http.server.SimpleHTTPRequestHandler) as truncated, \
            Server(roots["good"], Recording) as good:
        use_urls(monkeypatch, tmp_path, [f"{s.url}/{FILE}" for s in (refusing, truncated, good)])
        text = load_corpus(NAME).text
        assert refusing.requests == truncated.requests == good.requests == [f"/{FILE}"]
    assert text.startswith("Letter 1") or "Frankenstein" in text
    assert agents and agents[0].startswith("textlab/") and "Python-urllib" not in agents[0]
    assert leftovers(cache) == [FILE, FILE + ".sha256"]


def test_strict_skips_a_different_edition_for_the_exact_one(www, tmp_path, monkeypatch):
    roots, cache = www
    handler = http.server.SimpleHTTPRequestHandler
    with Server(roots["edition"], handler) as edition, Server(roots["good"], handler) as good:
        use_urls(monkeypatch, tmp_path, [f"{edition.url}/{FILE}", f"{good.url}/{FILE}"])
        text = load_corpus(NAME, strict=True).text
        assert edition.requests == good.requests == [f"/{FILE}"]
    assert "lost in darkness and distance" in text


def test_when_every_url_fails_the_error_names_corpus_urls_and_ways_out(www, tmp_path, monkeypatch):
    roots, cache = www
    handler = http.server.SimpleHTTPRequestHandler
    with Server(roots["good"], RefusingHandler) as refusing, Server(roots["truncated"], handler) as truncated:
        urls = [f"{refusing.url}/{FILE}", f"{truncated.url}/{FILE}"]
        use_urls(monkeypatch, tmp_path, urls)
        with pytest.raises(CorpusError) as err:
            fetch(NAME)
    message = str(err.value)
    assert f"'{NAME}'" in message and all(message.count(url) == 1 for url in urls)  # each URL once
    assert "\n" not in message and "; " in message  # one line, the failures joined
    assert "403" in message and "truncated" in message
    assert "tiny_shakespeare" in message and "TEXTLAB_MIRROR" in message
    assert leftovers(cache) == []


def test_a_cached_file_changed_in_place_is_fetched_again(www, tmp_path, monkeypatch):
    """One byte changed, same size: not "a newer edition" but an altered cache. Never trained on."""
    roots, cache = www
    with Server(roots["good"], http.server.SimpleHTTPRequestHandler) as good:
        use_urls(monkeypatch, tmp_path, [f"{good.url}/{FILE}"])
        fetch(NAME)
        cached = cache / FILE
        raw = bytearray(cached.read_bytes())
        raw[20_000] = ord("#") if raw[20_000] != ord("#") else ord("%")
        cached.write_bytes(bytes(raw))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no EditionWarning: it is simply downloaded again
            fetch(NAME)
        assert good.requests == [f"/{FILE}", f"/{FILE}"]
    assert cached.read_bytes() == (roots["good"] / FILE).read_bytes()


def test_an_altered_cache_is_an_error_offline(www, tmp_path, monkeypatch):
    roots, cache = www
    with Server(roots["good"], http.server.SimpleHTTPRequestHandler) as good:
        use_urls(monkeypatch, tmp_path, [f"{good.url}/{FILE}"])
        fetch(NAME)
    cached = cache / FILE
    cached.write_bytes(cached.read_bytes().replace(b"Frankenstein", b"Frankenstien", 1))
    with pytest.raises(CorpusError, match="could not fetch"):  # the server is gone
        load_corpus(NAME)


def test_strict_refuses_a_cached_newer_edition_without_deleting_it(www, tmp_path, monkeypatch):
    roots, cache = www
    with Server(roots["edition"], http.server.SimpleHTTPRequestHandler) as edition:
        use_urls(monkeypatch, tmp_path, [f"{edition.url}/{FILE}"])
        with pytest.warns(EditionWarning, match="newer edition"):
            fetch(NAME)
    with pytest.raises(CorpusError, match="strict=True refuses"):
        fetch(NAME, strict=True)
    assert (cache / FILE).read_bytes() == (roots["edition"] / FILE).read_bytes(), "a refusal destroyed data"
    with pytest.warns(EditionWarning, match="newer edition"):  # and without strict it is still there
        assert fetch(NAME) == cache / FILE


# ---------------------------------------------------------------------------- cleaning

GUTENBERG = ("The Project Gutenberg eBook of Test\n\n{start}\n\nCHAPTER I\n\nIt was a dark night.\n"
             "{middle}The end.\n\n*** END OF THE PROJECT GUTENBERG EBOOK TEST ***\nlicence text\n")


def test_an_indented_start_marker_is_found_like_an_indented_end():
    raw = GUTENBERG.format(start="   *** START OF THE PROJECT GUTENBERG EBOOK TEST ***", middle="")
    text, report = clean_text(raw)
    assert text == "CHAPTER I\n\nIt was a dark night.\nThe end.\n"
    assert "START OF" in report.header and "licence" in report.footer


def test_illustration_and_transcriber_blocks_are_dropped_and_reported():
    blocks = ["[Illustration]", "[Illustration: “Hearts are\n   made to be broken.”\n]",
              "[Transcriber's Note: spelling kept as printed.]"]
    raw = GUTENBERG.format(start="*** START OF THE PROJECT GUTENBERG EBOOK TEST ***",
                           middle="".join(f"    {b}\n\n" for b in blocks))
    text, report = clean_text(raw, drop_illustrations=True)
    assert "Illustration" not in text and "Transcriber" not in text and "broken" not in text
    assert report.illustrations == 3
    assert report.illustration_chars == sum(len(b) + 4 for b in blocks)  # with their indentation
    assert "3 illustration/transcriber blocks" in report.summary()
    kept, kept_report = clean_text(raw)  # off by default
    assert "[Illustration]" in kept and kept_report.illustrations == 0


def test_numeric_html_entities_are_decoded_and_reported():
    text, report = clean_text("призр&#225;к и &#x44F;, but &amp; stays\n")
    assert text == "призрáк и я, but &amp; stays\n"
    assert report.html_entities == 2 and "2 HTML entities decoded" in report.summary()


def test_real_lermontov_has_no_entities_left(mirror_env):
    book = load_corpus("lermontov_ru")
    assert "&#" not in book.text and book.report.html_entities > 0
    assert "HTML entities decoded" in book.report.summary()


def test_real_pride_and_prejudice_loses_its_illustrations(mirror_env):
    assert "[Illustration" in load_corpus("pride_and_prejudice").text
    book = load_corpus("pride_and_prejudice", drop_illustrations=True)
    assert "[Illustration" not in book.text and book.report.illustrations > 100
    assert "It is a truth universally acknowledged" in book.text
