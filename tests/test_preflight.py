"""core/preflight.py: bad teachers, students, lengths and data fail before a job is queued."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.data import DataError
from core.models import ModelError
from core.preflight import check_job, model_config
from core.specs import JobSpec, SpecError
from tests.conftest import write_sentiment_csvs


def _spec(teacher: str, dataset: str | dict[str, Any] = "bbc_news", **changes: Any) -> JobSpec:
    return JobSpec.from_dict({"teacher": teacher, "dataset": dataset, **changes})


def _fake_model(folder: Path, config: dict[str, Any], weights: str = "model.safetensors",
                tokenizer: str | None = "vocab.txt") -> str:
    """A model folder as preflight sees it: config.json and file names (never loaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if weights:
        (folder / weights).write_bytes(b"")
    if tokenizer:
        (folder / tokenizer).write_text("[PAD]\n")
    return str(folder)


def _raises(error: type[Exception], spec: JobSpec, runs_dir: Path | None = None) -> str:
    with pytest.raises(error) as info:
        check_job(spec, runs_dir)
    return str(info.value)


def test_a_good_job_passes_in_well_under_a_second(tiny_bert_dir, tmp_path):
    train, dev = write_sentiment_csvs(tmp_path, train=60, dev=20)
    spec = _spec(tiny_bert_dir, {"name": train, "validation": dev},
                 student={"layers": [0, 3]}, train={"max_length": 128})
    started = time.perf_counter()
    check_job(spec, tmp_path / "runs")
    check_job(JobSpec(), tmp_path / "runs")  # the bundled teacher and data
    assert time.perf_counter() - started < 1.0


# --- teacher and student checkpoints ---------------------------------------------------


def test_missing_teacher_folder_and_run_model_name_the_teacher(tmp_path):
    assert _raises(ModelError, _spec(str(tmp_path / "gone") + "/")) == (
        f"teacher: {tmp_path / 'gone'}/: folder not found")
    message = _raises(ModelError, _spec("run:abc/teacher"), tmp_path / "runs")
    assert message.startswith("teacher: run:abc/teacher: run 'abc' not found")


def test_folder_without_config_or_weights_or_tokenizer_is_refused(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    assert "has no config.json, so it is not a model" in _raises(ModelError, _spec(str(bare)))
    no_weights = _fake_model(tmp_path / "no_weights", {"num_hidden_layers": 2}, weights="")
    assert "has no weights file (model.safetensors or pytorch_model.bin)" in _raises(
        ModelError, _spec(no_weights))
    no_tokenizer = _fake_model(tmp_path / "no_tok", {"num_hidden_layers": 2}, tokenizer=None)
    assert "has no tokenizer files" in _raises(ModelError, _spec(no_tokenizer))
    broken = _fake_model(tmp_path / "broken", {})
    (Path(broken) / "config.json").write_text("{not json")
    assert "cannot read" in _raises(ModelError, _spec(broken))


def test_weights_accepted_as_load_classifier_accepts_them(tmp_path):
    # core.models.load_classifier loads a pytorch_model.bin when no safetensors are there.
    assert model_config(_fake_model(tmp_path / "bin", {"n_layers": 3},
                                    weights="pytorch_model.bin"), None) == {"n_layers": 3}


def test_sharded_checkpoint_needs_every_shard_its_index_names(tmp_path):
    folder = Path(_fake_model(tmp_path / "sharded", {"num_hidden_layers": 2},
                              weights="model-00001-of-00002.safetensors"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert "lacks weight shards named in model.safetensors.index.json: " \
           "model-00002-of-00002.safetensors" in _raises(ModelError, _spec(str(folder)))
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"")
    check_job(_spec(str(folder)))


def test_hub_id_offline_and_not_cached_fails_at_once(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    started = time.perf_counter()
    message = _raises(ModelError, _spec("someone/bert-tiny"))
    assert time.perf_counter() - started < 0.5
    assert message.startswith("teacher someone/bert-tiny is not a local folder and the "
                              "Hugging Face Hub cannot be reached (offline")
    assert "'bundled:minilm'" in message
    assert "not a local folder, a run model" in _raises(ModelError, _spec("my teacher"))


def test_hub_id_in_the_local_cache_is_checked_from_its_cached_config(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "cache" / "models--someone--bert-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    _fake_model(repo / "snapshots" / "abc123", {"num_hidden_layers": 2,
                                                "max_position_embeddings": 64})
    check_job(_spec("someone/bert-tiny", train={"max_length": 64}))
    assert "has 2 layers (0..1); there is no layer 2" in _raises(
        SpecError, _spec("someone/bert-tiny", student={"layers": [0, 2]}))
    (repo / "snapshots" / "abc123" / "model.safetensors").unlink()  # config but no weights
    assert "local Hub cache" in _raises(ModelError, _spec("someone/bert-tiny"))


def test_pretrained_student_checkpoint_is_checked_like_a_teacher(tiny_bert_dir, tmp_path):
    spec = _spec(tiny_bert_dir, student={"kind": "pretrained",
                                         "checkpoint": str(tmp_path / "nope") + "/"})
    assert _raises(ModelError, spec).startswith("student.checkpoint: ")
    short = _fake_model(tmp_path / "short", {"num_hidden_layers": 2,
                                             "max_position_embeddings": 32})
    spec = _spec(tiny_bert_dir, student={"kind": "pretrained", "checkpoint": short},
                 train={"max_length": 64})
    assert _raises(SpecError, spec).startswith(
        f"train.max_length 64 is more than the student.checkpoint {short} takes: at most 32")


# --- layers and lengths against the teacher's config -----------------------------------


def test_student_layers_beyond_the_teacher_depth_name_the_depth(tiny_bert_dir):
    message = _raises(SpecError, _spec(tiny_bert_dir, student={"layers": [0, 4, 9]}))
    assert message == (f"student.layers [0, 4, 9]: the teacher {tiny_bert_dir} has 4 layers "
                       f"(0..3); there is no layer 4, 9")
    check_job(_spec(tiny_bert_dir, student={"layers": [3]}))
    # A fresh or pretrained student does not copy layers, so they are not checked.
    check_job(_spec(tiny_bert_dir, student={"kind": "fresh", "num_layers": 8}))


def test_distilbert_style_depth_is_read_from_n_layers(tmp_path):
    teacher = _fake_model(tmp_path / "distil", {"model_type": "distilbert", "n_layers": 3})
    assert "has 3 layers (0..2)" in _raises(SpecError, _spec(teacher, student={"layers": [3]}))


def test_max_length_must_fit_the_position_embeddings(tiny_bert_dir, minilm_path):
    check_job(_spec(tiny_bert_dir, train={"max_length": 128}))
    message = _raises(SpecError, _spec(tiny_bert_dir, train={"max_length": 129}))
    assert message == (f"train.max_length 129 is more than the teacher {tiny_bert_dir} takes: "
                       f"at most 128 tokens (max_position_embeddings in its config.json); "
                       f"lower train.max_length")
    assert "at most 512 tokens" in _raises(
        SpecError, _spec("bundled:minilm", train={"max_length": 1024}))


def test_roberta_style_positions_leave_out_the_padding_offset(tmp_path):
    teacher = _fake_model(tmp_path / "roberta", {"model_type": "roberta", "pad_token_id": 1,
                                                 "max_position_embeddings": 66,
                                                 "num_hidden_layers": 2})
    check_job(_spec(teacher, train={"max_length": 64}))
    assert "at most 64 tokens" in _raises(SpecError, _spec(teacher, train={"max_length": 65}))


# --- data ------------------------------------------------------------------------------


def test_missing_dataset_file_is_refused_before_queueing(tiny_bert_dir, tmp_path):
    assert _raises(DataError, _spec(tiny_bert_dir, "data/train.csv")) == (
        "dataset file not found: data/train.csv")
    assert _raises(DataError, _spec(tiny_bert_dir, str(tmp_path / "x.jsonl"))) == (
        f"dataset file not found: {tmp_path / 'x.jsonl'}")


def test_a_bad_local_dataset_fails_with_the_loader_message(tiny_bert_dir, tmp_path):
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "x", "x"]}).to_csv(
        tmp_path / "one.csv", index=False)
    assert "fewer than 2 classes" in _raises(DataError, _spec(tiny_bert_dir,
                                                              str(tmp_path / "one.csv")))
    (tmp_path / "dup.csv").write_text("text,label,text\na,0,b\nc,1,d\n")
    assert "duplicated column names: 'text'" in _raises(
        DataError, _spec(tiny_bert_dir, str(tmp_path / "dup.csv")))


