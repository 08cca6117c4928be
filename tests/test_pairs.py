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
    from core import encoding

    fast = encode_uncached(tokenizer, PAIRS, 32)
    monkeypatch.setattr(encoding, "_fast_encoder", lambda tok, length: None)
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


# --- detection -----------------------------------------------------------------------

import pandas as pd  # noqa: E402

from core.data import load_data, read_texts_file  # noqa: E402
from core.specs import DatasetSpec, SpecError  # noqa: E402
from core.tables import PAIR_COLUMNS, DataError  # noqa: E402


def _pair_file(path, first: str, second: str, label: str = "label", n: int = 20):
    rows = {first: [f"first {i}" for i in range(n)], second: [f"second {i}" for i in range(n)],
            label: [i % 2 for i in range(n)]}
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("first", "second"), PAIR_COLUMNS)
def test_conventional_pair_columns_are_found_without_flags(tmp_path, first, second):
    data = load_data(DatasetSpec(name=str(_pair_file(tmp_path / "t.csv", first, second))))
    assert data.is_pairs and data.text_columns == (first, second)
    assert all(t[1].startswith("second") for t in data.train_texts + data.validation_texts)
    assert "sentence pairs" in data.description


def test_a_sentence1_sentence2_file_keeps_its_second_sentence(tmp_path):
    # The old behaviour: core/tables.py picked sentence1 and dropped sentence2 silently.
    data = load_data(DatasetSpec(name=str(_pair_file(tmp_path / "t.csv", "sentence1",
                                                     "sentence2"))))
    assert data.train_texts[0] != "first 0" and isinstance(data.train_texts[0], tuple)
    assert {t[0].replace("first", "second") for t in data.train_texts} == {
        t[1] for t in data.train_texts}


def test_explicit_columns_name_the_pair(tmp_path):
    path = _pair_file(tmp_path / "t.csv", "left", "right")
    data = load_data(DatasetSpec(name=str(path), text_column="left", text_pair_column="right"))
    assert data.is_pairs and data.text_columns == ("left", "right")
    # One named text column reads single texts, the caller's choice.
    path = _pair_file(tmp_path / "s.csv", "sentence1", "sentence2")
    single = load_data(DatasetSpec(name=str(path), text_column="sentence1"))
    assert not single.is_pairs and single.text_columns == ("sentence1",)


def test_bad_pair_columns_get_clear_messages(tmp_path):
    path = _pair_file(tmp_path / "t.csv", "left", "right")
    with pytest.raises(DataError, match="no text_pair column 'nope'"):
        load_data(DatasetSpec(name=str(path), text_column="left", text_pair_column="nope"))
    with pytest.raises(SpecError, match="needs dataset.text_column"):
        DatasetSpec(name=str(path), text_pair_column="right")
    with pytest.raises(SpecError, match="both 'left'"):
        DatasetSpec(name=str(path), text_column="left", text_pair_column="left")
    lone = tmp_path / "lone.csv"
    pd.DataFrame({"text": ["a", "b"] * 5, "hypothesis": ["c", "d"] * 5,
                  "label": [0, 1] * 5}).to_csv(lone, index=False)
    with pytest.raises(DataError, match="'hypothesis' looks like a second text"):
        load_data(DatasetSpec(name=str(lone)))
    both = tmp_path / "both.csv"
    pd.DataFrame({"premise": ["a"] * 4, "hypothesis": ["b"] * 4, "question1": ["c"] * 4,
                  "question2": ["d"] * 4, "label": [0, 1] * 2}).to_csv(both, index=False)
    with pytest.raises(DataError, match="several sentence-pair columns"):
        load_data(DatasetSpec(name=str(both)))


