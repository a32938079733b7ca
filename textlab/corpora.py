"""The course texts: download once, verify, cache, clean, split.

``data/corpora.json`` holds facts about each text (where it lives, its size and sha256,
its licence), never the text itself. ``load_corpus(name)`` downloads it on first use and
caches it under ``data/cache/`` (or ``$TEXTLAB_CACHE``). ``$TEXTLAB_MIRROR`` replaces the
host with a local folder or a base URL holding the same files; tests and offline runs
point it at a folder of the files. Without a mirror, a corpus's ``fallback_urls`` (official
Gutenberg mirrors) are tried in order when its host refuses, each checked against the same sha256.
Beside each cached file, ``NAME.sha256`` records what was accepted; a cached file that no longer
matches it is fetched again, never used.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import json
import os
import re
import tempfile
import unicodedata
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from .config import TextlabError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
REGISTRY_PATH = DATA_DIR / "corpora.json"
DOWNLOAD_TIMEOUT = 30  # seconds without a byte before a download is abandoned
S = TypeVar("S", bound=Sequence)  # a text, or a tensor of its ids
# Hosts such as Project Gutenberg refuse urllib's default "Python-urllib/3.x" agent from cloud machines.
USER_AGENT = ("textlab/0.1 (educational course downloader: one request per text, then cached; "
              "https://github.com/textlab-course/textlab)")


class CorpusError(TextlabError):
    """A corpus could not be fetched, verified or read."""


class EditionWarning(UserWarning):
    """The downloaded text is whole but differs from the edition the registry knows."""


@dataclass(frozen=True)
class Corpus:
    """One entry of the registry: facts about a text, not the text."""

    name: str
    title: str
    author: str
    language: str
    filename: str
    download_url: str
    canonical_url: str | None
    sha256: str
    bytes: int
    gutenberg: bool
    license: str
    fallback_urls: tuple[str, ...] = ()  # the same file elsewhere, tried in order after download_url
    prime: str = "\n"  # where a model trained on it starts its samples, e.g. "ROMEO:\n"


@dataclass
class CleanReport:
    """What ``clean_text`` removed or changed, so a student can see it."""

    header: str = ""
    footer: str = ""
    removed_bom: bool = False
    crlf_lines: int = 0
    nfc_changed: int = 0  # characters gained or lost by Unicode NFC normalisation
    html_entities: int = 0  # numeric HTML entities such as "&#225;" decoded to their character
    illustrations: int = 0  # Gutenberg "[Illustration: …]" / "[Transcriber's Note: …]" blocks dropped
    illustration_chars: int = 0

    def summary(self) -> str:
        parts = [f"header {len(self.header):,} chars", f"footer {len(self.footer):,} chars"]
        if self.removed_bom:
            parts.append("a byte-order mark")
        if self.crlf_lines:
            parts.append(f"{self.crlf_lines:,} CRLF line endings → LF")
        if self.illustrations:
            parts.append(f"{self.illustrations:,} illustration/transcriber blocks "
                         f"({self.illustration_chars:,} chars)")
        if self.html_entities:
            parts.append(f"{self.html_entities:,} HTML entities decoded (e.g. &#225; → á)")
        if self.nfc_changed:
            parts.append(f"NFC normalisation changed the length by {self.nfc_changed:+,}")
        return "removed: " + ", ".join(parts)


@dataclass
class Text:
    """A cleaned text and where it came from."""

    text: str
    name: str
    report: CleanReport = field(default_factory=CleanReport)
    prime: str = "\n"  # where samples start: the registry's choice, or a new line

    def __len__(self) -> int:
        return len(self.text)


@dataclass
class Split:
    """Contiguous train / val / test slices of one text."""

    train: str
    val: str
    test: str = ""


# ---------------------------------------------------------------------------- registry

def registry() -> dict[str, Corpus]:
    """All corpora the course knows, by name."""
    data = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    return {entry["name"]: Corpus(**{**entry, "fallback_urls": tuple(entry.get("fallback_urls", ()))})
            for entry in data["corpora"]}


def data_files() -> dict[str, Corpus]:
    """Other files fetched like the corpora (``fetch(name)``) that are not course texts: GPT-2's tokenizer."""
    data = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    return {entry["name"]: Corpus(**entry) for entry in data.get("files", [])}


