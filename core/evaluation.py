"""Scoring models on a validation set: batched prediction, metrics, agreement, example table.

Prediction tokenises once (``core.batching`` cache; on CUDA new texts are tokenised in a
background thread while the GPU computes), runs length-sorted token-budget batches under
``inference_mode`` (bf16 autocast and SDPA attention on CUDA, pinned non-blocking copies)
and restores the input order. Metrics go through ``evaluate`` with the modules shipped in
``core/metrics/`` (loaded by local path, so no Hub access), computed by scikit-learn.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from core.batching import (
    EncodedTexts,
    batches_by_tokens,
    cached_encoding,
    collate,
    concat_encoded,
    encode_in_chunks,
    encode_texts,
    encode_uncached,
    store_encoding,
)
from core.cuda_graphs import (
    graphs_enabled,
    inference_graphs,
    model_attention_mask,
    row_bucket,
    width_cap,
    width_multiple,
)
from core.devices import (
    autocast_context,
    configure_cpu_threads,
    default_batch_rows,
    default_batch_tokens,
    forward_context,
    inference_dtype,
    prefer_sdpa,
)
from core.inference import pad_id_of
from core.texts import PAIR_COLUMN, Text, split_pairs

if TYPE_CHECKING:
    import evaluate

logger = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent / "metrics"
SHIPPED_METRICS = ("accuracy", "precision", "recall", "f1", "confusion_matrix", "pearsonr",
                   "spearmanr", "mse")

# evaluate metric objects keep per-call state (an Arrow buffer); one lock keeps concurrent
# callers in this process (e.g. UI threads) from interleaving on the cached objects.
_METRICS_LOCK = threading.Lock()
# New texts on CUDA, from this many on, are tokenised in a background thread chunk by chunk
# while the GPU runs the chunk before (fewer take under a millisecond at once). 1,000 BBC
# articles (2.2M characters) took 0.49 s to tokenise and 0.30 s to run on an H200 when the
# two ran one after the other: 0.81 s.
STREAM_MIN_TEXTS = 64


def metrics_lock() -> threading.Lock:
    """The lock around the cached metric objects (see ``_METRICS_LOCK``)."""
    return _METRICS_LOCK


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load one shipped metric module through ``evaluate`` by local path, cached in-process.

    Args:
        name: one of ``SHIPPED_METRICS``.
    Returns:
        The ``evaluate`` metric; the same object on every call.
    """
    import evaluate

    if name not in SHIPPED_METRICS:
        raise ValueError(f"unknown metric {name!r}; shipped: {', '.join(SHIPPED_METRICS)}")
    # A local script path never touches the Hub. keep_in_memory: no Arrow cache files under
    # ~/.cache, which would collide between concurrent jobs sharing the default experiment id.
    return evaluate.load(str(METRICS_DIR / name / f"{name}.py"), keep_in_memory=True)


