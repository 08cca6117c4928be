"""The run registry: ``runs/<id>/`` is the contract between the engine, the CLI and the UI.

Layout of one run::

    spec.json          the JobSpec as a dict
    status.json        state (a :class:`RunState`), stage, progress
    events.jsonl       one JSON object per line: stages, training steps, epochs, log lines
    history.jsonl      per-epoch metrics of every stage
    metrics.json       {"models": {"teacher": {...}, ...}, ...}: :class:`RunMetrics`
    predictions.parquet  per-example predictions of every model on the validation set
    models/<role>/     save_pretrained folders (safetensors + tokenizer)
    checkpoint/<stage>/  resumable training state
    cancel             present when a cancel was asked for

Every whole-file write goes to a temporary sibling first and is renamed over the target,
so a reader never sees half a file and a crash never corrupts one already written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from core.processes import own_start_time, worker_alive
from core.run_record import (  # noqa: F401  (re-exported: the run contract's types)
    ACCURACY,
    ACTIVE_STATES,
    DEVICE,
    ENCODER_ROLES,
    FINISHED_STATES,
    INT8_ROLE,
    LATENCY_P50,
    LEADERBOARD_COLUMNS,
    MACRO_F1,
    METRIC_TITLES,
    PAIR_COLUMN,
    PARAMS,
    QUALITY_FIELDS,
    REGRESSION,
    RESUMABLE_STATES,
    RETIMED_FIELDS,
    ROLES,
    RUN_ID_PATTERN,
    RUN_REF_PREFIX,
    SIZE_MB,
    SPEARMAN,
    SPEEDUP,
    SPEEDUP_SPREAD,
    STATES,
    THROUGHPUT,
    ModelMetrics,
    ModelRef,
    RunError,
    RunMetrics,
    RunState,
    RunTiming,
    main_metric,
    quality_pair,
    scalar_fields,
)


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: ``runs_dir``, else ``$DISTILLAB_RUNS_DIR``, else ``./runs``."""
    root = Path(runs_dir or os.environ.get("DISTILLAB_RUNS_DIR") or "runs")
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, default=_json_default).encode())


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class Run:
    """One run folder, with typed accessors for what the engine writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.id = self.path.name

    def __repr__(self) -> str:
        return f"Run({self.path})"

    # spec and status -----------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        return read_json(self.path / "spec.json", {})

    def status(self) -> dict[str, Any]:
        """The status; a ``running`` run whose worker is gone reads as ``interrupted``
        (see :func:`worker_alive`: the same pid in another process does not count)."""
        status = read_json(self.path / "status.json", {"state": RunState.QUEUED.value})
        if status.get("state") == RunState.RUNNING and not worker_alive(status):
            status["state"] = RunState.INTERRUPTED.value
        return status

    def set_status(self, state: RunState | str, **fields: Any) -> None:
        """Write ``state`` and ``fields`` into status.json (with ``updated``); ``running``
        also records this process as the worker: ``pid`` and ``pid_start`` (its start time
        in clock ticks since boot, absent where ``/proc`` is missing)."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        status = read_json(self.path / "status.json", {})
        status.update(fields, state=str(state), updated=time.time())
        if state == RunState.RUNNING:
            status["pid"] = os.getpid()
            status.pop("pid_start", None)
            if (start := own_start_time()) is not None:
                status["pid_start"] = start
        atomic_write_json(self.path / "status.json", status)

    # logs ----------------------------------------------------------------------------
    def append_event(self, event: dict[str, Any]) -> None:
        """Append one event line (appends of one short line are atomic on POSIX)."""
        event = {"time": round(time.time(), 3), **event}
        with open(self.path / "events.jsonl", "a") as handle:
            handle.write(json.dumps(event, default=_json_default) + "\n")

    def events(self, types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return [e for e in _read_jsonl(self.path / "events.jsonl")
                if types is None or e.get("type") in types]

    def append_history(self, row: dict[str, Any]) -> None:
        with open(self.path / "history.jsonl", "a") as handle:
            handle.write(json.dumps(row, default=_json_default) + "\n")

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(_read_jsonl(self.path / "history.jsonl"))

    # results -------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, Any]:
        return read_json(self.path / "metrics.json", {"models": {}})

    def read_metrics(self) -> RunMetrics:
        """``metrics.json`` typed (writes back unchanged: :meth:`RunMetrics.to_dict`)."""
        return RunMetrics.from_dict(self.metrics)

    def write_metrics(self, metrics: dict[str, Any] | RunMetrics) -> None:
        if isinstance(metrics, RunMetrics):
            metrics = metrics.to_dict()
        atomic_write_json(self.path / "metrics.json", metrics)

    def predictions(self) -> pd.DataFrame:
        path = self.path / "predictions.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    def write_predictions(self, table: pd.DataFrame) -> None:
        path = self.path / "predictions.parquet"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".predictions.", suffix=".tmp")
        os.close(fd)
        try:
            table.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def timings(self) -> list[dict[str, Any]]:
        """Every re-timing of this run's models (``distillab time``), oldest first."""
        return _read_jsonl(self.path / "timings.jsonl")

    def latest_timing(self) -> RunTiming:
        """The latest re-timing, typed (empty when the run was never re-timed)."""
        return RunTiming.from_dict((self.timings() or [{}])[-1])

    def append_timing(self, timing: dict[str, Any]) -> None:
        with open(self.path / "timings.jsonl", "a") as handle:
            handle.write(json.dumps(timing, default=_json_default) + "\n")

    def model_dir(self, role: str) -> Path:
        return self.path / "models" / role

    def models(self) -> list[str]:
        """Roles whose saved model folder is complete."""
        return [r for r in ROLES if (self.model_dir(r) / "config.json").exists()]

    def checkpoint_dir(self, stage: str) -> Path:
        return self.path / "checkpoint" / stage

    # cancel --------------------------------------------------------------------------
    def request_cancel(self) -> None:
        (self.path / "cancel").touch()

    def cancel_requested(self) -> bool:
        return (self.path / "cancel").exists()

    def clear_cancel(self) -> None:
        (self.path / "cancel").unlink(missing_ok=True)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return rows


