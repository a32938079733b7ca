"""The HTTP API of ``textlab serve``: every endpoint, every bad input, batching, the 429 path."""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install -e '.[serve]')")
from fastapi.testclient import TestClient  # noqa: E402

from conftest import REPETITIVE_TEXT  # noqa: E402
from textlab import CharLSTM, CharVocab, MiniGPT, sample, save_checkpoint  # noqa: E402
from textlab import TextlabError, serve  # noqa: E402
from textlab.checkpoints import Loaded  # noqa: E402
from textlab.config import in_colab  # noqa: E402
from textlab.serve import Limits, create_app, load_folder  # noqa: E402

TEXT = REPETITIVE_TEXT + "\n"  # the library's default prime is a newline
# The weights kept are the best on dev (step 10), though step 20 scored better on validation.
HISTORY = [{"step": 10, "train_bpc": 3.0, "dev_bpc": 2.4, "val_bpc": 2.5},
           {"step": 20, "train_bpc": 2.0, "dev_bpc": 2.6, "val_bpc": 2.25}]


def tiny(kind: str = "lstm", hidden: int = 16):
    torch.manual_seed(0)
    vocab = CharVocab.from_text(TEXT)
    model = (CharLSTM(len(vocab), embed_dim=8, hidden_size=hidden) if kind == "lstm"
             else MiniGPT(len(vocab), hidden_size=16, num_layers=1, n_head=2, block_size=32))
    return model.eval(), vocab


@pytest.fixture
def runs(tmp_path):
    """A runs/ folder: cat/model.pt (CharLSTM), gpt.pt (MiniGPT), and a secret outside it."""
    folder = tmp_path / "runs"
    model, vocab = tiny()
    save_checkpoint(folder / "cat" / "model.pt", model, vocab, history=HISTORY)
    save_checkpoint(folder / "gpt.pt", *tiny("gpt"))
    save_checkpoint(tmp_path / "secret" / "model.pt", model, vocab)
    return folder


@pytest.fixture
def client(runs):
    with TestClient(create_app(load_folder(runs))) as c:
        yield c


def generate(client, **body):
    return client.post("/generate", json={"model": "cat", "prime": "the ", "length": 40, **body})