def predict_proba(model: Any, tokenizer: Any, texts: Sequence[Text], *, max_length: int,
                  device: torch.device | str = "cpu", batch_tokens: int | None = None,
                  max_batch_size: int | None = None, dtype: torch.dtype | None = None,
                  cache: bool = True) -> np.ndarray:
    """Class probabilities of ``texts``, in input order (for a regression model, with one
    output, its predicted values).

    Texts seen before (same tokenizer and max length) reuse their cached tokenisation. New
    texts on CUDA are tokenised chunk by chunk in a background thread while the GPU runs the
    previous chunk, so tokenisation stays off the GPU's critical path.

    Args:
        model: a sequence classifier returning ``.logits``; moved to ``device`` if elsewhere.
        tokenizer: its tokenizer (tokenisation is cached per tokenizer, texts and length).
        texts: the texts to classify.
        max_length: truncation length in tokens.
        device: where to run.
        batch_tokens: padded-token budget of one batch; default
            ``default_batch_tokens(device)`` (32,768 on a GPU, 1,024 on a CPU).
        max_batch_size: most rows in one batch; default ``default_batch_rows(device)``
            (1,024 on a GPU, 256 on a CPU).
        dtype: compute precision; default ``inference_dtype(device, model)`` (bf16 on CUDA
            and on CPUs with native bf16, fp32 elsewhere and for int8 models).
        cache: read and fill the tokenisation cache; False tokenises from scratch and keeps
            nothing (what timing end to end needs).
    Returns:
        float32 array of shape ``(len(texts), num_labels)``; rows sum to 1.
    """
    if len(texts) == 0:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    device = torch.device(device)
    batch_tokens, max_batch_size = _batch_budget(device, batch_tokens, max_batch_size)
    encoded = cached_encoding(tokenizer, texts, max_length) if cache else None
    if encoded is None and device.type == "cuda" and len(texts) >= STREAM_MIN_TEXTS:
        return _predict_streaming(model, tokenizer, texts, max_length=max_length, device=device,
                                  batch_tokens=batch_tokens, max_batch_size=max_batch_size,
                                  dtype=dtype, cache=cache)
    if encoded is None:
        encoded = (encode_texts if cache else encode_uncached)(tokenizer, texts, max_length)
    return predict_proba_encoded(model, encoded, pad_token_id=pad_id_of(tokenizer), device=device,
                                 batch_tokens=batch_tokens, max_batch_size=max_batch_size,
                                 dtype=dtype)


def predict_proba_encoded(model: Any, encoded: EncodedTexts, *, pad_token_id: int,
                          device: torch.device | str = "cpu", batch_tokens: int | None = None,
                          max_batch_size: int | None = None, dtype: torch.dtype | None = None
                          ) -> np.ndarray:
    """Like :func:`predict_proba`, for texts already tokenised (unpadded ids).

    Args:
        model: a sequence classifier returning ``.logits``.
        encoded: token ids per text, e.g. from ``encode_texts``.
        pad_token_id: the id that pads a batch to its longest row.
        device, batch_tokens, max_batch_size, dtype: as in :func:`predict_proba`.
    Returns:
        float32 array of shape ``(len(encoded), num_labels)`` in input order.
    """
    device = torch.device(device)
    if len(encoded) == 0:
        _move_model(model, device)
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    batch_tokens, max_batch_size = _batch_budget(device, batch_tokens, max_batch_size)
    batches = batches_by_tokens(encoded.lengths, batch_tokens, max_batch_size,
                                width_multiple(device), width_cap(model))
    with inference_session(model, device, dtype):
        outputs = _forward_batches(model, encoded, batches, pad_token_id, device)
        # One device-to-host copy at the end instead of a sync after every batch.
        probabilities = torch.cat(outputs).cpu().numpy()
    return _in_input_order(probabilities, batches)


def predict_logits_encoded(model: Any, encoded: EncodedTexts, *, pad_token_id: int,
                           device: torch.device | str = "cpu", batch_tokens: int | None = None,
                           max_batch_size: int | None = None, dtype: torch.dtype | None = None
                           ) -> torch.Tensor:
    """Logits of pre-tokenised rows, in row order, left on ``device`` (e.g. a teacher's
    logits cached once for distillation).

    Same path as :func:`predict_proba_encoded`: length-sorted token-budget batches,
    ``inference_mode``, the device's default precision (bf16 on CUDA and on CPUs with
    native bf16) and cache-sized batches on a CPU.

    Args:
        model: a sequence classifier returning ``.logits``.
        encoded: token ids per row.
        pad_token_id: the id that pads a batch to its longest row.
        device, batch_tokens, max_batch_size, dtype: as in :func:`predict_proba`.
    Returns:
        A float32 tensor of shape ``(len(encoded), num_labels)`` on ``device``; an ordinary
        tensor (not an inference tensor), so a loss may use it during training.
    """
    device = torch.device(device)
    batch_tokens, max_batch_size = _batch_budget(device, batch_tokens, max_batch_size)
    # Allocated outside inference_mode so autograd may later save slices of it.
    result = torch.empty((len(encoded), model.config.num_labels), dtype=torch.float32,
                         device=device)
    if len(encoded) == 0:
        return result
    batches = batches_by_tokens(encoded.lengths, batch_tokens, max_batch_size,
                                width_multiple(device), width_cap(model))
    with inference_session(model, device, dtype):
        logits = torch.cat(_forward_batches(model, encoded, batches, pad_token_id, device,
                                            softmax=False))
        result[torch.as_tensor(np.concatenate(batches), device=device)] = logits
    return result


