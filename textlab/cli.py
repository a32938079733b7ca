"""Command line: ``python -m textlab corpora | train | sample | serve``.

Every option of ``train`` comes from the config dataclasses, so the CLI and the notebooks
share their defaults. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import sys
import tempfile
import typing
import unicodedata
from dataclasses import fields, replace
from pathlib import Path

from .config import ModelConfig, TextlabError, TrainConfig, default_configs, pick_device, with_overrides

SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)

# What each number of `train` must be. train() checks most of them too, but only once the text is
# loaded and the run has begun; here a typo is caught first, and the error names the option.
NUMBER_RULES: tuple[tuple[str, typing.Callable[[float], bool], tuple[str, ...]], ...] = (
    ("≥ 1", lambda v: v >= 1, ("steps", "eval_every", "patience", "batch_size", "seq_len",
                               "embed_dim", "hidden_size", "num_layers", "n_head", "block_size")),
    ("> 0", lambda v: v > 0, ("minutes", "lr", "grad_clip")),
    ("≥ 0", lambda v: v >= 0, ("weight_decay",)),
    ("in [0, 1)", lambda v: 0 <= v < 1, ("dropout", "warmup", "ema")),
    ("in [0, 1]", lambda v: 0 <= v <= 1, ("min_lr_ratio", "state_reset")),
    ("in (0, 1]", lambda v: 0 < v <= 1, ("cooldown",)),
    ("in (0, 1)", lambda v: 0 < v < 1, ("val_fraction", "dev_fraction")),
)


def _option_type(cls, name: str):
    """int / float / str for a dataclass field, looking through ``X | None``."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _add_config_options(parser: argparse.ArgumentParser, cls, skip: set[str]) -> None:
    group = parser.add_argument_group(f"{cls.__name__} (defaults: textlab/config.py)")
    for f in fields(cls):
        if f.name in skip:
            continue
        kind = _option_type(cls, f.name)
        if kind is bool:
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None,
                               action=argparse.BooleanOptionalAction)
        else:
            group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=None,
                               metavar=kind.__name__.upper())


def _overrides(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(cls)
            if getattr(args, f.name, None) is not None}


def _check_numbers(args: argparse.Namespace) -> None:
    """Refuse a number `train` cannot use (NaN and infinity included) before anything is loaded."""
    for said, ok, names in NUMBER_RULES:
        for name in names:
            value = getattr(args, name)
            if value is not None and not (math.isfinite(value) and ok(value)):
                raise TextlabError(f"--{name.replace('_', '-')} must be {said}, not {value}")


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 1 to 65535."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m textlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("corpora", help="list the course texts with sizes and licences")

    tr = sub.add_parser("train", help="train a model and save DIR/model.pt and DIR/loss.png")
    source = tr.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", help="a registered corpus (see `corpora`)")
    source.add_argument("--text", help="your own UTF-8 text file")
    tr.add_argument("--encoding", default="utf-8", help="of --text, e.g. cp1251")
    tr.add_argument("--out", default=None, help="output folder (default runs/NAME)")
    tr.add_argument("--overwrite", action="store_true", help="replace a model already saved in --out")
    tr.add_argument("--model", dest="kind", choices=["lstm", "gpt"], default=None)
    _add_config_options(tr, ModelConfig, skip={"kind", "vocab_size"})
    _add_config_options(tr, TrainConfig, skip=set())

    sa = sub.add_parser("sample", help="generate text from a checkpoint")
    sa.add_argument("checkpoint", help="a .pt file, a run folder (DIR/model.pt), or a model name in --models")
    sa.add_argument("--models", default="models", help="folder of checkpoints to look names up in")
    sa.add_argument("--prime", default=None, help="the text samples start from; type \\n for a new line "
                                                  "(default: the training text's, e.g. a new line)")
    sa.add_argument("--length", type=int, default=300)
    sa.add_argument("--temperature", type=float, default=0.8)
    sa.add_argument("--top-k", type=int, default=None)
    sa.add_argument("--top-p", type=float, default=None)
    sa.add_argument("--seed", type=int, default=None)
    sa.add_argument("--num-samples", type=int, default=1)

    se = sub.add_parser("serve", help="serve the checkpoints in DIR over HTTP, with a web page "
                                      "(needs pip install 'textlab[serve]')")
    se.add_argument("folder", metavar="DIR", help="folder of checkpoints: NAME.pt or NAME/model.pt, e.g. runs/")
    se.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    se.add_argument("--port", type=_port, default=8000)
    return parser


def cmd_corpora(_args) -> None:
    from .corpora import registry_table

    print(registry_table())


