"""Shared fixtures: an offline corpus mirror, a cached Shakespeare text, tiny CharLSTMs.

The raw corpora live in ``../shared/data`` beside the repository (read-only). Tests that need
them get ``mirror_env``, which points ``TEXTLAB_MIRROR`` there and ``TEXTLAB_CACHE`` at a fresh
temporary folder, so nothing is downloaded and no test sees another's cache.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest
import torch
from hypothesis import settings

from textlab import CharLSTM, CharVocab, TrainConfig, train

# The tests' models are tiny: one thread is as fast as many, and on a busy shared machine extra
# threads spin-wait for each other (seen here: a 20x slowdown with 2 threads under load).
torch.set_num_threads(1)
# Property tests must not fail because a busy machine made one example slow.
settings.register_profile("textlab", deadline=None)
settings.load_profile("textlab")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# A text a tiny model learns in seconds: short words repeated with a few variations.
REPETITIVE_TEXT = "the cat sat on the mat. the dog sat on the log. " * 200


def _require_shared_data() -> Path:
    if not (SHARED_DATA / "tinyshakespeare.txt").is_file():
        skip_or_fail(f"corpus mirror {SHARED_DATA} is missing (it holds the raw course texts)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repetitive_text() -> str:
    """REPETITIVE_TEXT: 9,600 characters of two alternating sentences."""
    return REPETITIVE_TEXT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder of raw corpus files (skips the test when it is missing)."""
    return _require_shared_data()


@pytest.fixture
def mirror_env(monkeypatch, tmp_path) -> Path:
    """Corpora come from the local mirror; the cache is a fresh, empty folder (returned)."""
    data = _require_shared_data()
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TEXTLAB_MIRROR", str(data))
    monkeypatch.setenv("TEXTLAB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def shakespeare(tmp_path_factory) -> str:
    """The cleaned tiny_shakespeare text, loaded once per session through the mirror."""
    from textlab import load_corpus

    data = _require_shared_data()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEXTLAB_MIRROR", str(data))
        mp.setenv("TEXTLAB_CACHE", str(tmp_path_factory.mktemp("shakespeare-cache")))
        return load_corpus("tiny_shakespeare").text


@pytest.fixture
def tiny_lstm() -> tuple[CharLSTM, CharVocab]:
    """An untrained two-layer CharLSTM (hidden 16) and the vocabulary of REPETITIVE_TEXT."""
    torch.manual_seed(0)
    vocab = CharVocab.from_text(REPETITIVE_TEXT)
    return CharLSTM(len(vocab), embed_dim=8, hidden_size=16, num_layers=2).eval(), vocab


@pytest.fixture(scope="session")
def trained_lstm() -> tuple[CharLSTM, CharVocab]:
    """A CharLSTM trained for a couple of seconds on REPETITIVE_TEXT: it is confident there.

    Session-scoped, so treat it as read-only.
    """
    torch.manual_seed(0)
    vocab = CharVocab.from_text(REPETITIVE_TEXT)
    ids = vocab.encode(REPETITIVE_TEXT)
    cut = len(ids) * 9 // 10
    model = CharLSTM(len(vocab), embed_dim=16, hidden_size=64)
    # 200 steps: with a fifth of the rows starting cold (state_reset), 120 left "dog … mat" unsure.
    cfg = TrainConfig(batch_size=16, seq_len=32, lr=1e-2, warmup=0.05, steps=200, minutes=None,
                      eval_every=200, progress=False, device="cpu")
    result = train(model, ids[:cut], ids[cut:], cfg)
    assert result.val_bpc < 0.5, f"the fixture model did not learn: {result.val_bpc:.3f} bpc"
    return result.model.eval(), vocab


def skip_or_fail(reason: str) -> NoReturn:
    """Skip on a machine without a browser or the corpus mirror; fail under CI, where a skip would hide a defect."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}: CI must run this test, not skip it")
    pytest.skip(reason)


@pytest.fixture
def page():
    """A page in headless Chromium, closed with its browser after the test."""
    executable = shutil.which("chromium")
    if executable is None:
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    from browser_support import CHROMIUM_ARGS, VIEWPORT

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


