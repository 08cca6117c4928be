"""The run registry: atomic writes, listing, and which runs still have a live worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs
from core.runs import (
    Run,
    RunError,
    atomic_write_json,
    create_run,
    delete_run,
    list_run_objects,
    open_run,
    process_start_time,
    read_json,
    worker_alive,
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
