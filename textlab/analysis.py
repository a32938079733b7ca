"""Looking inside a trained model: where it is surprised, what its cells track, how it samples.

Three views:

* **Surprisal**: how many bits each character cost the model, ``-log2 p(char | text before)``.
  Their mean over a text is the model's bits per character on it, with all the context it can
  use (``evaluate`` reads an LSTM in chunks after a warm-up, so its figure can differ slightly).
  ``show_surprisal`` colours a text by it: pale inside words, red at word starts and names.
* **Neurons**: the LSTM's memory cell by cell. ``show_neuron`` colours a text by one cell's
  value after each character (Karpathy's 2015 quote and line-length cells); ``find_neurons``
  searches all cells for the ones that follow simple features of the text (``text_features``).
* **Temperature sweep**: for a range of temperatures, the entropy of the distributions the
  characters were drawn from, the share of real words and how repetitive the samples are.

    bits = surprisal(model, vocab, text)                    # (len(text),) bits
    show_surprisal(model, vocab, text)                      # coloured text in a notebook
    acts = lstm_activations(model, vocab, text, layer=None) # (layers, len(text), hidden)
    for n in find_neurons(acts, text_features(text)):
        display(show_neuron(model, vocab, text, n.layer, n.cell))
    plot_temperature_sweep(temperature_sweep(model, vocab, known_words(text)))
"""

from __future__ import annotations

import math
import numbers
import re
from html import escape
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import TextlabError
from .batches import score_windows
from .models import CharLSTM, MiniGPT, evaluating
from .plots import show_char
from .sampling import generate_ids, is_number, probabilities
from .training import LN2, default_context
from .vocab import CharVocab

TEMPERATURES = tuple(round(0.2 * k, 1) for k in range(1, 11))  # 0.2, 0.4, …, 2.0
SWEEP_LENGTH = 300  # characters per sample in a temperature sweep (≈ 55 words)
POSITIVE_RGB = (214, 39, 40)   # red: high surprisal, positive activation
NEGATIVE_RGB = (31, 119, 180)  # blue: negative activation
OPEN_QUOTES, CLOSE_QUOTES, TOGGLE_QUOTES = "“«", "”»", '"'
WORD = re.compile(r"[^\W\d_]+")  # a run of letters (any alphabet): what ``words`` counts


# ---------------------------------------------------------------------------------------------
# Surprisal


