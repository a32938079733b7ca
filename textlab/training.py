"""Training and evaluation, shared by the CLI, the notebooks and the benchmarks.

Scores are in **bits per character** (bpc): the cross-entropy loss in nats divided by ln 2.
A model that guessed uniformly among 65 characters would score log2(65) ≈ 6.0 bpc; one that
only knows character frequencies scores the text's unigram entropy (≈ 4.5 for English).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .batches import make_batches
from .checkpoints import save_checkpoint
from .baselines import unigram_bpc
from .config import ModelConfig, TextlabError, TrainConfig, pick_device
from .corpora import Split, split_text
from .models import build_model
from .sampling import chars_per_second
from .vocab import CharVocab

LN2 = math.log(2)
TIME_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]"


@dataclass
class TrainResult:
    """What ``train`` returns: the model (with its best weights), its history, why it stopped."""

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_bpc: float = math.inf  # on the whole validation split, measured at the end
    steps: int = 0
    seconds: float = 0.0
    stopped: str = "budget"  # "budget", "early stop", "interrupted" or "nan"
    message: str = ""


@torch.inference_mode()
def evaluate(model: nn.Module, ids: torch.Tensor, seq_len: int = 256, batch_size: int = 16) -> float:
    """Bits per character of ``model`` on ``ids``: every character predicted from those before it.

    The text is read as ``batch_size`` contiguous streams; an LSTM carries its state across
    windows, so each character is scored with all of its stream's context. MiniGPT sees at most
    ``block_size`` characters, so it reads windows of that length.
    """
    if len(ids) < 2:
        raise TextlabError("need at least 2 characters to evaluate")
    device = next(model.parameters()).device
    if not model.stateful:
        seq_len = min(seq_len, model.config.block_size)
    rows = max(1, min(batch_size, (len(ids) - 1) // seq_len))
    row_len = (len(ids) - 1) // rows
    x = ids[:rows * row_len].view(rows, row_len).to(device)
    y = ids[1:rows * row_len + 1].view(rows, row_len).to(device)
    was_training, state, total = model.training, None, 0.0
    model.eval()
    for start in range(0, row_len, seq_len):
        logits, new_state = model(x[:, start:start + seq_len], state)
        state = new_state if model.stateful else None
        total += F.cross_entropy(logits.flatten(0, 1).float(), y[:, start:start + seq_len].flatten(),
                                 reduction="sum").item()
    model.train(was_training)
    return total / (rows * row_len) / LN2


def lr_at(step: int, progress: float, cfg: TrainConfig) -> float:
    """Linear warm-up for ``warmup_steps``, then a cosine from ``lr`` down to ``lr * min_lr_ratio``.

    ``progress`` runs from 0 to 1 over the budget (steps or minutes), so a time budget gets
    the whole schedule too.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def apply_lr(optimizer: torch.optim.Optimizer, step: int, progress: float, cfg: TrainConfig) -> float:
    """Set every parameter group to the schedule's learning rate for this moment; return it."""
    lr = lr_at(step, progress, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def progress_bar(cfg: TrainConfig, desc: str) -> tqdm:
    """A tqdm.auto bar over the budget: its steps, or the seconds of a time budget.

    A time bar shows no rate: "seconds per second" means nothing.
    """
    if cfg.steps:
        return tqdm(total=cfg.steps, disable=not cfg.progress, desc=desc, unit="step")
    return tqdm(total=int(cfg.minutes * 60), disable=not cfg.progress, desc=desc, bar_format=TIME_BAR)


def advance(bar: tqdm, cfg: TrainConfig, elapsed: float) -> None:
    """After a step: move a step bar by one, a time bar up to the whole seconds elapsed."""
    if cfg.steps:
        bar.update(1)
    elif int(elapsed) > bar.n:
        bar.update(int(elapsed) - bar.n)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on weight matrices only, never on biases, norms or embeddings."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n and "tok" not in n
             and "pos" not in n]
    rest = [p for p in model.parameters() if all(p is not d for d in decay)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def _emit(callbacks, event: str, payload) -> None:
    for cb in callbacks:
        handler = getattr(cb, event, None)
        if handler is not None:
            handler(payload)


def _autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where supported, else fp16); full precision elsewhere."""
    if device.type != "cuda":
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   scaler: torch.amp.GradScaler | None, grad_clip: float) -> None:
    """Backward, clip the gradient norm to ``grad_clip``, step (through the fp16 scaler if any)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def train(model: nn.Module, train_ids: torch.Tensor, val_ids: torch.Tensor, cfg: TrainConfig | None = None,
          callbacks=(), vocab: CharVocab | None = None, checkpoint: str | Path | None = None) -> TrainResult:
    """Train ``model`` on ``train_ids`` and score it on ``val_ids`` in bits per character.

    Stops when the budget (``cfg.steps`` and/or ``cfg.minutes``) is spent, after ``cfg.patience``
    evaluations without a new best, on Ctrl-C, or if the loss becomes NaN. The model keeps the
    weights of its best evaluation. With ``vocab`` and ``checkpoint`` set, each new best is saved.
    Callbacks are objects with any of ``on_step(info)``, ``on_eval(record)``, ``on_end(result)``.
    """
    cfg = cfg or TrainConfig()
    if cfg.steps is None and cfg.minutes is None:
        raise ValueError("give a budget: TrainConfig.steps or TrainConfig.minutes")
    if (cfg.steps is not None and cfg.steps < 1) or (cfg.minutes is not None and cfg.minutes <= 0):
        raise ValueError(f"the budget must be positive, not steps={cfg.steps}, minutes={cfg.minutes}")
    if cfg.eval_every < 1:
        raise ValueError(f"eval_every must be ≥ 1, not {cfg.eval_every}")
    if not model.stateful and cfg.seq_len > model.config.block_size:
        raise ValueError(f"seq_len={cfg.seq_len} is longer than the model's block_size="
                         f"{model.config.block_size}")
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = make_batches(cfg.batching, train_ids, cfg.batch_size, cfg.seq_len, generator)
    optimizer = make_optimizer(model, cfg)
    autocast, scaler = _autocast(device)
    max_steps = cfg.steps or math.inf
    budget = cfg.minutes * 60 if cfg.minutes is not None else math.inf
    eval_ids = val_ids[:cfg.eval_chars]
    result = TrainResult(model)
    best_weights, evals_without_best, final_eval_s = None, 0, 0.0
    state, step, chars, loss_sum, loss_count, lr = None, 0, 0, 0.0, 0, cfg.lr
    def checkpoint_eval() -> str | None:
        """Score the val slice, keep the best weights, tell the callbacks; "stop" for early stopping."""
        nonlocal best_weights, evals_without_best, final_eval_s, loss_sum, loss_count
        t_eval = time.perf_counter()
        val_bpc = evaluate(model, eval_ids, batch_size=cfg.batch_size)
        # The final full evaluation takes about this long; a time budget leaves room for it.
        final_eval_s = (time.perf_counter() - t_eval) * len(val_ids) / max(len(eval_ids), 1)
        record = {"step": step, "chars_seen": chars, "seconds": round(time.perf_counter() - start, 2),
                  "train_bpc": loss_sum / max(loss_count, 1) / LN2, "val_bpc": val_bpc, "lr": lr}
        loss_sum, loss_count = 0.0, 0
        is_best = not result.history or val_bpc < min(r["val_bpc"] for r in result.history)
        result.history.append(record)
        bar.set_postfix(train_bpc=f"{record['train_bpc']:.3f}", val_bpc=f"{val_bpc:.3f}")
        if is_best:
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            evals_without_best = 0
            if checkpoint is not None and vocab is not None:
                save_checkpoint(checkpoint, model, vocab, cfg, result.history)
        else:
            evals_without_best += 1
        _emit(callbacks, "on_eval", record)
        if cfg.patience is not None and evals_without_best >= cfg.patience:
            result.stopped = "early stop"
            return "stop"
        return None

    bar = progress_bar(cfg, "training")
    start = time.perf_counter()
    try:
        while True:
            elapsed = time.perf_counter() - start
            progress = max(step / max_steps, (elapsed + final_eval_s) / budget)
            if progress >= 1:
                if loss_count:  # steps since the last evaluation: score them too
                    checkpoint_eval()
                break
            lr = apply_lr(optimizer, step, progress, cfg)
            x, y, reset = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if reset or not model.stateful:
                state = None
            with autocast:
                logits, state = model(x, state)
                loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
            # Keep the state's values but cut its history: backprop stops at this window.
            state = tuple(s.detach() for s in state) if model.stateful else None
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                result.stopped = "nan"
                result.message = (f"loss became {loss_value} at step {step}: training stopped. "
                                   f"Lower the learning rate (lr={cfg.lr}) or grad_clip")
                tqdm.write(result.message)
                break
            optimizer_step(model, optimizer, loss, scaler, cfg.grad_clip)
            step += 1
            chars += x.numel()
            loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
            elapsed = time.perf_counter() - start
            _emit(callbacks, "on_step", {"step": step, "chars_seen": chars, "seconds": elapsed,
                                         "loss": loss_value, "lr": lr})
            advance(bar, cfg, elapsed)
            if step % cfg.eval_every == 0 or step >= max_steps:
                if checkpoint_eval() == "stop":
                    break
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        result.message = f"interrupted at step {step}: keeping the best weights so far"
        tqdm.write(result.message)
    finally:
        bar.close()
    if best_weights is not None:
        model.load_state_dict(best_weights)
    result.steps, result.seconds = step, time.perf_counter() - start
    if step > 0:
        result.best_val_bpc = evaluate(model, val_ids, batch_size=cfg.batch_size)
        result.seconds = time.perf_counter() - start
        if checkpoint is not None and vocab is not None:
            save_checkpoint(checkpoint, model, vocab, cfg, result.history)
    _emit(callbacks, "on_end", result)
    return result


