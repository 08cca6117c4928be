"""Typed job specifications: what a run is asked to do, validated and saved with the run.

A :class:`JobSpec` is built by the CLI, the UI or the HTTP API, validated in
``__post_init__`` (clear messages, no training started on a bad spec), written to
``runs/<id>/spec.json`` and read back by :func:`JobSpec.from_dict`. The field type checks
live in ``core.spec_checks``, the building of sections from dicts in ``core.spec_parsing``,
the optimisation settings (``TrainConfig``, its stages, the presets) in ``core.train_config``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.spec_checks import SpecError, check_field_types, layer_indices
from core.spec_parsing import build_section, refuse_unknown, with_preset
from core.train_config import PRESETS, STAGE_KEYS, StageSettings, TrainConfig

__all__ = ["BUNDLED_DATASET", "BUNDLED_TEACHER", "PRESETS", "RECIPES", "STAGE_KEYS",
           "TIMING_LEVELS", "DatasetSpec", "JobSpec", "Recipe", "SpecError", "StageSettings",
           "StudentSpec", "TrainConfig"]

BUNDLED_DATASET = "bbc_news"
BUNDLED_TEACHER = "bundled:minilm"


def _check_augment(spec: Any) -> None:
    from core.augment import MAX_AUGMENT, METHODS

    if not 0 <= spec.augment <= MAX_AUGMENT:
        raise SpecError(f"dataset.augment must be 0 (none) to {MAX_AUGMENT} variants per "
                        f"training text, got {spec.augment}")
    if spec.augment_method not in METHODS:
        raise SpecError(f"dataset.augment_method must be one of {', '.join(METHODS)}, got "
                        f"{spec.augment_method!r}")
    if spec.augment and spec.augment_method == "mlm" and not spec.augment_mlm:
        raise SpecError("dataset.augment_method 'mlm' needs dataset.augment_mlm, a masked-"
                        "language model (e.g. bert-base-uncased)")


@dataclass(frozen=True)
class DatasetSpec:
    """Where the labelled texts come from.

    ``name`` is ``bbc_news`` (bundled), a local CSV/TSV/JSONL/Parquet file or folder, or a
    Hub dataset id. ``validation`` is a separate validation file (or, for a Hub dataset,
    the split name). ``transfer`` is a file of unlabelled texts, or ``rest`` for the
    training texts beyond ``max_train_examples``. ``augment`` adds that many variants of
    every training text to the transfer set (``augment_method`` ``tang``, or ``mlm`` with
    the masked-language model ``augment_mlm``; see ``core.augment``).
    """

    name: str = BUNDLED_DATASET
    validation: str | None = None
    config: str | None = None
    train_split: str = "train"
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    transfer: str | None = None
    max_transfer_examples: int | None = None
    # auto: class ids/names are classification, non-integer numbers a regression (the run
    # says which it chose for integer scores); classification or regression decides.
    task: str = "auto"
    augment: int = 0
    augment_method: str = "tang"
    augment_mlm: str | None = None

    def __post_init__(self) -> None:
        check_field_types(self, "dataset")
        if self.task not in ("auto", "classification", "regression"):
            raise SpecError(f"dataset.task must be auto, classification or regression, got "
                            f"{self.task!r}")
        _check_augment(self)
        if not self.name.strip():
            raise SpecError("dataset: a name, path or Hub id is required")
        for attr in ("text_column", "text_pair_column", "label_column"):
            if getattr(self, attr) is not None and not getattr(self, attr).strip():
                object.__setattr__(self, attr, None)  # a blank form field: detect it
        if self.text_pair_column is not None:
            if self.text_column is None:
                raise SpecError("dataset.text_pair_column needs dataset.text_column (the first "
                                "text of each pair)")
            if self.text_pair_column == self.text_column:
                raise SpecError(f"dataset.text_column and text_pair_column are both "
                                f"{self.text_column!r}; a pair needs two columns")
        for attr in ("max_train_examples", "max_eval_examples", "max_transfer_examples"):
            value = getattr(self, attr)
            if value is not None and value < 1:
                raise SpecError(f"dataset.{attr} must be at least 1, got {value}")
        if self.transfer == "rest" and self.max_train_examples is None:
            raise SpecError(
                "dataset.transfer='rest' uses the training texts beyond max_train_examples: "
                "set max_train_examples too"
            )


# Which teacher layers a student keeps: the DistilBERT rule and the size presets (the UI's
# student sizes, the CLI's --student-size). Pure arithmetic, so the UI needs no model.

def default_student_layers(num_teacher_layers: int) -> list[int]:
    """The teacher layers a DistilBERT-style student keeps: half of them, every other one.

    Rule: the student has ``n = max(1, T // 2)`` layers. Small students (``n <= 3``) keep the
    even layers ``0, 2, 4, ...``. From ``n >= 4`` on, as the paper's 12 -> 6 choice does,
    the lower half counts up from layer 0 and the upper half counts down from the top layer,
    both by two, so the layer feeding the head is kept: 12 -> [0, 2, 4, 7, 9, 11],
    24 -> [0, 2, ..., 10, 13, 15, ..., 23]; 6 -> [0, 2, 4], 4 -> [0, 2], 2 and 1 -> [0].

    Args:
        num_teacher_layers: the teacher's layer count (>= 1).
    Returns:
        Ascending teacher layer indices.
    """
    if num_teacher_layers < 1:
        raise SpecError(f"a teacher needs at least one layer, got {num_teacher_layers}")
    n = max(1, num_teacher_layers // 2)
    if n <= 3:
        return [2 * i for i in range(n)]
    lower = (n + 1) // 2
    top = num_teacher_layers - 1
    return [2 * i for i in range(lower)] + [top - 2 * j for j in reversed(range(n - lower))]


STUDENT_SIZES = {"half": 2, "third": 3, "quarter": 4}  # name -> teacher layers per student layer


def layers_for_size(size: str, num_teacher_layers: int) -> list[int]:
    """The teacher layers a student of ``size`` keeps (the UI's presets, the CLI's
    ``--student-size``).

    ``half`` is the DistilBERT rule (:func:`default_student_layers`); ``third`` and
    ``quarter`` keep ``T // 3`` or ``T // 4`` layers (at least one) spread evenly from the
    first to the last, so the layer feeding the head is kept: 12 -> [0, 4, 7, 11] (third),
    [0, 6, 11] (quarter); 6 -> [0, 5] (third), [0] (quarter).

    Raises:
        SpecError: an unknown size.
    """
    if size not in STUDENT_SIZES:
        raise SpecError(f"student size must be one of {', '.join(STUDENT_SIZES)}, got "
                         f"{size!r}")
    if size == "half":
        return default_student_layers(num_teacher_layers)
    keep = max(1, num_teacher_layers // STUDENT_SIZES[size])
    if keep == 1:
        return [0]
    step = (num_teacher_layers - 1) / (keep - 1)
    return sorted({round(i * step) for i in range(keep)})


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
        check_field_types(self, "student")
        if self.kind not in ("extract", "pretrained", "fresh"):
            raise SpecError(
                f"student.kind must be 'extract', 'pretrained' or 'fresh', got {self.kind!r}"
            )
        if self.layers is not None:
            layers = layer_indices(self.layers)
            object.__setattr__(self, "layers", layers)
            if not layers:
                raise SpecError("student.layers must name at least one teacher layer")
            if any(i < 0 for i in layers):
                raise SpecError(f"student.layers must be non-negative indices, got {layers}")
            # DistilBERT keeps teacher layers in order, each once (extract_student needs it).
            if list(layers) != sorted(set(layers)):
                raise SpecError(f"student.layers must be strictly increasing teacher layer "
                                f"indices, each once, got {layers}")
        for attr in ("hidden_size", "num_heads"):
            value = getattr(self, attr)
            if value is not None and value < 1:
                raise SpecError(f"student.{attr} must be at least 1, got {value}")
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
        check_field_types(self, "recipe")
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


TIMING_LEVELS = ("full", "quick", "off")


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
    # How the scored models are timed: full (3 interleaved rounds), quick (1 short round),
    # off (not timed: no latency or speed-up); "" = $DISTILLAB_TIMING, else full.
    timing: str = ""
    # task: distil for the dataset's labels; general: distil on the dataset's texts alone,
    # before any task (core.general), leaving the student as run:<id>/general.
    kind: str = "task"
    # General jobs without an MLM head: add MiniLM's self-attention transfer to the
    # representation loss (off by default: it cost a point on SST-2, docs/RESULTS.md).
    attention_transfer: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("task", "general"):
            raise SpecError(f"kind must be task or general, got {self.kind!r}")
        if self.attention_transfer and self.kind != "general":
            raise SpecError("attention_transfer applies to general jobs (kind: general) only")
        if self.timing not in ("", *TIMING_LEVELS):
            raise SpecError(f"timing must be one of {', '.join(TIMING_LEVELS)}, got "
                            f"{self.timing!r}")
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise SpecError(f"{name} must be a {cls.__name__}, "
                                f"got {getattr(self, name)!r}")
        check_field_types(self, "")
        if not self.teacher.strip():
            raise SpecError("teacher: a Hub id, local folder, run model or 'bundled:minilm'")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,2})?", self.device):
            raise SpecError(f"device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """Build a spec from a (possibly partial) dict, e.g. a JSON/YAML spec file.

        Raises:
            SpecError: an unknown key, or a value of the wrong type or out of range,
                named by its place in the spec (``train.epochs``, ``seed``, ...).
        """
        if not isinstance(data, Mapping):
            raise SpecError(f"a job spec is an object of JobSpec fields, "
                            f"got {type(data).__name__}")
        refuse_unknown(cls, data, "job spec")
        scalars = {k: data[k] for k in ("teacher", "baseline", "seed", "device", "name",
                                        "timing", "kind", "attention_transfer") if k in data}
        return cls(
            dataset=build_section(DatasetSpec, data.get("dataset", {}), "dataset", key="name"),
            student=build_section(StudentSpec, data.get("student", {}), "student", key="kind"),
            recipe=with_preset(RECIPES, Recipe, data.get("recipe", "distilbert"), "recipe"),
            train=TrainConfig.from_value(data.get("train", "quick")),
            **scalars,
        )


_SECTIONS: dict[str, type] = {"dataset": DatasetSpec, "student": StudentSpec,
                              "recipe": Recipe, "train": TrainConfig}
