"""Training and evaluation, shared by the CLI, the notebooks and the benchmarks.

Scores are in **bits per character** (bpc): the cross-entropy loss in nats divided by ln 2.
A model that guessed uniformly among 65 characters would score log2(65) ≈ 6.0 bpc; one that
only knows character frequencies scores the text's unigram entropy (≈ 4.5 for English).
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from IPython.display import display
from tqdm.auto import tqdm
from tqdm.notebook import tqdm as tqdm_notebook

from .batches import make_batches, score_windows
from .checkpoints import check_fits, check_prime, save_checkpoint
from .baselines import unigram_bpc
from .config import ModelConfig, TextlabError, TrainConfig, pick_device
from .corpora import Split, hold_out, split_text
from .models import build_model, evaluating
from .sampling import chars_per_second, sample
from .vocab import CharVocab

LN2 = math.log(2)
TIME_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} s [{elapsed}<{remaining}{postfix}]"


@dataclass
class TrainResult:
    """What ``train`` returns: the model (with its best weights), its history, why it stopped."""

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    val_bpc: float = math.inf  # the kept weights' bits per character on the whole validation text
    kept_step: int = 0  # the evaluation whose weights were kept: the best on the dev text
    steps: int = 0
    seconds: float = 0.0  # spent training; the evaluations come on top
    stopped: str = "budget"  # "budget", "early stop", "interrupted" or "nan"
    message: str = ""


def default_context(model: nn.Module) -> tuple[int, int]:
    """``(context, stride)`` for scoring ``model``: the course's one way of reading a validation text.

    The LSTM reads chunks of 1024 characters, each after warming its state up on the 256 before
    it; MiniGPT reads windows of its ``block_size`` that advance by half a block. Either way
    each character is predicted from at least 256 (LSTM) or block/2 (MiniGPT) characters of
    context, the most each one can use well; see ``batches.score_windows``.
    """
    if model.stateful:
        return 256, 1024
    block = model.config.block_size
    return block // 2, block - block // 2


def describe_context(model: nn.Module) -> str:
    """How ``evaluate`` reads ``model`` by default, in words, for a results table."""
    context, stride = default_context(model)
    if model.stateful:
        return f"{stride}-char chunks, each from a fresh state warmed up on the {context} chars before it"
    return f"sliding window of {context + stride}: every char sees ≥ {context}"


@torch.inference_mode()
def nll(model: nn.Module, ids: torch.Tensor, context: int | None = None, stride: int | None = None,
        batch_size: int = 32) -> tuple[float, int]:
    """Total negative log-likelihood in nats of ``ids[1:]``, each predicted from the ids before it, and
    how many were scored (``len(ids) - 1``: every target exactly once).

    Windows of ``context + stride`` ids are laid by position (``batches.score_windows``) and run
    ``batch_size`` at a time, each from a fresh state; ``batch_size`` changes the speed, not the
    result. ``context=0, stride=64`` is nanoGPT's protocol: cold windows of 64 characters.
    """
    if len(ids) < 2:
        raise TextlabError("need at least 2 characters to evaluate")
    default = default_context(model)
    context = default[0] if context is None else context
    stride = default[1] if stride is None else stride
    if not model.stateful and context + stride > model.config.block_size:
        raise ValueError(f"context + stride = {context + stride} is more than the model's "
                         f"block_size={model.config.block_size}")
    device = next(model.parameters()).device
    x, y = ids[:-1].to(device), ids[1:].to(device)
    by_length: dict[int, list[tuple[int, int]]] = {}
    for start, end, first in score_windows(len(x), context, stride):
        by_length.setdefault(end - start, []).append((start, first - start))
    total = 0.0
    with evaluating(model):
        for length, windows in by_length.items():
            for i in range(0, len(windows), batch_size):
                group = windows[i:i + batch_size]
                rows = torch.stack([torch.arange(s, s + length) for s, _ in group]).to(device)  # (B, L)
                logits, _ = model(x[rows])                                                        # (B, L, V)
                losses = F.cross_entropy(logits.float().transpose(1, 2), y[rows], reduction="none")  # (B, L)
                offsets = torch.tensor([o for _, o in group], device=device)                     # (B,)
                keep = torch.arange(length, device=device) >= offsets[:, None]  # (B, L): past the context
                total += losses[keep].sum().item()
    return total, len(y)


def evaluate(model: nn.Module, ids: torch.Tensor, context: int | None = None, stride: int | None = None,
             chars: int | None = None, batch_size: int = 32) -> float:
    """Bits per character of ``model`` on ``ids``: the course's one yardstick (see ``nll``).

    ``chars`` is how many characters the scored ids stand for, when an id is not one character
    (GPT-2's tokens); by default each id is one.
    """
    total, count = nll(model, ids, context, stride, batch_size)
    return total / (chars or count) / LN2


def lr_at(progress: float, cfg: TrainConfig) -> float:
    """The learning rate at ``progress`` (0 → 1 over the budget, steps or minutes).

    A linear warm-up over the first ``cfg.warmup`` of the budget, then down to
    ``lr * min_lr_ratio`` by the end: along a cosine (``schedule="cosine"``), or holding ``lr``
    until the last ``cfg.cooldown`` of the budget and falling in a straight line over it
    (``schedule="hold"``). One continuous curve, so a time budget gets the whole schedule too.
    """
    progress = min(max(progress, 0.0), 1.0)
    if progress < cfg.warmup:
        return cfg.lr * progress / cfg.warmup
    if cfg.schedule == "hold":
        start = max(1 - cfg.cooldown, cfg.warmup)
        left = 1 - max(progress - start, 0.0) / (1 - start)  # 1 while holding, then linearly to 0
    elif cfg.schedule == "cosine":
        decay = (progress - cfg.warmup) / (1 - cfg.warmup)
        left = 0.5 * (1 + math.cos(math.pi * decay))
    else:
        raise ValueError(f"schedule must be 'cosine' or 'hold', not {cfg.schedule!r}")
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * left)


def apply_lr(optimizer: torch.optim.Optimizer, progress: float, cfg: TrainConfig) -> float:
    """Set every parameter group to the schedule's learning rate for this moment; return it."""
    lr = lr_at(progress, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def progress_bar(cfg: TrainConfig, desc: str) -> tqdm:
    """A tqdm.auto bar over the budget: its steps, or the seconds of a time budget.

    A time bar shows no rate: "seconds per second" means nothing. In a notebook the bar is a
    widget; ``finish_bar`` also refreshes the plain-text copy saved beside it (what GitHub shows).
    """
    total, style = (cfg.steps, {"unit": "step"}) if cfg.steps else (int(cfg.minutes * 60), {"bar_format": TIME_BAR})
    if not issubclass(tqdm, tqdm_notebook) or not cfg.progress:
        return tqdm(total=total, disable=not cfg.progress, desc=desc, **style)
    bar = tqdm(total=total, desc=desc, display=False, **style)
    bar.handle = display(bar.container, display_id=True)
    return bar


def advance(bar: tqdm, cfg: TrainConfig, elapsed: float) -> None:
    """After a step: move a step bar by one, a time bar up to the whole seconds elapsed."""
    if cfg.steps:
        bar.update(1)
    elif int(elapsed) > bar.n:
        bar.update(min(int(elapsed), bar.total) - bar.n)


def finish_bar(bar: tqdm, spent: bool) -> None:
    """Close the bar: full (green in a notebook) when the budget was ``spent``, as it stands otherwise."""
    if spent and bar.total:
        bar.update(bar.total - bar.n)
    bar.close()
    if getattr(bar, "handle", None) is not None:
        bar.handle.update(bar.container)  # the saved text copy now shows the finished bar


# Weight decay pulls weights towards zero. It suits the matrices that mix features (Linear and
# LSTM weights; transformers' GPT-2 writes its Linear layers as ``Conv1D``), not the tables that
# hold one vector per character (embeddings), not norms and not biases: minGPT's rule.
DECAY_MODULES = (nn.Linear, nn.LSTM, nn.GRU, nn.RNN)
NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm)


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(decay, no_decay)``: every parameter in exactly one, chosen by the module that owns it."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:  # a tied weight (MiniGPT's read-out is its embedding) counts once
                continue
            seen.add(id(p))
            if name.startswith("bias") or isinstance(module, NO_DECAY_MODULES):
                no_decay.append(p)
            elif isinstance(module, DECAY_MODULES) or type(module).__name__ == "Conv1D":
                decay.append(p)
            else:
                raise TypeError(f"no weight-decay rule for {type(module).__name__}.{name}: add the module "
                                "type to DECAY_MODULES or NO_DECAY_MODULES in textlab/training.py")
    assert len(seen) == len({id(p) for p in model.parameters()}), "a parameter is in no group"
    return decay, no_decay


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on the weight matrices only (see ``parameter_groups``)."""
    decay, no_decay = parameter_groups(model)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))


def _emit(callbacks, event: str, payload) -> None:
    for cb in callbacks:
        handler = getattr(cb, event, None)
        if handler is not None:
            handler(payload)


def _autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where the GPU has it, else fp16); full precision elsewhere."""
    if device.type != "cuda":
        return nullcontext(), None
    # Not emulated bf16: a T4 (Colab's free GPU) "supports" it only in software, slower than fp16.
    if torch.cuda.is_bf16_supported(including_emulation=False):
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


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, step: int, ema: float) -> None:
    """Move ``average``'s weights towards ``model``'s: the mean of all steps so far, until that
    mean spans ``1 / (1 - ema)`` steps; from then on an exponential moving average (EMA).

    Late in training the weights jitter around a valley floor; their average sits nearer its
    middle, and scores better than any one of them, at the cost of one extra copy of the weights.
    """
    weight = max(1 - ema, 1 / step)
    for mean, p in zip(average.parameters(), model.parameters()):
        mean.lerp_(p, weight)  # mean += weight * (p - mean)


