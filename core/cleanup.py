"""Storage that nothing else deletes: old uploads, download temp folders, the teacher cache.

What :func:`clean_storage` removes, and nothing else:

- ``<runs>/_uploads/**``: uploaded data files older than ``upload_max_age_s`` (by mtime;
  re-uploading a file touches it) that no queued, running or interrupted run's spec names,
  and empty upload folders as old;
- ``<tmp>/distillab-*``: zips and result files written for download, once nothing in them
  has changed for ``temp_max_age_s``;
- ``<runs>/_cache/teachers/<key>/``: fine-tuned teachers, least recently used first, until the
  cache fits ``cache_budget_bytes``; an entry used in the last hour is always kept.
- ``<runs>/.deleting-*``: a deleted run left behind when its removal failed after the run was
  renamed out of the way (a file held open), once renamed longer than ``temp_max_age_s`` ago.

Defaults come from the environment, read at each call:

- ``DISTILLAB_UPLOAD_MAX_AGE_H``: hours an unreferenced upload is kept (default 24);
- ``DISTILLAB_TEMP_MAX_AGE_H``: hours a download temp folder is kept (default 2);
- ``DISTILLAB_CACHE_BUDGET_GB``: size of the teacher cache in GB, 10^9 bytes (default 5).

Symlinks are never followed (a link is removed as a link), a ``_uploads`` or ``_cache`` that is
itself a link is left alone, and a file that vanishes mid-walk is skipped. The job queue
(:class:`core.jobs.JobQueue`) calls this every ten minutes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.runs import DELETING_PREFIX, RunState, list_run_objects

log = logging.getLogger(__name__)

TEMP_PREFIX = "distillab-"
# Runs in these states may still read their data files (a resume reads them again).
UPLOAD_KEEPING_STATES = tuple(state for state in RunState if state != RunState.DONE)
DATASET_FIELDS = ("name", "validation", "transfer")
CACHE_RECENT_S = 3600.0  # a teacher cache entry used this recently is never trimmed


@dataclass
class CleanupReport:
    """What one :func:`clean_storage` pass removed."""

    files_removed: int = 0
    folders_removed: int = 0
    bytes_freed: int = 0
    removed: list[str] = field(default_factory=list)  # the paths, for the log

    def add(self, path: Path, size: int, *, folder: bool) -> None:
        if folder:
            self.folders_removed += 1
        else:
            self.files_removed += 1
        self.bytes_freed += size
        self.removed.append(str(path))


def _env_number(name: str, default: float) -> float:
    """A non-negative number from the environment; the default (with a warning) if invalid."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        log.warning("%s=%r is not a non-negative number: using %s", name, raw, default)
        return default
    return value


def clean_storage(runs_dir: str | os.PathLike, *, now: float | None = None,
                  upload_max_age_s: float | None = None, temp_max_age_s: float | None = None,
                  cache_budget_bytes: int | None = None,
                  temp_dir: Path | None = None) -> CleanupReport:
    """Delete old unreferenced uploads, old download temp folders, and trim the teacher cache.

    Args:
        runs_dir: the runs folder (holding ``_uploads`` and ``_cache``).
        now: the current time (default ``time.time()``; tests pass their own).
        upload_max_age_s: default ``DISTILLAB_UPLOAD_MAX_AGE_H`` hours (24).
        temp_max_age_s: default ``DISTILLAB_TEMP_MAX_AGE_H`` hours (2).
        cache_budget_bytes: default ``DISTILLAB_CACHE_BUDGET_GB`` GB (5).
        temp_dir: where ``distillab-*`` temp entries live (default ``tempfile.gettempdir()``).
    Returns:
        What was removed and how many bytes that freed.
    """
    now = time.time() if now is None else now
    if upload_max_age_s is None:
        upload_max_age_s = _env_number("DISTILLAB_UPLOAD_MAX_AGE_H", 24) * 3600
    if temp_max_age_s is None:
        temp_max_age_s = _env_number("DISTILLAB_TEMP_MAX_AGE_H", 2) * 3600
    if cache_budget_bytes is None:
        cache_budget_bytes = int(_env_number("DISTILLAB_CACHE_BUDGET_GB", 5) * 1e9)
    root = Path(runs_dir).resolve()
    report = CleanupReport()
    _clean_uploads(root, now - upload_max_age_s, report)
    _clean_temp(Path(temp_dir or tempfile.gettempdir()), root, now - temp_max_age_s, report)
    _trim_teacher_cache(root, now, cache_budget_bytes, report)
    _clean_half_deleted(root, now - temp_max_age_s, report)
    if report.removed:
        log.info("storage cleanup removed %d files and %d folders (%.1f MB)",
                 report.files_removed, report.folders_removed, report.bytes_freed / 1e6)
    return report


