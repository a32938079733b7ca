"""Corpora: the registry, downloading (a real HTTP server on loopback), cleaning, loading, splitting."""

from __future__ import annotations

import errno
import hashlib
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from textlab import CorpusError, TextlabError, clean_text, load_corpus, load_text, registry, split_text
import textlab.corpora as corpora
from textlab.corpora import EditionWarning, _other_book, fetch, hold_out, source_urls

NAMES = {"pride_and_prejudice", "frankenstein", "sherlock_holmes", "byron_don_juan", "tiny_shakespeare",
         "lermontov_ru", "onegin_ru"}


def leftovers(cache: Path) -> list[str]:
    """Everything in the cache folder, temporary files included."""
    return sorted(p.name for p in cache.iterdir())


# ---------------------------------------------------------------------------- registry

def test_registry_has_the_course_texts_with_their_facts():
    corpora = registry()
    assert NAMES <= set(corpora)
    for name in NAMES:
        c = corpora[name]
        assert c.name == name
        assert re.fullmatch(r"[0-9a-f]{64}", c.sha256)
        assert c.bytes > 100_000
        assert c.license.strip() and c.filename and c.download_url.startswith("https://")


def test_registry_matches_the_mirror_files(shared_data):
    for c in registry().values():
        raw = (shared_data / c.filename).read_bytes()
        assert len(raw) == c.bytes, c.name
        assert hashlib.sha256(raw).hexdigest() == c.sha256, c.name


def test_every_text_starts_its_samples_with_characters_it_has(mirror_env):
    primes = {}
    for name in registry():
        text = load_corpus(name)
        assert set(text.prime) <= set(text.text), name
        primes[name] = text.prime
    assert primes["tiny_shakespeare"] == "ROMEO:\n" and primes["frankenstein"] == "\n"


def test_unknown_corpus_names_the_known_ones(mirror_env):
    with pytest.raises(CorpusError, match="unknown corpus 'nope'.*tiny_shakespeare"):
        load_corpus("nope")


# ---------------------------------------------------------------------------- a local-folder mirror

def test_load_corpus_from_a_folder_mirror_and_cache(mirror_env):
    text = load_corpus("tiny_shakespeare")
    assert text.name == "tiny_shakespeare"
    assert text.text.startswith("First Citizen:\nBefore we proceed any further")
    assert len(text) > 1_000_000
    assert leftovers(mirror_env) == ["tinyshakespeare.txt", "tinyshakespeare.txt.sha256"]


def test_a_damaged_cache_file_is_fetched_again(mirror_env):
    (mirror_env / "tinyshakespeare.txt").write_bytes(b"\xff\xfe not the text")
    assert load_corpus("tiny_shakespeare").text.startswith("First Citizen:")
    assert (mirror_env / "tinyshakespeare.txt").stat().st_size == registry()["tiny_shakespeare"].bytes


# ---------------------------------------------------------------------------- real HTTP on loopback

class Server:
    """A ThreadingHTTPServer on 127.0.0.1 serving a folder; it records the paths requested."""

    def __init__(self, root: Path, handler_cls):
        self.requests: list[str] = []
        server = self

        class Handler(handler_cls):
            def log_message(self, *args):  # keep the test output quiet
                pass

            def send_head(self):
                server.requests.append(self.path)
                return super().send_head()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class CutShortHandler(http.server.SimpleHTTPRequestHandler):
    """Promises more bytes in Content-Length than it sends, then closes: a broken transfer."""

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return None
        body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) + 5_000))
        self.end_headers()
        self.wfile.write(body)
        return None


@pytest.fixture
def served(shared_data, tmp_path, monkeypatch):
    """A writable copy of the mirror folder (edit it to serve broken files) and an empty cache."""
    root = tmp_path / "www"
    shutil.copytree(shared_data, root)
    for f in root.iterdir():
        f.chmod(0o644)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TEXTLAB_CACHE", str(cache))
    return root, cache


def serve(root: Path, monkeypatch, handler=http.server.SimpleHTTPRequestHandler) -> Server:
    server = Server(root, handler)
    monkeypatch.setenv("TEXTLAB_MIRROR", server.url)
    return server


