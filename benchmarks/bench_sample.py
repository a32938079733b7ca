"""How fast does textlab write? (what the temperature slider feels like)

Measures, on the default CharLSTM for a ``--minutes`` budget (random weights: speed does not
depend on them):
  (a) textlab's stateful sampler, one stream;
  (b) re-feeding the whole prefix at every step, as several tutorials do;
  (c) 16 samples in one batch (a guard: batching must keep paying, ≥ 5× one stream);
and the wall time of one 300-character sample. Each figure is the median of several runs.

    python benchmarks/bench_sample.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import torch
from common import SHAKESPEARE_CHARS, append_results, table

import textlab
from textlab.config import default_configs


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=3.0, help="the training budget whose default model to time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (on a busy shared machine 2 threads spin-wait for each other)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vocab = textlab.CharVocab(SHAKESPEARE_CHARS)
    model_cfg, _ = default_configs("cpu", minutes=args.minutes)
    model = textlab.build_model(replace(model_cfg, vocab_size=len(vocab))).eval()
    n = args.length
    kw = dict(prime="ROMEO:", length=n, temperature=0.8, seed=0)

    stateful = median_seconds(lambda: textlab.sample(model, vocab, **kw), args.repeats)
    naive = median_seconds(lambda: textlab.sample_refeed(model, vocab, **kw), max(1, args.repeats // 2))
    batched = median_seconds(lambda: textlab.sample(model, vocab, num_samples=16, **kw), args.repeats)
    ms300 = 1000 * median_seconds(lambda: textlab.sample(model, vocab, "ROMEO:", 300, 0.8, seed=0),
                                  args.repeats)
    cps = {"stateful": n / stateful, "naive": n / naive, "batched16": 16 * n / batched}
    rows = [["(a) stateful, 1 stream", f"{cps['stateful']:,.0f}", "1.0×"],
            ["(b) re-feed the prefix", f"{cps['naive']:,.0f}", f"{cps['naive'] / cps['stateful']:.3f}×"],
            ["(c) stateful, 16 in a batch", f"{cps['batched16']:,.0f}", f"{cps['batched16'] / cps['stateful']:.1f}×"]]
    body = table([f"sampler ({n} chars, {args.minutes:g}-minute default: {textlab.count_parameters(model):,} parameters)",
                  "chars/s", "vs (a)"], rows)
    body += (f"\n\nstateful / re-feed: {cps['stateful'] / cps['naive']:.0f}× (target ≥ 20×); "
             f"batched16 / stateful: {cps['batched16'] / cps['stateful']:.1f}× (guard ≥ 5×); "
             f"one 300-char sample: {ms300:.1f} ms (target ≤ 50 ms)")
    print(body)
    append_results("bench_sample", " ".join(["python"] + sys.argv), body)
    print(f"stateful_cps={cps['stateful']:.0f} naive_cps={cps['naive']:.0f} "
          f"batched16_cps={cps['batched16']:.0f} ms_per_300={ms300:.1f}")


if __name__ == "__main__":
    main()
