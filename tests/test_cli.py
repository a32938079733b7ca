"""The command line: ``python -m textlab corpora | train | sample``, and its one-line errors."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from textlab import load_checkpoint, load_corpus, registry
from textlab.cli import main


def run_cli(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m textlab ARGS`` in a fresh interpreter, as a student would run it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **env_extra}
    return subprocess.run([sys.executable, "-m", "textlab", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def trained_run(shared_data, tmp_path_factory):
    """One short CLI training run on tiny_shakespeare, shared by the tests below."""
    root = tmp_path_factory.mktemp("cli")
    env = {"TEXTLAB_MIRROR": str(shared_data), "TEXTLAB_CACHE": str(root / "cache")}
    out = root / "runs" / "shakespeare"
    proc = run_cli(["train", "--corpus", "tiny_shakespeare", "--steps", "30", "--eval-every", "15",
                    "--hidden-size", "32", "--out", str(out)], env, root)
    return proc, out, env


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------- corpora

def test_corpora_lists_the_names(mirror_env, capsys):
    assert main(["corpora"]) == 0
    out = capsys.readouterr().out
    for name in registry():
        assert re.search(rf"^{name}\s+\w\w\s+[\d.]+MB\s+no\s", out, re.M), name


def test_corpora_shows_what_is_cached(mirror_env, capsys):
    load_corpus("onegin_ru")
    main(["corpora"])
    assert re.search(r"^onegin_ru\s+ru\s+[\d.]+MB\s+yes\s", capsys.readouterr().out, re.M)


# ---------------------------------------------------------------------------- train and sample

def test_train_prints_val_bpc_last_and_writes_model_and_plot(trained_run):
    proc, out, _ = trained_run
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"val_bpc=\d+\.\d{3}", lines[-1]), lines[-1]
    assert lines[0].startswith("corpus tiny_shakespeare: 1,115,394 chars")
    assert "--- sample, temperature 0.8, prime 'ROMEO:\\n' ---\nROMEO:\n" in proc.stdout  # the registry's prime
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = load_checkpoint(out / "model.pt")
    assert loaded.model.config.hidden_size == 32
    assert [r["step"] for r in loaded.history] == [0, 15, 30]
    assert float(lines[-1].split("=")[1]) < 6.1  # log2(65) ≈ 6.02: it must be no worse than guessing
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "model.pt"]


def test_sample_prints_text_starting_with_the_prime(trained_run):
    _, out, env = trained_run
    proc = run_cli(["sample", str(out / "model.pt"), "--prime", "ROMEO:", "--length", "50", "--seed", "1"],
                   env, out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ROMEO:") and len(proc.stdout) == len("ROMEO:") + 50 + 1


def test_sample_by_name_with_several_samples(trained_run, capsys):
    _, out, _ = trained_run
    code = main(["sample", "shakespeare", "--models", str(out.parent), "--prime", "A", "--length", "20",
                 "--num-samples", "3", "--temperature", "0", "--seed", "2"])
    assert code == 0
    samples = re.split(r"^--- sample \d ---\n", capsys.readouterr().out, flags=re.M)
    assert samples[0] == "" and len(samples) == 4
    assert all(s.startswith("A") and len(s) == len("A") + 20 + 1 for s in samples[1:])
    assert samples[1] == samples[2] == samples[3]  # temperature 0: greedy, the same every time


def test_sample_from_a_run_folder(trained_run, capsys):
    _, out, _ = trained_run
    assert main(["sample", str(out), "--prime", "A", "--length", "20", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("A")


def test_a_text_without_a_new_line_trains_and_samples(tmp_path, capsys):
    path = tmp_path / "one_line.txt"
    path.write_text("abcab " * 400, encoding="utf-8")
    code = main(["train", "--text", str(path), "--steps", "4", "--eval-every", "2", "--hidden-size", "8",
                 "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "prime 'a'" in out and re.fullmatch(r"val_bpc=\d+\.\d{3}", out.splitlines()[-1])


# ---------------------------------------------------------------------------- errors: one line, exit 2

def test_unknown_corpus(mirror_env, tmp_path, capsys):
    code = main(["train", "--corpus", "nope", "--steps", "5", "--out", str(tmp_path / "o")])
    assert_one_line_error(code, capsys.readouterr().err, "unknown corpus 'nope'", "tiny_shakespeare")
    assert not (tmp_path / "o").exists()


def test_missing_text_file(tmp_path, capsys):
    code = main(["train", "--text", str(tmp_path / "missing.txt"), "--steps", "5", "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "no such file", "missing.txt")


def test_text_in_the_wrong_encoding(tmp_path, capsys):
    path = tmp_path / "old.txt"
    path.write_bytes("Мой дядя самых честных правил ".encode("cp1251") * 100)
    code = main(["train", "--text", str(path), "--steps", "5", "--out", str(tmp_path / "o")])
    assert_one_line_error(code, capsys.readouterr().err, "cp1251")


def test_bad_temperature(trained_run, capsys):
    _, out, _ = trained_run
    code = main(["sample", str(out / "model.pt"), "--temperature", "-1"])
    assert_one_line_error(code, capsys.readouterr().err, "temperature must be")


def test_prime_with_unknown_characters(trained_run, capsys):
    _, out, _ = trained_run
    code = main(["sample", str(out / "model.pt"), "--prime", "Жизнь"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "not in the vocabulary", "'Ж'", "--prime")
    assert "unknown=" not in err, "the command line has no such option"


def test_corrupt_checkpoint_in_a_fresh_interpreter(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(random.Random(0).randbytes(2048))  # the same damage every run
    proc = run_cli(["sample", str(path)], {}, tmp_path)
    assert proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, "not a readable checkpoint")


@pytest.mark.parametrize("option", [["--steps", "0"], ["--minutes", "-1"], ["--eval-every", "0"],
                                    ["--batch-size", "0"], ["--seq-len", "0"], ["--patience", "0"]])
def test_budget_must_be_positive(mirror_env, tmp_path, capsys, option):
    code = main(["train", "--corpus", "onegin_ru", *option, "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert_one_line_error(code, err, f"{option[0]} must be")
    assert out == "", "refused before anything is loaded or printed"
    assert not (tmp_path / "o").exists()


def test_a_run_that_never_beats_the_untrained_model_saves_nothing(mirror_env, tmp_path, capsys):
    code = main(["train", "--corpus", "onegin_ru", "--steps", "4", "--eval-every", "2", "--lr", "1e9", "--no-progress",
                 "--hidden-size", "8", "--out", str(tmp_path / "o")])
    assert_one_line_error(code, capsys.readouterr().err, "no evaluation beat the untrained model", "--lr")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device, message", [("foo", "unknown device 'foo'"), ("cuda:7", "not available")])
def test_a_device_that_is_not_here(mirror_env, tmp_path, capsys, device, message):
    code = main(["train", "--corpus", "onegin_ru", "--device", device, "--steps", "5", "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, message)


def test_unknown_model_name(tmp_path, capsys):
    code = main(["sample", "nobody", "--models", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "no model 'nobody'")


# ---------------------------------------------------------------------------- review fixes

def one_line_text(tmp_path: Path) -> Path:
    """A text without a new line, with an accented letter: 6 characters a tiny model learns in seconds."""
    path = tmp_path / "one_line.txt"
    path.write_text("café ab " * 400, encoding="utf-8")
    return path


def train_quickly(text: Path, out: Path, *extra: str) -> int:
    return main(["train", "--text", str(text), "--steps", "4", "--eval-every", "2", "--hidden-size", "8",
                 "--no-progress", "--out", str(out), *extra])


def test_train_never_replaces_a_saved_model_without_overwrite(trained_run, tmp_path, capsys):
    _, out, _ = trained_run
    before = (out / "model.pt").read_bytes()
    # Refused before the text is even looked for: this file does not exist.
    code = main(["train", "--text", str(tmp_path / "missing.txt"), "--steps", "5", "--out", str(out)])
    assert_one_line_error(code, capsys.readouterr().err, f"{out / 'model.pt'} already holds a trained model (val ",
                          " bits/char at step 30)", "pass --overwrite to replace it, or --out another folder")
    assert (out / "model.pt").read_bytes() == before


def test_overwrite_replaces_a_saved_model(tmp_path, capsys):
    text, out = one_line_text(tmp_path), tmp_path / "o"
    assert train_quickly(text, out) == 0
    assert train_quickly(text, out) == 2
    assert train_quickly(text, out, "--overwrite", "--seed", "1") == 0
    assert load_checkpoint(out / "model.pt").train_config.seed == 1


def test_an_unwritable_out_is_refused_before_training(tmp_path, capsys, monkeypatch):
    import textlab.training

    monkeypatch.setattr(textlab.training, "train_on_text", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "a_file").write_text("not a folder")
    code = train_quickly(one_line_text(tmp_path), tmp_path / "a_file" / "run")
    out, err = capsys.readouterr()
    assert_one_line_error(code, err, f"cannot write to --out {tmp_path / 'a_file' / 'run'}")
    assert out == ""


def test_a_failed_run_leaves_no_folders_from_the_write_check(tmp_path, capsys):
    code = main(["train", "--text", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a" / "b" / "c")])
    assert_one_line_error(code, capsys.readouterr().err, "no such file")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, message", [(["--minutes", "nan"], "--minutes must be > 0, not nan"),
                                             (["--lr", "inf"], "--lr must be > 0, not inf"),
                                             (["--grad-clip", "-1"], "--grad-clip must be > 0, not -1.0"),
                                             (["--grad-clip", "0"], "--grad-clip must be > 0, not 0.0"),
                                             (["--schedule", "hold", "--cooldown", "0"],
                                              "--cooldown must be in (0, 1], not 0.0"),
                                             (["--embed-dim", "0"], "--embed-dim must be ≥ 1, not 0"),
                                             (["--dev-fraction", "1.5"], "--dev-fraction must be in (0, 1)"),
                                             (["--encoding", "cp-1252x"], "unknown encoding 'cp-1252x'")])
def test_impossible_options_are_one_line_errors(tmp_path, capsys, option, message):
    code = train_quickly(one_line_text(tmp_path), tmp_path / "o", *option)
    out, err = capsys.readouterr()
    assert_one_line_error(code, err, message)
    assert "training" not in out


def test_sample_starts_from_the_training_texts_prime(tmp_path, capsys):
    """The text has no new line, so the old default prime "\\n" could not be sampled from."""
    out = tmp_path / "o"
    assert train_quickly(one_line_text(tmp_path), out) == 0
    assert load_checkpoint(out / "model.pt").prime == "c"
    capsys.readouterr()
    assert main(["sample", str(out), "--length", "10", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("c")
    # Typed decomposed (e + combining accent), as some keyboards do: NFC makes it the text's "é".
    assert main(["sample", str(out), "--prime", "cafe\u0301", "--length", "10", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("café")


def test_a_typed_backslash_n_in_the_prime_is_a_new_line(trained_run, capsys):
    _, out, _ = trained_run
    assert main(["sample", str(out), "--prime", "ROMEO:\\n", "--length", "10", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:\n")


def test_serve_refuses_a_port_out_of_range(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path), "--port", "99999"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and "'99999' is not a port number (1 to 65535)" in err


def test_serve_names_a_port_already_taken(trained_run, capsys):
    pytest.importorskip("uvicorn")
    _, out, _ = trained_run
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = main(["serve", str(out.parent), "--port", str(port)])
    std = capsys.readouterr()
    assert_one_line_error(code, std.err, f"cannot listen on 127.0.0.1:{port}", "pick another --port")
    assert std.out == "", "no URL printed for a server that never started"
