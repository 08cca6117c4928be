"""core.encoding and core.batching: the fast tokenisation path, the cache, length bucketing
and collation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import encoding
from core.batching import (
    EncodedTexts,
    batches_by_tokens,
    bucketed_batches,
    cached_encoding,
    clear_cache,
    collate,
    encode_in_chunks,
    encode_texts,
    encode_uncached,
)

TEXTS = [
    "Hello, World!",
    "an utterly forgettable film whose plot wanders " * 20,  # truncated at any max length
    "Ünïcode café — naïve résumé, 42 % off ⊕",
    "",
    "the end",
]


@pytest.fixture(scope="module")
def tokenizer(minilm_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def random_encoded(n: int, seed: int, max_len: int = 60) -> EncodedTexts:
    rng = np.random.default_rng(seed)
    return EncodedTexts([rng.integers(1, 1000, size=int(k)).tolist()
                         for k in rng.integers(1, max_len, size=n)])


def assert_every_index_once(batches: list[np.ndarray], n: int) -> None:
    flat = np.concatenate(batches)
    assert len(flat) == n
    assert sorted(flat.tolist()) == list(range(n))


@pytest.mark.parametrize("max_length", [8, 64, 512])
def test_fast_path_gives_the_tokenizers_own_ids(tokenizer, max_length: int):
    expected = tokenizer(TEXTS, truncation=True, max_length=max_length)["input_ids"]
    assert encode_uncached(tokenizer, TEXTS, max_length).input_ids == expected
    assert encoding._fast_encoder(tokenizer, max_length) is not None  # the fast path ran


def test_threaded_tokenisation_keeps_the_order(tokenizer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(encoding, "_thread_count", lambda n: 3)
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(50)]
    expected = tokenizer(texts, truncation=True, max_length=16)["input_ids"]
    assert encode_uncached(tokenizer, texts, 16).input_ids == expected


def test_chunked_tokenisation_covers_every_text_in_order(tokenizer):
    texts = [f"sentence {i} with some words" for i in range(100)]
    chunks = list(encode_in_chunks(tokenizer, texts, 32, first_chunk=8, max_chunk=32))
    starts = [start for start, _ in chunks]
    sizes = [len(encoded) for _, encoded in chunks]
    assert starts == [0, 8, 24, 56, 88] and sizes == [8, 16, 32, 32, 12]  # doubling, capped
    ids = [row for _, encoded in chunks for row in encoded.input_ids]
    assert ids == tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    assert list(encode_in_chunks(tokenizer, [], 32)) == []


def test_encode_texts_caches_and_clear_cache_forgets(tokenizer):
    clear_cache()
    assert cached_encoding(tokenizer, TEXTS, 32) is None
    first = encode_texts(tokenizer, TEXTS, 32)
    assert cached_encoding(tokenizer, TEXTS, 32) is first
    assert encode_texts(tokenizer, TEXTS, 32) is first
    assert encode_texts(tokenizer, TEXTS, 16) is not first  # another max length
    clear_cache()
    assert cached_encoding(tokenizer, TEXTS, 32) is None


@pytest.mark.parametrize("seed", range(5))
def test_token_budget_batches_never_pad_beyond_their_longest_row(seed: int):
    encoded = random_encoded(300, seed)
    lengths = encoded.lengths
    max_tokens = 256
    batches = batches_by_tokens(lengths, max_tokens, max_batch_size=16)
    assert_every_index_once(batches, len(lengths))
    for indices in batches:
        batch = collate(encoded, indices, pad_token_id=0)
        longest = int(lengths[indices].max())
        assert batch["input_ids"].shape == (len(indices), longest)
        assert len(indices) <= 16
        assert len(indices) * longest <= max_tokens or len(indices) == 1


def test_a_row_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = batches_by_tokens(np.array([5, 400, 7]), max_tokens=100)
    assert [b.tolist() for b in batches] == [[1], [2, 0]]


@pytest.mark.parametrize("seed", range(5))
def test_bucketed_batches_cover_every_row_once_and_pad_little(seed: int):
    encoded = random_encoded(1000, seed)
    lengths = encoded.lengths
    batches = bucketed_batches(lengths, batch_size=32, seed=seed, epoch=0, bucket_multiplier=10)
    assert_every_index_once(batches, len(lengths))
    padded = 0
    for indices in batches:
        batch = collate(encoded, indices, pad_token_id=0)
        assert batch["input_ids"].shape[1] == int(lengths[indices].max())
        assert len(indices) <= 32
        padded += batch["input_ids"].numel()
    # Random batches of 32 pad every row to about the longest of 60 lengths (~1.6x the
    # tokens); sorted buckets of 320 rows leave about a tenth.
    order = np.random.default_rng(seed).permutation(len(lengths))
    random_padded = sum(len(c) * lengths[c].max() for c in np.array_split(order, 1000 // 32))
    assert padded < 1.15 * lengths.sum() < 0.8 * random_padded


def test_bucketed_batches_change_with_the_epoch_and_repeat_with_the_seed():
    lengths = random_encoded(200, 0).lengths
    first = bucketed_batches(lengths, 16, seed=1, epoch=0)
    again = bucketed_batches(lengths, 16, seed=1, epoch=0)
    other = bucketed_batches(lengths, 16, seed=1, epoch=1)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]
    assert [b.tolist() for b in first] != [b.tolist() for b in other]


def test_collate_pads_with_the_pad_id_and_masks_the_padding():
    encoded = EncodedTexts([[5, 6, 7], [8], [9, 10]])
    batch = collate(encoded, [2, 0, 1], pad_token_id=3)
    assert batch["input_ids"].tolist() == [[9, 10, 3], [5, 6, 7], [8, 3, 3]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