def test_http_download_succeeds_then_comes_from_the_cache(served, monkeypatch):
    root, cache = served
    with serve(root, monkeypatch) as server:
        first = load_corpus("onegin_ru")
        assert server.requests == ["/onegin_ru.txt"]
        second = load_corpus("onegin_ru")
        assert server.requests == ["/onegin_ru.txt"], "the second load must not download again"
    assert first.text == second.text and "Онегин" in first.text
    assert leftovers(cache) == ["onegin_ru.txt", "onegin_ru.txt.sha256"]


def test_http_truncated_file_is_refused_and_not_cached(served, monkeypatch):
    root, cache = served
    raw = (root / "tinyshakespeare.txt").read_bytes()
    (root / "tinyshakespeare.txt").write_bytes(raw[: len(raw) // 2])
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="truncated"):
        load_corpus("tiny_shakespeare")
    assert leftovers(cache) == []


@pytest.mark.parametrize("damage", ["95% of it", "one word changed"])
def test_http_a_fixed_file_is_refused_unless_it_is_exact(served, monkeypatch, damage):
    """Tiny Shakespeare never gets a new edition: any other sha256 is damage, even within 10% of its size."""
    root, cache = served
    path = root / "tinyshakespeare.txt"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 95 // 100] if damage == "95% of it" else raw.replace(b"ROMEO", b"ROMIO", 1))
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="truncated, damaged or not the registry's"):
        load_corpus("tiny_shakespeare")
    assert leftovers(cache) == []


def test_http_gutenberg_file_without_its_end_is_refused(served, monkeypatch):
    """95% of the bytes is within the size tolerance, but the END marker is gone."""
    root, cache = served
    raw = (root / "pg84.txt").read_bytes()
    (root / "pg84.txt").write_bytes(raw[: len(raw) * 95 // 100])
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="truncated"):
        load_corpus("frankenstein")
    assert leftovers(cache) == []


def test_http_transfer_cut_short_is_an_error(served, monkeypatch):
    root, cache = served
    with serve(root, monkeypatch, CutShortHandler), pytest.raises(CorpusError, match="cut short"):
        load_corpus("onegin_ru")
    assert leftovers(cache) == []


def test_http_404_is_an_error(served, monkeypatch):
    root, cache = served
    (root / "pg1661.txt").unlink()
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="404"):
        load_corpus("sherlock_holmes")
    assert leftovers(cache) == []


def test_http_unreachable_host_suggests_a_mirror(served, monkeypatch):
    root, cache = served
    with serve(root, monkeypatch) as server:
        url = server.url
    monkeypatch.setenv("TEXTLAB_MIRROR", url)  # the server is gone: connection refused
    with pytest.raises(CorpusError, match="TEXTLAB_MIRROR"):
        load_corpus("onegin_ru")
    assert leftovers(cache) == []


def _new_edition(root: Path) -> str:
    """Edit Frankenstein as a newer edition would: a few words changed, a paragraph added before the end."""
    path = root / "pg84.txt"
    text = path.read_bytes().decode("utf-8")
    end = text.index("End of the Project Gutenberg EBook of Frankenstein")
    added = "A paragraph that only the newer edition has.\r\n\r\n"
    text = text[:end].replace("lost in darkness and distance", "lost in darkness and in distance") + added + text[end:]
    path.write_bytes(text.encode("utf-8"))
    return added.strip()


def test_http_new_edition_warns_and_is_used(served, monkeypatch):
    root, cache = served
    added = _new_edition(root)
    with serve(root, monkeypatch), pytest.warns(EditionWarning, match="newer edition"):
        text = load_corpus("frankenstein").text
    assert "lost in darkness and in distance" in text and added in text
    assert "Gutenberg" not in text
    assert leftovers(cache) == ["pg84.txt", "pg84.txt.sha256"]


def test_http_new_edition_refused_when_strict(served, monkeypatch):
    root, cache = served
    _new_edition(root)
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="strict=True"):
        load_corpus("frankenstein", strict=True)
    assert leftovers(cache) == []


def test_http_failure_leaves_an_existing_cache_alone(served, monkeypatch):
    """A cached, verified file is used without asking the server at all."""
    root, cache = served
    with serve(root, monkeypatch):
        fetch("onegin_ru")
    (root / "onegin_ru.txt").unlink()
    with serve(root, monkeypatch) as server:
        assert load_corpus("onegin_ru").text.endswith("Как я с Онегиным моим.\n\nКонец\n")
        assert server.requests == []


