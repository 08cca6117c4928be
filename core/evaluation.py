"""Batched prediction: texts in, probabilities (or logits) out, the same way everywhere.

Prediction tokenises once (``core.batching`` cache; on CUDA new texts are tokenised in a
background thread while the GPU computes), runs length-sorted token-budget batches under
``inference_mode`` (bf16 autocast and SDPA attention on CUDA, pinned non-blocking copies)
and restores the input order. Metrics, agreement and the per-example table computed from
the probabilities are in ``core.scores``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
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
from core.cpu_streams import map_in_streams, stream_count
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
from core.texts import Text

logger = logging.getLogger(__name__)

# New texts on CUDA, from this many on, are tokenised in a background thread chunk by chunk
# while the GPU runs the chunk before (fewer take under a millisecond at once). 1,000 BBC
# articles (2.2M characters) took 0.49 s to tokenise and 0.30 s to run on an H200 when the
# two ran one after the other: 0.81 s.
STREAM_MIN_TEXTS = 64


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
    graph for that shape (``core.cuda_graphs``); the padding rows are dropped after. On a
    CPU the batches run side by side in single-threaded streams (``core.cpu_streams``)."""
    on_cuda = device.type == "cuda"
    multiple = width_multiple(device)
    graphs = inference_graphs(model, device) if graphs_enabled(device) else None
    full_rows = max((len(b) for b in batches), default=1)
    cap = width_cap(model)
    # A regression model's one output is its prediction: softmax would make it 1.0.
    softmax = softmax and model.config.num_labels > 1

    def run(indices: np.ndarray) -> torch.Tensor:
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
        return torch.softmax(logits, dim=-1) if softmax else logits.clone()

    streams = stream_count(len(batches)) if device.type == "cpu" else 1
    return map_in_streams(run, batches, streams)


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


