"""Distillation contenders: ``core.train.train`` vs a naive fp32 loop vs the ``Trainer`` KD
subclass; on CUDA, model FLOP/s against a measured bf16 matmul peak and the 128 x 128 run."""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.bench.settings import (
    KD_ALPHA,
    KD_TEMPERATURE,
    LABEL_NAMES,
    PEAK_MATMUL_N,
    BenchSettings,
    failed,
    no_figure_callback,
    with_cudnn_attention,
    with_graph_stats,
    without_cuda_graphs,
)
from core.devices import training_dtype
from core.speed import sync

logger = logging.getLogger(__name__)


def bench_distill(teacher: Any, student: Any, tokenizer: Any, texts: dict[str, Any],
                  device: torch.device, settings: BenchSettings,
                  figures: dict[str, Any] | None = None,
                  on_figure: Callable[[str, dict[str, Any]], None] = no_figure_callback
                  ) -> dict[str, Any]:
    """Samples per second of one distillation epoch for each contender (same rows, same
    initial student, batch size and max length); ``figures`` and ``on_figure`` as in
    :func:`bench_eval`."""
    from core.specs import RECIPES

    lengths = _token_lengths(tokenizer, texts["train"], settings.distill_max_length)
    flops = (3 * forward_flops(student.config, lengths)  # forward + backward of the student
             + forward_flops(teacher.config, lengths))  # the teacher once per row and epoch
    runs: dict[str, Callable[[list[str], list[int]], dict[str, Any]]] = {
        "distillab": lambda t, y: _distill_distillab(teacher, student, tokenizer, t, y, texts,
                                                     RECIPES["logits"], device, settings),
        "distillab_teacher_every_step": lambda t, y: _distill_distillab(
            teacher, student, tokenizer, t, y, texts, RECIPES["distilbert"], device, settings),
        "naive": lambda t, y: _distill_naive(teacher, student, tokenizer, t, y, device,
                                             settings),
        "trainer": lambda t, y: _distill_trainer(teacher, student, tokenizer, t, y, device,
                                                 settings),
    }
    if device.type == "cuda":
        # The first contender on DistilLab's eager path (no CUDA graphs): old and new side
        # by side in one run.
        runs["distillab_eager"] = lambda t, y: without_cuda_graphs(
            _distill_distillab, teacher, student, tokenizer, t, y, texts, RECIPES["logits"],
            device, settings)
        # Last: the first contender again with PyTorch's cuDNN attention kernel allowed, to
        # measure what leaving it out (core.devices.attention_backends) saves. cuDNN keeps
        # the graphs it built for the bf16 Trainer's shapes, so this understates cuDNN's
        # first-use cost rather than overstating it.
        runs["distillab_cudnn_attention"] = lambda t, y: with_cudnn_attention(
            _distill_distillab, teacher, student, tokenizer, t, y, texts, RECIPES["logits"],
            device, settings)
    figures = {} if figures is None else figures
    figures["settings"] = {"rows": len(texts["train"]), "batch": settings.distill_batch,
                           "max_length": settings.distill_max_length,
                           "mean_tokens": float(lengths.mean()), "model_flops": flops,
                           "recipe": "KD (T=2) 0.5 + CE 0.5, logits only"}
    for name, run in runs.items():
        try:
            run(texts["warm_train"], texts["warm_train_labels"])  # untimed warm-up
            figure, graphs = with_graph_stats(run, texts["train"], texts["train_labels"])
            if name.startswith("distillab") and device.type == "cuda":
                figure["cuda_graphs"] = graphs
        except Exception as error:
            logger.exception("distillation contender %s failed", name)
            figures[name] = failed(error)
            on_figure(name, figures[name])
            continue
        steady = _steady_rate(figure.pop("step_times", []), settings.distill_batch)
        if steady:  # training steps alone: the epoch minus tokenisation, teacher, validation
            figure["steady_samples_per_s"] = steady
        if figure.get("warm_epoch_seconds"):
            figure["warm_epoch_samples_per_s"] = len(texts["train"]) / figure[
                "warm_epoch_seconds"]
        figure["samples_per_s"] = len(texts["train"]) / figure["seconds"]
        figure["model_tflops_per_s"] = flops / figure["seconds"] / 1e12
        figures[name] = figure
        on_figure(name, figure)
    if device.type == "cuda":
        peak = measure_matmul_peak(device)
        figures["matmul_peak_tflops"] = peak
        for name in runs:
            if "model_tflops_per_s" in figures[name]:
                figures[name]["fraction_of_peak"] = figures[name]["model_tflops_per_s"] / peak
    return figures


