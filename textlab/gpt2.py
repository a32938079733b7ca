"""A bridge to a real pretrained GPT-2, measured with the same yardstick as the character models.

GPT-2 reads *tokens*, not characters: its byte-level BPE tokenizer cuts text into ~50 000
pieces learned from English web pages ("Ġthe", "ing", …). To compare it with a character
model, its loss is converted to **bits per character**: the total negative log-likelihood of
all tokens of a text, in nats, divided by ln 2 × the number of characters. Both models then
pay for exactly the same text.

Hugging Face ``transformers`` is optional (``pip install transformers``) and imported only
when a function here needs it. Without it, or without a route to the Hugging Face hub, the
loader raises ``PretrainedUnavailable`` with one sentence to show, and everything else in
textlab works as before.

    model, tokenizer = load_pretrained("distilgpt2")
    bpc(model, tokenizer, split.val)                    # bits per character on the same val text
    generate(model, tokenizer, "ROMEO:", temperature=0.8)
    result = fine_tune(model, tokenizer, split.train, split.val, minutes=3)   # textlab.train's loop

The tokenizer alone needs no hub: ``load_tokenizer()`` rebuilds GPT-2's from its public ranks
file (fetched like a course text), so token pieces and characters per token work offline.

    tokenizer = load_tokenizer()
    token_pieces(tokenizer, "Мой дядя самых честных правил")   # Cyrillic letters cut into bytes
    chars_per_token_table(tokenizer)                             # every course text
"""

from __future__ import annotations

import base64
import functools
import inspect
import math
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn as nn

from .config import TextlabError, TrainConfig, fine_tune_config, pick_device, with_overrides
from .corpora import fetch, get_corpus, load_corpus, registry
from .models import count_parameters, evaluating
from .sampling import check_params, probabilities, seeded_generator
from .training import TrainResult, evaluate, train

HUB_URL = "https://huggingface.co"
HUB_PROBE_TIMEOUT = 2.0  # seconds: one quick probe, instead of transformers' ~30 s of retries
# On a CPU a real GPT-2 (≥ this many parameters) fine-tunes only for a taste: at most this budget.
CPU_BIG_MODEL_PARAMS = 10_000_000
CPU_MAX_MINUTES, CPU_MAX_STEPS = 2.0, 50
SCORE_BATCH = 2  # windows scored at once: each holds block × 50 257 logits (400 MB for GPT-2)


# Published, not measured here: GPT-2 zero-shot (Radford et al. 2019, "Language Models are
# Unsupervised Multitask Learners", Table 3). text8 in bits per character, enwik8 in bits per byte.
PUBLISHED = {
    "GPT-2 117M": {"text8 bpc": 1.17, "enwik8 bits/byte": 1.16},
    "GPT-2 345M": {"text8 bpc": 1.06, "enwik8 bits/byte": 1.01},
    "GPT-2 762M": {"text8 bpc": 1.02, "enwik8 bits/byte": 0.97},
    "GPT-2 1542M": {"text8 bpc": 0.98, "enwik8 bits/byte": 0.93},
}


class PretrainedUnavailable(TextlabError):
    """The pretrained model cannot be loaded here: no ``transformers``, no weights, no network."""


# ---------------------------------------------------------------------------- loading

def offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` says not to touch the network."""
    return any(os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_available(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Can the Hugging Face hub be reached? Asked once per process, then remembered.

    ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) answers False at once. Otherwise one
    HTTP request with a short timeout decides, so an offline machine learns it in ≤ ``timeout``
    seconds, once, instead of waiting out transformers' retries in every cell.
    """
    if offline_requested():
        return False
    return _probe(os.environ.get("HF_ENDPOINT", HUB_URL), timeout)


@functools.lru_cache(maxsize=None)
def _probe(url: str, timeout: float) -> bool:
    """One HEAD request to ``url``; any HTTP answer, even an error status, means it is reachable."""
    answers: list[bool] = []

    def ask() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
            answers.append(True)
        except urllib.error.HTTPError:  # the server answered
            answers.append(True)
        except (OSError, ValueError):   # no route, no DNS, refused, timed out, bad URL
            answers.append(False)

    # In a thread, so that a hanging DNS lookup (which ignores ``timeout``) cannot hold us either.
    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answers and answers[0])


def _transformers():
    try:
        import transformers
    except ImportError:
        raise PretrainedUnavailable("GPT-2 needs Hugging Face transformers, which is not installed: "
                                    "pip install transformers") from None
    return transformers


def load_pretrained(name_or_path: str | os.PathLike = "distilgpt2", device: str = "auto",
                    cache_dir: str | os.PathLike | None = None):
    """A pretrained causal language model and its tokenizer: ``(model, tokenizer)``, in eval mode.

    ``name_or_path`` is a model folder on disk (as written by ``save_pretrained``) or a hub
    name such as ``"distilgpt2"`` (82 M parameters) or ``"gpt2"`` (124 M). A hub name is looked
    up in the local cache first; only if it is missing there is the hub asked, and only if
    ``hub_available()``. Raises ``PretrainedUnavailable`` when the model cannot be had.
    """
    transformers = _transformers()
    path = Path(name_or_path).expanduser()
    source = str(path) if path.is_dir() else str(name_or_path)

    def load(local_only: bool):
        kwargs = {"local_files_only": local_only, "cache_dir": cache_dir}
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(source, **kwargs)
        return model.to(pick_device(device)).eval(), tokenizer

    try:
        try:
            return load(local_only=True)  # a folder, or a hub model downloaded before: no network
        except OSError:
            if path.is_dir():
                raise
        if not hub_available():
            raise PretrainedUnavailable(f"the pretrained model {source!r} is not on this machine and the "
                                        "Hugging Face hub cannot be reached (offline), so the GPT-2 "
                                        "comparison is skipped")
        return load(local_only=False)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PretrainedUnavailable(f"could not load the pretrained model {source!r}: {first_line}") from None


# ---------------------------------------------------------------------------- the tokenizer, offline too

GPT2_TOKENIZER = "gpt2_tokenizer"  # its entry in data/corpora.json: fetched like a corpus
END_OF_TEXT = "<|endoftext|>"      # id 50256, the one token not in the ranks file
# GPT-2's pre-tokenizer: text is first cut into words, numbers, punctuation runs and spaces,
# and BPE merges bytes only inside each piece (tiktoken's r50k pattern).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def bpe_ranks(path: str | os.PathLike | None = None) -> dict[bytes, int]:
    """GPT-2's vocabulary as ``{token bytes: id}``; the id is also the merge's rank (lower = merged first).

    Read from a tiktoken file (one ``base64(bytes) id`` per line); by default the course's copy,
    fetched like a corpus: downloaded once, sha256 checked, cached, or taken from ``TEXTLAB_MIRROR``.
    """
    if path is None:
        path = fetch(GPT2_TOKENIZER, strict=True)  # a tokenizer file is either exact or wrong
    ranks = {}
    for line in Path(path).read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _merge(parts: list[bytes], ranks: dict[bytes, int], max_rank: int | None = None) -> list[bytes]:
    """Byte-pair encoding: merge the adjacent pair of lowest rank until none is left (below ``max_rank``)."""
    while True:
        pairs = [(ranks.get(a + b), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        pairs = [(r, i) for r, i in pairs if r is not None and (max_rank is None or r < max_rank)]
        if not pairs:
            return parts
        _, i = min(pairs)
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def tokenizer_from_ranks(ranks: dict[bytes, int] | None = None, backend: str = "transformers"):
    """GPT-2's tokenizer built from its ranks file, without the hub.

    ``backend="transformers"`` builds a ``GPT2TokenizerFast``, the same kind of object as
    ``AutoTokenizer.from_pretrained("gpt2")``: each token of two or more bytes is the merge of
    the two pieces that BPE, using only the merges ranked before it, cuts it into; that list of
    merges is GPT-2's ``merges.txt``. ``backend="tiktoken"`` hands the ranks to ``tiktoken``.
    """
    ranks = bpe_ranks() if ranks is None else ranks
    eot = len(ranks)  # 50256
    if backend == "tiktoken":
        try:
            import tiktoken
        except ImportError:
            raise PretrainedUnavailable("backend='tiktoken' needs tiktoken: pip install tiktoken") from None
        return tiktoken.Encoding("gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={END_OF_TEXT: eot})
    if backend != "transformers":
        raise ValueError(f"backend must be 'transformers' or 'tiktoken', not {backend!r}")
    transformers = _transformers()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_char = bytes_to_unicode()  # byte-level BPE writes each byte as a printable character
    spell = lambda token: "".join(byte_char[b] for b in token)  # noqa: E731
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _merge([bytes([b]) for b in token], ranks, max_rank=rank)
            merges.append((spell(left), spell(right)))
    bpe = Tokenizer(models.BPE({spell(t): r for t, r in ranks.items()}, merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's own pattern inside
    bpe.decoder = decoders.ByteLevel()
    tokenizer = transformers.GPT2TokenizerFast(tokenizer_object=bpe, bos_token=END_OF_TEXT,
                                               eos_token=END_OF_TEXT, unk_token=END_OF_TEXT)
    tokenizer.model_max_length = 1024
    assert tokenizer.convert_tokens_to_ids(END_OF_TEXT) == eot
    return tokenizer


def load_tokenizer(name: str = "gpt2", cache_dir: str | os.PathLike | None = None):
    """GPT-2's tokenizer: from the hub (or its local cache) when possible, else built from the ranks file.

    Online this is ``AutoTokenizer.from_pretrained(name)``. Offline, GPT-2 and distilgpt2 (they
    share one tokenizer) are rebuilt from ``gpt2.tiktoken`` (``tokenizer_from_ranks``): the same
    ids, with transformers if it is installed, else with tiktoken.
    """
    try:
        transformers = _transformers()
    except PretrainedUnavailable:
        return tokenizer_from_ranks(backend="tiktoken")
    kwargs = {"cache_dir": cache_dir}
    try:
        return transformers.AutoTokenizer.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        pass
    if hub_available():
        try:
            return transformers.AutoTokenizer.from_pretrained(name, **kwargs)
        except (OSError, ValueError):
            pass
    if name not in ("gpt2", "distilgpt2"):
        raise PretrainedUnavailable(f"the tokenizer of {name!r} is not on this machine and the hub cannot be "
                                    "reached; offline only GPT-2's (name='gpt2') can be rebuilt")
    return tokenizer_from_ranks()


# ---------------------------------------------------------------------------- tokens

def encode(tokenizer, text: str) -> list[int]:
    """Token ids of ``text``, without special tokens (and without the "too long" warning).

    Text is only text: the 13 characters "<|endoftext|>" written in it are cut into ordinary
    tokens, never turned into the end-of-text token, so each of them is paid for (the same ids
    as tiktoken's ``encode_ordinary``).
    """
    if hasattr(tokenizer, "encode_ordinary"):  # a tiktoken Encoding
        return tokenizer.encode_ordinary(text)
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]


def decode(tokenizer, ids: list[int]) -> str:
    """The text of token ids; bytes that do not complete a character become "�"."""
    if hasattr(tokenizer, "encode_ordinary"):
        return tokenizer.decode(ids, errors="replace")
    return tokenizer.decode(ids, clean_up_tokenization_spaces=False)


def chars_per_token(tokenizer, text: str) -> float:
    """Characters per token: ~4 for English with GPT-2's tokenizer, ~1 for Russian.

    GPT-2's pieces were learned on English; a Cyrillic letter is two UTF-8 bytes, and few
    Russian byte pairs were merged, so Russian is cut into many short pieces. The model then
    spends its fixed context (1024 tokens) and its predictions on fragments of letters.
    """
    if not text:
        raise ValueError("text is empty")
    return len(text) / len(encode(tokenizer, text))


def token_pieces(tokenizer, text: str) -> list[str]:
    """How the tokenizer cuts ``text``: each token decoded alone ("�" marks part of a letter)."""
    return [decode(tokenizer, [i]) for i in encode(tokenizer, text)]


def chars_per_token_table(tokenizer, names: list[str] | None = None) -> dict[str, dict]:
    """For each course corpus: its characters, distinct characters, GPT-2 tokens and characters per token.

    The trade of a tokenizer in one table: a vocabulary of ~100 characters makes sequences as
    long as the text; GPT-2's 50 257 tokens make English ~4× shorter, Russian hardly shorter at all.
    Show it with ``textlab.plots.show_table``.
    """
    rows = {}
    for name in names or list(registry()):
        text = load_corpus(name).text
        tokens = len(encode(tokenizer, text))
        rows[name] = {"language": get_corpus(name).language, "characters": len(text),
                      "distinct chars": len(set(text)), "GPT-2 tokens": tokens, "chars/token": len(text) / tokens}
    return rows


def perplexity_to_bpc(perplexity: float, units: int, chars: int) -> float:
    """Bits per character from a perplexity per token (or per word) over a text.

    Perplexity is 2^(bits per unit), so the text costs ``units × log2(perplexity)`` bits in all,
    and each of its ``chars`` characters ``units / chars × log2(perplexity)``: a token perplexity
    of 20 at 4 characters per token is log2(20) / 4 ≈ 1.08 bits per character.
    """
    if not perplexity >= 1 or units < 1 or chars < 1:  # `not … >= 1` refuses NaN too
        raise ValueError(f"need perplexity ≥ 1 and positive counts, got {perplexity}, {units}, {chars}")
    return units * math.log2(perplexity) / chars


def _start_token(tokenizer) -> int:
    """GPT-2 separates documents with <|endoftext|>: a text's first token is predicted after it."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a bos_token nor an eos_token to start a text with")
    return start


def _model_ids(model: nn.Module, tokenizer, text: str) -> list[int]:
    """``encode(tokenizer, text)``, refused if an id (or the start token) is not in the model's vocabulary.

    A model and a tokenizer are a pair: ids from another tokenizer point past the model's
    embedding table, or at the wrong rows of it.
    """
    ids = encode(tokenizer, text)
    largest, size = max(ids + [_start_token(tokenizer)]), model.config.vocab_size
    if largest >= size:
        raise TextlabError(f"the tokenizer does not match the model: it gives token id {largest}, but the "
                           f"model knows {size} tokens; use the tokenizer load_pretrained returned with it")
    return ids


def context_size(model: nn.Module) -> int:
    """The longest input the model takes, in tokens (1024 for GPT-2)."""
    config = model.config
    return getattr(config, "n_positions", None) or config.max_position_embeddings


# ---------------------------------------------------------------------------- scoring and sampling

class TokenModel(nn.Module):
    """A Hugging Face causal LM behind textlab's model contract, so ``train`` and ``evaluate`` take it.

    ``logits, state = model(x, state)`` with ``x`` token ids; like MiniGPT it reads windows of
    at most ``config.block_size`` tokens and carries no state (``stateful = False``).
    """

    stateful = False

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        self.config = SimpleNamespace(block_size=context_size(lm))
        self.train(lm.training)  # in the mode it found the model in: scoring must not switch it

    def forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, None]:
        return self.lm(x, use_cache=False).logits, None  # (B, T) → (B, T, vocab)


def scorer(tokenizer, context: int | None = None, stride: int | None = None,
           batch_size: int = SCORE_BATCH) -> Callable[[nn.Module, torch.Tensor], float]:
    """``score(model, ids) → bits per character`` for token ids: ``textlab.evaluate`` with the characters counted.

    The ids are read after a start token, so the first one is predicted too; the bits of all of
    them are divided by the characters they spell. Windows as in ``evaluate`` (default: context
    half the model's, stride the other half); ``batch_size`` windows at a time (each holds a
    block × 50 257 logits, so few).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1 (windows scored at once), not {batch_size}")
    start = torch.tensor([_start_token(tokenizer)])

    def score(model: nn.Module, ids: torch.Tensor) -> float:
        chars = len(decode(tokenizer, ids.tolist()))
        return evaluate(model, torch.cat([start, ids]), context, stride, chars=chars, batch_size=batch_size)

    return score


def bpc(model: nn.Module, tokenizer, text: str, context: int | None = None, stride: int | None = None,
        batch_size: int = SCORE_BATCH) -> float:
    """Bits per character of a token-level model on ``text``, every character paid for.

    The course's one yardstick (``textlab.evaluate``): the text is tokenized after a start token,
    and every token is predicted from the ones before it, in windows of ``context + stride``
    tokens that each score their last ``stride`` (by default half the model's context each,
    512 + 512 for GPT-2), so every token is scored once with at least ``context`` tokens before it.

        bpc = Σ token NLL (nats) / (ln 2 × number of characters)
    """
    if not text:
        raise ValueError("cannot score an empty text")
    score = scorer(tokenizer, context, stride, batch_size)
    return score(TokenModel(model), torch.tensor(_model_ids(model, tokenizer, text)))


@torch.inference_mode()
def generate(model: nn.Module, tokenizer, prime: str = "\n", length: int = 300, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> str:
    """The prime followed by ``length`` generated characters, with ``textlab.sample``'s knobs.

    Tokens are drawn one at a time with the same ``probabilities`` (temperature 0 = greedy,
    then top-k, then top-p) as the character models, using the model's key/value cache, until
    the continuation holds ``length`` whole characters; it is then cut to exactly that many.
    GPT-2's tokens are bytes, and a Cyrillic letter is two of them: a letter whose last byte is
    not yet written ("�" at the end) does not count, so the text never ends inside a character.
    A model that writes broken UTF-8 may end shorter: at most 4 tokens are drawn per character.

    A sample is one document: the end-of-text token, which would close it and start another,
    is never drawn (its logit is set to -∞), so "<|endoftext|>" never appears in the text.
    The model is sampled in eval mode (no dropout) and left in the mode it was in.
    """
    check_params(temperature, top_k, top_p, length)
    device = next(model.parameters()).device
    context = context_size(model)
    ids = ([_start_token(tokenizer)] + _model_ids(model, tokenizer, prime))[-context:]
    generator = seeded_generator(seed, device)
    cache = _cache_name(model)
    x, past, new, text = torch.tensor([ids], device=device), None, [], ""
    with evaluating(model):  # a sample during fine-tuning must not switch dropout off for the rest of it
        for _ in range(4 * length):  # a character is at most 4 bytes: at most 4 byte-level tokens
            if len(text) >= length:
                break
            out = model(x, use_cache=True, **{cache: past})
            logits = out.logits[:, -1]                                          # (1, vocab)
            if tokenizer.eos_token_id is not None:  # one document: it never ends
                logits[:, tokenizer.eos_token_id] = -math.inf
            probs = probabilities(logits, temperature, top_k, top_p)
            token = torch.multinomial(probs, 1, generator=generator)           # (1, 1)
            ids.append(int(token))
            new.append(int(token))
            text = decode(tokenizer, new).removesuffix("\N{REPLACEMENT CHARACTER}")  # whole characters only
            if len(ids) > context:  # the context is full: re-read its last ``context`` tokens afresh
                x, past = torch.tensor([ids[-context:]], device=device), None
            else:
                x, past = token, getattr(out, cache)
    return prime + text[:length]


def _cache_name(model: nn.Module) -> str:
    """What ``model``'s forward calls its key/value cache, in its argument and in its output.

    transformers 5.x renamed ``past_key_values`` to ``cache`` (the old name warns, and goes in
    5.40); Colab's minor version changes under the course, so ask the model which it takes.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


# ---------------------------------------------------------------------------- fine-tuning

def check_cpu_budget(model: nn.Module, cfg: TrainConfig, device: torch.device) -> None:
    """Refuse a fine-tuning run that would crawl for long on a CPU (a GPU or a tiny model is fine).

    The rule: on a CPU, a model of ≥ 10 M parameters must stop within ``CPU_MAX_STEPS`` steps
    or ``CPU_MAX_MINUTES`` minutes (the budget ends at whichever comes first).
    """
    if device.type != "cpu" or count_parameters(model) < CPU_BIG_MODEL_PARAMS:
        return
    if (cfg.steps is not None and cfg.steps <= CPU_MAX_STEPS) or \
            (cfg.minutes is not None and cfg.minutes <= CPU_MAX_MINUTES):
        return
    budget = " and ".join(b for b in (f"steps={cfg.steps}" if cfg.steps else "",
                                      f"minutes={cfg.minutes:g}" if cfg.minutes else "") if b)
    raise TextlabError(f"fine-tuning a {count_parameters(model) / 1e6:.0f} M-parameter model on the CPU with "
                       f"{budget} would take very long: use a GPU (in Colab: Runtime → Change runtime "
                       f"type → T4 GPU), or ask for a taste with steps ≤ {CPU_MAX_STEPS} or minutes ≤ "
                       f"{CPU_MAX_MINUTES:g}")


def fine_tune(model: nn.Module, tokenizer, train_text: str, val_text: str, cfg: TrainConfig | None = None,
              callbacks=(), **overrides) -> TrainResult:
    """Go on training a pretrained model on ``train_text`` with ``textlab.train``; score it on ``val_text``.

    ``cfg`` defaults to ``fine_tune_config()``; keyword arguments replace its fields, e.g.
    ``fine_tune(model, tok, train, val, minutes=2, lr=1e-4)``. ``seq_len`` is the window length
    in tokens; ``steps`` or ``minutes`` given alone replaces the default budget.

    The very loop the character models train with (``TokenModel`` adapts the model to it): the
    same budget, schedule, dev text for choosing the kept weights, NaN and Ctrl-C handling,
    scored in bits per character (``scorer``). The evaluation records (the history, and what
    ``callbacks`` receive in ``on_eval``) are in characters too: ``train_bpc`` is the training
    loss per token divided by the training text's characters per token, and ``tokens_seen``
    replaces ``chars_seen``. The model ends with the kept weights, in eval mode;
    ``result.stopped`` says why training ended.
    """
    cfg = with_overrides(cfg or fine_tune_config(), **overrides)
    if cfg.steps is None and cfg.minutes is None:
        raise ValueError("give a budget: steps=… or minutes=…")
    if not train_text:
        raise ValueError("train_text is empty: give the text to fine-tune on")
    if not val_text:
        raise ValueError("val_text is empty: give a text to score the model on (e.g. split.val)")
    check_cpu_budget(model, cfg, pick_device(cfg.device))
    train_ids = torch.tensor(_model_ids(model, tokenizer, train_text))
    val_ids = torch.tensor(_model_ids(model, tokenizer, val_text))
    in_characters = _PerCharacter(len(train_text) / len(train_ids))  # first, so later callbacks see bpc too
    result = train(TokenModel(model), train_ids, val_ids, cfg, (in_characters, *callbacks),
                   score=scorer(tokenizer))
    result.model = model.eval()
    return result


class _PerCharacter:
    """A ``train`` callback that restates each evaluation record of a token model in characters."""

    def __init__(self, chars_per_token: float):
        self.chars_per_token = chars_per_token

    def on_eval(self, record: dict) -> None:
        record["tokens_seen"] = record.pop("chars_seen")
        if record["train_bpc"] is not None:  # bits per token → bits per character
            record["train_bpc"] /= self.chars_per_token
