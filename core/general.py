"""General (task-agnostic) distillation: the student learns the teacher on unlabelled text,
before any task, as DistilBERT itself was made (Sanh et al. 2019, section 3).

It runs in the one training loop (``core.train.train``, stage ``general``) with its own loss
and validation; a job of ``kind: general`` (``distillab general``) saves the student as the
encoder ``run:<id>/general``, which a task job takes as its starting point
(``--student run:<id>/general``).

Two losses, by what the teacher has:

* **a masked-language-model head** (a Hub BERT): the paper's loss, ``5 · T² · KL`` between
  the teacher's and the student's MLM distributions at temperature T on the masked tokens,
  ``2 ·`` the student's own MLM cross-entropy, ``1 ·`` the last hidden states' cosine;
  dynamic masking of 15% of the tokens (80% ``[MASK]``, 10% a random token, 10% kept),
  drawn anew for every batch;
* **an encoder only** (the bundled MiniLM): representation distillation, ``1 ·`` the last
  hidden states' cosine plus ``1 ·`` the mean squared error between each student layer's
  output and the teacher layer it was copied from (same width needed); with the spec's
  ``attention_transfer`` (``distillab general --attention-transfer``), also ``1 ·`` MiniLM's
  self-attention transfer (Wang et al. 2020) where the head counts match: the KL divergence
  from the attention distributions of the teacher layer the student's last layer copies
  (MiniLM takes the teacher's last layer; for a layer-copied student that cost a point on
  SST-2) to the student's last layer's, per head, averaged over the real query tokens.
  Both models run :mod:`core.attention_maps` for it (SDPA returns no maps, eager returns
  them after dropout); the saved student goes back to its own.

Validation is the same loss on held-out texts (fixed masks), lower is better.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.losses import IGNORE_LABEL, LossTerms, hidden_cosine_loss
from core.specs import Recipe

GENERAL_ROLE = "general"
MASK_PROBABILITY = 0.15
VALIDATION_SHARE = 0.05  # of the texts, at most MAX_VALIDATION_TEXTS
MAX_VALIDATION_TEXTS = 1000
# alpha_kd: MLM soft targets, alpha_ce: the student's MLM loss, alpha_cos: hidden cosine.
MLM_RECIPE = Recipe("general-mlm", alpha_kd=5.0, alpha_ce=2.0, alpha_cos=1.0, temperature=2.0)
# alpha_ce: the per-layer hidden-state MSE, alpha_cos: the last hidden states' cosine,
# alpha_kd: the student's last layer's attention KL (when GeneralSetup.attention).
REPRESENTATION_RECIPE = Recipe("general", alpha_kd=1.0, alpha_ce=1.0, alpha_cos=1.0)


@dataclass(frozen=True)
class GeneralSetup:
    """What general distillation needs beside the texts: the teacher layer each student
    layer copies (for the per-layer MSE), whether both models have an MLM head, the
    tokenizer's special ids (never masked), and whether the representation loss transfers
    the last layer's attention distributions."""

    layers: tuple[int, ...]
    mlm: bool
    mask_token_id: int | None
    vocab_size: int
    special_ids: tuple[int, ...]
    attention: bool = False


def attention_transfer_allowed(student: Any, teacher: Any) -> bool:
    """Whether the student's last-layer attention maps can be matched to the teacher's: the
    same number of heads (the sequence is the same by construction)."""
    heads = [getattr(m.config, "num_attention_heads", None) for m in (student, teacher)]
    return heads[0] is not None and heads[0] == heads[1]


