"""Checkpoints: round trip, plain torch.load, damaged and foreign files, atomic saves, models by name."""

from __future__ import annotations

import json
import os
import random
import warnings

import pytest
import torch

from textlab import (CharLSTM, CharVocab, CheckpointError, TextlabError, TrainConfig, list_models, load_checkpoint,
                     load_model, sample, save_checkpoint)

HISTORY = [{"step": 10, "chars_seen": 640, "seconds": 0.5, "train_bpc": 3.1, "val_bpc": 3.0, "lr": 0.004}]


@pytest.fixture
def saved(tiny_lstm, tmp_path):
    model, vocab = tiny_lstm
    path = save_checkpoint(tmp_path / "model.pt", model, vocab, TrainConfig(steps=10), HISTORY)
    return path, model, vocab


def test_round_trip_gives_the_same_model(saved):
    path, model, vocab = saved
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, CharLSTM) and not loaded.model.training
    assert loaded.model.config == model.config
    assert loaded.vocab == vocab
    assert loaded.train_config == TrainConfig(steps=10) and loaded.history == HISTORY
    for (name, p), (_, q) in zip(model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(p, q), name
    assert sample(loaded.model, loaded.vocab, "the ", 60, seed=3) == sample(model, vocab, "the ", 60, seed=3)


def test_round_trip_of_a_trained_model_without_train_config(trained_lstm, tmp_path):
    model, vocab = trained_lstm
    loaded = load_checkpoint(save_checkpoint(tmp_path / "t.pt", model, vocab))
    assert loaded.train_config is None and loaded.history == []
    assert sample(loaded.model, loaded.vocab, "the ", 80, temperature=0.8, seed=0) == \
        sample(model, vocab, "the ", 80, temperature=0.8, seed=0)


def test_file_loads_with_plain_torch_load_weights_only(saved):
    path, model, vocab = saved
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == "textlab-checkpoint" and payload["version"] == 1
    assert payload["vocab"] == vocab.chars and payload["model_config"]["kind"] == "lstm"
    assert set(payload["state_dict"]) == set(model.state_dict())


def test_save_makes_folders_and_leaves_no_temporary_files(tiny_lstm, tmp_path):
    model, vocab = tiny_lstm
    path = tmp_path / "runs" / "a" / "model.pt"
    for _ in range(2):  # the second save replaces the first
        save_checkpoint(path, model, vocab)
    assert sorted(os.listdir(path.parent)) == ["model.pt"]


def test_failed_save_keeps_the_old_file(saved, monkeypatch):
    path, model, vocab = saved
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, vocab)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.pt"]


# ---------------------------------------------------------------------------- files that are not checkpoints

