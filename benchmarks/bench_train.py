"""How low does validation loss go in a fixed wall-clock budget?

Trains textlab's default CPU configuration and, for the same budget in the same run, the
plain char-LSTM of the seed notebooks (random windows of 100, batch 64, constant Adam 2e-3,
2×256). Both are scored on the full validation split (last 10%), in nats per character.

    python benchmarks/bench_train.py --corpus tiny_shakespeare --seconds 200
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

from common import append_results, table

import textlab
from textlab.config import ModelConfig, TrainConfig, default_configs

# The seed notebooks' recipe, expressed in textlab's configs (same trainer and evaluation).
BASELINE = (ModelConfig(embed_dim=64, hidden_size=256, num_layers=2),
            TrainConfig(batching="random", seq_len=100, batch_size=64, lr=2e-3, min_lr_ratio=1.0,
                        warmup=0.0, weight_decay=0.0))


def run(name: str, text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, seconds: float) -> dict:
    train_cfg = replace(train_cfg, minutes=seconds / 60, steps=None, progress=False, device="cpu")
    run = textlab.training.train_on_text(text, model_cfg, train_cfg)
    r = run.result
    curve = " ".join(f"{h['seconds']:.0f}s:{h['val_bpc'] * math.log(2):.3f}" for h in r.history[::4])
    print(f"{name}: {curve}", file=sys.stderr)
    return {"name": name, "params": textlab.count_parameters(run.model), "steps": r.steps,
            "chars": r.history[-1]["chars_seen"], "seconds": r.seconds,
            "val_loss": r.val_bpc * math.log(2), "val_bpc": r.val_bpc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("--seconds", type=float, default=200)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    text = textlab.load_corpus(args.corpus).text
    model_cfg, train_cfg = default_configs("cpu")
    results = [run("textlab default", text, model_cfg, train_cfg, args.seconds)]
    if not args.skip_baseline:
        results.append(run("seed-notebook baseline", text, *BASELINE, args.seconds))
    rows = [[r["name"], f"{r['params']:,}", r["steps"], f"{r['chars']:,}", f"{r['chars'] / r['seconds']:,.0f}",
             f"{r['seconds']:.0f}", f"{r['val_loss']:.3f}", f"{r['val_bpc']:.3f}"] for r in results]
    body = table(["run", "params", "steps", "chars seen", "chars/s", "wall s", "val loss (nats)", "val bpc"], rows)
    body += f"\n\ndefault: {model_cfg}\n\n{replace(train_cfg, minutes=args.seconds / 60)}"
    print(body)
    append_results(f"bench_train {args.corpus}, {args.seconds:.0f} s", " ".join(["python"] + sys.argv), body)
    baseline = results[1]["val_loss"] if len(results) > 1 else float("nan")
    print(f"textlab_val_loss={results[0]['val_loss']:.3f} baseline_val_loss={baseline:.3f} "
          f"seconds={args.seconds:.0f}")


if __name__ == "__main__":
    main()
