"""Recall, shipped with DistilLab so ``evaluate.load`` works offline (local path, no Hub).

Same interface as the Hub's ``evaluate-metric/recall``; computed by scikit-learn.
"""

import evaluate
from sklearn.metrics import recall_score

from core.sklearn_metrics import averaged_score, averaged_score_kwargs, label_metric_info

_DESCRIPTION = """
Recall is the fraction of the examples of a class that are predicted as it:
TP / (TP + FN).
"""

_KWARGS_DESCRIPTION = averaged_score_kwargs("recall", "{'recall': array([1., 1., 0.])}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Recall(evaluate.Metric):
    def _info(self):
        return label_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "recall_score")

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        return averaged_score(recall_score, "recall", predictions, references, labels, pos_label,
                              average, sample_weight, zero_division)
