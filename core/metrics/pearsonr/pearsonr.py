"""Pearson correlation, shipped with DistilLab so ``evaluate.load`` works offline (local path,
no Hub). Same interface as the Hub's ``evaluate-metric/pearsonr``; computed with numpy.
"""

import evaluate

from core.sklearn_metrics import pearson, score_metric_info

_DESCRIPTION = """
Pearson's correlation coefficient measures the linear relationship between predictions and
references: cov(x, y) / (std(x) * std(y)), from -1 to 1. NaN when either side is constant.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted values.
    references (`list` of `float`): true values.
Returns:
    pearsonr (`float`): in [-1, 1].
Examples:
    >>> pearsonr = evaluate.load("core/metrics/pearsonr")
    >>> pearsonr.compute(references=[1, 2, 3, 4], predictions=[2, 4, 6, 8])
    {'pearsonr': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Pearsonr(evaluate.Metric):
    def _info(self):
        return score_metric_info(_DESCRIPTION, _KWARGS_DESCRIPTION,
                                 "https://en.wikipedia.org/wiki/Pearson_correlation_coefficient")

    def _compute(self, predictions, references):
        return {"pearsonr": pearson(predictions, references)}
