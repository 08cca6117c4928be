"""Spearman rank correlation, shipped with DistilLab so ``evaluate.load`` works offline (local
path, no Hub). Same interface as the Hub's ``evaluate-metric/spearmanr``; computed with numpy
(Pearson's correlation of the average ranks, as scipy.stats.spearmanr).
"""

import evaluate

from core.sklearn_metrics import average_ranks, pearson, score_metric_info

_DESCRIPTION = """
Spearman's rank correlation is Pearson's correlation of the ranks of predictions and
references (ties share their average rank): how well the predictions order the examples,
whatever their scale. From -1 to 1.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted values.
    references (`list` of `float`): true values.
Returns:
    spearmanr (`float`): in [-1, 1].
Examples:
    >>> spearmanr = evaluate.load("core/metrics/spearmanr")
    >>> spearmanr.compute(references=[1, 2, 3, 4], predictions=[1, 4, 9, 16])
    {'spearmanr': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Spearmanr(evaluate.Metric):
    def _info(self):
        return score_metric_info(
            _DESCRIPTION, _KWARGS_DESCRIPTION,
            "https://en.wikipedia.org/wiki/Spearman%27s_rank_correlation_coefficient")

    def _compute(self, predictions, references):
        return {"spearmanr": pearson(average_ranks(predictions), average_ranks(references))}
