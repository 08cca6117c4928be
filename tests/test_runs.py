"""The run registry: atomic writes, listing, live workers, and the typed run record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs
from core.processes import process_start_time, worker_alive
from core.run_record import TRADEOFF_COLUMNS
from core.runs import (
    ACCURACY,
    ACTIVE_STATES,
    FINISHED_STATES,
    LEADERBOARD_COLUMNS,
    RESUMABLE_STATES,
    RETIMED_FIELDS,
    STATES,
    ModelMetrics,
    ModelRef,
    Run,
    RunError,
    RunMetrics,
    RunState,
    atomic_write_json,
    create_run,
    delete_run,
    leaderboard,
    list_run_objects,
    open_run,
    read_json,
    scalar_fields,
)

HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="needs Linux /proc")


def write_status(run: Run, **status: object) -> None:
    atomic_write_json(run.path / "status.json", {"updated": time.time(), **status})


def stored_state(run: Run) -> str:
    return json.loads((run.path / "status.json").read_text())["state"]


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return create_run({"name": "liveness", "dataset": {"name": "data.csv"}}, tmp_path)


# atomic writes and listing ------------------------------------------------------------------
def test_atomic_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "status.json"
    atomic_write_json(path, {"state": "queued"})
    atomic_write_json(path, {"state": "done"})
    assert read_json(path) == {"state": "done"}
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "status.json"
    atomic_write_json(path, {"state": "queued"})

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"state": "done"})
    assert read_json(path) == {"state": "queued"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_read_json_of_a_missing_file_is_the_default(tmp_path: Path) -> None:
    assert read_json(tmp_path / "nope.json", {"a": 1}) == {"a": 1}


def test_list_run_objects_lists_run_folders_only_in_id_order(tmp_path: Path) -> None:
    second = create_run({"name": "b"}, tmp_path)
    first = Run(tmp_path / "00000000-000000-a")
    first.path.mkdir()
    atomic_write_json(first.path / "spec.json", {"name": "a"})
    (tmp_path / "_uploads" / "v").mkdir(parents=True)
    (tmp_path / "not-a-run").mkdir()
    assert [r.id for r in list_run_objects(tmp_path)] == [first.id, second.id]
    assert open_run(second.id, tmp_path).status()["state"] == "queued"


# liveness -----------------------------------------------------------------------------------
@needs_proc
def test_running_records_the_pid_and_its_start_time(run: Run) -> None:
    run.set_status("running", stage="student")
    status = json.loads((run.path / "status.json").read_text())
    assert status["pid"] == os.getpid()
    assert status["pid_start"] == process_start_time(os.getpid())
    assert run.status()["state"] == "running"


@needs_proc
def test_process_start_time_tells_processes_apart() -> None:
    own = process_start_time(os.getpid())
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            later = process_start_time(child.pid)
        finally:
            child.kill()
    assert isinstance(own, int) and isinstance(later, int) and later >= own
    assert process_start_time(dead_pid()) is None


@needs_proc
def test_a_reused_pid_with_another_start_time_reads_interrupted(run: Run) -> None:
    # After a restart the recorded pid can belong to another process: here, this one.
    write_status(run, state="running", pid=os.getpid(),
                 pid_start=process_start_time(os.getpid()) - 1)
    assert run.status()["state"] == "interrupted"


@needs_proc
def test_the_same_pid_and_start_time_reads_running(run: Run) -> None:
    write_status(run, state="running", pid=os.getpid(),
                 pid_start=process_start_time(os.getpid()))
    assert run.status()["state"] == "running"


def test_a_dead_pid_reads_interrupted(run: Run) -> None:
    write_status(run, state="running", pid=dead_pid(), pid_start=1)
    assert run.status()["state"] == "interrupted"
    write_status(run, state="running", pid=dead_pid())
    assert run.status()["state"] == "interrupted"


@needs_proc
def test_an_exited_but_unreaped_worker_reads_interrupted(run: Run) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start_time(proc.pid)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    try:
        write_status(run, state="running", pid=proc.pid, pid_start=start)
        assert run.status()["state"] == "interrupted"
    finally:
        proc.wait()


def test_a_status_without_a_start_time_is_judged_by_its_pid(run: Run) -> None:
    assert worker_alive({"pid": os.getpid()})
    assert not worker_alive({"pid": dead_pid()})
    assert not worker_alive({})


# cancel, resume, delete of a stale run -------------------------------------------------------
@needs_proc
def test_cancel_of_a_run_whose_worker_is_gone_writes_interrupted(run: Run) -> None:
    write_status(run, state="running", pid=os.getpid(),
                 pid_start=process_start_time(os.getpid()) + 1)
    assert jobs.cancel(run.id, run.path.parent) == "interrupted"
    assert stored_state(run) == "interrupted"
    assert not run.cancel_requested()


def test_cancel_of_a_dead_workers_run_then_resume_and_delete(run: Run) -> None:
    write_status(run, state="running", pid=dead_pid(), pid_start=1)
    (run.path / "claimed").write_text("1")
    assert jobs.cancel(run.id, run.path.parent) == "interrupted"
    assert stored_state(run) == "interrupted"
    assert jobs.cancel(run.id, run.path.parent) == "interrupted"  # again: same answer

    jobs.resume(run.id, run.path.parent)
    assert stored_state(run) == "queued"
    assert not (run.path / "claimed").exists()

    write_status(run, state="running", pid=dead_pid(), pid_start=1)
    delete_run(run.id, run.path.parent)
    assert not run.path.exists()


def test_cancel_of_a_queued_run_cancels_it(run: Run) -> None:
    assert jobs.cancel(run.id, run.path.parent) == "cancelled"
    assert stored_state(run) == "cancelled"


def test_cancel_of_a_live_run_asks_its_worker_to_stop(run: Run) -> None:
    run.set_status("running")  # this process is the worker
    assert jobs.cancel(run.id, run.path.parent) == "running"
    assert run.cancel_requested()


@pytest.mark.parametrize("state", ["done", "failed", "cancelled"])
def test_cancel_of_a_finished_run_is_refused(run: Run, state: str) -> None:
    run.set_status(state)
    with pytest.raises(RunError, match=f"is {state}: nothing to cancel"):
        jobs.cancel(run.id, run.path.parent)


def test_delete_refuses_a_running_run(run: Run) -> None:
    run.set_status("running")
    with pytest.raises(RunError, match="cancel it before deleting it"):
        delete_run(run.id, run.path.parent)


def test_delete_moves_the_run_away_before_removing_it(run: Run, monkeypatch) -> None:
    """A job queue reaping the run's worker unlinks ``claimed`` at any moment (a CI run
    failed on it inside rmtree): the run leaves its name atomically, then is removed."""
    import core.runs as runs_module

    (run.path / "claimed").write_text("1")
    removed = []
    real_rmtree = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        assert not run.path.exists()  # the run's own name is gone first
        assert run.id not in [r.id for r in list_run_objects(run.path.parent)]
        (Path(path) / "claimed").unlink()  # what the queue does meanwhile
        removed.append(Path(path).name)
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(runs_module.shutil, "rmtree", rmtree)
    delete_run(run.id, run.path.parent)
    assert removed and removed[0].startswith(".")
    assert list(run.path.parent.iterdir()) == []


@needs_proc
def test_resume_waits_for_a_live_worker_but_not_for_a_reused_pid(run: Run) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as worker:
        try:
            start = process_start_time(worker.pid)
            write_status(run, state="cancelled", pid=worker.pid, pid_start=start)
            with pytest.raises(RunError, match="still stopping"):
                jobs.resume(run.id, run.path.parent)
            write_status(run, state="cancelled", pid=worker.pid, pid_start=start + 1)
            jobs.resume(run.id, run.path.parent)
        finally:
            worker.kill()
    assert stored_state(run) == "queued"


@needs_proc
def test_the_queue_marks_a_run_failed_when_its_worker_exits_without_saying_so(
        run: Run) -> None:
    queue = jobs.JobQueue(run.path.parent, clean_every_s=None)
    (run.path / "claimed").write_text(str(os.getpid()))
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    write_status(run, state="running", pid=worker.pid, pid_start=process_start_time(worker.pid))
    queue._workers[run.id] = worker
    queue.tick()
    assert stored_state(run) == "running"  # alive: left alone
    worker.kill()
    worker.wait()
    queue.tick()
    assert run.status()["state"] == "failed"
    assert "exited with code" in run.status()["error"]
    assert not (run.path / "claimed").exists()


# the typed run record -----------------------------------------------------------------------
METRICS_EXAMPLE = Path(__file__).parent / "data" / "metrics_bbc_news.json"  # a real run's


def test_run_metrics_round_trip_a_real_metrics_json_byte_for_byte(tmp_path: Path) -> None:
    text = METRICS_EXAMPLE.read_text()
    data = json.loads(text)
    metrics = RunMetrics.from_dict(data)
    assert metrics.to_dict() == data
    assert list(metrics.to_dict()) == list(data)  # key order too
    assert metrics.task == "classification" and metrics.validation_fingerprint
    student = metrics.models["student"]
    assert isinstance(student, ModelMetrics)
    assert student.accuracy == data["models"]["student"]["accuracy"]
    assert student.latency_ms_p50 == data["models"]["student"]["latency_ms_p50"]
    assert student.extra["timer_includes"] == data["models"]["student"]["timer_includes"]
    # Written through the typed record, the file is what the engine wrote.
    run = create_run({"name": "typed"}, tmp_path)
    run.write_metrics(metrics)
    assert (run.path / "metrics.json").read_text() == text
    assert run.read_metrics() == metrics


def test_older_runs_read_with_missing_figures_and_keep_unknown_keys() -> None:
    old = {"models": {"teacher": {"accuracy": 0.9, "latency_ms_p50": 20.0, "peak_memory_mb": None},
                      "student": {"accuracy": 0.8, "latency_ms_p50": 8.0, "future_figure": 1}},
           "dataset": "bbc: 10 train / 5 validation", "someday": {"nested": [1, 2]}}
    metrics = RunMetrics.from_dict(old)
    assert metrics.to_dict() == old
    assert metrics.task is None and metrics.task_of("student") == "classification"
    teacher, student = metrics.models["teacher"], metrics.models["student"]
    assert student.speedup_vs_teacher is None and student.speedup(teacher) == 2.5  # p50 ratio
    assert student.kept(teacher, ACCURACY) == pytest.approx(0.8 / 0.9)
    assert metrics.model("baseline").accuracy is None  # not scored
    assert student.get("future_figure") == 1 and student.scalars()["future_figure"] == 1
    # A figure set since is written after the ones read; explicit nulls stay.
    student.size_mb = 12.5
    assert list(student.to_dict()) == ["accuracy", "latency_ms_p50", "future_figure", "size_mb"]
    assert teacher.to_dict()["peak_memory_mb"] is None
    # A general distillation run has no "models": none is added.
    general = {"kind": "general", "student": "run:x/general", "history": [{"val_loss": 1.0}]}
    assert RunMetrics.from_dict(general).to_dict() == general
    assert RunMetrics.from_dict(None).models == {}


def test_scalar_fields_drop_the_nested_figures() -> None:
    model = RunMetrics.from_dict(json.loads(METRICS_EXAMPLE.read_text())).models["teacher"]
    flat = scalar_fields(model)
    assert flat == scalar_fields(model.to_dict()) == model.scalars()
    assert "per_class" not in flat and "confusion_matrix" not in flat
    assert "timer_includes" not in flat and flat["accuracy"] == model.accuracy


def test_the_column_lists_share_one_definition() -> None:
    assert set(RETIMED_FIELDS) <= set(LEADERBOARD_COLUMNS)
    assert set(TRADEOFF_COLUMNS) <= set(LEADERBOARD_COLUMNS)
    assert LEADERBOARD_COLUMNS[:5] == ["run_id", "role", "model", "accuracy", "macro_f1"]
    assert {"latency_ms_p50", "speedup_vs_teacher", "size_mb", "params"} <= set(
        LEADERBOARD_COLUMNS)


def test_the_leaderboard_takes_a_retiming_over_the_scoring(tmp_path: Path) -> None:
    run = create_run({"name": "board", "dataset": {"name": "bbc"}}, tmp_path)
    run.write_metrics({"models": {"teacher": {"accuracy": 0.9, "latency_ms_p50": 20.0},
                                  "student": {"accuracy": 0.81, "latency_ms_p50": 10.0}}})
    row = leaderboard(tmp_path).set_index("role").loc["student"]
    assert row["speedup_vs_teacher"] == 2.0 and row["timed"] == "when scored"
    assert row["accuracy_retained"] == pytest.approx(0.9) and row["metric"] == "accuracy"
    run.append_timing({"time": "2026-12-04 10:00:00", "machine_busy": False, "models": {
        "student": {"latency_ms_p50": 5.0, "speedup_vs_teacher": 3.0, "speedup_spread": 0.1,
                    "device": "cpu"}}})
    row = leaderboard(tmp_path).set_index("role").loc["student"]
    assert (row["latency_ms_p50"], row["speedup_vs_teacher"], row["speedup_spread"]) == (
        5.0, 3.0, 0.1)
    assert row["timed"] == "2026-12-04 10:00:00" and row["dataset"] == "bbc"
    assert list(leaderboard(tmp_path).columns) == LEADERBOARD_COLUMNS


def test_model_refs_parse_what_they_format() -> None:
    ref = ModelRef("20261204-101500-ab12", "student_int8")
    assert str(ref) == "run:20261204-101500-ab12/student_int8"
    assert ModelRef.parse(str(ref)) == ref and ModelRef.parse(f"  {ref} ") == ref
    assert ModelRef.is_run_ref("run:x/teacher") and not ModelRef.is_run_ref("bert-base")
    for bad in ("run:../x/teacher", "run:abc/nobody", "run:abc", "abc/teacher", "run:_uploads/x"):
        with pytest.raises(RunError, match="run:<run_id>/<role>"):
            ModelRef.parse(bad)


def test_run_states_are_their_text(run: Run) -> None:
    assert STATES == tuple(RunState) == ("queued", "running", "done", "failed", "cancelled",
                                         "interrupted")
    assert RunState.DONE == "done" and f"{RunState.DONE}" == str(RunState.DONE) == "done"
    assert json.dumps({"state": RunState.FAILED}) == '{"state": "failed"}'
    assert set(ACTIVE_STATES) | set(FINISHED_STATES) == set(RunState)
    assert not set(ACTIVE_STATES) & set(FINISHED_STATES)
    assert set(RESUMABLE_STATES) <= set(FINISHED_STATES) and RunState.DONE not in \
        RESUMABLE_STATES
    run.set_status(RunState.DONE, stage="done")
    assert stored_state(run) == "done" and run.status()["state"] == RunState.DONE
    assert type(json.loads((run.path / "status.json").read_text())["state"]) is str
    with pytest.raises(ValueError, match="unknown run state"):
        run.set_status("finished")