@torch.no_grad()
def next_char_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Logits (B, N, V) for ids (B, N): ``logits[:, i]`` scores the character after ``ids[:, :i+1]``.

    An LSTM reads the whole text in one pass, every character with all of its context.
    MiniGPT sees at most ``block_size`` characters, so a longer text is read in the sliding
    windows that ``evaluate`` uses (``training.default_context``): every character past the
    first block is predicted from at least half a block of context.
    """
    with evaluating(model):
        if model.stateful:
            return model(ids)[0].float()
        context, stride = default_context(model)
        return torch.cat([model(ids[:, start:end])[0][:, first - start:].float()  # the positions not scored yet
                          for start, end, first in score_windows(ids.shape[1], context, stride)], 1)


def surprisal(model: nn.Module, vocab: CharVocab, text: str, prime: str = "\n") -> torch.Tensor:
    """Bits (len(text),) that each character of ``text`` cost: ``-log2 p(char | prime + text before it)``.

    The first character needs something to be predicted from: ``prime`` is read first and not
    scored (the default ``"\\n"`` reads the text as if it started a new line). The mean is the
    model's bits per character on the text, each character read with all the context before it.
    """
    if not prime:
        raise ValueError("prime must hold at least one character: the first character of the text "
                         "is predicted from it (try '\\n')")
    if not text:
        return torch.empty(0)
    ids = vocab.encode(prime + text).to(next(model.parameters()).device)
    logits = next_char_logits(model, ids[None, :-1])[0]  # (P + T - 1, V): row i predicts ids[i + 1]
    nats = F.cross_entropy(logits[len(prime) - 1:], ids[len(prime):], reduction="none")  # (T,)
    return (nats / LN2).cpu()


def _colour(weight: float) -> str:
    """A CSS background for a weight in [-1, 1]: red for positive, blue for negative, white at 0."""
    r, g, b = POSITIVE_RGB if weight >= 0 else NEGATIVE_RGB
    return f"rgba({r},{g},{b},{min(abs(weight), 1.0):.3f})"


def _coloured_text(text: str, weights: np.ndarray, titles: list[str], legend: str) -> str:
    """One ``<span>`` per character, coloured by its weight, its title shown on hover; legend above."""
    spans = []
    for ch, weight, title in zip(text, weights, titles):
        shown = show_char(ch) + "\n" if ch == "\n" else ch  # a newline gets a visible, colourable mark
        spans.append(f'<span style="background:{_colour(float(weight))}" '
                     f'title="{escape(title)}">{escape(shown)}</span>')
    return (f'<div style="font-family:sans-serif;font-size:0.85em;margin-bottom:4px">{legend}</div>'
            f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.6">{"".join(spans)}</div>')


def _legend_bar(low: str, high: str, colours: list[str]) -> str:
    """A colour bar labelled ``low`` at its left end and ``high`` at its right."""
    bar = (f'<div style="display:inline-block;width:120px;height:0.9em;vertical-align:middle;'
           f'border:1px solid #ccc;background:linear-gradient(to right,{",".join(colours)})"></div>')
    return f"{escape(low)} {bar} {escape(high)}"


def _check_length(text: str, values, what: str) -> np.ndarray:
    values = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, dtype=float)
    if values.shape != (len(text),):
        raise ValueError(f"{what} must hold one value per character of the text: got shape "
                         f"{values.shape} for {len(text)} characters")
    return values


def surprisal_html(text: str, bits, max_bits: float | None = None) -> str:
    """HTML of ``text`` with each character's background as red as its surprisal in ``bits``.

    ``max_bits`` is the value drawn fully red (default: the largest in ``bits``); fix it to
    compare two texts or two models on one scale. Hover over a character to read its bits.
    """
    bits = _check_length(text, bits, "bits")
    if max_bits is None:
        max_bits = float(bits.max(initial=0.0)) or 1.0
    if max_bits <= 0:
        raise ValueError(f"max_bits must be > 0, not {max_bits}")
    titles = [f"{show_char(ch)}: {b:.2f} bits" for ch, b in zip(text, bits)]
    mean = f" · mean {bits.mean():.2f} bits/char" if len(bits) else ""
    legend = _legend_bar("0 bits", f"{max_bits:.1f} bits", ["white", f"rgb{POSITIVE_RGB}"]) + mean
    return _coloured_text(text, bits / max_bits, titles, legend)


def show_surprisal(model: nn.Module, vocab: CharVocab, text: str, prime: str = "\n",
                   max_bits: float | None = None):
    """The surprisal view in a notebook: ``text`` coloured by how surprised ``model`` was."""
    from IPython.display import HTML

    return HTML(surprisal_html(text, surprisal(model, vocab, text, prime), max_bits))


# ---------------------------------------------------------------------------------------------
# Neurons


@torch.no_grad()  # not inference_mode: the caller may edit the returned tensor in place
def lstm_activations(model: nn.Module, vocab: CharVocab, text: str, layer: int | None = 0,
                     kind: str = "cell") -> torch.Tensor:
    """Each LSTM cell's value after reading each character of ``text``, starting from an empty memory.

    ``kind="cell"`` gives the memory c (unbounded), ``"hidden"`` the output h = o·tanh(c), in
    (-1, 1). Returns (len(text), hidden_size) for one ``layer``, or (num_layers, len(text),
    hidden_size) with ``layer=None``. ``nn.LSTM`` returns only the last layer's h, so the text
    is run one character at a time through ``model.stepper()``, which returns every layer's h and c.
    """
    if not isinstance(model, CharLSTM):
        raise TextlabError(f"neurons are read from a CharLSTM's cells; this is a {type(model).__name__}")
    if kind not in ("cell", "hidden"):
        raise ValueError(f"kind must be 'cell' (the memory c) or 'hidden' (the output h), not {kind!r}")
    layers = model.config.num_layers
    if layer is not None and not 0 <= layer < layers:
        raise ValueError(f"layer must be in 0..{layers - 1} (the model has {layers}), or None for all")
    if not text:
        raise ValueError("text is empty: give the text to read")
    ids = vocab.encode(text).to(next(model.parameters()).device)
    step, state, values = model.stepper(), None, []  # the stepper reads the weights: no dropout in it
    for i in range(len(ids)):
        _, state = step(ids[i:i + 1], state)               # state = (h, c), each (layers, 1, H)
        values.append(state[0 if kind == "hidden" else 1][:, 0])  # (layers, H)
    acts = torch.stack(values, 1).cpu()                    # (layers, T, H)
    return acts if layer is None else acts[layer]


def neuron_html(text: str, values, limit: float | None = None, label: str = "") -> str:
    """HTML of ``text`` coloured by one cell's ``values``: red positive, blue negative, white near 0.

    ``limit`` is the value drawn at full colour (default: the largest absolute value).
    """
    values = _check_length(text, values, "values")
    if limit is None:
        limit = float(np.abs(values).max(initial=0.0)) or 1.0  # a cell at 0 everywhere stays white
    if limit <= 0:
        raise ValueError(f"limit must be > 0, not {limit}")
    titles = [f"{show_char(ch)}: {v:+.3f}" for ch, v in zip(text, values)]
    colours = [f"rgb{NEGATIVE_RGB}", "white", f"rgb{POSITIVE_RGB}"]
    legend = (f"{escape(label)} " if label else "") + _legend_bar(f"{-limit:.2f}", f"{limit:+.2f}", colours)
    return _coloured_text(text, values / limit, titles, legend)


def show_neuron(model: nn.Module, vocab: CharVocab, text: str, layer: int, cell: int, kind: str = "cell",
                limit: float | None = None):
    """The neuron viewer in a notebook: ``text`` coloured by cell ``cell`` of layer ``layer``."""
    from IPython.display import HTML

    acts = lstm_activations(model, vocab, text, layer, kind)  # (T, H)
    if not 0 <= cell < acts.shape[1]:
        raise ValueError(f"cell must be in 0..{acts.shape[1] - 1}, not {cell}")
    return HTML(neuron_html(text, acts[:, cell], limit, f"layer {layer}, cell {cell} ({kind}):"))


def text_features(text: str) -> dict[str, np.ndarray]:
    """Simple facts about each character, as float arrays of len(text), for ``find_neurons``.

    Each describes the moment *after* the character is read, as the LSTM state does:

    * ``inside_quotes``: 1 after an opening quote up to (not including) its closing quote.
      “ and « open, ” and » close, a straight " toggles; ' is ignored (it is also an apostrophe).
    * ``position_in_line``: characters of the current line read so far (0 for the newline itself).
    * ``chars_to_line_end``: characters left until the next newline (0 for the newline itself).
    * ``inside_word``: 1 for a letter, 0 for anything else.
    """
    inside, quoted = [], 0
    position, column = [], 0
    for ch in text:
        if ch in OPEN_QUOTES:
            quoted = 1
        elif ch in CLOSE_QUOTES:
            quoted = 0
        elif ch in TOGGLE_QUOTES:
            quoted = 1 - quoted
        inside.append(quoted)
        column = 0 if ch == "\n" else column + 1
        position.append(column)
    to_end, left = [], 0
    for ch in reversed(text):
        left = 0 if ch == "\n" else left + 1
        to_end.append(left)
    return {"inside_quotes": np.array(inside, dtype=float),
            "position_in_line": np.array(position, dtype=float),
            "chars_to_line_end": np.array(to_end[::-1], dtype=float),
            "inside_word": np.array([ch.isalpha() for ch in text], dtype=float)}


class Neuron(NamedTuple):
    """One cell and how closely it follows a feature (Pearson correlation, in [-1, 1])."""

    feature: str
    layer: int
    cell: int
    correlation: float


def correlations(activations: torch.Tensor, feature) -> torch.Tensor:
    """Pearson correlation (layers, H) of every cell of ``activations`` (layers, T, H) with ``feature`` (T,).

    A cell or feature that never changes has no correlation: it scores 0.
    """
    a = activations.double()
    f = torch.as_tensor(np.asarray(feature), dtype=torch.float64)
    a = a - a.mean(1, keepdim=True)
    f = f - f.mean()
    r = torch.einsum("lth,t->lh", a, f) / (a.norm(dim=1) * f.norm())
    return r.nan_to_num(0.0)


def find_neurons(activations: torch.Tensor, features: dict[str, np.ndarray], top: int = 3) -> list[Neuron]:
    """For each feature, the ``top`` cells whose activations follow it best (largest |correlation|).

    ``activations``: (T, H) for one layer (reported as layer 0) or (layers, T, H) from
    ``lstm_activations(..., layer=None)``. A feature that is constant on this text (no quotes
    at all, say) cannot be correlated with anything and is left out.
    """
    if activations.dim() == 2:
        activations = activations[None]
    if activations.dim() != 3:
        raise ValueError(f"activations must be (T, H) or (layers, T, H), not {tuple(activations.shape)}")
    if not is_number(top, numbers.Integral) or top < 1:
        raise ValueError(f"top must be an integer ≥ 1 (cells per feature), not {top!r}")
    layers, length, hidden = activations.shape
    found = []
    for name, feature in features.items():
        if len(feature) != length:
            raise ValueError(f"feature {name!r} has {len(feature)} values but the activations "
                             f"cover {length} characters: compute both from the same text")
        if np.ptp(feature) == 0:
            continue
        r = correlations(activations, feature).flatten()  # (layers * H,)
        for index in r.abs().topk(min(int(top), len(r))).indices.tolist():
            found.append(Neuron(name, index // hidden, index % hidden, float(r[index])))
    return found


# ---------------------------------------------------------------------------------------------
# Temperature sweep


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, lower-cased (``"O'er the"`` → ``['o', 'er', 'the']``)."""
    return WORD.findall(text.lower())


