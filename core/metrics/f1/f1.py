"""F1, shipped with DistilLab so ``evaluate.load`` works offline (local path, no Hub).

Same interface as the Hub's ``evaluate-metric/f1``; computed by scikit-learn.
"""

import evaluate
from sklearn.metrics import f1_score

from core.sklearn_metrics import averaged_score, averaged_score_kwargs, label_metric_info

_DESCRIPTION = """
F1 is the harmonic mean of precision and recall:
2 * precision * recall / (precision + recall).
"""

_KWARGS_DESCRIPTION = averaged_score_kwargs(
    "f1", "{'f1': array([1.        , 0.66666667, 0.        ])}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return label_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "f1_score")

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        return averaged_score(f1_score, "f1", predictions, references, labels, pos_label,
                              average, sample_weight, zero_division)
