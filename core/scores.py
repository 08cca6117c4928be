"""Scores from predictions: metrics through the shipped ``evaluate`` modules, agreement
between models, and the per-example table the disagreement browser reads.

Metrics go through ``evaluate`` with the modules shipped in ``core/metrics/`` (loaded by
local path, so no Hub access), computed by scikit-learn (numpy for the regression ones).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core.texts import PAIR_COLUMN, Text, split_pairs

if TYPE_CHECKING:
    import evaluate

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
SHIPPED_METRICS = ("accuracy", "precision", "recall", "f1", "confusion_matrix", "pearsonr",
                   "spearmanr", "mse")

# evaluate metric objects keep per-call state (an Arrow buffer); one lock keeps concurrent
# callers in this process (e.g. UI threads) from interleaving on the cached objects.
_METRICS_LOCK = threading.Lock()


def metrics_lock() -> threading.Lock:
    """The lock around the cached metric objects (see ``_METRICS_LOCK``)."""
    return _METRICS_LOCK


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load one shipped metric module through ``evaluate`` by local path, cached in-process.

    Args:
        name: one of ``SHIPPED_METRICS``.
    Returns:
        The ``evaluate`` metric; the same object on every call.
    """
    import evaluate

    if name not in SHIPPED_METRICS:
        raise ValueError(f"unknown metric {name!r}; shipped: {', '.join(SHIPPED_METRICS)}")
    # A local script path never touches the Hub. keep_in_memory: no Arrow cache files under
    # ~/.cache, which would collide between concurrent jobs sharing the default experiment id.
    return evaluate.load(str(METRICS_DIR / name / f"{name}.py"), keep_in_memory=True)


