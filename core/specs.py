"""Typed job specifications: what a run is asked to do, validated and saved with the run.

A :class:`JobSpec` is built by the CLI, the UI or the HTTP API, validated in
``__post_init__`` (clear messages, no training started on a bad spec), written to
``runs/<id>/spec.json`` and read back by :func:`JobSpec.from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

BUNDLED_DATASET = "bbc_news"
BUNDLED_TEACHER = "bundled:minilm"


class SpecError(ValueError):
    """A job specification that cannot run, with a message that says why."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where the labelled texts come from.

    ``name`` is ``bbc_news`` (bundled), a local CSV/TSV/JSONL/Parquet file or folder, or a
    Hub dataset id. ``validation`` is a separate validation file (or, for a Hub dataset,
    the split name). ``transfer`` is a file of unlabelled texts, or ``rest`` for the
    training texts beyond ``max_train_examples``.
    """

    name: str = BUNDLED_DATASET
    validation: str | None = None
    config: str | None = None
    train_split: str = "train"
    text_column: str | None = None
    label_column: str | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    transfer: str | None = None
    max_transfer_examples: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("dataset: a name, path or Hub id is required")
        for attr in ("max_train_examples", "max_eval_examples", "max_transfer_examples"):
            value = getattr(self, attr)
            if value is not None and value < 1:
                raise SpecError(f"dataset.{attr} must be at least 1, got {value}")
        if self.transfer == "rest" and self.max_train_examples is None:
            raise SpecError(
                "dataset.transfer='rest' uses the training texts beyond max_train_examples: "
                "set max_train_examples too"
            )


@dataclass(frozen=True)
class StudentSpec:
    """How the student is made.

    ``extract`` (DistilBERT recipe): copy the teacher's embeddings, head and the layers in
    ``layers`` (default every other one). ``pretrained``: load ``checkpoint``, which must
    share the teacher's tokenizer. ``fresh``: a new config of ``num_layers`` x
    ``hidden_size`` with ``num_heads`` heads, randomly initialised.
    """

    kind: str = "extract"
    layers: tuple[int, ...] | None = None
    checkpoint: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    num_heads: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("extract", "pretrained", "fresh"):
            raise SpecError(
                f"student.kind must be 'extract', 'pretrained' or 'fresh', got {self.kind!r}"
            )
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
            if not self.layers:
                raise SpecError("student.layers must name at least one teacher layer")
            if len(set(self.layers)) != len(self.layers) or any(i < 0 for i in self.layers):
                raise SpecError(
                    f"student.layers must be distinct, non-negative indices, got {self.layers}"
                )
        if self.kind == "pretrained" and not self.checkpoint:
            raise SpecError("student.kind='pretrained' needs student.checkpoint")
        if self.kind == "fresh":
            if not self.num_layers or self.num_layers < 1:
                raise SpecError("student.kind='fresh' needs num_layers >= 1")
            if self.hidden_size and self.num_heads and self.hidden_size % self.num_heads:
                raise SpecError(
                    f"student.hidden_size ({self.hidden_size}) must be divisible by "
                    f"num_heads ({self.num_heads})"
                )


@dataclass(frozen=True)
class Recipe:
    """Loss weights of distillation (see ``core/losses.py`` for the formula).

    loss = alpha_kd * T^2 * KL(p_teacher(T) || p_student(T)) + alpha_ce * CE(labels)
           + alpha_cos * (1 - cos(h_student, h_teacher))
    """

    name: str = "distilbert"
    alpha_kd: float = 0.5
    alpha_ce: float = 0.5
    alpha_cos: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        for attr in ("alpha_kd", "alpha_ce", "alpha_cos"):
            if getattr(self, attr) < 0:
                raise SpecError(f"recipe.{attr} must be >= 0, got {getattr(self, attr)}")
        if self.temperature <= 0:
            raise SpecError(f"recipe.temperature must be > 0, got {self.temperature}")
        if self.alpha_kd + self.alpha_ce + self.alpha_cos == 0:
            raise SpecError("recipe: at least one loss weight must be positive")

    @property
    def needs_teacher(self) -> bool:
        return self.alpha_kd > 0 or self.alpha_cos > 0

    @property
    def needs_hidden_states(self) -> bool:
        return self.alpha_cos > 0


RECIPES: dict[str, Recipe] = {
    # DistilBERT (Sanh et al. 2019): soft targets, hard labels and hidden-state cosine.
    "distilbert": Recipe("distilbert", alpha_kd=0.5, alpha_ce=0.5, alpha_cos=1.0, temperature=2.0),
    # Hinton et al. 2015: soft targets and hard labels only (teacher logits can be cached).
    "logits": Recipe("logits", alpha_kd=0.5, alpha_ce=0.5, alpha_cos=0.0, temperature=2.0),
    # No teacher: the same loop with cross-entropy alone; what distillation is measured against.
    "baseline": Recipe("baseline", alpha_kd=0.0, alpha_ce=1.0, alpha_cos=0.0, temperature=1.0),
}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by teacher fine-tuning, distillation and the baseline."""

    preset: str = "quick"
    epochs: int = 2
    teacher_epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    teacher_learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    grad_accum_steps: int = 1
    max_length: int = 64
    # Padded tokens per inference batch (validation, teacher logits, scoring); 0 is the
    # device's default (core.devices.default_batch_tokens). Lower it if a GPU runs out of memory.
    eval_batch_tokens: int = 0
    checkpoint_every_steps: int = 0  # 0: once per epoch
    compile: bool = False

    def __post_init__(self) -> None:
        for attr in ("epochs", "batch_size", "grad_accum_steps", "max_length"):
            if getattr(self, attr) < 1:
                raise SpecError(f"train.{attr} must be at least 1, got {getattr(self, attr)}")
        if self.eval_batch_tokens < 0:
            raise SpecError(f"train.eval_batch_tokens must be >= 0 (0: the device's default), "
                            f"got {self.eval_batch_tokens}")
        if self.teacher_epochs < 0:
            raise SpecError(f"train.teacher_epochs must be >= 0, got {self.teacher_epochs}")
        if not 0 < self.learning_rate < 1 or not 0 < self.teacher_learning_rate < 1:
            raise SpecError("train.learning_rate and teacher_learning_rate must be in (0, 1)")
        if not 0 <= self.warmup_ratio < 1:
            raise SpecError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


