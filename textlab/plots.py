"""Pictures for the lessons: loss curves (also live, while training), frequencies, distributions."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .training import kept_record
from .vocab import CharVocab


VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def show_char(c: str) -> str:
    """A label you can see: ␣ for a space, ⏎ for a newline, an escape for other control characters."""
    if c in VISIBLE:
        return VISIBLE[c]
    return c if c.isprintable() else repr(c)[1:-1]


def show_batch(x: torch.Tensor, y: torch.Tensor, vocab: CharVocab, rows: int = 4) -> str:
    """A batch as text: each row's inputs above its targets, which are the inputs shifted by one."""
    lines = []
    for r in range(min(rows, len(x))):
        lines.append(f"row {r} x: " + "".join(show_char(c) for c in vocab.decode(x[r])))
        lines.append("      y: " + "".join(show_char(c) for c in vocab.decode(y[r])))
    return "\n".join(lines)


def plot_history(history: list[dict], baseline_bpc: float | None = None, ax=None, label: str = ""):
    """One training run's curves (see ``plot_histories``)."""
    return plot_histories({label: history}, baseline_bpc, ax=ax)


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
        if self.handle is not None:  # None outside a notebook: nothing to redraw
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
    ax.set_xlabel(f"the next character: the {len(order)} most likely, most likely first")
    ax.set_ylabel("probability")
    ax.legend()
    return ax


X_AXES = {"chars_seen": ("millions of characters read", 1e-6), "seconds": ("minutes of training", 1 / 60)}


def plot_histories(histories: dict[str, list[dict]], baseline_bpc: float | None = None, x: str = "chars_seen",
                   ax=None):
    """Training curves, one colour per model: validation bpc solid, training bpc dashed.

    Validation is the whole validation text, scored at every evaluation (step 0 included: the
    untrained model, about log2 of the vocabulary); a ring marks the weights that were kept,
    the best on the dev text. ``x`` is ``"chars_seen"`` (which model learns more from the same
    text) or ``"seconds"`` (which learns more in the same time: the fair race on a time budget).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    axis_label, scale = X_AXES[x]
    for name, history in histories.items():
        prefix = f"{name} " if name else ""
        xs = [r[x] * scale for r in history]
        (line,) = ax.plot(xs, [r["val_bpc"] for r in history], marker=".", label=f"{prefix}validation")
        trained = [(xv, r["train_bpc"]) for xv, r in zip(xs, history) if r["train_bpc"] is not None]
        if trained:
            ax.plot(*zip(*trained), "--", color=line.get_color(), alpha=0.6, label=f"{prefix}training")
        kept = history.index(kept_record(history))
        ax.plot(xs[kept], history[kept]["val_bpc"], "o", markersize=10, markerfacecolor="none",
                color=line.get_color(), label=f"{prefix}kept: {history[kept]['val_bpc']:.3f}")
    if baseline_bpc is not None:
        ax.axhline(baseline_bpc, color="gray", linestyle=":", label=f"unigram {baseline_bpc:.2f}")
    ax.set_xlabel(axis_label)
    ax.set_ylabel("bits per character")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_bpc_bars(scores: dict[str, float | None], ax=None, title: str = "validation bits per character"):
    """One horizontal bar per model, its bpc written at the end; lower is better.

    A score of ``None`` (a model that could not run here, e.g. GPT-2 offline) keeps its row,
    labelled "not available", so the chart always has the same rows.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(scores) + 1))
    names = list(scores)[::-1]  # barh draws bottom-up: keep the first model on top
    values = [scores[n] for n in names]
    bars = ax.barh(names, [v or 0.0 for v in values], color="#4c72b0")
    ax.bar_label(bars, ["not available" if v is None else f"{v:.3f}" for v in values], padding=3)
    ax.set_xlim(0, 1.15 * max([v for v in values if v is not None], default=1.0))
    ax.set_xlabel(f"{title} (lower is better)")
    ax.grid(axis="x", alpha=0.3)
    return ax


def show_table(rows: dict[str, dict], first: str = "model", missing: str = "n/a") -> str:
    """A results table as aligned text: one row per name, one column per key of the rows.

    ``rows`` maps a name (the first column, headed ``first``) to a dict of values; the columns
    are all keys in the order they first appear. Floats print with 3 decimals (bits per
    character), ints with thousands separators, and a value that is ``None`` or absent (a
    model that could not run here) as ``missing``. Numbers align right, text left.
    """
    if not rows:
        raise ValueError("show_table needs at least one row")
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))

    def cell(value) -> str:
        if value is None:
            return missing
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    table = [[first, *keys]] + [[str(name), *(cell(row.get(k)) for k in keys)] for name, row in rows.items()]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    numeric = [False] + [all(isinstance(row.get(k), (int, float, type(None))) for row in rows.values())
                         for k in keys]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(table[0]), line(rule)] + [line(cells) for cells in table[1:]])


def show_columns(texts: dict[str, str], width: int = 36) -> str:
    """Texts side by side in columns of ``width`` characters, each under its name.

    Each text's own line breaks are kept; long lines wrap. Handy for samples of several
    models from the same prime.
    """
    columns = []
    for name, text in texts.items():
        lines = [name, "─" * width]
        for line in text.split("\n"):
            lines += textwrap.wrap(line, width, drop_whitespace=False, replace_whitespace=False) or [""]
        columns.append(lines)
    height = max(len(c) for c in columns)
    rows = zip(*(c + [""] * (height - len(c)) for c in columns))
    return "\n".join(" │ ".join(cell.ljust(width) for cell in row).rstrip() for row in rows)