def get_corpus(name: str) -> Corpus:
    corpora = {**registry(), **data_files()}
    if name not in corpora:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(corpora)} "
                          "(for your own file use load_text(path) or --text PATH)")
    return corpora[name]


def registry_table() -> str:
    """The registry as a text table: name, language, size, whether it is cached, title, licence."""
    lines = [f"{'name':<21} {'lang':<4} {'size':>8}  {'cached':<6}  title — licence"]
    for c in registry().values():
        cached = "yes" if (cache_dir() / c.filename).exists() else "no"
        licence = c.license.split(";")[0].split(" (")[0].split(". ")[0]
        lines.append(f"{c.name:<21} {c.language:<4} {c.bytes / 1e6:>6.2f}MB  {cached:<6}  "
                     f"{c.title.split(' (')[0][:40]} — {licence}")
    return "\n".join(lines)


def cache_dir() -> Path:
    return Path(os.environ.get("TEXTLAB_CACHE") or DATA_DIR / "cache")


def source_urls(corpus: Corpus) -> list[str]:
    """Where to fetch ``corpus`` from, in order: the mirror alone when one is set, else its
    download URL and then its fallbacks."""
    mirror = os.environ.get("TEXTLAB_MIRROR", "").strip()
    if not mirror:
        return [corpus.download_url, *corpus.fallback_urls]
    if re.match(r"^[a-z]+://", mirror):
        return [mirror.rstrip("/") + "/" + corpus.filename]
    return [Path(mirror).resolve().joinpath(corpus.filename).as_uri()]


# ---------------------------------------------------------------------------- download

def _download(url: str, dest: Path) -> tuple[int, str]:
    """Stream ``url`` into ``dest``; return (bytes, sha256). A short transfer is an error."""
    digest, size = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response, open(dest, "wb") as out:
            expected = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            while chunk := response.read(1 << 16):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as err:
        raise CorpusError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:  # e.g. IncompleteRead
        reason = getattr(err, "reason", err)
        raise CorpusError(f"download of {url} failed: {reason}") from None
    if expected is not None and int(expected) != size:
        raise CorpusError(f"download of {url} was cut short: {size:,} of {expected} bytes; try again")
    return size, digest.hexdigest()


def _check(corpus: Corpus, path: Path, size: int, sha: str, strict: bool) -> None:
    """Accept the exact edition; of a Gutenberg book, warn about a whole but different one; refuse the rest."""
    if sha == corpus.sha256:
        return
    if not corpus.gutenberg:  # a fixed file (a pinned commit, a frozen benchmark): no other edition exists
        raise CorpusError(f"{corpus.name}: got {size:,} bytes with sha256 {sha[:12]}…, expected {corpus.bytes:,} "
                          f"with {corpus.sha256[:12]}…: the file is truncated, damaged or not the registry's. "
                          "Nothing was cached: try again, or check TEXTLAB_MIRROR.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"{corpus.name}: the file is not UTF-8 text (sha256 {sha[:12]}…); "
                          "the download is damaged or the URL serves something else") from None
    truncated = size < 0.9 * corpus.bytes or not _END.search(text)
    if truncated:
        raise CorpusError(f"{corpus.name}: got {size:,} bytes, expected {corpus.bytes:,} and an intact "
                          "end; the download looks truncated. Nothing was cached: try again.")
    message = (f"{corpus.name}: sha256 {sha[:12]}… differs from the registry's {corpus.sha256[:12]}… "
               f"({size:,} vs {corpus.bytes:,} bytes) but the text is whole: probably a newer edition")
    if strict:
        raise CorpusError(message + "; strict=True refuses it")
    warnings.warn(message + "; using it", EditionWarning, stacklevel=3)


