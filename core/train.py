"""The one training loop: teacher fine-tuning, distillation and the no-teacher baseline.

The mode is only the recipe: with ``alpha_kd = alpha_cos = 0`` and no teacher it fine-tunes
(teacher stage, baseline); with a teacher it distils. Everything else is shared: length-
bucketed batches over pre-tokenised texts, AdamW with linear warm-up and decay, gradient
clipping and accumulation, bf16 autocast where native (GPUs, CPUs with AVX512-BF16/AMX),
validation every epoch keeping the best weights, resumable checkpoints (model, optimizer,
scheduler, RNG state, position in the epoch), a cancel hook and progress events. The
optimiser and schedule are made in ``core.optim``, each step's loss in ``core.step_loss``.

Under ``accelerate launch``/``torchrun`` the same loop is data-parallel (see
``core/distributed.py``): each rank trains on its share of every global batch, DDP averages
the gradients, rank 0 validates and alone writes checkpoints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import distributed
from core.batching import bucketed_batches, collate, encode_texts
from core.checkpoints import (
    TrainState,
    atomic_torch_save,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
)
from core.cuda_graphs import (
    ShapeGraphs,
    graphs_enabled,
    width_cap,
    width_multiple,
)
from core.devices import forward_context, training_dtype
from core.general import GeneralSetup
from core.losses import IGNORE_LABEL
from core.optim import linear_schedule, make_optimizer
from core.specs import Recipe, TrainConfig
from core.step_loss import compute_teacher_logits, freeze_teacher, step_loss
from core.tasks import REGRESSION, main_metric, task_of

__all__ = ["Cancelled", "EventHandler", "StageResult", "TrainData", "compute_teacher_logits",
           "train", "validate"]

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]


class Cancelled(RuntimeError):
    """Training stopped because a cancel was asked for; the checkpoint is saved."""


@dataclass
class TrainData:
    """Texts and labels of one stage; unlabelled (transfer) rows have label ``-100``."""

    tokenizer: Any
    texts: Sequence[str]
    labels: np.ndarray
    validation_texts: Sequence[str]
    validation_labels: np.ndarray
    label_names: list[str]
    # General (task-agnostic) distillation: no labels, core.general's loss and validation.
    general: GeneralSetup | None = None


@dataclass
class StageResult:
    """What one call of :func:`train` achieved."""

    best_epoch: int
    best_accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)
    samples_per_s: float = 0.0


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def validate(model: torch.nn.Module, data: TrainData, max_length: int, device: torch.device,
             batch_tokens: int | None = None) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy on the validation set (``batch_tokens``:
    padded tokens per batch, default the device's); for a regression Spearman, Pearson and
    the MSE (also its ``val_loss``)."""
    from core.evaluation import predict_proba
    from core.scores import compute_metrics

    probs = predict_proba(model, data.tokenizer, data.validation_texts, max_length=max_length,
                          device=device, batch_tokens=batch_tokens)
    if task_of(data.label_names) == REGRESSION:  # the "probabilities" are the outputs
        from core.tasks import regression_metrics

        scores = regression_metrics(data.validation_labels, probs[:, 0])
        return {"val_spearman": scores["spearman"], "val_pearson": scores["pearson"],
                "val_mse": scores["mse"], "val_loss": scores["mse"]}
    labels = np.asarray(data.validation_labels)
    metrics = compute_metrics(labels, probs.argmax(-1), data.label_names)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean())
    return {"val_accuracy": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"],
            "val_loss": loss}