# uploads ---------------------------------------------------------------------------------
def referenced_upload_names(runs_dir: Path) -> set[str]:
    """File names of the data files that queued, running or interrupted runs' specs name
    (paths or ``upload:<visitor>/<file>`` references; stored uploads are named by content)."""
    names: set[str] = set()
    for run in list_run_objects(runs_dir):
        try:
            state = run.status().get("state")
        except (OSError, ValueError):  # unreadable status: keep what its spec names
            state = None
        if state is not None and state not in UPLOAD_KEEPING_STATES:
            continue
        try:
            dataset = _as_dict(_as_dict(run.spec).get("dataset"))
        except (OSError, ValueError):
            continue
        for key in DATASET_FIELDS:
            value = dataset.get(key)
            if isinstance(value, str) and value.strip():
                names.add(value.strip().replace("\\", "/").rsplit("/", 1)[-1])
    return names


def _clean_uploads(root: Path, cutoff: float, report: CleanupReport) -> None:
    uploads = _own_folder(root, "_uploads")
    if uploads is None:
        return
    keep = referenced_upload_names(root)
    for folder, dirnames, filenames in os.walk(uploads, topdown=False):
        # Read before removing files in it (which makes it new): was it untouched since?
        try:
            old_folder = os.lstat(folder).st_mtime < cutoff
        except OSError:
            continue
        # Links to folders are listed as folders but not walked: removed as links if old.
        links = [d for d in dirnames if os.path.islink(os.path.join(folder, d))]
        for name in [*filenames, *links]:
            if name not in keep:
                _remove_if_older(Path(folder) / name, cutoff, report)
        if old_folder and Path(folder) != uploads:
            _remove_empty_folder(Path(folder), report)


def _remove_if_older(path: Path, cutoff: float, report: CleanupReport) -> None:
    try:
        info = path.lstat()
        if info.st_mtime < cutoff:
            path.unlink()
            report.add(path, info.st_size if stat.S_ISREG(info.st_mode) else 0, folder=False)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("cleanup could not remove %s: %s", path, error)


def _remove_tree(path: Path, report: CleanupReport) -> None:
    """Remove a folder and all it holds, counted (the caller handles OSError)."""
    size = tree_bytes(path)
    shutil.rmtree(path)
    report.add(path, size, folder=True)


def _remove_empty_folder(path: Path, report: CleanupReport) -> None:
    try:
        path.rmdir()  # only succeeds when empty
    except OSError:  # not empty, gone, or filled meanwhile
        return
    report.add(path, 0, folder=True)


# runs whose delete failed half-way ------------------------------------------------------
def _clean_half_deleted(root: Path, cutoff: float, report: CleanupReport) -> None:
    """Remove ``.deleting-*`` folders renamed before ``cutoff`` (the rename sets the ctime, so
    a delete in progress is never raced)."""
    for path in root.glob(f"{DELETING_PREFIX}*"):
        try:
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_ctime < cutoff:
                _remove_tree(path, report)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("cleanup could not remove %s: %s", path, error)


