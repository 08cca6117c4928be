"""Confusion matrix, shipped with DistilLab so ``evaluate.load`` works offline (local path).

Same interface as the Hub's ``evaluate-metric/confusion_matrix``; computed by scikit-learn.
"""

import evaluate
from sklearn.metrics import confusion_matrix

from core.sklearn_metrics import label_metric_info

_DESCRIPTION = """
The confusion matrix counts examples by (true label, predicted label): entry [i, j] is the
number of examples of label i predicted as label j. Rows are true labels, columns predictions.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted labels.
    references (`list` of `int`): true labels.
    labels (`list` of `int`): the labels that index the rows and columns, in order; a label
        that never occurs still gets its row and column. Defaults to the sorted labels present
        in references and predictions.
    sample_weight (`list` of `float`): per-example weights. Defaults to None.
    normalize (`str`): None (counts, default), 'true' (rows sum to 1), 'pred' (columns sum
        to 1) or 'all' (the matrix sums to 1).
Returns:
    confusion_matrix (`numpy.ndarray`): shape (n_labels, n_labels).
Examples:
    >>> confusion = evaluate.load("core/metrics/confusion_matrix")
    >>> confusion.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0])
    {'confusion_matrix': array([[2, 0, 0],
           [0, 1, 0],
           [0, 1, 0]])}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ConfusionMatrix(evaluate.Metric):
    def _info(self):
        return label_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION, "confusion_matrix")

    def _compute(self, predictions, references, labels=None, sample_weight=None,
                 normalize=None):
        matrix = confusion_matrix(references, predictions, labels=labels,
                                  sample_weight=sample_weight, normalize=normalize)
        return {"confusion_matrix": matrix}
