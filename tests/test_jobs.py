"""The job queue (core.jobs): workers started per queued run, and what happens when one dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from core.jobs import JobQueue
from core.runs import create_run
from core.specs import JobSpec


def test_a_worker_that_dies_without_a_word_leaves_its_run_failed(tmp_path: Path,
                                                                 monkeypatch) -> None:
    # A worker killed (out of memory, say) cannot write its own status: the queue must.
    run = create_run(JobSpec().to_dict(), tmp_path)
    started = []

    def dying_worker(self: JobQueue, run: object) -> subprocess.Popen:
        started.append(run)
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(9)"])

    monkeypatch.setattr(JobQueue, "_start_worker", dying_worker)
    queue = JobQueue(tmp_path, poll_s=0.05, clean_every_s=None)
    queue.tick()  # claims the run, starts the worker
    assert len(started) == 1 and run.status()["state"] == "queued"
    deadline = time.monotonic() + 30
    while run.status()["state"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.1)
        queue.tick()  # reaps the dead worker
    status = run.status()
    assert status["state"] == "failed" and "worker exited with code 9" in status["error"]
    assert not (run.path / "claimed").exists()
    queue.tick()
    assert len(started) == 1  # a failed run is not started again
