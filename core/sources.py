"""What every data source (local files, the Hub) hands to ``core.data``: the :class:`Loaded`
rows, their labels encoded by :func:`encode_targets`, and the single/pair shape check."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.specs import DatasetSpec
from core.tables import DataError, encode_labels
from core.tasks import CLASSIFICATION, REGRESSION, choose_task, parse_targets
from core.texts import Text, has_pairs

logger = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A source's rows before the size caps: what each loader returns."""

    source: str
    train_texts: list[Text]
    train_labels: list[Any]
    validation_texts: list[Text]
    validation_labels: list[Any]
    label_names: list[str]
    columns: tuple[str, ...] = ("text",)
    task: str = CLASSIFICATION
    task_note: str = ""


def encode_targets(spec: DatasetSpec, train_raw: Sequence[Any], val_raw: Sequence[Any],
                   train_path: Path, val_path: Path | None, label_column: str,
                   class_names: list[str] | None = None
                   ) -> tuple[list[str], list[Any], list[Any], str, str]:
    """``(label_names, train_targets, val_targets, task, note)`` for the raw labels: class
    ids and names (classification) or floats (regression), as :func:`choose_task` decides."""
    requested = CLASSIFICATION if class_names is not None and spec.task == "auto" else spec.task
    task, note = choose_task(train_raw, requested, label_column, train_path)
    logger.info("%s", note)
    if task == REGRESSION:
        return ([label_column], parse_targets(train_raw, train_path),
                parse_targets(val_raw, val_path or train_path), task, note)
    names, train, val = encode_labels(train_raw, val_raw, train_path, val_path, class_names)
    return names, train, val, task, note


def check_same_shape(train: list[Text], other: list[Text], train_path: Any, other_path: Any
                     ) -> None:
    """Training rows and validation (or transfer) rows are both pairs or both single texts."""
    if other and has_pairs(train) != has_pairs(other):
        shape = {True: "sentence pairs", False: "single texts"}
        raise DataError(f"{other_path} holds {shape[has_pairs(other)]} but {train_path} "
                        f"holds {shape[has_pairs(train)]}; name the same text column(s) in "
                        f"both (text_column, text_pair_column)")