def _sidecar(target: Path) -> Path:
    """Where the sha256 of the accepted download of ``target`` is kept."""
    return target.with_name(target.name + ".sha256")


def _cached(corpus: Corpus, target: Path, strict: bool) -> bool:
    """Whether the cached ``target`` is the file that was accepted when it was downloaded.

    An exact registry edition is always good. A newer edition is good only if the sidecar says it
    was accepted that way, and ``strict`` refuses it without deleting it. Anything else (a changed
    byte, a cache from before sidecars) is not trusted: the caller downloads again.
    """
    if not target.exists():
        return False
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    sidecar = _sidecar(target)
    accepted = sidecar.read_text(encoding="ascii").strip() if sidecar.exists() else None
    if sha == corpus.sha256:
        if accepted != sha:
            sidecar.write_text(sha + "\n", encoding="ascii")
        return True
    if sha != accepted:
        return False
    message = (f"{corpus.name}: the cached {target} is a newer edition than the registry's "
               f"(sha256 {sha[:12]}… vs {corpus.sha256[:12]}…)")
    if strict:
        raise CorpusError(message + "; strict=True refuses it. Delete it to download again.")
    warnings.warn(message + "; using it", EditionWarning, stacklevel=3)
    return True


def fetch(name: str, strict: bool = False) -> Path:
    """The cached raw file of corpus ``name``, downloading and verifying it first if needed.

    Its URLs are tried in order (see ``source_urls``). A download goes to a temporary file beside
    the cache and is moved in with one atomic rename, so a failed or refused download never
    leaves a half file behind, nor destroys the cached one.
    """
    corpus = get_corpus(name)
    target = cache_dir() / corpus.filename
    if _cached(corpus, target, strict):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    urls, failures = source_urls(corpus), []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{corpus.filename}.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            size, sha = _download(url, tmp)
            _check(corpus, tmp, size, sha, strict)
            os.chmod(tmp, 0o644)  # mkstemp makes files private; the cache is an ordinary folder
            os.replace(tmp, target)
            _sidecar(target).write_text(sha + "\n", encoding="ascii")
            return target
        except CorpusError as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    tried = "\n  ".join(failures)
    raise CorpusError(f"could not fetch corpus {name!r}; tried {len(urls)} URL(s):\n  {tried}\n"
                      "Try again later, pick corpus 'tiny_shakespeare' (hosted on GitHub, not Gutenberg), "
                      "or set TEXTLAB_MIRROR to a folder or base URL holding the files (e.g. ../shared/data).")


# ---------------------------------------------------------------------------- cleaning

_START = re.compile(r"^[ \t]*\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.M | re.I)
_END = re.compile(r"^[ \t]*\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.M | re.I)
_END_LINE = re.compile(r"^[ \t]*End of (?:the )?Project Gutenberg'?s? .*$", re.M | re.I)
# "[Illustration]", "[Illustration: caption]" (captions may run over several lines), transcriber notes.
_ILLUSTRATION = re.compile(r"[ \t]*\[(?:Illustration\b|Transcriber['’]s [Nn]otes?\b)[^\]]*\]", re.I)
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9a-fA-F]{1,6});")


