"""The two character-level language models of the course, with one interface.

Both take a batch of character ids and return next-character logits plus a *state*:

    logits, state = model(x, state)    # x: (B, T) ids → logits: (B, T, vocab_size)

For the LSTM the state is its memory (h, c); for MiniGPT it is the attention key/value
cache. Training, evaluation, checkpoints and sampling all use this one call.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig

State = tuple  # whatever a model carries from one call to the next
Step = Callable[[torch.Tensor, State | None], tuple[torch.Tensor, State]]


class CharLSTM(nn.Module):
    """Embedding → stacked LSTM → dropout → linear read-out over the vocabulary."""

    stateful = True  # the trainer carries (h, c) from batch to batch

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 384,
                 num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.config = ModelConfig("lstm", vocab_size, embed_dim, hidden_size, num_layers, dropout)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        emb = self.embed(x)                  # (B, T) → (B, T, E)
        out, state = self.lstm(emb, state)   # (B, T, H); state = (h, c), each (layers, B, H)
        logits = self.head(self.drop(out))   # (B, T, vocab_size)
        return logits, state

    @torch.no_grad()
    def stepper(self) -> Step:
        """A fast one-character step for generation, the same maths as ``forward``.

        Calling ``nn.LSTM`` once per character spends most of its time on per-call set-up,
        not arithmetic. Here the weights are laid out once: the embedding is folded into the
        first layer's input weights (one row lookup replaces embedding + matmul), and each step
        is a few matrix-vector products on plain tensors.
        """
        H, layers = self.config.hidden_size, self.config.num_layers
        w = {name: p.detach() for name, p in self.lstm.named_parameters()}
        table = self.embed.weight @ w["weight_ih_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]  # (V, 4H)
        recur = [w["weight_hh_l0"].T.contiguous()]                                            # (H, 4H)
        bias = [None]
        for i in range(1, layers):  # deeper layers read [input from below, own h] in one matmul
            recur.append(torch.cat([w[f"weight_ih_l{i}"], w[f"weight_hh_l{i}"]], 1).T.contiguous())
            bias.append(w[f"bias_ih_l{i}"] + w[f"bias_hh_l{i}"])
        head_w, head_b = self.head.weight.detach().T.contiguous(), self.head.bias.detach()

        def step(ids: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
            if state is None:
                zeros = table.new_zeros(layers, len(ids), H)
                state = (zeros, zeros)
            h, c = state
            hs, cs, x = [], [], None
            for i in range(layers):
                if i == 0:
                    gates = torch.addmm(table.index_select(0, ids), h[0], recur[0])  # (B, 4H)
                else:
                    gates = torch.addmm(bias[i], torch.cat([x, h[i]], 1), recur[i])
                s = gates.sigmoid()                       # gate order: input, forget, cell, output
                c_i = torch.addcmul(s[:, H:2 * H] * c[i], s[:, :H], gates[:, 2 * H:3 * H].tanh())
                x = s[:, 3 * H:] * c_i.tanh()
                hs.append(x)
                cs.append(c_i)
            if layers == 1:  # a view instead of a copy: this runs once per generated character
                return torch.addmm(head_b, x, head_w), (x[None], c_i[None])
            return torch.addmm(head_b, x, head_w), (torch.stack(hs), torch.stack(cs))

        return step


class CausalSelfAttention(nn.Module):
    """Each position attends to itself and the positions before it, in ``n_head`` heads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # queries, keys, values at once
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = cfg.dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """x: (B, T, C) → (B, T, C), plus this layer's keys and values (B, nh, T_seen, hs) for the cache."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:  # generation: the one new position attends to all cached ones
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)  # (B, nh, T_seen, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None,  # softmax(q·kᵀ/√hs)·v
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) → (B, T, C): the heads side by side
        return self.resid_drop(self.proj(y)), (k, v)


class MLP(nn.Module):
    """Each position on its own: widen 4×, GELU, project back to the residual stream."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.hidden_size
        self.fc = nn.Linear(C, 4 * C)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU
        self.proj = nn.Linear(4 * C, C)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.gelu(self.fc(x))))  # (B, T, C) → (B, T, 4C) → (B, T, C)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints written before the layers had names call them by position (an nn.Sequential).
        for old, new in (("0.", "fc."), ("2.", "proj.")):
            for kind in ("weight", "bias"):
                if prefix + old + kind in state_dict:
                    state_dict[prefix + new + kind] = state_dict.pop(prefix + old + kind)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Block(nn.Module):
    """GPT-2's block: pre-LayerNorm, attention, then a GELU MLP, each added to the residual."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.hidden_size
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cache: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        a, cache = self.attn(self.ln1(x), cache)  # (B, T, C)
        x = x + a                                 # positions exchange information…
        return x + self.mlp(self.ln2(x)), cache   # …then each one thinks on its own


class MiniGPT(nn.Module):
    """A character-level GPT-2: token + learned position embeddings, blocks, tied read-out."""

    stateful = False  # each training window is seen on its own

    def __init__(self, vocab_size: int, hidden_size: int = 128, num_layers: int = 4,
                 n_head: int = 4, block_size: int = 128, dropout: float = 0.0):
        super().__init__()
        if hidden_size % n_head:
            raise ValueError(f"hidden_size={hidden_size} must be a multiple of n_head={n_head}: "
                             "each head gets hidden_size // n_head dimensions")
        self.config = ModelConfig(kind="gpt", vocab_size=vocab_size, embed_dim=hidden_size,
                                  hidden_size=hidden_size, num_layers=num_layers, dropout=dropout,
                                  n_head=n_head, block_size=block_size)
        self.tok = nn.Embedding(vocab_size, hidden_size)
        self.pos = nn.Embedding(block_size, hidden_size)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(self.config) for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size, bias=False)
        self.head.weight = self.tok.weight  # weight tying, as in GPT-2: one matrix reads and writes
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: the projections that add to the residual, scaled by depth
            for proj in (block.attn.proj, block.mlp.proj):
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * num_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, T) ids → logits (B, T, vocab_size), and state = (per-layer key/value caches, ids seen).

        Without a state, x is a whole window of at most ``block_size`` characters. With one
        (generation), x is the one next character; when the context is full, the model starts
        again from the last ``block_size`` characters, so positions never run past the table.
        """
        block = self.config.block_size
        if state is None:
            caches, seen = [None] * len(self.blocks), x[:, :0]
            if x.shape[1] > block:
                raise ValueError(f"MiniGPT reads at most block_size={block} characters at once, got "
                                 f"{x.shape[1]}; pass the last {block} (x[:, -{block}:])")
        else:
            caches, seen = state
            if x.shape[1] != 1:
                raise ValueError("with a state (key/value cache), MiniGPT takes one new character at a time")
            if seen.shape[1] + 1 > block:  # full: recompute the last block_size ids from scratch
                logits, state = self.forward(torch.cat([seen, x], 1)[:, -block:])
                return logits[:, -1:], state
        past = seen.shape[1]
        positions = torch.arange(past, past + x.shape[1], device=x.device)  # (T,)
        h = self.drop(self.tok(x) + self.pos(positions))   # (B, T, C)
        new_caches = []
        for blk, cache in zip(self.blocks, caches):
            h, cache = blk(h, cache)                         # (B, T, C)
            new_caches.append(cache)
        logits = self.head(self.ln_f(h))                     # (B, T, vocab_size)
        return logits, (new_caches, torch.cat([seen, x], 1))

    def stepper(self) -> Step:
        """One character at a time with the key/value cache: each step costs one position, not T.

        Once ``block_size`` characters have been seen, every step recomputes the last
        ``block_size`` (learned positions cannot slide), as re-reading the text would.
        """
        def step(ids: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
            logits, state = self(ids[:, None], state)  # (B,) → (B, 1, vocab_size)
            return logits[:, -1], state

        return step


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``with evaluating(model):`` eval mode (no dropout) inside, the caller's mode restored after.

    Sampling in the middle of training must not switch dropout off for the rest of the run.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def build_model(cfg: ModelConfig) -> nn.Module:
    """A model from its config (how checkpoints rebuild what they saved)."""
    if cfg.vocab_size < 1:
        raise ValueError("ModelConfig.vocab_size is not set: use len(vocab)")
    if cfg.kind == "lstm":
        return CharLSTM(cfg.vocab_size, cfg.embed_dim, cfg.hidden_size, cfg.num_layers, cfg.dropout)
    if cfg.kind == "gpt":
        return MiniGPT(cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.n_head, cfg.block_size,
                       cfg.dropout)
    raise ValueError(f"unknown model kind {cfg.kind!r}: use 'lstm' or 'gpt'")


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