def train(model: torch.nn.Module, data: TrainData, *, stage: str, recipe: Recipe,
          config: TrainConfig, device: torch.device, seed: int,
          teacher: torch.nn.Module | None = None,
          checkpoint_dir: Path | None = None, on_event: EventHandler | None = None,
          should_cancel: Callable[[], bool] | None = None) -> StageResult:
    """Train ``model`` in place and leave it holding the best epoch's weights.

    Args:
        model: the model to train (teacher to fine-tune, student, or baseline).
        data: training and validation texts; label ``-100`` marks transfer (unlabelled) rows.
        stage: a name for events and checkpoints ("teacher", "student", "baseline"); its
            epochs and learning rate are ``config.stage(stage)``.
        recipe: loss weights; distillation terms need ``teacher``.
        config: the stages' epochs and learning rates, batch size, max length, schedule,
            clipping, accumulation, compile flag.
        device: where to train.
        seed: seeds batches, dropout and initialisation order.
        teacher: a frozen teacher for distillation, or None.
        checkpoint_dir: where resumable state goes; an existing state there is resumed.
        on_event: called with progress dicts (``type`` = "step", "epoch" or "resumed").
        should_cancel: polled every step; when it returns True the state is saved and
            :class:`Cancelled` raised.
    Returns:
        The best epoch, its validation accuracy, per-epoch history and training speed.
    """
    epochs, learning_rate = config.stage(stage).epochs, config.stage(stage).learning_rate
    emit = on_event or (lambda event: None)
    if recipe.needs_teacher and teacher is None:
        raise ValueError(f"recipe {recipe.name!r} needs a teacher")
    texts, labels = _training_rows(data, with_teacher=teacher is not None)
    tokenizer = data.tokenizer
    pad_id = tokenizer.pad_token_id or 0
    encoded = encode_texts(tokenizer, texts, config.max_length)
    lengths = encoded.lengths
    # Labels live on the device and are indexed there: a per-step copy from pageable host
    # memory would stall the host until the GPU had drained its queue.
    labels_t = torch.as_tensor(labels).to(device)
    # accuracy, Spearman, or (general distillation) the held-out loss's negative
    best_key = ("val_score" if data.general else
                f"val_{main_metric(task_of(data.label_names))}")
    on_cuda = device.type == "cuda"
    eval_batch_tokens = config.eval_batch_tokens or None  # 0: the device's default

    dist_ctx = distributed.current()
    # Offset by rank so ranks draw different dropout masks; rank 0 matches a single process.
    seed_everything(seed + dist_ctx.rank)
    model.to(device)
    if teacher is not None:
        freeze_teacher(teacher, device)
    ddp = distributed.wrap_model(model, device) if dist_ctx.enabled else None
    forward = ddp or model
    forward = torch.compile(forward) if config.compile else forward
    # Whole training steps as CUDA graphs (core.cuda_graphs): one process, no accumulation
    # and no torch.compile (which makes its own graphs).
    step_graphs = (ShapeGraphs(device) if graphs_enabled(device) and ddp is None
                   and config.grad_accum_steps == 1 and not config.compile
                   and data.general is None else None)
    multiple, cap = width_multiple(device), width_cap(model)
    teacher_logits_cache = None
    if teacher is not None and not recipe.needs_hidden_states and data.general is None:
        teacher_logits_cache = compute_teacher_logits(teacher, encoded, pad_id, device,
                                                      batch_tokens=eval_batch_tokens)

    steps_per_epoch = -(-len(bucketed_batches(lengths, config.batch_size, seed, 0))
                        // config.grad_accum_steps)
    total_steps = steps_per_epoch * epochs
    optimizer = make_optimizer(model, learning_rate, config.weight_decay, device,
                               capturable=step_graphs is not None)
    scheduler = linear_schedule(optimizer, int(config.warmup_ratio * total_steps), total_steps)

    state_path = checkpoint_dir / "state.pt" if checkpoint_dir else None
    best_path = checkpoint_dir / "best.pt" if checkpoint_dir else None
    state, best_state = TrainState(), None
    if state_path and distributed.main_says(state_path.exists()):
        state = load_checkpoint(state_path, model, optimizer, scheduler)
        if not dist_ctx.is_main:  # the sums are rank 0's: other ranks' rows before the stop
            state.epoch_loss_sum, state.epoch_rows = 0.0, 0  # are lost
        emit({"type": "resumed", "stage": stage, "epoch": state.epoch, "batch": state.batch})
    start_epoch, start_batch, history = state.epoch, state.batch, state.history
    # Summed on the device (a .item() each step would sync CUDA); copied into state to save.
    epoch_loss, epoch_rows = torch.tensor(state.epoch_loss_sum, device=device), state.epoch_rows

    def save_state(epoch: int, batch: int) -> None:
        if state_path is None or not dist_ctx.is_main:
            return
        state.epoch, state.batch = epoch, batch
        state.epoch_loss_sum, state.epoch_rows = float(epoch_loss), epoch_rows
        save_checkpoint(state_path, model, optimizer, scheduler, state)

    # Progress at least 20 times an epoch and every 5 s: reading a loss is a device sync.
    log_every, log_interval_s, last_log = max(1, steps_per_epoch // 20), 5.0, time.perf_counter()

    def graph_step(inputs: dict[str, torch.Tensor]) -> Any:
        """One whole optimizer step (forward, loss, backward, clipping, AdamW): what a
        CUDA graph captures; ``inputs`` are the static buffers of its shape."""
        rows = inputs["rows"]
        terms = step_loss(forward, teacher, inputs, labels_t[rows], recipe,
                          teacher_logits_cache, rows, device, model)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        return terms

    started, rows_done = time.perf_counter(), 0
    step = start_epoch * steps_per_epoch + start_batch // config.grad_accum_steps
    for epoch in range(start_epoch, epochs):
        model.train()
        batches = bucketed_batches(lengths, config.batch_size, seed, epoch)
        first = start_batch if epoch == start_epoch else 0
        for b in range(first, len(batches)):
            if should_cancel is not None and should_cancel():
                save_state(epoch, b)
                raise Cancelled(f"{stage} cancelled at epoch {epoch + 1}, batch {b}")
            # One process: the whole batch, weight 1. Data-parallel: this rank's share.
            idx, weight = distributed.shard_batch(batches[b], dist_ctx.rank,
                                                  dist_ctx.world_size)
            batch = _to_device(collate(encoded, idx, pad_id, on_cuda, width_multiple=multiple,
                                       width_cap=cap), device)
            rows_t = torch.from_numpy(np.asarray(idx, dtype=np.int64))
            rows_t = (rows_t.pin_memory() if on_cuda else rows_t).to(device, non_blocking=True)
            sync = (b + 1) % config.grad_accum_steps == 0 or b + 1 == len(batches)
            # Full batches are graphed; a last, smaller batch runs eagerly.
            graphed = step_graphs is not None and len(idx) == config.batch_size
            if graphed:
                terms = step_graphs.run("step", {**batch, "rows": rows_t}, graph_step)
            elif data.general is not None:
                from core.general import general_step_loss

                with distributed.no_sync(ddp, sync):
                    with forward_context(device, training_dtype(device)):
                        terms = general_step_loss(forward, teacher, batch, data.general,
                                                  recipe)
                    (terms.total * weight / config.grad_accum_steps).backward()
            else:
                with distributed.no_sync(ddp, sync):
                    terms = step_loss(forward, teacher, batch, labels_t[rows_t], recipe,
                                      teacher_logits_cache, rows_t, device, model)
                    (terms.total * weight / config.grad_accum_steps).backward()
            if weight:
                # Summed on the device: a .item() here would sync CUDA every step.
                epoch_loss = epoch_loss + terms.total.detach() * len(idx)
                epoch_rows += len(idx)
            rows_done += len(batches[b])
            if sync:
                if not graphed:  # a graphed step clipped and stepped already
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                now = time.perf_counter()
                if step % log_every == 0 or step == total_steps or now - last_log > log_interval_s:
                    last_log = now
                    elapsed = time.perf_counter() - started
                    rate = rows_done / elapsed if elapsed else 0.0
                    remaining_rows = (total_steps - step) * config.batch_size
                    emit({"type": "step", "stage": stage, "epoch": epoch + 1, "epochs": epochs,
                          "step": step, "total_steps": total_steps,
                          "loss": terms.total.item(), "kd": terms.kd.item(),
                          "ce": terms.ce.item(), "cos": terms.cos.item(),
                          "lr": float(scheduler.get_last_lr()[0]), "samples_per_s": rate,
                          "eta_s": remaining_rows / rate if rate else None})
                if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
                    save_state(epoch, b + 1)
        # Rank 0 validates and shares the numbers, so every rank keeps the same best epoch.
        metrics = distributed.broadcast_from_main(
            _validate_stage(model, teacher, data, recipe, config.max_length, device,
                            eval_batch_tokens) if dist_ctx.is_main else None)
        loss_sum, loss_rows = distributed.sum_across_ranks(
            torch.stack([epoch_loss.float(), torch.tensor(float(epoch_rows), device=device)]))
        train_loss = float(loss_sum) / max(1.0, float(loss_rows))
        row = {"stage": stage, "epoch": epoch + 1, "train_loss": train_loss, **metrics}
        history.append(row)
        epoch_loss, epoch_rows = torch.zeros((), device=device), 0
        score = metrics[best_key]
        if score != score:  # NaN (constant outputs): the worst (-inf for a loss's negative)
            score = float("-inf") if data.general else -1.0
        if score > state.best_score or state.best_epoch < 0:
            state.best_score, state.best_epoch = score, epoch + 1
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if best_path is not None and dist_ctx.is_main:
                atomic_torch_save(best_state, best_path)
        emit({"type": "epoch", **row, "epochs": epochs, "best_epoch": state.best_epoch})
        save_state(epoch + 1, 0)

    if best_state is None and best_path is not None and best_path.exists():
        best_state = torch.load(best_path, map_location="cpu")  # resumed after the last epoch
    if best_state is not None:
        model.load_state_dict(best_state)
    elapsed = time.perf_counter() - started
    return StageResult(best_epoch=state.best_epoch, best_accuracy=state.best_score,
                       history=history,
                       samples_per_s=rows_done / elapsed if elapsed and rows_done else 0.0)


def _validate_stage(model: torch.nn.Module, teacher: torch.nn.Module | None, data: TrainData,
                    recipe: Recipe, max_length: int, device: torch.device,
                    batch_tokens: int | None) -> dict[str, float]:
    """The epoch's validation: :func:`validate`, or general distillation's held-out loss."""
    if data.general is not None:
        from core.general import general_validate

        return general_validate(model, teacher, data.tokenizer, data.validation_texts,
                                data.general, recipe, max_length, device)
    return validate(model, data, max_length, device, batch_tokens)


def _training_rows(data: TrainData, with_teacher: bool) -> tuple[list[str], np.ndarray]:
    """The rows a stage trains on: all of them with a teacher; without one, the labelled
    rows only (an unlabelled transfer row has nothing to teach then). Regression targets
    are float32, an unlabelled row's NaN."""
    texts = list(data.texts)
    if data.general is not None:  # unlabelled text: the teacher is all there is to learn
        return texts, np.full(len(texts), IGNORE_LABEL, dtype=np.int64)
    regression = task_of(data.label_names) == REGRESSION
    labels = np.asarray(data.labels, dtype=np.float32 if regression else np.int64)
    if with_teacher:
        return texts, labels
    keep = ~np.isnan(labels) if regression else labels != IGNORE_LABEL
    return [t for t, k in zip(texts, keep, strict=True) if k], labels[keep]
