"""What the shipped ``evaluate`` metric scripts (``core/metrics/*/``) share: scikit-learn's
citation, the label-classification ``MetricInfo`` and the per-label score result.

``evaluate.load(path)`` copies each script alone into its module cache, so a sibling file
would not travel with it; the scripts import this module from the installed package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datasets
import evaluate
import numpy as np

SKLEARN_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


def label_metric_info(description: str, inputs_description: str,
                      sklearn_function: str) -> evaluate.MetricInfo:
    """The ``MetricInfo`` of a metric over integer predictions and references computed by
    ``sklearn.metrics.<sklearn_function>``."""
    return evaluate.MetricInfo(
        description=description,
        citation=SKLEARN_CITATION,
        inputs_description=inputs_description,
        features=datasets.Features({
            "predictions": datasets.Value("int32"),
            "references": datasets.Value("int32"),
        }),
        reference_urls=["https://scikit-learn.org/stable/modules/generated/"
                        f"sklearn.metrics.{sklearn_function}.html"],
    )


def averaged_score_kwargs(name: str, example: str) -> str:
    """The inputs description of precision, recall or F1 (scikit-learn's averaged scores)."""
    return f"""
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): true labels.
    labels (`list` of `int`): the labels to score and, for averages other than 'binary',
        their order. Defaults to the labels present in references and predictions.
    pos_label (`int`): the positive class when `average='binary'`. Defaults to 1.
    average (`str`): 'binary' (default), 'micro', 'macro', 'weighted', or None for
        one score per label.
    sample_weight (`list` of `float`): per-example weights. Defaults to None.
    zero_division (`int`, `float` or `"warn"`): the value returned when the score is
        undefined (0/0). Defaults to "warn" (0 with a warning).
Returns:
    {name} (`float` or `numpy.ndarray` of `float`): in [0, 1]; one value per label
        when `average=None`.
Examples:
    >>> {name} = evaluate.load("core/metrics/{name}")
    >>> {name}.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0], average=None)
    {example}
"""


def averaged_score(score_function: Callable[..., Any], name: str, predictions: Any,
                   references: Any, labels: Any = None, pos_label: Any = 1,
                   average: str | None = "binary", sample_weight: Any = None,
                   zero_division: Any = "warn") -> dict[str, Any]:
    """``{name: score_function(references, predictions, ...)}`` for precision, recall or F1:
    a Python float for averages, an array with one value per label when ``average=None``."""
    score = score_function(references, predictions, labels=labels, pos_label=pos_label,
                           average=average, sample_weight=sample_weight,
                           zero_division=zero_division)
    return {name: float(score) if np.ndim(score) == 0 else np.asarray(score)}


def score_metric_info(description: str, inputs_description: str,
                      reference_url: str) -> evaluate.MetricInfo:
    """The ``MetricInfo`` of a metric over real-valued predictions and references
    (regression: Pearson, Spearman, MSE)."""
    return evaluate.MetricInfo(
        description=description,
        citation="",
        inputs_description=inputs_description,
        features=datasets.Features({
            "predictions": datasets.Value("float64"),
            "references": datasets.Value("float64"),
        }),
        reference_urls=[reference_url],
    )


def pearson(x: Any, y: Any) -> float:
    """Pearson's correlation of two equally long 1-D sequences (NaN when either is
    constant: the correlation is undefined)."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two 1-D sequences of the same length >= 2, got {a.shape} "
                         f"and {b.shape}")
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def average_ranks(x: Any) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (what Spearman's correlation uses)."""
    import pandas as pd

    return pd.Series(np.asarray(x, dtype=np.float64)).rank(method="average").to_numpy()
