"""Generating text from a trained model, one character at a time.

The prime is read once; after that each step feeds only the newest character and the
carried state (the LSTM's memory, or MiniGPT's key/value cache). Re-reading the whole text
at every step, as many tutorials do, gives the same distribution but costs a forward pass
over the full prefix for every character (see ``sample_refeed``).

Knobs, applied to the logits in this order:
* ``temperature``: divide the logits by it. <1 sharpens (safer, repetitive), >1 flattens
  (wilder); 0 means greedy: always the most likely character.
* ``top_k``: keep only the k most likely characters.
* ``top_p``: keep the smallest set of most likely characters whose probability reaches p.

The draw itself is the Gumbel-max trick: add to every logit a random number −log(−log u), u uniform
in (0, 1), scaled by the temperature, and take the largest. The winner falls on each character with
exactly its probability softmax(logits / temperature), and greedy (temperature 0, no noise) is the
same code. It needs two small operations per character, where drawing by the inverse CDF (the
probabilities, their running total, a search for the uniform number in it) needs seven; the
sampling loop is the slider's critical path.
"""

from __future__ import annotations

import math
import numbers
import time
from typing import Callable, Iterator

import torch
import torch.nn as nn

from .models import evaluating
from .vocab import CharVocab


# Above this every character is about equally likely (logits a few tens apart, divided by 100),
# and the draw's noise, scaled by the temperature, would overflow float32 long before infinity.
MAX_TEMPERATURE = 100.0


def is_number(value, kind=numbers.Real) -> bool:
    """True for ints and floats, NumPy's included (``np.float32(0.8)``); never for True/False."""
    return isinstance(value, kind) and not isinstance(value, bool)


