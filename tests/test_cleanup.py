"""Storage cleanup: old unreferenced uploads, download temp folders, the teacher cache."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from core import jobs
from core.cleanup import clean_storage
from core.runs import create_run

NOW = time.time()
HOUR = 3600.0


def make_file(path: Path, size: int = 10, age_s: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return age(path, age_s)


def age(path: Path, age_s: float) -> Path:
    """Set the mtime (and atime) of ``path`` and everything under it to ``age_s`` ago."""
    stamp = NOW - age_s
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path, topdown=False):
            for name in [*files, *dirs]:
                os.utime(os.path.join(root, name), (stamp, stamp), follow_symlinks=False)
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


def clean(runs: Path, temp: Path | None = None, **options: float):
    settings = {"upload_max_age_s": 24 * HOUR, "temp_max_age_s": 2 * HOUR,
                "cache_budget_bytes": 10**9, **options}
    return clean_storage(runs, now=NOW, temp_dir=temp or runs.parent / "tmp", **settings)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "runs"
    path.mkdir()
    return path


# uploads ------------------------------------------------------------------------------------
def test_old_unreferenced_uploads_go_and_the_rest_stay(runs: Path) -> None:
    uploads = runs / "_uploads"
    old = make_file(uploads / "alice" / "aaaaaaaaaaaa-old.csv", size=100, age_s=30 * HOUR)
    fresh = make_file(uploads / "alice" / "bbbbbbbbbbbb-fresh.csv", age_s=HOUR)
    flat = make_file(uploads / "cccccccccccc-flat.csv", size=7, age_s=30 * HOUR)
    queued = make_file(uploads / "bob" / "dddddddddddd-queued.csv", age_s=30 * HOUR)
    interrupted = make_file(uploads / "bob" / "eeeeeeeeeeee-val.csv", age_s=30 * HOUR)
    finished = make_file(uploads / "bob" / "ffffffffffff-done.csv", size=5, age_s=30 * HOUR)
    create_run({"dataset": {"name": f"upload:bob/{queued.name}"}}, runs)
    stopped = create_run({"dataset": {"name": "x.csv", "validation": str(interrupted)}}, runs)
    stopped.set_status("interrupted")
    done = create_run({"dataset": {"name": f"upload:bob/{finished.name}"}}, runs)
    done.set_status("done")
    gone = make_file(uploads / "carol" / "gggggggggggg-x.csv", age_s=30 * HOUR).parent
    age(gone, 30 * HOUR)

    report = clean(runs)

    assert not old.exists() and not flat.exists() and not finished.exists()
    assert fresh.exists() and queued.exists() and interrupted.exists()
    assert not gone.exists()  # emptied and old: the visitor folder went too
    assert (uploads / "alice").exists() and uploads.exists()
    assert report.files_removed == 4 and report.folders_removed == 1
    assert report.bytes_freed == 100 + 7 + 5 + 10


def test_the_upload_age_comes_from_the_environment(runs: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    upload = make_file(runs / "_uploads" / "v" / "aaaaaaaaaaaa-a.csv", age_s=2 * HOUR)
    monkeypatch.setenv("DISTILLAB_UPLOAD_MAX_AGE_H", "3")
    clean_storage(runs, now=NOW, temp_dir=runs.parent / "tmp")
    assert upload.exists()
    monkeypatch.setenv("DISTILLAB_UPLOAD_MAX_AGE_H", "1")
    clean_storage(runs, now=NOW, temp_dir=runs.parent / "tmp")
    assert not upload.exists()


def test_an_invalid_environment_value_falls_back_to_the_default(
        runs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    upload = make_file(runs / "_uploads" / "v" / "aaaaaaaaaaaa-a.csv", age_s=2 * HOUR)
    monkeypatch.setenv("DISTILLAB_UPLOAD_MAX_AGE_H", "-1")
    with caplog.at_level(logging.WARNING, logger="core.cleanup"):
        clean_storage(runs, now=NOW, temp_dir=runs.parent / "tmp")
    assert upload.exists()  # 24 h by default
    assert "DISTILLAB_UPLOAD_MAX_AGE_H" in caplog.text


def test_links_in_uploads_are_removed_as_links_and_never_followed(runs: Path,
                                                                  tmp_path: Path) -> None:
    outside = make_file(tmp_path / "outside" / "precious.csv", age_s=30 * HOUR)
    link = runs / "_uploads" / "v" / "aaaaaaaaaaaa-link.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    folder_link = runs / "_uploads" / "v" / "folder"
    folder_link.symlink_to(outside.parent, target_is_directory=True)
    age(link, 30 * HOUR)
    age(folder_link, 30 * HOUR)
    clean(runs)
    assert not link.is_symlink() and not folder_link.is_symlink()
    assert outside.exists()


def test_an_uploads_folder_that_is_a_link_is_left_alone(runs: Path, tmp_path: Path) -> None:
    outside = make_file(tmp_path / "elsewhere" / "v" / "aaaaaaaaaaaa-a.csv", age_s=30 * HOUR)
    (runs / "_uploads").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert clean(runs).removed == []
    assert outside.exists()


def test_a_file_that_vanishes_mid_walk_is_skipped(runs: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = make_file(runs / "_uploads" / "v" / "aaaaaaaaaaaa-a.csv", age_s=30 * HOUR)
    walk = os.walk

    def walk_with_a_ghost(top, *args, **kwargs):  # noqa: ANN001, ANN202 - os.walk's own
        for folder, dirs, files in walk(top, *args, **kwargs):
            yield folder, dirs, [*files, "ghost.csv"]

    monkeypatch.setattr(os, "walk", walk_with_a_ghost)
    report = clean(runs)
    assert not real.exists() and report.files_removed == 1


# download temp folders ----------------------------------------------------------------------
def test_old_distillab_temp_entries_go_and_the_rest_stay(runs: Path) -> None:
    temp = runs.parent / "tmp"
    old_zip = age(make_file(temp / "distillab-abc" / "run-student.zip", size=50).parent,
                  3 * HOUR)
    old_file = make_file(temp / "distillab-loose.csv", size=3, age_s=3 * HOUR)
    fresh = age(make_file(temp / "distillab-results-x" / "r.csv").parent, HOUR)
    busy = age(make_file(temp / "distillab-export-y" / "m" / "a.bin").parent.parent, 3 * HOUR)
    make_file(busy / "m" / "b.bin")  # written just now: in use
    other = age(make_file(temp / "other-app" / "f").parent, 30 * HOUR)

    report = clean(runs, temp)

    assert not old_zip.exists() and not old_file.exists()
    assert fresh.exists() and busy.exists() and other.exists()
    assert report.bytes_freed == 53


def test_a_runs_folder_named_like_a_temp_folder_is_never_removed(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    runs = temp / "distillab-runs"
    create_run({"name": "kept"}, runs)
    age(runs, 30 * HOUR)
    other_runs = temp / "distillab-other-server"
    create_run({"name": "kept"}, other_runs)
    age(other_runs, 30 * HOUR)
    clean_storage(runs, now=NOW, temp_dir=temp, temp_max_age_s=HOUR)
    assert any(runs.iterdir()) and any(other_runs.iterdir())


def test_a_temp_link_is_removed_as_a_link(runs: Path, tmp_path: Path) -> None:
    target = make_file(tmp_path / "target" / "keep.bin", age_s=30 * HOUR).parent
    link = runs.parent / "tmp" / "distillab-link"
    link.symlink_to(target, target_is_directory=True)
    age(link, 30 * HOUR)
    clean(runs)
    assert not link.is_symlink() and (target / "keep.bin").exists()


# teacher cache ------------------------------------------------------------------------------
def cache_entry(runs: Path, key: str, size: int, age_s: float) -> Path:
    entry = runs / "_cache" / "teachers" / key
    make_file(entry / "config.json", size=1)
    make_file(entry / "model.safetensors", size=size - 1)
    return age(entry, age_s)


def test_the_teacher_cache_is_trimmed_least_recently_used_first(runs: Path) -> None:
    oldest = cache_entry(runs, "a", 100, 5 * HOUR)
    older = cache_entry(runs, "b", 100, 4 * HOUR)
    newer = cache_entry(runs, "c", 100, 3 * HOUR)
    report = clean(runs, cache_budget_bytes=150)
    assert not oldest.exists() and not older.exists() and newer.exists()
    assert report.folders_removed == 2 and report.bytes_freed == 200


def test_a_cache_entry_read_recently_counts_as_used(runs: Path) -> None:
    read = cache_entry(runs, "a", 100, 5 * HOUR)
    stamp = NOW - 5 * HOUR
    os.utime(read / "config.json", (NOW - 10, stamp))  # atime: loaded ten seconds ago
    unread = cache_entry(runs, "b", 100, 4 * HOUR)
    clean(runs, cache_budget_bytes=150)
    assert read.exists() and not unread.exists()


def test_a_cache_entry_used_in_the_last_hour_is_kept_over_budget(runs: Path) -> None:
    old = cache_entry(runs, "a", 100, 2 * HOUR)
    recent = cache_entry(runs, "b", 100, 0.5 * HOUR)
    clean(runs, cache_budget_bytes=0)
    assert not old.exists() and recent.exists()


def test_the_cache_under_budget_keeps_entries_but_drops_old_half_copies(runs: Path) -> None:
    entry = cache_entry(runs, "a", 100, 30 * HOUR)
    leftover = cache_entry(runs, ".b.tmp", 100, 2 * HOUR)
    copying = cache_entry(runs, ".c.tmp", 100, 0.1 * HOUR)
    clean(runs)
    assert entry.exists() and not leftover.exists() and copying.exists()


def test_a_cache_entry_that_is_a_link_is_unlinked_not_followed(runs: Path,
                                                               tmp_path: Path) -> None:
    target = make_file(tmp_path / "models" / "config.json", size=500, age_s=30 * HOUR).parent
    link = runs / "_cache" / "teachers" / "linked"
    link.parent.mkdir(parents=True)
    link.symlink_to(target, target_is_directory=True)
    age(link, 30 * HOUR)
    clean(runs, cache_budget_bytes=0)
    assert not link.is_symlink() and (target / "config.json").exists()


def test_nothing_outside_the_managed_folders_is_touched(runs: Path) -> None:
    run = create_run({"dataset": {"name": "x.csv"}}, runs)
    run.set_status("done")
    (run.path / "models").mkdir()
    make_file(runs / "_other" / "f.bin", age_s=30 * HOUR)
    make_file(runs / "loose.csv", age_s=30 * HOUR)
    age(run.path, 30 * HOUR)
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    report = clean(runs, upload_max_age_s=0, temp_max_age_s=0, cache_budget_bytes=0)
    assert report.removed == []
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before


def test_a_run_left_half_deleted_goes_once_its_rename_is_old(runs: Path) -> None:
    """A delete renames the run, then removes it; if the removal failed, cleanup finishes it,
    but never while a delete may still be running (the rename's ctime is recent)."""
    left = make_file(runs / ".deleting-20261205-101500-ab12-0f0f" / "models" / "w.bin",
                     age_s=30 * HOUR).parents[1]
    kept_run = create_run({"dataset": {"name": "x.csv"}}, runs)
    assert clean(runs).removed == []  # renamed moments ago: a delete may be under way
    report = clean_storage(runs, now=time.time() + 3 * HOUR, temp_dir=runs.parent / "tmp",
                           upload_max_age_s=24 * HOUR, temp_max_age_s=2 * HOUR,
                           cache_budget_bytes=10**9)
    assert report.removed == [str(left)] and not left.exists()
    assert kept_run.path.exists()


# the job queue ------------------------------------------------------------------------------
def test_the_queue_cleans_at_most_every_clean_every_s(runs: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(jobs, "clean_storage", lambda runs_dir: calls.append(runs_dir))
    queue = jobs.JobQueue(runs, clean_every_s=600)
    queue.tick()
    queue.tick()
    assert calls == [runs.resolve()]
    queue._next_clean = time.monotonic() - 1  # as if ten minutes had passed
    queue.tick()
    assert len(calls) == 2
    jobs.JobQueue(runs, clean_every_s=None).tick()
    assert len(calls) == 2


def test_a_failing_cleanup_is_logged_not_raised(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    def fail(runs_dir: Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(jobs, "clean_storage", fail)
    with caplog.at_level(logging.ERROR, logger="core.jobs"):
        jobs.JobQueue(runs).tick()
    assert "storage cleanup failed" in caplog.text and "disk gone" in caplog.text