# ---------------------------------------------------------------------------- cleaning

BODY = "It was a dark night.\nThe end.\n"


@pytest.mark.parametrize("form", ["THE", "THIS"])
def test_clean_strips_both_marker_forms(form):
    raw = (f"Project Gutenberg header\nlicence text\n*** START OF {form} PROJECT GUTENBERG EBOOK X ***\n\n"
           f"{BODY}\n*** END OF {form} PROJECT GUTENBERG EBOOK X ***\nlicence footer\n")
    text, report = clean_text(raw)
    assert text == BODY
    assert report.header.startswith("Project Gutenberg header") and report.header.endswith("EBOOK X ***")
    assert report.footer.startswith(f"*** END OF {form}") and report.footer.endswith("licence footer\n")


def test_clean_handles_an_indented_end_line():
    raw = ("head\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n" + BODY
           + "\n            *** END OF THE PROJECT GUTENBERG EBOOK X ***\nfooter\n")
    assert clean_text(raw)[0] == BODY


def test_clean_drops_the_end_of_ebook_line_even_when_wrapped():
    """pg84 repeats "End of the Project Gutenberg EBook of Frankenstein, by / Mary … Shelley"."""
    for end_line in ("End of the Project Gutenberg EBook of X, by Someone\n",
                     "End of the Project Gutenberg EBook of X, by\nSomeone Else\n"):
        raw = (f"head\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n{BODY}\n\n\n{end_line}\n"
               "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n")
        text, report = clean_text(raw)
        assert text == BODY
        assert report.footer.startswith("End of the Project Gutenberg")


def test_clean_keeps_a_body_paragraph_that_mentions_the_end():
    """Only an "End of …" paragraph right before the marker is footer; the story stays."""
    body = "End of the Project Gutenberg stories, said the narrator.\n\nAnd then he left.\n"
    raw = f"h\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n{body}\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    assert clean_text(raw)[0] == body


def test_clean_bom_crlf_nfc_and_report():
    raw = "\ufeffCaf" + "e\u0301" + "\r\nline two\r\nthree\rfour\n"
    text, report = clean_text(raw)
    assert text == "Café\nline two\nthree\nfour\n"
    assert "\u0301" not in text and "\r" not in text
    assert report.removed_bom and report.crlf_lines == 2 and report.nfc_changed == -1
    assert (report.header, report.footer) == ("", "")
    summary = report.summary()
    assert "byte-order mark" in summary and "2 CRLF" in summary and "-1" in summary


def test_clean_keeps_a_text_without_gutenberg_header_whole():
    raw = "First line\n\n*** not a marker ***\nEnd of the Project Gutenberg EBook? No.\n"
    text, report = clean_text(raw)
    assert text == raw
    assert not report.removed_bom and report.crlf_lines == 0 and report.nfc_changed == 0
    assert report.summary() == "removed: header 0 chars, footer 0 chars"


def test_real_pride_and_prejudice_is_cleaned(mirror_env):
    loaded = load_corpus("pride_and_prejudice")
    text = loaded.text
    assert "Project Gutenberg" not in text and "PROJECT GUTENBERG" not in text
    assert not text.startswith("\ufeff") and "\r" not in text
    head = text[:2000]
    assert "PRIDE." in head and "Jane Austen" in head  # the title page comes first
    assert 0 < text.index("It is a truth universally acknowledged") < 60_000
    assert "TOOKS COURT, CHANCERY LANE, LONDON." in text[-200:]  # the printer's colophon ends the book
    assert loaded.report.removed_bom and loaded.report.crlf_lines > 10_000
    assert "START OF THE PROJECT GUTENBERG EBOOK" in loaded.report.header
    assert "END OF THE PROJECT GUTENBERG EBOOK" in loaded.report.footer


@pytest.mark.parametrize("name, last_words", [("frankenstein", "lost in darkness and distance.\n"),
                                              ("byron_don_juan", "dreamt rather more than slept.\n"),
                                              ("sherlock_holmes", "considerable success.\n")])
def test_real_gutenberg_texts_end_with_the_book(mirror_env, name, last_words):
    text = load_corpus(name).text
    assert "Gutenberg" not in text
    assert text.rstrip(" \n").endswith(last_words.rstrip("\n"))