def forget_rows(state: tuple, share: float, generator: torch.Generator) -> tuple:
    """Zero the carried state of a random ``share`` of the stream rows: those windows start cold.

    A model only ever trained with a warm state never learns to start from nothing. Yet every
    sample starts from a zero state, and so does nanoGPT's scoring (cold 64-character windows):
    a few cold starts teach it.
    """
    keep = (torch.rand(state[0].shape[1], generator=generator) >= share).to(state[0])  # (B,)
    return tuple(s * keep[None, :, None] for s in state)


def _next_char_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, state):
    logits, state = model(x, state)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten()), state


def train(model: nn.Module, train_ids: torch.Tensor, val_ids: torch.Tensor, cfg: TrainConfig | None = None,
          callbacks=(), vocab: CharVocab | None = None, checkpoint: str | Path | None = None,
          score: Callable[[nn.Module, torch.Tensor], float] = evaluate, unit: str = "bpc",
          prime: str | None = None) -> TrainResult:
    """Train ``model`` on ``train_ids``; report its bits per character on ``val_ids``.

    The first ``cfg.dev_fraction`` of ``train_ids`` is held out (``hold_out``). Every
    ``cfg.eval_every`` steps, and once before the first, both the dev text and the whole
    validation text are scored with ``score``; the weights with the best *dev* score are kept,
    and ``result.val_bpc`` is their validation score. With ``cfg.ema`` an average of the weights is
    scored and kept (``update_average``): ``model`` holds that average all along, so a callback that
    samples from ``model`` samples what is scored, and a copy of it is what the optimizer moves.
    Stops when the budget is spent (``cfg.steps`` and/or ``cfg.minutes`` of training; the evaluations,
    their saves and the callbacks' ``on_eval`` plots come on top, so a model is not cut short by its
    own measurement), after ``cfg.patience`` evaluations without a new best, on Ctrl-C, or if the
    loss becomes NaN; ``model`` ends with the kept weights, in eval mode. With ``vocab`` and ``checkpoint``
    set, each new best after step 0 is saved: the untrained model never replaces an earlier file;
    ``prime`` (the text's ``Text.prime``) is saved with it, where ``sample`` should start.
    Callbacks are objects with any of ``on_step(info)``, ``on_eval(record)``, ``on_end(result)``.
    ``unit`` is what the progress bar calls the scores: bits per character ("bpc") unless the ids
    are other tokens (the word model's "bits_per_token"); the history's keys keep their names.
    """
    cfg = cfg or TrainConfig()
    if cfg.steps is None and cfg.minutes is None:
        raise ValueError("give a budget: TrainConfig.steps or TrainConfig.minutes")
    if (cfg.steps is not None and cfg.steps < 1) or (cfg.minutes is not None and cfg.minutes <= 0):
        raise ValueError(f"the budget must be positive, not steps={cfg.steps}, minutes={cfg.minutes}")
    for name in ("batch_size", "seq_len", "eval_every"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be ≥ 1, not {getattr(cfg, name)}")
    if cfg.patience is not None and cfg.patience < 1:
        raise ValueError(f"patience is a number of evaluations ≥ 1 (None: never stop early), not {cfg.patience}")
    if not 0 <= cfg.warmup < 1:
        raise ValueError(f"warmup is a share of the budget in [0, 1), not {cfg.warmup}")
    if not 0 < cfg.cooldown <= 1:
        raise ValueError(f"cooldown is a share of the budget in (0, 1], not {cfg.cooldown}")
    if not cfg.grad_clip > 0:  # a norm clipped to 0 is no gradient at all: the model would never learn
        raise ValueError(f"grad_clip is the largest gradient norm kept, > 0, not {cfg.grad_clip}")
    if not 0 <= cfg.ema < 1:
        raise ValueError(f"ema is a decay per step in [0, 1) (0: off), not {cfg.ema}")
    if not 0 <= cfg.state_reset <= 1:
        raise ValueError(f"state_reset is a share of the rows in [0, 1] (0: always carry), not {cfg.state_reset}")
    lr_at(0.5, cfg)  # an unknown schedule fails here, before any work
    if checkpoint is not None and vocab is not None:
        check_fits(model, vocab)  # and a checkpoint that could not be saved
        check_prime(prime, vocab)
    if not model.stateful and cfg.seq_len > model.config.block_size:
        raise ValueError(f"seq_len={cfg.seq_len} is longer than the model's block_size="
                         f"{model.config.block_size}")
    fit_ids, dev_ids = hold_out(train_ids, cfg.dev_fraction)
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    generator = torch.Generator().manual_seed(cfg.seed)
    batches = make_batches(cfg.batching, fit_ids, cfg.batch_size, cfg.seq_len, generator)
    learner = copy.deepcopy(model) if cfg.ema else model  # what the optimizer moves; model: the average
    optimizer = make_optimizer(learner, cfg)
    autocast, scaler = _autocast(device)
    max_steps = cfg.steps or math.inf
    budget = cfg.minutes * 60 if cfg.minutes is not None else math.inf
    result = TrainResult(model)
    best = {"dev_bpc": math.inf}
    kept_weights, evals_without_best, measuring_s = None, 0, 0.0  # a time budget counts training only
    state, step, chars, loss_sum, loss_count, lr = None, 0, 0, 0.0, 0, 0.0

    def evaluate_and_keep(seconds: float) -> str | None:
        """Score dev and val, keep (and save) the best weights by dev, tell the callbacks; "stop" to stop early."""
        nonlocal kept_weights, evals_without_best, loss_sum, loss_count
        dev_bpc, val_bpc = score(model, dev_ids), score(model, val_ids)
        record = {"step": step, "chars_seen": chars, "seconds": round(seconds, 2),
                  "train_bpc": loss_sum / loss_count / LN2 if loss_count else None,
                  "dev_bpc": dev_bpc, "val_bpc": val_bpc, "lr": lr}
        loss_sum, loss_count = 0.0, 0
        result.history.append(record)
        bar.set_postfix({f"dev_{unit}": f"{dev_bpc:.3f}", f"val_{unit}": f"{val_bpc:.3f}"})
        if dev_bpc < best["dev_bpc"]:
            best.update(record)
            kept_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            evals_without_best = 0
            if checkpoint is not None and vocab is not None and step > 0:  # never the untrained model
                save_checkpoint(checkpoint, model, vocab, cfg, result.history, prime)
        else:
            evals_without_best += 1
        _emit(callbacks, "on_eval", record)
        if cfg.patience is not None and evals_without_best >= cfg.patience:
            result.stopped = "early stop"
            return "stop"
        return None

    def checkpoint_eval() -> str | None:
        """``evaluate_and_keep``, timed apart: scoring, saving and the callbacks' plots are measurement."""
        nonlocal measuring_s
        t_eval = time.perf_counter()
        try:
            return evaluate_and_keep(training_seconds())
        finally:
            measuring_s += time.perf_counter() - t_eval

    def training_seconds() -> float:
        """Seconds spent training so far: a time budget pays for training, not for measuring it."""
        return time.perf_counter() - start - measuring_s

    bar = progress_bar(cfg, "training")
    start = time.perf_counter()
    try:
        checkpoint_eval()  # step 0: the untrained model, about log2(vocabulary size) bits
        while True:
            spent = training_seconds() / budget
            if max(step / max_steps, spent) >= 1:
                if loss_count:  # steps since the last evaluation: score them too
                    checkpoint_eval()
                break
            # The schedule where this step ends: the first step learns, the last reaches the schedule's end.
            lr = apply_lr(optimizer, max((step + 1) / max_steps, spent), cfg)
            x, y, reset = next(batches)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if reset or not model.stateful:
                state = None
            elif cfg.state_reset:
                state = forget_rows(state, cfg.state_reset, generator)
            with autocast:
                loss, state = _next_char_loss(learner, x, y, state)
            # Keep the state's values but cut its history: backprop stops at this window.
            state = tuple(s.detach() for s in state) if model.stateful else None
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                result.stopped = "nan"
                result.message = (f"loss became {loss_value} at step {step}: training stopped. "
                                  f"Lower the learning rate (lr={cfg.lr}) or grad_clip")
                tqdm.write(result.message)
                break
            optimizer_step(learner, optimizer, loss, scaler, cfg.grad_clip)
            step += 1
            if cfg.ema:
                update_average(model, learner, step, cfg.ema)
            chars += x.numel()
            loss_sum, loss_count = loss_sum + loss_value, loss_count + 1
            elapsed = training_seconds()
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
        finish_bar(bar, spent=result.stopped == "budget")
    if kept_weights is not None:
        model.load_state_dict(kept_weights)
        result.val_bpc, result.kept_step = best["val_bpc"], best["step"]
    model.eval()  # ready to score and sample: dropout off, as the scores were taken
    result.steps, result.seconds = step, training_seconds()
    _emit(callbacks, "on_end", result)
    return result


def kept_record(history: list[dict]) -> dict:
    """The evaluation whose weights ``train`` kept: the best on the dev text.

    Its ``val_bpc`` is the model's validation score, the course's one yardstick. (A history from
    before dev texts existed has no ``dev_bpc``; its best ``val_bpc`` was the one kept then.)
    """
    return min(history, key=lambda r: r.get("dev_bpc", r["val_bpc"]))


class PrintSamples:
    """A training callback: at each evaluation, print the score and a short sample on one line.

    ``train(..., callbacks=[PrintSamples(model, vocab, "ROMEO:")])`` shows the text improving as
    training goes on: random letters, then words, then names and line breaks. Newlines print as ⏎.
    The same seed every time, so the lines differ only because the model did.
    """

    def __init__(self, model: nn.Module, vocab: CharVocab, prime: str = "\n", length: int = 80,
                 temperature: float = 0.8, seed: int = 0):
        self.model, self.vocab, self.prime = model, vocab, prime
        self.length, self.temperature, self.seed = length, temperature, seed

    def on_eval(self, record: dict) -> None:
        text = sample(self.model, self.vocab, self.prime, self.length, self.temperature, seed=self.seed)
        print(f"step {record['step']:>5} · {record['chars_seen'] / 1e6:5.1f} M chars · val "
              f"{record['val_bpc']:.3f} bpc │ {text.replace(chr(10), '⏎')}")


@dataclass
class Run:
    """Everything ``train_on_text`` made: the trained model, its vocabulary, the split, the scores."""

    model: nn.Module
    vocab: CharVocab
    split: Split
    result: TrainResult
    unigram_bpc: float  # the baseline to beat, on the same validation text


def train_on_text(text: str, model_cfg: ModelConfig, train_cfg: TrainConfig, callbacks=(),
                  checkpoint: str | Path | None = None, prime: str | None = None) -> Run:
    """The whole recipe in one call: vocabulary → split → model → train (the CLI runs this)."""
    vocab = CharVocab.from_text(text)
    split = split_text(text, train_cfg.val_fraction)
    model = build_model(replace(model_cfg, vocab_size=len(vocab)))
    result = train(model, vocab.encode(split.train), vocab.encode(split.val), train_cfg, callbacks,
                   vocab=vocab, checkpoint=checkpoint, prime=prime)
    return Run(model, vocab, split, result, unigram_bpc(split.train, split.val))


def results_row(parameters: int, seconds: float, val_bpc: float, sampler: Callable[..., str]) -> dict:
    """One model's row of a comparison table: its size, training time, score and sampling speed.

    ``sampler`` writes text when called as ``sampler(length=n)``, e.g.
    ``functools.partial(sample, model, vocab, "ROMEO:")``; its speed is measured here
    (``chars_per_second``). Print a dict of rows with ``textlab.plots.show_table``.
    """
    return {"parameters": parameters, "train s": round(seconds), "val bpc": val_bpc,
            "chars/s": round(chars_per_second(sampler))}
