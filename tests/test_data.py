"""core/data.py: bundled BBC News, SST-2, local files and folders, caps, transfer, errors."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from core.data import DataError, bundled_bbc_news_dir, load_data, read_texts_file
from core.specs import DatasetSpec

POSITIVE = ["great film", "loved it", "a joy", "superb acting", "wonderful", "brilliant",
            "moving story", "fun ride", "clever script", "warm and funny"]
NEGATIVE = ["dull", "a mess", "boring plot", "awful acting", "waste of time", "tedious",
            "flat jokes", "no story", "too long", "bland"]


def _rows(n_per_class: int = 10) -> list[dict[str, object]]:
    rows = []
    for i in range(n_per_class):
        rows.append({"text": POSITIVE[i % 10] + f" {i}", "label": "pos"})
        rows.append({"text": NEGATIVE[i % 10] + f" {i}", "label": "neg"})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def bbc():
    return load_data(DatasetSpec(name="bbc_news"), seed=42)


# --- bundled BBC News ----------------------------------------------------------------


def test_bbc_news_has_5_labels_and_2125_unique_texts_split_80_20(bbc):
    assert bbc.label_names == ["business", "entertainment", "politics", "sports", "tech"]
    assert len(bbc.train_texts) == len(bbc.train_labels) == 1700
    assert len(bbc.validation_texts) == len(bbc.validation_labels) == 425
    assert bbc.transfer_texts == []
    assert bbc.description == "BBC News (bundled): 1,700 train / 425 validation, 5 labels"
    # 2,225 files, of which 100 repeat another verbatim: no copy may straddle the split.
    assert not set(bbc.train_texts) & set(bbc.validation_texts)


def test_bbc_news_split_is_stratified(bbc):
    train, val = Counter(bbc.train_labels), Counter(bbc.validation_labels)
    for label in range(5):
        assert abs(train[label] / 1700 - val[label] / 425) < 0.01


def test_bbc_news_texts_keep_the_title_and_normalise_whitespace(bbc):
    texts = bbc.train_texts + bbc.validation_texts
    assert all("\n" not in t and "  " not in t and t == t.strip() for t in texts)
    assert any(t.startswith("Ad sales boost Time Warner profit Quarterly profits") for t in texts)
    assert any("£15.8m" in t for t in texts)  # the one Windows-1252 file is decoded
    assert (bundled_bbc_news_dir() / "tech").is_dir()


def test_bbc_news_split_is_deterministic_per_seed(bbc):
    again = load_data(DatasetSpec(name="Bundled:BBC_News"), seed=42)
    other = load_data(DatasetSpec(name="bbc_news"), seed=7)
    assert again.fingerprint == bbc.fingerprint and again.train_texts == bbc.train_texts
    assert other.fingerprint != bbc.fingerprint
    assert other.validation_texts != bbc.validation_texts


# --- SST-2 and local files -----------------------------------------------------------


def test_sst2_train_and_dev_load_with_exact_row_counts(sst2_dir):
    data = load_data(DatasetSpec(name=str(sst2_dir / "train.tsv"), validation="dev.tsv"))
    assert len(data.train_texts) == 67349 and len(data.validation_texts) == 872
    assert set(data.train_labels) == set(data.validation_labels) == {0, 1}
    assert data.label_names == ["0", "1"]
    assert data.train_texts[0] == "hide new secretions from the parental units "


def test_tsv_keeps_unbalanced_quotes_inside_sentences(tmp_path):
    lines = ["sentence\tlabel"] + [f'"wow {i} , he said\t{i % 2}' for i in range(10)]
    (tmp_path / "train.tsv").write_text("\n".join(lines) + "\n")
    data = load_data(DatasetSpec(name=str(tmp_path / "train.tsv")))
    assert len(data.train_texts) + len(data.validation_texts) == 10
    assert all(t.startswith('"wow ') for t in data.train_texts)


def test_csv_with_string_labels_maps_sorted_names(tmp_path):
    path = tmp_path / "reviews.csv"
    pd.DataFrame(_rows()).to_csv(path, index=False)
    data = load_data(DatasetSpec(name=str(path)), seed=1)
    assert data.label_names == ["neg", "pos"]
    assert len(data.train_texts) == 18 and len(data.validation_texts) == 2
    assert sorted(data.validation_labels) == [0, 1]  # stratified 90/10
    truth = {r["text"]: r["label"] for r in _rows()}
    pairs = zip(data.train_texts + data.validation_texts,
                data.train_labels + data.validation_labels, strict=True)
    assert all(data.label_names[label] == truth[text] for text, label in pairs)


def test_jsonl_file_loads(tmp_path):
    path = _write_jsonl(tmp_path / "train.jsonl", _rows())
    data = load_data(DatasetSpec(name=str(path)))
    assert data.label_names == ["neg", "pos"]
    assert len(data.train_texts) + len(data.validation_texts) == 20


def test_parquet_file_with_integer_labels_0_to_k_keeps_ids(tmp_path):
    frame = pd.DataFrame({"review": [f"text number {i}" for i in range(30)],
                          "sentiment": [0, 2, 1] * 10})
    frame.to_parquet(tmp_path / "train.parquet")
    data = load_data(DatasetSpec(name=str(tmp_path / "train.parquet")))
    assert data.label_names == ["0", "1", "2"]
    assert set(data.train_labels) == {0, 1, 2}
    text_to_label = dict(zip(frame.review, frame.sentiment, strict=True))
    assert all(text_to_label[t] == y
               for t, y in zip(data.train_texts, data.train_labels, strict=True))


@pytest.mark.parametrize("values", [[0, 1000000], [1, 2], [0, 2], [-1, 1]])
def test_sparse_or_one_based_integer_labels_get_dense_ids_named_by_value(tmp_path, values):
    frame = pd.DataFrame({"text": [f"text number {i}" for i in range(20)],
                          "label": values * 10})
    frame.to_parquet(tmp_path / "train.parquet")
    data = load_data(DatasetSpec(name=str(tmp_path / "train.parquet")))
    assert data.label_names == [str(v) for v in sorted(values)]  # one output per class
    truth = dict(zip(frame.text, frame.label, strict=True))
    pairs = zip(data.train_texts + data.validation_texts,
                data.train_labels + data.validation_labels, strict=True)
    assert all(data.label_names[label] == str(truth[text]) for text, label in pairs)


def test_validation_file_labels_map_through_the_training_mapping(tmp_path):
    pd.DataFrame({"text": [f"train {i}" for i in range(12)],
                  "label": [7, 1000000, 3] * 4}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"text": ["dev a", "dev b", "dev c"], "label": [1000000, 3, 7]}).to_csv(
        tmp_path / "dev.csv", index=False)
    data = load_data(DatasetSpec(name=str(tmp_path / "train.csv"), validation="dev.csv"))
    assert data.label_names == ["3", "7", "1000000"]
    assert data.validation_labels == [2, 0, 1]
    pd.DataFrame({"text": ["dev d"], "label": [5]}).to_csv(tmp_path / "dev.csv", index=False)
    message = _error(DatasetSpec(name=str(tmp_path / "train.csv"), validation="dev.csv"))
    assert "row 1: label '5' is not among the training labels ['3', '7', '1000000']" in message


def test_folder_with_train_and_dev_files(tmp_path):
    pd.DataFrame(_rows()).to_csv(tmp_path / "train.csv", index=False)
    _write_jsonl(tmp_path / "dev.jsonl", _rows(3))
    data = load_data(DatasetSpec(name=str(tmp_path)))
    assert len(data.train_texts) == 20 and len(data.validation_texts) == 6
    assert data.description.endswith("train.csv + dev.jsonl: 20 train / 6 validation, 2 labels")


def test_explicit_column_names(tmp_path):
    rows = [{"body": r["text"], "topic": r["label"], "text": "decoy", "label": "x"}
            for r in _rows()]
    path = _write_jsonl(tmp_path / "train.jsonl", rows)
    data = load_data(DatasetSpec(name=str(path), text_column="body", label_column="topic"))
    assert "decoy" not in data.train_texts and data.label_names == ["neg", "pos"]


def test_max_train_examples_with_transfer_rest_is_disjoint_and_adds_up(bbc):
    data = load_data(DatasetSpec(name="bbc_news", max_train_examples=100, transfer="rest",
                                 max_eval_examples=50), seed=42)
    assert len(data.train_texts) == 100 and len(data.transfer_texts) == 1700 - 100
    assert sorted(data.train_texts + data.transfer_texts) == sorted(bbc.train_texts)
    assert not set(data.validation_texts) - set(bbc.validation_texts)
    assert set(data.train_labels) == set(range(5)) and len(data.validation_texts) == 50
    full, subset = Counter(bbc.train_labels), Counter(data.train_labels)
    for label, count in full.items():  # stratified: each class in proportion, within rounding
        assert abs(subset[label] - 100 * count / len(bbc.train_labels)) <= 1.5
    assert data.description.endswith("100 train / 50 validation, 5 labels, 1,600 transfer texts")


def test_transfer_file_is_read_and_capped(tmp_path):
    (tmp_path / "unlabelled.txt").write_text("".join(f"line {i}\n\n" for i in range(40)))
    pd.DataFrame(_rows()).to_csv(tmp_path / "train.csv", index=False)
    spec = DatasetSpec(name=str(tmp_path / "train.csv"),
                       transfer=str(tmp_path / "unlabelled.txt"), max_transfer_examples=25)
    data = load_data(spec, seed=3)
    assert len(data.transfer_texts) == 25 and set(data.transfer_texts) < {
        f"line {i}" for i in range(40)}
    assert load_data(spec, seed=3).transfer_texts == data.transfer_texts
    assert read_texts_file(tmp_path / "unlabelled.txt")[:2] == ["line 0", "line 1"]


def test_read_texts_file_takes_the_only_column_of_a_table(tmp_path):
    pd.DataFrame({"tweet": ["a b", "c d"]}).to_csv(tmp_path / "t.csv", index=False)
    assert read_texts_file(tmp_path / "t.csv") == ["a b", "c d"]


# --- errors --------------------------------------------------------------------------


def _error(spec: DatasetSpec) -> str:
    with pytest.raises(DataError) as info:
        load_data(spec)
    return str(info.value)


def test_missing_file_is_reported_without_trying_the_hub(tmp_path):
    assert _error(DatasetSpec(name=str(tmp_path / "nope.csv"))) == (
        f"file not found: {tmp_path / 'nope.csv'}")
    assert _error(DatasetSpec(name="data/train.jsonl")) == "file not found: data/train.jsonl"


def test_unsupported_extension_lists_the_supported_ones(tmp_path):
    (tmp_path / "train.xlsx").write_bytes(b"PK")
    message = _error(DatasetSpec(name=str(tmp_path / "train.xlsx")))
    assert "unsupported file type '.xlsx'" in message and ".csv, .tsv, .jsonl, .parquet" in message
    (tmp_path / "train.txt").write_text("just text\n")
    assert "unlabelled texts" in _error(DatasetSpec(name=str(tmp_path / "train.txt")))


def test_missing_column_lists_found_and_expected_columns(tmp_path):
    pd.DataFrame({"body": ["a", "b"], "label": [0, 1]}).to_csv(tmp_path / "x.csv", index=False)
    message = _error(DatasetSpec(name=str(tmp_path / "x.csv")))
    assert "no text column" in message and "['body', 'label']" in message
    assert "'sentence'" in message and "text_column" in message
    assert "no label column 'topic'" in _error(
        DatasetSpec(name=str(tmp_path / "x.csv"), text_column="body", label_column="topic"))


def test_ambiguous_label_column_asks_to_name_one(tmp_path):
    pd.DataFrame({"text": ["a", "b"], "label": [0, 1], "class": [1, 0]}).to_csv(
        tmp_path / "x.csv", index=False)
    assert "ambiguous label column" in _error(DatasetSpec(name=str(tmp_path / "x.csv")))


def test_empty_text_names_the_row_and_column(tmp_path):
    rows = _rows()
    rows[3]["text"] = "   "
    pd.DataFrame(rows).to_csv(tmp_path / "x.csv", index=False)
    message = _error(DatasetSpec(name=str(tmp_path / "x.csv")))
    assert message == f"{tmp_path / 'x.csv'}: row 4: empty text in column 'text'"
    rows[3]["text"] = 7
    _write_jsonl(tmp_path / "x.jsonl", rows)
    assert "row 4: non-string (int) text" in _error(DatasetSpec(name=str(tmp_path / "x.jsonl")))


def test_missing_label_names_the_row(tmp_path):
    rows = _rows()
    del rows[5]["label"]
    _write_jsonl(tmp_path / "x.jsonl", rows)
    assert "row 6: missing label" in _error(DatasetSpec(name=str(tmp_path / "x.jsonl")))


def test_unknown_validation_label_names_the_file_and_label(tmp_path):
    pd.DataFrame(_rows()).to_csv(tmp_path / "train.csv", index=False)
    dev = _rows(2) + [{"text": "so-so", "label": "meh"}]
    pd.DataFrame(dev).to_csv(tmp_path / "dev.csv", index=False)
    message = _error(DatasetSpec(name=str(tmp_path / "train.csv"), validation="dev.csv"))
    assert message.startswith(f"{tmp_path / 'dev.csv'}: row 5: label 'meh'")
    assert "['neg', 'pos']" in message


def test_single_class_is_rejected(tmp_path):
    rows = [{"text": f"t {i}", "label": "pos"} for i in range(10)]
    pd.DataFrame(rows).to_csv(tmp_path / "x.csv", index=False)
    assert "fewer than 2 classes" in _error(DatasetSpec(name=str(tmp_path / "x.csv")))


def test_malformed_jsonl_names_the_line(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", _rows())
    path.write_text(path.read_text() + '{"text": "broken", "label": \n')
    assert f"{path}: line 21 is not valid JSON" in _error(DatasetSpec(name=str(path)))


def test_malformed_csv_passes_on_the_parser_line(tmp_path):
    (tmp_path / "x.csv").write_text("text,label\na,0\nb,1,extra\n")
    message = _error(DatasetSpec(name=str(tmp_path / "x.csv")))
    assert "cannot read as CSV" in message and "line 3" in message


@pytest.mark.parametrize("header", ["text,label,text", "text,label,label"])
def test_csv_with_a_duplicated_column_name_is_refused(tmp_path, header):
    repeated = header.rsplit(",", 1)[1]
    (tmp_path / "x.csv").write_text(header + "\n" + "a,0,b\nc,1,d\n" * 5)
    message = _error(DatasetSpec(name=str(tmp_path / "x.csv")))
    assert message == (f"{tmp_path / 'x.csv'}: the header has duplicated column names: "
                       f"'{repeated}' (2 times); rename or remove the extra copies so each "
                       f"column appears once")


def test_tsv_with_a_duplicated_column_name_is_refused(tmp_path):
    (tmp_path / "x.tsv").write_text("sentence\tlabel\tsentence\n" + "a\t0\tb\n" * 6)
    assert "duplicated column names: 'sentence' (2 times)" in _error(
        DatasetSpec(name=str(tmp_path / "x.tsv")))


def test_csv_with_pandas_style_suffixed_names_is_not_a_duplicate(tmp_path):
    # "text.1" written by the user is a different column, only a repeated name is refused.
    rows = [{"text": r["text"], "text.1": "other", "label": r["label"]} for r in _rows()]
    pd.DataFrame(rows).to_csv(tmp_path / "x.csv", index=False)
    assert load_data(DatasetSpec(name=str(tmp_path / "x.csv"))).label_names == ["neg", "pos"]


def test_jsonl_with_a_repeated_key_names_the_line(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", _rows())
    path.write_text(path.read_text() + '{"text": "one", "label": "pos", "text": "two"}\n')
    assert f"{path}: line 21 has duplicated column names: 'text' (2 times)" in _error(
        DatasetSpec(name=str(path)))


def test_parquet_with_a_duplicated_column_name_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array(["a", "b"]), pa.array([0, 1]), pa.array([1, 0])],
                     names=["text", "label", "label"])
    pq.write_table(table, tmp_path / "x.parquet")
    assert "the schema has duplicated column names: 'label' (2 times)" in _error(
        DatasetSpec(name=str(tmp_path / "x.parquet")))


def test_file_over_the_upload_limit_is_refused(tmp_path, monkeypatch):
    pd.DataFrame(_rows()).to_csv(tmp_path / "x.csv", index=False)
    monkeypatch.setenv("DISTILLAB_MAX_UPLOAD_MB", "0.0001")
    assert "over the limit" in _error(DatasetSpec(name=str(tmp_path / "x.csv")))


def test_max_train_examples_below_the_class_count_is_refused():
    assert "fewer than the 5 classes" in _error(DatasetSpec(max_train_examples=3))


def test_hub_id_offline_fails_fast_with_a_clear_message():
    start = time.perf_counter()
    message = _error(DatasetSpec(name="stanfordnlp/sst2"))
    assert time.perf_counter() - start < 5
    assert "'stanfordnlp/sst2' is not a local file" in message and "offline" in message
    assert "CSV, TSV, JSONL or Parquet" in message


def test_hub_loader_reads_classlabel_names_and_skips_an_unlabelled_test_split(tmp_path):
    # datasets.load_dataset on a Hub-layout folder runs the same code as a Hub id.
    from datasets import ClassLabel, Dataset, Features, Value

    from core.hub_data import load_hub

    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    (tmp_path / "data").mkdir()
    Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]},
                      features=features).to_parquet(tmp_path / "data" / "train-0.parquet")
    Dataset.from_dict({"text": ["u1", "u2"], "label": [-1, -1]},
                      features=features).to_parquet(tmp_path / "data" / "test-0.parquet")
    loaded = load_hub(DatasetSpec(name=str(tmp_path)), seed=0)
    source, train_texts, val_texts = loaded.source, loaded.train_texts, loaded.validation_texts
    names, val_labels = loaded.label_names, loaded.validation_labels
    assert names == ["neg", "pos"] and source.endswith("(Hub)") and loaded.columns == ("text",)
    assert len(train_texts) == 18 and sorted(val_labels) == [0, 1]
    assert not {"u1", "u2"} & set(val_texts)


def test_tiny_data_keeps_every_class_in_training(tmp_path):
    rows = [{"text": f"t {i}", "label": "abc"[i % 3]} for i in range(6)] + [
        {"text": "lonely", "label": "z"}]
    pd.DataFrame(rows).to_csv(tmp_path / "x.csv", index=False)
    data = load_data(DatasetSpec(name=str(tmp_path / "x.csv")))
    assert set(data.train_labels) == {0, 1, 2, 3} and len(data.validation_texts) == 1


def test_float_labels_are_class_ids_or_refused_as_regression(tmp_path):
    pd.DataFrame({"text": [f"t {i}" for i in range(10)], "label": ["0.0", "1.0"] * 5}).to_csv(
        tmp_path / "ok.csv", index=False)
    assert load_data(DatasetSpec(name=str(tmp_path / "ok.csv"))).label_names == ["0", "1"]
    pd.DataFrame({"text": ["a", "b"], "label": [0.25, 0.75]}).to_parquet(tmp_path / "r.parquet")
    # Non-integer numbers are a regression target; asked for classes, they are refused.
    assert load_data(DatasetSpec(name=str(tmp_path / "r.parquet"))).task == "regression"
    assert "task regression" in _error(DatasetSpec(name=str(tmp_path / "r.parquet"),
                                                   task="classification"))
