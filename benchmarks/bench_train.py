"""How low does validation loss go in a fixed wall-clock budget?

Trains, for the same budget in one run: textlab's default CPU configuration for that budget;
the plain char-LSTM of the seed notebooks (random windows of 100, batch 64, constant Adam 2e-3,
2×256); and MiniGPT with nanoGPT's README CPU recipe (4 layers × 4 heads, width 128, block 64,
batch 12, lr 1e-3 cosine to 1e-4, no dropout, random windows). Each is scored on the whole
validation split (last 10%) in nats per character, two ways (``textlab.training.evaluate``):
``val`` with state carried / a sliding context (the default), ``window`` on nanoGPT's cold
64-character windows (``context=0, stride=64``). Beside each: characters read per second, the
share of this CPU's matmul peak (measured here) that the training arithmetic used, and how many of
its samples from a cold start fall into loops of rare characters (``derailed_share``).

    python benchmarks/bench_train.py --corpus tiny_shakespeare --seconds 200
    python benchmarks/bench_train.py --skip-baseline --lever "ema:ema=0.998" --lever "drop:dropout=0.1"
    python benchmarks/bench_train.py --skip-baseline --dynamic   # + dynamic evaluation, in a row of its own

A ``--lever NAME:field=value,...`` row trains the default with those ModelConfig/TrainConfig fields changed.
Choose between levers on the *dev* column (the held-out start of the training part, on which
``train`` keeps its best weights): a choice made on val would spend the yardstick.
"""

from __future__ import annotations

import ast
import collections
import copy
import re
import sys
from dataclasses import fields, replace

import torch
import torch.nn.functional as F
from common import (COLD_WINDOWS, NANOGPT_RECIPE, Parser, append_results, cores, positive, run_main, table,
                    timed_in_turn)

import textlab
from textlab.config import ModelConfig, TextlabError, TrainConfig, default_configs
from textlab.corpora import Split, hold_out
from textlab.training import LN2, evaluate, kept_record, parameter_groups

# The seed notebooks' recipe, expressed in textlab's configs (same trainer and evaluation).
BASELINE = (ModelConfig(embed_dim=64, hidden_size=256, num_layers=2),
            TrainConfig(batching="random", seq_len=100, batch_size=64, lr=2e-3, min_lr_ratio=1.0,
                        warmup=0.0, weight_decay=0.0))
# nanoGPT's README CPU recipe (common.py), evaluated every 1,000 steps: each evaluation scores the whole
# dev and val texts, which costs MiniGPT more than the LSTM. The contenders are not scored equally often
# per character read, so dev picks each one's kept weights from a different number of evaluations:
# between two, textlab's default reads 8 × 128 × 400 ≈ 410 k characters, the baseline 64 × 100 × 200
# = 1.28 M, this recipe 12 × 64 × 1,000 = 768 k.
NANOGPT_CPU = (NANOGPT_RECIPE[0], replace(NANOGPT_RECIPE[1], eval_every=1000))


def derailed_share(model: torch.nn.Module, vocab: textlab.CharVocab, split: Split,
                   primes: int = 20, length: int = 200) -> float:
    """The share of cold-start samples that fall off the rails into rare characters (``3&3&Q…``).

    Each prime is the first word of a paragraph of the validation text (in a play: a speaker's name),
    up to ``primes`` different ones; a text without blank lines gives its first word. Each is
    sampled from a zero state, as ``textlab.sample`` does, at temperatures 0.5 and 0.8, three
    samples each. A sample is derailed when more than 5% of its characters are ones the training
    text uses less than once in 1,000.
    """
    counts = collections.Counter(split.train)
    rare = {c for c, n in counts.items() if n < len(split.train) / 1000}
    starts = list(dict.fromkeys(re.findall(r"\n\n(\S+)", split.val)))[:primes]
    starts = starts or re.findall(r"\S+", split.val)[:1]
    samples = [s[len(prime):] for prime in starts for t in (0.5, 0.8)
               for s in textlab.sample(model, vocab, prime, length, t, seed=0, num_samples=3)]
    return sum(sum(c in rare for c in s) > 0.05 * length for s in samples) / len(samples)


def dynamic_nll(model: torch.nn.Module, ids: torch.Tensor, lr: float, segment: int = 50) -> float:
    """Nats per character of ``ids[1:]`` read once, in order, by a copy of ``model`` that goes on
    learning as it reads: dynamic evaluation (Krause et al. 2018), here with plain SGD.

    Each ``segment`` of characters is scored first, then the copy takes one gradient step of size
    ``lr`` on it, so every character is predicted by weights that have only seen the text before it.
    The LSTM's state is carried throughout; ``lr=0`` is the static score of one cold-started read.
    Not the course's yardstick: the model is no longer the one that was trained. Needs a stateful
    model: MiniGPT's state is a cache of what it read, which would outgrow its block.
    """
    if not model.stateful:
        raise TextlabError(f"dynamic evaluation carries the state through the whole text: it needs a stateful "
                           f"model such as CharLSTM, not a {type(model).__name__}")
    model = copy.deepcopy(model).eval()  # no dropout; the caller's model stays as it is
    x, y, state, total = ids[:-1], ids[1:], None, 0.0
    for i in range(0, len(x), segment):
        logits, state = model(x[None, i:i + segment], state)                     # (1, T, V)
        loss = F.cross_entropy(logits[0], y[i:i + segment], reduction="sum")
        total += loss.item()
        if lr:
            model.zero_grad(set_to_none=True)
            (loss / len(logits[0])).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
        state = tuple(s.detach() for s in state)  # carry the values, not the history
    return total / len(y)