def known_words(text: str) -> set[str]:
    """Every word of a corpus: what ``real_word_share`` checks generated words against."""
    return set(words(text))


def generated_words(prime: str, generated: str) -> list[str]:
    """The whole words of ``generated``: a word continuing the prime or cut off at the end is dropped."""
    found = words(generated)
    if found and generated[:1].isalpha() and prime[-1:].isalpha():
        found = found[1:]
    if found and generated[-1:].isalpha():
        found = found[:-1]
    return found


def real_word_share(found: list[str], known: set[str]) -> float:
    """The share of ``found`` words that are in ``known``; NaN when there are no words."""
    return sum(w in known for w in found) / len(found) if found else math.nan


def distinct_ngrams(found: list[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams: 1 = nothing repeats, low = loops. NaN if too short."""
    grams = list(zip(*(found[i:] for i in range(n))))
    return len(set(grams)) / len(grams) if grams else math.nan


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def temperature_sweep(model: nn.Module, vocab: CharVocab, corpus_words: set[str], prime: str = "\n",
                      temperatures=TEMPERATURES, length: int | None = None, num_samples: int = 8,
                      seed: int = 0) -> list[dict]:
    """Sample at each temperature and measure the creativity/coherence trade-off; one dict each.

    Every temperature draws ``num_samples`` texts of ``length`` characters after ``prime``, in
    one batch, with the same ``seed`` (so differences come from the temperature, not the dice).
    ``length`` defaults to ``SWEEP_LENGTH``, for MiniGPT at most what fits in its block. A
    longer one is refused for MiniGPT (``len(prime) + length - 1`` must be ≤ ``block_size``):
    the entropies are recomputed from one reading of the text, which gives the distributions
    the characters were drawn from only while each was drawn with all the text before it in
    the block; past it the sampler re-reads just the last block. Each row holds:

    * ``entropy_bits``: mean entropy of the distributions the characters were drawn from
      (after temperature): 0 = no choice at all, log2(len(vocab)) = a uniform guess.
    * ``real_word_share``: share of the whole generated words found in ``corpus_words``
      (``known_words(corpus_text)``).
    * ``distinct_2grams``, ``distinct_3grams``: distinct word pairs / triples over all of them,
      per sample, averaged: low values mean the text loops.
    * ``example``: the first sample (prime included), to read beside the numbers.
    """
    block = math.inf if model.stateful else model.config.block_size
    if length is None:
        length = max(1, min(SWEEP_LENGTH, block - len(prime)))
    if length < 1:
        raise ValueError(f"length must be ≥ 1, not {length}")
    if len(prime) + length - 1 > block:  # the last character is drawn after all the others
        raise ValueError(f"the prime ({len(prime)} characters) and length={length} do not fit MiniGPT's block: "
                         f"need len(prime) + length - 1 ≤ block_size={block}; use a shorter length or prime")
    if not temperatures:
        raise ValueError("give at least one temperature")
    device = next(model.parameters()).device
    prime_ids = vocab.encode(prime).to(device)  # generate_ids checks the prime and the knobs
    rows = []
    for temperature in temperatures:
        steps = generate_ids(model, vocab, prime, length, temperature, seed=seed, num_samples=num_samples)
        new = torch.stack(list(steps), 1)                                   # (B, length)
        ids = torch.cat([prime_ids.expand(num_samples, -1), new], 1)        # (B, P + length)
        logits = next_char_logits(model, ids[:, :-1])[:, len(prime) - 1:]   # (B, length, V)
        probs = probabilities(logits, temperature)   # what each new character was drawn from
        entropy = torch.special.entr(probs).sum(-1) / LN2                   # (B, length) bits
        texts = [vocab.decode(row) for row in new.cpu()]
        found = [generated_words(prime, t) for t in texts]
        rows.append({"temperature": temperature,
                     "entropy_bits": entropy.mean().item(),
                     "real_word_share": real_word_share([w for f in found for w in f], corpus_words),
                     "distinct_2grams": _mean([distinct_ngrams(f, 2) for f in found]),
                     "distinct_3grams": _mean([distinct_ngrams(f, 3) for f in found]),
                     "example": prime + texts[0]})
    return rows


def plot_temperature_sweep(rows: list[dict], axes=None):
    """Three panels against temperature: entropy, real-word share, distinct n-grams. Returns the axes."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    t = [r["temperature"] for r in rows]
    panels = [("entropy of the next-character distribution", "bits", {"entropy_bits": None}),
              ("generated words that are real", "share of words", {"real_word_share": None}),
              ("repetition: distinct word n-grams", "distinct / all",
               {"distinct_2grams": "word pairs", "distinct_3grams": "word triples"})]
    for ax, (title, ylabel, lines) in zip(axes, panels):
        for key, label in lines.items():
            ax.plot(t, [r[key] for r in rows], marker="o", label=label)
        ax.axvline(1.0, color="gray", linestyle=":", linewidth=1)  # the model's own distribution
        ax.set(title=title, xlabel="temperature", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend()
    for ax in axes[1:]:
        ax.set_ylim(0, 1.05)
    axes[0].figure.tight_layout()
    return axes


# ---------------------------------------------------------------------------------------------
# Attention you can see (MiniGPT)


@torch.no_grad()
def attention_input(model: MiniGPT, vocab: CharVocab, text: str, layer: int = 0) -> torch.Tensor:
    """What layer ``layer``'s attention reads for ``text``: (T, C), the residual stream after ``ln1``."""
    if not isinstance(model, MiniGPT):
        raise TextlabError("attention belongs to MiniGPT: pass a MiniGPT (a CharLSTM has none)")
    if not 0 <= layer < len(model.blocks):
        raise ValueError(f"layer must be in 0..{len(model.blocks) - 1}, not {layer}")
    if not text:
        raise ValueError("text is empty: give at least one character to attend over")
    ids = vocab.encode(text)[-model.config.block_size:]
    seen = []
    hook = model.blocks[layer].attn.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        with evaluating(model):
            model(ids[None].to(next(model.parameters()).device))
    finally:
        hook.remove()
    return seen[0][0]


@torch.no_grad()
def attention_by_hand(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One attention layer computed step by step: the weights (heads, T, T) and the output (T, C).

    Each position's query is compared with every key: q·kᵀ/√d, d the head size. A position may
    not look ahead (the causal mask sets the future to -∞), and a softmax turns each row into
    weights that sum to 1. The output mixes the values with those weights, head by head; the
    heads are laid side by side and projected. It equals ``attn``'s own output, which gets there
    with one fused call (``F.scaled_dot_product_attention``).
    """
    T, C = x.shape
    heads = attn.n_head
    d = C // heads
    q, k, v = attn.qkv(x).split(C, dim=1)                         # each (T, C)
    q, k, v = (t.view(T, heads, d).transpose(0, 1) for t in (q, k, v))  # each (heads, T, d)
    scores = q @ k.transpose(1, 2) / math.sqrt(d)                  # (heads, T, T)
    future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
    weights = scores.masked_fill(future, -math.inf).softmax(-1)    # row t: how much t looks at each s ≤ t
    y = (weights @ v).transpose(0, 1).reshape(T, C)                # (heads, T, d) → (T, C)
    return weights, attn.proj(y)


def attention_weights(model: MiniGPT, vocab: CharVocab, text: str, layer: int = 0) -> torch.Tensor:
    """(heads, T, T): for each head, how much each character of ``text`` attends to each one before it."""
    x = attention_input(model, vocab, text, layer)
    return attention_by_hand(model.blocks[layer].attn, x)[0].cpu()


def plot_attention(weights: torch.Tensor, text: str, ax=None, title: str = ""):
    """A heat-map of one head's weights: row = the character reading, column = the one it looks at."""
    weights = torch.as_tensor(weights)
    if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"weights must be one head's (T, T) matrix, got shape {tuple(weights.shape)}")
    text = text[-len(weights):]
    if len(text) != len(weights):
        raise ValueError(f"the text has {len(text)} characters but the weights are for {len(weights)}")
    if ax is None:
        size = min(12.0, 2 + 0.22 * len(text))
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(weights.numpy(), cmap="Blues", vmin=0, vmax=1)
    labels = [show_char(c) for c in text]
    ax.set_xticks(range(len(text)), labels, fontsize=8)
    ax.set_yticks(range(len(text)), labels, fontsize=8)
    ax.set_xlabel("looks at (earlier character)")
    ax.set_ylabel("reading (predicts the next)")
    ax.set_title(title or "attention weights of one head")
    return ax
