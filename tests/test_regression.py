"""Regression end to end on a tiny random BERT: float targets give a one-output head trained
with MSE, distilled with MSE to the teacher, scored with Pearson, Spearman and MSE."""

from __future__ import annotations

import csv
import random

import numpy as np
import pandas as pd
import pytest
import torch

from core.compare import compare, disagreements
from core.data import load_data
from core.losses import distillation_loss, hard_regression_loss, soft_regression_loss
from core.pipeline import run_job
from core.runs import create_run
from core.specs import DatasetSpec, JobSpec
from core.tasks import choose_task, regression_metrics
from tests.conftest import POSITIVE

FILLERS = ["the film", "this movie", "the plot", "its cast", "the ending", "the score"]


def write_score_tsv(path, n: int, seed: int) -> str:
    """Pairs scored by how many praise words sentence2 holds (0-3), plus a quarter."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["sentence1", "sentence2", "score"])
        for i in range(n):
            k = i % 4
            words = [rng.choice(POSITIVE) for _ in range(k)] + [rng.choice(FILLERS)] * (3 - k)
            rng.shuffle(words)
            writer.writerow([rng.choice(FILLERS), " ".join(words), f"{k + 0.25:.2f}"])
    return str(path)


# --- losses and metrics --------------------------------------------------------------


def test_regression_losses_golden_values():
    student = torch.tensor([[1.0], [2.0], [4.0]])
    teacher = torch.tensor([[1.5], [2.0], [3.0]])
    assert soft_regression_loss(student, teacher).item() == pytest.approx((0.25 + 0 + 1) / 3)
    targets = torch.tensor([0.0, float("nan"), 2.0])  # the NaN row has no target
    assert hard_regression_loss(student, targets).item() == pytest.approx((1 + 4) / 2)
    assert hard_regression_loss(student, torch.full((3,), float("nan"))).item() == 0.0
    terms = distillation_loss(student, targets, teacher_logits=teacher, alpha_kd=0.5,
                              alpha_ce=0.5, temperature=2.0, regression=True)
    # The temperature does not scale a regression's soft term.
    assert terms.total.item() == pytest.approx(0.5 * (1.25 / 3) + 0.5 * 2.5)


def test_regression_metrics_match_scipy():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    targets = rng.normal(size=50)
    predicted = targets + rng.normal(scale=0.7, size=50)
    predicted[:5] = predicted[5]  # ties
    scores = regression_metrics(targets, predicted)
    assert scores["pearson"] == pytest.approx(pearsonr(targets, predicted)[0])
    assert scores["spearman"] == pytest.approx(spearmanr(targets, predicted)[0])
    assert scores["mse"] == pytest.approx(np.mean((targets - predicted) ** 2))


# --- choosing the task -----------------------------------------------------------------


def test_integer_scores_are_ambiguous_and_the_run_says_which_task(tmp_path):
    assert choose_task(["0.5", "3.8"], "auto", "score", tmp_path)[0] == "regression"
    assert choose_task(["0", "1", "1"], "auto", "score", tmp_path)[0] == "classification"
    task, note = choose_task(["0", "3", "5", "2"], "auto", "label", tmp_path)
    assert task == "classification" and "--task regression" in note
    task, note = choose_task(["0", "3", "5", "2"], "auto", "score", tmp_path)
    assert task == "regression" and "--task classification" in note
    path = tmp_path / "ints.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(30)], "label": [i % 5 for i in range(30)]}
                 ).to_csv(path, index=False)
    as_classes = load_data(DatasetSpec(name=str(path)))
    assert as_classes.task == "classification" and len(as_classes.label_names) == 5
    assert "--task regression" in as_classes.task_note
    as_scores = load_data(DatasetSpec(name=str(path), task="regression"))
    assert as_scores.task == "regression" and as_scores.label_names == ["label"]
    assert isinstance(as_scores.train_labels[0], float)
    assert "regression on 'label' (0 to 4)" in as_scores.description


def test_bad_regression_targets_name_the_row(tmp_path):
    from core.tables import DataError

    path = tmp_path / "r.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "score": ["0.5", "high", "1.5"]}).to_csv(
        path, index=False)
    with pytest.raises(DataError, match="row 2: regression target 'high' is not a number"):
        load_data(DatasetSpec(name=str(path), task="regression"))
    with pytest.raises(DataError, match="task regression does not apply"):
        load_data(DatasetSpec(task="regression"))


def test_stsb_reads_as_a_regression_of_pairs():
    from pathlib import Path

    stsb = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue" / "stsb"
    if not (stsb / "train.tsv").exists():
        pytest.skip(f"STS-B not found at {stsb}")
    data = load_data(DatasetSpec(name=str(stsb / "train.tsv"),
                                 validation=str(stsb / "dev.tsv"), max_train_examples=100))
    assert data.task == "regression" and data.is_pairs and data.label_names == ["score"]
    assert len(data.train_texts) == 100 and len(data.validation_texts) == 1500
    assert min(data.validation_labels) == 0.0 and max(data.validation_labels) == 5.0


# --- a whole job -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_run(tiny_bert_dir, tmp_path_factory, one_torch_thread):
    import os

    # A tiny random model's outputs barely spread at first; under bf16 autocast (this CPU's
    # default) it takes many more epochs to leave the mean, so train in fp32 here.
    before = os.environ.get("DISTILLAB_CPU_BF16")
    os.environ["DISTILLAB_CPU_BF16"] = "0"
    folder = tmp_path_factory.mktemp("regression")
    train = write_score_tsv(folder / "train.tsv", 400, 0)
    dev = write_score_tsv(folder / "dev.tsv", 48, 1)
    spec = JobSpec.from_dict({
        "teacher": tiny_bert_dir, "dataset": {"name": train, "validation": dev},
        "student": {"kind": "extract", "layers": [0, 2]}, "recipe": "distilbert",
        "train": {"epochs": 4, "teacher_epochs": 5, "batch_size": 16, "learning_rate": 5e-3,
                  "teacher_learning_rate": 5e-3, "max_length": 32},
        "seed": 3})
    runs_dir = folder / "runs"
    run = create_run(spec.to_dict(), runs_dir)
    events = []
    try:
        metrics = run_job(run, on_event=events.append)
    finally:
        if before is None:
            os.environ.pop("DISTILLAB_CPU_BF16")
        else:
            os.environ["DISTILLAB_CPU_BF16"] = before
    return run, metrics, runs_dir, events


def test_a_regression_run_trains_one_output_and_scores_correlations(regression_run):
    from transformers import AutoConfig

    run, metrics, _, events = regression_run
    assert run.status()["state"] == "done" and metrics["task"] == "regression"
    assert metrics["label_names"] == ["score"]
    assert AutoConfig.from_pretrained(run.model_dir("student")).num_labels == 1
    for role in ("teacher", "student", "student_int8", "baseline"):
        m = metrics["models"][role]
        assert {"pearson", "spearman", "mse", "latency_ms_p50"} <= set(m), role
        assert "accuracy" not in m
    # The score counts praise words in sentence2: learnable, so far from 0.
    assert metrics["models"]["teacher"]["spearman"] > 0.6
    assert metrics["models"]["student"]["spearman"] > 0.5
    # int8 rounds the tiny model's narrow output spread away (its ranking suffers), but its
    # values stay as close to the targets as the float student's.
    int8, student = metrics["models"]["student_int8"], metrics["models"]["student"]
    assert int8["precision"] == "int8-dynamic"
    assert int8["mse"] == pytest.approx(student["mse"], rel=0.1)
    assert -1 <= metrics["models"]["student"]["correlation_with_teacher"] <= 1
    logs = [e.get("message", "") for e in events if e["type"] == "log"]
    assert any("task: regression" in line for line in logs)
    assert any("best validation spearman" in line for line in logs)
    history = [e for e in events if e["type"] == "epoch"]
    assert all("val_spearman" in e and "val_mse" in e for e in history)


def test_regression_predictions_and_disagreements_rank_by_the_gap(regression_run):
    run, _, runs_dir, _ = regression_run
    table = run.predictions()
    assert {"label", "teacher_pred", "teacher_error", "student_pred"} <= set(table.columns)
    assert np.allclose(table["teacher_error"], (table["teacher_pred"] - table["label"]).abs())
    rows = disagreements(f"run:{run.id}/teacher", f"run:{run.id}/student", runs_dir,
                         mode="all")
    assert len(rows) == len(table) and "text_pair" in rows.columns
    gaps = rows["confidence_gap"].to_numpy()
    assert np.all(np.diff(gaps) <= 0) and np.allclose(gaps, (rows["a_value"]
                                                             - rows["b_value"]).abs())
    close = disagreements(f"run:{run.id}/teacher", f"run:{run.id}/student", runs_dir)
    assert (close["confidence_gap"] > 0.1 * 3).all()  # beyond 10% of the 0.25-3.25 range
    from core.compare import CompareError

    with pytest.raises(CompareError, match="predict a number"):
        disagreements(f"run:{run.id}/teacher", f"run:{run.id}/student", runs_dir,
                      true_label="1")


def test_compare_gives_values_for_a_regression(regression_run):
    run, _, runs_dir, _ = regression_run
    table = compare([("the film", "great wonderful superb"), ("the film", "the plot")],
                    [f"run:{run.id}/teacher", f"run:{run.id}/student"], runs_dir)
    assert table["confidence"].isna().all()
    values = table["probabilities"].map(lambda p: p["score"])  # the value, unrounded
    assert np.allclose(table["label"].astype(float), values, atol=5e-4)
    teacher = values[table["model"].str.endswith("/teacher")].to_numpy()
    assert teacher[0] > teacher[1]  # three praise words score above none


def test_the_model_card_and_the_pipeline_read_a_regression(regression_run):
    from transformers import pipeline

    from core.export import write_model_card

    run, _, _, _ = regression_run
    card = write_model_card(run, "student")
    assert "It predicts a number, `score`" in card and "| model | Spearman | Pearson |" in card
    assert "- spearmanr" in card
    # problem_type "regression" is saved: the pipeline returns the value, not a sigmoid.
    classifier = pipeline("text-classification", model=str(run.model_dir("student")))
    first = run.predictions().iloc[0]
    got = classifier({"text": first["text"], "text_pair": first["text_pair"]})
    got = got[0] if isinstance(got, list) else got
    assert got["label"] == "score"
    assert got["score"] == pytest.approx(first["student_pred"], abs=1e-3)


def test_cli_prints_the_regression_table(regression_run):
    from core.cli import format_results_table

    _, metrics, _, _ = regression_run
    table = format_results_table(metrics)
    assert "spearman" in table and "% of its spearman" in table
    assert "spearman points (x100)" in table


def test_a_score_column_is_the_target_only_without_a_label_column(tmp_path):
    path = tmp_path / "both.csv"
    pd.DataFrame({"text": [f"t {i}" for i in range(10)], "label": ["a", "b"] * 5,
                  "score": [f"{i / 3:.2f}" for i in range(10)]}).to_csv(path, index=False)
    assert load_data(DatasetSpec(name=str(path))).label_names == ["a", "b"]
    assert load_data(DatasetSpec(name=str(path), label_column="score")).task == "regression"


def test_the_browser_shows_regression_values_without_confidences(regression_run):
    from app.compare_tables import browser_rows

    run, _, runs_dir, _ = regression_run
    rows = disagreements(f"run:{run.id}/teacher", f"run:{run.id}/student", runs_dir,
                         mode="all")
    shown = browser_rows(rows)
    assert (shown["A conf"] == "").all() and (shown["B conf"] == "").all()
    assert shown["A says"].iloc[0] == f"{rows['a_value'].iloc[0]:.3f}"


def test_the_results_card_shows_the_regression_metrics(regression_run):
    from app.results import results_card

    _, metrics, _, _ = regression_run
    card = results_card(metrics)
    assert "| model | Spearman | MSE | of the teacher |" in card
    assert f"{metrics['models']['student']['spearman']:.3f}" in card
    assert "spearman points (x100)" in card
