"""What the benchmarks print beside their figures: which machine, the CPU's matmul ceiling, and
what bounds the sampler (its gate products alone, passes over its recurrent weights).

Results are compared only between runs on one kind of CPU, and machines here print the same model
name ("AMD EPYC") for different CPU generations, so the machine line also names the family and
model. "Of peak" divides by the faster of torch's two matmul paths (RESULTS.md, round 2n).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402
from bench_sample import gate_product_rows, weights_read  # noqa: E402
from bench_train import matmul_peaks  # noqa: E402

from textlab.models import CharLSTM  # noqa: E402

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
flags\t\t: fpu avx2 avx512f
"""


def test_the_line_names_the_cpu_its_vector_instructions_family_and_model(tmp_path):
    (cpuinfo := tmp_path / "cpuinfo").write_text(CPUINFO)
    line = common.machine(cpuinfo)
    assert line.startswith(f"AMD EPYC ({torch.backends.cpu.get_cpu_capability()}, family 26 model 2), ")
    assert f"torch {torch.__version__}" in line


def test_without_cpuinfo_the_line_still_says_what_it_can(tmp_path):
    line = common.machine(tmp_path / "missing")
    assert f"({torch.backends.cpu.get_cpu_capability()}), " in line


def test_the_ceiling_times_both_matmul_paths():
    peaks = matmul_peaks(n=128, repeats=3)
    expected = {"torch.mm", "oneDNN"} if torch.backends.mkldnn.is_available() else {"torch.mm"}
    assert set(peaks) == expected
    assert all(math.isfinite(flops) and flops > 0 for flops in peaks.values())


def test_the_sampler_floors_run_on_the_models_own_recurrent_weights(monkeypatch):
    model = CharLSTM(vocab_size=5, embed_dim=4, hidden_size=8)
    w_hh = model.lstm.weight_hh_l0  # (4H, H)
    products, reads = [], []
    addmm, total = torch.addmm, torch.sum
    monkeypatch.setattr(torch, "addmm", lambda bias, h, w: products.append((h.shape, w)) or addmm(bias, h, w))
    monkeypatch.setattr(torch, "sum", lambda w: reads.append(w) or total(w))
    for rows in (1, 16):
        gate_product_rows(model, rows, steps=2)()
    weights_read(model, steps=2)()
    assert [shape for shape, _ in products] == [(1, 8)] * 2 + [(16, 8)] * 2  # rows states of H cells …
    assert all(torch.equal(w, w_hh.T) for _, w in products)                  # … times the model's (H, 4H)
    assert len(reads) == 2 and all(w.data_ptr() == w_hh.data_ptr() for w in reads)
