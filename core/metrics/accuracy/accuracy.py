"""Accuracy, shipped with DistilLab so ``evaluate.load`` works offline (local path, no Hub).

Same interface as the Hub's ``evaluate-metric/accuracy``; computed by scikit-learn.
"""

import evaluate
from sklearn.metrics import accuracy_score

from core.sklearn_metrics import label_metric_info

_DESCRIPTION = """
Accuracy is the fraction of predictions equal to the references:
(TP + TN) / (TP + TN + FP + FN) for binary labels, correct / total in general.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): true labels.
    normalize (`bool`): if False, the number of correct predictions instead of the fraction.
        Defaults to True.
    sample_weight (`list` of `float`): per-example weights. Defaults to None.
Returns:
    accuracy (`float` or `int`): in [0, 1], or a count when `normalize=False`.
Examples:
    >>> accuracy = evaluate.load("core/metrics/accuracy")
    >>> accuracy.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0])
    {'accuracy': 0.75}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return label_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "accuracy_score")

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        score = accuracy_score(references, predictions, normalize=normalize,
                               sample_weight=sample_weight)
        return {"accuracy": float(score) if normalize or sample_weight is not None
                else int(score)}
