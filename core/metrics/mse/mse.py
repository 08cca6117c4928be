"""Mean squared error, shipped with DistilLab so ``evaluate.load`` works offline (local path,
no Hub). Same interface as the Hub's ``evaluate-metric/mse``; computed with numpy.
"""

import evaluate
import numpy as np

from core.sklearn_metrics import score_metric_info

_DESCRIPTION = """
Mean squared error: the mean of (prediction - reference)^2; 0 is perfect.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted values.
    references (`list` of `float`): true values.
    squared (`bool`): False returns the root mean squared error. Defaults to True.
Returns:
    mse (`float`): >= 0.
Examples:
    >>> mse = evaluate.load("core/metrics/mse")
    >>> mse.compute(references=[1, 2, 3], predictions=[1, 2, 5])
    {'mse': 1.3333333333333333}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mse(evaluate.Metric):
    def _info(self):
        return score_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION,
                                 "https://en.wikipedia.org/wiki/Mean_squared_error")

    def _compute(self, predictions, references, squared=True):
        error = np.asarray(predictions, dtype=np.float64) - np.asarray(references,
                                                                      dtype=np.float64)
        value = float(np.mean(error * error))
        return {"mse": value if squared else float(np.sqrt(value))}
