"""Whole jobs on tiny models: the run folder contract, resume after a kill, the teacher cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from core.cli import main as cli_main
from core.pipeline import run_job
from core.runs import create_run, leaderboard, list_runs, open_run
from core.specs import JobSpec

REPO = Path(__file__).resolve().parents[1]
REQUIRED_METRICS = ("accuracy", "macro_f1", "params", "params_non_embedding", "size_mb",
                    "latency_ms_p50", "latency_ms_p95", "throughput_per_s", "device")


def tiny_spec(teacher: str, train_csv: str, dev_csv: str,
              layers: tuple[int, ...] | None = (0, 2), **train: object) -> JobSpec:
    return JobSpec.from_dict({
        "teacher": teacher,
        "dataset": {"name": train_csv, "validation": dev_csv},
        "student": {"kind": "extract", "layers": layers},
        "recipe": "distilbert",
        "train": {"preset": "quick", "epochs": 2, "teacher_epochs": 2, "batch_size": 16,
                  "learning_rate": 5e-3, "teacher_learning_rate": 5e-3, "max_length": 32,
                  **train},
        "seed": 3,
        "name": "tiny",
    })


@pytest.fixture(scope="module")
def finished_run(tiny_bert_dir, tmp_path_factory):
    from tests.conftest import make_sentiment_rows

    folder = tmp_path_factory.mktemp("pipeline")
    paths = []
    for name, n, seed in (("train.csv", 160, 0), ("dev.csv", 48, 1)):
        # "neg"/"pos" differ from the tiny model's label names, so its head is fine-tuned first.
        lines = ["text,label"] + [f"{t},{y[:3]}" for t, y in make_sentiment_rows(n, seed)]
        (folder / name).write_text("\n".join(lines) + "\n")
        paths.append(str(folder / name))
    runs_dir = folder / "runs"
    run = create_run(tiny_spec(tiny_bert_dir, *paths).to_dict(), runs_dir)
    events = []
    before = {k: os.environ.get(k) for k in ("DISTILLAB_TIMING_PROCESS", "DISTILLAB_TIMING")}
    # The product's path: a fresh worker process, at the quick level (one round) to keep the
    # developer's suite short; the full level's three rounds are the same code (LEVELS).
    os.environ.update(DISTILLAB_TIMING_PROCESS="fresh", DISTILLAB_TIMING="quick")
    try:
        metrics = run_job(run, on_event=events.append)
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    return run, metrics, events, paths, runs_dir


def test_the_models_are_timed_in_a_fresh_worker_process(finished_run):
    run, metrics, events, _, _ = finished_run
    for role, figures in metrics["models"].items():
        assert figures["timed_in"] == "a fresh worker process", role
        assert figures["latency_ms_p50"] > 0 and figures["rounds"] == 1, role
    rounds = [e["message"] for e in events if e.get("stage") == "evaluate"
              and "timing, round" in str(e.get("message"))]
    assert rounds == ["timing, round 1"]


def test_a_job_times_three_rounds_unless_told_otherwise(monkeypatch):
    from core.timing import LEVELS, ROUNDS, timing_level

    monkeypatch.delenv("DISTILLAB_TIMING", raising=False)
    assert timing_level(None) == "full" and LEVELS["full"][0] == ROUNDS == 3


def test_a_failing_timing_worker_says_why(tmp_path):
    from core.runs import Run
    from core.timing import time_in_fresh_process

    empty = Run(tmp_path / "20261204-000000-abcd")
    empty.path.mkdir()
    with pytest.raises(RuntimeError, match="no saved models"):
        time_in_fresh_process(empty, ["a text"], max_length=16, device="cpu", int8=False,
                              label_names=["a", "b"])


def test_a_job_writes_the_whole_run_folder(finished_run):
    run, metrics, events, _, _ = finished_run
    assert run.status()["state"] == "done"
    for name in ("spec.json", "status.json", "events.jsonl", "history.jsonl", "metrics.json",
                 "predictions.parquet"):
        assert (run.path / name).exists(), name
    assert set(metrics["models"]) >= {"teacher", "student", "baseline"}
    for role in ("teacher", "student", "baseline"):
        assert all(key in metrics["models"][role] for key in REQUIRED_METRICS), role
    assert json.loads((run.path / "metrics.json").read_text()) == json.loads(
        json.dumps(metrics, default=float))
    assert not (run.path / "checkpoint").exists()  # resumable state, dropped once done
    assert any(e["type"] == "epoch" for e in events)  # the subscriber saw progress
    assert any(e["type"] == "step" and e["stage"] == "teacher" for e in events)
    stages = [e["stage"] for e in run.events(("stage",))]
    assert stages[:2] == ["data", "teacher"] and stages[-2:] == ["evaluate", "done"]


def test_saved_models_reload_with_transformers_and_give_the_scored_predictions(finished_run):
    run, metrics, _, paths, _ = finished_run
    table = run.predictions()
    for role in ("teacher", "student", "baseline"):
        folder = run.model_dir(role)
        assert (folder / "model.safetensors").exists()
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        texts = table["text"].tolist()[:8]
        with torch.no_grad():
            logits = model(**tokenizer(texts, padding=True, truncation=True, max_length=32,
                                       return_tensors="pt")).logits
        assert logits.argmax(-1).tolist() == table[f"{role}_pred"].tolist()[:8]
    student = AutoModelForSequenceClassification.from_pretrained(run.model_dir("student"))
    assert student.config.num_hidden_layers == 2
    assert metrics["models"]["student"]["params"] < metrics["models"]["teacher"]["params"]


def test_runs_list_and_leaderboard_as_dataframes(finished_run):
    run, _, _, _, runs_dir = finished_run
    runs = list_runs(runs_dir)
    assert run.id in runs["run_id"].tolist()
    board = leaderboard(runs_dir)
    row = board[(board.run_id == run.id) & (board.role == "student")].iloc[0]
    assert row["model"] == f"run:{run.id}/student" and row["speedup_vs_teacher"] > 0


@pytest.mark.slow
def test_the_next_job_reuses_the_cached_fine_tuned_teacher(finished_run, tiny_bert_dir):
    run, metrics, _, paths, runs_dir = finished_run
    again = create_run(tiny_spec(tiny_bert_dir, *paths, epochs=1).to_dict(), runs_dir)
    events = []
    run_job(again, on_event=events.append)
    assert any("reusing fine-tuned teacher" in e.get("message", "") for e in events)
    assert not any(e["type"] == "step" and e["stage"] == "teacher" for e in events)
    teacher_accuracy = metrics["models"]["teacher"]["accuracy"]
    assert again.metrics["models"]["teacher"]["accuracy"] == teacher_accuracy


@pytest.mark.slow
def test_a_job_killed_after_a_checkpoint_resumes_to_the_same_metrics(finished_run, tiny_bert_dir,
                                                                       tmp_path):
    _, _, _, paths, _ = finished_run
    runs_dir = tmp_path / "runs"
    # The default layers (every other one): the killed run writes the ones it used into
    # spec.json, and the resumed run reads them back.
    spec = tiny_spec(tiny_bert_dir, *paths, layers=None, epochs=3,
                     checkpoint_every_steps=2).to_dict()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = create_run(spec, runs_dir)
    proc = subprocess.Popen([sys.executable, "-m", "core", "--runs-dir", str(runs_dir),
                             "worker", killed.id], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed.checkpoint_dir("student") / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state.exists(), "no student checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed.status()["state"] == "interrupted"
    assert killed.checkpoint_dir("student").exists()  # kept for the resume
    assert killed.spec["student"]["layers"] == [0, 2]  # a 4-layer teacher's every other one

    # The command a user types, in this process (a second interpreter would only add the
    # seconds of importing torch and transformers again).
    assert cli_main(["--runs-dir", str(runs_dir), "run", "--resume", killed.id]) == 0
    assert any(e["type"] == "resumed" for e in killed.events())
    assert not (killed.path / "checkpoint").exists()

    straight = create_run(spec, runs_dir)
    run_job(straight)
    assert straight.spec["student"] == killed.spec["student"]
    cut, whole = killed.metrics["models"], straight.metrics["models"]
    for role in ("teacher", "student", "baseline"):
        for key in ("accuracy", "macro_f1", "confusion_matrix", "per_class"):
            assert cut[role][key] == whole[role][key], (role, key)
    np.testing.assert_allclose(np.stack(killed.predictions()["student_probs"]),
                               np.stack(straight.predictions()["student_probs"]), atol=1e-6)


def test_an_incompatible_student_fails_before_training_and_says_why(finished_run,
                                                                     tiny_bert_dir, tmp_path):
    _, _, _, paths, _ = finished_run
    spec = tiny_spec(tiny_bert_dir, *paths).to_dict()
    spec["student"] = {"kind": "extract", "layers": [0, 9]}
    run = create_run(spec, tmp_path / "runs")
    with pytest.raises(ValueError, match="4 layers"):
        run_job(run)
    assert run.status()["state"] == "failed" and "4 layers" in run.status()["error"]
    assert not any(e["type"] == "step" and e["stage"] == "student" for e in run.events())


def test_open_run_names_the_missing_run(tmp_path):
    with pytest.raises(ValueError, match="no run 'nope'"):
        open_run("nope", tmp_path)
