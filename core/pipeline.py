"""One job, start to finish: data → teacher → student → baseline → evaluate → measure.

Every stage writes into the run folder as it goes, so a job killed at any point resumes:
a stage whose model is saved is skipped, a stage with a checkpoint continues from it. A
finished run keeps no ``checkpoint/``; a default extracted student's layers are written into
``spec.json`` once it is built.

Under ``accelerate launch``/``torchrun`` every rank runs this with the same run folder (see
``core/distributed.py``): rank 0 alone writes it (status, events, models, checkpoints,
metrics) and scores the models; the others train and return an empty dict. File checks
that decide a branch use rank 0's answer, so all ranks take the same one.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core import distributed
from core.losses import IGNORE_LABEL
from core.runs import Run, atomic_write_json, runs_root
from core.specs import RECIPES, JobSpec

log = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], None]


def _teacher_cache_dir(run: Run) -> Path:
    return runs_root(run.path.parent) / "_cache" / "teachers"


def _link_or_copy_tree(source: Path, target: Path) -> None:
    """Copy a model folder, hard-linking files where the filesystem allows (saves disk)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, tmp, copy_function=link)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def run_job(run: Run, on_event: EventSink | None = None) -> dict[str, Any]:
    """Run (or resume) the job described by ``run``'s spec; returns ``metrics.json``'s dict.

    Args:
        run: a run folder holding ``spec.json``.
        on_event: an extra subscriber to progress events (the CLI's progress bars).
    Returns:
        The metrics written to ``metrics.json`` (an empty dict on data-parallel ranks
        other than 0).
    Raises:
        Cancelled: when ``run``'s cancel file appears; the status says ``cancelled``.
    """
    from core.train import Cancelled

    spec = JobSpec.from_dict(run.spec)
    status_fields: dict[str, Any] = {}
    dist_ctx = distributed.init_from_env()
    main = dist_ctx.is_main

    def emit(event: dict[str, Any]) -> None:
        if not main:  # one writer per run folder; the other ranks' events would repeat it
            return
        run.append_event(event)
        if event["type"] in ("stage", "step", "epoch"):
            status_fields.update({k: event[k] for k in (
                "stage", "epoch", "epochs", "step", "total_steps", "eta_s", "message")
                if k in event})
            run.set_status("running", **status_fields)
        if event["type"] == "epoch":
            run.append_history(event)
        if on_event is not None:
            on_event(event)

    # A cancel file left here is a request made since the run was (re)queued: resume and
    # `run --resume` clear older ones, so it is honoured at the first step, not wiped.
    if main:
        run.set_status("running", stage="starting", error=None)
    if dist_ctx.enabled:
        emit({"type": "log", "message": f"data-parallel over {dist_ctx.world_size} processes "
              f"({dist_ctx.backend}); batch size {spec.train.batch_size} is the global batch"})
    try:
        if spec.kind == "general":
            from core.general import run_general

            metrics = run_general(run, spec, emit)
        else:
            metrics = _run_stages(run, spec, emit)
    except Cancelled as stop:
        if main:
            run.set_status("cancelled", message=str(stop))
            run.append_event({"type": "log", "level": "warning", "message": str(stop)})
        # A launcher stops every rank once one exits: wait until rank 0 has saved it all.
        distributed.barrier()
        raise
    except Exception as error:
        if main:
            message = f"{type(error).__name__}: {error}"
            run.set_status("failed", error=message)
            run.append_event({"type": "error", "message": message})
        raise
    if not main:
        return metrics
    # Every model is saved and scored: the resumable state has no use left.
    shutil.rmtree(run.path / "checkpoint", ignore_errors=True)
    run.set_status("done", stage="done", message="finished")
    run.append_event({"type": "stage", "stage": "done", "message": "finished"})
    return metrics


