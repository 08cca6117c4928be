"""Export: a reloadable folder with its model card, a zip, and the Hub push's clean failures."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from core.cli.reports import cmd_export
from core.export import (
    ExportError,
    export_model,
    push_to_hub,
    write_model_card,
    zip_model,
)
from core.runs import Run

TEXTS = ["the film was wonderful and the plot", "this movie was dreadful and its cast",
         "the score", "its cast was superb and the ending"]


@pytest.fixture()
def run(tiny_run: tuple[Path, str]) -> Run:
    """The suite's shared finished tiny run (teacher and student, scored; read only here)."""
    runs_dir, run_id = tiny_run
    return Run(runs_dir / run_id)


def _logits(folder: Path | str) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_exported_student_reloads_with_the_runs_predictions(run, tmp_path):
    folder = export_model(run.id, "student", tmp_path / "out", run.path.parent)
    assert (folder / "README.md").exists() and (folder / "model.safetensors").exists()
    exported, original = _logits(folder), _logits(run.model_dir("student"))
    assert torch.equal(exported, original)
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}


def test_model_card_holds_metadata_recipe_metrics_and_speed(run):
    card = write_model_card(run, "student", repo_id="someone/tiny-student")
    meta = _front_matter(card)
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["metrics"] == ["accuracy", "f1"]
    assert "base_model" not in meta and "datasets" not in meta  # local teacher and files
    student = run.metrics["models"]["student"]
    assert f"| **student** (this model) | {100 * student['accuracy']:.2f}% | " \
           f"{100 * student['macro_f1']:.2f}% |" in card
    for label, scores in student["per_class"].items():
        assert f"| {label} | {100 * scores['precision']:.2f}% |" in card
    assert f"{student['latency_ms_p50']:,.2f} | {student['latency_ms_p95']:,.2f} |" in card
    assert f"Measured on {student['device']} in {student['precision']}" in card
    assert student["timer_includes"]["latency_ms"] in card
    assert "teacher layers [0, 2]" in card  # 4-layer teacher: every other layer
    assert "0.5 · T² · KL" in card and "T = 2.0" in card
    assert "## Intended use and limitations" in card
    assert 'from_pretrained("someone/tiny-student")' in card


def test_model_card_names_hub_teacher_and_dataset(run, tmp_path):
    copy = Run(tmp_path / run.id)
    shutil.copytree(run.path, copy.path)
    spec = {**run.spec, "teacher": "bundled:minilm",
            "dataset": {"name": "stanfordnlp/sst2", "validation": "validation"}}
    (copy.path / "spec.json").write_text(json.dumps(spec))
    meta = _front_matter(write_model_card(copy, "student"))
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["datasets"] == ["stanfordnlp/sst2"]


def test_model_card_of_a_record_without_per_class_support_leaves_the_cell_empty(
        run, tmp_path):
    copy = Run(tmp_path / run.id)
    shutil.copytree(run.path, copy.path)
    metrics = copy.metrics
    for figures in metrics["models"]["student"]["per_class"].values():
        figures.pop("support")  # as an older or hand-written record may be
    (copy.path / "metrics.json").write_text(json.dumps(metrics))
    card = write_model_card(copy, "student")
    assert "Per class (this model)" in card and "| – |" in card


def test_zip_holds_the_model_folder_and_card(run, tmp_path):
    path = zip_model(run.id, "student", run.path.parent, tmp_path / "student.zip")
    name = f"{run.id}-student"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {f"{name}/{f}" for f in ("config.json", "model.safetensors", "tokenizer.json",
                                        "README.md")} <= names
        archive.extractall(tmp_path / "unzipped")
    assert torch.equal(_logits(tmp_path / "unzipped" / name),
                       _logits(run.model_dir("student")))


def test_cmd_export_writes_the_folder_it_prints(run, tmp_path, capsys):
    args = argparse.Namespace(run_id=run.id, role="teacher", out=str(tmp_path / "t"),
                              zip=None, push=None, public=False, token=None,
                              runs_dir=str(run.path.parent))
    assert cmd_export(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "t")
    assert "none: the checkpoint already had a head" in (tmp_path / "t" / "README.md").read_text()


def test_export_of_a_model_the_run_lacks_names_the_saved_ones(run, tmp_path):
    with pytest.raises(ExportError, match="no saved 'baseline' model; saved: teacher, student"):
        export_model(run.id, "baseline", tmp_path / "b", run.path.parent)


def test_push_with_a_bad_repo_id_says_so(run):
    with pytest.raises(ExportError, match="not a Hub repository id"):
        push_to_hub(run.id, "student", "not a/valid/id", token="hf_x",
                    runs_dir=run.path.parent)


def test_push_without_a_token_fails_fast_and_says_where_to_get_one(run, tmp_path,
                                                                    monkeypatch):
    import huggingface_hub.constants as hub_constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    started = time.perf_counter()
    with pytest.raises(ExportError, match="no Hugging Face token: set HF_TOKEN"):
        push_to_hub(run.id, "student", "someone/tiny", runs_dir=run.path.parent)
    assert time.perf_counter() - started < 2


def test_push_offline_fails_fast_and_says_so(run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ExportError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)"):
        push_to_hub(run.id, "student", "someone/tiny", token="hf_test",
                    runs_dir=run.path.parent)
    assert time.perf_counter() - started < 2


def test_push_to_an_unreachable_hub_fails_fast_and_says_so(run, monkeypatch):
    import huggingface_hub.constants as hub_constants

    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(ExportError, match=f"cannot reach the Hugging Face Hub at "
                                          f"http://127.0.0.1:{port}"):
        push_to_hub(run.id, "student", "someone/tiny", token="hf_test",
                    runs_dir=run.path.parent)
    assert time.perf_counter() - started < 5
