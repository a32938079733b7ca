"""The GPT-2 bridge, on a tiny GPT-2 and a byte-level BPE tokenizer built here (no download).

The tiny model goes through the real loading code: saved with ``save_pretrained`` to a
temporary folder and read back with ``load_pretrained(folder)``.
"""

from __future__ import annotations

import http.server
import math
import socket
import sys
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("transformers")

import textlab  # noqa: E402
from textlab import TextlabError, gpt2  # noqa: E402
from textlab.gpt2 import (PretrainedUnavailable, bpc, chars_per_token, fine_tune, generate,  # noqa: E402
                          hub_available, load_pretrained, token_pieces)

ENGLISH = ("The cat sat on the mat, and the dog sat on the log. Where the river bends, the old mill "
           "still turns; nobody remembers who built it, or why the wheel never stops. ") * 30
RUSSIAN = "Мой дядя самых честных правил, когда не в шутку занемог, он уважать себя заставил."
CONTEXT = 64  # the tiny model's n_positions
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny GPT-2 (2 layers, width 32) and a BPE tokenizer trained on ENGLISH, saved like a hub model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([ENGLISH], trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = GPT2TokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=CONTEXT, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny(model_folder):
    """A fresh copy of the tiny model and its tokenizer, loaded through ``load_pretrained``."""
    return load_pretrained(model_folder, device="cpu")


def test_loads_a_saved_model_folder(tiny):
    model, tokenizer = tiny
    assert not model.training and model.config.n_positions == CONTEXT
    assert tokenizer.decode(tokenizer("the cat")["input_ids"]) == "the cat"


def test_bpc_is_token_nll_over_characters(tiny):
    model, tokenizer = tiny
    text = "The cat sat on the log."
    ids = torch.tensor([tokenizer.bos_token_id] + gpt2.encode(tokenizer, text))
    assert len(ids) <= CONTEXT
    with torch.no_grad():
        logits = model(ids[None]).logits[0]
    nats = F.cross_entropy(logits[:-1], ids[1:], reduction="sum").item()
    assert bpc(model, tokenizer, text) == pytest.approx(nats / (math.log(2) * len(text)), rel=1e-5)


def test_sliding_window_scores_every_token_once_with_its_context(tiny):
    model, tokenizer = tiny
    text = ENGLISH[:120]
    ids = [tokenizer.bos_token_id] + gpt2.encode(tokenizer, text)
    window = 16
    assert len(ids) > 2 * window
    nats = 0.0
    with torch.no_grad():  # by hand: token t predicted from the (at most) 16 tokens before it
        for t in range(1, len(ids)):
            context = torch.tensor(ids[max(0, t - window):t])
            nats -= model(context[None]).logits[0, -1].log_softmax(-1)[ids[t]].item()
    assert bpc(model, tokenizer, text, context=window - 1, stride=1) == pytest.approx(
        nats / (math.log(2) * len(text)), rel=1e-5)
    # Bigger strides give each token less context, never a different count of tokens.
    assert bpc(model, tokenizer, text, context=8, stride=8) == pytest.approx(
        bpc(model, tokenizer, text, context=15, stride=1), rel=0.1)
    # The same path as the character models: textlab.evaluate on the adapted model.
    assert bpc(model, tokenizer, text) == pytest.approx(textlab.evaluate(
        gpt2.TokenModel(model), torch.tensor(ids), chars=len(text)), rel=1e-6)


def test_bpc_rejects_bad_windows(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="stride"):
        bpc(model, tokenizer, ENGLISH, context=8, stride=0)
    with pytest.raises(ValueError, match="block_size"):
        bpc(model, tokenizer, ENGLISH, context=CONTEXT, stride=8)
    with pytest.raises(ValueError, match="empty"):
        bpc(model, tokenizer, "")


def test_english_tokens_are_longer_than_russian_ones(tiny):
    _, tokenizer = tiny
    english, russian = chars_per_token(tokenizer, ENGLISH[:300]), chars_per_token(tokenizer, RUSSIAN)
    assert english > 1.5 and russian < 1.0  # Cyrillic letters are cut into bytes
    assert "".join(token_pieces(tokenizer, "the old mill")) == "the old mill"
    assert "\N{REPLACEMENT CHARACTER}" in "".join(token_pieces(tokenizer, RUSSIAN))


def test_generate_is_reproducible_and_exactly_as_long_as_asked(tiny):
    model, tokenizer = tiny
    a, b, c = (generate(model, tokenizer, "The cat", 60, seed=s) for s in (1, 1, 2))
    assert a == b != c
    assert a.startswith("The cat") and len(a) == len("The cat") + 60
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, "The", 10, temperature=-1)


