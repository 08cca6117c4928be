"""Tokenise once: unpadded token ids per text, cached in-process.

``encode_texts`` turns texts into unpadded token-id lists (cached per tokenizer, texts and
max length); ``encode_in_chunks`` does the same chunk by chunk in a background thread so a
GPU can compute while the next chunk is tokenised. Batching those ids is ``core.batching``.

Tokenisation goes straight to the fast (Rust) tokenizer behind a Hugging Face tokenizer,
with truncation set once: the ``tokenizer(...)`` call builds several Python lists per text
that are thrown away here (measured 1.7x slower on SST-2). Large inputs are split over
threads; the Rust encoder releases the GIL, so they run in parallel whatever
``TOKENIZERS_PARALLELISM`` says.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from core.texts import Text, has_pairs, split_pairs, text_chars, text_key

logger = logging.getLogger(__name__)

_CACHE: OrderedDict[tuple[str, str, int], EncodedTexts] = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()
# Per tokenizer object: {max_length: a configured Rust tokenizer, or None (use the slow call)}.
_ENCODERS: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()
_ENCODERS_LOCK = threading.Lock()
# Below this many texts one thread tokenises; above it, one thread per 32 texts or per
# 4,000 characters, whichever gives more, up to the CPUs available (starting a thread costs
# ~0.1 ms; tokenising a short sentence ~30-90 us). Characters count because a long article
# costs as much as 20 short sentences: on a 16-core GPU host 872 SST-2 sentences took 27 ms
# and 1,000 BBC articles 0.49 s, each on 3 threads (docs/BENCHMARKS.md).
PARALLEL_MIN_TEXTS = 64
_TEXTS_PER_THREAD = 32
_CHARS_PER_THREAD = 4_000
_MAX_THREADS = 16
# The probe that checks the fast path against the tokenizer's own call: words, punctuation,
# accents, an unknown character, and long enough to be truncated at any max length used here.
_PROBE = "Hello, World! Ünïcode café — naïve résumé 42 % ⊕ " * 64
# Pairs too: both sides long (longest_first trims the longer side first), one side short.
_PAIR_PROBE = [(_PROBE, _PROBE[:300]), ("x", _PROBE), (_PROBE[:40], "y")]


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids per text, unpadded and truncated to the max length (special tokens in).

    ``token_type_ids`` (segment ids, 0 for the first text and 1 for the second) is set for
    pairs encoded for a model that takes them, else None (all zeros: the model's default).
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None = None

    @cached_property
    def lengths(self) -> np.ndarray:
        """Tokens per text (computed once; the dataclass is frozen so ids never change)."""
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64,
                           count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def texts_fingerprint(texts: Sequence[Text]) -> str:
    """A short content hash of a list of texts or pairs (order matters)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text_key(text))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _tokenizer_key(tokenizer: Any) -> str:
    return f"{type(tokenizer).__name__}:{tokenizer.name_or_path}:{len(tokenizer)}"


def _cache_key(tokenizer: Any, texts: Sequence[Text], max_length: int) -> tuple[str, str, int]:
    return (_tokenizer_key(tokenizer), texts_fingerprint(texts), int(max_length))


def cached_encoding(tokenizer: Any, texts: Sequence[Text], max_length: int
                    ) -> EncodedTexts | None:
    """The cached tokenisation of ``texts``, or None when they were not tokenised yet."""
    key = _cache_key(tokenizer, texts, max_length)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    return None