@dataclass
class Run:
    """Everything ``train_on_text`` made: the trained model, its vocabulary, the split, the scores."""

    model: nn.Module
    vocab: CharVocab
    split: Split
    result: TrainResult
    unigram_bpc: float  # the baseline to beat, on the same validation text


def train_on_text(text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, callbacks=(),
                  checkpoint: str | Path | None = None) -> Run:
    """The whole recipe in one call: vocabulary → split → model → train (the CLI runs this)."""
    vocab = CharVocab.from_text(text)
    split = split_text(text, train_cfg.val_fraction)
    model = build_model(replace(model_cfg, vocab_size=len(vocab)))
    result = train(model, vocab.encode(split.train), vocab.encode(split.val), train_cfg, callbacks,
                   vocab=vocab, checkpoint=checkpoint)
    return Run(model, vocab, split, result, unigram_bpc(split.train, split.val))


def results_row(parameters: int, seconds: float, val_bpc: float, sampler: Callable[..., str]) -> dict:
    """One model's row of a comparison table: its size, training time, score and sampling speed.

    ``sampler`` writes text when called as ``sampler(length=n)``, e.g.
    ``functools.partial(sample, model, vocab, "ROMEO:")``; its speed is measured here
    (``chars_per_second``). Print a dict of rows with ``textlab.plots.show_table``.
    """
    return {"parameters": parameters, "train s": round(seconds), "val bpc": val_bpc,
            "chars/s": round(chars_per_second(sampler))}
