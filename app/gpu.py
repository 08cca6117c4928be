"""The app's GPU work (side-by-side predictions, scoring models on a dataset), ZeroGPU-ready.

On a Hugging Face Space the ``spaces`` package is installed, and ``spaces.GPU`` lends a GPU to
the decorated function for the length of one call on ZeroGPU hardware (and does nothing on
other hardware). Elsewhere the package is absent and :func:`gpu_task` leaves functions as they
are. Training is never run here: jobs run in worker processes (``core.jobs``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pandas as pd

from core import compare as compare_core
from core.runs import scalar_fields
from core.specs import DatasetSpec

F = TypeVar("F", bound=Callable[..., Any])
COMPARE_GPU_S = 60
EVALUATE_GPU_S = 180


def gpu_task(duration: int = 60) -> Callable[[F], F]:
    """``spaces.GPU(duration=...)`` when the ``spaces`` package is importable, else a no-op.

    Args:
        duration: the longest a call may hold a ZeroGPU GPU, in seconds.
    Returns:
        A decorator.
    """
    try:
        spaces = importlib.import_module("spaces")
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


@gpu_task(COMPARE_GPU_S)
def compare_models(texts: Sequence[str], model_refs: Sequence[str],
                   runs_dir: str | os.PathLike | None, max_length: int = 0) -> pd.DataFrame:
    """Each model's label, probabilities and latency on each text (``core.compare.compare``;
    ``max_length`` 0: each model's own)."""
    return compare_core.compare(list(texts), list(model_refs), runs_dir=runs_dir,
                                max_length=max_length or None)


@gpu_task(EVALUATE_GPU_S)
def evaluate_models(model_refs: Sequence[str], dataset: DatasetSpec,
                    runs_dir: str | os.PathLike | None, max_length: int = 128,
                    measure_speed: bool = False) -> tuple[str, pd.DataFrame]:
    """Score classifiers on one dataset's validation set (the ``distillab eval`` twin).

    Args:
        model_refs: ``run:<id>/<role>``, model folders or Hub ids (online).
        dataset: the data; its validation set (or split) is scored.
        runs_dir: the runs folder for ``run:`` refs.
        max_length: truncation length in tokens.
        measure_speed: also time latency and throughput (slower).
    Returns:
        The dataset's description and one row per model: accuracy, macro-F1, parameters
        (and speed when measured).
    Raises:
        ValueError: no models, bad data, or a model without a head for the dataset's labels.
    """
    from core.scoring import evaluate_models as evaluate_core

    description, models = evaluate_core(model_refs, dataset, runs_dir, max_length=max_length,
                                        measure=measure_speed)
    rows = [{"model": ref, **scalar_fields(metrics)} for ref, metrics in models.items()]
    return description, pd.DataFrame(rows)