def _store(key: tuple[str, str, int], encoded: EncodedTexts) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = encoded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def clear_cache() -> None:
    """Forget every cached tokenisation (benchmarks time tokenisation from scratch)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def encode_texts(tokenizer: Any, texts: Sequence[Text], max_length: int) -> EncodedTexts:
    """Tokenise ``texts`` once (fast tokenizer, batched calls), cached in-process.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the texts, in order.
        max_length: truncation length in tokens, special tokens included.
    Returns:
        The unpadded token ids of every text.
    """
    key = _cache_key(tokenizer, texts, max_length)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    encoded = encode_uncached(tokenizer, texts, max_length)
    _store(key, encoded)
    return encoded


def encode_uncached(tokenizer: Any, texts: Sequence[Text], max_length: int) -> EncodedTexts:
    """Tokenise ``texts`` without the cache (what a caller seeing new texts pays).

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the texts, or ``(first, second)`` pairs, in order.
        max_length: truncation length in tokens, special tokens included.
    Returns:
        The unpadded token ids of every text, identical to ``tokenizer(texts,
        truncation=True, max_length=max_length)["input_ids"]`` (for pairs, to
        ``tokenizer(firsts, seconds, ...)``: ``longest_first`` truncation, and
        ``token_type_ids`` when the model takes them).
    """
    texts = list(texts)
    pairs = has_pairs(texts)
    if pairs:
        split_pairs(texts)  # raises on rows that mix single texts and pairs
    types = pairs and "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    encoder = _fast_encoder(tokenizer, max_length)
    if encoder is None:
        return _slow_encoded(tokenizer, texts, max_length, types)

    def encode(part: list[Any]) -> list[Any]:
        return encoder.encode_batch_fast(part)

    threads = _thread_count(texts)
    if threads == 1:
        encodings = encode(texts)
    else:
        step = -(-len(texts) // threads)
        parts = [texts[i:i + step] for i in range(0, len(texts), step)]
        # A pool per call: a module-level pool would be dead (and hang) in a forked child.
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            encodings = [e for part in pool.map(encode, parts) for e in part]
    return EncodedTexts([e.ids for e in encodings],
                        [e.type_ids for e in encodings] if types else None)


def encode_in_chunks(tokenizer: Any, texts: Sequence[Text], max_length: int,
                     first_chunk: int = 1024, max_chunk: int = 16384
                     ) -> Iterator[tuple[int, EncodedTexts]]:
    """Tokenise ``texts`` chunk by chunk, one chunk ahead in a background thread.

    While the caller works on chunk ``k`` (e.g. launches GPU kernels), chunk ``k + 1`` is
    tokenised; the Rust tokenizer releases the GIL, so the two overlap. Chunks start small
    (the first cannot overlap with anything) and double up to ``max_chunk``.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the texts, in order.
        max_length: truncation length in tokens.
        first_chunk: texts in the first chunk.
        max_chunk: the most texts in one chunk.
    Yields:
        ``(start, encoded)``: the index of the chunk's first text and its token ids.
    """
    bounds, start, size = [], 0, max(1, first_chunk)
    while start < len(texts):
        bounds.append((start, min(len(texts), start + size)))
        start, size = start + size, min(max_chunk, size * 2)
    if not bounds:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(encode_uncached, tokenizer, texts[bounds[0][0]:bounds[0][1]],
                              max_length)
        for i, (begin, _) in enumerate(bounds):
            encoded = pending.result()
            if i + 1 < len(bounds):
                lo, hi = bounds[i + 1]
                pending = pool.submit(encode_uncached, tokenizer, texts[lo:hi], max_length)
            yield begin, encoded


def concat_encoded(parts: Sequence[EncodedTexts]) -> EncodedTexts:
    """The rows of several encodings, in order, as one."""
    types = None
    if parts and all(part.token_type_ids is not None for part in parts):
        types = [ids for part in parts for ids in part.token_type_ids]
    return EncodedTexts([ids for part in parts for ids in part.input_ids], types)


def store_encoding(tokenizer: Any, texts: Sequence[Text], max_length: int,
                   encoded: EncodedTexts) -> None:
    """Put an encoding made elsewhere (e.g. chunk by chunk) into the cache."""
    if len(encoded) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(encoded)} encoded rows")
    _store(_cache_key(tokenizer, texts, max_length), encoded)


def _thread_count(texts: Sequence[Text]) -> int:
    if len(texts) < PARALLEL_MIN_TEXTS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cpus = os.cpu_count() or 1
    wanted = max(len(texts) // _TEXTS_PER_THREAD, sum(map(text_chars, texts)) // _CHARS_PER_THREAD)
    return max(1, min(cpus, _MAX_THREADS, wanted))


def _slow_ids(tokenizer: Any, texts: list[Text], max_length: int) -> list[list[int]]:
    return _slow_encoded(tokenizer, texts, max_length, False).input_ids


def _slow_encoded(tokenizer: Any, texts: list[Text], max_length: int, types: bool
                  ) -> EncodedTexts:
    """The tokenizer's own call (pairs as two lists: its ``longest_first`` truncation)."""
    firsts, seconds = split_pairs(texts)
    out = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=types)
    return EncodedTexts(out["input_ids"], out["token_type_ids"] if types else None)


def _fast_encoder(tokenizer: Any, max_length: int) -> Any:
    """A copy of the tokenizer's Rust backend that truncates at ``max_length`` and never pads,
    or None when there is none or it disagrees with the tokenizer's own call on a probe."""
    with _ENCODERS_LOCK:
        per_length = _ENCODERS.setdefault(tokenizer, {})
        if max_length in per_length:
            return per_length[max_length]
    encoder = None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        try:
            from tokenizers import Tokenizer

            encoder = Tokenizer.from_str(backend.to_str())
            encoder.enable_truncation(max_length)
            encoder.no_padding()
            probe = [_PROBE, _PROBE[:40], "x"]
            pairs = _slow_encoded(tokenizer, _PAIR_PROBE, max_length, True)
            fast_pairs = encoder.encode_batch_fast(_PAIR_PROBE)
            if ([e.ids for e in encoder.encode_batch_fast(probe)] != _slow_ids(
                    tokenizer, probe, max_length)
                    or [e.ids for e in fast_pairs] != pairs.input_ids
                    or (pairs.token_type_ids is not None
                        and [e.type_ids for e in fast_pairs] != pairs.token_type_ids)):
                logger.info("fast tokenisation path disagrees with %s; using its own call",
                            type(tokenizer).__name__)
                encoder = None
        except Exception as error:  # an exotic backend: the tokenizer's own call still works
            logger.info("fast tokenisation path unavailable (%s); using the tokenizer's call",
                        error)
            encoder = None
    with _ENCODERS_LOCK:
        _ENCODERS.setdefault(tokenizer, {})[max_length] = encoder
    return encoder
