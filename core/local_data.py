"""Labelled and unlabelled texts from local files: a CSV/TSV/JSONL/Parquet file, a folder
holding ``train.*`` (and ``dev.*``...), or a ``.txt`` file of one text per line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.sources import Loaded, check_same_shape, encode_targets
from core.specs import DatasetSpec
from core.splits import split_rows
from core.tables import (
    TABLE_EXTENSIONS,
    DataError,
    check_file,
    labelled_columns,
    pick_text_columns,
    read_labelled,
    read_table,
    read_text_rows,
)
from core.tasks import CLASSIFICATION
from core.texts import Text
from core.uploads import display_name

VALIDATION_STEMS = ("validation", "dev", "test")


def load_local(spec: DatasetSpec, path: Path, seed: int) -> Loaded:
    """The labelled rows of a local file or folder, split 90/10 when no validation file is
    named or found."""
    if path.is_dir():
        train_path = find_in_folder(path, ("train",))
        if train_path is None:
            raise DataError(f"{path}: folder has no train file (expected train.csv, "
                            f"train.tsv, train.jsonl or train.parquet)")
        folder = path
    else:
        train_path, folder = path, path.parent
    if spec.validation:
        val_path = resolve_validation(spec.validation, folder)
    elif path.is_dir():
        val_path = find_in_folder(path, VALIDATION_STEMS)
    else:
        val_path = None

    frame, text_columns, label_col = labelled_columns(read_table(train_path), train_path, spec)
    train_texts = read_text_rows(frame, train_path, text_columns)
    train_raw = frame[label_col].tolist()
    columns = tuple(c for c in text_columns if c is not None)
    if val_path is not None:
        val_texts, val_raw = read_labelled(val_path, spec)
        check_same_shape(train_texts, val_texts, train_path, val_path)
        label_names, train_labels, val_labels, task, note = encode_targets(
            spec, train_raw, val_raw, train_path, val_path, label_col)
        source = f"{display_name(train_path)} + {display_name(val_path)}"
    else:
        label_names, train_labels, _, task, note = encode_targets(
            spec, train_raw, [], train_path, None, label_col)
        train_texts, train_labels, val_texts, val_labels = split_rows(
            train_texts, train_labels, 0.1, seed, stratify=task == CLASSIFICATION)
        source = f"{display_name(train_path)} (90/10 split)"
    if path.is_dir():
        source = f"{path.name}/ {source}"
    return Loaded(source, train_texts, train_labels, val_texts, val_labels, label_names,
                  columns, task, note)


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


def looks_like_path(name: str) -> bool:
    """True when ``name`` is meant as a local path rather than a Hub id."""
    # Hub ids are "name" or "owner/name": more slashes, a backslash, a leading ./ ~ or /,
    # or a file extension mean the user meant a local path.
    return (name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
            or Path(name).suffix.lower() in TABLE_EXTENSIONS + (".txt", ".json"))


def find_in_folder(folder: Path, stems: Sequence[str]) -> Path | None:
    """The one table file in ``folder`` named by the first of ``stems`` present, or None."""
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


def resolve_validation(validation: str, folder: Path) -> Path:
    """The validation file, as given or relative to the training data's folder."""
    given = Path(validation).expanduser()
    for candidate in (given, folder / given):
        if candidate.exists():
            return candidate
    raise DataError(f"file not found: {validation} (looked in the current folder and {folder})")