class RunsCodeWhenUnpickled:
    """A pickle payload that would run a command on load: what a malicious .pt file can hold."""

    def __reduce__(self):
        return (os.system, (f"touch {os.environ['TEXTLAB_TEST_MARKER']}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("TEXTLAB_TEST_MARKER", str(marker))
    path = tmp_path / "evil.pt"
    torch.save({"format": "textlab-checkpoint", "payload": RunsCodeWhenUnpickled()}, path)
    with pytest.raises(CheckpointError, match=r"not a textlab checkpoint: it holds Python objects \(posix.system\)"):
        load_checkpoint(path)
    assert not marker.exists(), "unpickling ran the file's code: load with weights_only=True"


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint.*corrupt or truncated"):
        load_checkpoint(path)


def test_damaged_file_gives_the_error_alone(tmp_path):
    path = tmp_path / "damaged.pt"
    path.write_bytes(b"\x80" + random.Random(0).randbytes(2048))  # pickle's PROTO opcode, then noise
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(path)
    assert not seen, f"torch's warnings bury the one-line error: {[str(w.message)[:60] for w in seen]}"


def test_truncated_file(saved):
    path, *_ = saved
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_bare_state_dict(tiny_lstm, tmp_path):
    model, _ = tiny_lstm
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a textlab checkpoint.*bare state_dict.*save_checkpoint"):
        load_checkpoint(path)


def test_json_file(tmp_path):
    path = tmp_path / "config.pt"
    path.write_text(json.dumps({"format": "textlab-checkpoint", "version": 1}))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_version_mismatch(saved):
    path, *_ = saved
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="version 99.*reads version 1"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config(saved):
    path, *_ = saved
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["hidden_size"] += 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_a_whole_pickled_model_is_named_as_such(tiny_lstm, tmp_path):
    model, _ = tiny_lstm
    path = tmp_path / "whole.pt"
    torch.save(model, path)  # the model object, not its weights
    with pytest.raises(CheckpointError, match=r"holds Python objects \(textlab.models.CharLSTM\).*torch.save\(model\)"):
        load_checkpoint(path)


def test_a_vocabulary_that_does_not_fit_the_model_is_refused(saved, tiny_lstm, tmp_path):
    model, vocab = tiny_lstm
    with pytest.raises(CheckpointError, match=f"vocabulary has 3 characters but the model {len(vocab)}"):
        save_checkpoint(tmp_path / "bad.pt", model, CharVocab("abc"))
    assert not (tmp_path / "bad.pt").exists()
    path, *_ = saved
    payload = torch.load(path, weights_only=True)
    payload["vocab"] = payload["vocab"][:-1]  # a tampered file: its model writes one character more
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"damaged: its vocabulary has {len(vocab) - 1} characters"):
        load_checkpoint(path)


def test_a_train_config_that_is_not_a_dict(saved):
    path, *_ = saved
    payload = torch.load(path, weights_only=True)
    payload["train_config"] = ["steps", 10]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")


# ---------------------------------------------------------------------------- models by name

def test_list_and_load_models_by_name(tiny_lstm, trained_lstm, tmp_path):
    small, vocab = tiny_lstm
    trained, trained_vocab = trained_lstm
    save_checkpoint(tmp_path / "small.pt", small, vocab)
    save_checkpoint(tmp_path / "shakespeare" / "model.pt", trained, trained_vocab)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "empty").mkdir()
    models = list_models(tmp_path)
    assert models == {"shakespeare": tmp_path / "shakespeare" / "model.pt", "small": tmp_path / "small.pt"}
    loaded = load_model("shakespeare", tmp_path)
    assert loaded.model.config == trained.config and loaded.vocab == trained_vocab
    assert load_model("small", tmp_path).model.config.num_layers == 2
    with pytest.raises(CheckpointError, match="no model 'big'.*found: shakespeare, small"):
        load_model("big", tmp_path)


def test_list_models_of_a_missing_folder(tmp_path):
    assert list_models(tmp_path / "nothing") == {}
    with pytest.raises(CheckpointError, match="found: none"):
        load_model("any", tmp_path / "nothing")


def test_the_prime_is_saved_and_old_checkpoints_default_to_a_new_line(tiny_lstm, tmp_path):
    model, vocab = tiny_lstm
    with_prime = load_checkpoint(save_checkpoint(tmp_path / "p.pt", model, vocab, prime="the "))
    assert with_prime.prime == "the "
    old = tmp_path / "old.pt"  # a checkpoint written before primes were stored: no "prime" key
    save_checkpoint(old, model, vocab)
    assert "prime" not in torch.load(old, weights_only=True) and load_checkpoint(old).prime == "\n"


def test_a_device_this_machine_lacks_is_a_clear_error(saved):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TextlabError, match="device 'cuda' is not available on this machine"):
        load_checkpoint(saved[0], device="cuda")
    assert load_checkpoint(saved[0], device="auto").model.config == saved[1].config


@pytest.mark.parametrize("prime", ["", "Жизнь", 7])
def test_a_prime_the_vocabulary_cannot_write_is_not_saved(tiny_lstm, tmp_path, prime):
    model, vocab = tiny_lstm
    with pytest.raises(TextlabError, match="must be text made of the vocabulary's characters"):
        save_checkpoint(tmp_path / "p.pt", model, vocab, prime=prime)
    assert not (tmp_path / "p.pt").exists()
