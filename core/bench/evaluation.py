"""Evaluation contenders: DistilLab's ``predict_proba`` vs ``pipeline``, ``evaluator`` and a
naive padded loop, end to end on the same texts."""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from core.bench.settings import (
    BenchSettings,
    failed,
    no_figure_callback,
    with_cudnn_attention,
    without_cuda_graphs,
)
from core.devices import inference_dtype
from core.speed import gc_paused, sync

logger = logging.getLogger(__name__)


def bench_eval(model: Any, tokenizer: Any, texts: list[str], labels: list[int],
               max_length: int, device: torch.device, settings: BenchSettings,
               figures: dict[str, Any] | None = None,
               on_figure: Callable[[str, dict[str, Any]], None] = no_figure_callback
               ) -> dict[str, dict[str, Any]]:
    """Sentences per second end to end for each evaluation contender on ``texts``.

    ``figures`` (filled in place, returned) and ``on_figure(name, figure)``, called after
    each contender, let the caller save partial results."""
    from transformers import pipeline

    from core.evaluation import predict_proba

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device,
                    batch_size=settings.eval_batch, truncation=True, max_length=max_length)
    warm = texts[:settings.warmup_texts]
    contenders: dict[str, tuple[Callable[[list[str]], Any], Callable[[Any], Any]]] = {
        "distillab": (lambda t: t, lambda t: predict_proba(
            model, tokenizer, t, max_length=max_length, device=device,
            cache=False).argmax(axis=1)),
        "pipeline": (lambda t: t, lambda t: [p["label"] for p in pipe(t)]),
        "evaluator": (lambda t: _evaluator_data(t, labels[:len(t)]),
                      lambda d: _run_evaluator(pipe, d)),
        "naive": (lambda t: t, lambda t: _naive_predict(model, tokenizer, t, max_length,
                                                        settings.eval_batch, device)),
    }
    if inference_dtype(device) == torch.bfloat16:
        # DistilLab runs bf16 here: the same pipeline on bf16 weights shows how much of the
        # gap precision alone closes.
        pipe_bf16 = pipeline("text-classification", tokenizer=tokenizer, device=device,
                             model=copy.deepcopy(model).to(torch.bfloat16),
                             batch_size=settings.eval_batch, truncation=True,
                             max_length=max_length)
        contenders["pipeline_bf16"] = (lambda t: t, lambda t: [p["label"] for p in pipe_bf16(t)])
    if device.type == "cuda":
        # DistilLab's eager path (no CUDA graphs), each shape warm like the others: what
        # the graphs change, side by side in the same run.
        contenders["distillab_eager"] = (lambda t: t, lambda t: without_cuda_graphs(
            lambda: predict_proba(model, tokenizer, t, max_length=max_length, device=device,
                                  cache=False).argmax(axis=1)))
        # DistilLab again with PyTorch's cuDNN attention kernel allowed: what leaving it out
        # (core.devices.attention_backends) costs or saves once every shape is warm.
        contenders["distillab_cudnn_attention"] = (lambda t: t, lambda t: with_cudnn_attention(
            lambda: predict_proba(model, tokenizer, t, max_length=max_length, device=device,
                                  cache=False).argmax(axis=1)))
    figures = {} if figures is None else figures
    predictions = _time_interleaved(contenders, warm, texts, max_length, device, settings,
                                    figures, on_figure)
    if "sent_per_s" in figures.get("distillab", {}):
        figures["distillab"].update(_eval_breakdown(model, tokenizer, texts, max_length, device,
                                                    settings))
    if device.type == "cuda" and "sent_per_s" in figures.get("distillab", {}):
        from core.cuda_graphs import STATS

        # One more untimed pass: what the graphs do once every shape is warm (all replays).
        STATS.reset()
        predict_proba(model, tokenizer, texts, max_length=max_length, device=device,
                      cache=False)
        figures["distillab"]["cuda_graphs_warm_pass"] = STATS.as_dict()
    if device.type == "cpu" and {"pipeline", "naive"} <= set(predictions):
        # A correctness check, untimed: in fp32 padding and batching must not change a label
        # (bf16 may flip near-ties of a random head, so DistilLab is re-run in fp32 here).
        naive = np.asarray(predictions["naive"])
        fp32 = predict_proba(model, tokenizer, texts, max_length=max_length, device=device,
                             dtype=torch.float32, cache=False).argmax(axis=1)
        figures["distillab"]["fp32_label_agreement_with_naive"] = float(np.mean(fp32 == naive))
        label_ids = {name: i for i, name in model.config.id2label.items()}
        figures["pipeline"]["label_agreement_with_naive"] = float(
            np.mean(np.asarray([label_ids[p] for p in predictions["pipeline"]]) == naive))
    return figures