class WritesCyrillic(torch.nn.Module):
    """The tiny GPT-2, its logits steered to write "я" for ever: byte D1, then byte 8F, then D1 …"""

    def __init__(self, model, tokenizer):
        super().__init__()
        self.model, self.config = model, model.config
        self.first, self.second = gpt2.encode(tokenizer, "я")  # one letter, two byte-level tokens

    def forward(self, input_ids, cache=None, **kwargs):  # `cache`: transformers 5.24's name for it
        out = self.model(input_ids, cache=cache, **kwargs)
        after = torch.where(input_ids == self.first, self.second, self.first)  # (B, T)
        out.logits = out.logits + 100 * F.one_hot(after, out.logits.shape[-1])
        return out


def test_generation_never_ends_inside_a_character(tiny):
    model, tokenizer = tiny
    writer = WritesCyrillic(model, tokenizer)
    assert gpt2.decode(tokenizer, [writer.first]) == "\N{REPLACEMENT CHARACTER}"  # half a letter
    for length in (1, 2, 3, 7):
        assert generate(writer, tokenizer, "A", length, temperature=0) == "A" + "я" * length
    assert generate(writer, tokenizer, "A", 40, seed=0) == "A" + "я" * 40  # sampling too (p ≈ 1)


def test_greedy_generation_with_the_cache_equals_rereading(tiny):
    model, tokenizer = tiny
    prime, length = "The dog", 200
    ids = [tokenizer.bos_token_id] + gpt2.encode(tokenizer, prime)
    new, text = [], ""
    with torch.no_grad():
        while len(text) < length:  # the slow way: re-read the last CONTEXT tokens every time
            new.append(int(model(torch.tensor([(ids + new)[-CONTEXT:]])).logits[0, -1].argmax()))
            text = tokenizer.decode(new, clean_up_tokenization_spaces=False)
    assert len(ids) + len(new) > CONTEXT  # the cache filled up and was rebuilt
    assert generate(model, tokenizer, prime, length, temperature=0) == prime + text[:length]


def test_generation_passes_the_cache_by_the_name_this_transformers_uses(tiny):
    model, tokenizer = tiny
    with warnings.catch_warnings():  # transformers 5.24 warns on the old name, past_key_values
        warnings.simplefilter("error", FutureWarning)
        text = generate(model, tokenizer, "The dog", 40, temperature=0)
    assert len(text) == len("The dog") + 40


def test_sampling_leaves_the_model_in_the_mode_it_found(tiny):
    model, tokenizer = tiny
    model.train()  # as during fine-tuning, when a callback writes a sample
    generate(model, tokenizer, "The", 5, seed=0)
    assert model.training  # dropout stays on for the rest of the run
    model.eval()
    generate(model, tokenizer, "The", 5, seed=0)
    assert not model.training


class WritesEndOfText(torch.nn.Module):
    """The tiny GPT-2, its logits steered to end the document at once with <|endoftext|>."""

    def __init__(self, model, tokenizer):
        super().__init__()
        self.model, self.config, self.end = model, model.config, tokenizer.eos_token_id

    def forward(self, input_ids, cache=None, **kwargs):
        out = self.model(input_ids, cache=cache, **kwargs)
        out.logits = out.logits + 100 * F.one_hot(torch.tensor(self.end), out.logits.shape[-1])
        return out


def test_a_sample_is_one_document_without_end_of_text(tiny):
    model, tokenizer = tiny
    writer = WritesEndOfText(model, tokenizer)
    for settings in ({"temperature": 0}, {"seed": 0}, {"seed": 0, "top_k": 1}):
        text = generate(writer, tokenizer, "The", 30, **settings)
        assert "<|endoftext|>" not in text and len(text) == len("The") + 30, settings