def test_health_and_models(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and set(health["models"]) == {"cat", "gpt"}
    models = {m["name"]: m for m in client.get("/models").json()}
    assert models["cat"]["kind"] == "lstm" and models["gpt"]["kind"] == "gpt"
    assert models["cat"]["val_bpc"] == 2.5 and models["gpt"]["val_bpc"] is None
    assert models["cat"]["vocab_size"] == len(CharVocab.from_text(TEXT))
    assert models["cat"]["parameters"] > 0


def test_gpt2_is_absent_offline(runs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert serve.gpt2_name() is None
    with TestClient(create_app(load_folder(runs), gpt2=serve.gpt2_name())) as c:
        assert "distilgpt2" not in {m["name"] for m in c.get("/models").json()}


@pytest.mark.parametrize("kind", ["cat", "gpt"])
def test_generate_matches_the_library_and_same_seed_same_text(client, runs, kind):
    from textlab import load_checkpoint

    loaded = load_checkpoint(runs / "cat" / "model.pt" if kind == "cat" else runs / "gpt.pt")
    body = {"model": kind, "temperature": 0.9, "top_k": 10, "seed": 7, "num_samples": 3}
    first = generate(client, **body).json()
    assert first["texts"] == sample(loaded.model, loaded.vocab, "the ", 40, 0.9, 10, None, 7, 3)
    assert generate(client, **body).json()["texts"] == first["texts"]
    assert all(t.startswith("the ") and len(t) == 44 for t in first["texts"])
    assert generate(client, **{**body, "seed": 8}).json()["texts"] != first["texts"]


def test_defaults_are_the_librarys(client, runs):
    """A request that names only the model and seed gets what ``sample`` gives with its own defaults."""
    cat = load_folder(runs)["cat"]
    got = client.post("/generate", json={"model": "cat", "seed": 0}).json()
    assert got["texts"] == [sample(cat.model, cat.vocab, seed=0)]  # prime, length, temperature, top-k, top-p
    assert got["seconds"] > 0 and got["batch_rows"] >= 1


def test_each_model_starts_at_its_own_prime_unless_asked(runs):
    """A checkpoint's stored prime is where its samples start; GET /models says which it is."""
    model, vocab = tiny()
    save_checkpoint(runs / "the.pt", model, vocab, prime="the ")
    with TestClient(create_app(load_folder(runs))) as c:
        assert {m["name"]: m["prime"] for m in c.get("/models").json()} == {"cat": "\n", "gpt": "\n", "the": "the "}
        got = c.post("/generate", json={"model": "the", "length": 20, "seed": 0}).json()["texts"]
        assert got == [sample(model, vocab, "the ", 20, seed=0)]
        assert sse(c.get("/generate/stream", params={"model": "the", "length": 20, "seed": 0}))[-1][1]["text"] == got[0]
        assert c.post("/next-char", json={"model": "the"}).json()["prime"] == "the "
        asked = c.post("/generate", json={"model": "the", "prime": "a", "length": 20, "seed": 0}).json()["texts"]
        assert asked == [sample(model, vocab, "a", 20, seed=0)]


def test_batched_requests_give_each_seed_its_own_text(runs):
    """Many concurrent requests share forward passes, yet each text is what its seed gives alone."""
    models = load_folder(runs)
    cat = models["cat"]
    expected = {seed: sample(cat.model, cat.vocab, "the ", 200, 0.8, None, None, seed, 2) for seed in range(12)}
    answers = {}
    with TestClient(create_app(models)) as c:
        def ask(seed):
            answers[seed] = c.post("/generate", json={"model": "cat", "prime": "the ", "length": 200 - seed,
                                                      "temperature": 0.8, "seed": seed, "num_samples": 2}).json()

        threads = [threading.Thread(target=ask, args=(s,)) for s in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert max(a["batch_rows"] for a in answers.values()) > 2, "no request was batched with another"
    for seed, answer in answers.items():  # different lengths in one batch: each cut to its own
        assert answer["texts"] == [t[:4 + 200 - seed] for t in expected[seed]]


def test_bulk_fail_and_report(client):
    good = {"model": "cat", "prime": "the ", "length": 10, "seed": 1}
    bad = {"model": "nope", "prime": "the "}
    ok = client.post("/generate/bulk", json={"requests": [good, {**good, "seed": 2}]})
    assert ok.status_code == 200 and [r["ok"] for r in ok.json()["results"]] == [True, True]
    assert ok.json()["results"][0]["result"]["texts"] == generate(client, length=10, seed=1).json()["texts"]
    failed = client.post("/generate/bulk", json={"requests": [good, bad]})
    assert failed.status_code == 404 and "cat" in failed.json()["detail"]
    report = client.post("/generate/bulk", json={"requests": [good, bad], "on_error": "report"}).json()
    assert [r["ok"] for r in report["results"]] == [True, False]
    assert report["results"][1]["status"] == 404
    assert client.post("/generate/bulk", json={"requests": [good] * 17}).status_code == 422


def sse(response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_stream_yields_the_same_text_as_generate(client):
    params = {"model": "cat", "prime": "the ", "length": 60, "temperature": 0.8, "seed": 3}
    with client.stream("GET", "/generate/stream", params=params) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        response.read()
    events = sse(response)
    assert events[-1][0] == "done"
    streamed = "".join(data["text"] for kind, data in events if kind == "message")
    assert len(events) == 61, "one event per character as it is made, then done"
    whole = generate(client, length=60, temperature=0.8, seed=3).json()["texts"][0]
    assert "the " + streamed == whole == events[-1][1]["text"]


def test_a_stream_refuses_a_parameter_it_does_not_take(client):
    """A stream is one sample: ``num_samples=4`` is a 422 naming it, not one sample in silence."""
    response = client.get("/generate/stream", params={"model": "cat", "length": 5, "num_samples": 4})
    assert response.status_code == 422 and "num_samples" in json.dumps(response.json()["detail"])


@pytest.mark.parametrize("body", ['{"model": "cat", "temperature": NaN}', '{"model": "cat", "top_p": Infinity}',
                                  '{"model": "cat", "prime": "the \\ud800"}'])
def test_a_value_json_cannot_write_back_is_still_a_422(client, body):
    """FastAPI's own 422 repeats the bad input, and NaN or a lone surrogate cannot be written as JSON."""
    answer = client.post("/generate", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert [(e["loc"][0], e["msg"] != "") for e in answer.json()["detail"]] == [("body", True)]


def test_a_tiny_temperature_gives_the_greedy_chart(client):
    chars = client.post("/next-char", json={"model": "cat", "prime": "the c", "temperature": 1e-40}).json()["chars"]
    assert [c["prob"] for c in chars][:2] == [1.0, 0.0]


def test_next_char_is_the_panels_chart(client, runs):
    from textlab.widgets import next_char_bars

    cat = load_folder(runs)["cat"]
    got = client.post("/next-char", json={"model": "cat", "prime": "the c", "temperature": 0.5, "top_k": 3}).json()
    bars = next_char_bars(cat.model, cat.vocab, "the c", 0.5, 3, None)
    assert [(c["char"], pytest.approx(c["prob"], abs=1e-6)) for c in got["chars"]] == bars
    assert sum(c["prob"] > 0 for c in got["chars"]) == 3
    assert next(c["shown"] for c in got["chars"] if c["char"] == " ") == "␣"


def test_the_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for control in ('id="model"', 'id="temperature"', 'id="top_k"', 'id="top_p"', 'id="length"',
                    'id="prime"', 'id="seed"', 'id="chart"', "EventSource"):
        assert control in page.text
    assert "http://" not in page.text and "https://" not in page.text, "no CDN: the page works offline"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("body, field", [
    ({"temperature": -1}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 1.5}, "top_p"),
    ({"length": 2001}, "length"), ({"num_samples": 17}, "num_samples"), ({"prime": ""}, "prime"),
    ({"prime": "x" * 1001}, "prime"), ({"seed": -1}, "seed"), ({"length": 2000, "num_samples": 9}, "length × num_samples"),
])
def test_bad_values_are_422_naming_the_field(client, body, field):
    response = generate(client, **body)
    assert response.status_code == 422
    assert field in json.dumps(response.json()["detail"], ensure_ascii=False)


def test_unknown_characters_are_400_naming_them_or_replaced(client):
    response = generate(client, prime="the Ж")
    assert response.status_code == 400 and "'Ж'" in response.json()["detail"]
    replaced = generate(client, prime="the Ж", unknown=" ", seed=0)
    assert replaced.status_code == 200 and replaced.json()["texts"][0].startswith("the  ")
    assert generate(client, prime="the Ж", unknown="Q").status_code == 400  # Q is not in the vocabulary either


def test_unknown_model_is_404_listing_the_names(client):
    response = generate(client, model="dog")
    assert response.status_code == 404 and "cat" in response.json()["detail"] and "gpt" in response.json()["detail"]


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "..", "cat/model.pt", "..%2Fsecret"])
def test_a_model_is_a_name_never_a_path(client, name):
    assert generate(client, model=name).status_code in (404, 422)
    assert client.post("/next-char", json={"model": name}).status_code in (404, 422)


def test_symlinks_out_of_the_folder_are_not_served(runs, tmp_path):
    (runs / "leak").symlink_to(tmp_path / "secret", target_is_directory=True)
    (runs / "leak2.pt").symlink_to(tmp_path / "secret" / "model.pt")
    (runs / "inside.pt").symlink_to(runs / "gpt.pt")  # a link that stays inside is fine
    with TestClient(create_app(load_folder(runs))) as c:
        assert {m["name"] for m in c.get("/models").json()} == {"cat", "gpt", "inside"}
        assert generate(c, model="leak").status_code == 404
        assert generate(c, model="leak2").status_code == 404


def test_a_name_in_any_script_is_served_and_one_with_a_space_is_skipped_saying_what_to_rename(runs, capsys):
    save_checkpoint(runs / "Ромео.pt", *tiny())
    save_checkpoint(runs / "my run" / "model.pt", *tiny())
    models = load_folder(runs)
    assert set(models) == {"cat", "gpt", "Ромео"}
    note = capsys.readouterr().out
    assert "skipping my run: a model name is letters (any script)" in note
    assert f"rename {runs / 'my run'} to {runs / 'my_run'}" in note
    with TestClient(create_app(models)) as c:
        assert generate(c, model="Ромео").status_code == 200
        assert c.get("/generate/stream", params={"model": "Ромео", "length": 3}).status_code == 200


def test_a_name_no_request_could_ask_for_is_refused_when_the_server_starts():
    with pytest.raises(TextlabError, match="'Shakespeare LSTM'.*e.g. 'Shakespeare_LSTM'"):
        serve.start_background({"Shakespeare LSTM": tiny()})


def test_over_the_queue_limit_is_429(runs):
    """One long job runs, one waits (the queue holds one sample), the third is refused at once."""
    models = load_folder(runs)
    models["big"] = Loaded(*tiny(hidden=256))
    app = create_app(models, Limits(max_batch=1, max_queue=1))
    batcher = app.state.registry.models["big"].batcher
    long = {"model": "big", "prime": "the ", "length": 2000, "temperature": 1.0}
    with TestClient(app) as c:
        answers = []
        first = threading.Thread(target=lambda: answers.append(c.post("/generate", json=long)))
        first.start()
        while not batcher.running_rows:
            time.sleep(0.001)
        second = threading.Thread(target=lambda: answers.append(c.post("/generate", json={**long, "seed": 1})))
        second.start()
        while not batcher.queued_rows:
            time.sleep(0.001)
        refused = c.post("/generate", json={**long, "length": 10})
        assert batcher.running_rows and batcher.queued_rows, "the long jobs ended too soon for this test"
        first.join()
        second.join()
    assert refused.status_code == 429 and "busy" in refused.json()["detail"]
    assert [a.status_code for a in answers] == [200, 200]


def test_past_the_time_budget_is_cut_off(runs):
    models = load_folder(runs)
    models["big"] = Loaded(*tiny(hidden=256))
    with TestClient(create_app(models, Limits(time_budget=0.05))) as c:
        response = c.post("/generate", json={"model": "big", "length": 2000, "num_samples": 8})
        assert response.status_code == 504 and "time budget" in response.json()["detail"]
        with c.stream("GET", "/generate/stream", params={"model": "big", "length": 2000}) as streamed:
            streamed.read()
        assert sse(streamed)[-1][0] == "error" and "time budget" in sse(streamed)[-1][1]["detail"]


@pytest.fixture
def slow_gpt2(monkeypatch):
    """GPT-2 played by a stand-in that takes 0.2 s a sample (no weights are loaded)."""
    from textlab import gpt2

    monkeypatch.setattr(gpt2, "load_pretrained", lambda name: (torch.nn.Linear(1, 1), "tokenizer"))
    monkeypatch.setattr(gpt2, "generate", lambda *args: time.sleep(0.2) or "a sample")


def test_gpt2_starts_no_sample_past_the_time_budget(runs, slow_gpt2):
    """A long request, the last items of a bulk, and a request waiting for GPT-2 get the 504 of the budget."""
    app = create_app(load_folder(runs), Limits(time_budget=0.3), gpt2="distilgpt2")
    one = {"model": "distilgpt2", "length": 5}
    with TestClient(app) as c:
        assert c.post("/generate", json=one).json()["texts"] == ["a sample"]
        long = c.post("/generate", json={**one, "num_samples": 4})
        assert long.status_code == 504 and "time budget" in long.json()["detail"]
        items = c.post("/generate/bulk", json={"requests": [one] * 3, "on_error": "report"}).json()["results"]
        assert items[0]["ok"] and items[-1]["status"] == 504  # the bulk's items share one budget
        lock = app.state.registry._gpt2_lock
        lock.acquire()
        holder = threading.Timer(1.0, lock.release)  # another request holds GPT-2 past the budget
        holder.start()
        waiting = c.post("/generate", json=one)
        holder.join()
        assert {m["name"]: m["prime"] for m in c.get("/models").json()}["distilgpt2"] == "\n"
    assert waiting.status_code == 504


def test_the_core_package_imports_without_fastapi():
    import subprocess
    import sys

    code = ("import sys; sys.modules['fastapi'] = None; import textlab, textlab.cli; "
            "from textlab.cli import main; sys.exit(main(['serve', 'runs']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "pip install 'textlab[serve]'" in done.stderr


def test_serve_in_background_answers_over_http_and_stops(tmp_path):
    import httpx

    model, vocab = tiny()
    server = serve.start_background({"cat": (model, vocab), "the": Loaded(model, vocab, prime="the ")})
    try:
        assert server.url.startswith("http://127.0.0.1:")
        got = httpx.post(server.url + "generate", json={"model": "cat", "prime": "the ", "length": 5, "seed": 0})
        assert got.status_code == 200
        primes = {m["name"]: m["prime"] for m in httpx.get(server.url + "models").json()}
        assert primes == {"cat": "\n", "the": "the "}, "a checkpoint keeps its prime, a bare pair starts at \\n"
    finally:
        server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "health")


@pytest.fixture
def colab(monkeypatch):
    """This process as Colab sees it: the tests' stub ``google.colab`` imported (see test_colab.py)."""
    monkeypatch.syspath_prepend(str(Path(__file__).with_name("colab_stub")))
    import google.colab  # noqa: F401

    yield
    for name in ("google.colab.output", "google.colab"):
        sys.modules.pop(name, None)


def test_in_colab_the_server_points_to_the_page_shown_not_to_a_dead_link(colab):
    """Colab's browser cannot open the machine's 127.0.0.1; the page is shown through its port proxy."""
    server = serve.start_background({"cat": tiny()})
    try:
        shown = server._repr_html_()
    finally:
        server.stop()
    assert "127.0.0.1" not in shown and f"port {server.server.config.port}" in shown
    assert "Colab's port proxy" in shown


def shown_in_notebook(monkeypatch) -> tuple[serve.BackgroundServer, list]:
    """``serve_in_notebook``'s server and what it displayed: an IFrame, or the port Colab's proxy shows."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    if in_colab():
        from google.colab import output

        monkeypatch.setattr(output, "serve_kernel_port_as_iframe", lambda port, height: shown.append(port))
    server = serve.serve_in_notebook({"cat": tiny()})
    server.stop()
    return server, shown


def test_in_a_notebook_the_page_is_an_iframe_of_the_loopback_address(monkeypatch):
    server, shown = shown_in_notebook(monkeypatch)
    assert len(shown) == 1 and shown[0].src == server.url and "127.0.0.1" in server.url


def test_in_colab_the_page_goes_through_the_port_proxy(colab, monkeypatch):
    server, shown = shown_in_notebook(monkeypatch)
    assert shown == [server.server.config.port]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_on_loopback_and_stops_cleanly(runs, signum):
    """``python -m textlab serve DIR`` prints its address, answers, and ends on SIGTERM or Ctrl-C.

    After its graceful shutdown uvicorn may re-raise the signal, so the status can say what stopped it.
    """
    import httpx
    from browser_support import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "textlab", "serve", str(runs), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first and "cat, gpt" in first
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.05)
        proc.send_signal(signum)
        assert proc.wait(timeout=15) in (0, -signum, 128 + signum)
        assert "Traceback" not in proc.stdout.read()
    finally:
        proc.kill()
        proc.stdout.close()


def test_gpt2_is_listed_where_the_hub_answers_and_generates(runs, monkeypatch, tmp_path_factory):
    """GPT-2 (here a tiny one built offline, in place of distilgpt2) serves /generate, not the char endpoints."""
    pytest.importorskip("transformers")
    from test_gpt2 import model_folder

    from textlab import gpt2

    monkeypatch.setattr(gpt2, "hub_available", lambda: True)
    assert serve.gpt2_name() == "distilgpt2"
    tiny_gpt2 = gpt2.load_pretrained(model_folder.__wrapped__(tmp_path_factory), device="cpu")
    monkeypatch.setattr(gpt2, "load_pretrained", lambda name: tiny_gpt2)
    with TestClient(create_app(load_folder(runs), gpt2="distilgpt2")) as c:
        assert {m["name"]: m["kind"] for m in c.get("/models").json()}["distilgpt2"] == "gpt2"
        body = {"model": "distilgpt2", "prime": "The cat", "length": 30, "seed": 5, "num_samples": 2}
        texts = c.post("/generate", json=body).json()["texts"]
        assert texts == [gpt2.generate(*tiny_gpt2, "The cat", 30, seed=s) for s in (5, 6)]
        assert c.post("/next-char", json={"model": "distilgpt2"}).status_code == 400
        assert c.get("/generate/stream", params={"model": "distilgpt2"}).status_code == 400
        # A bulk of more GPT-2 requests than may wait at once: they take turns, none is turned away.
        monkeypatch.setattr(gpt2, "generate", lambda *args: time.sleep(0.1) or "a sample")
        bulk = [{"model": "distilgpt2", "prime": "The", "length": 5}] * (serve.GPT2_MAX_WAITING + 2)
        results = c.post("/generate/bulk", json={"requests": bulk, "on_error": "report"}).json()["results"]
        assert [r["ok"] for r in results] == [True] * len(bulk)
