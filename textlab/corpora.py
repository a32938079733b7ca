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

import codecs
import hashlib
import html
import http.client
import json
import os
import re
import tempfile
import time
import unicodedata
import urllib.error
import urllib.request
import warnings
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Sequence, TypeVar

from .config import TextlabError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
REGISTRY_PATH = DATA_DIR / "corpora.json"
DOWNLOAD_TIMEOUT = 30  # seconds without a byte before a download is abandoned
STALE_TEMP = 3600  # seconds: a download's temporary file untouched this long was left by a killed run
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
    sha256: str
    bytes: int
    gutenberg: bool
    license: str
    canonical_url: str | None = None  # the publisher's own address, when download_url is a copy
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

def _entries(section: str) -> dict[str, Corpus]:
    """One list of the registry file (``"corpora"`` or ``"files"``), by name.

    Keys this version does not know are ignored (a newer registry may add some); a missing
    optional field takes its default; a missing required one is an error naming it.
    """
    data = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Corpus)}
    required = [f.name for f in fields(Corpus) if f.default is MISSING]
    found = {}
    for number, entry in enumerate(data.get(section, []), start=1):
        missing = [name for name in required if name not in entry]
        if missing:
            raise CorpusError(f"{REGISTRY_PATH} {section} entry {number}: missing {missing[0]!r}; "
                              "add it (see the other entries)")
        kept = {k: v for k, v in entry.items() if k in known}
        found[entry["name"]] = Corpus(**{**kept, "fallback_urls": tuple(entry.get("fallback_urls", ()))})
    return found


def registry() -> dict[str, Corpus]:
    """All corpora the course knows, by name."""
    return _entries("corpora")


def data_files() -> dict[str, Corpus]:
    """Other files fetched like the corpora (``fetch(name)``) that are not course texts: GPT-2's tokenizer."""
    return _entries("files")


def get_corpus(name: str, files: bool = False) -> Corpus:
    """The registry entry of a course text; with ``files=True`` also of a data file (what ``fetch`` needs)."""
    corpora = {**registry(), **(data_files() if files else {})}
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
    """Where downloads are kept: ``$TEXTLAB_CACHE`` (``~`` allowed) or ``data/cache``."""
    return Path(os.environ.get("TEXTLAB_CACHE") or DATA_DIR / "cache").expanduser()


def mirror() -> str:
    """``$TEXTLAB_MIRROR``, or "" when it is not set."""
    return os.environ.get("TEXTLAB_MIRROR", "").strip()


def source_urls(corpus: Corpus) -> list[str]:
    """Where to fetch ``corpus`` from, in order: the mirror alone when one is set, else its
    download URL and then its fallbacks."""
    base = mirror()
    if not base:
        return [corpus.download_url, *corpus.fallback_urls]
    if re.match(r"^[a-z][a-z0-9+.-]*://", base, re.I):  # a URL (HTTP:// too), else a folder
        return [base.rstrip("/") + "/" + corpus.filename]
    return [Path(base).expanduser().resolve().joinpath(corpus.filename).as_uri()]


# ---------------------------------------------------------------------------- download

