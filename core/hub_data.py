"""Labelled texts from a Hugging Face Hub dataset (or a local folder in the Hub's layout).

Known layouts (GLUE's configs, ``core.hub_layouts``) name their columns, validation split
and task; ``ClassLabel`` features give the label names; an unlabelled test split (label -1)
is skipped for a 90/10 split of the training split.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from core.sources import Loaded, encode_targets
from core.specs import DatasetSpec
from core.splits import split_rows
from core.tables import DataError, labelled_columns, read_text_rows
from core.tasks import CLASSIFICATION
from core.texts import Text

logger = logging.getLogger(__name__)


def load_hub(spec: DatasetSpec, seed: int) -> Loaded:
    """The labelled rows of the Hub dataset ``spec.name`` (config ``spec.config``)."""
    from core.hub_layouts import apply_layout

    spec = apply_layout(spec)  # GLUE: columns, validation split (MNLI's matched) and task
    name = spec.name
    dataset = _load_dataset(name, spec.config)
    splits = list(dataset.keys())
    if spec.train_split not in dataset:
        raise DataError(f"Hub dataset '{name}' has no split '{spec.train_split}' "
                        f"(splits: {splits})")
    val_split = spec.validation or next(
        (s for s in ("validation", "test") if s in dataset), None)
    if val_split is not None and val_split not in dataset:
        raise DataError(f"Hub dataset '{name}' has no split '{val_split}' (splits: {splits})")

    hub_columns: tuple[str, ...] = ()
    label_column = "label"

    def columns(split: str) -> tuple[list[Text], list[Any], Any]:
        nonlocal hub_columns, label_column
        table = dataset[split]
        origin = Path(f"{name}[{split}]")
        _, text_columns, label_column = labelled_columns(
            pd.DataFrame(columns=table.column_names), origin, spec)
        hub_columns = tuple(c for c in text_columns if c is not None)
        frame = pd.DataFrame({c: list(table[c]) for c in hub_columns})
        texts = read_text_rows(frame, origin, text_columns)
        return texts, list(table[label_column]), table.features[label_column]

    train_texts, train_raw, feature = columns(spec.train_split)
    class_names = getattr(feature, "names", None)
    validation = columns(val_split) if val_split is not None else None
    if validation is not None and class_names is not None and all(
            v == -1 for v in validation[1]):  # GLUE-style test splits carry label -1
        logger.warning("split '%s' of %s is unlabelled; splitting '%s' 90/10 instead",
                       val_split, name, spec.train_split)
        validation = None
    origin = Path(f"{name}[{spec.train_split}]")
    if validation is None:
        label_names, train_labels, _, task, note = encode_targets(
            spec, train_raw, [], origin, None, label_column, class_names)
        train_texts, train_labels, val_texts, val_labels = split_rows(
            train_texts, train_labels, 0.1, seed, stratify=task == CLASSIFICATION)
    else:
        val_texts, val_raw, _ = validation
        label_names, train_labels, val_labels, task, note = encode_targets(
            spec, train_raw, val_raw, origin, Path(f"{name}[{val_split}]"), label_column,
            class_names)
    config = f", {spec.config}" if spec.config else ""
    return Loaded(f"{name} (Hub{config})", train_texts, train_labels, val_texts, val_labels,
                  label_names, hub_columns, task, note)


def _load_dataset(name: str, config: str | None) -> Any:
    """``datasets.load_dataset``, its failures sorted into two messages that say what to do."""
    import datasets

    try:
        return datasets.load_dataset(name, config)
    except Exception as exc:  # datasets raises many types; sort them into two messages
        kind = type(exc).__name__
        if not (isinstance(exc, ConnectionError) or "Connect" in kind or "Timeout" in kind):
            raise DataError(f"'{name}' is not a local file or folder, and loading it from the "
                            f"Hugging Face Hub failed: {exc}") from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        raise DataError(
            f"'{name}' is not a local file or folder, and the Hugging Face Hub cannot be "
            f"reached ({'offline' if offline else 'no connection'}: {exc}). To use local "
            f"data, pass the path of a CSV, TSV, JSONL or Parquet file with text and label "
            f"columns (or a folder holding train.* and dev.*), e.g. dataset=data/train.csv "
            f"with validation=data/dev.csv; or use the bundled dataset 'bbc_news'.") from exc
