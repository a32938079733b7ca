"""Pictures for the lessons: loss curves (also live, while training), frequencies, distributions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .vocab import CharVocab


def show_char(c: str) -> str:
    """A printable label for a character: newline, space and tab made visible."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)


def show_batch(x: torch.Tensor, y: torch.Tensor, vocab: CharVocab, rows: int = 4) -> str:
    """A batch as text: each row's inputs above its targets, which are the inputs shifted by one."""
    lines = []
    for r in range(min(rows, len(x))):
        lines.append(f"row {r} x: " + "".join(show_char(c) for c in vocab.decode(x[r])))
        lines.append(f"      y: " + "".join(show_char(c) for c in vocab.decode(y[r])))
    return "\n".join(lines)


def plot_history(history: list[dict], baseline_bpc: float | None = None, ax=None, label: str = ""):
    """Train and val bits per character against characters seen; the unigram baseline dashed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    chars = [r["chars_seen"] for r in history]
    prefix = f"{label} " if label else ""
    ax.plot(chars, [r["train_bpc"] for r in history], label=f"{prefix}train")
    ax.plot(chars, [r["val_bpc"] for r in history], label=f"{prefix}val")
    if baseline_bpc is not None:
        ax.axhline(baseline_bpc, color="gray", linestyle="--", label=f"unigram {baseline_bpc:.2f}")
    ax.set_xlabel("characters seen")
    ax.set_ylabel("bits per character")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def save_history_plot(history: list[dict], path: str | Path, baseline_bpc: float | None = None) -> Path:
    """The loss curve as a PNG (what the CLI writes beside the checkpoint)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_history(history, baseline_bpc, ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


class LivePlot:
    """A training callback that redraws the loss curve in place after every evaluation.

    ``train(..., callbacks=[LivePlot(baseline)])`` in a notebook: one figure, updated, not
    a new figure per evaluation.
    """

    def __init__(self, baseline_bpc: float | None = None):
        from IPython.display import display

        self.baseline_bpc = baseline_bpc
        self.history: list[dict] = []
        self.fig, self.ax = plt.subplots(figsize=(7, 4))
        plt.close(self.fig)  # we display it ourselves, once, and update that display
        self.handle = display(self.fig, display_id=True)

    def on_eval(self, record: dict) -> None:
        self.history.append(record)
        self.ax.clear()
        plot_history(self.history, self.baseline_bpc, self.ax)
        self.handle.update(self.fig)


def plot_char_frequencies(text: str, top: int = 40, ax=None):
    """A bar chart of the ``top`` most frequent characters."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3))
    common = Counter(text).most_common(top)
    ax.bar([show_char(c) for c, _ in common], [n / len(text) for _, n in common])
    ax.set_ylabel("share of the text")
    ax.set_title(f"the {len(common)} most frequent characters")
    return ax


def plot_next_char(probs_by_label: dict[str, torch.Tensor], vocab: CharVocab, top: int = 15, ax=None):
    """Bars of next-character probabilities, one group per label (e.g. per temperature).

    The characters shown are the ``top`` most likely under the first distribution.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 3.5))
    first = next(iter(probs_by_label.values()))
    order = first.argsort(descending=True)[:top].tolist()
    width = 0.8 / len(probs_by_label)
    for i, (label, probs) in enumerate(probs_by_label.items()):
        ax.bar([j + i * width for j in range(len(order))], probs[order].tolist(), width, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(order))])
    ax.set_xticklabels([show_char(vocab.chars[k]) for k in order])
    ax.set_ylabel("probability")
    ax.legend()
    return ax