def forward_flops(config: Any, lengths: np.ndarray) -> float:
    """Model FLOPs of one encoder forward over rows of ``lengths`` tokens (no padding).

    Per layer and sequence of ``s`` tokens: ``2 s (4 d^2 + 2 d f)`` in the projections and
    feed-forward, ``4 s^2 d`` in the attention products; plus the pooler and head.
    """
    d, f = config.hidden_size, config.intermediate_size
    s = np.asarray(lengths, dtype=np.float64)
    per_layer = 2 * s * (4 * d * d + 2 * d * f) + 4 * s * s * d
    head = 2 * d * d + 2 * d * config.num_labels
    return float((config.num_hidden_layers * per_layer + head).sum())


def _token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    from core.batching import encode_uncached

    return encode_uncached(tokenizer, texts, max_length).lengths


def _distill_distillab(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                       labels: list[int], texts: dict[str, Any], recipe: Any,
                       device: torch.device, settings: BenchSettings, batch: int | None = None,
                       max_length: int | None = None, compile_model: bool = False,
                       warm_epoch: bool = True) -> dict[str, Any]:
    from core.batching import clear_cache
    from core.specs import StageSettings, TrainConfig
    from core.train import TrainData, train

    data = TrainData(tokenizer=tokenizer, texts=rows, labels=np.asarray(labels),
                     validation_texts=texts["validation"],
                     validation_labels=np.asarray(texts["validation_labels"]),
                     label_names=LABEL_NAMES)
    # On CUDA a second epoch is timed too: the first pays once for every new batch shape
    # (kernel loading, heuristics), which a long run amortises and one short epoch does not.
    epochs = 2 if device.type == "cuda" and warm_epoch else 1
    config = TrainConfig(student=StageSettings(epochs, 1e-4),
                         batch_size=batch or settings.distill_batch,
                         max_length=max_length or settings.distill_max_length,
                         compile=compile_model)
    # train() converts the teacher to bf16 in place on CUDA; the other contenders need fp32.
    own_teacher, own_student = copy.deepcopy(teacher), copy.deepcopy(student)
    steps: list[tuple[float, int]] = []
    epoch_ends: list[float] = []
    # Device allocations (cudaMalloc calls) per epoch: many in the first and none in the
    # second would point the first epoch's extra time at the caching allocator growing.
    allocations: list[int] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "step" and event["epoch"] == 1:
            steps.append((time.perf_counter(), event["step"]))
        elif event["type"] == "epoch":
            sync(device)
            epoch_ends.append(time.perf_counter())
            allocations.append(_device_allocations(device))

    clear_cache()  # tokenisation is part of DistilLab's timed work
    sync(device)
    allocations.append(_device_allocations(device))
    start = time.perf_counter()
    train(own_student, data, stage="bench", recipe=recipe, config=config, device=device,
          seed=0, teacher=own_teacher, on_event=on_event)
    sync(device)
    figure = {"seconds": (epoch_ends[0] if epoch_ends else time.perf_counter()) - start,
              "rows": len(rows), "step_times": steps}
    if len(epoch_ends) == 2:  # the second epoch: its steps and its validation pass
        figure["warm_epoch_seconds"] = epoch_ends[1] - epoch_ends[0]
    if device.type == "cuda":
        figure["device_allocations_per_epoch"] = np.diff(allocations).tolist()
    return figure


def _device_allocations(device: torch.device) -> int:
    """cudaMalloc calls so far by PyTorch's caching allocator (0 off CUDA)."""
    if device.type != "cuda":
        return 0
    return int(torch.cuda.memory_stats(device).get("num_device_alloc", 0))


def _kd_ce_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
    """The HF guide's loss: alpha T^2 KL(teacher || student) + (1 - alpha) CE, plain torch."""
    t = KD_TEMPERATURE
    kd = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1),
                  reduction="batchmean") * t * t
    return KD_ALPHA * kd + (1 - KD_ALPHA) * F.cross_entropy(student_logits, labels)