# download temp folders -------------------------------------------------------------------
def _clean_temp(temp_dir: Path, runs_root: Path, cutoff: float, report: CleanupReport) -> None:
    try:
        entries = [e for e in os.scandir(temp_dir) if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        path = Path(entry.path)
        try:
            info = entry.stat(follow_symlinks=False)
            if uid is not None and info.st_uid != uid:
                continue  # another user's: not ours to judge (nor to delete)
            if stat.S_ISDIR(info.st_mode):
                if _holds_runs(path, runs_root):
                    continue  # e.g. DISTILLAB_RUNS_DIR=/tmp/distillab-runs
                if _newest_mtime(path) < cutoff:
                    _remove_tree(path, report)
            else:
                _remove_if_older(path, cutoff, report)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("cleanup could not remove %s: %s", path, error)


def _holds_runs(path: Path, runs_root: Path) -> bool:
    """Whether ``path`` is, holds or looks like a runs folder (then it is never a temp folder)."""
    resolved = path.resolve()
    if resolved == runs_root or resolved in runs_root.parents:
        return True
    if (path / "_uploads").exists() or (path / "_cache").exists():
        return True
    return any((child / "spec.json").is_file() for child in _dirs(path))


def _dirs(path: Path) -> Iterator[Path]:
    try:
        yield from (Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
    except OSError:
        return


# teacher cache ---------------------------------------------------------------------------
def _trim_teacher_cache(root: Path, now: float, budget: int, report: CleanupReport) -> None:
    cache = _own_folder(root, "_cache")
    teachers = cache and _own_folder(cache, "teachers")
    if not teachers:
        return
    entries: list[tuple[float, int, Path, bool]] = []
    try:
        children = list(os.scandir(teachers))
    except OSError:
        return
    for child in children:
        path = Path(child.path)
        try:
            is_dir = child.is_dir(follow_symlinks=False)
            entries.append((_last_used(path) if is_dir else path.lstat().st_mtime,
                            tree_bytes(path) if is_dir else path.lstat().st_size, path, is_dir))
        except OSError:
            continue
    total = sum(entry[1] for entry in entries)
    recent = now - CACHE_RECENT_S
    for last_used, size, path, is_dir in sorted(entries, key=lambda e: e[0]):
        # Half-written copies (".<key>.tmp") left by a crash count for nothing: always go.
        leftover = path.name.startswith(".") and path.name.endswith(".tmp")
        if (total <= budget and not leftover) or last_used >= recent:
            continue
        try:
            if is_dir:
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("cleanup could not remove %s: %s", path, error)
            continue
        total -= size
        report.add(path, size, folder=is_dir)


def _last_used(entry: Path) -> float:
    """When a cache entry was last written, or read (``config.json``'s access time, where the
    filesystem keeps one: loading a teacher reads it; a ``stat`` does not)."""
    times = [_newest_mtime(entry)]
    with contextlib.suppress(OSError):
        times.append((entry / "config.json").lstat().st_atime)
    return max(times)


# walking ---------------------------------------------------------------------------------
def _own_folder(parent: Path, name: str) -> Path | None:
    """``parent/name`` if it is a real folder (not a link that could lead elsewhere)."""
    path = parent / name
    try:
        info = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        log.warning("cleanup skips %s: it is a symlink", path)
        return None
    return path if stat.S_ISDIR(info.st_mode) else None


def _walk_stats(path: Path) -> Iterator[os.stat_result]:
    """``lstat`` of ``path`` and of everything under it, links not followed."""
    try:
        yield path.lstat()
    except OSError:
        return
    for folder, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            try:
                yield os.lstat(os.path.join(folder, name))
            except OSError:
                continue


def _newest_mtime(path: Path) -> float:
    return max((info.st_mtime for info in _walk_stats(path)), default=0.0)


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files at and under ``path`` (links not followed)."""
    return sum(info.st_size for info in _walk_stats(path) if stat.S_ISREG(info.st_mode))


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