# ---------------------------------------------------------------------------- your own files

def test_load_text_utf8_and_bom(tmp_path):
    plain, bom = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes("Привет, мир 🙂\n".encode("utf-8"))
    bom.write_bytes("\ufeffПривет, мир 🙂\r\n".encode("utf-8"))
    a, b = load_text(plain), load_text(bom)
    assert a.text == b.text == "Привет, мир 🙂\n"
    assert a.name == "plain" and not a.report.removed_bom and b.report.removed_bom


def test_your_own_text_starts_its_samples_with_a_new_line_if_it_has_one(tmp_path):
    lines, one_line = tmp_path / "lines.txt", tmp_path / "one_line.txt"
    lines.write_text("Мой дядя\nсамых честных правил\n", encoding="utf-8")
    one_line.write_text("ab" * 600, encoding="utf-8")
    assert load_text(lines).prime == "\n" and load_text(one_line).prime == "a"


def test_load_text_cp1251(tmp_path):
    path = tmp_path / "old.txt"
    path.write_bytes("Мой дядя самых честных правил\n".encode("cp1251"))
    with pytest.raises(CorpusError, match="cp1251"):
        load_text(path)
    assert load_text(path, encoding="cp1251").text == "Мой дядя самых честных правил\n"


@pytest.mark.parametrize("content", [b"", b"  \n\r\n"])
def test_load_text_empty_is_an_error(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="no text"):
        load_text(path)


def test_load_text_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_text(tmp_path / "nowhere.txt")


# ---------------------------------------------------------------------------- splitting

def test_split_is_contiguous_with_the_asked_sizes():
    text = "".join(chr(0x400 + i % 64) for i in range(1000))
    split = split_text(text, val_fraction=0.1, test_fraction=0.05)
    assert split.train + split.val + split.test == text
    assert (len(split.train), len(split.val), len(split.test)) == (850, 100, 50)
    default = split_text(text)
    assert default.train + default.val == text and default.test == "" and len(default.val) == 100


def test_split_slices_do_not_overlap():
    text = "".join(f"{i:05d}" for i in range(400))  # every 5-character number occurs once
    split = split_text(text, 0.2, 0.2)
    train_numbers = {split.train[i:i + 5] for i in range(0, len(split.train), 5)}
    val_numbers = {split.val[i:i + 5] for i in range(0, len(split.val), 5)}
    test_numbers = {split.test[i:i + 5] for i in range(0, len(split.test), 5)}
    assert not train_numbers & val_numbers and not val_numbers & test_numbers and not train_numbers & test_numbers


def test_split_too_short_text():
    with pytest.raises(TextlabError, match="too short"):
        split_text("abcde")


@pytest.mark.parametrize("val, test", [(0, 0), (1, 0), (-0.1, 0), (0.1, -0.1), (0.5, 0.5), (0.1, 1.0),
                                       (float("nan"), 0)])
def test_split_bad_fractions(val, test):
    with pytest.raises(ValueError):
        split_text("x" * 1000, val, test)


# ---------------------------------------------------------------------------- review fixes: the cache

def test_a_read_only_cache_with_the_file_already_there_is_used(mirror_env, monkeypatch):
    """The sidecar is only a record: failing to write it must not fail the load."""
    load_corpus("onegin_ru")
    (mirror_env / "onegin_ru.txt.sha256").unlink()  # e.g. a cache made before sidecars existed

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "write_text", read_only)
    assert load_corpus("onegin_ru").text.endswith("Конец\n")