def test_validation_and_transfer_files_are_checked_too(tiny_bert_dir, tmp_path):
    train, dev = write_sentiment_csvs(tmp_path, train=30, dev=10)
    message = _raises(DataError, _spec(tiny_bert_dir, {"name": train, "validation": "nope.csv"}))
    assert message.startswith("file not found: nope.csv")
    shutil.copy(dev, tmp_path / "bad_dev.csv")
    pd.DataFrame({"text": ["so-so"], "label": ["meh"]}).to_csv(tmp_path / "bad_dev.csv",
                                                               index=False)
    assert "label 'meh' is not among the training labels" in _raises(
        DataError, _spec(tiny_bert_dir, {"name": train, "validation": "bad_dev.csv"}))
    # A Hub dataset: only the files it names can be checked without the Hub.
    assert _raises(DataError, _spec(tiny_bert_dir, {"name": "glue", "validation": "dev.csv"})) \
        == "validation file not found: dev.csv"
    assert "validation names a split" in _raises(
        DataError, _spec(tiny_bert_dir, {"name": "glue", "validation": dev}))
    assert _raises(DataError, _spec(tiny_bert_dir, {"name": "glue", "transfer": "u.txt"})) == (
        "transfer file not found: u.txt")
    check_job(_spec(tiny_bert_dir, {"name": "glue", "validation": "validation"}))