def test_the_text_end_of_text_is_characters_not_the_special_token(tiny):
    model, tokenizer = tiny
    ids = gpt2.encode(tokenizer, "a<|endoftext|>b")
    assert tokenizer.eos_token_id not in ids and len(ids) > 3  # 13 characters, several tokens
    assert gpt2.decode(tokenizer, ids) == "a<|endoftext|>b"


def test_a_tokenizer_that_does_not_match_the_model_is_refused(tiny):
    from transformers import GPT2Config, GPT2LMHeadModel

    _, tokenizer = tiny  # ids up to ~320; this model knows only 100 tokens
    small = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=CONTEXT, n_embd=8, n_layer=1, n_head=2)).eval()
    assert max(gpt2.encode(tokenizer, "The cat")) >= 100
    for call in (lambda: bpc(small, tokenizer, "The cat"),
                 lambda: generate(small, tokenizer, "The cat", 5),
                 lambda: fine_tune(small, tokenizer, ENGLISH, "The cat", steps=1, device="cpu", progress=False)):
        with pytest.raises(TextlabError, match="tokenizer does not match the model.*load_pretrained"):
            call()


def test_empty_texts_and_zero_batches_are_refused(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="train_text is empty"):
        fine_tune(model, tokenizer, "", ENGLISH, steps=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="val_text is empty"):
        fine_tune(model, tokenizer, ENGLISH, "", steps=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        bpc(model, tokenizer, ENGLISH, batch_size=0)


def test_fine_tuning_lowers_the_bits_per_character(tiny):
    model, tokenizer = tiny
    train_text, val_text = ENGLISH, ENGLISH[:1500]
    before = bpc(model, tokenizer, val_text)
    seen = []
    result = fine_tune(model, tokenizer, train_text, val_text, steps=30, lr=1e-2, warmup=0.1,
                       batch_size=8, seq_len=32, eval_every=10, device="cpu", progress=False,
                       callbacks=[SimpleNamespace(on_eval=lambda record: seen.append(dict(record)))])
    history = result.history
    assert seen == history  # a callback (a live plot) sees the records in characters too
    assert [row["step"] for row in history] == [0, 10, 20, 30] and result.stopped == "budget"
    assert history[0]["val_bpc"] == pytest.approx(before)
    assert set(history[-1]) == {"step", "seconds", "tokens_seen", "lr", "train_bpc", "dev_bpc", "val_bpc"}
    assert history[0]["train_bpc"] is None and history[-1]["tokens_seen"] == 30 * 8 * 32
    after = bpc(model, tokenizer, val_text)
    assert not model.training and result.model is model
    kept = min(history, key=lambda row: row["dev_bpc"])  # the weights kept are chosen on dev, not val
    assert after == pytest.approx(kept["val_bpc"]) == pytest.approx(result.val_bpc)
    assert after < before - 1.0, f"{before:.2f} → {after:.2f} bpc"
    # train_bpc is in bits per character: per-token loss / characters per token, near the dev score
    assert history[-1]["train_bpc"] == pytest.approx(history[-1]["dev_bpc"], rel=0.5)


def test_a_nan_during_fine_tuning_keeps_the_best_weights(tiny):
    model, tokenizer = tiny
    calls = []

    def poison(module, args, output):  # the third training step's logits become NaN
        if module.training:
            calls.append(1)
            if len(calls) == 3:
                output.logits = output.logits * math.nan
        return output

    model.register_forward_hook(poison)
    result = fine_tune(model, tokenizer, ENGLISH, ENGLISH[:600], steps=10, lr=1e-2, batch_size=4, seq_len=32,
                       eval_every=1, device="cpu", progress=False)
    assert result.stopped == "nan" and "lr=" in result.message
    assert [row["step"] for row in result.history] == [0, 1, 2]
    assert not model.training and all(torch.isfinite(p).all() for p in model.parameters())
    assert bpc(model, tokenizer, ENGLISH[:600]) == pytest.approx(result.val_bpc)


def test_a_long_cpu_run_of_a_big_model_is_refused(tiny, monkeypatch):
    model, tokenizer = tiny
    monkeypatch.setattr(gpt2, "CPU_BIG_MODEL_PARAMS", 1_000)  # treat the tiny model as a real GPT-2
    ran = model.register_forward_pre_hook(lambda *_: pytest.fail("the model ran before the refusal"))
    with pytest.raises(TextlabError, match="GPU"):
        fine_tune(model, tokenizer, ENGLISH, ENGLISH, minutes=5, device="cpu")
    with pytest.raises(TextlabError, match="steps ≤ 50"):
        fine_tune(model, tokenizer, ENGLISH, ENGLISH, steps=500, device="cpu")
    ran.remove()  # refused before any work
    result = fine_tune(model, tokenizer, ENGLISH, ENGLISH, steps=2, batch_size=2, seq_len=16, eval_every=2,
                       device="cpu", progress=False)  # a taste is allowed
    assert result.history[-1]["step"] == 2
    with pytest.raises(TypeError, match="unknown training option"):
        fine_tune(model, tokenizer, ENGLISH, ENGLISH, epochs=3)


def test_fine_tuning_on_a_cpu_is_a_taste_the_cpu_rule_allows(monkeypatch):
    monkeypatch.delenv("TEXTLAB_QUICK", raising=False)
    cpu = textlab.config.fine_tune_config("cpu")
    assert (cpu.steps, cpu.minutes, cpu.batch_size) == (20, None, 2) and cpu.steps <= gpt2.CPU_MAX_STEPS
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = textlab.config.fine_tune_config("cuda")
    assert (gpu.steps, gpu.minutes, gpu.batch_size) == (None, 3.0, 8)  # sized for a T4


def test_offline_is_known_at_once_and_said_in_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(gpt2, "_probe", lambda *_: pytest.fail("asked the network although offline was set"))
    assert hub_available() is False
    with pytest.raises(PretrainedUnavailable, match="offline") as error:
        load_pretrained("distilgpt2", cache_dir=tmp_path)  # an empty cache: the weights are not here
    assert "\n" not in str(error.value)


def test_a_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(PretrainedUnavailable, match="could not load"):
        load_pretrained(tmp_path)


def test_without_transformers_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes ``import transformers`` fail
    with pytest.raises(PretrainedUnavailable, match="pip install transformers"):
        load_pretrained("distilgpt2")


class _Hub(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_hub_probe_asks_once(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    assert hub_available() is True
    server.shutdown()
    server.server_close()
    assert hub_available() is True  # remembered: not asked again

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert hub_available(timeout=1.0) is False

    with socket.socket() as silent:  # a server that takes the connection and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        assert hub_available(timeout=0.2) is False  # waited out, not mistaken for an answer


def test_notebook_03_runs_its_gpt2_cells_with_a_model_and_its_own_tokenizer(model_folder, mirror_env, tmp_path,
                                                                           monkeypatch):
    """Offline the notebook's GPT-2 cells skip, so the saved outputs never run them: run them here, in
    QUICK mode, with the tiny model in place of distilgpt2. Its tokenizer is not GPT-2's, so the cells
    must score, sample and fine-tune with the one ``load_pretrained`` returned."""
    nbformat, nbclient = pytest.importorskip("nbformat"), pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "03_gpt2_compare.ipynb", as_version=4)
    swaps = {'PRETRAINED = "distilgpt2"': f'PRETRAINED = {str(model_folder)!r}',
             "FINE_TUNE_ON_CPU = False": "FINE_TUNE_ON_CPU = True"}
    for old, new in swaps.items():
        [cell] = [c for c in nb.cells if old in c.source]
        cell.source = cell.source.replace(old, new)
    monkeypatch.setenv("TEXTLAB_QUICK", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    [table] = [o["text"] for c in nb.cells if 'show_table(results, missing="not available")' in c.source
               for o in c.outputs if "text" in o]
    rows = {line.split("  ")[0]: line for line in table.splitlines()}
    for name in ("GPT-2 zero-shot", "GPT-2 fine-tuned"):
        assert f"sliding window of {CONTEXT} tokens" in rows[name] and "not available" not in rows[name]
