"""Tokenise once, then batch by length: the padding-free path used by training and inference.

``encode_texts`` turns texts into unpadded token-id lists (cached per tokenizer, texts and
max length); ``batches_by_tokens`` groups length-sorted rows under a token budget for
inference; ``bucketed_batches`` makes shuffled, length-bucketed batches for training;
``collate`` pads one batch to its own longest row, never to ``max_length``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_CACHE: OrderedDict[tuple[str, str, int], EncodedTexts] = OrderedDict()
_CACHE_SIZE = 16


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids per text, unpadded and truncated to the max length (special tokens in)."""

    input_ids: list[list[int]]

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64,
                           count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def texts_fingerprint(texts: Sequence[str]) -> str:
    """A short content hash of a list of texts (order matters)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _tokenizer_key(tokenizer: Any) -> str:
    return f"{type(tokenizer).__name__}:{tokenizer.name_or_path}:{len(tokenizer)}"


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> EncodedTexts:
    """Tokenise ``texts`` once (fast tokenizer, one batched call), cached in-process.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the texts, in order.
        max_length: truncation length in tokens, special tokens included.
    Returns:
        The unpadded token ids of every text.
    """
    key = (_tokenizer_key(tokenizer), texts_fingerprint(texts), int(max_length))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    ids = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    encoded = EncodedTexts(input_ids=ids)
    _CACHE[key] = encoded
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return encoded


def batches_by_tokens(lengths: np.ndarray, max_tokens: int, max_batch_size: int = 512
                      ) -> list[np.ndarray]:
    """Indices grouped into batches of similar length under a padded-token budget.

    Rows are sorted longest first, so the first batch is the largest in memory (a failure
    shows at once). A batch's padded size ``len(batch) * longest row`` stays within
    ``max_tokens``, except a single row longer than the budget, which forms its own batch.
    """
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, min(max_batch_size, max_tokens // max(longest, 1)))
        batches.append(order[start:start + size])
        start += size
    return batches


def bucketed_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                     bucket_multiplier: int = 50) -> list[np.ndarray]:
    """Shuffled training batches whose rows have similar lengths.

    The rows are shuffled (seeded by ``seed`` and ``epoch``), cut into buckets of
    ``batch_size * bucket_multiplier``, sorted by length inside each bucket and split
    into batches; the batch order is shuffled again so lengths do not trend over an epoch.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    bucket = batch_size * bucket_multiplier
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket):
        chunk = order[start:start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(encoded: EncodedTexts, indices: Sequence[int], pad_token_id: int,
            pin_memory: bool = False) -> dict[str, Any]:
    """Pad the rows ``indices`` to the longest among them; returns ``input_ids`` and mask."""
    import torch

    rows = [encoded.input_ids[i] for i in indices]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, :len(row)] = 1
    if pin_memory:
        input_ids, attention_mask = input_ids.pin_memory(), attention_mask.pin_memory()
    return {"input_ids": input_ids, "attention_mask": attention_mask}
