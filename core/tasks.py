"""What a run predicts: classes (classification) or a number (regression, e.g. STS-B's score).

A task is data, not a branch: it decides how targets are read, which head the model gets
(one output per class, or one output), which loss trains it, which metrics score it and
which metric ranks runs. A model with one output is a regression model
(``config.num_labels == 1``, as Hugging Face's own heads decide); its one "label name" is
the target column's name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TASKS = ("auto", "classification", "regression")
CLASSIFICATION, REGRESSION = "classification", "regression"
MAIN_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "spearman"}
METRIC_TITLES = {"accuracy": "accuracy", "spearman": "Spearman correlation",
                 "pearson": "Pearson correlation", "mse": "MSE"}
# Integer-valued targets with more distinct values than this, in a column named like a score,
# read as a regression when the task is "auto"; otherwise integers are class ids.
_SCORE_NAMES = re.compile(r"score|rating|similarity|relatedness|value|target", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class TaskError(ValueError):
    """Targets that do not fit the task, with the row and what was expected."""


def is_regression(model_or_config: Any) -> bool:
    """True for a model (or config) with a single output: a regression head."""
    config = getattr(model_or_config, "config", model_or_config)
    return int(getattr(config, "num_labels", 2)) == 1


def task_of(label_names: Sequence[str]) -> str:
    """The task of a run from its label names: one name is a regression target."""
    return REGRESSION if len(label_names) == 1 else CLASSIFICATION


def main_metric(task: str) -> str:
    """The metric that ranks models of a task: accuracy, or Spearman for regression."""
    return MAIN_METRIC.get(task, "accuracy")


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number (or a numeric string), else None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value.strip())
    return None


def choose_task(train_raw: Sequence[Any], requested: str, label_column: str,
                path: Path) -> tuple[str, str]:
    """The task of a dataset's targets and a sentence saying why.

    ``requested`` decides when it is ``classification`` or ``regression``. With ``auto``:
    a non-integer number reads as a regression target; integers are class ids, unless the
    column is named like a score (``score``, ``rating``...) and has more than two values,
    which reads as a regression. Integer-valued targets with more than two values are
    ambiguous: the note says which task was chosen and how to pick the other.
    """
    if requested not in TASKS:
        raise TaskError(f"task must be one of {', '.join(TASKS)}, got {requested!r}")
    numbers = [_number(v) for v in train_raw]
    numeric = all(n is not None and math.isfinite(n) for n in numbers)
    if requested == REGRESSION:
        return REGRESSION, f"task: regression on '{label_column}' (asked for)"
    if requested == CLASSIFICATION:
        return CLASSIFICATION, f"task: classification of '{label_column}' (asked for)"
    if not numeric:
        return CLASSIFICATION, f"task: classification ('{label_column}' holds class names)"
    if any(not float(n).is_integer() for n in numbers):
        return REGRESSION, (f"task: regression ('{label_column}' holds non-integer numbers; "
                            f"--task classification to refuse them)")
    distinct = len(set(numbers))
    if distinct <= 2:
        return CLASSIFICATION, f"task: classification ('{label_column}' holds class ids)"
    if _SCORE_NAMES.search(label_column):
        return REGRESSION, (f"task: regression chosen: '{label_column}' holds {distinct} "
                            f"integer values and is named like a score; --task "
                            f"classification reads them as class ids")
    return CLASSIFICATION, (f"task: classification chosen: '{label_column}' holds {distinct} "
                            f"integer values, read as class ids; --task regression reads "
                            f"them as a numeric score")


def parse_targets(raw: Sequence[Any], path: Path | None) -> list[float]:
    """Regression targets as floats; a missing or non-numeric one raises, naming its row."""
    targets = []
    for row, value in enumerate(raw, start=1):
        number = _number(value)
        if number is None or not math.isfinite(number):
            what = "missing" if value is None or (isinstance(value, str) and not value.strip())\
                else f"{value!r} is not a number"
            raise TaskError(f"{path}: row {row}: regression target {what}")
        targets.append(number)
    if len(targets) >= 2 and len(set(targets)) < 2:
        raise TaskError(f"{path}: every regression target is {targets[0]}; a regression "
                        "needs at least two different values")
    return targets


def regression_metrics(targets: Sequence[float], predictions: Sequence[float]
                       ) -> dict[str, float]:
    """Pearson, Spearman and MSE through the shipped ``evaluate`` modules.

    Returns:
        ``{"pearson", "spearman", "mse"}``; a correlation is NaN when the predictions (or
        targets) are constant.
    """
    from core.scores import load_metric, metrics_lock

    references = np.asarray(targets, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if references.shape != predicted.shape or references.ndim != 1:
        raise ValueError(f"targets and predictions must be 1-D and equally long, got "
                         f"{references.shape} and {predicted.shape}")
    if len(references) < 2:
        raise ValueError("need at least 2 examples to score a regression")
    common = {"references": references, "predictions": predicted}
    with metrics_lock():
        pearson = load_metric("pearsonr").compute(**common)["pearsonr"]
        spearman = load_metric("spearmanr").compute(**common)["spearmanr"]
        mse = load_metric("mse").compute(**common)["mse"]
    return {"pearson": float(pearson), "spearman": float(spearman), "mse": float(mse)}