def _run_stages(run: Run, spec: JobSpec, emit: EventSink) -> dict[str, Any]:
    import torch

    from core.data import load_data
    from core.devices import describe_device, resolve_device
    from core.models import load_classifier
    from core.students import check_compatibility
    from core.uploads import resolve_dataset

    device = distributed.local_device(resolve_device(spec.device))
    torch.manual_seed(spec.seed)
    emit({"type": "stage", "stage": "data", "message": f"loading {spec.dataset.name}"})
    data = load_data(resolve_dataset(spec.dataset, run.path.parent), seed=spec.seed)
    emit({"type": "log", "message": data.description})
    if getattr(data, "task_note", ""):  # which task the targets were read as, and why
        emit({"type": "log", "message": data.task_note})
    emit({"type": "log", "message": f"device: {describe_device(device)}"})

    emit({"type": "stage", "stage": "teacher", "message": f"loading teacher {spec.teacher}"})
    teacher, tokenizer = _prepare_teacher(run, spec, data, device, emit)
    if spec.dataset.augment:
        # After the teacher: it is fine-tuned on the labelled rows alone, then labels these.
        data = _augmented(run, spec, data, tokenizer, emit)

    student, student_tokenizer = _build_student(run, spec, teacher, tokenizer, data)
    spec = _record_student_layers(run, spec, student)
    check_compatibility(teacher, tokenizer, student, student_tokenizer,
                        needs_hidden_states=spec.recipe.needs_hidden_states)
    _train_stage(run, spec, "student", student, student_tokenizer, data, device, emit,
                 teacher=teacher)

    if spec.baseline:
        # The baseline is the same student built from the teacher checkpoint as given (before
        # DistilLab fine-tuned it), trained on the labelled rows with cross-entropy alone.
        # Seeded here: its new head's initialisation must not depend on how many random
        # numbers the student's stage drew (an augmented student draws more), or the same
        # baseline would differ between runs that differ only in the student's settings.
        torch.manual_seed(spec.seed)
        original, _, _ = load_classifier(spec.teacher, data.label_names, runs_dir=run.path.parent)
        baseline, _ = _build_student(run, spec, original, tokenizer, data)
        del original
        _train_stage(run, spec, "baseline", baseline, student_tokenizer, data, device, emit)

    if not distributed.is_main_process():
        return {}  # rank 0 scores and times the saved models alone
    from core.scoring import score_run

    emit({"type": "stage", "stage": "evaluate", "message": "scoring and timing every model"})
    return score_run(run, data, spec.train.max_length, device, emit,
                     batch_tokens=spec.train.eval_batch_tokens or None)


def _augmented(run: Run, spec: JobSpec, data: Any, tokenizer: Any, emit: EventSink) -> Any:
    """``data`` with variants of its training texts added to the transfer set, which the
    teacher labels with soft targets (``core.augment``; cached under the runs folder)."""
    from dataclasses import replace as replace_data

    from core.augment import AugmentConfig, cached_augmentation

    dataset = spec.dataset
    mlm = mlm_tokenizer = None
    if dataset.augment_method == "mlm":
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        from core.models import resolve_model_ref

        emit({"type": "log", "message": f"loading the masked-language model "
                                        f"{dataset.augment_mlm}"})
        path = resolve_model_ref(dataset.augment_mlm, str(run.path.parent))
        mlm = AutoModelForMaskedLM.from_pretrained(path)
        mlm_tokenizer = AutoTokenizer.from_pretrained(path)
    emit({"type": "stage", "stage": "augment", "message": f"making {dataset.augment} "
          f"variants of each of {len(data.train_texts):,} training texts "
          f"({dataset.augment_method})"})
    added = cached_augmentation(
        run.path.parent / "_cache" / "augment", data.train_texts, dataset.augment,
        config=AugmentConfig(method=dataset.augment_method), seed=spec.seed,
        mask_token=getattr(tokenizer, "mask_token", None) or "[MASK]", mlm=mlm,
        mlm_tokenizer=mlm_tokenizer, mlm_name=dataset.augment_mlm)
    # The transfer set's cap (public mode sets it, core.limits) counts the added texts too.
    if dataset.max_transfer_examples is not None:
        added = added[:max(0, dataset.max_transfer_examples - len(data.transfer_texts))]
    summary = {"added": len(added), "method": dataset.augment_method,
               "per_text": dataset.augment, "examples": added[:5]}
    if distributed.is_main_process():
        atomic_write_json(run.path / "augmentation.json", summary)
    emit({"type": "log", "message": f"augmentation: {len(added):,} texts added to the "
          f"transfer set, e.g. {added[:2]}"})
    return replace_data(data, transfer_texts=list(data.transfer_texts) + added,
                        description=f"{data.description}, {len(added):,} augmented texts")


def _training_data(tokenizer: Any, data: Any, with_transfer: bool) -> Any:
    from core.train import TrainData

    texts, labels = list(data.train_texts), list(data.train_labels)
    if with_transfer and data.transfer_texts:
        texts += list(data.transfer_texts)
        # No target: -100 for classes, NaN for a regression (both skipped by the hard term).
        missing = float("nan") if len(data.label_names) == 1 else IGNORE_LABEL
        labels += [missing] * len(data.transfer_texts)
    return TrainData(tokenizer=tokenizer, texts=texts, labels=np.asarray(labels),
                     validation_texts=data.validation_texts,
                     validation_labels=np.asarray(data.validation_labels),
                     label_names=data.label_names)


