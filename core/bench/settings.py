"""What a bench run does: sections, model sizes, sizes per device, what each timer includes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch

SECTIONS = ("eval", "distill", "speedup", "mfu")  # mfu: CUDA only
MODEL_SIZES = ("minilm", "bert-base", "tiny")
LABEL_NAMES = ["negative", "positive"]
KD_TEMPERATURE, KD_ALPHA = 2.0, 0.5  # the "logits" recipe: 0.5 KD (T=2) + 0.5 CE
PEAK_MATMUL_N = 8192

EVAL_INCLUDES = {
    "distillab": "predict_proba(cache=False): fast tokenizer (uncached, threaded), "
                 "length-sorted token-budget batches, inference_mode, SDPA, bf16 autocast on "
                 "CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), on a CPU whole "
                 "batches side by side in one-thread streams, softmax, argmax on the host",
    "pipeline": "transformers.pipeline('text-classification', batch_size=32, truncation, "
                "max_length): per-text tokenisation, batches of 32 in input order padded to "
                "their longest row, fp32, post-processing to label dicts",
    "evaluator": "evaluate.evaluator('text-classification').compute on the same pipeline "
                 "(datasets.Dataset built outside the timer), accuracy through the shipped "
                 "metric module",
    "naive": "batches of 32 in input order, each tokenised and padded to max_length, fp32 "
             "forward under no_grad, softmax, argmax to the host",
    "pipeline_bf16": "where DistilLab runs bf16: the pipeline above on a bf16 copy of the "
                     "model (how much of the gap precision alone closes)",
    "distillab_cudnn_attention": "CUDA only: 'distillab' with DISTILLAB_CUDNN_ATTENTION=1, "
                                 "which lets PyTorch pick its cuDNN attention kernel",
}
DISTILL_INCLUDES = {
    "distillab": "core.train.train, whole call: tokenisation, teacher logits computed once "
                 "(the 'logits' recipe needs only them), length-bucketed batches, fused AdamW "
                 "with schedule and clipping, bf16 autocast where native (CUDA, CPUs with "
                 "AVX512-BF16/AMX), and a "
                 "validation pass over 32 sentences",
    "distillab_teacher_every_step": "core.train.train with the 'distilbert' recipe (adds the "
                                    "hidden-state cosine term), so the teacher runs at every "
                                    "step; otherwise as above",
    "distillab_cudnn_attention": "CUDA only: the 'distillab' contender with "
                                 "DISTILLAB_CUDNN_ATTENTION=1, which lets PyTorch pick its "
                                 "cuDNN attention kernel (one graph built per new batch shape)",
    "naive": "fp32, each batch tokenised and padded to max_length, teacher forward under "
             "no_grad at every step, KD+CE loss, plain AdamW step",
    "trainer": "transformers.Trainer subclass overriding compute_loss (teacher every step, "
               "KD+CE), DataCollatorWithPadding, its default optimizer (fused AdamW), bf16 "
               "where DistilLab trains in bf16; timed "
               "from on_train_begin to on_train_end (its set-up and the datasets.map "
               "tokenisation excluded)",
}


@dataclass
class BenchSettings:
    """What one bench run does; every size is recorded in the JSON."""

    quick: bool = False
    model_size: str = "minilm"
    device: str = "auto"
    sections: tuple[str, ...] = SECTIONS
    sst2_dir: str = "../shared/data/sst2"
    short_texts: int = 872
    long_texts: int = 400
    short_max_length: int = 128
    long_max_length: int = 512
    eval_batch: int = 32
    distill_rows: int = 3200
    distill_batch: int = 32
    distill_max_length: int = 64
    warmup_texts: int = 32
    min_time_s: float = 1.0
    max_repeats: int = 3
    latency_samples: int = 30
    speed_texts: int = 256
    large_batch: int = 64
    mfu_rows: int = 128 * 48

    @classmethod
    def build(cls, quick: bool, model_size: str, device: torch.device, sections: Sequence[str],
              sst2_dir: str) -> BenchSettings:
        """Sizes for the device and mode: ``quick`` fits about five minutes on a 2-core CPU."""
        unknown = set(sections) - set(SECTIONS)
        if unknown or not sections:
            raise ValueError(f"--sections takes a comma list of {', '.join(SECTIONS)}; got "
                             f"{','.join(sections)}")
        if model_size not in MODEL_SIZES:
            raise ValueError(f"--model-size must be minilm or bert-base, got {model_size!r}")
        s = cls(quick=quick, model_size=model_size, device=str(device),
                sections=tuple(sections), sst2_dir=sst2_dir)
        if device.type == "cuda":
            # Short SST-2 sentences leave a GPU idle at 64 tokens; 128 is the usual setting.
            s.distill_max_length, s.warmup_texts, s.large_batch = 128, 10**9, 256
            s.long_texts, s.distill_rows, s.speed_texts, s.latency_samples = 1000, 6400, 872, 50
            s.mfu_rows = 128 * 96
        if quick:
            s.short_texts, s.long_texts, s.distill_rows = 320, 48, 640
            # Three interleaved rounds: one pass each was the noise (±15%) in the ratios.
            s.latency_samples, s.speed_texts, s.max_repeats, s.min_time_s = 15, 128, 3, 3.0
            s.mfu_rows = 128 * 24
        if model_size == "tiny":  # the test suite's size: seconds, not minutes
            s.short_texts, s.long_texts, s.distill_rows, s.mfu_rows = 64, 8, 96, 256
            s.latency_samples, s.speed_texts, s.long_max_length = 4, 32, 128
        return s




def failed(error: Exception) -> dict[str, str]:
    """The figure of a contender that raised: one broken contender must not lose the rest."""
    return {"error": f"{type(error).__name__}: {error}"}


def no_figure_callback(name: str, figure: dict[str, Any]) -> None:
    """The default ``on_figure``: nothing to save between contenders."""


def with_cudnn_attention(run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args)`` with ``DISTILLAB_CUDNN_ATTENTION=1`` set for its duration: DistilLab's
    forwards may then use PyTorch's cuDNN attention kernel (core.devices.attention_backends)."""
    with mock.patch.dict(os.environ, {"DISTILLAB_CUDNN_ATTENTION": "1"}):
        return run(*args)


def without_cuda_graphs(run: Callable[..., Any], *args: Any) -> Any:
    """``run(*args)`` with ``DISTILLAB_CUDA_GRAPHS=0``: DistilLab's eager path, as it ran
    before CUDA graphs (``core.cuda_graphs``), to measure what the graphs change."""
    with mock.patch.dict(os.environ, {"DISTILLAB_CUDA_GRAPHS": "0"}):
        return run(*args)


def with_graph_stats(run: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, Any]]:
    """``run(*args)`` and what CUDA graphs did during it (captures, capture seconds,
    replays, eager batches, failures)."""
    from core.cuda_graphs import STATS

    STATS.reset()
    output = run(*args)
    return output, STATS.as_dict()