def clean_text(raw: str, drop_illustrations: bool = False) -> tuple[str, CleanReport]:
    """Strip a Project Gutenberg header/footer and the BOM, turn CRLF into LF, decode numeric HTML
    entities (``&#225;`` → ``á``), normalise to NFC.

    ``drop_illustrations=True`` also removes Gutenberg's ``[Illustration: …]`` (captions may run over
    several lines) and ``[Transcriber's Note: …]`` blocks. It is off by default, so the course's
    texts stay exactly as the notebooks' recorded outputs describe them.
    Texts without a Gutenberg header are kept whole. Returns the text and what was removed.
    """
    report = CleanReport()
    if raw.startswith("\ufeff"):
        raw, report.removed_bom = raw[1:], True
    report.crlf_lines = raw.count("\r\n")
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    start = _START.search(text)
    end = _END.search(text, start.end() if start else 0)
    if start and end:
        body_end = end.start()
        # Older files repeat "End of the Project Gutenberg EBook of …" just before the marker,
        # sometimes wrapped onto a second line (pg84: "…of Frankenstein, by\nMary … Shelley").
        last = None
        for last in _END_LINE.finditer(text, start.end(), body_end):
            pass
        if last is not None and "\n\n" not in text[last.start():body_end].strip():
            body_end = last.start()
        report.header, report.footer = text[:start.end()], text[body_end:]
        text = text[start.end():body_end].strip("\n") + "\n"
    if drop_illustrations:
        blocks = _ILLUSTRATION.findall(text)
        report.illustrations, report.illustration_chars = len(blocks), sum(map(len, blocks))
        text = _ILLUSTRATION.sub("", text)
    text, report.html_entities = _NUMERIC_ENTITY.subn(lambda m: html.unescape(m.group()), text)
    normal = unicodedata.normalize("NFC", text)
    report.nfc_changed = len(normal) - len(text)
    return normal, report


def load_corpus(name: str, strict: bool = False, drop_illustrations: bool = False) -> Text:
    """Download (once), verify and clean a registered corpus (see ``clean_text``)."""
    raw = fetch(name, strict=strict).read_bytes().decode("utf-8")
    text, report = clean_text(raw, drop_illustrations)
    return Text(text, name, report, get_corpus(name).prime)


def load_text(path: str | os.PathLike, encoding: str = "utf-8") -> Text:
    """Load your own text file (UTF-8, with or without BOM). Pass ``encoding="cp1251"`` for old Russian files."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"no such file: {path}")
    raw = path.read_bytes()
    try:
        decoded = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path} is not valid {encoding} (byte {err.start}); save it as UTF-8, or pass "
                          "encoding='cp1251' (Windows Cyrillic) / 'latin-1' if that is what it is") from None
    text, report = clean_text(decoded)
    if not text.strip():
        raise CorpusError(f"{path} holds no text")
    return Text(text, path.stem, report, prime="\n" if "\n" in text else text[0])


def split_text(text: str, val_fraction: float = 0.1, test_fraction: float = 0.0) -> Split:
    """Cut a text by position: the first part trains, the last ``val_fraction`` validates.

    Contiguous slices, never random windows: two overlapping random windows would put the
    same sentence in both train and val, and the validation score would flatter the model.
    """
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    n = len(text)
    n_test, n_val = int(n * test_fraction), int(n * val_fraction)
    if n - n_val - n_test < 2 or n_val < 2:
        raise TextlabError(f"text of {n} characters is too short to split; use a longer text")
    cut_val, cut_test = n - n_val - n_test, n - n_test
    return Split(text[:cut_val], text[cut_val:cut_test], text[cut_test:])



def hold_out(part: S, fraction: float) -> tuple[S, S]:
    """``(fit, dev)``: the first ``fraction`` of a training text (a str or a tensor of ids) kept aside.

    Choices (the best weights, when to stop early, an n-gram's order) are made on ``dev``, so
    the validation text stays what it must be: text no choice was made on. ``dev`` comes from
    the *start*: the end of the training part is the text most like validation (the same play,
    the same chapter, the same names), and a model that never read it scores worse there.
    """
    n_dev = int(len(part) * fraction)
    if n_dev < 2 or len(part) - n_dev < 2:
        raise TextlabError(f"a training text of {len(part):,} characters is too short to keep "
                           f"{fraction:.0%} aside for making choices on; use a longer text")
    return part[n_dev:], part[:n_dev]
