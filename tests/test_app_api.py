"""The app's named API endpoints through gradio_client, and the Distil form's spec building."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import app_client, write_sentiment_csvs

gradio_client = pytest.importorskip("gradio_client")
AppError = gradio_client.exceptions.AppError

ENDPOINTS = {"/launch", "/status", "/cancel", "/resume", "/delete", "/runs", "/compare",
             "/evaluate", "/disagreements", "/tradeoffs", "/export"}


def tiny_spec(teacher: str, train: str, dev: str) -> dict:
    return {"teacher": teacher, "dataset": {"name": train, "validation": dev},
            "student": {"layers": [0, 2]}, "baseline": False, "device": "cpu", "name": "api",
            "train": {"epochs": 1, "teacher_epochs": 1, "max_length": 32, "batch_size": 16}}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    """The app on loopback with a job queue, and a gradio_client connected to it."""
    runs_dir = tmp_path_factory.mktemp("app") / "runs"
    with app_client(runs_dir) as client:
        yield client, runs_dir


def wait_done(client: object, run_id: str, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = client.predict(run_id, api_name="/status")
        if status["state"] in ("done", "failed", "cancelled", "interrupted"):
            break
        time.sleep(1)
    assert status.get("state") == "done", f"run ended as {status}"
    return status


def test_api_exposes_the_named_endpoints(served: tuple[object, Path]) -> None:
    client, _ = served
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert names == ENDPOINTS


@pytest.mark.slow
def test_api_launches_a_job_and_reads_its_results(served: tuple[object, Path], tmp_path: Path,
                                                  tiny_bert_dir: str) -> None:
    client, runs_dir = served
    train, dev = write_sentiment_csvs(tmp_path)
    run_id = client.predict(json.dumps(tiny_spec(tiny_bert_dir, train, dev)),
                            api_name="/launch")
    assert (runs_dir / run_id / "spec.json").exists()
    status = wait_done(client, run_id)
    assert f"run:{run_id}/student" in status["models"]
    assert status["metrics"]["student"]["accuracy"] is not None
    assert status["log_tail"]

    models = [f"run:{run_id}/teacher", f"run:{run_id}/student"]
    rows = client.predict(["this movie was wonderful", "the plot was dull"], models,
                          api_name="/compare")
    assert len(rows) == 4 and {r["model"] for r in rows} == set(models)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert all(r["latency_ms"] > 0 and isinstance(r["agree"], bool) for r in rows)

    board = client.predict(api_name="/runs")
    assert {(r["run_id"], r["role"]) for r in board} >= {(run_id, "teacher"),
                                                         (run_id, "student")}
    per_run = client.predict(False, api_name="/runs")
    assert [r["state"] for r in per_run if r["run_id"] == run_id] == ["done"]

    points = client.predict(api_name="/tradeoffs")
    assert {p["model"] for p in points} >= set(models)
    assert any(p["pareto_latency"] for p in points)

    every = client.predict(*models, "all", api_name="/disagreements")
    assert len(every) == 50 and {"text", "true_label", "a_label", "b_label"} <= set(every[0])

    with pytest.raises(AppError, match="nothing to cancel"):
        client.predict(run_id, api_name="/cancel")
    assert client.predict(run_id, api_name="/delete") == {"run_id": run_id, "deleted": True}
    assert not (runs_dir / run_id).exists()


def test_api_cancels_a_queued_run_and_resumes_it(served: tuple[object, Path],
                                                 tiny_bert_dir: str) -> None:
    from core.runs import create_run

    client, runs_dir = served
    # A run whose data is missing: once resumed, its worker fails at once.
    run = create_run(tiny_spec(tiny_bert_dir, "/no/such/train.csv", "/no/such/dev.csv"),
                     runs_dir)
    (run.path / "claimed").touch()  # held back from the queue until resumed
    assert client.predict(run.id, api_name="/cancel")["state"] == "cancelled"
    assert client.predict(run.id, api_name="/resume")["state"] == "queued"
    deadline = time.monotonic() + 120
    status = {}
    while time.monotonic() < deadline:
        status = client.predict(run.id, api_name="/status")
        if status["state"] == "failed" and not (run.path / "claimed").exists():
            break
        time.sleep(1)
    assert status["state"] == "failed" and "file not found" in status["error"]
    with pytest.raises(AppError, match="no run 'no-such-run'"):
        client.predict("no-such-run", api_name="/resume")
    client.predict(run.id, api_name="/delete")


@pytest.mark.parametrize(("endpoint", "args", "message"), [
    ("/launch", ('{"teacher": "/no/such/folder"}',), "folder not found"),
    ("/launch", ('{"bogus": 1}',), "unknown job spec keys"),
    ("/launch", ("[1, 2]",), "JSON object"),
    ("/launch", ('{"dataset": {"name": "/no/such/data.csv"}}',), "dataset file not found"),
    ("/status", ("no-such-run",), "no run 'no-such-run'"),
    ("/cancel", ("no-such-run",), "no run 'no-such-run'"),
    ("/compare", (["a text"], ["bundled:minilm"]), "no classification head"),
    ("/compare", ([], ["bundled:minilm"]), "no texts"),
    ("/disagreements", ("bundled:minilm", "run:x/student"), "run:<id>/<role>"),
])
def test_api_reports_bad_input_as_a_message(served: tuple[object, Path], endpoint: str,
                                            args: tuple, message: str) -> None:
    client, _ = served
    with pytest.raises(AppError) as error:
        client.predict(*args, api_name=endpoint)
    assert message in str(error.value)
    assert "Traceback" not in str(error.value)


# --- the Distil form ----------------------------------------------------------------


def form(**overrides: object) -> dict:
    values = {"teacher": "bundled:minilm", "dataset": "bbc_news", "validation": "",
              "text_column": "", "label_column": "", "max_train_examples": None,
              "max_eval_examples": None, "student_size": "half the layers (DistilBERT)",
              "student_layers": None, "recipe": "logits", "temperature": 3.0, "alpha_kd": 0.7,
              "alpha_ce": 0.3, "alpha_cos": 0.0, "preset": "quick", "epochs": 1,
              "teacher_epochs": 1, "learning_rate": 1e-4, "teacher_learning_rate": 1e-4,
              "batch_size": 16, "max_length": 32, "baseline": False, "seed": 7,
              "device": "cpu", "name": "form"}
    values.update(overrides)
    return values


def test_form_builds_the_spec_its_widgets_show(tmp_path: Path, tiny_bert_dir: str) -> None:
    from app.forms import build_spec

    spec = build_spec(form(max_train_examples=100), tmp_path)
    assert spec.student.layers is None  # the engine's every-other-layer default
    assert (spec.recipe.name, spec.recipe.temperature, spec.recipe.alpha_kd) == ("logits", 3.0,
                                                                                 0.7)
    assert (spec.train.student.epochs, spec.train.max_length, spec.train.batch_size) == (
        1, 32, 16)
    assert (spec.dataset.max_train_examples, spec.baseline, spec.seed) == (100, False, 7)
    assert spec.dataset.augment == 0
    assert build_spec(form(augment=4), tmp_path).dataset.augment == 4
    # A quarter of the tiny teacher's 4 layers is one layer; custom layers pass through.
    quarter = build_spec(form(teacher=tiny_bert_dir, student_size="a quarter of the layers"),
                         tmp_path)
    assert quarter.student.layers == (0,)
    custom = build_spec(form(student_size="custom layers", student_layers=[0, 3]), tmp_path)
    assert custom.student.layers == (0, 3)


def test_form_rejects_what_cannot_run(tmp_path: Path) -> None:
    from app.forms import build_spec
    from core.specs import SpecError

    with pytest.raises(SpecError, match="custom layers"):
        build_spec(form(student_size="custom layers"), tmp_path)
    with pytest.raises(SpecError, match="epochs must be at least 1"):
        build_spec(form(epochs=0), tmp_path)


def test_uploads_are_checked_and_kept_per_owner_in_the_runs_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.uploads import resolve_upload, store_upload

    train, _ = write_sentiment_csvs(tmp_path)
    ref = store_upload(train, tmp_path / "runs", "v123")
    assert ref.startswith("upload:v123/") and ref.endswith("-train.csv")
    stored = Path(resolve_upload(ref, tmp_path / "runs"))
    assert stored.parent == tmp_path / "runs" / "_uploads" / "v123"
    assert stored.read_bytes() == Path(train).read_bytes()
    (tmp_path / "notes.xlsx").write_text("x")
    with pytest.raises(ValueError, match="upload a .csv, .tsv, .jsonl file"):
        store_upload(tmp_path / "notes.xlsx", tmp_path / "runs", "v123")
    monkeypatch.setenv("DISTILLAB_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(ValueError, match="over the upload limit"):
        store_upload(train, tmp_path / "runs", "v123")
    with pytest.raises(ValueError, match="not an upload reference"):
        resolve_upload("upload:v123/../../etc/passwd", tmp_path / "runs")


def test_launch_spec_parses_json_yaml_or_nothing() -> None:
    from app.api import parse_spec
    from core.specs import JobSpec, SpecError

    assert parse_spec("") == JobSpec()
    assert parse_spec('{"train": {"epochs": 1}}').train.student.epochs == 1
    assert parse_spec("train: {epochs: 2}\nseed: 3").seed == 3
    with pytest.raises(SpecError, match="JSON object"):
        parse_spec("just words")


def test_long_texts_show_as_one_line_previews_in_the_compare_tables() -> None:
    import pandas as pd

    from app.compare_tables import PREVIEW_CHARS, preview, side_by_side

    article = "Headline\n\n" + " ".join(["word"] * 400)
    shown = preview(article)
    assert "\n" not in shown and shown.startswith("Headline word")
    assert len(shown) <= PREVIEW_CHARS + 2 and shown.endswith(" …")
    assert preview("a short  line") == "a short line"
    table = pd.DataFrame([{"text_index": 0, "text": article, "agree": True, "model": "m",
                           "label": "tech", "confidence": 0.9, "latency_ms": 1.0}])
    assert side_by_side(table)["text"].tolist() == [shown]


def test_compare_columns_are_roles_when_all_models_come_from_one_run() -> None:
    from app.compare_tables import short_names

    assert short_names(["run:a/teacher", "run:a/student"]) == {"run:a/teacher": "teacher",
                                                               "run:a/student": "student"}
    mixed = ["run:a/teacher", "run:b/student", "/models/x"]
    assert short_names(mixed) == {ref: ref for ref in mixed}
    assert short_names(["run:a/teacher", "/models/x"])["run:a/teacher"] == "run:a/teacher"


def test_tradeoff_tables_show_role_metric_accuracy_frontier_and_the_run_when_several(
        ) -> None:
    import pandas as pd

    from app.plots import tradeoff_points, tradeoff_table, tradeoff_widths

    rows = [{"model": f"run:a/{role}", "run_id": "a", "role": role, "accuracy": acc,
             "macro_f1": acc, "latency_ms_p50": ms, "params": 1e6, "size_mb": 1.0,
             "throughput_per_s": 1.0, "device": "cpu", "pareto_latency": role == "teacher"}
            for role, acc, ms in (("teacher", 0.97, 10.0), ("student", 0.96, 5.0))]
    one_run = tradeoff_table(tradeoff_points(pd.DataFrame(rows)), "latency")
    assert list(one_run.columns) == ["role", "p50 ms", "accuracy", "frontier"]
    assert one_run["frontier"].tolist() == ["yes", "no"]
    rows[1] |= {"model": "run:b/student", "run_id": "b", "device": "cuda"}
    two_runs = tradeoff_table(tradeoff_points(pd.DataFrame(rows)), "latency")
    assert list(two_runs.columns) == ["role", "p50 ms", "accuracy", "frontier", "run"]
    assert len(tradeoff_widths(two_runs)) == 5  # a device per run: the run says which
    rows[0]["run_id"] = "b"  # one run timed on two devices: the device is shown too
    assert list(tradeoff_table(tradeoff_points(pd.DataFrame(rows)), "latency").columns)[-1] \
        == "device"


def test_validation_chart_pads_a_narrow_score_range_and_keeps_series_apart() -> None:
    import pandas as pd

    from app.plots import score_domain, validation_chart

    low, high = score_domain(pd.Series([0.96236, 0.96246]))
    assert low == pytest.approx(0.95236) and high == pytest.approx(0.97246)
    assert score_domain(pd.Series([0.995, 1.0])) == [pytest.approx(0.985), 1.0]
    assert score_domain(pd.Series([0.0, 0.5])) == [0.0, pytest.approx(0.55)]
    scores = pd.DataFrame([{"epoch": 1, "value": 0.9624, "stage": stage, "metric": metric,
                            "series": f"{stage} {metric}"}
                           for stage in ("baseline", "teacher", "student")
                           for metric in ("accuracy", "macro-F1")])
    spec = json.loads(validation_chart(scores).plot)
    encoding = spec["encoding"]
    assert encoding["color"]["scale"]["domain"] == ["teacher", "student", "baseline"]
    assert encoding["xOffset"]["scale"]["domain"][:2] == ["teacher accuracy", "teacher macro-F1"]
    assert encoding["strokeDash"]["field"] == encoding["shape"]["field"] == "metric"
    assert encoding["y"]["scale"]["domain"] == [pytest.approx(0.9524), pytest.approx(0.9724)]


def fake_scored_run(runs_dir: Path, name: str, state: str = "done", int8: bool = False
                    ) -> str:
    """A run folder with metrics (and int8 predictions when ``int8``), no models."""
    import numpy as np

    from core.runs import create_run
    from core.scores import predictions_table

    run = create_run({"name": name}, runs_dir)
    roles = ["teacher", "student"] + ["student_int8"] * int8
    run.write_metrics({"models": {role: {"accuracy": 0.9 - 0.01 * i, "latency_ms_p50": 2.0,
                                         "params": 2e6, "device": "cpu"}
                                  for i, role in enumerate(roles)},
                       "label_names": ["neg", "pos"]})
    run.write_predictions(predictions_table(["a", "b"], [0, 1], {
        role: np.array([[0.8, 0.2], [0.3, 0.7]]) for role in roles}, ["neg", "pos"]))
    run.set_status(state)
    return run.id


def test_runs_tab_tables_lead_with_key_columns_and_open_on_the_newest_done_run(
        tmp_path: Path) -> None:
    from app.context import AppContext
    from app.tabs.runs import BOARD, leaderboard_table, newest_done, runs_list_table
    from core.access import Caller
    from core.actions import Actions
    from core.runs import list_run_objects

    done = fake_scored_run(tmp_path, "a-done", int8=True)
    failed = fake_scored_run(tmp_path, "b-failed", state="failed")
    ctx = AppContext(Actions(tmp_path))
    board = leaderboard_table(ctx, Caller())
    assert list(board.columns) == [header for _, header, *_ in BOARD]
    assert list(board.columns[:5]) == ["role", "accuracy", "macro-F1", "speed-up", "retained"]
    assert board.columns[-1] == "run" and board["accuracy"].is_monotonic_decreasing
    assert "student_int8" in set(board["role"])
    runs = runs_list_table(ctx, Caller())
    assert runs["run"].tolist() == [failed, done]  # newest first, the id last
    assert {"int8 acc", "teacher acc"} <= set(runs.columns) and "yours" not in runs.columns
    assert newest_done(list_run_objects(tmp_path)) == done
    assert newest_done(list_run_objects(tmp_path)[1:]) == failed  # no done run: the newest
    assert newest_done([]) is None


def test_int8_student_shows_in_run_details_and_the_browser_but_is_not_loaded_to_compare(
        tmp_path: Path) -> None:
    import pandas as pd

    from app.compare_tables import BROWSER_HEADERS, browser_rows, int8_refs, loadable
    from app.tabs.runs import models_line, scored_roles
    from core.runs import open_run

    with_int8 = fake_scored_run(tmp_path, "a", int8=True)
    without = fake_scored_run(tmp_path, "b")
    run = open_run(with_int8, tmp_path)
    assert scored_roles(run) == ["teacher", "student", "student_int8"]
    assert "student_int8 (int8 weights" in models_line(run)
    runs = [run, open_run(without, tmp_path)]
    assert int8_refs(runs) == [f"run:{with_int8}/student_int8"]
    assert loadable([f"run:{with_int8}/teacher", f"run:{with_int8}/student_int8", ""]) == [
        f"run:{with_int8}/teacher"]
    found = pd.DataFrame([{"index": 3, "text": "long\ntext", "true_label": "pos",
                           "a_label": "neg", "a_confidence": 0.812, "b_label": "pos",
                           "b_confidence": 0.6, "confidence_gap": 0.212, "a_correct": False,
                           "b_correct": True}])
    shown = browser_rows(found)
    assert list(shown.columns) == BROWSER_HEADERS
    assert shown.iloc[0].tolist() == ["neg", "pos", "pos", 0.81, 0.6, "✗", "✓", "long text", 3]
