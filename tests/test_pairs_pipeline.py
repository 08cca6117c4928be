"""A sentence-pair job end to end on a tiny random BERT: the label lives in the second text
only, so a run that dropped it would score at chance."""

from __future__ import annotations

import csv
import random

import pytest

from core.compare import compare, disagreements
from core.pipeline import run_job
from core.runs import create_run
from core.specs import JobSpec
from tests.conftest import NEGATIVE, POSITIVE


def write_pair_csv(path, n: int, seed: int) -> str:
    """sentence1: neutral filler; sentence2: carries the sentiment word that sets the label."""
    rng = random.Random(seed)
    fillers = ["the film", "this movie", "the plot", "its cast", "the ending", "the score"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "label"])
        for i in range(n):
            label = i % 2
            word = rng.choice(POSITIVE if label else NEGATIVE)
            first = " ".join(rng.choice(fillers) for _ in range(rng.randint(1, 3)))
            writer.writerow([first, f"{rng.choice(fillers)} was {word}", label])
    return str(path)


@pytest.fixture(scope="module")
def pair_run(tiny_bert_dir, tmp_path_factory, one_torch_thread):
    folder = tmp_path_factory.mktemp("pairs")
    train = write_pair_csv(folder / "train.csv", 400, 0)
    dev = write_pair_csv(folder / "dev.csv", 40, 1)
    spec = JobSpec.from_dict({
        "teacher": tiny_bert_dir, "dataset": {"name": train, "validation": dev},
        "student": {"kind": "extract", "layers": [0, 2]}, "baseline": False,
        # The logits recipe caches the teacher's logits once: that path gets pairs too.
        "recipe": "logits",
        "train": {"epochs": 3, "teacher_epochs": 4, "batch_size": 16, "learning_rate": 5e-3,
                  "teacher_learning_rate": 5e-3, "max_length": 32},
        "seed": 3})
    runs_dir = folder / "runs"
    run = create_run(spec.to_dict(), runs_dir)
    metrics = run_job(run)
    return run, metrics, runs_dir


def test_a_pair_run_learns_from_the_second_text(pair_run):
    run, metrics, _ = pair_run
    assert run.status()["state"] == "done"
    assert "sentence pairs (sentence1 + sentence2)" in metrics["dataset"]
    assert metrics["text_columns"] == ["sentence1", "sentence2"]
    # The label is only in sentence2: sentence1 alone would give ~50%.
    assert metrics["models"]["teacher"]["accuracy"] >= 0.85
    assert metrics["models"]["student"]["accuracy"] >= 0.75
    assert "student_int8" in metrics["models"]  # the int8 student scores pairs too
    assert metrics["models"]["student_int8"]["accuracy"] >= 0.7


def test_predictions_and_disagreements_show_both_texts(pair_run):
    run, _, runs_dir = pair_run
    table = run.predictions()
    assert list(table.columns[:3]) == ["index", "text", "text_pair"]
    assert table["text_pair"].str.contains(" was ").all()
    rows = disagreements(f"run:{run.id}/teacher", f"run:{run.id}/student", runs_dir,
                         mode="all")
    assert list(rows.columns[:3]) == ["index", "text", "text_pair"]
    assert rows["text_pair"].tolist() == table.set_index("index").loc[
        rows["index"], "text_pair"].tolist()


def test_compare_takes_pairs_and_the_second_text_decides(pair_run):
    run, _, runs_dir = pair_run
    ref = f"run:{run.id}/teacher"
    # One first text for all: only the second carries the sentiment. Every word of the
    # training lists, so one borderline example of a tiny model cannot decide the test.
    words = [(w, "1") for w in POSITIVE] + [(w, "0") for w in NEGATIVE]
    table = compare([("the plot and its cast", f"the ending was {w}") for w, _ in words],
                    [ref], runs_dir)
    assert list(table.columns[:3]) == ["text_index", "text", "text_pair"]
    right = sum(got == want for got, (_, want) in zip(table["label"], words, strict=True))
    positive = table["probabilities"].map(lambda p: p["1"])
    # A constant answer gets 6 of 12; the tiny teacher's training varies with the tests run
    # before it (9-12 right seen), so the direction is the firmer check.
    assert right >= 8 and set(table["label"]) == {"0", "1"}, table[["text_pair", "label"]]
    assert positive[:6].mean() > positive[6:].mean(), positive.tolist()


