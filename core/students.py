"""Students, DistilBERT-style (Sanh et al. 2019, §3): same width as the teacher, a subset
of its layers copied (:func:`default_student_layers`, :func:`extract_student`); or a
pretrained checkpoint; or a fresh smaller config. And the teacher/student compatibility check.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.models import ModelError, load_classifier
from core.specs import (  # noqa: F401  (the size policy lives with the spec)
    STUDENT_SIZES,
    default_student_layers,
    layers_for_size,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def load_pretrained_student(ref: str, label_names: list[str], runs_dir: str | Path | None = None
                            ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a pretrained checkpoint as the student (see :func:`load_classifier`).

    Returns:
        ``(model, tokenizer)`` with a head for ``label_names``.
    """
    model, tokenizer, _ = load_classifier(ref, label_names, runs_dir)
    return model, tokenizer


def _layer_list_path(model: PreTrainedModel) -> str:
    """Where the transformer blocks live: BERT/RoBERTa/ELECTRA or DistilBERT layout."""
    import torch.nn as nn

    prefix = model.base_model_prefix
    bases = [f"{prefix}."] if prefix and hasattr(model, prefix) else []
    for base in [*bases, ""]:
        for sub in ("encoder.layer", "transformer.layer"):
            try:
                module = model.get_submodule(base + sub)
            except AttributeError:
                continue
            if isinstance(module, nn.ModuleList):
                return base + sub
    raise ModelError(f"{type(model).__name__}: unsupported layout for layer extraction "
                     "(expected <base>.encoder.layer or <base>.transformer.layer)")


def extract_student(teacher: PreTrainedModel, layers: Sequence[int] | None = None
                    ) -> PreTrainedModel:
    """Build a DistilBERT-style student: the teacher with only ``layers`` kept.

    The student has the teacher's class and config with ``len(layers)`` layers; student layer
    ``i`` is a copy of teacher layer ``layers[i]``; embeddings, pooler and head are copied.
    The chosen layers are recorded as ``config.distillab_teacher_layers``.

    Args:
        teacher: a BERT-layout (``<base>.encoder.layer``) or DistilBERT-layout
            (``distilbert.transformer.layer``) model.
        layers: strictly ascending teacher layer indices (default
            :func:`default_student_layers`).
    Returns:
        The student, on the teacher's device and dtype, in the teacher's train/eval mode.
    Raises:
        ModelError: an unsupported layout, or layers out of range or not ascending.
    """
    path = _layer_list_path(teacher)
    count = len(teacher.get_submodule(path))
    layers = list(default_student_layers(count) if layers is None else layers)
    if not layers or layers != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < count:
        raise ModelError(f"student layers {layers} must be strictly ascending indices of the "
                         f"teacher's {count} layers (0..{count - 1})")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)  # DistilBertConfig maps this to n_layers
    config.distillab_teacher_layers = layers
    # A fresh model (not a deep copy) so per-layer attributes such as layer_idx match.
    student = type(teacher)(config)
    source_of = {i: j for i, j in enumerate(layers)}
    layer_prefix = path + "."
    state = {}
    teacher_state = teacher.state_dict()
    for key in student.state_dict():
        if key.startswith(layer_prefix):
            index, rest = key[len(layer_prefix):].split(".", 1)
            key_in_teacher = f"{layer_prefix}{source_of[int(index)]}.{rest}"
        else:
            key_in_teacher = key
        state[key] = teacher_state[key_in_teacher]
    student.load_state_dict(state, strict=True)
    first = next(teacher.parameters())
    student.to(device=first.device, dtype=first.dtype)
    student.train(teacher.training)
    logger.info("extracted a %d-layer student from teacher layers %s of %d", len(layers),
                layers, count)
    return student


def build_fresh_student(teacher: PreTrainedModel, num_layers: int, hidden_size: int | None = None,
                        num_heads: int | None = None) -> PreTrainedModel:
    """A randomly initialised student of the teacher's config class, vocabulary and labels.

    Args:
        teacher: the teacher whose config is the template.
        num_layers: the student's layer count.
        hidden_size: the student's width (default the teacher's); intermediate = 4 x width.
        num_heads: attention heads (default: the teacher's if they divide the width, else
            width / 64).
    Returns:
        The new student (fp32, on the teacher's device).
    Raises:
        ModelError: fewer than one layer, or heads that do not divide the width.
    """
    if num_layers < 1:
        raise ModelError(f"a fresh student needs at least one layer, got {num_layers}")
    config = copy.deepcopy(teacher.config)
    hidden = hidden_size or config.hidden_size
    if num_heads is None:
        num_heads = config.num_attention_heads
        if hidden % num_heads and hidden % 64 == 0:
            num_heads = hidden // 64
    if hidden % num_heads:
        raise ModelError(f"student hidden size {hidden} is not divisible by {num_heads} heads; "
                         "choose num_heads")
    config.num_hidden_layers = num_layers
    config.hidden_size = hidden
    config.num_attention_heads = num_heads
    # BERT-style configs name the feed-forward width intermediate_size, DistilBERT hidden_dim.
    setattr(config, "hidden_dim" if config.model_type == "distilbert" else "intermediate_size",
            4 * hidden)
    if hasattr(config, "distillab_teacher_layers"):
        del config.distillab_teacher_layers
    student = type(teacher)(config)
    return student.to(next(teacher.parameters()).device)


def check_compatibility(teacher: PreTrainedModel, teacher_tokenizer: PreTrainedTokenizerBase,
                        student: PreTrainedModel, student_tokenizer: PreTrainedTokenizerBase, *,
                        needs_hidden_states: bool) -> None:
    """Refuse a teacher/student pair that cannot be distilled, before any training.

    Args:
        teacher, teacher_tokenizer, student, student_tokenizer: the pair.
        needs_hidden_states: the recipe compares hidden states (cosine loss).
    Raises:
        ModelError: different vocabularies, label counts, or widths when hidden states are
            compared.
    """
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        differ = len(set(teacher_vocab.items()) ^ set(student_vocab.items()))
        raise ModelError(f"teacher and student tokenizers differ: {differ} token entries are not "
                         f"shared (vocab sizes {len(teacher_vocab)} and {len(student_vocab)}); "
                         "the student must use the teacher's tokenizer")
    if teacher.config.num_labels != student.config.num_labels:
        raise ModelError(f"teacher has {teacher.config.num_labels} labels but the student has "
                         f"{student.config.num_labels}")
    if needs_hidden_states and teacher.config.hidden_size != student.config.hidden_size:
        raise ModelError(f"the recipe compares hidden states but the teacher is "
                         f"{teacher.config.hidden_size} wide and the student "
                         f"{student.config.hidden_size}: use recipe 'logits' or a same-width "
                         "student")
