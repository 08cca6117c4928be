"""Which worker process still runs: a pid and its start time name one process for good
(Linux ``/proc``; by pid alone elsewhere). Used by the run registry (``core.runs``) and the
job queue (``core.jobs``) to tell a live job from one whose worker died."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["own_start_time", "pid_alive", "process_start_time", "worker_alive"]


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (any process: see :func:`worker_alive`)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, starttime)`` of ``pid`` from ``/proc/<pid>/stat``; None where unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        # Field 2 (comm) is in parentheses and may hold spaces or ')': split after the last
        # ')'. What follows starts at field 3 (state); field 22 (starttime) is 19 further on.
        fields = stat[stat.rindex(b")") + 2:].split()
        return fields[0].decode(), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``).

    With its pid this names one process for good: a pid is reused once its process is gone,
    a (pid, start time) pair is not. None where ``/proc`` is missing (macOS) or the process
    is gone.
    """
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


_own_start: dict[int, int | None] = {}  # keyed by pid: a forked child reads its own


def own_start_time() -> int | None:
    """This process's start time (:func:`process_start_time`), read once per pid."""
    pid = os.getpid()
    if pid not in _own_start:
        _own_start[pid] = process_start_time(pid)
    return _own_start[pid]


def worker_alive(status: dict[str, Any]) -> bool:
    """Whether the worker that ``status`` records (``pid``, ``pid_start``) still runs.

    True only when a process with that pid exists, is not a zombie, and started when the
    recorded one did: after a restart the pid may belong to another process. A status
    without ``pid_start`` (written where ``/proc`` is missing) is judged by its pid alone.
    """
    pid = status.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    stat = _proc_stat(pid)
    if stat is None:  # no /proc here, or the process ended since pid_alive
        return "pid_start" not in status and not Path("/proc/self/stat").exists()
    state, start = stat
    if state in ("Z", "X"):  # exited, not yet reaped by its parent
        return False
    return status.get("pid_start") in (None, start)
