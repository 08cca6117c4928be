"""Known Hub datasets whose columns and splits need naming: GLUE's configs.

``load_dataset("glue", "mnli")`` has no ``validation`` split (it has ``validation_matched``
and ``validation_mismatched``), STS-B's ``label`` is a float score, and a test split carries
label -1. :func:`apply_layout` fills what a :class:`~core.specs.DatasetSpec` leaves unset
from the table below, so ``--dataset glue --dataset-config mnli`` needs no other flag; what
the spec names itself wins.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePath

from core.specs import DatasetSpec
from core.tables import DataError

GLUE_IDS = ("glue", "nyu-mll/glue")


@dataclass(frozen=True)
class HubLayout:
    """How one Hub config is read: its text column(s), label column, validation split and
    task."""

    text_column: str
    text_pair_column: str | None
    validation: str
    task: str = "classification"
    label_column: str = "label"


GLUE: dict[str, HubLayout] = {
    "cola": HubLayout("sentence", None, "validation"),
    "sst2": HubLayout("sentence", None, "validation"),
    "mrpc": HubLayout("sentence1", "sentence2", "validation"),
    "qqp": HubLayout("question1", "question2", "validation"),
    "stsb": HubLayout("sentence1", "sentence2", "validation", task="regression"),
    "mnli": HubLayout("premise", "hypothesis", "validation_matched"),
    "mnli_matched": HubLayout("premise", "hypothesis", "validation"),
    "mnli_mismatched": HubLayout("premise", "hypothesis", "validation"),
    "qnli": HubLayout("question", "sentence", "validation"),
    "rte": HubLayout("sentence1", "sentence2", "validation"),
    "wnli": HubLayout("sentence1", "sentence2", "validation"),
}


def is_glue(name: str) -> bool:
    """True for the GLUE Hub ids, and for a local copy in a folder named ``glue``."""
    name = name.strip().rstrip("/")
    return name.lower() in GLUE_IDS or PurePath(name).name.lower() == "glue"


def apply_layout(spec: DatasetSpec) -> DatasetSpec:
    """``spec`` with a known dataset's columns, validation split and task filled in.

    Raises:
        DataError: GLUE without a config, or with one it does not have.
    """
    if not is_glue(spec.name):
        return spec
    if not spec.config:
        raise DataError(f"'{spec.name}' needs a config (dataset_config): one of "
                        f"{', '.join(GLUE)}")
    layout = GLUE.get(spec.config.lower())
    if layout is None:
        raise DataError(f"'{spec.name}' has no config '{spec.config}'; known configs: "
                        f"{', '.join(GLUE)}")
    filled: dict[str, object] = {}
    if spec.text_column is None and spec.text_pair_column is None:
        filled.update(text_column=layout.text_column, text_pair_column=layout.text_pair_column)
    if spec.label_column is None:
        filled["label_column"] = layout.label_column
    if spec.validation is None:
        filled["validation"] = layout.validation
    if spec.task == "auto":
        filled["task"] = layout.task
    return replace(spec, config=spec.config.lower(), **filled)