def _download(url: str, dest: Path) -> tuple[int, str]:
    """Stream ``url`` into ``dest``; return (bytes, sha256). A short transfer is an error (saying why, not where)."""
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
        raise CorpusError(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:  # e.g. IncompleteRead
        reason = getattr(err, "reason", err)  # the URL is named by the caller, so not its path again
        raise CorpusError(getattr(reason, "strerror", None) or str(reason)) from None
    if expected is not None and int(expected) != size:
        raise CorpusError(f"the transfer was cut short: {size:,} of {expected} bytes")
    return size, digest.hexdigest()


def _main_title(title: str) -> str:
    """"Frankenstein; or, The Modern Prometheus" → "Frankenstein": the part every edition names."""
    return re.split(r"[;(:]", title)[0].strip()


def _other_book(corpus: Corpus, text: str) -> str | None:
    """The title a Gutenberg file gives itself when it is not ``corpus``'s book; None when it is.

    The book's main title must appear in the file's START marker or its ``Title:`` line.
    """
    start = _START.search(text)
    named = _TITLE.search(text, 0, start.start() if start else len(text))
    if not (start or named):  # no claim at all (a cut-off file, an error page): the truncation check speaks
        return None
    claims = " ".join(m.group() for m in (start, named) if m)
    if _main_title(corpus.title).casefold() in " ".join(claims.split()).casefold():
        return None
    return named[1] if named else start.group().strip(" *")


def _check(corpus: Corpus, path: Path, size: int, sha: str, strict: bool) -> None:
    """Accept the exact edition; of a Gutenberg book, warn about a whole but different edition of the
    same book; refuse the rest. The messages say what is wrong with the file, not where it came from."""
    if sha == corpus.sha256:
        return
    if not corpus.gutenberg:  # a fixed file (a pinned commit, a frozen benchmark): no other edition exists
        raise CorpusError(f"got {size:,} bytes with sha256 {sha[:12]}…, expected {corpus.bytes:,} "
                          f"with {corpus.sha256[:12]}…: the file is truncated, damaged or not the registry's")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CorpusError(f"the file is not UTF-8 text (sha256 {sha[:12]}…): the download is damaged "
                          "or the URL serves something else") from None
    other = _other_book(corpus, text)
    if other is not None:
        raise CorpusError(f"the file is not {corpus.name}'s book ({other!r} where "
                          f"{_main_title(corpus.title)!r} was expected): the URL serves another book")
    if size < 0.9 * corpus.bytes or not _END.search(text):
        raise CorpusError(f"got {size:,} bytes, expected {corpus.bytes:,} and an intact end: "
                          "the download looks truncated")
    message = (f"{corpus.name}: sha256 {sha[:12]}… differs from the registry's {corpus.sha256[:12]}… "
               f"({size:,} vs {corpus.bytes:,} bytes) but the text is whole: probably a newer edition")
    if strict:
        raise CorpusError(message + "; strict=True refuses it")
    warnings.warn(message + "; using it", EditionWarning, stacklevel=3)


def _sidecar(target: Path) -> Path:
    """Where the sha256 of the accepted download of ``target`` is kept."""
    return target.with_name(target.name + ".sha256")


def _record(target: Path, sha: str) -> None:
    """Write the sidecar of ``target``. Only a record: a read-only cache simply goes without it."""
    try:
        _sidecar(target).write_text(sha + "\n", encoding="ascii")
    except OSError:
        pass


def _remove_stale_temps(target: Path) -> None:
    """Delete what killed downloads of ``target`` left behind; a download still running keeps its file fresh."""
    for tmp in target.parent.glob(f".{target.name}.*"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TEMP:
                tmp.unlink()
        except OSError:  # gone already, or a read-only cache
            pass


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
            _record(target, sha)
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
    leaves a half file behind, nor destroys the cached one; a killed run's temporary file is
    removed by a later fetch once it is an hour old.
    """
    corpus = get_corpus(name, files=True)
    target = cache_dir() / corpus.filename
    _remove_stale_temps(target)
    if _cached(corpus, target, strict):
        return target
    urls, failures = source_urls(corpus), []
    for url in urls:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{corpus.filename}.", dir=target.parent)
        except OSError:
            raise CorpusError(f"cannot write the cache {target.parent}: set TEXTLAB_CACHE to a "
                              "writable folder") from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            size, sha = _download(url, tmp)
            _check(corpus, tmp, size, sha, strict)
            os.chmod(tmp, 0o644)  # mkstemp makes files private; the cache is an ordinary folder
            os.replace(tmp, target)
            _record(target, sha)
            return target
        except CorpusError as err:
            failures.append(f"{url}: {err}")
        finally:
            tmp.unlink(missing_ok=True)
    raise CorpusError(f"could not fetch {name!r}: {'; '.join(failures)}. Nothing was cached. {_advice(corpus)}")


def _advice(corpus: Corpus) -> str:
    """What to do when every URL of ``corpus`` failed: it depends on whether a mirror was asked."""
    if mirror():
        return (f"TEXTLAB_MIRROR is set to {mirror()}: put the registry's {corpus.filename} there, "
                "or unset TEXTLAB_MIRROR to download from the internet")
    other = (", pick corpus 'tiny_shakespeare' (hosted on GitHub, not Gutenberg)"
             if corpus.name in registry() and corpus.name != "tiny_shakespeare" else "")
    return (f"Try again later{other}, or set TEXTLAB_MIRROR to a folder or base URL holding the "
            "files (e.g. ../shared/data)")


# ---------------------------------------------------------------------------- cleaning

_START = re.compile(r"^[ \t]*\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.M | re.I)
_END = re.compile(r"^[ \t]*\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK.*$", re.M | re.I)
_END_LINE = re.compile(r"^[ \t]*End of (?:the )?Project Gutenberg'?s? .*$", re.M | re.I)
# "[Illustration]", "[Illustration: caption]" (captions may run over several lines), transcriber notes.
_ILLUSTRATION = re.compile(r"[ \t]*\[(?:Illustration\b|Transcriber['’]s [Nn]otes?\b)[^\]]*\]", re.I)
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9a-fA-F]{1,6});")
_TITLE = re.compile(r"^[ \t]*Title:[ \t]*(.*?)[ \t\r]*$", re.M | re.I)
# The volunteers' credit some files put first in the body, up to the first blank line.
_PRODUCED_BY = re.compile(r"\AProduced by\b[^\n]*(?:\n[^\n]+){0,3}\n[ \t]*\n\n*")  # ≤ 4 lines, then a blank
# C0 control characters other than \t \n \v \f \r (Word writes a manual line break as \v): plain text
# has next to none, a binary file many.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_C1 = re.compile(r"[\x80-\x9f]")  # what cp1252's curly quotes and dashes become when read as latin-1
# Byte-order marks that name an encoding; the codecs keep the mark, so clean_text reports removing it.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),  # UTF-32 first: its LE
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),  # mark starts like UTF-16's
         (codecs.BOM_UTF8, "utf-8"))


def clean_text(raw: str, drop_illustrations: bool = False) -> tuple[str, CleanReport]:
    """Strip a Project Gutenberg header/footer (and a "Produced by …" credit opening the body) and
    the BOM, turn CRLF into LF, decode numeric HTML entities (``&#225;`` → ``á``), normalise to NFC.

    ``drop_illustrations=True`` also removes Gutenberg's ``[Illustration: …]`` (captions may run over
    several lines) and ``[Transcriber's Note: …]`` blocks. It is off by default, so the course's
    texts stay exactly as the notebooks' recorded outputs describe them.
    A text without Gutenberg's START and END markers keeps all its lines: only the BOM, line
    endings, entities and NFC apply. Returns the text and what was removed.
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
        body = text[start.end():body_end].strip("\n") + "\n"
        credit = _PRODUCED_BY.match(body)  # thanks to the volunteers, not part of the book
        report.header = text[:start.end()] + (f"\n\n{credit.group().rstrip()}" if credit else "")
        report.footer = text[body_end:]
        text = body[credit.end():] if credit else body
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
    corpus = get_corpus(name)  # a course text: fetch alone would also take a data file's name
    raw = fetch(name, strict=strict).read_bytes().decode("utf-8")
    text, report = clean_text(raw, drop_illustrations)
    return Text(text, name, report, corpus.prime)


def load_text(path: str | os.PathLike, encoding: str = "utf-8") -> Text:
    """Load your own text file: UTF-8 (with or without BOM), or UTF-16/32 with a byte-order mark.

    Pass ``encoding="cp1252"`` (Windows Western) or ``"cp1251"`` (Windows Cyrillic) for older files;
    a byte-order mark, when there is one, wins over ``encoding``.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}: use a name such as utf-8, cp1252 or cp1251") from None
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"no such file: {path}")
    raw = path.read_bytes()
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), encoding)
    binary = f"{path} looks like a binary file (.docx, .pdf?): save it as plain text (UTF-8)"
    try:
        decoded = raw.decode(encoding)
    except UnicodeDecodeError as err:
        if b"\0" in raw:
            raise CorpusError(binary) from None
        raise CorpusError(f"{path} is not valid {encoding} (byte {err.start}): save it as UTF-8, or give "
                          "its encoding, e.g. cp1252 (Windows Western) or cp1251 (Windows Cyrillic)") from None
    if "\0" in decoded or len(_CONTROL.findall(decoded)) > len(decoded) / 100:
        raise CorpusError(binary)
    if _C1.search(decoded):
        raise CorpusError(f"{path} read as {encoding} holds control codes (U+0080–U+009F) where a Windows file "
                          "has curly quotes and dashes: give its encoding as cp1252 (Windows Western)")
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
        raise ValueError(f"val_fraction must be in (0, 1) and test_fraction in [0, 1), together less than 1; "
                         f"got {val_fraction} and {test_fraction}")
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
    if not 0 < fraction < 1:
        raise ValueError(f"the fraction kept aside (dev_fraction) must be in (0, 1), not {fraction}")
    n_dev = int(len(part) * fraction)
    if n_dev < 2 or len(part) - n_dev < 2:
        raise TextlabError(f"a training text of {len(part):,} characters is too short to keep "
                           f"{fraction:.0%} aside for making choices on; use a longer text")
    return part[n_dev:], part[:n_dev]
