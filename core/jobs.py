"""The job queue: runs queued in the runs folder are trained by worker processes.

``submit`` writes a ``queued`` run; a :class:`JobQueue` (one per serving process) starts
``python -m core worker <id>`` for queued runs, at most ``max_workers`` at a time (one per
device by default), oldest first. A worker claims a run by creating ``claimed`` with
``O_EXCL``, so two servers over one runs folder never train the same run twice. Cancel and
status go through the run folder, so they work from any process (UI, CLI, API).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from core.cleanup import clean_storage
from core.processes import pid_alive, worker_alive
from core.runs import (
    ACTIVE_STATES,
    RESUMABLE_STATES,
    Run,
    RunError,
    RunState,
    list_run_objects,
    open_run,
    runs_root,
)

log = logging.getLogger(__name__)

RESUMABLE = RESUMABLE_STATES


def cancel(run_id: str, runs_dir: str | os.PathLike | None = None) -> str:
    """Stop a running job at its next step (it saves a checkpoint) or drop a queued one.

    A run whose worker is gone (killed, or the server restarted) is marked ``interrupted``
    in its status.json, so it can be resumed or deleted.

    Returns:
        The run's state after the request: ``cancelled`` (was queued), ``running`` (the
        worker stops at its next step) or ``interrupted`` (no worker was left).
    Raises:
        RunError: a run that is done, failed or cancelled already.
    """
    run = open_run(run_id, runs_dir)
    state = run.status()["state"]
    if state == RunState.QUEUED:
        run.set_status(RunState.CANCELLED, message="cancelled before it started")
        # A queue may have claimed it a moment ago: its worker refuses a run that is no
        # longer queued, and one already past that check stops at its first step.
        run.request_cancel()
    elif state == RunState.RUNNING:
        run.request_cancel()
    elif state == RunState.INTERRUPTED:
        # Written down, so every reader agrees even if the pid is taken again later.
        run.set_status(RunState.INTERRUPTED,
                       message="its worker had stopped; resume it to continue")
    else:
        raise RunError(f"run {run_id} is {state}: nothing to cancel")
    return run.status()["state"]


def check_resumable(run: Run) -> None:
    """Refuse to resume a run that is not interrupted, cancelled or failed, or still stopping.

    Raises:
        RunError: what the run is doing instead.
    """
    status = run.status()
    state = status["state"]
    if state not in RESUMABLE:
        raise RunError(f"run {run.id} is {state}; only {', '.join(RESUMABLE)} runs resume")
    if worker_alive(status) and status.get("pid") != os.getpid():
        raise RunError(f"run {run.id} is still stopping (pid {status['pid']}); try again")


def resume(run_id: str, runs_dir: str | os.PathLike | None = None) -> None:
    """Queue an interrupted, cancelled or failed run again; it continues from its checkpoint."""
    run = open_run(run_id, runs_dir)
    check_resumable(run)
    run.clear_cancel()
    (run.path / "claimed").unlink(missing_ok=True)
    run.set_status(RunState.QUEUED, message="queued to resume")


def claim_to_resume_here(run: Run) -> None:
    """Take a resumable run for this process (``distillab run --resume``), by the queue's
    rules: the same states, and a claim, so no job queue starts it at the same time.

    Raises:
        RunError: a run that cannot resume, or one another process has just claimed.
    """
    check_resumable(run)
    run.clear_cancel()
    (run.path / "claimed").unlink(missing_ok=True)
    if not _claim(run):
        raise RunError(f"run {run.id} was just claimed by another process")


def progress(run_id: str, runs_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Status and progress of a run: state, stage, epoch, step, ETA, last log lines."""
    run = open_run(run_id, runs_dir)
    status = run.status()
    logs = [e.get("message", "") for e in run.events(("stage", "log", "error", "resumed"))
            if e.get("message")]
    return {"run_id": run_id, **status, "log_tail": logs[-12:]}


def _claim(run: Run) -> bool:
    try:
        fd = os.open(run.path / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _release_stale_claim(run: Run) -> None:
    """Drop a queued run's claim whose claiming process is gone (a server that died between
    claiming the run and its worker starting), so the run is not left queued forever."""
    claimed = run.path / "claimed"
    try:
        pid = int(claimed.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return
    if pid and not pid_alive(pid):
        claimed.unlink(missing_ok=True)


class JobQueue:
    """Starts worker processes for queued runs, ``max_workers`` at a time, and cleans the
    runs folder's storage (:func:`core.cleanup.clean_storage`) every ``clean_every_s``
    seconds (None: never)."""

    def __init__(self, runs_dir: str | os.PathLike | None = None, max_workers: int = 1,
                 poll_s: float = 1.0, clean_every_s: float | None = 600.0) -> None:
        self.runs_dir = Path(runs_root(runs_dir)).resolve()
        self.max_workers = max_workers
        self.poll_s = poll_s
        self.clean_every_s = clean_every_s
        self._next_clean = 0.0  # time.monotonic() of the next cleanup: the first tick cleans
        self._workers: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> JobQueue:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="distillab-jobs",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for proc in self._workers.values():
            proc.terminate()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the queue must outlive one bad run folder
                log.exception("job queue tick failed")
            self._stop.wait(self.poll_s)

    def tick(self) -> None:
        """Reap finished workers, start queued runs while there is room, clean when due."""
        for run_id, proc in list(self._workers.items()):
            if proc.poll() is not None:
                del self._workers[run_id]
                run = Run(self.runs_dir / run_id)
                if not (run.path / "claimed").exists():
                    continue  # resumed (re-queued) since: the new claim decides its fate
                if run.status()["state"] in (*ACTIVE_STATES, RunState.INTERRUPTED):
                    # The worker died before it could say so (killed, out of memory).
                    run.set_status(RunState.FAILED,
                                   error=f"worker exited with code {proc.returncode}")
                (run.path / "claimed").unlink(missing_ok=True)
        for run in list_run_objects(self.runs_dir):
            if run.status().get("state") != RunState.QUEUED:
                continue
            _release_stale_claim(run)
            if len(self._workers) < self.max_workers and _claim(run):
                self._workers[run.id] = self._start_worker(run)
        self._clean_if_due()

    def _clean_if_due(self) -> None:
        """Clean storage if ``clean_every_s`` has passed; a failure is logged, not raised."""
        if self.clean_every_s is None or time.monotonic() < self._next_clean:
            return
        self._next_clean = time.monotonic() + self.clean_every_s
        try:
            clean_storage(self.runs_dir)
        except Exception:  # cleaning is housekeeping: it never stops the queue
            log.exception("storage cleanup failed")

    def _start_worker(self, run: Run) -> subprocess.Popen:
        log.info("starting worker for %s", run.id)
        log_file = open(run.path / "worker.log", "ab")  # noqa: SIM115 - owned by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        root = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-m", "core", "--runs-dir", str(self.runs_dir), "worker", run.id],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root)

    def wait_idle(self, timeout_s: float = 600) -> None:
        """Block until no run is queued or running (tests and scripts)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.tick()
            busy = self._workers or any(r.status()["state"] == RunState.QUEUED
                                        for r in list_run_objects(self.runs_dir))
            if not busy:
                return
            time.sleep(self.poll_s)
        raise TimeoutError(f"jobs still running after {timeout_s} s")
