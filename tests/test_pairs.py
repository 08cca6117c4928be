"""Sentence pairs: tokenised as the tokenizer's own pair encoding, collated with segment ids,
and predicted through the same path as single texts."""

from __future__ import annotations

import numpy as np
import pytest

from core.batching import (
    batches_by_tokens,
    clear_cache,
    collate,
    encode_texts,
    encode_uncached,
    texts_fingerprint,
)
from core.texts import has_pairs, join_pairs, split_pairs

PAIRS = [
    ("A man is playing a guitar.", "A person plays an instrument."),
    ("The cat sat on the mat " * 30, "short"),           # the long side is cut first
    ("tiny", "an utterly forgettable film whose plot wanders " * 20),
    ("Ünïcode café — naïve résumé", "42 % off ⊕ " * 25),  # both sides long
]


@pytest.fixture(scope="module")
def tokenizer(minilm_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.mark.parametrize("max_length", [16, 48, 128])
def test_pair_encoding_equals_the_tokenizers_own_pair_call(tokenizer, max_length):
    firsts, seconds = split_pairs(PAIRS)
    expected = tokenizer(firsts, seconds, truncation=True, max_length=max_length)
    encoded = encode_uncached(tokenizer, PAIRS, max_length)
    assert encoded.input_ids == expected["input_ids"]
    assert encoded.token_type_ids == expected["token_type_ids"]
    # longest_first keeps both sides: each truncated pair still holds both segments.
    for types in encoded.token_type_ids:
        assert 0 in types and 1 in types


def test_pair_encoding_uses_the_slow_path_identically(tokenizer, monkeypatch):
    from core import batching

    fast = encode_uncached(tokenizer, PAIRS, 32)
    monkeypatch.setattr(batching, "_fast_encoder", lambda tok, length: None)
    slow = encode_uncached(tokenizer, PAIRS, 32)
    assert (slow.input_ids, slow.token_type_ids) == (fast.input_ids, fast.token_type_ids)


def test_pairs_over_many_threads_keep_order(tokenizer):
    many = [(f"first sentence number {i}", f"second {i} " * (i % 7 + 1)) for i in range(700)]
    firsts, seconds = split_pairs(many)
    expected = tokenizer(firsts, seconds, truncation=True, max_length=24)
    encoded = encode_uncached(tokenizer, many, 24)
    assert encoded.input_ids == expected["input_ids"]
    assert encoded.token_type_ids == expected["token_type_ids"]


def test_a_pair_is_not_the_same_text_as_its_joined_sides(tokenizer):
    assert texts_fingerprint([("a b", "c")]) != texts_fingerprint(["a b c"])
    assert texts_fingerprint([("a", "b c")]) != texts_fingerprint([("a b", "c")])
    clear_cache()
    single = encode_texts(tokenizer, ["a b c"], 16)
    pair = encode_texts(tokenizer, [("a b", "c")], 16)
    assert single.token_type_ids is None and pair.token_type_ids is not None


def test_collate_pads_segment_ids_with_zeros(tokenizer):
    encoded = encode_uncached(tokenizer, PAIRS, 40)
    batch = collate(encoded, [0, 1], tokenizer.pad_token_id)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    for row, i in enumerate([0, 1]):
        n = len(encoded.input_ids[i])
        assert batch["token_type_ids"][row, :n].tolist() == encoded.token_type_ids[i]
        assert batch["token_type_ids"][row, n:].sum() == 0


def test_length_buckets_count_both_sides(tokenizer):
    encoded = encode_uncached(tokenizer, PAIRS, 128)
    lengths = encoded.lengths
    assert lengths[0] == len(tokenizer(*PAIRS[0])["input_ids"])
    # The longest pair (both sides long) comes first in token-budget batches.
    assert batches_by_tokens(lengths, 10_000)[0][0] == int(np.argmax(lengths))


def test_a_model_without_segment_ids_gets_none(minilm_path, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]  # DistilBERT's inputs
    encoded = encode_uncached(tokenizer, PAIRS, 32)
    assert encoded.token_type_ids is None
    assert "token_type_ids" not in collate(encoded, [0], 0)


def test_rows_mixing_texts_and_pairs_are_refused(tokenizer):
    with pytest.raises(ValueError, match="mix single texts and pairs"):
        encode_uncached(tokenizer, [("a", "b"), "c"], 16)
    assert has_pairs(join_pairs(["a"], ["b"])) and not has_pairs(join_pairs(["a"], None))