# Chosen by measurement (SST-2 4k slice, 1 epoch, MiniLM: 80.4% at lr 5e-5, 82.8% at 1e-4).
PRESETS: dict[str, TrainConfig] = {
    # A 2-core CPU: the default BBC News job (1,700 articles, teacher + student + baseline)
    # finishes in minutes. 64 tokens (title and opening) keep topic accuracy near 96%.
    "quick": TrainConfig("quick", epochs=2, teacher_epochs=2, batch_size=32, learning_rate=1e-4,
                         teacher_learning_rate=1e-4, max_length=64),
    # A GPU: longer sequences and more epochs.
    "full": TrainConfig("full", epochs=4, teacher_epochs=3, batch_size=32, learning_rate=5e-5,
                        teacher_learning_rate=5e-5, max_length=256),
}


@dataclass(frozen=True)
class JobSpec:
    """A whole job: data, teacher, student, recipe, optimisation, device."""

    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    teacher: str = BUNDLED_TEACHER
    student: StudentSpec = field(default_factory=StudentSpec)
    recipe: Recipe = field(default_factory=lambda: RECIPES["distilbert"])
    train: TrainConfig = field(default_factory=lambda: PRESETS["quick"])
    baseline: bool = True
    seed: int = 42
    device: str = "auto"
    name: str = ""

    def __post_init__(self) -> None:
        if not self.teacher:
            raise SpecError("teacher: a Hub id, local folder, run model or 'bundled:minilm'")
        if self.device not in ("auto", "cpu") and not self.device.startswith(("cuda", "mps")):
            raise SpecError(f"device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """Build a spec from a (possibly partial) dict, e.g. a JSON/YAML spec file."""
        data = dict(data)
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise SpecError(f"unknown job spec keys: {sorted(unknown)}")
        recipe = data.get("recipe", "distilbert")
        train = data.get("train", "quick")
        return cls(
            dataset=_build(DatasetSpec, data.get("dataset", {}), "dataset"),
            teacher=data.get("teacher", BUNDLED_TEACHER),
            student=_build(StudentSpec, data.get("student", {}), "student"),
            recipe=_with_preset(RECIPES, Recipe, recipe, "recipe"),
            train=_with_preset(PRESETS, TrainConfig, train, "train", key="preset"),
            baseline=bool(data.get("baseline", True)),
            seed=int(data.get("seed", 42)),
            device=str(data.get("device", "auto")),
            name=str(data.get("name", "")),
        )


def _build(cls: type, data: dict[str, Any] | str, where: str) -> Any:
    if isinstance(data, str):
        data = {"name": data}
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise SpecError(f"unknown {where} keys: {sorted(unknown)}")
    return cls(**data)


def _with_preset(
    presets: dict[str, Any], cls: type, value: str | dict[str, Any], where: str, key: str = "name"
) -> Any:
    """A preset by name, or a dict whose ``name``/``preset`` picks the preset it overrides."""
    if isinstance(value, str):
        value = {key: value}
    value = dict(value)
    preset_name = value.get(key, next(iter(presets)))
    if preset_name not in presets:
        raise SpecError(f"unknown {where} preset {preset_name!r}; choose from {sorted(presets)}")
    unknown = set(value) - {f.name for f in fields(cls)}
    if unknown:
        raise SpecError(f"unknown {where} keys: {sorted(unknown)}")
    return dataclasses.replace(presets[preset_name], **value)
