"""Recall, shipped with DistilLab so ``evaluate.load`` works offline (local path, no Hub).

Same interface as the Hub's ``evaluate-metric/recall``; computed by scikit-learn.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import recall_score

_DESCRIPTION = """
Recall is the fraction of the examples of a class that are predicted as it:
TP / (TP + FN).
"""

_KWARGS_DESCRIPTION = """
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
    recall (`float` or `numpy.ndarray` of `float`): in [0, 1]; one value per label
        when `average=None`.
Examples:
    >>> recall = evaluate.load("core/metrics/recall")
    >>> recall.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0], average=None)
    {'recall': array([1., 1., 0.])}
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Recall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Value("int32"),
                "references": datasets.Value("int32"),
            }),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/"
                "sklearn.metrics.recall_score.html"
            ],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average="binary",
                 sample_weight=None, zero_division="warn"):
        score = recall_score(references, predictions, labels=labels, pos_label=pos_label,
                       average=average, sample_weight=sample_weight,
                       zero_division=zero_division)
        # scikit-learn returns a Python float for averages, an array per label otherwise.
        return {"recall": float(score) if np.ndim(score) == 0 else np.asarray(score)}
