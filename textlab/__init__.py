"""textlab: character-level language models you can read, train on a laptop, and play with.

    from textlab import *
    text = load_corpus("tiny_shakespeare").text
    vocab = CharVocab.from_text(text)
    split = split_text(text)
    model = CharLSTM(len(vocab))
    result = train(model, vocab.encode(split.train), vocab.encode(split.val), vocab=vocab)
    print(sample(model, vocab, "ROMEO:", temperature=0.8))
"""

from .baselines import unigram_bpc
from .batches import Batch, random_batches, stream_batches
from .checkpoints import CheckpointError, list_models, load_checkpoint, load_model, save_checkpoint
from .config import ModelConfig, TextlabError, TrainConfig, default_configs, pick_device, quick_mode
from .corpora import CorpusError, clean_text, load_corpus, load_text, registry, split_text
from .models import CharLSTM, MiniGPT, build_model, count_parameters
from .sampling import next_char_probs, probabilities, sample, sample_refeed, stream
from .training import TrainResult, evaluate, train
from .vocab import CharVocab

__version__ = "0.1.0"

__all__ = [
    "Batch", "CharLSTM", "CharVocab", "CheckpointError", "CorpusError", "MiniGPT", "ModelConfig",
    "TextlabError", "TrainConfig", "TrainResult", "build_model", "clean_text", "count_parameters",
    "default_configs", "evaluate", "list_models", "load_checkpoint", "load_corpus", "load_model",
    "load_text", "next_char_probs", "pick_device", "probabilities", "quick_mode", "random_batches",
    "registry", "sample", "sample_refeed", "save_checkpoint", "split_text", "stream",
    "stream_batches", "train", "unigram_bpc",
]