def attention_kl(student_attention: torch.Tensor, teacher_attention: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's self-attention transfer: ``KL(teacher ‖ student)`` between attention
    distributions of shape (batch, heads, query, key), summed over keys, averaged over heads
    and real query tokens. Padded keys hold zero probability in both and add nothing."""
    p_t = teacher_attention.float()
    log_s = student_attention.float().clamp_min(1e-12).log()
    log_t = p_t.clamp_min(1e-12).log()
    kl = torch.where(p_t > 0, p_t * (log_t - log_s), torch.zeros_like(p_t)).sum(-1)
    queries = attention_mask.float().unsqueeze(1)  # (batch, 1, query)
    return (kl * queries).sum() / (queries.sum() * kl.shape[1]).clamp(min=1.0)


def has_mlm_head(model: Any) -> bool:
    """Whether ``model`` predicts tokens (a ``*ForMaskedLM`` / ``*ForPreTraining``)."""
    return any(type(model).__name__.endswith(suffix) for suffix in ("ForMaskedLM",
                                                                   "ForPreTraining"))


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, setup: GeneralSetup,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's dynamic masking: 15% of the real, non-special tokens are picked; of those 80%
    become the mask token, 10% a random token and 10% stay. Returns the masked ids and the
    MLM labels (the original id where picked, ``-100`` elsewhere)."""
    device = input_ids.device
    maskable = attention_mask.bool() & ~torch.isin(
        input_ids, torch.tensor(setup.special_ids, device=device))
    draw = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    picked = maskable & (draw < MASK_PROBABILITY)
    labels = torch.where(picked, input_ids, torch.full_like(input_ids, IGNORE_LABEL))
    how = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    randoms = torch.randint(setup.vocab_size, input_ids.shape, generator=generator,
                            device="cpu").to(device)
    masked = torch.where(picked & (how < 0.8), torch.full_like(input_ids, setup.mask_token_id),
                         input_ids)
    masked = torch.where(picked & (how >= 0.8) & (how < 0.9), randoms, masked)
    return masked, labels


def general_loss(student_out: Any, teacher_out: Any, attention_mask: torch.Tensor,
                 setup: GeneralSetup, recipe: Recipe, mlm_labels: torch.Tensor | None = None
                 ) -> LossTerms:
    """The weighted general-distillation loss (see the module's notes).

    ``kd`` holds the MLM soft-target term (with an MLM head) or the attention KL (without,
    zero unless ``setup.attention``), ``ce`` the student's MLM loss or the per-layer
    hidden-state MSE, ``cos`` the last hidden states' cosine.
    """
    student_hidden, teacher_hidden = student_out.hidden_states, teacher_out.hidden_states
    cos = hidden_cosine_loss(student_hidden[-1], teacher_hidden[-1], attention_mask)
    zero = cos.new_zeros(())
    if setup.mlm:
        if mlm_labels is None:
            raise ValueError("an MLM general loss needs the masked positions' labels")
        picked = (mlm_labels != IGNORE_LABEL).float()
        count = picked.sum().clamp(min=1.0)
        t = recipe.temperature
        log_s = F.log_softmax(student_out.logits.float() / t, dim=-1)
        log_t = F.log_softmax(teacher_out.logits.float() / t, dim=-1)
        kl = (log_t.exp() * (log_t - log_s)).sum(-1)
        kd = (kl * picked).sum() / count * t * t
        own = F.cross_entropy(student_out.logits.float().flatten(0, 1), mlm_labels.flatten(),
                              ignore_index=IGNORE_LABEL, reduction="sum") / count
        total = recipe.alpha_kd * kd + recipe.alpha_ce * own + recipe.alpha_cos * cos
        return LossTerms(total=total, kd=kd.detach(), ce=own.detach(), cos=cos.detach())
    weight = attention_mask.float().unsqueeze(-1)
    tokens = weight.sum().clamp(min=1.0)
    mse = zero
    for i, j in enumerate(setup.layers):  # hidden_states[0] is the embeddings' output
        diff = (student_hidden[i + 1].float() - teacher_hidden[j + 1].float()) ** 2
        mse = mse + (diff * weight).sum() / tokens / diff.shape[-1]
    mse = mse / max(1, len(setup.layers))
    total = recipe.alpha_ce * mse + recipe.alpha_cos * cos
    attention = zero
    if setup.attention:
        # The teacher layer the student's last layer was copied from, not the teacher's last:
        # its maps are where the copy starts (the last layer's cost 1 point on SST-2).
        attention = attention_kl(student_out.attentions[-1],
                                 teacher_out.attentions[setup.layers[-1]], attention_mask)
        total = total + recipe.alpha_kd * attention
    return LossTerms(total=total, kd=attention.detach(), ce=mse.detach(), cos=cos.detach())


def general_step_loss(forward: Any, teacher: torch.nn.Module, batch: dict[str, torch.Tensor],
                      setup: GeneralSetup, recipe: Recipe,
                      generator: torch.Generator | None = None) -> LossTerms:
    """One batch: mask (with an MLM head), run both models, combine the terms. Call under
    the training step's autocast."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    mlm_labels = None
    if setup.mlm:
        ids, mlm_labels = mask_tokens(ids, mask, setup, generator)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in batch:
        inputs["token_type_ids"] = batch["token_type_ids"]
    maps = {"output_attentions": True} if setup.attention else {}
    with torch.no_grad():
        teacher_out = teacher(**inputs, output_hidden_states=True, **maps)
    student_out = forward(**inputs, output_hidden_states=True, **maps)
    return general_loss(student_out, teacher_out, mask, setup, recipe, mlm_labels)


def general_validate(model: torch.nn.Module, teacher: torch.nn.Module, tokenizer: Any,
                     texts: Sequence[str], setup: GeneralSetup, recipe: Recipe,
                     max_length: int, device: torch.device) -> dict[str, float]:
    """The general loss on held-out texts (the same masks every epoch): ``val_loss`` and
    ``val_score`` (its negative: the loop keeps the epoch with the highest score)."""
    from core.batching import batches_by_tokens, collate, encode_texts
    from core.devices import forward_context, training_dtype
    from core.inference import pad_id_of

    encoded = encode_texts(tokenizer, list(texts), max_length)
    generator = torch.Generator().manual_seed(0)
    was_training = model.training
    model.eval()
    total, rows = 0.0, 0
    try:
        with torch.no_grad(), forward_context(device, training_dtype(device)):
            for indices in batches_by_tokens(encoded.lengths, 4096, 128):
                batch = {k: v.to(device) for k, v in
                         collate(encoded, indices, pad_id_of(tokenizer)).items()}
                terms = general_step_loss(model, teacher, batch, setup, recipe, generator)
                total += float(terms.total) * len(indices)
                rows += len(indices)
    finally:
        model.train(was_training)
    loss = total / max(1, rows)
    return {"val_loss": loss, "val_score": -loss if math.isfinite(loss) else -1e30}


def split_texts(texts: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Training and held-out texts: 5% (at most 1,000, at least 1) held out, seeded."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    held = max(1, min(MAX_VALIDATION_TEXTS, round(len(texts) * VALIDATION_SHARE)))
    if len(texts) < 2:
        raise ValueError("general distillation needs at least 2 texts")
    return [texts[i] for i in order[held:]], [texts[i] for i in order[:held]]


def load_general_texts(source: str, runs_dir: str | Path | None = None,
                       text_column: str | None = None) -> list[str]:
    """Unlabelled texts for general distillation: a bundled dataset's texts, a ``.txt``
    file (one text per line), a folder of ``.txt`` files (one text each), or the text
    column of a data file (labels, if any, are ignored; each sentence pair gives its two
    texts, e.g. MRPC's ``sentence1`` and ``sentence2``).

    Raises:
        DataError: a source that holds no text.
    """
    from core.data import DataError, load_data, read_texts_file
    from core.specs import BUNDLED_DATASET, DatasetSpec

    name = source.strip()
    if name.lower() in (BUNDLED_DATASET, f"bundled:{BUNDLED_DATASET}"):
        data = load_data(DatasetSpec(name=name), seed=0)
        texts = list(data.train_texts) + list(data.validation_texts)
    elif Path(name).expanduser().is_dir():
        files = sorted(Path(name).expanduser().rglob("*.txt"))
        texts = [f.read_text(encoding="utf-8", errors="replace").strip() for f in files]
    else:
        texts = read_texts_file(name, text_column)
    # A sentence pair gives both its texts: general distillation reads single texts.
    texts = [part for t in texts for part in (t if isinstance(t, tuple) else (t,))]
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"{source}: no texts to distil on (a .txt file with one text per "
                        "line, a folder of .txt files, or a data file with a text column)")
    return texts


def run_general(run: Any, spec: Any, emit: Any) -> dict[str, Any]:
    """A ``kind: general`` job: the teacher's texts (``spec.dataset.name``), the student
    from the teacher's layers (``spec.student.layers``, default every other), trained with
    ``spec.train``'s epochs, learning rate, batch and length; saves ``models/general``
    and writes ``metrics.json``. Resumable from its checkpoint like any stage."""
    import numpy as np
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from core import distributed
    from core.devices import describe_device, resolve_device
    from core.models import resolve_model_ref
    from core.saving import count_parameters, save_model
    from core.students import extract_student
    from core.train import TrainData, train

    device = distributed.local_device(resolve_device(spec.device))
    runs_dir = run.path.parent
    emit({"type": "stage", "stage": "data", "message": f"reading texts from "
          f"{spec.dataset.name}"})
    from core.uploads import resolve_dataset

    dataset = resolve_dataset(spec.dataset, runs_dir)  # an upload: its file in the runs folder
    texts = load_general_texts(dataset.name, runs_dir, dataset.text_column)
    if spec.dataset.max_train_examples and len(texts) > spec.dataset.max_train_examples:
        texts = random.Random(spec.seed).sample(texts, spec.dataset.max_train_examples)
    train_texts, held_out = split_texts(texts, spec.seed)
    emit({"type": "log", "message": f"{len(train_texts):,} texts to distil on, "
          f"{len(held_out):,} held out; device: {describe_device(device)}"})
    path = resolve_model_ref(spec.teacher, str(runs_dir))
    architectures = getattr(AutoConfig.from_pretrained(path), "architectures", None) or []
    mlm = any(a.endswith(("ForMaskedLM", "ForPreTraining")) for a in architectures)
    teacher = (AutoModelForMaskedLM if mlm else AutoModel).from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if mlm and tokenizer.mask_token_id is None:
        raise ValueError(f"{spec.teacher}: an MLM teacher whose tokenizer has no mask token")
    saved = run.model_dir(GENERAL_ROLE)
    student = extract_student(teacher, spec.student.layers)
    attention = (spec.attention_transfer and not mlm
                 and attention_transfer_allowed(student, teacher))
    if spec.attention_transfer and not attention:
        emit({"type": "log", "message": "attention transfer not applied: "
              + ("the teacher has an MLM head (the paper's loss applies)" if mlm else
                 "the student's and the teacher's head counts differ")})
    setup = GeneralSetup(layers=tuple(student.config.distillab_teacher_layers), mlm=mlm,
                         mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                         special_ids=tuple(tokenizer.all_special_ids), attention=attention)
    previous_attention = student.config._attn_implementation
    if attention:
        from core.attention_maps import use_attention_maps

        for model in (student, teacher):
            use_attention_maps(model)
    recipe = MLM_RECIPE if mlm else REPRESENTATION_RECIPE
    losses = ("MLM soft targets, MLM loss and cosine" if mlm else
              "hidden-state cosine and MSE" + (", attention KL" if attention else ""))
    emit({"type": "stage", "stage": GENERAL_ROLE, "message": f"general distillation "
          f"({losses}), student layers {list(setup.layers)}"})
    unlabelled = np.full(len(train_texts), IGNORE_LABEL, dtype=np.int64)
    data = TrainData(tokenizer=tokenizer, texts=train_texts, labels=unlabelled,
                     validation_texts=held_out,
                     validation_labels=np.full(len(held_out), IGNORE_LABEL, dtype=np.int64),
                     label_names=[], general=setup)
    result = train(student, data, stage=GENERAL_ROLE, recipe=recipe, config=spec.train,
                   device=device, seed=spec.seed, teacher=teacher,
                   checkpoint_dir=run.checkpoint_dir(GENERAL_ROLE), on_event=emit,
                   should_cancel=lambda: distributed.main_says(run.cancel_requested()))
    if not distributed.is_main_process():
        return {}
    loss_name = recipe.name + ("+attention" if attention else "")
    student.config.distillab_training = {"stage": GENERAL_ROLE, "recipe": loss_name,
                                         "best_epoch": result.best_epoch,
                                         "train_samples_per_s": result.samples_per_s}
    if attention:
        student.set_attn_implementation(previous_attention)
    save_model(student.cpu(), tokenizer, saved)
    params, non_embedding = count_parameters(student)
    metrics = {"kind": "general", "teacher": spec.teacher, "loss": loss_name,
               "layers": list(setup.layers), "texts": len(train_texts),
               "validation_texts": len(held_out), "best_epoch": result.best_epoch,
               "val_loss": -result.best_accuracy, "params": params,
               "params_non_embedding": non_embedding, "history": result.history,
               "student": f"run:{run.id}/{GENERAL_ROLE}", "dataset": spec.dataset.name}
    run.write_metrics(metrics)
    emit({"type": "log", "message": f"general student saved as run:{run.id}/{GENERAL_ROLE}: "
          f"held-out loss {metrics['val_loss']:.4f} at epoch {result.best_epoch}; start a "
          f"task job from it with --student run:{run.id}/{GENERAL_ROLE}"})
    return metrics
