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

from core import actions
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
def compare_models(texts: Sequence[Any], model_refs: Sequence[str],
                   runs_dir: str | os.PathLike | None, max_length: int = 0) -> pd.DataFrame:
    """``core.actions.compare_texts``, holding a ZeroGPU GPU for the call."""
    return actions.compare_texts(texts, model_refs, runs_dir, max_length)


@gpu_task(EVALUATE_GPU_S)
def evaluate_models(model_refs: Sequence[str], dataset: DatasetSpec,
                    runs_dir: str | os.PathLike | None, max_length: int = 128,
                    measure_speed: bool = False) -> tuple[str, pd.DataFrame]:
    """``core.actions.score_models`` (the ``distillab eval`` twin), holding a ZeroGPU GPU
    for the call.

    Raises:
        ValueError: no models, bad data, or a model without a head for the dataset's labels.
    """
    return actions.score_models(model_refs, dataset, runs_dir, max_length, measure_speed)
