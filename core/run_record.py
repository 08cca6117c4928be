"""The typed run record: a run's state, its model references and its metrics.

``metrics.json`` stays plain JSON; :class:`RunMetrics` and :class:`ModelMetrics` read it
into typed fields and write it back unchanged (``from_dict(d).to_dict() == d``): keys they
do not know are kept in ``extra``, older runs' missing keys read as None, key order and
explicit nulls survive. The column names below are the one definition every table uses.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, TypeVar

from core.tasks import CLASSIFICATION, MAIN_METRIC, METRIC_TITLES, REGRESSION  # noqa: F401
from core.texts import PAIR_COLUMN  # noqa: F401  (a pair run's second text column)

INT8_ROLE = "student_int8"  # the dynamic-int8 copy of the student, scored on CPUs

ROLES = ("teacher", "student", "student_int8", "baseline")
# Encoders a run saves for other jobs to start from (general distillation's student).
ENCODER_ROLES = ("general",)
# Run ids are plain folder names: no path separators, no leading '.' or '_' (_uploads, _cache).
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RUN_REF_PREFIX = "run:"


class RunError(ValueError):
    """A run that does not exist or cannot be used, with a message that says which."""


class RunState(str, Enum):
    """A run's ``status.json`` state; compares equal to its text (``RunState.DONE == "done"``)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # read for a running run whose worker is gone

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


STATES = tuple(state.value for state in RunState)
ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING)
FINISHED_STATES = (RunState.DONE, RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED)
RESUMABLE_STATES = (RunState.INTERRUPTED, RunState.CANCELLED, RunState.FAILED)


@dataclass(frozen=True)
class ModelRef:
    """A model saved by a run, written ``run:<run_id>/<role>`` everywhere (UI, API, CLI).

    ``parse`` reads the text form, ``str()`` writes it; nothing else spells it out.
    """

    run_id: str
    role: str

    def __str__(self) -> str:
        return f"{RUN_REF_PREFIX}{self.run_id}/{self.role}"

    @staticmethod
    def is_run_ref(text: str) -> bool:
        """Whether ``text`` is meant as a run model (it starts with ``run:``)."""
        return isinstance(text, str) and text.strip().startswith(RUN_REF_PREFIX)

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``run:<run_id>/<role>`` as a ModelRef.

        Raises:
            RunError: not a run model, a run id that is not a plain folder name, or an
                unknown role.
        """
        body = text.strip()[len(RUN_REF_PREFIX):] if cls.is_run_ref(text) else ""
        run_id, _, role = body.partition("/")
        if not RUN_ID_PATTERN.match(run_id) or role not in ROLES + ENCODER_ROLES:
            raise RunError(f"{text!r}: a run model is written run:<run_id>/<role>, role one "
                           f"of {', '.join(ROLES + ENCODER_ROLES)}")
        return cls(run_id, role)


# Column names of a model's figures (metrics.json, timings.jsonl and every table) ----------
ACCURACY, MACRO_F1 = "accuracy", "macro_f1"
SPEARMAN, PEARSON, MSE = "spearman", "pearson", "mse"
PARAMS, PARAMS_NON_EMBEDDING, SIZE_MB = "params", "params_non_embedding", "size_mb"
LATENCY_P50, LATENCY_P95 = "latency_ms_p50", "latency_ms_p95"
THROUGHPUT = "throughput_per_s"
SPEEDUP, SPEEDUP_SPREAD = "speedup_vs_teacher", "speedup_spread"
DEVICE, PRECISION = "device", "precision"

CLASSIFICATION_FIELDS = (ACCURACY, MACRO_F1)
REGRESSION_FIELDS = (SPEARMAN, PEARSON, MSE)
QUALITY_FIELDS = CLASSIFICATION_FIELDS + REGRESSION_FIELDS
SIZE_FIELDS = (PARAMS, PARAMS_NON_EMBEDDING, SIZE_MB)
SPEED_FIELDS = (LATENCY_P50, LATENCY_P95, THROUGHPUT, SPEEDUP, SPEEDUP_SPREAD)
TIMED_ON_FIELDS = (DEVICE, PRECISION)
# What a re-timing (``distillab time``, timings.jsonl) supersedes of a model's scoring.
RETIMED_FIELDS = SPEED_FIELDS + TIMED_ON_FIELDS
# A task's main metric and its companion: accuracy and macro-F1, or Spearman and MSE.
QUALITY_PAIR = {CLASSIFICATION: (ACCURACY, MACRO_F1), REGRESSION: (SPEARMAN, MSE)}

# One leaderboard row per model: its figures, what it is measured against, its data.
LEADERBOARD_COLUMNS = ["run_id", "role", "model", *CLASSIFICATION_FIELDS, *SIZE_FIELDS,
                       *SPEED_FIELDS, "accuracy_retained", *TIMED_ON_FIELDS, "timed",
                       "machine_busy", "task", "metric", "score", "score_retained", "dataset",
                       "dataset_key", *REGRESSION_FIELDS]
# The trade-offs table: the leaderboard's columns a Pareto front is drawn over.
TRADEOFF_NUMERIC = [*CLASSIFICATION_FIELDS, LATENCY_P50, *SIZE_FIELDS, THROUGHPUT, "score"]
TRADEOFF_COLUMNS = ["model", "run_id", "role", *TRADEOFF_NUMERIC[:-1], DEVICE, "score",
                    "metric", "task", "dataset", "dataset_key"]


def quality_pair(task: str | None) -> tuple[str, str]:
    """The main metric of ``task`` and its companion (a regression's, else a classifier's)."""
    return QUALITY_PAIR[REGRESSION if task == REGRESSION else CLASSIFICATION]


def main_metric(task: str | None) -> str:
    """The metric that ranks models of ``task``: Spearman for a regression, else accuracy."""
    return MAIN_METRIC[REGRESSION if task == REGRESSION else CLASSIFICATION]


def scalar_fields(metrics: dict[str, Any] | ModelMetrics) -> dict[str, Any]:
    """A model's metrics without the nested ones (per-class scores, confusion matrix,
    what each timer includes): one table row, one JSON object of figures."""
    if isinstance(metrics, ModelMetrics):
        metrics = metrics.to_dict()
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}


R = TypeVar("R", bound="_Record")
_DEFAULTS: dict[type, dict[str, Any]] = {}  # per record type: each field's default


@dataclass
class _Record:
    """Typed fields over one JSON object that writes back exactly what it read."""

    extra: dict[str, Any] = field(default_factory=dict)
    _keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    NESTED: ClassVar[dict[str, type[_Record]]] = {}  # field -> record type of its values

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        if cls not in _DEFAULTS:
            _DEFAULTS[cls] = {
                f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
                else f.default for f in dataclasses.fields(cls) if f.name not in ("extra", "_keys")}
        return tuple(_DEFAULTS[cls])

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any] | None) -> R:
        """Read ``data``: known keys into fields (missing ones None), the rest into ``extra``."""
        data = data or {}
        names = cls._names()
        known = {k: v for k, v in data.items() if k in names}
        for name, kind in cls.NESTED.items():
            if isinstance(known.get(name), dict):
                known[name] = {key: kind.from_dict(value) for key, value in known[name].items()}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names},
                   _keys=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: read keys in their order (nulls kept), then fields set since
        (those left at their default are not written), then new ``extra`` keys."""
        values = {name: getattr(self, name) for name in self._names()}
        unset = {name for name, value in values.items()
                 if name not in self._keys and value == _DEFAULTS[type(self)][name]}
        for name in self.NESTED:
            if isinstance(values[name], dict):
                values[name] = {key: value.to_dict() for key, value in values[name].items()}
        out: dict[str, Any] = {}
        for key in (*self._keys, *values, *self.extra):
            if key in out or key in unset:
                continue
            if key in values:
                out[key] = values[key]
            elif key in self.extra:
                out[key] = self.extra[key]
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """A figure by its column name, typed field or extra."""
        value = getattr(self, key) if key in self._names() else self.extra.get(key)
        return default if value is None else value


