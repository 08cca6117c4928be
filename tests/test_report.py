"""``distillab report``: the paper's table at small scale, from tiny jobs and by hand."""

from __future__ import annotations

import pytest

from core.report import (
    ReportTask,
    default_tasks,
    finished_run,
    markdown_table,
    report_specs,
    run_report,
    summarise,
    write_plot,
)
from core.runs import create_run, list_run_objects
from core.specs import DatasetSpec, JobSpec, SpecError


def fake_results():
    """Two tasks (a classification, a regression) x two seeds, numbers chosen by hand."""
    def models(acc_t, acc_s, acc_b, key):
        return {"teacher": {key: acc_t, "params": 22e6, "latency_ms_p50": 10.0},
                "student": {key: acc_s, "params": 17e6, "latency_ms_p50": 5.0},
                "baseline": {key: acc_b, "params": 17e6, "latency_ms_p50": 6.0}}
    return {("mrpc", 1): {"models": models(0.80, 0.78, 0.70, "accuracy"), "run_id": "a"},
            ("mrpc", 2): {"models": models(0.82, 0.80, 0.72, "accuracy"), "run_id": "b"},
            ("stsb", 1): {"models": models(0.84, 0.82, 0.75, "spearman"), "run_id": "c"},
            ("stsb", 2): {"models": models(0.86, 0.80, 0.77, "spearman"), "run_id": "d"}}


def test_the_summary_averages_tasks_and_seeds():
    tasks = [ReportTask("mrpc", "MRPC", DatasetSpec()), ReportTask("stsb", "STS-B",
                                                                    DatasetSpec())]
    rows = {r["role"]: r for r in summarise(tasks, [1, 2], fake_results())}
    assert rows["teacher"]["mrpc"] == pytest.approx((81.0, 1.4142135), rel=1e-6)
    # Macro per seed: teacher (80+84)/2 = 82 and (82+86)/2 = 84 -> 83 ± 1.414.
    assert rows["teacher"]["macro"] == pytest.approx((83.0, 1.4142135), rel=1e-6)
    # Student kept 80/82 and 80/84 of the teacher's macro score.
    kept = [100 * 80 / 82, 100 * 80 / 84]
    assert rows["student"]["kept"][0] == pytest.approx(sum(kept) / 2)
    assert rows["student"]["params"] == 17e6
    # Per task, per seed: MRPC 78/80 and 80/82, STS-B 82/84 and 80/86.
    by_task = rows["student"]["kept_by_task"]
    assert by_task["mrpc"][0] == pytest.approx((97.5 + 100 * 80 / 82) / 2)
    assert by_task["stsb"][0] == pytest.approx((100 * 82 / 84 + 100 * 80 / 86) / 2)
    table = markdown_table(tasks, [1, 2], list(rows.values()), "CPU, tiny.")
    assert "| teacher (MiniLM, 6 layers) | 83.0 ± 1.4 | 81.0 ± 1.4 | 85.0 ± 1.4 |" in table
    assert "STS-B (Spearman)" in table and "Distillation vs baseline: +6.5 macro points" in table
    assert "The student keeps, per task: MRPC 97.5 ± 0.0%, STS-B 95.3 ± 3.2%." in table


def test_bad_report_settings_are_refused():
    tasks = list(default_tasks("/nowhere").values())
    with pytest.raises(SpecError, match="1 to 10 seeds"):
        report_specs(tasks, list(range(11)))
    with pytest.raises(SpecError, match="at least one task"):
        report_specs([], [1])
    jobs = report_specs(tasks, [1, 2], max_train_examples=100)
    assert [spec.name for _, _, spec in jobs][:2] == ["report-sst2-s1", "report-sst2-s2"]
    assert jobs[0][2].dataset.max_train_examples == 100
    assert jobs[-1][2].dataset.name == "/nowhere/glue/stsb/train.tsv"


def test_report_flags_set_the_stages_and_augmentation():
    from core.cli.parser import build_parser

    args = build_parser().parse_args(["report", "--tasks", "mrpc", "--seeds", "1", "--epochs",
                                      "4", "--lr", "3e-4", "--augment", "2"])
    assert (args.lr, args.augment, args.teacher_lr) == (3e-4, 2, None)
    jobs = report_specs(list(default_tasks("/nowhere").values())[:1], [1],
                        train={"student": {"epochs": 4, "learning_rate": 3e-4},
                               "teacher": {"epochs": 3}}, augment=2)
    spec = jobs[0][2]
    assert spec.dataset.augment == 2 and spec.baseline
    assert (spec.train.student.epochs, spec.train.student.learning_rate) == (4, 3e-4)
    assert spec.train.teacher.epochs == 3