def _batch_budget(device: torch.device, batch_tokens: int | None, max_batch_size: int | None
                  ) -> tuple[int, int]:
    """The padded tokens and rows of one inference batch: as given, else the device's."""
    return (default_batch_tokens(device) if batch_tokens is None else batch_tokens,
            default_batch_rows(device) if max_batch_size is None else max_batch_size)


@contextlib.contextmanager
def inference_session(model: Any, device: torch.device, dtype: torch.dtype | None = None
                      ) -> Iterator[None]:
    """Run ``model`` for inference on ``device``: eval mode, ``inference_mode``, autocast.

    The model is moved to ``device``, switched to SDPA attention where it was eager, and
    given back in the train/eval mode it had (validation runs mid-training). On CPU the
    intra-op threads are capped to the CPUs this process may use.

    Args:
        model: a sequence classifier.
        device: where to run.
        dtype: compute precision; default ``inference_dtype(device, model)``.
    """
    dtype = inference_dtype(device, model) if dtype is None else dtype
    _move_model(model, device)
    prefer_sdpa(model)
    if device.type == "cpu":
        _configure_threads_once()
    was_training = model.training
    model.eval()  # dropout off
    try:
        with torch.inference_mode(), forward_context(device, dtype):
            yield
    finally:
        model.train(was_training)


def _forward_batches(model: Any, encoded: EncodedTexts, batches: list[np.ndarray],
                     pad_token_id: int, device: torch.device, softmax: bool = True
                     ) -> list[torch.Tensor]:
    """Softmax probabilities (or logits), fp32 and left on ``device``, in batch order.

    On CUDA each batch is padded to a static shape (width a multiple of 32 tokens, rows a
    power of two up to the largest batch of that width) and run through the model's CUDA
    graph for that shape (``core.cuda_graphs``); the padding rows are dropped after."""
    on_cuda = device.type == "cuda"
    multiple = width_multiple(device)
    graphs = inference_graphs(model, device) if graphs_enabled(device) else None
    full_rows = max((len(b) for b in batches), default=1)
    cap = width_cap(model)
    # A regression model's one output is its prediction: softmax would make it 1.0.
    softmax = softmax and model.config.num_labels > 1
    outputs = []
    for indices in batches:
        rows = row_bucket(len(indices), full_rows) if graphs is not None else None
        # Pinned host memory lets the copy overlap with the previous batch's compute.
        batch = collate(encoded, indices, pad_token_id, pin_memory=on_cuda,
                        width_multiple=multiple, rows=rows, width_cap=cap)
        batch = {k: v.to(device, non_blocking=on_cuda) for k, v in batch.items()}
        if graphs is None:
            logits = _logits(model, batch)
        else:
            logits = graphs.run("logits", batch, lambda b: _logits(model, b))
        logits = logits[:len(indices)]
        # Softmax in fp32: bf16 probabilities would round confidences to ~3 digits. Graph
        # outputs are overwritten by the shape's next replay: logits are copied out.
        outputs.append(torch.softmax(logits, dim=-1) if softmax else logits.clone())
    return outputs


def _logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """fp32 logits of one collated batch (autocast re-opened: inside a graph capture it
    must not reuse cast weights cached outside it, see ``core.devices.autocast_context``)."""
    dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
    inputs = {**batch, "attention_mask": model_attention_mask(model, batch["attention_mask"])}
    if dtype is None:
        return model(**inputs).logits.float()
    with autocast_context(batch["input_ids"].device, dtype):
        return model(**inputs).logits.float()


def _in_input_order(probabilities: np.ndarray, batches: list[np.ndarray]) -> np.ndarray:
    order = np.concatenate(batches)
    result = np.empty_like(probabilities)
    result[order] = probabilities
    return result


