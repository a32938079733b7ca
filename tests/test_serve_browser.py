"""The served page in a real browser: move the temperature slider with the keyboard, the sample
and the chart change; each model starts at its own prime; a refused stream is explained.

Tiny CharLSTMs are served by uvicorn on 127.0.0.1 (a free port) in a thread of this process; the
page is opened in Debian's headless chromium through Playwright. Screenshots before and after
go to ``test-artifacts/browser/``.
"""

from __future__ import annotations


import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")

from conftest import REPETITIVE_TEXT  # noqa: E402
from test_browser import ARTIFACTS  # noqa: E402
from textlab import CharLSTM, CharVocab  # noqa: E402
from textlab.checkpoints import Loaded  # noqa: E402
from textlab.serve import BackgroundServer, Limits, start_background  # noqa: E402

pytestmark = pytest.mark.browser
KEY_PRESSES = 3  # ArrowRight presses: each moves the temperature one step (0.1) up

# What the user sees: the slider's number, the header, the generated text, the chart's rows.
_PAGE_JS = """() => ({
    readout: document.getElementById('temperature-out').textContent,
    header: document.getElementById('settings').textContent,
    state: document.getElementById('sample').dataset.state,
    text: document.querySelector('#sample .generated')?.textContent ?? '',
    chart: document.getElementById('chart').innerText.trim(),
    error: document.getElementById('error').textContent,
})"""


def tiny_models(limits: Limits = Limits()) -> BackgroundServer:
    """Serve "cat", a checkpoint whose samples start at "the ", and "dog", a bare pair (prime "\\n")."""
    torch.manual_seed(0)
    vocab = CharVocab.from_text(REPETITIVE_TEXT + "ROMEO:\n")
    cat, dog = (CharLSTM(len(vocab), embed_dim=8, hidden_size=32).eval() for _ in range(2))
    return start_background({"cat": Loaded(cat, vocab, prime="the "), "dog": (dog, vocab)}, limits=limits)


@pytest.fixture
def server():
    running = tiny_models()
    yield running
    running.stop()


def _written(page, header_part: str) -> dict:
    """Wait until the sample whose header holds ``header_part`` is fully streamed and charted."""
    page.wait_for_function(
        """(part) => document.getElementById('settings').textContent.includes(part)
                     && document.getElementById('sample').dataset.state === 'done'
                     && document.querySelectorAll('#chart .bar-row').length > 0""",
        arg=header_part, timeout=20_000)
    return page.evaluate(_PAGE_JS)


def test_temperature_slider_restreams_sample_and_chart(page, server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.url)
    before = _written(page, "T=0.8,")
    assert before["readout"] == "0.8" and not before["error"]
    assert page.input_value("#prime") == "the ", "the page starts at the model's own prime"
    assert len(before["text"]) == 300, "the whole sample arrives over the stream"
    page.screenshot(path=str(ARTIFACTS / "serve-before.png"), full_page=True)

    page.focus("#temperature")
    for _ in range(KEY_PRESSES):
        page.keyboard.press("ArrowRight")
    after = _written(page, "T=1.1,")
    page.screenshot(path=str(ARTIFACTS / "serve-after.png"), full_page=True)

    assert after["readout"] == "1.1" and not after["error"]
    assert after["text"] != before["text"], "the sample did not change with the temperature"
    assert after["chart"] != before["chart"], "the chart did not change with the temperature"

    # A prime the model cannot read: the page says which characters, instead of a sample.
    page.fill("#prime", "ROMEO Ж")
    page.dispatch_event("#prime", "change")
    page.wait_for_function("() => document.getElementById('error').textContent.includes(\"'Ж'\")", timeout=20_000)
    assert page.evaluate(_PAGE_JS)["state"] == "error"

    # Another model: the prime becomes its own, and its sample streams in.
    page.select_option("#model", "dog")
    assert not _written(page, "dog:")["error"]
    assert page.input_value("#prime") == "\n"


def test_a_refused_stream_is_explained_without_asking_for_it_again(page):
    """Every stream is refused with 429 (a queue of no samples): the page shows the server's reason,
    read from a POST /generate of length 0, and never asks for the stream a second time."""
    running = tiny_models(Limits(max_queue=0))
    streams = []
    page.on("request", lambda request: streams.append(request.url) if "generate/stream" in request.url else None)
    try:
        page.goto(running.url)
        page.wait_for_function("() => document.getElementById('error').textContent.includes('busy')",
                               timeout=20_000)
    finally:
        running.stop()
    assert page.evaluate(_PAGE_JS)["state"] == "error"
    assert len(streams) == 1, f"the stream was asked for {len(streams)} times"