def test_an_unwritable_cache_is_one_clear_error(mirror_env, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(CorpusError, match=f"cannot write the cache {mirror_env}: set TEXTLAB_CACHE to a "
                                          "writable folder"):
        load_corpus("onegin_ru")


def test_a_killed_downloads_old_temporary_file_is_removed(mirror_env):
    old, fresh, other = (mirror_env / ".onegin_ru.txt.old123", mirror_env / ".onegin_ru.txt.new456",
                         mirror_env / ".pg84.txt.abc789")
    for path in (old, fresh, other):
        path.write_bytes(b"half a download")
    two_hours_ago = time.time() - 7200
    for path in (old, other):
        os.utime(path, (two_hours_ago, two_hours_ago))
    load_corpus("onegin_ru")
    assert not old.exists()
    assert fresh.exists(), "a download running now in another process keeps its file"
    assert other.exists(), "only the fetched file's own temporary files are touched"


def test_a_tilde_in_the_cache_and_mirror_means_home(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copy(shared_data / "onegin_ru.txt", tmp_path / "onegin_ru.txt")
    monkeypatch.setenv("TEXTLAB_MIRROR", "~")
    monkeypatch.setenv("TEXTLAB_CACHE", "~/textlab-cache")
    load_corpus("onegin_ru")
    assert (tmp_path / "textlab-cache" / "onegin_ru.txt").is_file()
    assert not (tmp_path / "~").exists(), "not a folder named ~ in the current one"


def test_an_upper_case_mirror_url_is_a_url(monkeypatch):
    monkeypatch.setenv("TEXTLAB_MIRROR", "HTTP://127.0.0.1:9/texts/")
    assert source_urls(registry()["onegin_ru"]) == ["HTTP://127.0.0.1:9/texts/onegin_ru.txt"]


# ---------------------------------------------------------------------------- review fixes: wrong files, errors

def test_another_gutenberg_book_is_not_a_newer_edition(served, monkeypatch):
    root, cache = served
    shutil.copy(root / "pg1342.txt", root / "pg1661.txt")  # Pride and Prejudice, served as Sherlock Holmes
    with serve(root, monkeypatch), pytest.raises(
            CorpusError, match=r"not sherlock_holmes's book \('Pride and Prejudice' where "
                               r"'The Adventures of Sherlock Holmes' was expected\)"):
        load_corpus("sherlock_holmes")
    assert leftovers(cache) == []


def test_every_registry_book_names_itself(shared_data):
    for corpus in registry().values():
        if corpus.gutenberg:
            assert _other_book(corpus, (shared_data / corpus.filename).read_text(encoding="utf-8")) is None, corpus.name


def test_a_mirror_that_lacks_the_file_is_named_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTLAB_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("TEXTLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CorpusError) as err:
        load_corpus("tiny_shakespeare")
    message = str(err.value)
    assert "\n" not in message
    assert f"TEXTLAB_MIRROR is set to {tmp_path / 'mirror'}: put the registry's tinyshakespeare.txt there" in message
    assert "pick corpus" not in message, "never suggest the corpus that just failed"
    assert "No such file or directory" in message
    assert message.count("tinyshakespeare.txt") == 2  # in the URL once and in the advice once


def test_a_data_file_is_not_a_course_text(mirror_env):
    with pytest.raises(CorpusError, match="unknown corpus 'gpt2_tokenizer'") as err:
        load_corpus("gpt2_tokenizer")
    assert "gpt2_tokenizer" not in str(err.value).split("known:")[1]
    assert fetch("gpt2_tokenizer").name == "gpt2.tiktoken"  # fetch still gets it for textlab.gpt2


# ---------------------------------------------------------------------------- review fixes: the registry file

def _registry_with(tmp_path, monkeypatch, change) -> None:
    data = json.loads(corpora.REGISTRY_PATH.read_text(encoding="utf-8"))
    change(data["corpora"][1])
    path = tmp_path / "corpora.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(corpora, "REGISTRY_PATH", path)


def test_a_registry_entry_may_add_keys_and_omit_optional_ones(tmp_path, monkeypatch):
    def change(entry):
        entry["edition"] = "2022"
        del entry["canonical_url"], entry["fallback_urls"]

    _registry_with(tmp_path, monkeypatch, change)
    corpus = registry()["pride_and_prejudice"]
    assert corpus.canonical_url is None and corpus.fallback_urls == ()


def test_a_registry_entry_without_a_required_field_is_named(tmp_path, monkeypatch):
    _registry_with(tmp_path, monkeypatch, lambda entry: entry.pop("sha256"))
    with pytest.raises(CorpusError, match=r"corpora.json corpora entry 2: missing 'sha256'"):
        registry()


# ---------------------------------------------------------------------------- review fixes: cleaning, own files

def test_a_produced_by_credit_opening_the_body_is_header():
    raw = ("head\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n\nProduced by A. Volunteer\nand B.\n\n\n\n"
           f"{BODY}\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n")
    text, report = clean_text(raw)
    assert text == BODY
    assert report.header.endswith("Produced by A. Volunteer\nand B.")


@pytest.mark.parametrize("name, first_words", [("frankenstein", "Frankenstein;\n"), ("byron_don_juan", "DON JUAN\n")])
def test_real_gutenberg_texts_start_with_the_book(mirror_env, name, first_words):
    assert load_corpus(name).text.startswith(first_words)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_load_text_reads_utf16_and_utf32_with_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "notepad.txt"  # Windows Notepad's "Unicode" is UTF-16-LE with a byte-order mark
    path.write_bytes("\ufeffПривет, мир\r\n".encode(encoding))
    loaded = load_text(path)
    assert loaded.text == "Привет, мир\n" and loaded.report.removed_bom


@pytest.mark.parametrize("content", [b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4,  # a .docx (zip)
                                     "text with a NUL\x00 in it\n".encode(),
                                     ("mostly text \x01\x02\x03 with controls\n" * 50).encode()])
def test_load_text_refuses_a_binary_file(tmp_path, content):
    path = tmp_path / "book.docx"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=r"looks like a binary file \(.docx, .pdf\?\): save it as plain text"):
        load_text(path)


def test_load_text_keeps_tabs_and_form_feeds(tmp_path):
    path = tmp_path / "tabs.txt"
    path.write_text("a\tb\fc\n" * 100, encoding="utf-8")
    assert load_text(path).text.startswith("a\tb\fc\n")


def test_load_text_suggests_cp1252_and_refuses_an_unknown_encoding(tmp_path):
    path = tmp_path / "old.txt"
    path.write_bytes("Café crème, naïve façade\n".encode("cp1252"))
    with pytest.raises(CorpusError, match=r"cp1252 \(Windows Western\)"):
        load_text(path)
    assert load_text(path, encoding="cp1252").text == "Café crème, naïve façade\n"
    with pytest.raises(CorpusError, match="unknown encoding 'cp-1252x'"):
        load_text(path, encoding="cp-1252x")


def test_split_and_hold_out_say_the_ranges_they_keep():
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\) and test_fraction in \[0, 1\)"):
        split_text("x" * 1000, 0, 0)
    for fraction in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
            hold_out("x" * 1000, fraction)


def test_a_produced_by_credit_is_a_short_paragraph_never_the_book():
    """A book whose first line happens to start "Produced by" but runs on keeps its text."""
    for body in ("Produced by A\nCHAPTER I\nIt was a dark night.\nThe end came.\nMore lines.\n\nMore.\n",
                 "Produced by nobody: the whole book is one paragraph without a blank line.\n"):
        raw = f"*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n{body}*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
        assert clean_text(raw)[0] == body


def test_a_file_that_names_no_book_is_truncated_not_another_book(served, monkeypatch):
    root, cache = served
    book = (root / "pg1661.txt").read_text(encoding="utf-8")
    (root / "pg1661.txt").write_text(book[-50_000:], encoding="utf-8")  # its start, title and all, cut off
    with serve(root, monkeypatch), pytest.raises(CorpusError, match="looks truncated"):
        load_corpus("sherlock_holmes")


def test_a_utf8_byte_order_mark_wins_over_the_encoding_given(tmp_path):
    path = tmp_path / "notepad_utf8.txt"  # Notepad's default: UTF-8 with a byte-order mark
    path.write_bytes("\ufeffПривет\n".encode("utf-8"))
    assert load_text(path, encoding="cp1251").text == "Привет\n"


def test_a_windows_file_read_as_latin1_is_named_not_kept(tmp_path):
    path = tmp_path / "quotes.txt"
    path.write_bytes("\u201cQuite so,\u201d he said \u2014 and left.\n".encode("cp1252") * 5)
    with pytest.raises(CorpusError, match=r"give its encoding as cp1252 \(Windows Western\)"):
        load_text(path, encoding="latin-1")  # curly quotes would become control codes U+0093, U+0094
    assert load_text(path, encoding="cp1252").text.startswith("\u201cQuite so,\u201d")


def test_word_line_breaks_are_text_not_binary(tmp_path):
    path = tmp_path / "poem.txt"  # Word's plain-text export writes a manual line break as \v
    path.write_text("a line\vof a poem\n" * 50, encoding="utf-8")
    assert "\v" in load_text(path).text
