"""Levers measured for RESULTS.md but not adopted by textlab: how to repeat those rows.

``bench_train.py --lever`` changes fields that textlab has. The levers here are not in textlab
(each lost or tied in its measurement, see RESULTS.md "Round 2c", "Round 2e", "Round 2h",
"Round 2l" and "Round 2m"), so this script patches them into a run of ``bench_train.run``:

  muon=LR     Muon (Jordan et al. 2024) on the LSTM's recurrent matrix ``weight_hh``: momentum 0.95
              (Nesterov), the update orthogonalised by ``ns_steps`` Newton–Schulz iterations in
              bfloat16, scaled by sqrt(rows / cols); AdamW for every other parameter. LR follows
              the same warm-up and cosine as AdamW's, as a multiple of it.
  ns_steps=N  Newton–Schulz iterations (default 5).
  wdrop=P     DropConnect on ``weight_hh`` (AWD-LSTM's weight drop): a fresh mask per batch.
  edrop=P     dropout on the embedded input characters.
  ar=A        activation regularisation (AWD-LSTM's AR): add A · mean(h²) of the LSTM's dropped
              outputs to the loss, so the hidden states stay small.
  tar=B       temporal activation regularisation (AWD-LSTM's TAR): add B · mean((h_t − h_{t−1})²)
              of its outputs before dropout, so the hidden state changes slowly.
  fbias=B     start the LSTM's forget-gate biases at B (Jozefowicz et al. 2015: 1), not ~0.
  orth=1      start each gate's recurrent matrix orthogonal, not uniform in ±1/sqrt(H).
  mingru=1    replace the LSTM by a stack of ``num_layers`` minGRU blocks of width ``hidden_size``
              (Feng et al. 2024, "Were RNNs all we needed?"): each block is LayerNorm → minGRU →
              residual, LayerNorm → MLP (4×) → residual. minGRU's gates read the input only,
              h_t = (1 − z_t) h_{t−1} + z_t g(h̃_t), so every matmul runs once over the whole
              window and the recurrence is element-wise: no matrix waits for the character
              before it.
  tail=F      averaging over the cool-down: the row's EMA until the last share F of the budget,
              then the plain mean of every step's weights from there to the end (SWA/LAWA-style),
              instead of an average that forgets. Needs ``ema`` > 0 (the average is kept apart
              from the weights being trained).

    python benchmarks/try_levers.py --seconds 200 "muon:muon=0.02,ns_steps=3"
    python benchmarks/try_levers.py --seconds 600 "awd:hidden_size=512,dropout=0.25,wdrop=0.25,edrop=0.1"
    python benchmarks/try_levers.py --seconds 200 "mingru:mingru=1,num_layers=3,hidden_size=192,lr=3e-3"
    python benchmarks/try_levers.py --seconds 200 "tail0.3:tail=0.3"

Each argument is ``NAME:field=value,...``: textlab config fields (as for ``--lever``) and the
levers above, applied to ``default_configs("cpu", minutes=seconds / 60)``. One line per run.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from bench_train import run, with_fields
from common import Parser, cores, positive, run_main
from torch.func import functional_call

import textlab
import textlab.models
import textlab.training
from textlab.config import default_configs
from textlab.training import parameter_groups

LEVERS = {"muon": 0.0, "ns_steps": 5, "wdrop": 0.0, "edrop": 0.0, "ar": 0.0, "tar": 0.0, "mingru": 0.0,
          "fbias": 0.0, "orth": 0.0, "tail": 0.0}
active = dict(LEVERS)  # the levers of the run in progress
tail = {"progress": 0.0, "steps": 0}  # how far through its budget the run is; steps averaged in the tail


def newton_schulz(g: torch.Tensor, steps: int) -> torch.Tensor:
    """The nearest orthogonal matrix to ``g``, roughly (Muon's quintic iteration), in bfloat16."""
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = g.size(0) > g.size(1)
    wide = g.bfloat16().mT if tall else g.bfloat16()  # iterate on the wide side: the small Gram matrix
    wide = wide / (wide.norm() + 1e-7)
    for _ in range(steps):
        gram = wide @ wide.mT
        wide = a * wide + (b * gram + c * gram @ gram) @ wide
    return (wide.mT if tall else wide).to(g.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Muon on the groups marked ``muon=True``, AdamW (torch's) on the others."""

    def __init__(self, groups: list[dict], lr: float, ns_steps: int):
        self.ns_steps = ns_steps
        self.adamw = torch.optim.AdamW([g for g in groups if not g["muon"]], lr=lr, betas=(0.9, 0.99))
        super().__init__(groups, {"lr": lr, "momentum": 0.95, "weight_decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):
        self.adamw.step()  # shares its groups (and so the schedule's lr) with this optimizer
        for group in self.param_groups:
            if not group["muon"]:
                continue
            for p in group["params"]:
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                momentum.mul_(group["momentum"]).add_(p.grad)
                update = newton_schulz(p.grad.add(momentum, alpha=group["momentum"]), self.ns_steps)
                scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(update, alpha=-group["lr"] * group["lr_scale"] * scale)


ADAMW_ONLY = textlab.training.make_optimizer


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """textlab's AdamW, or with ``muon`` set: Muon on ``weight_hh``, AdamW on the rest."""
    if not active["muon"]:
        return ADAMW_ONLY(model, cfg)
    recurrent = [p for name, p in model.named_parameters() if name.startswith("lstm.weight_hh")]
    ids = {id(p) for p in recurrent}
    decay, rest = parameter_groups(model)
    groups = [{"params": [p for p in decay if id(p) not in ids], "weight_decay": cfg.weight_decay, "muon": False},
              {"params": rest, "weight_decay": 0.0, "muon": False},
              {"params": recurrent, "muon": True, "lr_scale": active["muon"] / cfg.lr}]
    return MuonAdamW(groups, cfg.lr, int(active["ns_steps"]))


def lstm_forward(self, x: torch.Tensor, state=None):
    """CharLSTM.forward with dropout on the embedded input, DropConnect on ``weight_hh``, and AR/TAR."""
    emb = self.embed(x)
    if self.training and active["edrop"]:
        emb = F.dropout(emb, active["edrop"])
    if self.training and active["wdrop"]:
        weights = dict(self.lstm.named_parameters())
        for name in weights:
            if name.startswith("weight_hh"):
                weights[name] = F.dropout(weights[name], active["wdrop"])
        out, state = functional_call(self.lstm, weights, (emb, state))
    else:
        out, state = self.lstm(emb, state)
    dropped = self.drop(out)
    if self.training and (active["ar"] or active["tar"]):  # a scalar, which next_char_loss adds to the loss
        self.penalty = (active["ar"] * dropped.pow(2).mean()
                        + active["tar"] * (out[:, 1:] - out[:, :-1]).pow(2).mean())
    return self.head(dropped), state


APPLY_LR, UPDATE_AVERAGE = textlab.training.apply_lr, textlab.training.update_average


def apply_lr(optimizer: torch.optim.Optimizer, progress: float, cfg) -> float:
    """textlab's schedule, noting how far through the budget the run is (``tail`` needs it)."""
    tail["progress"] = progress
    return APPLY_LR(optimizer, progress, cfg)


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, step: int, ema: float) -> None:
    """textlab's EMA; with ``tail`` set, in the budget's last share the plain mean of every step since."""
    if not active["tail"] or tail["progress"] < 1 - active["tail"]:
        return UPDATE_AVERAGE(average, model, step, ema)
    tail["steps"] += 1  # the first step of the tail replaces the EMA: the mean starts afresh
    for mean, p in zip(average.parameters(), model.parameters()):
        mean.lerp_(p, 1 / tail["steps"])


NEXT_CHAR_LOSS = textlab.training._next_char_loss


def next_char_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, state):
    """textlab's loss, plus the AR/TAR penalty the forward pass just left on the model."""
    loss, state = NEXT_CHAR_LOSS(model, x, y, state)
    return loss + getattr(model, "penalty", 0.0), state


class LinearScan(torch.autograd.Function):
    """h_t = a_t · h_{t−1} + b_t over the time axis (dim 0), h_0 given: one fused multiply-add per step.

    A Python loop of T element-wise steps on (B, W) slices costs ~1 ms for T = 128 here; the
    log-space parallel scan (``logcumsumexp``) took ~10 ms per call on two CPU threads.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = torch.empty_like(b)                     # (T, B, W)
        prev = h0
        for t in range(len(b)):
            prev = torch.addcmul(b[t], a[t], prev, out=h[t])
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        a, h, h0 = ctx.saved_tensors
        grad_b = torch.empty_like(grad_h)           # dL/dh_t by every path: grad_h_t + a_{t+1} · dL/dh_{t+1}
        grad_b[-1] = grad_h[-1]
        for t in reversed(range(len(grad_h) - 1)):
            torch.addcmul(grad_h[t], a[t + 1], grad_b[t + 1], out=grad_b[t])
        before = torch.cat([h0[None], h[:-1]])      # h_{t−1}
        return grad_b * before, grad_b, a[0] * grad_b[0]


class MinGRUBlock(nn.Module):
    """x + W_o · minGRU(LN(x)), then x + MLP(LN(x)): a transformer block with minGRU for attention."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.gates = nn.Linear(width, 2 * width)      # z (as its logit) and the candidate h̃
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        k, cand = self.gates(self.norm1(x)).transpose(0, 1).chunk(2, -1)  # (T, B, W) each: one matmul
        z = k.sigmoid()
        g = torch.where(cand >= 0, cand + 0.5, cand.sigmoid())           # g(h̃) > 0
        h0 = h0 if h0 is not None else x.new_zeros(x.shape[0], x.shape[2])
        h = LinearScan.apply((1 - z).contiguous(), (z * g).contiguous(), h0)  # h_t = (1 − z_t) h_{t−1} + z_t g(h̃_t)
        x = x + self.drop(self.out(h.transpose(0, 1)))
        return x + self.drop(self.mlp(self.norm2(x))), h[-1]


class MinGRULM(nn.Module):
    """Embedding → ``num_layers`` minGRU blocks → LayerNorm → read-out; state: every block's last h."""

    stateful = True

    def __init__(self, cfg: textlab.ModelConfig):
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.blocks = nn.ModuleList(MinGRUBlock(cfg.hidden_size, cfg.dropout) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, x: torch.Tensor, state=None):
        x, last = self.embed(x), []
        for i, block in enumerate(self.blocks):
            x, h = block(x, None if state is None else state[0][i])
            last.append(h)
        return self.head(self.norm(x)), (torch.stack(last),)  # state: ((layers, B, W),)

    @torch.no_grad()
    def stepper(self):
        """One character at a time, by the same forward: fast enough for ``derailed_share``."""
        def step(ids: torch.Tensor, state):
            logits, state = self(ids[:, None], state)  # (B, 1, V)
            return logits[:, 0], state

        return step


BUILD_MODEL = textlab.training.build_model


def build_model(cfg: textlab.ModelConfig) -> nn.Module:
    """textlab's model, or with ``mingru`` set: a minGRU stack of the same width and depth fields.

    With ``fbias`` the LSTM's forget gates start at that bias (their sum over ``bias_ih`` and
    ``bias_hh``), so it starts out remembering; with ``orth``, each layer's four recurrent
    matrices start orthogonal.
    """
    if active["mingru"]:
        return MinGRULM(cfg)
    model = BUILD_MODEL(cfg)
    H = cfg.hidden_size
    with torch.no_grad():
        for name, p in model.lstm.named_parameters():
            if active["fbias"] and name.startswith("bias_"):  # gate order: input, forget, cell, output
                p[H:2 * H] = active["fbias"] / 2
            if active["orth"] and name.startswith("weight_hh"):
                for gate in p.split(H):
                    nn.init.orthogonal_(gate)
    return model


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive(float), default=200)
    parser.add_argument("--threads", type=positive(int), default=cores(), help="torch threads (default: one per core)")
    parser.add_argument("--corpus", default="tiny_shakespeare")
    parser.add_argument("runs", nargs="+", metavar="NAME:FIELD=VALUE,...")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    textlab.training.make_optimizer = make_optimizer
    textlab.models.CharLSTM.forward = lstm_forward
    textlab.training.build_model = build_model
    textlab.training._next_char_loss = next_char_loss
    textlab.training.apply_lr = apply_lr
    textlab.training.update_average = update_average
    text = textlab.load_corpus(args.corpus).text
    model_cfg, train_cfg = default_configs("cpu", minutes=args.seconds / 60)
    for spec in args.runs:
        name, _, assignments = spec.partition(":")
        levers = [a for a in assignments.split(",") if a.split("=")[0] in LEVERS]
        fields = ",".join(a for a in assignments.split(",") if a and a not in levers)
        active.update(LEVERS, **{k: float(v) for k, v in (a.split("=") for a in levers)})
        tail.update(progress=0.0, steps=0)
        configs = with_fields(model_cfg, train_cfg, fields)
        if active["tail"] and not configs[1].ema:
            parser.error(f"{name}: tail needs ema > 0, the average kept apart from the weights trained")
        r = run(name, text, *configs, args.seconds)
        print(f"{name} ({assignments}): {r['cps']:,.0f} chars/s, {r['steps']} steps, dev {r['dev_loss']:.3f}, "
              f"val {r['val_loss']:.3f}, cold {r['window_loss']:.3f} (nats/char)", flush=True)


if __name__ == "__main__":
    run_main(main)
