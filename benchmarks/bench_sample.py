"""How fast does textlab write? (what the temperature slider feels like)

Measures, on the default CharLSTM for a ``--minutes`` budget (random weights: speed does not
depend on them):
  (a) textlab's stateful sampler, one stream;
  (b) re-feeding the whole prefix at every step, as several tutorials do;
  (c) 16 samples in one batch (a guard: batching must keep paying, ≥ 5× one stream);
and the wall time of one 300-character sample. (a), (c) and the 300-character sample run in
turn, round after round, so a slow moment of the shared machine falls on all three alike; each
figure is a median over the rounds, and the guard is the median of the rounds' own ratios.
Beside the guard, its ceiling on this CPU: the step's gate product alone (16 rows × the
recurrent weights, against one row), timed the same way. One row is bound by reading the
weights, 16 rows by arithmetic, so this ratio is far below 16; the sampler's own ratio comes out
higher, because the rest of a step (small operations of a few µs each) is shared by 16 streams.
Beside the 300-character time, what bounds it: the 300 gate products of one stream alone, and 300
passes over the recurrent weights (a sum: the least any code must do per character, reading them).

    python benchmarks/bench_sample.py
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace

import torch
from common import SHAKESPEARE_CHARS, Parser, append_results, positive, run_main, table, timed_in_turn

import textlab
from textlab.config import default_configs


def batching_gain(single: list[float], batched: list[float], rows: int) -> float:
    """How many times the work a second of one row, ``rows`` rows in one batch do: each round's ratio, the median."""
    return statistics.median(rows * s / b for s, b in zip(single, batched))


def gate_product_rows(model, rows: int, steps: int):
    """``steps`` of the stepper's gate product alone: ``rows`` states times the recurrent weights."""
    w = model.lstm.weight_hh_l0.detach().T.contiguous()  # (H, 4H), the stepper's layout
    h, bias = torch.randn(rows, w.shape[0]), torch.randn(rows, w.shape[1])

    def run():
        for _ in range(steps):
            torch.addmm(bias, h, w)
    return run


def weights_read(model, steps: int):
    """``steps`` passes over the recurrent weights (3.2 MB at 448 cells): a single stream's floor per character."""
    w = model.lstm.weight_hh_l0.detach()

    def run():
        for _ in range(steps):
            torch.sum(w)
    return run


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=positive(int), default=500)
    parser.add_argument("--repeats", type=positive(int), default=5)
    parser.add_argument("--minutes", type=positive(float), default=3.0,
                        help="the training budget whose default model to time")
    parser.add_argument("--threads", type=positive(int), default=1,
                        help="torch threads (on a busy shared machine 2 threads spin-wait for each other)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vocab = textlab.CharVocab(SHAKESPEARE_CHARS)
    model_cfg, _ = default_configs("cpu", minutes=args.minutes)
    model = textlab.build_model(replace(model_cfg, vocab_size=len(vocab))).eval()
    n = args.length
    kw = dict(prime="ROMEO:", length=n, temperature=0.8, seed=0)

    one, sixteen, three_hundred = timed_in_turn(
        [lambda: textlab.sample(model, vocab, **kw),
         lambda: textlab.sample(model, vocab, num_samples=16, **kw),
         lambda: textlab.sample(model, vocab, "ROMEO:", 300, 0.8, seed=0)], args.repeats)
    [naive] = timed_in_turn([lambda: textlab.sample_refeed(model, vocab, **kw)], max(1, args.repeats // 2))
    guard = batching_gain(one, sixteen, 16)
    # 300 steps each: one row's is also the 300-character sample's gate products alone
    gates1, gates16, reads = timed_in_turn(
        [gate_product_rows(model, 1, 300), gate_product_rows(model, 16, 300), weights_read(model, 300)], args.repeats)
    ceiling = batching_gain(gates1, gates16, 16)
    gates300, read300 = 1000 * statistics.median(gates1), 1000 * statistics.median(reads)
    stateful, ms300 = statistics.median(one), 1000 * statistics.median(three_hundred)
    cps = {"stateful": n / stateful, "naive": n / statistics.median(naive),
           "batched16": 16 * n / statistics.median(sixteen)}
    rows = [["(a) stateful, 1 stream", f"{cps['stateful']:,.0f}", "1.0×"],
            ["(b) re-feed the prefix", f"{cps['naive']:,.0f}", f"{cps['naive'] / cps['stateful']:.3f}×"],
            ["(c) stateful, 16 in a batch", f"{cps['batched16']:,.0f}", f"{guard:.1f}×"]]
    body = table([f"sampler ({n} chars, {args.minutes:g}-minute default: {textlab.count_parameters(model):,} parameters)",
                  "chars/s", "vs (a)"], rows)
    body += (f"\n\nstateful / re-feed: {cps['stateful'] / cps['naive']:.0f}× (target ≥ 20×); "
             f"batched16 / stateful: {guard:.1f}× (guard ≥ 5×; the gate product alone: {ceiling:.1f}×); "
             f"one 300-char sample: {ms300:.1f} ms (target ≤ 50 ms; its 300 gate products alone: "
             f"{gates300:.1f} ms; 300 passes over the recurrent weights: {read300:.1f} ms)")
    print(body)
    append_results("bench_sample", " ".join(["python"] + sys.argv), body)
    print(f"stateful_cps={cps['stateful']:.0f} naive_cps={cps['naive']:.0f} "
          f"batched16_cps={cps['batched16']:.0f} ms_per_300={ms300:.1f} guard={guard:.2f} "
          f"gate_product_guard={ceiling:.2f} gate_products_ms_300={gates300:.1f} weights_read_ms_300={read300:.1f}")


if __name__ == "__main__":
    run_main(main)