def _predict_streaming(model: Any, tokenizer: Any, texts: Sequence[Text], *, max_length: int,
                       device: torch.device, batch_tokens: int, max_batch_size: int,
                       dtype: torch.dtype | None, cache: bool) -> np.ndarray:
    """:func:`predict_proba` for new texts on CUDA: tokenise chunk k+1 while chunk k runs.

    Kernel launches are asynchronous, so the host thread queues a chunk's batches and goes
    back to waiting for the tokenizer thread while the GPU works; nothing syncs until the
    single copy of every probability at the end. Each chunk is sorted and batched by
    length on its own.
    """
    pad_id = pad_id_of(tokenizer)
    outputs: list[torch.Tensor] = []
    batches: list[np.ndarray] = []
    parts: list[EncodedTexts] = []
    with inference_session(model, device, dtype):
        # An eighth of the texts first (the only chunk that cannot overlap), then doubling.
        first = max(64, min(1024, len(texts) // 8))
        for start, chunk in encode_in_chunks(tokenizer, texts, max_length, first_chunk=first):
            chunk_batches = batches_by_tokens(chunk.lengths, batch_tokens, max_batch_size,
                                              width_multiple(device), width_cap(model))
            outputs.extend(_forward_batches(model, chunk, chunk_batches, pad_id, device))
            batches.extend(b + start for b in chunk_batches)
            parts.append(chunk)
        probabilities = torch.cat(outputs).cpu().numpy()
    if cache:
        store_encoding(tokenizer, texts, max_length, concat_encoded(parts))
    return _in_input_order(probabilities, batches)


_THREADS_CONFIGURED = False


def _configure_threads_once() -> None:
    global _THREADS_CONFIGURED
    if not _THREADS_CONFIGURED:
        configure_cpu_threads()
        _THREADS_CONFIGURED = True


def _move_model(model: Any, device: torch.device) -> None:
    try:
        current = next(model.parameters()).device
    except StopIteration:
        return
    if current != device:
        logger.debug("moving model from %s to %s", current, device)
        model.to(device)


def compute_metrics(labels: Sequence[int], predictions: Sequence[int],
                    label_names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Computed through ``evaluate`` with the shipped modules. Every label in ``label_names``
    gets a per-class entry and a confusion-matrix row/column, even when absent (scores 0).
    Macro-F1 averages over the labels present in ``labels`` or ``predictions`` (scikit-learn's
    default), so a class missing from a small validation set does not count as an F1 of 0.

    Args:
        labels: true label ids.
        predictions: predicted label ids.
        label_names: names of the label ids ``0 .. len(label_names) - 1``.
    Returns:
        ``{"accuracy", "macro_f1", "per_class": {name: {"precision", "recall", "f1",
        "support"}}, "confusion_matrix"}``, the matrix as lists (rows true, columns predicted).
    """
    references = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predictions, dtype=np.int64)
    _check_label_ids(references, predicted, label_names)
    every_label = list(range(len(label_names)))
    common = {"references": references, "predictions": predicted}
    per_label = {"labels": every_label, "average": None, "zero_division": 0}
    with _METRICS_LOCK:
        accuracy = load_metric("accuracy").compute(**common)["accuracy"]
        macro_f1 = load_metric("f1").compute(**common, average="macro", zero_division=0)["f1"]
        precision = load_metric("precision").compute(**common, **per_label)["precision"]
        recall = load_metric("recall").compute(**common, **per_label)["recall"]
        f1 = load_metric("f1").compute(**common, **per_label)["f1"]
        matrix = load_metric("confusion_matrix").compute(
            **common, labels=every_label)["confusion_matrix"]
    matrix = np.asarray(matrix, dtype=np.int64)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]),
               "f1": float(f1[i]), "support": int(matrix[i].sum())}
        for i, name in enumerate(label_names)
    }
    return {"accuracy": float(accuracy), "macro_f1": float(macro_f1), "per_class": per_class,
            "confusion_matrix": matrix.tolist()}


def _check_label_ids(references: np.ndarray, predicted: np.ndarray,
                     label_names: list[str]) -> None:
    if references.shape != predicted.shape or references.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D and equally long, got "
                         f"{references.shape} and {predicted.shape}")
    if len(references) == 0:
        raise ValueError("no examples to score")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label names must be distinct, got {label_names}")
    for what, ids in (("labels", references), ("predictions", predicted)):
        if ids.min() < 0 or ids.max() >= len(label_names):
            raise ValueError(f"{what} must be ids in 0..{len(label_names) - 1} "
                             f"({len(label_names)} label names), got {ids.min()}..{ids.max()}")


def agreement(predictions_a: Sequence[int], predictions_b: Sequence[int]) -> float:
    """Fraction of examples on which two models predict the same label.

    Args:
        predictions_a: label ids from one model.
        predictions_b: label ids from the other, same examples in the same order.
    Returns:
        A value in [0, 1].
    """
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"predictions must be 1-D and equally long, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no predictions to compare")
    return float(np.mean(a == b))


def predictions_table(texts: Sequence[Text], labels: Sequence[int],
                      probabilities: dict[str, np.ndarray],
                      label_names: list[str]) -> pd.DataFrame:
    """One row per example with every model's prediction, for browsing and disagreements.

    Args:
        texts: the examples' texts, or ``(first, second)`` pairs.
        labels: their true label ids.
        probabilities: per role (``teacher``, ``student``, ``baseline``...), an array of shape
            ``(len(texts), len(label_names))``.
        label_names: names of the label ids.
    Returns:
        Columns ``index, text`` (``text_pair`` too for pairs), ``label, label_name`` and,
        per role ``r``: ``r_pred`` (int),
        ``r_pred_name``, ``r_confidence`` (max probability), ``r_correct`` (bool) and
        ``r_probs`` (list of floats). For a regression (one label name, the target's):
        ``label`` is the target and per role ``r_pred`` (float) and ``r_error``
        (``|r_pred - label|``).
    """
    if len(label_names) == 1:
        return _regression_table(texts, labels, probabilities)
    label_ids = np.asarray(labels, dtype=np.int64)
    names = np.asarray(label_names, dtype=object)
    if len(label_ids) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(label_ids)} labels")
    firsts, seconds = split_pairs(texts)
    table = pd.DataFrame({
        "index": np.arange(len(texts), dtype=np.int64),
        "text": firsts,
        **({PAIR_COLUMN: seconds} if seconds is not None else {}),
        "label": label_ids,
        "label_name": names[label_ids] if len(label_ids) else [],
    })
    for role, probs in probabilities.items():
        probs = np.asarray(probs, dtype=np.float32)
        if probs.shape != (len(texts), len(label_names)):
            raise ValueError(f"{role} probabilities have shape {probs.shape}, expected "
                             f"{(len(texts), len(label_names))}")
        predicted = probs.argmax(axis=1).astype(np.int64)
        table[f"{role}_pred"] = predicted
        table[f"{role}_pred_name"] = names[predicted] if len(predicted) else []
        table[f"{role}_confidence"] = probs.max(axis=1, initial=0.0)
        table[f"{role}_correct"] = predicted == label_ids
        table[f"{role}_probs"] = [row.tolist() for row in probs]
    return table


def _regression_table(texts: Sequence[Text], targets: Sequence[float],
                      outputs: dict[str, np.ndarray]) -> pd.DataFrame:
    """:func:`predictions_table` for a regression: targets, each model's value and error."""
    values = np.asarray(targets, dtype=np.float64)
    if len(values) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(values)} targets")
    firsts, seconds = split_pairs(texts)
    table = pd.DataFrame({"index": np.arange(len(texts), dtype=np.int64), "text": firsts,
                          **({PAIR_COLUMN: seconds} if seconds is not None else {}),
                          "label": values})
    for role, predicted in outputs.items():
        predicted = np.asarray(predicted, dtype=np.float64)
        if predicted.shape != (len(texts), 1):
            raise ValueError(f"{role} outputs have shape {predicted.shape}, expected "
                             f"{(len(texts), 1)}")
        table[f"{role}_pred"] = predicted[:, 0]
        table[f"{role}_error"] = np.abs(predicted[:, 0] - values)
    return table