def test_compare_refuses_half_pairs_and_mixed_rows(pair_run):
    from core.compare import CompareError

    run, _, runs_dir = pair_run
    ref = f"run:{run.id}/teacher"
    with pytest.raises(CompareError, match="the second is blank"):
        compare([("a text", "  ")], [ref], runs_dir)
    with pytest.raises(CompareError, match="not both"):
        compare([("a", "b"), "c"], [ref], runs_dir)


def test_cli_predicts_compares_and_evaluates_pairs(pair_run, capsys, tmp_path):
    import json

    from core.cli import main

    run, _, runs_dir = pair_run
    teacher, student = f"run:{run.id}/teacher", f"run:{run.id}/student"
    base = ["--runs-dir", str(runs_dir)]
    assert main([*base, "predict", teacher, "the plot", "the cast", "--text-pair",
                 "the ending was superb", "--text-pair", "the ending was awful", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["text"], x["text_pair"], x["label"]) for x in lines] == [
        ("the plot", "the ending was superb", "1"), ("the cast", "the ending was awful", "0")]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("premise\thypothesis\nthe plot\tit was lovely\n")
    assert main([*base, "compare", teacher, student, "--file", str(pairs), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["text"], r["text_pair"]) for r in rows} == {("the plot", "it was lovely")}
    assert main([*base, "compare", teacher, "--text", "a", "--text", "b",
                 "--text-pair", "x"]) == 2
    assert "2 texts but 1 --text-pair" in capsys.readouterr().err
    spec = run.spec["dataset"]
    assert main([*base, "eval", teacher, "--dataset", spec["name"], "--validation",
                 spec["validation"], "--no-speed"]) == 0
    assert "sentence pairs" in capsys.readouterr().out


def test_the_model_card_example_is_a_pair_the_pipeline_takes(pair_run):
    from transformers import pipeline

    from core.export import write_model_card

    run, _, _ = pair_run
    card = write_model_card(run, "teacher")
    line = next(x for x in card.splitlines() if x.startswith("print(classifier("))
    assert '"text_pair": ' in line and "# a sentence pair: sentence1 and sentence2" in card
    classifier = pipeline("text-classification", model=str(run.model_dir("teacher")))
    first = run.predictions().iloc[0]
    got = eval(line[len("print("):-1], {"classifier": classifier})  # the card's own call
    got = got[0] if isinstance(got, list) else got
    assert got["label"] == first["teacher_pred_name"]


def test_the_api_compares_pairs(pair_run):
    from gradio_client.exceptions import AppError

    from tests.conftest import app_client

    run, _, runs_dir = pair_run
    with app_client(runs_dir, with_queue=False) as client:
        rows = client.predict(["the plot"], [f"run:{run.id}/teacher"], 0,
                              ["the ending was wonderful"], api_name="/compare")
        assert rows[0]["text_pair"] == "the ending was wonderful" and rows[0]["label"] == "1"
        with pytest.raises(AppError, match="1 texts but 2 text_pairs"):
            client.predict(["a"], [f"run:{run.id}/teacher"], 0, ["x", "y"],
                           api_name="/compare")


@pytest.mark.slow
def test_a_pair_run_is_timed_on_its_pairs(pair_run, monkeypatch):
    import core.speed as speed
    from core.timing import _validation_rows, time_in_fresh_process, time_run

    run = pair_run[0]
    rows = _validation_rows(run)
    assert rows and all(isinstance(r, tuple) and len(r) == 2 for r in rows)
    seen = []
    real = speed.measure_speed

    def spy(model, tokenizer, texts, **kwargs):
        seen.extend(texts)
        return real(model, tokenizer, texts, **kwargs)

    monkeypatch.setattr(speed, "measure_speed", spy)
    timing = time_run(run, rounds=1)
    assert seen and all(isinstance(t, tuple) for t in seen)
    assert timing["models"]["student"]["latency_ms_p50"] > 0
    fresh = time_in_fresh_process(run, rows, max_length=32, device="cpu", int8=False,
                                  label_names=run.metrics["label_names"], level="quick")
    assert fresh["timed_in"] == "a fresh worker process"
    assert fresh["models"]["teacher"]["latency_ms_p50"] > 0