def compute_metrics(labels: Sequence[int], predictions: Sequence[int],
                    label_names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Computed through ``evaluate`` with the shipped modules. Every label in ``label_names``
    gets a per-class entry and a confusion-matrix row/column, even when absent (scores 0).
    Macro-F1 averages over the labels present in ``labels`` or ``predictions`` (scikit-learn's
    default), so a class missing from a small validation set does not count as an F1 of 0.

    Args:
        labels: true label ids.
        predictions: predicted label ids.
        label_names: names of the label ids ``0 .. len(label_names) - 1``.
    Returns:
        ``{"accuracy", "macro_f1", "per_class": {name: {"precision", "recall", "f1",
        "support"}}, "confusion_matrix"}``, the matrix as lists (rows true, columns predicted).
    """
    references = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predictions, dtype=np.int64)
    _check_label_ids(references, predicted, label_names)
    every_label = list(range(len(label_names)))
    common = {"references": references, "predictions": predicted}
    per_label = {"labels": every_label, "average": None, "zero_division": 0}
    with _METRICS_LOCK:
        accuracy = load_metric("accuracy").compute(**common)["accuracy"]
        macro_f1 = load_metric("f1").compute(**common, average="macro", zero_division=0)["f1"]
        precision = load_metric("precision").compute(**common, **per_label)["precision"]
        recall = load_metric("recall").compute(**common, **per_label)["recall"]
        f1 = load_metric("f1").compute(**common, **per_label)["f1"]
        matrix = load_metric("confusion_matrix").compute(
            **common, labels=every_label)["confusion_matrix"]
    matrix = np.asarray(matrix, dtype=np.int64)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(matrix[i].sum())}
        for i, name in enumerate(label_names)
    }
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1), "per_class": per_class,
            "confusion_matrix": matrix.tolist()}


def _check_label_ids(references: np.ndarray, predicted: np.ndarray,
                     label_names: list[str]) -> None:
    if references.shape != predicted.shape or references.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D and equally long, got "
                         f"{references.shape} and {predicted.shape}")
    if len(references) == 0:
        raise ValueError("no examples to score")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label names must be distinct, got {label_names}")
    for what, ids in (("labels", references), ("predictions", predicted)):
        if ids.min() < 0 or ids.max() >= len(label_names):
            raise ValueError(f"{what} must be ids in 0..{len(label_names) - 1} "
                             f"({len(label_names)} label names), got {ids.min()}..{ids.max()}")


def agreement(predictions_a: Sequence[int], predictions_b: Sequence[int]) -> float:
    """Fraction of examples on which two models predict the same label.

    Args:
        predictions_a: label ids from one model.
        predictions_b: label ids from the other, same examples in the same order.
    Returns:
        A value in [0, 1].
    """
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"predictions must be 1-D and equally long, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no predictions to compare")
    return float(np.mean(a == b))


def predictions_table(texts: Sequence[Text], labels: Sequence[int],
                      probabilities: dict[str, np.ndarray],
                      label_names: list[str]) -> pd.DataFrame:
    """One row per example with every model's prediction, for browsing and disagreements.

    Args:
        texts: the examples' texts, or ``(first, second)`` pairs.
        labels: their true label ids.
        probabilities: per role (``teacher``, ``student``, ``baseline``...), an array of shape
            ``(len(texts), len(label_names))``.
        label_names: names of the label ids.
    Returns:
        Columns ``index, text`` (``text_pair`` too for pairs), ``label, label_name`` and,
        per role ``r``: ``r_pred`` (int),
        ``r_pred_name``, ``r_confidence`` (max probability), ``r_correct`` (bool) and
        ``r_probs`` (list of floats). For a regression (one label name, the target's):
        ``label`` is the target and per role ``r_pred`` (float) and ``r_error``
        (``|r_pred - label|``).
    """
    if len(label_names) == 1:
        return _regression_table(texts, labels, probabilities)
    label_ids = np.asarray(labels, dtype=np.int64)
    names = np.asarray(label_names, dtype=object)
    if len(label_ids) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(label_ids)} labels")
    firsts, seconds = split_pairs(texts)
    table = pd.DataFrame({
        "index": np.arange(len(texts), dtype=np.int64),
        "text": firsts,
        **({PAIR_COLUMN: seconds} if seconds is not None else {}),
        "label": label_ids,
        "label_name": names[label_ids] if len(label_ids) else [],
    })
    for role, probs in probabilities.items():
        probs = np.asarray(probs, dtype=np.float32)
        if probs.shape != (len(texts), len(label_names)):
            raise ValueError(f"{role} probabilities have shape {probs.shape}, expected "
                             f"{(len(texts), len(label_names))}")
        predicted = probs.argmax(axis=1).astype(np.int64)
        table[f"{role}_pred"] = predicted
        table[f"{role}_pred_name"] = names[predicted] if len(predicted) else []
        table[f"{role}_confidence"] = probs.max(axis=1, initial=0.0)
        table[f"{role}_correct"] = predicted == label_ids
        table[f"{role}_probs"] = [row.tolist() for row in probs]
    return table


def _regression_table(texts: Sequence[Text], targets: Sequence[float],
                      outputs: dict[str, np.ndarray]) -> pd.DataFrame:
    """:func:`predictions_table` for a regression: targets, each model's value and error."""
    values = np.asarray(targets, dtype=np.float64)
    if len(values) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(values)} targets")
    firsts, seconds = split_pairs(texts)
    table = pd.DataFrame({"index": np.arange(len(texts), dtype=np.int64), "text": firsts,
                          **({PAIR_COLUMN: seconds} if seconds is not None else {}),
                          "label": values})
    for role, predicted in outputs.items():
        predicted = np.asarray(predicted, dtype=np.float64)
        if predicted.shape != (len(texts), 1):
            raise ValueError(f"{role} outputs have shape {predicted.shape}, expected "
                             f"{(len(texts), 1)}")
        table[f"{role}_pred"] = predicted[:, 0]
        table[f"{role}_error"] = np.abs(predicted[:, 0] - values)
    return table
