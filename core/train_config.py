"""A job's optimisation settings: :class:`TrainConfig`, its two stages' epochs and learning
rates (:class:`StageSettings`) and the size presets. Part of the job spec (``core.specs``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.spec_checks import SpecError, check_field_types
from core.spec_parsing import refuse_unknown, section_dict, with_preset

__all__ = ["PRESETS", "STAGE_KEYS", "StageSettings", "TrainConfig"]


@dataclass(frozen=True)
class StageSettings:
    """What differs between a job's training stages: epochs and learning rate."""

    epochs: int
    learning_rate: float

    def check(self, where: str, min_epochs: int) -> None:
        """Raise :class:`SpecError` naming ``where`` (``train.teacher``) for a bad value."""
        check_field_types(self, where)
        if self.epochs < min_epochs:
            raise SpecError(f"{where}.epochs must be at least {min_epochs}, got {self.epochs}")
        if not 0 < self.learning_rate < 1:
            raise SpecError(f"{where}.learning_rate must be in (0, 1), got "
                            f"{self.learning_rate}")


# The flat keys a spec file (and the Distil form) may use for the stages' settings.
STAGE_KEYS: dict[str, tuple[str, str]] = {
    "epochs": ("student", "epochs"), "learning_rate": ("student", "learning_rate"),
    "teacher_epochs": ("teacher", "epochs"),
    "teacher_learning_rate": ("teacher", "learning_rate")}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by teacher fine-tuning, distillation and the baseline.

    ``student`` holds the epochs and learning rate of the student, the baseline and general
    distillation; ``teacher`` those of the teacher's fine-tuning (0 epochs: none)."""

    preset: str = "quick"
    student: StageSettings = StageSettings(epochs=2, learning_rate=1e-4)
    teacher: StageSettings = StageSettings(epochs=2, learning_rate=1e-4)
    batch_size: int = 32
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
        check_field_types(self, "train")
        for name, min_epochs in (("student", 1), ("teacher", 0)):
            stage = getattr(self, name)
            if not isinstance(stage, StageSettings):
                raise SpecError(f"train.{name} must be an object with epochs and "
                                f"learning_rate, got {stage!r}")
            stage.check(f"train.{name}", min_epochs)
        for attr in ("batch_size", "grad_accum_steps", "max_length"):
            if getattr(self, attr) < 1:
                raise SpecError(f"train.{attr} must be at least 1, got {getattr(self, attr)}")
        if self.eval_batch_tokens < 0:
            raise SpecError(f"train.eval_batch_tokens must be >= 0 (0: the device's default), "
                            f"got {self.eval_batch_tokens}")
        if not 0 <= self.warmup_ratio < 1:
            raise SpecError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        # Below these, AdamW raises in the worker, clipping flips the gradients, or a
        # negative interval checkpoints by its absolute value.
        if self.weight_decay < 0:
            raise SpecError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm <= 0:
            raise SpecError(f"train.max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.checkpoint_every_steps < 0:
            raise SpecError(f"train.checkpoint_every_steps must be >= 0 (0: once per epoch), "
                            f"got {self.checkpoint_every_steps}")

    def stage(self, name: str) -> StageSettings:
        """The settings of stage ``name``: the teacher's fine-tuning has its own epochs and
        learning rate; the student, the baseline and general distillation share the rest."""
        return self.teacher if name == "teacher" else self.student

    @classmethod
    def from_value(cls, value: Any) -> TrainConfig:
        """A preset name, or a dict of settings over its ``preset`` (default ``quick``).

        The stages are ``{"student": {"epochs": 3}, "teacher": {...}}``, or the flat keys
        ``epochs``, ``learning_rate``, ``teacher_epochs``, ``teacher_learning_rate`` (the
        Distil form's fields and the spec files written before the stages were nested)."""
        if isinstance(value, cls):
            return value
        value = section_dict(cls, value, "train", "preset", extra=STAGE_KEYS)
        stages: dict[str, dict[str, Any]] = {}
        for name in ("student", "teacher"):
            given = value.pop(name, {})
            if isinstance(given, StageSettings):
                given = dataclasses.asdict(given)
            if not isinstance(given, Mapping):
                raise SpecError(f"train.{name} must be an object with epochs and "
                                f"learning_rate, got {given!r}")
            refuse_unknown(StageSettings, given, f"train.{name}")
            stages[name] = dict(given)
        flat_keys = [flat for flat in STAGE_KEYS if flat in value]
        for flat in flat_keys:
            name, key = STAGE_KEYS[flat]
            if key in stages[name]:
                raise SpecError(f"train: give {flat} or {name}.{key}, not both")
            stages[name][key] = value.pop(flat)
        try:
            preset = with_preset(PRESETS, cls, value, "train", key="preset")
            return dataclasses.replace(preset, **{
                name: dataclasses.replace(preset.stage(name), **given)
                for name, given in stages.items() if given})
        except SpecError as error:
            # Name a value by the key its spec used: train.epochs, not train.student.epochs.
            message = str(error)
            for flat in flat_keys:
                message = message.replace("train.{}.{}".format(*STAGE_KEYS[flat]),
                                          f"train.{flat}")
            raise SpecError(message) from None

    def stage_values(self) -> dict[str, int | float]:
        """The stages' settings under their flat keys (the Distil form's fields)."""
        return {flat: getattr(self.stage(name), key)
                for flat, (name, key) in STAGE_KEYS.items()}


# Chosen by measurement (SST-2 4k slice, 1 epoch, MiniLM: 80.4% at lr 5e-5, 82.8% at 1e-4).
PRESETS: dict[str, TrainConfig] = {
    # A 2-core CPU: the default BBC News job (1,700 articles, teacher + student + baseline)
    # finishes in minutes. 64 tokens (title and opening) keep topic accuracy near 96%.
    "quick": TrainConfig("quick", student=StageSettings(2, 1e-4),
                         teacher=StageSettings(2, 1e-4), batch_size=32, max_length=64),
    # A GPU: longer sequences and more epochs.
    "full": TrainConfig("full", student=StageSettings(4, 5e-5),
                        teacher=StageSettings(3, 5e-5), batch_size=32, max_length=256),
}
