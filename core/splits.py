"""Seeded train/validation splits and subsets of labelled rows.

Every function is seeded, so the same seed picks the same rows. Classification splits and
subsets keep the class proportions (and every class where the size allows); regression
targets, which have no classes, are split and subset at random.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.tables import DataError
from core.texts import Text

logger = logging.getLogger(__name__)


def split_rows(texts: list[Text], labels: list[Any], validation_fraction: float, seed: int,
               stratify: bool = True) -> tuple[list[Text], list[Any], list[Text], list[Any]]:
    """A seeded, stratified train/validation split (plain seeded split when too few rows,
    or for regression targets: ``stratify=False``)."""
    from sklearn.model_selection import train_test_split

    if len(texts) < 2:
        raise DataError(f"need at least 2 rows to split off a validation set, got {len(texts)}")
    if not stratify:
        train_t, val_t, train_y, val_y = train_test_split(
            texts, labels, test_size=validation_fraction, random_state=seed)
        return ([as_row(t) for t in train_t], [float(y) for y in train_y],
                [as_row(t) for t in val_t], [float(y) for y in val_y])
    try:
        train_t, val_t, train_y, val_y = train_test_split(
            texts, labels, test_size=validation_fraction, stratify=labels, random_state=seed)
    except ValueError as exc:  # a class with one row, or fewer validation rows than classes
        # Quota sampling still keeps every class in training, so no label goes unseen.
        logger.warning("small data set (%s): validation set chosen by per-class quotas", exc)
        n_val = max(1, math.ceil(len(texts) * validation_fraction))
        keep = set(stratified_indices(labels, len(texts) - n_val, seed))
        train_t = [t for i, t in enumerate(texts) if i in keep]
        train_y = [y for i, y in enumerate(labels) if i in keep]
        val_t = [t for i, t in enumerate(texts) if i not in keep]
        val_y = [y for i, y in enumerate(labels) if i not in keep]
    return ([as_row(t) for t in train_t], [int(y) for y in train_y],
            [as_row(t) for t in val_t], [int(y) for y in val_y])


def as_row(text: Any) -> Text:
    """A row back from scikit-learn's splitter: a pair may come back as a list or array."""
    return text if isinstance(text, str) else (str(text[0]), str(text[1]))


def stratified_indices(labels: Sequence[int], size: int, seed: int) -> list[int]:
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


def sample_texts(texts: list[Text], size: int | None, seed: int) -> list[Text]:
    """A seeded random subset of ``size`` texts in their original order (all when None)."""
    if size is None or size >= len(texts):
        return texts
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size, replace=False))
    return [texts[i] for i in keep]


def random_indices(count: int, size: int, seed: int) -> list[int]:
    """Sorted indices of a seeded random subset (regression targets have no classes)."""
    if size >= count:
        return list(range(count))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(count, size, replace=False))
