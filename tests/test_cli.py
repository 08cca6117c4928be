"""The command line as a user types it: run, runs, predict, eval, cancel, help, and clear
errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import build_parser, main, spec_from_args
from core.runs import atomic_write_json, create_run
from core.specs import JobSpec


@pytest.fixture(scope="module")
def cli_run(tiny_bert_dir, tmp_path_factory):
    """One tiny job run through `distillab run` with flags; returns (runs_dir, run_id, out)."""
    from tests.conftest import make_sentiment_rows

    folder = tmp_path_factory.mktemp("cli")
    for name, n, seed in (("train.jsonl", 120, 0), ("dev.jsonl", 40, 1)):
        rows = [json.dumps({"sentence": t, "sentiment": y[:3]})
                for t, y in make_sentiment_rows(n, seed)]
        (folder / name).write_text("\n".join(rows) + "\n")
    runs_dir = folder / "runs"
    argv = ["--runs-dir", str(runs_dir), "run", "--teacher", tiny_bert_dir,
            "--dataset", str(folder / "train.jsonl"), "--validation", str(folder / "dev.jsonl"),
            "--student-layers", "0,3", "--recipe", "logits", "--epochs", "1",
            "--teacher-epochs", "1", "--max-length", "24", "--batch-size", "16",
            "--lr", "5e-3", "--teacher-lr", "5e-3", "--name", "cli"]
    return runs_dir, folder, argv


@pytest.mark.slow
def test_run_prints_the_id_and_the_results_table(cli_run, capsys):
    runs_dir, _, argv = cli_run
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("run id: ")
    run_id = out.split()[2]
    for word in ("teacher", "student", "baseline", "accuracy", "macro_f1", "latency_ms_p50",
                 "throughput_per_s", "faster at batch 1", "of its accuracy"):
        assert word in out, word
    assert (runs_dir / run_id / "metrics.json").exists()

    assert main(["--runs-dir", str(runs_dir), "runs"]) == 0
    assert run_id in capsys.readouterr().out

    assert main(["--runs-dir", str(runs_dir), "runs", "--models"]) == 0
    assert f"run:{run_id}/student" in capsys.readouterr().out

    assert main(["--runs-dir", str(runs_dir), "predict", f"run:{run_id}/student",
                 "the film was superb", "the plot was awful", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["the film was superb", "the plot was awful"]
    assert all(set(line["probabilities"]) == {"neg", "pos"} for line in lines)
    assert all(sum(line["probabilities"].values()) == pytest.approx(1.0) for line in lines)

    _, folder, _ = cli_run
    assert main(["--runs-dir", str(runs_dir), "eval", f"run:{run_id}/student",
                 "--dataset", str(folder / "train.jsonl"), "--validation",
                 str(folder / "dev.jsonl"), "--no-speed"]) == 0
    assert "accuracy" in capsys.readouterr().out

    student, teacher = f"run:{run_id}/student", f"run:{run_id}/teacher"
    assert main(["--runs-dir", str(runs_dir), "compare", teacher, student,
                 "--text", "the ending was lovely", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["model"] for row in rows} == {teacher, student}

    assert main(["--runs-dir", str(runs_dir), "disagreements", teacher, student,
                 "--mode", "all", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 20 and {"text", "a_label", "b_label", "confidence_gap"} <= set(rows[0])

    assert main(["--runs-dir", str(runs_dir), "tradeoffs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["role"] for row in rows} >= {"teacher", "student", "baseline"}

    assert main(["--runs-dir", str(runs_dir), "run", "--resume", run_id]) == 0
    assert "already done" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--dataset", "missing/train.csv"], "not found"),
    (["run", "--recipe", "distilbert", "--temperature", "0"], "temperature must be > 0"),
    (["run", "--transfer", "rest"], "set max_train_examples too"),
    (["run", "--resume", "no-such-run"], "no run 'no-such-run'"),
    (["predict", "bundled:minilm"], "give texts"),
    (["run", "--spec", "nowhere.yaml"], "spec file not found"),
])
def test_bad_input_exits_2_with_a_specific_message(argv, message, tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_spec_file_values_are_overridden_by_flags(tmp_path):
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text("teacher: bundled:minilm\n"
                         "dataset: {name: data.csv, max_train_examples: 100}\n"
                         "student: {layers: [0, 2, 4]}\n"
                         "recipe: {name: logits, temperature: 4}\n"
                         "train: {preset: quick, epochs: 5}\n")
    args = build_parser().parse_args(["run", "--spec", str(spec_file), "--epochs", "1",
                                      "--alpha-kd", "0.9", "--eval-batch-tokens", "4096"])
    spec = spec_from_args(args)
    assert spec.train.student.epochs == 1 and spec.train.max_length == 64
    assert spec.train.eval_batch_tokens == 4096
    assert spec.recipe.name == "logits" and spec.recipe.temperature == 4
    assert spec.recipe.alpha_kd == 0.9 and spec.recipe.alpha_cos == 0
    assert spec.dataset.max_train_examples == 100 and spec.student.layers == (0, 2, 4)
    # A spec file that nests the stages: the flags still win, the rest of a stage stays.
    spec_file.write_text("train: {student: {epochs: 5, learning_rate: 0.0002}, "
                         "teacher: {epochs: 3}}\n")
    args = build_parser().parse_args(["run", "--spec", str(spec_file), "--epochs", "1",
                                      "--teacher-lr", "0.00003"])
    train = spec_from_args(args).train
    assert (train.student.epochs, train.student.learning_rate) == (1, 2e-4)
    assert (train.teacher.epochs, train.teacher.learning_rate) == (3, 3e-5)


def test_progress_bar_counts_from_the_first_reported_step(capsys):
    from core.cli import _ProgressBars

    bars = _ProgressBars()
    for step in (2, 4, 6):
        bars({"type": "step", "stage": "teacher", "step": step, "total_steps": 10,
              "epoch": 1, "epochs": 1, "loss": 0.5})
    # A bar that began at 0 would divide all 6 steps by the moments since step 2 arrived.
    assert (bars._bar.initial, bars._bar.n) == (2, 6)
    bars({"type": "step", "stage": "student", "step": 1, "total_steps": 5,
          "epoch": 1, "epochs": 1, "loss": 0.5})
    assert (bars._bar.initial, bars._bar.n, bars._bar.total) == (1, 1, 5)
    bars.close()
    assert "teacher" in capsys.readouterr().err


def test_help_lists_the_public_commands_without_the_internal_worker(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "SUPPRESS" not in out and "worker" not in out
    for command in ("run", "runs", "eval", "cancel", "export", "bench"):
        assert f"\n    {command} " in out, command
    assert build_parser().parse_args(["worker", "some-run"]).run_id == "some-run"


def test_help_answers_without_loading_torch():
    code = ("import sys\nfrom core.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.splitlines()[-1] == "False", done.stderr


@pytest.mark.parametrize(("state", "exit_code", "stream", "words"), [
    ("queued", 0, "out", "cancelled"),
    ("running", 0, "out", "stopping at its next step"),
    ("interrupted", 0, "out", "interrupted"),
    ("done", 1, "err", "nothing to cancel"),
    ("failed", 1, "err", "nothing to cancel"),
    ("cancelled", 1, "err", "nothing to cancel"),
])
def test_cancel_says_what_happened_and_exits_1_only_for_a_finished_run(
        state, exit_code, stream, words, tmp_path, capsys):
    run = create_run(JobSpec().to_dict(), tmp_path)
    if state == "running":
        run.set_status("running")  # this process is its worker
    elif state == "interrupted":
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()  # a worker that has exited: its pid names no process now
        atomic_write_json(run.path / "status.json", {"state": "running", "pid": gone.pid})
    elif state != "queued":
        run.set_status(state)
    assert main(["--runs-dir", str(tmp_path), "cancel", run.id]) == exit_code
    out, err = capsys.readouterr()
    assert words in (out if stream == "out" else err)
    expected = {"queued": "cancelled", "running": "running", "interrupted": "interrupted"}
    assert run.status()["state"] == expected.get(state, state)
    # Running: stop at the next step. Queued: a worker a queue has just started stops too.
    assert run.cancel_requested() == (state in ("running", "queued"))


def test_cancel_of_a_missing_run_is_an_error_exit_2(tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), "cancel", "no-such-run"]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_runs_dir_may_follow_the_command() -> None:
    from core.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["run", "--runs-dir", "X"]).runs_dir == "X"
    assert parser.parse_args(["--runs-dir", "Y", "run"]).runs_dir == "Y"
    assert parser.parse_args(["--runs-dir", "Y", "runs", "--runs-dir", "Z"]).runs_dir == "Z"


def test_student_size_is_the_uis_presets_on_the_command_line() -> None:
    from core.cli import build_parser, spec_from_args
    from core.students import layers_for_size

    assert layers_for_size("half", 12) == [0, 2, 4, 7, 9, 11]
    assert layers_for_size("third", 12) == [0, 4, 7, 11]
    assert layers_for_size("quarter", 12) == [0, 6, 11]
    assert layers_for_size("third", 6) == [0, 5] and layers_for_size("quarter", 6) == [0]
    args = build_parser().parse_args(["run", "--student-size", "third"])
    assert spec_from_args(args).student.layers == (0, 5)  # the bundled 6-layer MiniLM


def test_the_results_table_of_an_untimed_run_says_so() -> None:
    from core.cli import format_results_table

    metrics = {"models": {"teacher": {"accuracy": 0.8, "macro_f1": 0.8, "params": 22e6},
                          "student": {"accuracy": 0.76, "macro_f1": 0.75, "params": 17e6}}}
    table = format_results_table(metrics)  # a job with timing off
    assert "student vs teacher: not timed, 95.0% of its accuracy, 1.29x fewer parameters" \
        in table
    assert "timed on" not in table