def new_run_id(name: str = "") -> str:
    """A sortable, unique id: ``YYYYmmdd-HHMMSS-<name>-<4 hex>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:24]
    return "-".join(p for p in (stamp, slug, secrets.token_hex(2)) if p)


def create_run(spec: dict[str, Any], runs_dir: str | os.PathLike | None = None) -> Run:
    """A new run folder holding ``spec.json`` and a ``queued`` status."""
    root = runs_root(runs_dir)
    run = Run(root / new_run_id(spec.get("name", "")))
    run.path.mkdir(parents=True)
    atomic_write_json(run.path / "spec.json", spec)
    atomic_write_json(run.path / "status.json", {"state": RunState.QUEUED.value,
                                                 "created": time.time(), "updated": time.time()})
    return run


def open_run(run_id: str, runs_dir: str | os.PathLike | None = None) -> Run:
    """The run ``run_id`` of the runs folder.

    Raises:
        RunError: an id that is not a plain folder name (``..``, a path, ``_uploads``), or
            no run by that id.
    """
    root = runs_root(runs_dir)
    run_id = (run_id or "").strip()
    if not RUN_ID_PATTERN.match(run_id):
        raise RunError(f"{run_id!r} is not a run id (e.g. 20261204-101500-ab12)")
    path = root / run_id
    if not (path / "spec.json").is_file():
        raise RunError(f"no run {run_id!r} (see `distillab runs` or the Runs tab)")
    return Run(path)


def list_run_objects(runs_dir: str | os.PathLike | None = None) -> list[Run]:
    root = runs_root(runs_dir)
    return sorted((Run(p) for p in root.iterdir()
                   if p.is_dir() and not p.name.startswith(".")
                   and (p / "spec.json").exists()), key=lambda r: r.id)


DELETING_PREFIX = ".deleting-"  # a run being deleted (``core.cleanup`` sweeps leftovers)


def delete_run(run_id: str, runs_dir: str | os.PathLike | None = None) -> None:
    run = open_run(run_id, runs_dir)
    if run.status()["state"] == RunState.RUNNING:
        raise RunError(f"run {run_id} is running: cancel it before deleting it")
    # Renamed out of the way first (atomic): readers then see the run whole or gone, and
    # a job queue reaping its worker (which unlinks ``claimed``) cannot pull a file from
    # under rmtree. A hidden name is never listed as a run.
    trash = run.path.with_name(f"{DELETING_PREFIX}{run.id}-{secrets.token_hex(4)}")
    os.replace(run.path, trash)
    shutil.rmtree(trash, ignore_errors=True)
    if trash.exists():  # a file was held or appeared meanwhile: once more, and say why
        shutil.rmtree(trash)


def list_runs(runs_dir: str | os.PathLike | None = None,
              runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per run (``runs``, default all): id, name, state, stage, teacher, dataset,
    recipe and accuracies."""
    rows = []
    for run in list_run_objects(runs_dir) if runs is None else runs:
        spec, status, models = run.spec, run.status(), run.read_metrics().models
        rows.append({
            "run_id": run.id,
            "name": spec.get("name", ""),
            "state": status.get("state"),
            "stage": status.get("stage", ""),
            "teacher": spec.get("teacher", ""),
            "dataset": (spec.get("dataset") or {}).get("name", ""),
            "recipe": ("general" if spec.get("kind") == "general" else
                       (spec.get("recipe") or {}).get("name", "")),
            **{f"{role}_{ACCURACY}": m.accuracy for role, m in models.items()},
        })
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "name", "state", "stage",
                                                          "teacher", "dataset", "recipe"])


