"""Command line: ``python -m textlab corpora | train | sample | serve``.

Every option of ``train`` comes from the config dataclasses, so the CLI and the notebooks
share their defaults. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import typing
from dataclasses import fields, replace
from pathlib import Path

from .config import ModelConfig, TextlabError, TrainConfig, default_configs, pick_device, with_overrides

SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)


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
    tr.add_argument("--model", dest="kind", choices=["lstm", "gpt"], default=None)
    _add_config_options(tr, ModelConfig, skip={"kind", "vocab_size"})
    _add_config_options(tr, TrainConfig, skip=set())

    sa = sub.add_parser("sample", help="generate text from a checkpoint")
    sa.add_argument("checkpoint", help="a .pt file, a run folder (DIR/model.pt), or a model name in --models")
    sa.add_argument("--models", default="models", help="folder of checkpoints to look names up in")
    sa.add_argument("--prime", default="\n")
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
    se.add_argument("--port", type=int, default=8000)
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

    model_cfg, train_cfg = default_configs(args.device or "auto", kind=args.kind or "lstm", minutes=args.minutes)
    train_cfg = with_overrides(train_cfg, **_overrides(args, TrainConfig))
    model_cfg = replace(model_cfg, **_overrides(args, ModelConfig))
    if model_cfg.kind == "gpt" and args.block_size is None:
        model_cfg = replace(model_cfg, block_size=max(model_cfg.block_size, train_cfg.seq_len))

    text = load_corpus(args.corpus) if args.corpus else load_text(args.text, args.encoding)
    out = Path(args.out or Path("runs") / text.name)
    budget = " or ".join(b for b in (f"{train_cfg.steps} steps" if train_cfg.steps else "",
                                     f"{train_cfg.minutes:g} min" if train_cfg.minutes else "") if b)
    print(f"corpus {text.name}: {len(text):,} chars; {text.report.summary()}")
    print(f"training a {model_cfg.kind} model on {pick_device(train_cfg.device)} for {budget}")
    run = train_on_text(text.text, model_cfg, train_cfg, checkpoint=out / "model.pt")
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


def cmd_sample(args) -> None:
    from .checkpoints import load_checkpoint, load_model
    from .sampling import sample

    path = Path(args.checkpoint)
    if path.is_dir():  # a run folder, as `train --out` writes it
        path = path / "model.pt"
    loaded = load_checkpoint(path) if path.suffix == ".pt" or path.exists() else load_model(
        args.checkpoint, args.models)
    texts = sample(loaded.model, loaded.vocab, args.prime, args.length, args.temperature, args.top_k,
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
    serve(args.folder, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: no window
    args = build_parser().parse_args(argv)
    try:
        {"corpora": cmd_corpora, "train": cmd_train, "sample": cmd_sample,
         "serve": cmd_serve}[args.command](args)
    except (TextlabError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
