"""Precision, shipped with DistilLab so ``evaluate.load`` works offline (local path, no Hub).

Same interface as the Hub's ``evaluate-metric/precision``; computed by scikit-learn.
"""

import evaluate
from sklearn.metrics import precision_score

from core.sklearn_metrics import averaged_score, averaged_score_kwargs, label_metric_info

_DESCRIPTION = """
Precision is the fraction of predictions of a class that are correct:
TP / (TP + FP).
"""

_KWARGS_DESCRIPTION = averaged_score_kwargs("precision", "{'precision': array([1. , 0.5, 0. ])}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Precision(evaluate.Metric):
    def _info(self):
        return label_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "precision_score")

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        return averaged_score(precision_score, "precision", predictions, references, labels,
                              pos_label, average, sample_weight, zero_division)
