"""Tune MiniGPT for a CPU budget: short screening runs, then the best at full length beside nanoGPT's recipe.

Stage 1 trains each candidate (learning rate, width × depth at about the LSTM's size, block,
batch) for ``--screen-seconds``. Stage 2 trains the ``--finalists`` best of them, and nanoGPT's
README CPU recipe, for ``--seconds`` each, in the same run. Every model is scored on the whole
validation split (the last 10%) under both protocols: a sliding window (context half a block,
``textlab.evaluate``'s default for MiniGPT) and nanoGPT's cold 64-character windows, after
training, so the whole budget trains. Screening ranks by sliding-window bpc on the dev text
(the start of the training part, held out by ``train``), and the best finalist is the best of
them there: no choice is made on val.

    nice -n 5 python benchmarks/sweep_minigpt.py --corpus tiny_shakespeare --seconds 200
"""

from __future__ import annotations

import sys
from dataclasses import replace

import torch
from common import COLD_WINDOWS, NANOGPT_RECIPE, Parser, append_results, positive, run_main, table

import textlab
from textlab.config import ModelConfig, TrainConfig
from textlab.corpora import hold_out

QUICK_SCORE = 2048  # ids scored by train()'s own evaluations (the kept weights are the last ones)


def candidate(width: int, layers: int, block: int, batch: int, lr: float) -> tuple[ModelConfig, TrainConfig]:
    """nanoGPT's CPU recipe with these changed, weight decay 0.01 and textlab's usual warm-up."""
    gpt, recipe = NANOGPT_RECIPE
    return (replace(gpt, embed_dim=width, hidden_size=width, num_layers=layers, block_size=block),
            replace(recipe, seq_len=block, batch_size=batch, lr=lr, weight_decay=0.01, warmup=TrainConfig.warmup))


# Width × depth at about the LSTM's 0.7-0.8 M parameters; what differs is how many steps a CPU
# gets through in the budget (batch, block) and how fast each step learns (lr).
CANDIDATES = {
    "4×128 b64 B12 lr3e-3": candidate(128, 4, 64, 12, 3e-3),
    "4×128 b64 B16 lr5e-3": candidate(128, 4, 64, 16, 5e-3),
    "4×128 b64 B32 lr3e-3": candidate(128, 4, 64, 32, 3e-3),
    "4×128 b128 B8 lr3e-3": candidate(128, 4, 128, 8, 3e-3),
    "2×176 b64 B16 lr3e-3": candidate(176, 2, 64, 16, 3e-3),
    "6×104 b64 B12 lr3e-3": candidate(104, 6, 64, 12, 3e-3),
}


def run(name: str, text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seconds: float,
        dev_chars: int | None = None) -> dict:
    """Train for ``seconds``; score the last weights on the whole val split, or with ``dev_chars`` on
    the first that many characters of the dev text instead (screening: choices are made on dev).

    The whole budget trains: ``train``'s own evaluations (at the start and the end only) score
    just the first ``QUICK_SCORE`` ids, and the real scores are taken afterwards, outside the
    budget, under both protocols. On this shared 2-core machine a full sliding-window pass over
    tiny Shakespeare's validation text takes 40-80 s, too much to spend inside a 200 s budget.
    """
    train_cfg = replace(train_cfg, minutes=seconds / 60, steps=None, eval_every=10**9, progress=False,
                        device="cpu")
    vocab = textlab.CharVocab.from_text(text)
    split = textlab.split_text(text, train_cfg.val_fraction)
    model = textlab.build_model(replace(model_cfg, vocab_size=len(vocab)))
    train_ids = vocab.encode(split.train)
    r = textlab.train(model, train_ids, vocab.encode(split.val), train_cfg,
                      score=lambda m, ids: textlab.evaluate(m, ids[:QUICK_SCORE]))
    ids = vocab.encode(split.val) if dev_chars is None else hold_out(train_ids, train_cfg.dev_fraction)[1][:dev_chars]
    sliding = textlab.evaluate(model, ids)                     # context block/2, stride block/2
    cold = textlab.evaluate(model, ids, **COLD_WINDOWS)       # nanoGPT's protocol
    row = {"name": name, "params": textlab.count_parameters(model), "steps": r.steps,
           "chars/s": r.history[-1]["chars_seen"] / r.seconds, "seconds": r.seconds,
           "sliding": sliding, "cold": cold, "model": model_cfg, "train": train_cfg}
    print(f"{name}: {r.steps} steps, {row['chars/s']:,.0f} chars/s, sliding {sliding:.3f}, cold {cold:.3f} bpc",
          file=sys.stderr, flush=True)
    return row


def rows_of(results: list[dict]) -> list[list]:
    return [[r["name"], f"{r['params']:,}", r["steps"], f"{r['chars/s']:,.0f}", f"{r['seconds']:.0f}",
             f"{r['sliding']:.3f}", f"{r['cold']:.3f}"] for r in results]


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--seconds", type=positive(float), default=200,
                        help="stage 2: each finalist and nanoGPT's recipe")
    parser.add_argument("--screen-seconds", type=positive(float), default=30, help="stage 1: each candidate")
    parser.add_argument("--screen-dev-chars", type=positive(int), default=15_000,
                        help="stage 1 scores the first this many characters of the dev text")
    parser.add_argument("--finalists", type=positive(int), default=1)
    args = parser.parse_args()
    # One thread: on this shared 2-core machine a second thread spin-waits behind other people's
    # work (measured: 1-2 s per step instead of 0.06 s), and every row gets the same one core.
    torch.set_num_threads(1)
    text = textlab.load_corpus(args.corpus).text
    screened = sorted((run(name, text, *cfgs, args.screen_seconds, dev_chars=args.screen_dev_chars)
                       for name, cfgs in CANDIDATES.items()), key=lambda r: r["sliding"])
    final = [run(r["name"], text, r["model"], r["train"], args.seconds) for r in screened[:args.finalists]]
    final.append(run("nanoGPT README CPU recipe", text, *NANOGPT_RECIPE, args.seconds))

    headers = ["run", "params", "steps", "chars/s", "train s", "bpc, sliding (context block/2)",
               "bpc, cold 64-char windows"]
    best = final[0]  # the finalists stand in stage 1's order, best on dev first: val chooses nothing
    body = (f"Stage 1, {args.screen_seconds:.0f} s of training each, scored on the first "
            f"{args.screen_dev_chars:,} characters of the dev text (the start of the training part):\n\n"
            f"{table(headers, rows_of(screened))}\n\n"
            f"Stage 2, {args.seconds:.0f} s of training each, scored on the whole validation split:\n\n"
            f"{table(headers, rows_of(final))}\n\n"
            f"best: {best['model']}\n\n{replace(best['train'], minutes=args.seconds / 60)}")
    print(body)
    append_results(f"sweep_minigpt {args.corpus}", " ".join(["python"] + sys.argv), body)
    recipe = final[-1]
    print(f"tuned_sliding={best['sliding']:.3f} tuned_cold={best['cold']:.3f} "
          f"nanogpt_recipe_sliding={recipe['sliding']:.3f} nanogpt_recipe_cold={recipe['cold']:.3f} "
          f"seconds={args.seconds:.0f}")


if __name__ == "__main__":
    run_main(main)