def test_a_bare_report_runs_the_settings_of_the_documented_table():
    # docs/RESULTS.md's 3-seed table: 4 student epochs at 3e-4, 4 augmented variants, 6,000
    # training rows per task; `--max-train-examples 0` means all rows.
    from core.cli.parser import build_parser

    args = build_parser().parse_args(["report"])
    assert (args.epochs, args.lr, args.augment, args.max_train_examples) == (4, 3e-4, 4, 6000)
    assert (args.teacher_epochs, args.max_length, args.seeds) == (3, 128, "1,2,3")
    assert build_parser().parse_args(["report", "--max-train-examples", "0"]
                                     ).max_train_examples == 0
    # The report's defaults are its own: a job's command keeps "all rows" unless told.
    assert build_parser().parse_args(["run"]).max_train_examples is None


@pytest.mark.slow
def test_a_tiny_report_runs_end_to_end_and_reuses_finished_runs(tiny_bert_dir, tmp_path,
                                                                one_torch_thread):
    from tests.test_pairs_pipeline import write_pair_csv
    from tests.test_regression import write_score_tsv

    pairs = ReportTask("pairs", "Pairs", DatasetSpec(
        name=write_pair_csv(tmp_path / "p_train.csv", 64, 0),
        validation=write_pair_csv(tmp_path / "p_dev.csv", 16, 1)))
    scores = ReportTask("stsb", "Scores", DatasetSpec(
        name=write_score_tsv(tmp_path / "s_train.tsv", 64, 0),
        validation=write_score_tsv(tmp_path / "s_dev.tsv", 16, 1)))
    scores = ReportTask("scores", "Scores", scores.dataset)  # named by its data, not its key
    jobs = report_specs([pairs, scores], [1, 2], teacher=tiny_bert_dir,
                        train={"epochs": 1, "teacher_epochs": 1, "batch_size": 16,
                               "max_length": 24}, student_layers=(0, 2))
    runs_dir = tmp_path / "runs"
    events = []
    results = run_report(jobs, runs_dir, on_event=events.append)
    assert events[0]["type"] == "log" and events[0]["message"].startswith(
        "report: 4 job(s) (2 task(s) x 2 seed(s)); 0 finished run(s) reused, 4 to train (")
    assert len({r["run_id"] for r in results.values()}) == 4
    assert "spearman" in results[("scores", 1)]["models"]["student"]
    events.clear()
    again = run_report(jobs, runs_dir, on_event=events.append)  # finished runs are reused
    assert events == [{"type": "log", "message": "report: 4 job(s) (2 task(s) x 2 seed(s)); "
                                                 "4 finished run(s) reused, 0 to train"}]
    assert {k: v["run_id"] for k, v in again.items()} == {
        k: v["run_id"] for k, v in results.items()}
    rows = summarise([pairs, scores], [1, 2], results)
    table = markdown_table([pairs, scores], [1, 2], rows, "tiny.")
    assert table.count("±") >= 15 and "Scores (Spearman)" in table and "Pairs (acc.)" in table
    png = write_plot(rows, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finished_run_finds_a_done_run_of_the_same_job_and_skips_unreadable_ones(tmp_path):
    spec = JobSpec.from_dict({"dataset": {"name": "data.csv"}, "name": "job"}).to_dict()
    broken = create_run(spec, tmp_path)
    (broken.path / "spec.json").write_text("{not json")
    unknown = create_run(spec, tmp_path)
    (unknown.path / "spec.json").write_text('{"an_unknown_key": 1}')
    queued = create_run(spec, tmp_path)
    renamed = create_run({**spec, "name": "other"}, tmp_path)
    for run in (broken, unknown, renamed):
        run.set_status("done")
    runs = list_run_objects(tmp_path)
    assert queued.status()["state"] != "done"
    assert finished_run(runs, spec, ()) is None  # only the renamed run is done and readable
    assert finished_run(runs, spec, ("name",)).id == renamed.id
