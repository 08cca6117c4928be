"""One :class:`Predictor`: a classifier ready to predict, the same way everywhere.

A predictor binds a model, its tokenizer and label names, the truncation length (by default
the one its run trained and was scored with), the device and the precision. Evaluation,
speed measurement, Compare and the CLI's ``predict`` all go through it, so a probability and
a latency mean the same thing in the leaderboard, the Compare tab and the API:

* :meth:`Predictor.predict_proba`: many texts, length-sorted token-budget batches, cached
  tokenisation (``core.evaluation.predict_proba``);
* :meth:`Predictor.time_one`: one text end to end at batch 1, warmed on its shape, the median
  over repeats, exactly as ``core.speed`` times the leaderboard's latency.

:meth:`Predictor.load` keeps a few loaded models in an LRU cache keyed by their folder, its
``config.json`` time stamp (a model re-saved in place is reloaded) and the device.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.batching import collate, encode_uncached

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 128  # models that come from no run (a folder, a Hub id)
MODEL_CACHE_SIZE = 4
TIMING_REPEATS = 5


class InferenceError(ValueError):
    """A model that cannot predict here, with a message that says why and what to do."""


def one_batch(tokenizer: Any, text: str, max_length: int, device: torch.device,
              pad_id: int) -> dict[str, torch.Tensor]:
    """One text through DistilLab's own path: fast tokenizer, collate, copy to device."""
    batch = collate(encode_uncached(tokenizer, [text], max_length), [0], pad_id)
    return {k: v.to(device) for k, v in batch.items()}


def end_to_end_one(model: Any, tokenizer: Any, text: str, max_length: int,
                   device: torch.device, pad_id: int) -> tuple[torch.Tensor, float]:
    """Probabilities of one text and the seconds a caller waits for its label: tokenise
    (uncached), copy, forward, softmax, argmax copied to the host (which waits for the
    device). Call inside ``core.evaluation.inference_session``."""
    start = time.perf_counter()
    batch = one_batch(tokenizer, text, max_length, device, pad_id)
    logits = model(**batch).logits.float()
    # One output is a regression's value: returned as it is, not as a probability.
    probs = torch.softmax(logits, dim=-1) if logits.shape[-1] > 1 else logits
    probs.argmax(dim=-1).item()
    return probs[0], time.perf_counter() - start


def pad_id_of(tokenizer: Any) -> int:
    pad = getattr(tokenizer, "pad_token_id", None)
    return 0 if pad is None else int(pad)


@dataclass
class Predictor:
    """A classifier with everything that decides its predictions and their cost.

    Attributes:
        model: a sequence classifier (eval mode, on ``device``).
        tokenizer: its tokenizer.
        label_names: the names of its classes, by id.
        max_length: truncation length in tokens.
        device: where it runs.
        dtype: compute precision; None: the device's default (``inference_dtype``).
    """

    model: Any
    tokenizer: Any
    label_names: list[str]
    max_length: int
    device: torch.device
    dtype: torch.dtype | None = None

    @classmethod
    def load(cls, ref: str, runs_dir: str | os.PathLike | None = None, device: str = "auto",
             max_length: int | None = None) -> Predictor:
        """A predictor for a model reference; the model is loaded once per process.

        Args:
            ref: ``run:<id>/<role>``, a model folder, ``bundled:minilm`` or a Hub id.
            runs_dir: the runs folder for ``run:`` refs.
            device: ``auto``, ``cpu``, ``cuda``...
            max_length: truncation length; None or 0: the run's own (what it was trained
                and scored with), else :data:`DEFAULT_MAX_LENGTH`.
        Raises:
            InferenceError / ModelError: a model that cannot be found or is not a classifier.
        """
        from core.devices import resolve_device

        target = resolve_device(device)
        model, tokenizer, names = _cached_model(ref, runs_dir, target)
        length = max_length or run_max_length(ref, runs_dir) or DEFAULT_MAX_LENGTH
        return cls(model, tokenizer, names, int(length), target)

    def predict_proba(self, texts: list[str], *, cache: bool = True,
                      batch_tokens: int | None = None) -> np.ndarray:
        """Class probabilities of many texts, in input order (``(n, classes)`` float32)."""
        from core.evaluation import predict_proba

        return predict_proba(self.model, self.tokenizer, texts, max_length=self.max_length,
                             device=self.device, batch_tokens=batch_tokens, dtype=self.dtype,
                             cache=cache)

    def time_one(self, text: str, repeats: int = TIMING_REPEATS) -> tuple[np.ndarray, float]:
        """One text's probabilities and its latency in ms: batch 1, end to end, after one
        untimed call at its shape, the median of ``repeats`` calls (the leaderboard's way)."""
        from core.evaluation import inference_session
        from core.speed import gc_paused

        pad_id = pad_id_of(self.tokenizer)
        with inference_session(self.model, self.device, self.dtype), gc_paused():
            end_to_end_one(self.model, self.tokenizer, text, self.max_length, self.device,
                           pad_id)  # the first call at a shape builds its kernels
            samples = []
            for _ in range(repeats):
                probs, seconds = end_to_end_one(self.model, self.tokenizer, text,
                                                self.max_length, self.device, pad_id)
                samples.append(seconds)
        return probs.float().cpu().numpy(), float(np.median(samples) * 1000.0)


def run_max_length(ref: str, runs_dir: str | os.PathLike | None) -> int | None:
    """The truncation length a run's model was scored with (``metrics.json``, else its
    spec), or None for a model from no run."""
    from core.runs import ModelRef, RunError, open_run

    try:
        run = open_run(ModelRef.parse(ref).run_id, runs_dir)
    except RunError:
        return None
    length = run.read_metrics().max_length or (run.spec.get("train") or {}).get("max_length")
    return int(length) if length else None


_MODELS: OrderedDict[tuple[str, float, str], tuple[Any, Any, list[str]]] = OrderedDict()
_MODELS_LOCK = threading.Lock()


def _check_is_classifier(ref: str, path: str) -> None:
    config = Path(path) / "config.json"
    if not config.is_file():
        return  # a Hub id: load_classifier says what is wrong
    try:
        architectures = json.loads(config.read_text()).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise InferenceError(f"{ref} has no classification head (it is an encoder, not a "
                             "classifier); use fine-tuned models, e.g. a run's teacher, "
                             "student or baseline")


def _cached_model(ref: str, runs_dir: str | os.PathLike | None, device: torch.device
                  ) -> tuple[Any, Any, list[str]]:
    from core.models import load_classifier, resolve_model_ref

    runs = os.fspath(runs_dir) if runs_dir is not None else None
    path = resolve_model_ref(ref, runs)
    _check_is_classifier(ref, path)
    config = Path(path) / "config.json"
    stamp = config.stat().st_mtime if config.is_file() else 0.0
    key = (str(Path(path).resolve()) if Path(path).is_dir() else path, stamp, str(device))
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        model, tokenizer, _ = load_classifier(ref, None, runs_dir=runs)
        model.to(device).eval()
        names = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        _MODELS[key] = (model, tokenizer, names)
        while len(_MODELS) > MODEL_CACHE_SIZE:
            _MODELS.popitem(last=False)
        logger.debug("loaded %s on %s", ref, device)
        return _MODELS[key]
