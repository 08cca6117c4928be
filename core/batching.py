"""Batch by length: the padding-free path used by training and inference.

Texts are tokenised once (``core.encoding``, re-exported here); ``batches_by_tokens`` groups
length-sorted rows under a token budget for inference; ``bucketed_batches`` makes shuffled,
length-bucketed batches for training; ``collate`` pads one batch to its own longest row,
never to ``max_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from core.encoding import (
    PARALLEL_MIN_TEXTS,
    EncodedTexts,
    cached_encoding,
    clear_cache,
    concat_encoded,
    encode_in_chunks,
    encode_texts,
    encode_uncached,
    store_encoding,
    texts_fingerprint,
)

__all__ = ["PARALLEL_MIN_TEXTS", "EncodedTexts", "batches_by_tokens", "bucketed_batches",
           "cached_encoding", "clear_cache", "collate", "concat_encoded", "encode_in_chunks",
           "encode_texts", "encode_uncached", "round_width", "store_encoding",
           "texts_fingerprint"]


def round_width(longest: int, multiple: int = 1, cap: int | None = None) -> int:
    """A batch's padded width: its longest row rounded up to a multiple of ``multiple``.

    On a GPU DistilLab pads to multiples of 32 tokens (``core.cuda_graphs.WIDTH_MULTIPLE``):
    a job then sees a handful of batch shapes, each warmed (and captured as a CUDA graph)
    once, instead of one per length. ``multiple=1`` pads to the longest row (CPUs, where
    every padded token costs compute). ``cap`` (a model's position limit) bounds the
    rounding, never the row itself.
    """
    multiple = max(1, int(multiple))
    width = -(-int(longest) // multiple) * multiple
    if cap is not None:
        width = min(width, int(cap))
    return max(1, int(longest), width)


def batches_by_tokens(lengths: np.ndarray, max_tokens: int, max_batch_size: int = 512,
                      width_multiple: int = 1, width_cap: int | None = None
                      ) -> list[np.ndarray]:
    """Indices grouped into batches of similar length under a padded-token budget.

    Rows are sorted longest first, so the first batch is the largest in memory (a failure
    shows at once). A batch's padded size ``len(batch) * width`` stays within
    ``max_tokens``, except a single row longer than the budget, which forms its own batch;
    ``width`` is the longest row rounded up by :func:`round_width`.

    Args:
        lengths: tokens per row.
        max_tokens: padded-token budget of one batch.
        max_batch_size: the most rows in one batch.
        width_multiple: the multiple a batch's width is rounded up to (1: none).
        width_cap: the most a width is rounded up to (a model's position limit).
    Returns:
        Arrays of row indices; every row appears in exactly one batch.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = round_width(int(lengths[order[start]]), width_multiple, width_cap)
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

    Args:
        lengths: tokens per row.
        batch_size: rows per batch (the last batch of a bucket may be smaller).
        seed, epoch: seed the shuffles; another epoch gives other batches.
        bucket_multiplier: batches per bucket; larger pads less and shuffles less.
    Returns:
        Arrays of row indices; every row appears in exactly one batch.
    """
    lengths = np.asarray(lengths)
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
            pin_memory: bool = False, width_multiple: int = 1, rows: int | None = None,
            width_cap: int | None = None) -> dict[str, Any]:
    """Pad the rows ``indices`` to the longest among them (rounded up to ``width_multiple``).

    Args:
        encoded: the token ids.
        indices: the rows of this batch.
        pad_token_id: the id that fills the padding.
        pin_memory: return page-locked tensors (lets a CUDA copy run asynchronously).
        width_multiple, width_cap: round the width up to a multiple of ``width_multiple``,
            at most ``width_cap`` (:func:`round_width`).
        rows: pad the batch to this many rows (a static shape for a CUDA graph); the extra
            rows hold one unmasked padding token each, so no row is entirely masked.
    Returns:
        ``input_ids`` and ``attention_mask`` (and ``token_type_ids`` for encoded pairs),
        int64 tensors of shape (rows, width).
    """
    import torch

    picked = [encoded.input_ids[i] for i in indices]
    total_rows = max(len(picked), rows or 0)
    lengths = np.ones(total_rows, dtype=np.int64)
    lengths[:len(picked)] = np.fromiter(map(len, picked), dtype=np.int64, count=len(picked))
    width = round_width(int(lengths.max()), width_multiple, width_cap)
    # One vectorised fill instead of a tensor per row: collate runs once per batch on the
    # path that feeds the GPU, where per-row Python work becomes the bottleneck.
    mask = np.arange(width) < lengths[:, None]
    real = mask[:len(picked)]
    count = int(real.sum())
    input_ids = np.full((total_rows, width), pad_token_id, dtype=np.int64)
    input_ids[:len(picked)][real] = np.fromiter(chain.from_iterable(picked), dtype=np.int64,
                                                count=count)
    batch = {"input_ids": torch.from_numpy(input_ids),
             "attention_mask": torch.from_numpy(mask.astype(np.int64))}
    if encoded.token_type_ids is not None:  # pairs: segment 1 marks the second text
        types = np.zeros((total_rows, width), dtype=np.int64)
        types[:len(picked)][real] = np.fromiter(
            chain.from_iterable(encoded.token_type_ids[i] for i in indices), dtype=np.int64,
            count=count)
        batch["token_type_ids"] = torch.from_numpy(types)
    if pin_memory:
        batch = {k: v.pin_memory() for k, v in batch.items()}
    return batch
