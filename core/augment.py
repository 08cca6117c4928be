"""Augmented transfer sets: new texts made from the labelled ones, for the teacher to label.

Distillation beats training the student alone mostly through the transfer set: texts the
teacher labels with its soft targets (docs/RESULTS.md measured +5 pt on SST-2 with 63k
unlabelled texts, +0.5 pt without). Most users have no unlabelled in-domain text, so
``--augment N`` makes N variants of every training text:

* the rules of Tang et al. 2019 ("Distilling task-specific knowledge from BERT into simple
  neural networks", section 3.2), which need nothing extra: each word is masked with
  probability ``p_mask``; then, with probability ``p_ngram``, an n-gram of 1-5 words is
  kept and the rest dropped; plus word dropout and swaps of neighbouring words;
* where a masked-language model is given (``mlm``: a Hub BERT, or any ``*ForMaskedLM``),
  TinyBERT's replacement (Jiao et al. 2020, section 3.2): each single-piece word is, with
  probability ``p_replace``, replaced by one of the MLM's top candidates at its position.

A pair is augmented side by side (each text of the pair on its own). Variants equal to
their source are dropped, and so are duplicates. The result is deterministic in the seed,
and :func:`cached_augmentation` keeps it on disk per (texts, method, settings, seed).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

Text = str | tuple[str, str]
METHODS = ("tang", "mlm")
MAX_AUGMENT = 32  # variants per text (core.limits caps the total rows of a job)


@dataclass(frozen=True)
class AugmentConfig:
    """How texts are varied (the defaults are the papers').

    Attributes:
        method: ``tang`` (masking, n-gram sampling, dropout, swaps) or ``mlm`` (TinyBERT's
            masked-LM replacement, then the same rules at half their rates).
        p_mask: chance a word becomes the mask token (Tang et al.: 0.1).
        p_ngram: chance a variant is cut to one n-gram of 1-5 words (Tang et al.: 0.25).
        p_drop: chance a word is dropped.
        p_swap: chance a word swaps places with the next one.
        p_replace: chance a word is replaced by an MLM candidate (TinyBERT: 0.4).
        top_k: MLM candidates to choose from (TinyBERT: 15).
    """

    method: str = "tang"
    p_mask: float = 0.1
    p_ngram: float = 0.25
    p_drop: float = 0.1
    p_swap: float = 0.1
    p_replace: float = 0.4
    top_k: int = 15

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"augmentation method {self.method!r}: use one of "
                             f"{', '.join(METHODS)}")
        for name in ("p_mask", "p_ngram", "p_drop", "p_swap", "p_replace"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {self.top_k}")


def vary_words(words: list[str], rng: random.Random, config: AugmentConfig,
               mask_token: str, scale: float = 1.0) -> list[str]:
    """One variant of a word list by the rule-based methods (rates times ``scale``)."""
    out = [mask_token if rng.random() < config.p_mask * scale else w for w in words]
    out = [w for w in out if rng.random() >= config.p_drop * scale] or out[:1]
    i = 0
    while i < len(out) - 1:
        if rng.random() < config.p_swap * scale:
            out[i], out[i + 1] = out[i + 1], out[i]
            i += 2
        else:
            i += 1
    if len(out) > 1 and rng.random() < config.p_ngram * scale:
        n = rng.randint(1, min(5, len(out)))
        start = rng.randint(0, len(out) - n)
        out = out[start:start + n]
    return out


def augment_texts(texts: Sequence[Text], per_text: int, *, config: AugmentConfig | None = None,
                  seed: int = 0, mask_token: str = "[MASK]", mlm: Any = None,
                  mlm_tokenizer: Any = None) -> list[Text]:
    """Up to ``per_text`` new variants of every text (pairs varied side by side).

    Args:
        texts: the labelled training texts (or pairs).
        per_text: variants wanted per text (1 .. :data:`MAX_AUGMENT`).
        config: the method and its rates.
        seed: makes the result reproducible.
        mask_token: the teacher tokenizer's mask token (masking writes it).
        mlm, mlm_tokenizer: a masked-language model and its tokenizer, for ``mlm``.
    Returns:
        New texts, none equal to a source text or to each other, in source order.
    Raises:
        ValueError: bad counts, or the ``mlm`` method without a masked-language model.
    """
    config = config or AugmentConfig()
    if not 1 <= per_text <= MAX_AUGMENT:
        raise ValueError(f"augment wants 1 to {MAX_AUGMENT} variants per text, got {per_text}")
    replacer = None
    if config.method == "mlm":
        if mlm is None or mlm_tokenizer is None:
            raise ValueError("the 'mlm' augmentation needs a masked-language model (e.g. "
                             "bert-base-uncased); use method 'tang' without one")
        replacer = MlmReplacer(mlm, mlm_tokenizer, config.top_k)
    rng = random.Random(seed)
    seen = {_key(t) for t in texts}
    result: list[Text] = []
    for text in texts:
        made = 0
        for _ in range(per_text * 3):  # a few tries: short texts give few distinct variants
            if made == per_text:
                break
            variant = _vary(text, rng, config, mask_token, replacer)
            key = _key(variant)
            if key not in seen:
                seen.add(key)
                result.append(variant)
                made += 1
    return result


def _vary(text: Text, rng: random.Random, config: AugmentConfig, mask_token: str,
          replacer: MlmReplacer | None) -> Text:
    if isinstance(text, tuple):
        return (_vary_one(text[0], rng, config, mask_token, replacer),
                _vary_one(text[1], rng, config, mask_token, replacer))
    return _vary_one(text, rng, config, mask_token, replacer)


def _vary_one(text: str, rng: random.Random, config: AugmentConfig, mask_token: str,
              replacer: MlmReplacer | None) -> str:
    words = text.split()
    if not words:
        return text
    scale = 1.0
    if replacer is not None:
        words = replacer.replace(words, rng, config.p_replace)
        scale = 0.5
    return " ".join(vary_words(words, rng, config, mask_token, scale))


def _key(text: Text) -> str:
    return "\x1f".join(text) if isinstance(text, tuple) else text


class MlmReplacer:
    """TinyBERT's word replacement with a masked-language model's top-k candidates."""

    def __init__(self, model: Any, tokenizer: Any, top_k: int) -> None:
        if getattr(tokenizer, "mask_token", None) is None:
            raise ValueError("the masked-language model's tokenizer has no mask token")
        self.model, self.tokenizer, self.top_k = model.eval(), tokenizer, top_k

    def replace(self, words: list[str], rng: random.Random, p_replace: float) -> list[str]:
        """Each chosen single-piece word replaced by one of the MLM's top-k candidates for
        its position (one forward pass per chosen word, as in TinyBERT)."""
        import torch

        words = list(words)
        for i, word in enumerate(words):
            if rng.random() >= p_replace or len(self.tokenizer.tokenize(word)) != 1:
                continue
            masked = words[:i] + [self.tokenizer.mask_token] + words[i + 1:]
            batch = self.tokenizer(" ".join(masked), return_tensors="pt", truncation=True,
                                   max_length=128)
            device = next(self.model.parameters()).device
            batch = {k: v.to(device) for k, v in batch.items()}
            positions = (batch["input_ids"][0] == self.tokenizer.mask_token_id).nonzero()
            if not len(positions):
                continue  # the mask was truncated away
            with torch.inference_mode():
                logits = self.model(**batch).logits[0, int(positions[0])]
            candidates = [c for c in logits.topk(self.top_k + 1).indices.tolist()
                          if c not in self.tokenizer.all_special_ids]
            pieces = [self.tokenizer.convert_ids_to_tokens(c) for c in candidates]
            pieces = [p for p in pieces if not p.startswith("##")][:self.top_k]
            if pieces:
                words[i] = rng.choice(pieces)
        return words


def augmentation_key(texts: Sequence[Text], per_text: int, config: AugmentConfig, seed: int,
                     mlm_name: str | None = None) -> str:
    """A content hash naming one augmentation (texts, count, method, rates, seed, MLM)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(_key(text).encode("utf-8", "replace"))
        digest.update(b"\0")
    digest.update(json.dumps([per_text, asdict(config), seed, mlm_name]).encode())
    return digest.hexdigest()[:20]


def cached_augmentation(cache_dir: str | os.PathLike, texts: Sequence[Text], per_text: int, *,
                        config: AugmentConfig, seed: int, mask_token: str,
                        mlm: Any = None, mlm_tokenizer: Any = None,
                        mlm_name: str | None = None) -> list[Text]:
    """:func:`augment_texts`, kept in ``cache_dir`` by :func:`augmentation_key`: the same
    texts, method and seed reuse the file (an MLM pass over thousands of texts is slow)."""
    key = augmentation_key(texts, per_text, config, seed, mlm_name)
    path = Path(cache_dir) / f"{key}.json"
    if path.is_file():
        try:
            return [tuple(t) if isinstance(t, list) else t for t in json.loads(path.read_text())]
        except (OSError, json.JSONDecodeError):
            pass  # a damaged cache file is made again
    result = augment_texts(texts, per_text, config=config, seed=seed, mask_token=mask_token,
                           mlm=mlm, mlm_tokenizer=mlm_tokenizer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)
    return result
