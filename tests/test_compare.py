"""core.compare: Pareto fronts, side-by-side predictions, disagreements, trade-offs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.compare import (
    DISAGREEMENT_COLUMNS,
    CompareError,
    compare,
    disagreements,
    pareto_front,
    tradeoffs,
)
from core.inference import InferenceError
from core.models import ModelError
from core.runs import RunError, create_run, open_run

# --- pareto_front --------------------------------------------------------------------


def test_pareto_front_keeps_points_no_other_point_beats_on_both_axes() -> None:
    latency = [1.0, 2.0, 3.0, 2.0, 5.0, math.nan]
    accuracy = [0.80, 0.90, 0.85, 0.90, 0.95, 0.99]
    # 3.0/0.85 is beaten by 2.0/0.90; the two 2.0/0.90 points tie, so neither dominates;
    # the NaN point is never on the front.
    assert pareto_front(latency, accuracy, minimize_x=True).tolist() == [
        True, True, False, True, True, False]


def test_pareto_front_maximises_x_when_asked() -> None:
    throughput = [100.0, 300.0, 200.0]
    accuracy = [0.9, 0.8, 0.7]
    assert pareto_front(throughput, accuracy, minimize_x=False).tolist() == [True, True, False]
    assert pareto_front(throughput, accuracy, minimize_x=True).tolist() == [True, False, False]


def test_pareto_front_of_nothing_is_empty_and_shapes_must_match() -> None:
    assert pareto_front([], [], minimize_x=True).tolist() == []
    with pytest.raises(ValueError, match="equally long"):
        pareto_front([1.0, 2.0], [0.5], minimize_x=True)


# --- compare -------------------------------------------------------------------------


def test_compare_gives_one_row_per_text_and_model(tiny_run: tuple[Path, str]) -> None:
    runs_dir, run_id = tiny_run
    refs = [f"run:{run_id}/teacher", f"run:{run_id}/student"]
    texts = ["the film was great and the plot", "  ", "its cast was dreadful"]
    table = compare(texts, refs, runs_dir=runs_dir, max_length=32, device="cpu")
    assert list(table.columns) == ["text_index", "text", "model", "label", "confidence",
                                   "probabilities", "latency_ms", "max_length", "agree"]
    assert len(table) == 4  # the blank text is dropped
    assert sorted(set(table["model"])) == sorted(refs)
    for row in table.to_dict(orient="records"):
        probs = row["probabilities"]
        assert set(probs) == {"negative", "positive"}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert row["label"] == max(probs, key=probs.get)
        assert row["confidence"] == pytest.approx(max(probs.values()))
        assert row["latency_ms"] > 0
    for _, group in table.groupby("text_index"):
        assert group["agree"].all() == (group["label"].nunique() == 1)


def test_compare_loads_each_model_once_at_its_runs_max_length(tiny_run: tuple[Path, str]
                                                              ) -> None:
    from core.inference import Predictor

    runs_dir, run_id = tiny_run
    first = Predictor.load(f"run:{run_id}/student", runs_dir, "cpu")
    again = Predictor.load(f"run:{run_id}/student", runs_dir, "cpu")
    assert first.model is again.model
    assert first.label_names == ["negative", "positive"]
    assert first.max_length == 32  # the run's own, not a default
    assert Predictor.load(f"run:{run_id}/student", runs_dir, "cpu", 16).max_length == 16
    table = compare(["a fine film"], [f"run:{run_id}/student"], runs_dir=runs_dir)
    assert table["max_length"].tolist() == [32]


def test_one_text_gets_the_same_probabilities_batched_or_alone(tiny_run: tuple[Path, str]
                                                               ) -> None:
    from core.inference import Predictor

    runs_dir, run_id = tiny_run
    predictor = Predictor.load(f"run:{run_id}/teacher", runs_dir, "cpu")
    texts = ["the film was great", "a dull and tiresome plot", "fine"]
    batched = predictor.predict_proba(texts)
    for text, row in zip(texts, batched, strict=True):
        alone, latency_ms = predictor.time_one(text, repeats=3)
        assert alone == pytest.approx(row, abs=2e-2)  # bf16 batches pad differently
        assert latency_ms > 0


def test_compare_reports_what_is_missing(tiny_run: tuple[Path, str], minilm_path: str) -> None:
    runs_dir, run_id = tiny_run
    with pytest.raises(CompareError, match="no texts"):
        compare(["", " "], [f"run:{run_id}/student"], runs_dir=runs_dir)
    with pytest.raises(CompareError, match="no models"):
        compare(["a text"], [], runs_dir=runs_dir)
    with pytest.raises(InferenceError, match="no classification head"):
        compare(["a text"], [minilm_path], runs_dir=runs_dir)
    with pytest.raises(ModelError, match="not found"):
        compare(["a text"], ["run:no-such-run/student"], runs_dir=runs_dir)


# --- disagreements -------------------------------------------------------------------


def test_disagreements_modes_select_the_right_examples(tiny_run: tuple[Path, str]) -> None:
    runs_dir, run_id = tiny_run
    a, b = f"run:{run_id}/teacher", f"run:{run_id}/student"
    every = disagreements(a, b, runs_dir=runs_dir, mode="all")
    assert list(every.columns) == DISAGREEMENT_COLUMNS
    assert len(every) == 50
    gaps = every["confidence_gap"].to_numpy()
    assert np.all(gaps[:-1] >= gaps[1:])
    assert np.allclose(gaps, (every["a_confidence"] - every["b_confidence"]).abs())

    disagree = disagreements(a, b, runs_dir=runs_dir, mode="disagree")
    assert len(disagree) == int((every["a_label"] != every["b_label"]).sum())
    assert (disagree["a_label"] != disagree["b_label"]).all()

    wrong = disagreements(a, b, runs_dir=runs_dir, mode="either_wrong")
    assert len(wrong) == int((~(every["a_correct"] & every["b_correct"])).sum())
    assert (~(wrong["a_correct"] & wrong["b_correct"])).all()

    negative = disagreements(a, b, runs_dir=runs_dir, mode="all", true_label="negative")
    assert len(negative) == 25 and (negative["true_label"] == "negative").all()
    predicted = disagreements(a, b, runs_dir=runs_dir, mode="all", predicted_label="positive")
    assert ((predicted["a_label"] == "positive") | (predicted["b_label"] == "positive")).all()


def test_disagreements_reject_bad_input(tiny_run: tuple[Path, str], minilm_path: str) -> None:
    runs_dir, run_id = tiny_run
    a, b = f"run:{run_id}/teacher", f"run:{run_id}/student"
    with pytest.raises(CompareError, match="mode must be one of"):
        disagreements(a, b, runs_dir=runs_dir, mode="sometimes")
    with pytest.raises(CompareError, match="not a label"):
        disagreements(a, b, runs_dir=runs_dir, true_label="neutral")
    with pytest.raises(CompareError, match="run:<id>/<role>"):
        disagreements(minilm_path, b, runs_dir=runs_dir)
    with pytest.raises(RunError, match="no predictions of 'baseline'"):
        disagreements(a, f"run:{run_id}/baseline", runs_dir=runs_dir)
    with pytest.raises(RunError, match="no run"):
        disagreements(a, "run:no-such-run/student", runs_dir=runs_dir)


def test_disagreements_across_runs_need_the_same_validation_set(
        tiny_run: tuple[Path, str]) -> None:
    runs_dir, run_id = tiny_run
    predictions = open_run(run_id, runs_dir).predictions()
    same = create_run({"name": "same data"}, runs_dir)
    same.write_predictions(predictions)
    rows = disagreements(f"run:{run_id}/teacher", f"run:{same.id}/student", runs_dir=runs_dir,
                         mode="all")
    assert len(rows) == len(predictions)
    other = create_run({"name": "other data"}, runs_dir)
    other.write_predictions(predictions.assign(text=predictions["text"] + " (edited)"))
    with pytest.raises(CompareError, match="different validation sets"):
        disagreements(f"run:{run_id}/teacher", f"run:{other.id}/student", runs_dir=runs_dir)
    pending = create_run({"name": "not scored"}, runs_dir)
    with pytest.raises(RunError, match="no validation predictions yet"):
        disagreements(f"run:{run_id}/teacher", f"run:{pending.id}/student", runs_dir=runs_dir)


# --- tradeoffs -----------------------------------------------------------------------


def test_tradeoffs_lists_every_scored_model_with_pareto_flags(
        tiny_run: tuple[Path, str]) -> None:
    runs_dir, run_id = tiny_run
    table = tradeoffs(runs_dir)
    mine = table[table["run_id"] == run_id]
    assert {"student", "teacher"} <= set(mine["role"])  # (plus student_int8 where scored)
    assert {"model", "accuracy", "macro_f1", "latency_ms_p50", "params", "params_non_embedding",
            "size_mb", "throughput_per_s", "device", "pareto_latency", "pareto_size",
            "pareto_throughput"} <= set(table.columns)
    assert (mine["params"] > 0).all() and (mine["latency_ms_p50"] > 0).all()
    student = mine[mine["role"] == "student"].iloc[0]
    teacher = mine[mine["role"] == "teacher"].iloc[0]
    assert student["params"] < teacher["params"]
    for flag, column, minimize in (("pareto_latency", "latency_ms_p50", True),
                                   ("pareto_size", "size_mb", True),
                                   ("pareto_throughput", "throughput_per_s", False)):
        expected = pareto_front(table[column], table["accuracy"], minimize_x=minimize)
        assert table[flag].tolist() == expected.tolist()
        assert table[flag].any()


def test_tradeoffs_of_an_empty_runs_folder_is_an_empty_table(tmp_path: Path) -> None:
    table = tradeoffs(tmp_path / "runs")
    assert len(table) == 0 and "pareto_latency" in table.columns


# --- re-timing ------------------------------------------------------------------------


@pytest.mark.slow
def test_distillab_time_retimes_a_run_in_rounds_and_the_leaderboard_shows_it(
        tiny_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main
    from core.runs import leaderboard

    runs_dir, run_id = tiny_run
    assert main(["--runs-dir", str(runs_dir), "time", run_id, "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 interleaved rounds" in out and "speed-up" in out
    run = open_run(run_id, runs_dir)
    timing = run.timings()[-1]
    assert timing["rounds"] == 2 and set(timing["models"]) >= {"teacher", "student"}
    student = timing["models"]["student"]
    assert student["speedup_spread"] >= 0 and student["latency_ms_p50"] > 0
    assert timing["models"]["teacher"]["speedup_vs_teacher"] == pytest.approx(1.0)
    board = leaderboard(runs_dir).set_index("role")
    assert board.loc["student", "timed"] == timing["time"]
    assert board.loc["student", "speedup_vs_teacher"] == pytest.approx(
        student["speedup_vs_teacher"])
    assert main(["--runs-dir", str(runs_dir), "time", run_id, "--rounds", "0"]) == 2