def _time_interleaved(contenders: dict[str, tuple[Callable[[list[str]], Any],
                                                 Callable[[Any], Any]]],
                      warm: list[str], texts: list[str], max_length: int,
                      device: torch.device,
                      settings: BenchSettings, figures: dict[str, Any],
                      on_figure: Callable[[str, dict[str, Any]], None]) -> dict[str, Any]:
    """Time every contender in rounds, **taking turns** (one pass each per round), and keep
    each one's median: a slow moment of the machine lands on all of them, not on whichever
    ran then. Rounds go on until ``max_repeats``, or until every contender has run for
    ``min_time_s``. Fills ``figures`` with sentences/s (or the failure); returns each
    contender's last predictions."""
    states: dict[str, Any] = {}
    broken: set[str] = set()
    for name, (prepare, run) in contenders.items():
        try:
            # On CUDA twice: a batch shape runs eagerly once, then is captured as a CUDA
            # graph; the timed passes replay (capture time: cuda_graphs_warm_pass).
            for _ in range(2 if device.type == "cuda" else 1):
                run(prepare(warm))
            states[name] = prepare(texts)
        except Exception as error:
            logger.exception("eval contender %s failed", name)
            figures[name] = failed(error)
            broken.add(name)
    times: dict[str, list[float]] = {name: [] for name in states}
    predictions: dict[str, Any] = {}
    rounds = 0
    with gc_paused():
        while rounds < max(settings.max_repeats, 1) and (
                rounds == 0 or any(sum(t) < settings.min_time_s for t in times.values())):
            for name in [n for n in times if n not in broken]:
                try:
                    sync(device)
                    start = time.perf_counter()
                    predictions[name] = contenders[name][1](states[name])
                    sync(device)
                    times[name].append(time.perf_counter() - start)
                except Exception as error:
                    logger.exception("eval contender %s failed", name)
                    figures[name] = failed(error)
                    broken.add(name)
            rounds += 1
    for name in contenders:
        if name not in broken:
            seconds = float(np.median(times[name]))
            figures[name] = {"sent_per_s": len(texts) / seconds, "seconds": seconds,
                             "repeats": len(times[name]), "texts": len(texts),
                             "max_length": max_length}
        on_figure(name, figures[name])
    return predictions


def _eval_breakdown(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                    device: torch.device, settings: BenchSettings) -> dict[str, float]:
    """Where DistilLab's end-to-end time goes: tokenisation alone, then the model on
    pre-tokenised rows (batching, copies, forward, softmax, copy back). End to end overlaps
    the two on CUDA, so it can be less than their sum."""
    from core.batching import encode_uncached
    from core.evaluation import predict_proba_encoded

    tokenize_s, _, encoded = _time_median(lambda: encode_uncached(tokenizer, texts, max_length),
                                          device, settings.min_time_s, settings.max_repeats)
    pad = tokenizer.pad_token_id or 0
    model_s, _, _ = _time_median(lambda: predict_proba_encoded(model, encoded, pad_token_id=pad,
                                                               device=device),
                                 device, settings.min_time_s, settings.max_repeats)
    from core.bench.distill import forward_flops, measure_matmul_peak

    figures = {"tokenize_only_s": tokenize_s, "model_only_s": model_s,
               "model_only_sent_per_s": len(texts) / model_s,
               # What limits it: the model's own FLOPs (no padding) per second of model time,
               # against a bf16 matmul on this device (a smaller one on a CPU: seconds).
               "model_only_tflops": forward_flops(model.config, encoded.lengths) / model_s / 1e12}
    if device.type == "cpu":
        peak = measure_matmul_peak(device, n=2048, repeats=5)
        figures.update(matmul_peak_tflops=peak,
                       model_only_fraction_of_peak=figures["model_only_tflops"] / peak)
    return figures


def _time_median(fn: Callable[[], Any], device: torch.device, min_time_s: float,
                 max_repeats: int) -> tuple[float, int, Any]:
    """Median seconds of ``fn`` over repeats (at least one; more until ``min_time_s``)."""
    times: list[float] = []
    output = None
    with gc_paused():
        while not times or (len(times) < max_repeats and sum(times) < min_time_s):
            sync(device)
            start = time.perf_counter()
            output = fn()
            sync(device)
            times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times), output


def _naive_predict(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                   batch_size: int, device: torch.device) -> np.ndarray:
    model.to(device).eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding="max_length", truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            predictions.append(model(**batch).logits.softmax(-1).argmax(-1).cpu())
    return torch.cat(predictions).numpy()


def _evaluator_data(texts: list[str], labels: list[int]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"text": texts, "label": labels})


@contextlib.contextmanager
def _evaluate_tf_shim() -> Iterator[None]:
    """evaluate 0.4.6 tests ``isinstance(x, transformers.TFPreTrainedModel)`` on a pipeline
    object, and transformers 5 has no TensorFlow classes. For the call only, a placeholder
    class stands in (nothing is an instance of it, so the check reads False, as intended)."""
    from evaluate.evaluator import base

    module = base.transformers
    added = "TFPreTrainedModel" not in vars(module)
    if added:
        module.TFPreTrainedModel = type("TFPreTrainedModel", (), {})
    try:
        yield
    finally:
        if added:
            delattr(module, "TFPreTrainedModel")


def _run_evaluator(pipe: Any, data: Any) -> dict[str, Any]:
    from evaluate import evaluator

    from core.scores import load_metric

    label_mapping = {name: i for i, name in pipe.model.config.id2label.items()}
    with _evaluate_tf_shim():
        return evaluator("text-classification").compute(
            model_or_pipeline=pipe, data=data, metric=load_metric("accuracy"),
            input_column="text", label_column="label", label_mapping=label_mapping)


# distillation ------------------------------------------------------------------------------