def check_params(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 length: int = 0, num_samples: int = 1) -> None:
    """Raise a ValueError that says what is allowed, before any work is done."""
    if not is_number(temperature) or not 0 <= temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be a number from 0 (greedy) to {MAX_TEMPERATURE:g}, "
                         f"not {temperature!r}")
    if top_k is not None and (not is_number(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be an integer ≥ 1 or None, not {top_k!r}")
    if top_p is not None and (not is_number(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, not {top_p!r}")
    if not is_number(length, numbers.Integral) or length < 0:
        raise ValueError(f"length must be an integer ≥ 0, not {length!r}")
    if not is_number(num_samples, numbers.Integral) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer ≥ 1, not {num_samples!r}")


def probabilities(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Next-character probabilities (..., V) from logits (..., V), after temperature, top-k, top-p.

    Top-k keeps every character whose logit reaches the k-th largest, so ties at the cut are
    all kept: top_k=2 on logits [1, 2, 2, 2, 0] keeps three. nanoGPT's ``sample.py`` does the
    same; breaking the tie would mean picking one of equally likely characters arbitrarily.
    Top-p keeps its ties too: top_p=0.5 on logits [2, 1, 1, 1, 0] keeps four.
    """
    logits = logits.float()
    if temperature == 0:  # greedy: all the probability on the most likely character
        return torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    logits = (logits - logits.amax(-1, keepdim=True)) / temperature  # largest 0: no overflow at tiny temperatures
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(-1)
    if top_p is not None and top_p < 1:
        sorted_probs = probs.sort(-1, descending=True).values.double()
        # The nucleus: the characters more likely than these already reach top_p (to float32's
        # precision: its softmax can make six characters of 0.1 add up to 0.59999996) ...
        reached = (sorted_probs.cumsum(-1) - sorted_probs) >= top_p * (1 - 1e-6)
        # ... so the least likely character kept sets the cut, and its ties stay, as with top-k.
        cut = sorted_probs.masked_fill(reached, math.inf).amin(-1, keepdim=True)
        probs = probs.masked_fill(probs.double() < cut, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def prime_ids(model: nn.Module, vocab: CharVocab, prime: str, num_samples: int) -> torch.Tensor:
    """The prime's ids, ``num_samples`` rows of them on the model's device: what sampling feeds first."""
    if not prime:
        raise ValueError("prime must hold at least one character (try '\\n' or a word)")
    ids = vocab.encode(prime)  # raises a clear error on characters the model never saw
    if not model.stateful:
        ids = ids[-model.config.block_size:]
    return ids.to(next(model.parameters()).device).expand(num_samples, -1)  # (B, T)


@torch.inference_mode()
def generate_ids(model: nn.Module, vocab: CharVocab, prime: str, length: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 num_samples: int = 1) -> Iterator[torch.Tensor]:
    """Yield ``length`` steps of new ids, each a (num_samples,) tensor: the engine behind the samplers."""
    check_params(temperature, top_k, top_p, length, num_samples)
    with evaluating(model):  # no dropout while sampling; the caller's mode comes back after
        x = prime_ids(model, vocab, prime, num_samples)
        logits, state = model(x)        # read the prime once: (B, T, V)
        noise = seeded_noise(length, num_samples, logits.shape[-1], seed, x.device)
        yield from generate_from(model, logits[:, -1], state, noise, temperature, top_k, top_p)


def seeded_generator(seed: int | None = None, device: str | torch.device = "cpu") -> torch.Generator:
    """A random-number generator of its own: from ``seed`` (an int, NumPy's too), or fresh when None."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    elif is_number(seed, numbers.Integral):
        generator.manual_seed(int(seed))
    else:
        raise ValueError(f"seed must be an integer or None, not {seed!r}")
    return generator


def seeded_noise(length: int, num_samples: int, vocab_size: int, seed: int | None = None,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """All the randomness of a sample up front, Gumbel noise for every step and character: (length, num_samples, V).

    Drawing it step by step would cost a call per character (the sampling loop is the slider's
    critical path). Drawn from a generator of its own, the numbers depend on the seed alone, so
    several requests' noise can be stacked along dim 1 and sampled as one batch (the server
    does this), each text still exactly the one its seed gives on its own.
    """
    generator = seeded_generator(seed, device)
    u = torch.rand(length, num_samples, vocab_size, generator=generator, device=device)
    return u.clamp_(min=torch.finfo(u.dtype).tiny).log_().neg_().log_().neg_()  # −log(−log u), finite


@torch.inference_mode()
def generate_from(model: nn.Module, logits: torch.Tensor, state, noise: torch.Tensor,
                  temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Iterator[torch.Tensor]:
    """The sampling loop, once the prime is read: logits (B, V) and state for B rows, noise (steps, B, V)."""
    step = model.stepper()
    noise = noise * temperature  # temperature 0: no noise, the argmax
    for g in noise:
        if top_k is not None or top_p is not None:  # the characters they cut can never win
            logits = logits.masked_fill(probabilities(logits, temperature, top_k, top_p) == 0, -math.inf)
        ids = (logits + g).argmax(-1)  # (B,): the character with the largest noisy logit
        yield ids
        logits, state = step(ids, state)


def sample(model: nn.Module, vocab: CharVocab, prime: str = "\n", length: int = 300,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None, num_samples: int = 1) -> str | list[str]:
    """The prime followed by ``length`` generated characters; a list of ``num_samples`` texts if > 1.

    The samples are generated together, as one batch: 16 samples cost little more than one.
    """
    steps = list(generate_ids(model, vocab, prime, length, temperature, top_k, top_p, seed, num_samples))
    ids = torch.stack(steps, 1) if steps else torch.empty(num_samples, 0, dtype=torch.long)
    texts = [prime + vocab.decode(row) for row in ids.cpu()]
    return texts[0] if num_samples == 1 else texts


def stream(model: nn.Module, vocab: CharVocab, prime: str = "\n", length: int = 300,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None) -> Iterator[str]:
    """Yield the generated characters one by one, as they are made (prime not included)."""
    for ids in generate_ids(model, vocab, prime, length, temperature, top_k, top_p, seed):
        yield vocab.chars[int(ids[0])]


@torch.inference_mode()
def next_char_probs(model: nn.Module, vocab: CharVocab, prime: str, temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """The distribution (V,) over the character that follows ``prime``."""
    check_params(temperature, top_k, top_p)
    with evaluating(model):
        logits, _ = model(prime_ids(model, vocab, prime, 1))
    return probabilities(logits[0, -1], temperature, top_k, top_p).cpu()


@torch.inference_mode()
def sample_refeed(model: nn.Module, vocab: CharVocab, prime: str, length: int, temperature: float = 1.0,
                  seed: int | None = None) -> str:
    """The slow way, for comparison only: re-read the whole text so far for every new character."""
    check_params(temperature, length=length)
    with evaluating(model):
        ids = prime_ids(model, vocab, prime, 1)
        generator = seeded_generator(0 if seed is None else seed, ids.device)
        for _ in range(length):
            context = ids if model.stateful else ids[:, -model.config.block_size:]
            logits, _ = model(context)
            probs = probabilities(logits[:, -1], temperature)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], 1)
    return prime + vocab.decode(ids[0, -length:] if length else [])


def chars_per_second(sampler: Callable[..., str], length: int = 500) -> float:
    """How fast a sampler writes: ``length`` characters over the seconds ``sampler(length=length)`` took.

    Any sampler works once its model and prime are filled in with ``functools.partial``:
    ``partial(sample, model, vocab, "ROMEO:")``, ``partial(ngram.sample, "ROMEO:")`` or
    ``partial(textlab.gpt2.generate, model, tokenizer, "ROMEO:")``. A short warm-up call first
    keeps one-off costs (lazy initialisation, memory allocation) out of the timing.
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be an integer ≥ 1, not {length!r}")
    sampler(length=min(length, 10))  # warm-up
    start = time.perf_counter()
    sampler(length=length)
    return length / (time.perf_counter() - start)