def dynamic_evaluation(model: torch.nn.Module, dev_ids: torch.Tensor, val_ids: torch.Tensor,
                       rates: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)) -> dict:
    """The learning rate of ``dynamic_nll`` chosen on the dev text, then val read once with it.

    0 (no learning) is among the choices, so a rate that dev says hurts is never the one reported.
    """
    dev = {lr: dynamic_nll(model, dev_ids, lr) for lr in (0.0, *rates)}
    lr = min(dev, key=dev.get)
    return {"lr": lr, "dev_static": dev[0.0], "dev": dev[lr], "val_static": dynamic_nll(model, val_ids, 0.0),
            "val": dynamic_nll(model, val_ids, lr)}


def matmul_peaks(n: int = 2048, repeats: int = 20) -> dict[str, float]:
    """FLOP/s of this CPU on a big float32 matmul through each of torch's two CPU paths.

    ``a @ b`` goes to the BLAS torch was built with (MKL on x86); ``nn.LSTM`` runs on oneDNN, which
    has its own matmul. The higher of the two is the ceiling for training: on the AMD AVX-512 EPYC of
    round 2n (RESULTS.md) ``a @ b`` reached ~200 GFLOP/s and oneDNN ~440. The two run in turn, and
    each is the fastest of its ``repeats``, not the median: a ceiling is what the CPU can do, and a
    shared machine only ever makes a timing slower. ``main`` times them before and after the runs
    and keeps the higher.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    paths = {"torch.mm": lambda: a @ b}
    if torch.backends.mkldnn.is_available():
        a_onednn, b_onednn = a.to_mkldnn(), b.to_mkldnn()  # oneDNN's own tensors: F.linear then runs on it
        paths["oneDNN"] = lambda: F.linear(a_onednn, b_onednn)
    times = timed_in_turn(list(paths.values()), repeats)
    return {name: 2 * n ** 3 / min(path_times) for name, path_times in zip(paths, times)}


def train_flops_per_char(model: torch.nn.Module) -> float:
    """About 6 FLOPs per weight-matrix entry per character (2 forward, 4 backward), plus attention's
    12 · layers · width · block (nanoGPT's estimate); lookups, norms and activations are not counted."""
    matrices = sum(p.numel() for p in parameter_groups(model)[0])
    cfg = model.config
    attention = 0 if model.stateful else 12 * cfg.num_layers * cfg.hidden_size * cfg.block_size
    return 6 * matrices + attention


def budgeted(train_cfg: TrainConfig, seconds: float) -> TrainConfig:
    """What ``run`` trains with: ``seconds`` of training on the CPU (no step budget, no progress bar)."""
    return replace(train_cfg, minutes=seconds / 60, steps=None, progress=False, device="cpu")


def loss_curve(history: list[dict]) -> str:
    """Every third evaluation of a run as ``seconds trained:val loss``, the unit named: its progress line."""
    return "val loss (nats) by seconds trained: " + " ".join(
        f"{h['seconds']:.0f}s:{h['val_bpc'] * LN2:.3f}" for h in history[::3])


def run(name: str, text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seconds: float,
        dynamic: bool = False) -> dict:
    train_cfg = budgeted(train_cfg, seconds)
    r = textlab.training.train_on_text(text, model_cfg, train_cfg)
    res = r.result
    val_ids = r.vocab.encode(r.split.val)
    window_bpc = evaluate(r.model, val_ids, **COLD_WINDOWS)
    dynamic_row = None
    if dynamic:
        dev_ids = hold_out(r.vocab.encode(r.split.train), train_cfg.dev_fraction)[1]
        dynamic_row = dynamic_evaluation(r.model, dev_ids, val_ids)
    cps = res.history[-1]["chars_seen"] / res.seconds
    print(f"{name}: {loss_curve(res.history)}; kept step {res.kept_step}", file=sys.stderr, flush=True)
    return {"name": name, "params": textlab.count_parameters(r.model), "steps": res.steps,
            "chars": res.history[-1]["chars_seen"], "seconds": res.seconds, "cps": cps,
            "flops": cps * train_flops_per_char(r.model),  # the training arithmetic's FLOP/s
            "dev_loss": kept_record(res.history)["dev_bpc"] * LN2,
            "val_loss": res.val_bpc * LN2, "window_loss": window_bpc * LN2,
            "derailed": derailed_share(r.model, r.vocab, r.split), "dynamic": dynamic_row}


def with_fields(model_cfg: ModelConfig, train_cfg: TrainConfig, assignments: str):
    """``"dropout=0.1,lr=8e-3"`` → the two configs with those fields changed (ModelConfig's or TrainConfig's)."""
    model_names, train_names = {f.name for f in fields(ModelConfig)}, {f.name for f in fields(TrainConfig)}
    for item in filter(None, assignments.split(",")):
        key, value = item.split("=", 1)
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a plain string such as schedule=hold
        if key in model_names:
            model_cfg = replace(model_cfg, **{key: value})
        elif key in train_names:
            train_cfg = replace(train_cfg, **{key: value})
        else:
            raise SystemExit(f"unknown field {key!r}: use a ModelConfig or TrainConfig field")
    return model_cfg, train_cfg


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--seconds", type=positive(float), default=200)
    parser.add_argument("--skip-baseline", action="store_true", help="textlab's default (and levers) only")
    parser.add_argument("--lever", action="append", default=[], metavar="NAME:FIELD=VALUE,...")
    parser.add_argument("--dynamic", action="store_true",
                        help="also score textlab's default with dynamic evaluation (its own row, not the headline)")
    parser.add_argument("--threads", type=positive(int), default=cores(),
                        help="torch threads (default: one per core, as a student's notebook has, and as "
                             "RESULTS.md's rounds ran); on a busy shared machine 2 threads spin-wait for "
                             "each other (measured here under load 4.5: 5× slower than 1 for LSTM training)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = textlab.load_corpus(args.corpus).text
    peaks_before = matmul_peaks()
    model_cfg, train_cfg = default_configs("cpu", minutes=args.seconds / 60)
    contenders = [("textlab default", model_cfg, train_cfg)]
    if not args.skip_baseline:
        contenders += [("seed-notebook baseline", *BASELINE), ("nanoGPT CPU recipe", *NANOGPT_CPU)]
    for lever in args.lever:
        name, _, assignments = lever.partition(":")
        contenders.append((f"lever {name}", *with_fields(model_cfg, train_cfg, assignments)))
    results = {name: run(name, text, m, t, args.seconds, dynamic=args.dynamic and name == "textlab default")
               for name, m, t in contenders}
    peaks_after = matmul_peaks()
    peaks = {name: max(flops, peaks_after[name]) for name, flops in peaks_before.items()}
    peak = max(peaks.values())

    rows = [[r["name"], f"{r['params']:,}", r["steps"], f"{r['chars']:,}", f"{r['cps']:,.0f}",
             f"{r['flops'] / peak:.2f}", f"{r['seconds']:.0f}", f"{r['dev_loss']:.3f}", f"{r['val_loss']:.3f}",
             f"{r['window_loss']:.3f}", f"{r['derailed']:.0%}"]
            for r in results.values()]
    body = table(["run", "params", "steps", "chars seen", "chars/s", "of peak", "train s (scoring excluded)",
                  "dev loss (nats, chooses)", "val loss (nats)", "cold-window loss (nats)", "cold samples derailed"],
                 rows)
    by_path = ", ".join(f"{name} {flops / 1e9:.0f}" for name, flops in peaks.items())
    body += (f"\n\nmatmul peak {peak / 1e9:.0f} GFLOP/s ({by_path}; each the higher of two timings, before and "
             f"after the runs);"
             f" levers: {' '.join(args.lever) or 'none'}"
             f"\n\ndefault: {model_cfg}\n\n{budgeted(train_cfg, args.seconds)}")
    dyn = results["textlab default"]["dynamic"]
    if dyn:
        body += (f"\n\ntextlab default, dynamic evaluation (its own row, never the headline: SGD on each 50 "
                 f"characters after scoring them, lr {dyn['lr']:g} chosen on dev): dev {dyn['dev']:.3f} nats "
                 f"(static {dyn['dev_static']:.3f}), val {dyn['val']:.3f} (static, one cold-started read: "
                 f"{dyn['val_static']:.3f})")
    print(body)
    append_results(f"bench_train {args.corpus}, {args.seconds:.0f} s", " ".join(["python"] + sys.argv), body)
    ours = results["textlab default"]
    line = f"textlab_val_loss={ours['val_loss']:.3f} textlab_window_loss={ours['window_loss']:.3f}"
    if not args.skip_baseline:
        gpt = results["nanoGPT CPU recipe"]
        line += (f" baseline_val_loss={results['seed-notebook baseline']['val_loss']:.3f}"
                 f" nanogpt_recipe_val_loss={gpt['val_loss']:.3f} nanogpt_recipe_window_loss={gpt['window_loss']:.3f}")
    print(f"{line} seconds={args.seconds:.0f}")


if __name__ == "__main__":
    run_main(main)