@dataclass
class ModelMetrics(_Record):
    """One model's figures in ``metrics.json`` (``core/scoring.py``, ``core/timing.py``)."""

    task: str | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    spearman: float | None = None
    pearson: float | None = None
    mse: float | None = None
    per_class: dict[str, dict[str, float]] | None = None
    confusion_matrix: list[list[int]] | None = None
    predicted_classes: int | None = None
    params: int | None = None
    params_non_embedding: int | None = None
    num_layers: int | None = None
    size_mb: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_p50_spread: float | None = None
    throughput_per_s: float | None = None
    throughput_spread: float | None = None
    speedup_vs_teacher: float | None = None
    speedup_spread: float | None = None
    device: str | None = None
    precision: str | None = None
    rounds: int | None = None
    machine_busy: bool | None = None
    timed_in: str | None = None

    def scalars(self) -> dict[str, Any]:
        """The figures without the nested ones (see :func:`scalar_fields`)."""
        return scalar_fields(self)

    def speedup(self, teacher: ModelMetrics | None = None) -> float | None:
        """The speed-up over ``teacher`` timed in rounds, else (runs scored before that)
        the ratio of the two p50 latencies; None when untimed."""
        if self.speedup_vs_teacher is not None:
            return self.speedup_vs_teacher
        if teacher is not None and teacher.latency_ms_p50 and self.latency_ms_p50:
            return teacher.latency_ms_p50 / self.latency_ms_p50
        return None

    def kept(self, teacher: ModelMetrics, metric: str) -> float | None:
        """This model's ``metric`` as a share of the teacher's (None where either lacks it)."""
        mine, theirs = self.get(metric), teacher.get(metric)
        return mine / theirs if theirs and mine is not None else None


@dataclass
class RunMetrics(_Record):
    """A run's ``metrics.json``: every scored model and what they were scored on (a general
    distillation run writes other keys, kept in ``extra``)."""

    NESTED: ClassVar[dict[str, type[_Record]]] = {"models": ModelMetrics}

    models: dict[str, ModelMetrics] = field(default_factory=dict)
    kind: str | None = None
    task: str | None = None
    label_names: list[str] | None = None
    validation_size: int | None = None
    max_length: int | None = None
    dataset: str | None = None
    validation_fingerprint: str | None = None
    augmentation: dict[str, Any] | None = None

    def model(self, role: str) -> ModelMetrics:
        """The figures of ``role`` (empty ones where it was not scored)."""
        return self.models.get(role) or ModelMetrics()

    def task_of(self, role: str) -> str:
        """The task ``role`` was scored on: its own, else the run's, else classification."""
        return self.model(role).task or self.task or CLASSIFICATION


@dataclass
class RunTiming(_Record):
    """One re-timing of a run's models (a line of ``timings.jsonl``, ``distillab time``)."""

    NESTED: ClassVar[dict[str, type[_Record]]] = {"models": ModelMetrics}

    models: dict[str, ModelMetrics] = field(default_factory=dict)
    time: str | None = None
    device: str | None = None
    rounds: int | None = None
    machine_busy: bool | None = None
