"""``distillab bench``: DistilLab's evaluation and distillation speed against the usual paths.

In one process, on the same texts and the same models, it times:

* evaluation end to end (texts in, predicted labels on the host out) for the teacher and
  the student: DistilLab's ``predict_proba`` vs ``transformers.pipeline`` (batch 32) vs
  ``evaluate.evaluator("text-classification")`` on that pipeline vs a naive loop padding
  every batch of 32 to max length; on short texts (SST-2 dev) and long ones (BBC News, 512);
* distillation training throughput: ``core.train.train`` vs a naive loop (fp32, padding to
  max length, the teacher run every step, plain AdamW) vs the Hugging Face ``Trainer``
  subclass overriding ``compute_loss`` with the KD loss (the HF distillation guide's
  pattern); on CUDA also model TFLOP/s against a bf16 matmul peak measured in the same run;
* the student's speed-up over the teacher at batch 1 and at a large batch (``measure_speed``).

Every contender is warmed up before its timer and timed with device syncs; what each timer
includes is written next to the figure. Model heads are random: speed does not depend on
the weights' values, so no fine-tuning is needed and no accuracy is reported.
"""

from core.bench.distill import forward_flops, measure_matmul_peak
from core.bench.report import check_targets, compute_ratios, format_bench_table
from core.bench.runner import run_bench
from core.bench.settings import BenchSettings

__all__ = ["BenchSettings", "check_targets", "compute_ratios",
           "forward_flops", "format_bench_table", "measure_matmul_peak", "run_bench"]
