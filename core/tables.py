"""Labelled tables: read CSV/TSV/JSONL/Parquet files, pick the text and label columns,
check every text and turn labels into class ids. Every problem raises :class:`DataError`
naming the file, the row or column, and what was expected."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.specs import DatasetSpec
from core.texts import Text, join_pairs

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".parquet")
TEXT_COLUMNS = ("text", "sentence", "sentence1", "content", "review", "document")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment")
# Regression targets (STS-B's "score"): looked for only when no label column is found, so a
# table with both a label and a score column keeps reading its labels.
SCORE_COLUMNS = ("score", "similarity", "rating")
# Conventional sentence-pair columns (GLUE and SNLI-style files): found without flags.
PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
                ("question1", "question2"), ("text", "text_pair"))
DEFAULT_MAX_UPLOAD_MB = 500.0
_INT_PATTERN = re.compile(r"^[+-]?\d+$")
_FLOAT_PATTERN = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")


class DataError(ValueError):
    """Bad input: the message names the file, the row or column, and what was expected."""


def max_upload_bytes() -> float:
    """The largest accepted data file in bytes: ``DISTILLAB_MAX_UPLOAD_MB`` (default 500)."""
    raw = os.environ.get("DISTILLAB_MAX_UPLOAD_MB", "")
    try:
        megabytes = float(raw) if raw.strip() else DEFAULT_MAX_UPLOAD_MB
    except ValueError as exc:
        raise DataError(f"DISTILLAB_MAX_UPLOAD_MB must be a number of MB, got {raw!r}") from exc
    return megabytes * 1024 * 1024


def check_file(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` is an existing file under the size limit."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, found a folder")
    limit = max_upload_bytes()
    size = path.stat().st_size
    if size > limit:
        raise DataError(f"{path}: file is {size / 2**20:,.1f} MB, over the limit of "
                        f"{limit / 2**20:,.0f} MB (set DISTILLAB_MAX_UPLOAD_MB to raise it)")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV/TSV/JSONL/Parquet file as a DataFrame (CSV/TSV cells kept as strings)."""
    check_file(path)
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
            # TSV quoting is read from the file: SST-2 sentences hold unbalanced quote
            # characters (no quoting), GLUE's pair files quote fields holding a quote.
            options: dict[str, Any] = (
                {"sep": "\t", "quoting": _tsv_quoting(path)} if ext == ".tsv" else {})
            # pandas renames a repeated header name ("text", "text.1"): look at the raw one.
            _refuse_duplicate_columns(path, _csv_header(path, **options))
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, **options)
        elif ext == ".jsonl":
            frame = pd.DataFrame(_read_jsonl(path))
        else:
            import pyarrow.parquet as pq

            _refuse_duplicate_columns(path, pq.read_schema(path).names, "the schema")
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


def _tsv_quoting(path: Path) -> int:
    """``csv.QUOTE_MINIMAL`` when a TSV file reads the same number of rows with standard
    quoting as it has lines (every row as wide as the header), else ``csv.QUOTE_NONE``."""
    text = path.read_text(encoding="utf-8-sig")
    if '"' not in text:
        return csv.QUOTE_NONE
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter="\t")
                if any(cell.strip() for cell in r)]
    except csv.Error:
        return csv.QUOTE_NONE
    consistent = len(rows) == len(lines) and all(len(r) == len(rows[0]) for r in rows)
    return csv.QUOTE_MINIMAL if consistent else csv.QUOTE_NONE