def dataset_of(run: Run, metrics: RunMetrics | None = None) -> tuple[str, str]:
    """``(name, key)`` of the validation set a run's models were scored on: the data's
    description up to its counts, and a key equal for runs scored on the same examples."""
    metrics = metrics or run.read_metrics()
    name = str(metrics.dataset or (run.spec.get("dataset") or {}).get("name", ""))
    name = name.split(":")[0].strip() or "?"
    return name, str(metrics.validation_fingerprint or name)


def leaderboard(runs_dir: str | os.PathLike | None = None,
                runs: list[Run] | None = None) -> pd.DataFrame:
    """One row per scored model across ``runs`` (default all), with speed-up and score
    retained vs its run's teacher (both measured in the same run)."""
    rows = []
    for run in list_run_objects(runs_dir) if runs is None else runs:
        metrics = run.read_metrics()
        teacher = metrics.model("teacher")
        retimed = run.latest_timing()  # the latest re-timing supersedes scoring's
        dataset = dataset_of(run, metrics)
        for role, m in metrics.models.items():
            row = {c: m.get(c) for c in LEADERBOARD_COLUMNS}
            row.update(run_id=run.id, role=role, model=str(ModelRef(run.id, role)),
                       timed="when scored", speedup_vs_teacher=m.speedup(teacher))
            if role in retimed.models:
                timing = retimed.models[role]
                row.update({k: timing.get(k) for k in RETIMED_FIELDS}, timed=retimed.time,
                           machine_busy=retimed.machine_busy)
            # The task's main metric (accuracy, or Spearman for a regression) as "score".
            task = metrics.task_of(role)
            metric = main_metric(task)
            row.update(accuracy_retained=m.kept(teacher, ACCURACY), task=task, metric=metric,
                       score=m.get(metric), score_retained=m.kept(teacher, metric))
            row["dataset"], row["dataset_key"] = dataset
            rows.append(row)
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
