"""The Distil tab's pure pieces: overall ETA, status lines, the results card, relaunch values,
and the machine-load reading recorded with every timing."""

from __future__ import annotations

import pandas as pd
import pytest

from app.progress import EVALUATE_GUESS_S, form_values, overall_eta, resume_helps
from app.results import results_card, warnings_for
from core.specs import JobSpec


def test_overall_eta_adds_the_later_stages_at_the_measured_rate() -> None:
    spec = {"train": {"epochs": 2, "teacher_epochs": 2}, "baseline": True}
    # Teacher fine-tuning, 100 of 200 steps (2 epochs of 100), 50 s left: 0.5 s a step.
    status = {"state": "running", "stage": "teacher", "step": 100, "total_steps": 200,
              "epochs": 2, "eta_s": 50.0}
    student, baseline = 2 * 100 * 0.5 * 0.8, 2 * 100 * 0.5 * 0.5
    assert overall_eta(status, spec) == pytest.approx(50 + student + baseline
                                                      + EVALUATE_GUESS_S)
    no_baseline = overall_eta(status, {**spec, "baseline": False})
    assert no_baseline == pytest.approx(50 + student + EVALUATE_GUESS_S)
    assert overall_eta({**status, "stage": "evaluate", "eta_s": 12.0}, spec) == 12.0
    assert overall_eta({**status, "state": "queued"}, spec) is None


def test_resume_is_offered_only_where_it_can_help() -> None:
    assert resume_helps({"state": "interrupted"}) and resume_helps({"state": "cancelled"})
    assert resume_helps({"state": "failed", "error": "worker exited with code -9"})
    assert not resume_helps({"state": "failed", "error": "ModelError: not found"})
    assert not resume_helps({"state": "done"})


def test_form_values_relaunch_the_same_spec() -> None:
    spec = JobSpec.from_dict({"teacher": "bundled:minilm", "name": "again", "seed": 7,
                              "student": {"layers": [0, 3]},
                              "train": {"epochs": 3, "batch_size": 8}}).to_dict()
    values = form_values(spec)
    assert values["student_size"] == "custom layers" and values["student_layers"] == "0,3"
    assert (values["epochs"], values["batch_size"], values["seed"], values["name"]) == \
        (3, 8, 7, "again")


def test_recorded_layers_a_preset_picks_show_as_that_preset() -> None:
    # A run records the layers it used ([0, 2, 4] for half of 6): edit-and-relaunch shows
    # the preset again, and other layers as custom.
    spec = JobSpec.from_dict({"student": {"layers": [0, 2, 4]},
                              "dataset": {"name": "bbc_news", "augment": 3}}).to_dict()
    values = form_values(spec, teacher_depth=6)
    assert values["student_size"] == "half the layers (DistilBERT)"
    assert values["student_layers"] == "" and values["augment"] == 3
    assert form_values({**spec, "student": {"layers": [0, 5]}}, 6)["student_size"] == \
        "a third of the layers"
    assert form_values({**spec, "student": {"layers": [1, 3]}}, 6)["student_size"] == \
        "custom layers"
    assert form_values(spec)["student_size"] == "custom layers"  # depth unknown


def test_the_results_card_shows_gain_speedup_and_warnings() -> None:
    metrics = {"label_names": ["a", "b"], "validation_size": 40, "models": {
        "teacher": {"accuracy": 0.9, "macro_f1": 0.9, "latency_ms_p50": 20.0,
                    "device": "cpu", "precision": "bf16"},
        "student": {"accuracy": 0.88, "macro_f1": 0.87, "latency_ms_p50": 10.0},
        "baseline": {"accuracy": 0.85, "macro_f1": 0.84, "latency_ms_p50": 10.0}}}
    card = results_card(metrics)
    assert "97.8%" in card and "2.00x" in card and "+3.0 accuracy points" in card
    assert "Warnings" not in card
    assert results_card({"models": {}}) == ""


def test_warnings_name_one_class_models_a_useless_teacher_and_a_busy_machine() -> None:
    metrics = {"label_names": ["a", "b"], "models": {
        "teacher": {"accuracy": 0.6}, "student": {"accuracy": 0.5, "machine_busy": True},
        "baseline": {"accuracy": 0.55}}}
    predictions = pd.DataFrame({"teacher_pred": [0, 1, 0], "student_pred": [1, 1, 1],
                                "baseline_pred": [0, 1, 1]})
    notes = warnings_for(metrics, predictions)
    assert len(notes) == 3
    assert "Distilled student predicts one class" in notes[0]
    assert "no better than" in notes[1] and "busy machine" in notes[2]


def test_other_load_measures_other_processes_not_this_one() -> None:
    from core.machine_load import OtherLoad

    with OtherLoad() as load:
        total = sum(i * i for i in range(2_000_000))  # this process's own work
    assert total > 0
    figures = load.figures
    assert set(figures) == {"others_cpu_share", "load_avg_1m", "machine_busy"}
    if figures["others_cpu_share"] is not None:
        assert 0.0 <= figures["others_cpu_share"] <= 1.0


def test_a_retiming_shows_its_speedups_with_their_spread() -> None:
    metrics = {"label_names": ["a", "b"], "models": {
        "teacher": {"accuracy": 0.9, "latency_ms_p50": 20.0},
        "student": {"accuracy": 0.88, "latency_ms_p50": 10.0}}}
    timing = {"time": "2026-12-04 10:00:00", "device": "cpu", "rounds": 3,
              "models": {"teacher": {"speedup_vs_teacher": 1.0, "speedup_spread": 0.0},
                         "student": {"speedup_vs_teacher": 1.74, "speedup_spread": 0.06}}}
    card = results_card(metrics, timing=timing)
    assert "1.74x ± 0.06" in card and "3 interleaved rounds" in card