def _csv_header(path: Path, sep: str = ",", quoting: int = csv.QUOTE_MINIMAL) -> list[str]:
    """The column names of a CSV/TSV file's first record, as written (BOM dropped)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=sep, quoting=quoting), [])


def _refuse_duplicate_columns(path: Path, names: Iterable[Any], where: str = "the header"
                              ) -> None:
    """Raise :class:`DataError` when a column name appears more than once (blanks aside)."""
    counts = Counter(str(n) for n in names if str(n).strip())
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        listed = ", ".join(f"'{name}' ({counts[name]} times)" for name in repeated)
        raise DataError(f"{path}: {where} has duplicated column names: {listed}; rename or "
                        f"remove the extra copies so each column appears once")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue

            def pairs_to_dict(pairs: list[tuple[str, Any]], line_number: int = line_number
                              ) -> dict[str, Any]:
                # json keeps the last of repeated keys; a repeated column is an error here.
                _refuse_duplicate_columns(path, (k for k, _ in pairs), f"line {line_number}")
                return dict(pairs)

            try:
                record = json.loads(line, object_pairs_hook=pairs_to_dict)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {line_number} is not valid JSON ({exc.msg}, "
                                f"column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {line_number} is not a JSON object")
            records.append(record)
    return records


def pick_column(frame: pd.DataFrame, path: Path, requested: str | None,
                 candidates: Sequence[str], role: str) -> str:
    """The ``role`` column: ``requested`` if given, else the one name among ``candidates``."""
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


def pick_text_columns(frame: pd.DataFrame, path: Path, text_column: str | None = None,
                      pair_column: str | None = None) -> tuple[str, str | None]:
    """The text column and, for sentence pairs, the second text column.

    Named columns win (``pair_column`` needs ``text_column``); else a conventional pair
    (:data:`PAIR_COLUMNS`); else one text column (:data:`TEXT_COLUMNS`). A second-text
    column left over (``sentence2`` beside a lone ``sentence1``...) is an error, never
    silently dropped.
    """
    found = [str(c) for c in frame.columns]
    if pair_column is not None:
        if text_column is None:
            raise DataError(f"{path}: a second text column '{pair_column}' needs the first "
                            f"one too (text_column)")
        first = pick_column(frame, path, text_column, TEXT_COLUMNS, "text")
        second = pick_column(frame, path, pair_column, (), "text_pair")
        if first == second:
            raise DataError(f"{path}: text and text_pair columns are both '{first}'")
        return first, second
    if text_column is not None:
        return pick_column(frame, path, text_column, TEXT_COLUMNS, "text"), None
    for fold in (str, str.lower):
        by_name = {fold(c): c for c in found}
        pairs = [(by_name[a], by_name[b]) for a, b in PAIR_COLUMNS
                 if a in by_name and b in by_name]
        if len(pairs) == 1:
            return pairs[0]
        if len(pairs) > 1:
            raise DataError(f"{path}: several sentence-pair columns {pairs}; name them with "
                            f"text_column and text_pair_column")
    first = pick_column(frame, path, None, TEXT_COLUMNS, "text")
    seconds = {b for _, b in PAIR_COLUMNS}
    left = [c for c in found if c.lower() in seconds and c != first]
    if left:
        raise DataError(f"{path}: column '{first}' was found as the text, but '{left[0]}' "
                        f"looks like a second text of a sentence pair; name both with "
                        f"text_column and text_pair_column (or only text_column to use one "
                        f"text)")
    return first, None


def read_text_rows(frame: pd.DataFrame, path: Path, columns: tuple[str, str | None]
                   ) -> list[Text]:
    """The checked texts (or ``(first, second)`` pairs) of ``columns``."""
    first, second = columns
    firsts = check_texts(frame[first].tolist(), path, first)
    seconds = None if second is None else check_texts(frame[second].tolist(), path, second)
    return join_pairs(firsts, seconds)


def read_labelled(path: Path, spec: DatasetSpec) -> tuple[list[Text], list[Any]]:
    """A labelled file's texts or pairs (checked) and raw labels, from the spec's or guessed
    columns."""
    frame, columns, label_col = labelled_columns(read_table(path), path, spec)
    return read_text_rows(frame, path, columns), frame[label_col].tolist()


def labelled_columns(frame: pd.DataFrame, path: Path, spec: DatasetSpec
                     ) -> tuple[pd.DataFrame, tuple[str, str | None], str]:
    """The frame, its text column(s) and its label column, as the spec names or guesses."""
    columns = pick_text_columns(frame, path, spec.text_column, spec.text_pair_column)
    names = {str(c).lower() for c in frame.columns}
    candidates = LABEL_COLUMNS if names & set(LABEL_COLUMNS) else LABEL_COLUMNS + SCORE_COLUMNS
    label_col = pick_column(frame, path, spec.label_column, candidates, "label")
    if label_col in columns:
        raise DataError(f"{path}: text and label columns are both '{label_col}'")
    return frame, columns, label_col


def check_texts(values: Sequence[Any], path: Path, column: str) -> list[str]:
    """``values`` as texts; a missing, non-string or blank one raises, naming its row."""
    for row, value in enumerate(values, start=1):
        if not isinstance(value, str):
            what = "missing" if _is_missing(value) else f"non-string ({type(value).__name__})"
            raise DataError(f"{path}: row {row}: {what} text in column '{column}'")
        if not value.strip():
            raise DataError(f"{path}: row {row}: empty text in column '{column}'")
    return list(values)


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
                        f"(a number: for a regression target use task regression)")
    if isinstance(value, (int, str)):
        return value
    raise DataError(f"{path}: row {row}: label {value!r} is not a class id or name "
                    f"(one label per row)")


def encode_labels(train_raw: Sequence[Any], val_raw: Sequence[Any], train_path: Path,
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
    elif all(isinstance(v, int) for v in values) and set(train) == set(range(max(train) + 1)):
        # Class ids 0..K-1 (all of them in training) are kept as they are.
        names = [str(i) for i in range(max(train) + 1)]
        train_ids, val_ids = list(train), list(val)
    else:
        # Names, and integer ids that are sparse ({0, 1000000}), 1-based ({1, 2}) or
        # negative: dense ids 0..K-1 in sorted order, the original values kept as names,
        # so the head has one output per class seen and validation maps the same way.
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