def cmd_train(args) -> None:
    from .corpora import load_corpus, load_text
    from .models import count_parameters
    from .plots import save_history_plot
    from .sampling import sample
    from .training import train_on_text

    _check_numbers(args)
    model_cfg, train_cfg = default_configs(args.device or "auto", kind=args.kind or "lstm", minutes=args.minutes)
    train_cfg = with_overrides(train_cfg, **_overrides(args, TrainConfig))
    model_cfg = replace(model_cfg, **_overrides(args, ModelConfig))
    if model_cfg.kind == "gpt" and args.block_size is None:
        model_cfg = replace(model_cfg, block_size=max(model_cfg.block_size, train_cfg.seq_len))
    out = Path(args.out or Path("runs") / (args.corpus or Path(args.text).stem))  # the text's name
    if (out / "model.pt").exists() and not args.overwrite:
        raise TextlabError(f"{out / 'model.pt'} already holds {_describe(out / 'model.pt')}: pass --overwrite "
                           "to replace it, or --out another folder")
    _check_writable(out)

    text = load_corpus(args.corpus) if args.corpus else load_text(args.text, args.encoding)
    budget = " or ".join(b for b in (f"{train_cfg.steps} steps" if train_cfg.steps else "",
                                     f"{train_cfg.minutes:g} min" if train_cfg.minutes else "") if b)
    print(f"corpus {text.name}: {len(text):,} chars; {text.report.summary()}")
    print(f"training a {model_cfg.kind} model on {pick_device(train_cfg.device)} for {budget}")
    run = train_on_text(text.text, model_cfg, train_cfg, checkpoint=out / "model.pt", prime=text.prime)
    result = run.result
    if result.message:
        print(result.message)
    if not result.kept_step:  # train() never saves the untrained model of step 0
        raise TextlabError(f"no evaluation beat the untrained model, so nothing was saved in {out}: train "
                           "for longer (--steps, --minutes) or with a lower --lr")
    save_history_plot(result.history, out / "loss.png", run.unigram_bpc)
    print(f"{count_parameters(run.model):,} parameters, {len(run.vocab)} characters; {result.steps} steps "
          f"in {result.seconds:.0f} s ({result.stopped}); unigram baseline {run.unigram_bpc:.3f} bpc")
    print(f"saved {out / 'model.pt'} and {out / 'loss.png'}")
    for t in SAMPLE_TEMPERATURES:
        print(f"\n--- sample, temperature {t}, prime {text.prime!r} ---")
        print(sample(run.model, run.vocab, text.prime, length=240, temperature=t, seed=0))
    print(f"\nval_bpc={result.val_bpc:.3f}")


def _describe(path: Path) -> str:
    """What an existing checkpoint holds, for the message that refuses to overwrite it."""
    from .checkpoints import load_checkpoint
    from .training import kept_record

    try:
        history = load_checkpoint(path).history
    except TextlabError:
        return "a file that is not a readable checkpoint"
    if not history:
        return "a trained model"
    kept = kept_record(history)
    return f"a trained model (val {kept['val_bpc']:.2f} bits/char at step {kept['step']:,})"


def _check_writable(out: Path) -> None:
    """Fail now, not at the first save minutes into training, if ``out`` cannot be written.

    Folders made for the test are removed again, so a run that fails later leaves nothing behind.
    """
    made = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as err:
        raise TextlabError(f"cannot write to --out {out} ({err.strerror or err}): pick a folder you "
                           "can write to") from None
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()


def cmd_sample(args) -> None:
    from .checkpoints import load_checkpoint, load_model
    from .sampling import sample
    from .vocab import show_chars

    path = Path(args.checkpoint)
    if path.is_dir():  # a run folder, as `train --out` writes it
        path = path / "model.pt"
    loaded = load_checkpoint(path) if path.suffix == ".pt" or path.exists() else load_model(
        args.checkpoint, args.models)
    if args.prime is None:
        prime, said = loaded.prime, "the checkpoint's prime"
    else:  # as the corpora are: NFC, so a typed "é" is one character; and "\n" typed as two
        prime, said = unicodedata.normalize("NFC", args.prime.replace("\\n", "\n")), "--prime"
    missing = loaded.vocab.unknown(prime)
    if missing:
        raise TextlabError(f"{said} {prime!r} has {len(missing)} character(s) not in the vocabulary: "
                           f"{show_chars(missing)}; pass a --prime made of characters the model knows")
    texts = sample(loaded.model, loaded.vocab, prime, args.length, args.temperature, args.top_k,
                   args.top_p, args.seed, args.num_samples)
    for i, text in enumerate([texts] if isinstance(texts, str) else texts):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(text)


def cmd_serve(args) -> None:
    try:
        from .serve import serve
    except ImportError as err:
        raise TextlabError(str(err)) from None
    # Bind the port once now: taken, it is this one-line error rather than uvicorn's exit after the URL.
    try:
        with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind((args.host, args.port))
    except OSError as err:
        raise TextlabError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}): "
                           "pick another --port (or --host), or stop the program using it") from None
    serve(args.folder, args.host, args.port)


def exit_status(command: typing.Callable[[], object]) -> int:
    """Run ``command`` and return the program's exit status: 0 when it ends well; a problem the user
    can fix (a ``TextlabError``, a refused value, a file that cannot be read) prints one line on
    stderr, no traceback, and gives 2; Ctrl-C gives 130. The benchmarks end the same way."""
    try:
        command()
    except (TextlabError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: no window
    args = build_parser().parse_args(argv)
    command = {"corpora": cmd_corpora, "train": cmd_train, "sample": cmd_sample, "serve": cmd_serve}[args.command]
    return exit_status(lambda: command(args))