def _distill_naive(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                   labels: list[int], device: torch.device, settings: BenchSettings
                   ) -> dict[str, Any]:
    own_student = copy.deepcopy(student).to(device).train()
    teacher.to(device).eval()
    optimizer = torch.optim.AdamW(own_student.parameters(), lr=1e-4)
    labels_t = torch.as_tensor(labels)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(rows), settings.distill_batch):
        idx = order[i:i + settings.distill_batch]
        batch = tokenizer([rows[j] for j in idx], padding="max_length", truncation=True,
                          max_length=settings.distill_max_length,
                          return_tensors="pt").to(device)
        with torch.no_grad():
            teacher_logits = teacher(**batch).logits
        loss = _kd_ce_loss(own_student(**batch).logits, teacher_logits,
                           labels_t[idx].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync(device)
    return {"seconds": time.perf_counter() - start, "rows": len(rows)}


def _distill_trainer(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                     labels: list[int], device: torch.device, settings: BenchSettings
                     ) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class DistillationTrainer(Trainer):
        """The HF distillation guide's pattern: a Trainer whose compute_loss adds KD."""

        def __init__(self, *args: Any, teacher_model: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.teacher = teacher_model.to(self.args.device).eval()

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            with torch.no_grad():
                teacher_logits = self.teacher(**inputs).logits
            loss = _kd_ce_loss(outputs.logits, teacher_logits, labels)
            return (loss, outputs) if return_outputs else loss

    class Clock(TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            sync(device)
            self.start = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            sync(device)
            self.seconds = time.perf_counter() - self.start

    import datasets
    from transformers import PrinterCallback

    max_length = settings.distill_max_length
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the bench prints its own table, not map's bar
    try:
        dataset = Dataset.from_dict({"text": rows, "label": labels}).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
            batched=True, remove_columns=["text"])
    finally:
        if bars:
            datasets.enable_progress_bars()
    clock = Clock()
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=settings.distill_batch,
            num_train_epochs=1, learning_rate=1e-4, weight_decay=0.01, save_strategy="no",
            logging_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            # The precision DistilLab trains in on this device (bf16 autocast where native).
            use_cpu=device.type == "cpu", bf16=training_dtype(device) == torch.bfloat16,
            seed=0)
        trainer = DistillationTrainer(model=copy.deepcopy(student), args=args,
                                      train_dataset=dataset, processing_class=tokenizer,
                                      teacher_model=teacher, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training log dict
        trainer.train()
    return {"seconds": clock.seconds, "rows": len(rows)}


def measure_matmul_peak(device: torch.device, n: int = PEAK_MATMUL_N, repeats: int = 10
                        ) -> float:
    """bf16 dense matmul TFLOP/s at ``n^3`` on random data (median of ``repeats``)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    del a, b
    return 2 * n**3 / float(np.median(times)) / 1e12


def bench_distill_128x128(teacher: Any, student: Any, tokenizer: Any, bbc_texts: list[str],
                          device: torch.device, settings: BenchSettings, peak: float
                          ) -> Iterator[tuple[str, Any]]:
    """DistilLab at batch 128 x 128 tokens: model TFLOP/s over the whole epoch and over the
    steady training steps, plain and with ``torch.compile``; yields ``(name, figure)``.

    Rows are BBC articles cut to their first 1,200 characters (outside the timer): all but
    one of the 2,125 still fill 128 tokens, and the tokenizer is spared the rest of each.
    """
    from core.specs import RECIPES

    rows = [bbc_texts[i % len(bbc_texts)][:1200] for i in range(settings.mfu_rows)]
    lengths = _token_lengths(tokenizer, rows, 128)
    student_flops = 3 * forward_flops(student.config, lengths)
    teacher_flops = forward_flops(teacher.config, lengths)
    extra = {"validation": rows[:32], "validation_labels": [0] * 32}
    yield "rows", len(rows)
    yield "mean_tokens", float(lengths.mean())
    # "plain": DistilLab as it runs (CUDA graphs); "eager": without them. torch.compile
    # (measured 2026-11-28: 25.7% of the peak in steady steps, 35 s of compiling) is left
    # out: the graphs give one launch per step without a compile.
    for name in ("plain", "eager"):
        try:
            run = _distill_distillab if name == "plain" else partial(
                without_cuda_graphs, _distill_distillab)
            figure, graphs = with_graph_stats(
                run, teacher, student, tokenizer, rows, [0] * len(rows), extra,
                RECIPES["logits"], device, settings, 128, 128, False, False)
            figure["cuda_graphs"] = graphs
        except Exception as error:  # torch.compile needs a working Triton; report, go on
            logger.exception("128x128 distillation (%s) failed", name)
            yield name, failed(error)
            continue
        steady = _steady_rate(figure.pop("step_times"), 128)
        epoch_tflops = (student_flops + teacher_flops) / figure["seconds"] / 1e12
        figure.update(samples_per_s=len(rows) / figure["seconds"], epoch_tflops=epoch_tflops,
                      epoch_fraction_of_peak=epoch_tflops / peak)
        if steady:
            step_tflops = student_flops / len(rows) * steady / 1e12
            figure.update(steady_samples_per_s=steady, steady_step_tflops=step_tflops,
                          steady_fraction_of_peak=step_tflops / peak)
        yield name, figure


def _steady_rate(step_times: list[tuple[float, int]], batch: int) -> float | None:
    """Rows per second between the first logged step past a quarter of the run and the
    last (each step event reads the loss, which syncs the device)."""
    if len(step_times) < 3:
        return None
    last_t, last_step = step_times[-1]
    first = next((p for p in step_times if p[1] >= last_step // 4), step_times[0])
    if first[1] >= last_step:
        return None
    return (last_step - first[1]) * batch / (last_t - first[0])


# speed-up ----------------------------------------------------------------------------------