def test_blank_pair_text_names_its_row_and_column(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"sentence1": ["a", "b", "c"], "sentence2": ["x", " ", "z"],
                  "label": [0, 1, 0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="row 2: empty text in column 'sentence2'"):
        load_data(DatasetSpec(name=str(path)))


def test_validation_and_transfer_must_be_pairs_too(tmp_path):
    train = _pair_file(tmp_path / "train.csv", "sentence1", "sentence2")
    single = tmp_path / "dev.csv"
    pd.DataFrame({"sentence": ["a", "b"], "label": [0, 1]}).to_csv(single, index=False)
    with pytest.raises(DataError, match="holds single texts"):
        load_data(DatasetSpec(name=str(train), validation=str(single)))
    transfer = _pair_file(tmp_path / "more.csv", "sentence1", "sentence2", label="x")
    data = load_data(DatasetSpec(name=str(train), transfer=str(transfer)))
    assert len(data.transfer_texts) == 20 and data.transfer_texts[0] == ("first 0", "second 0")
    assert read_texts_file(transfer) == data.transfer_texts


def test_glue_mrpc_and_stsb_files_read_as_pairs():
    from pathlib import Path

    glue = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"
    if not (glue / "mrpc" / "train.tsv").exists():
        pytest.skip(f"GLUE pairs not found at {glue}")
    data = load_data(DatasetSpec(name=str(glue / "mrpc" / "train.tsv"),
                                 validation=str(glue / "mrpc" / "test.tsv"),
                                 max_train_examples=50, max_eval_examples=20))
    assert data.is_pairs and data.label_names == ["0", "1"]
    assert data.text_columns == ("sentence1", "sentence2")


def test_tsv_quoting_is_read_from_the_file(tmp_path):
    from core.tables import read_table

    quoted = tmp_path / "q.tsv"
    quoted.write_text('sentence1\tsentence2\tlabel\n"says ""hi"" there"\tplain\t1\n'
                      'a\t"b ""c"""\t0\n')
    frame = read_table(quoted)
    assert frame["sentence1"].tolist() == ['says "hi" there', "a"]
    assert frame["sentence2"].tolist() == ["plain", 'b "c"']
    loose = tmp_path / "l.tsv"  # SST-2 style: an unbalanced quote is just a character
    loose.write_text('sentence\tlabel\n" a quote opens\t1\nand never closes\t0\n')
    assert read_table(loose)["sentence"].tolist() == ['" a quote opens', "and never closes"]


# --- the app's forms and the Compare tab's helpers ------------------------------------


def test_the_distil_form_names_the_pair_columns(tmp_path):
    from app.forms import build_spec
    from app.progress import form_values
    from tests.test_app_api import form

    spec = build_spec(form(text_column="premise", text_pair_column="hypothesis"), tmp_path)
    assert (spec.dataset.text_column, spec.dataset.text_pair_column) == ("premise",
                                                                         "hypothesis")
    assert form_values(spec.to_dict())["text_pair_column"] == "hypothesis"
    with pytest.raises(SpecError, match="needs dataset.text_column"):
        build_spec(form(text_pair_column="hypothesis"), tmp_path)


def test_compare_tab_pairs_lines_and_shows_both_texts():
    import gradio as gr

    from app.compare_tables import browser_rows, side_by_side
    from app.tabs.compare import texts_and_pairs

    assert texts_and_pairs("a\n\nb\n", "") == (["a", "b"], None)
    assert texts_and_pairs("a\nb", "x\ny\n") == (["a", "b"], ["x", "y"])
    with pytest.raises(gr.Error, match="2 texts but 1 second texts"):
        texts_and_pairs("a\nb", "x")
    table = pd.DataFrame({"text_index": [0, 0], "text": ["a", "a"], "text_pair": ["x", "x"],
                          "model": ["run:r/teacher", "run:r/student"], "label": ["1", "1"],
                          "confidence": [0.9, 0.8], "latency_ms": [1.0, 2.0],
                          "agree": [True, True]})
    assert list(side_by_side(table).columns) == ["#", "text", "second text", "agree",
                                                 "teacher", "student"]
    found = pd.DataFrame({"index": [3], "text": ["a"], "text_pair": ["x"], "true_label": ["1"],
                          "a_label": ["1"], "a_confidence": [0.9], "b_label": ["0"],
                          "b_confidence": [0.6], "confidence_gap": [0.3], "a_correct": [True],
                          "b_correct": [False]})
    assert browser_rows(found).iloc[0]["text (click to compare)"] == "a ‖ x"