def _prepare_teacher(run: Run, spec: JobSpec, data: Any, device: Any, emit: EventSink
                     ) -> tuple[Any, Any]:
    """The teacher with a head for the dataset's labels: as given, cached, or fine-tuned now."""
    from core.models import load_classifier
    from core.saving import save_model, teacher_cache_key

    saved = run.model_dir("teacher")
    main = distributed.is_main_process()
    if distributed.main_says((saved / "config.json").exists()):  # resumed after this stage
        return load_classifier(str(saved), data.label_names)[:2]
    teacher, tokenizer, has_head = load_classifier(spec.teacher, data.label_names,
                                                   runs_dir=run.path.parent)
    if has_head:
        emit({"type": "log", "message": "teacher has a head for these labels: no fine-tuning"})
        if main:
            save_model(teacher, tokenizer, saved)
        return teacher, tokenizer
    own = spec.train.stage("teacher")
    settings = {"epochs": own.epochs, "lr": own.learning_rate,
                "batch_size": spec.train.batch_size, "max_length": spec.train.max_length,
                "seed": spec.seed}
    key = teacher_cache_key(spec.teacher, data.fingerprint, settings)
    cached = _teacher_cache_dir(run) / key
    if distributed.main_says((cached / "config.json").exists()):
        emit({"type": "log", "message": f"reusing fine-tuned teacher from cache {key}"})
        if main:
            _link_or_copy_tree(cached, saved)
            cached.touch()  # recently used: core.cleanup trims the cache least recent first
        distributed.barrier()  # the copy is complete before any rank reads it
        return load_classifier(str(saved), data.label_names)[:2]
    emit({"type": "stage", "stage": "teacher", "message": "fine-tuning the teacher"})
    _train_stage(run, spec, "teacher", teacher, tokenizer, data, device, emit)
    if main:
        _link_or_copy_tree(saved, cached)
    return teacher, tokenizer


def _build_student(run: Run, spec: JobSpec, teacher: Any, tokenizer: Any, data: Any
                   ) -> tuple[Any, Any]:
    from core.students import build_fresh_student, extract_student, load_pretrained_student

    student_spec = spec.student
    if student_spec.kind == "extract":
        return extract_student(teacher, student_spec.layers), tokenizer
    if student_spec.kind == "pretrained":
        return load_pretrained_student(student_spec.checkpoint, data.label_names,
                                       runs_dir=run.path.parent)
    return build_fresh_student(teacher, student_spec.num_layers, student_spec.hidden_size,
                               student_spec.num_heads), tokenizer


def _record_student_layers(run: Run, spec: JobSpec, student: Any) -> JobSpec:
    """Write the teacher layers a default extracted student keeps into spec.json.

    The run's spec then shows the layers used, not ``null``, and a resumed run (it re-reads
    spec.json) builds the same student. Returns the spec with those layers.
    """
    if spec.student.kind != "extract" or spec.student.layers is not None:
        return spec
    layers = tuple(student.config.distillab_teacher_layers)
    if distributed.is_main_process():
        saved = run.spec
        saved["student"] = {**saved.get("student", {}), "layers": list(layers)}
        atomic_write_json(run.path / "spec.json", saved)
    return replace(spec, student=replace(spec.student, layers=layers))


def _hard_loss(data: Any) -> str:
    """The loss on labels alone: cross-entropy, or MSE for a regression (one target)."""
    return "MSE" if len(data.label_names) == 1 else "cross-entropy"


def _train_stage(run: Run, spec: JobSpec, stage: str, model: Any, tokenizer: Any, data: Any,
                 device: Any, emit: EventSink, teacher: Any = None) -> None:
    """Train one stage unless its model is already saved; save it and drop its checkpoint."""
    from core.models import load_classifier
    from core.saving import save_model
    from core.train import train

    target = run.model_dir(stage)
    main = distributed.is_main_process()
    if distributed.main_says((target / "config.json").exists()):
        emit({"type": "log", "message": f"{stage}: already trained, skipping"})
        model.load_state_dict(load_classifier(str(target), data.label_names)[0].state_dict())
        return
    recipe = spec.recipe if teacher is not None else RECIPES["baseline"]
    how = f"{recipe.name} recipe" if teacher is not None else f"{_hard_loss(data)} on labels"
    emit({"type": "stage", "stage": stage, "message": f"training {stage} ({how})"})
    result = train(
        model, _training_data(tokenizer, data, with_transfer=teacher is not None),
        stage=stage, recipe=recipe, config=spec.train, device=device, seed=spec.seed,
        teacher=teacher,
        checkpoint_dir=run.checkpoint_dir(stage), on_event=emit,
        # Rank 0's answer on every rank: all stop at the same step or none does.
        should_cancel=lambda: distributed.main_says(run.cancel_requested()))
    model.config.distillab_training = {"stage": stage, "recipe": recipe.name,
                                       "best_epoch": result.best_epoch,
                                       "train_samples_per_s": result.samples_per_s}
    distributed.dump_weights_if_asked(stage, model)
    if main:
        save_model(model.cpu(), tokenizer, target)
        model.to(device)
        shutil.rmtree(run.checkpoint_dir(stage), ignore_errors=True)
    from core.tasks import main_metric, task_of

    emit({"type": "log", "message": f"{stage}: best validation "
          f"{main_metric(task_of(data.label_names))} {result.best_accuracy:.4f} at epoch "
          f"{result.best_epoch}"})
