"""The teacher's side of a training step and the step's loss.

:func:`step_loss` forwards the student (and the teacher, unless its logits were cached by
:func:`compute_teacher_logits`) and combines the recipe's terms; :func:`freeze_teacher`
readies the teacher for forward passes only.
"""

from __future__ import annotations

from typing import Any

import torch

from core.batching import EncodedTexts
from core.cuda_graphs import model_attention_mask
from core.devices import forward_context, training_dtype
from core.losses import distillation_loss
from core.models import final_hidden_states
from core.specs import Recipe


def compute_teacher_logits(teacher: torch.nn.Module, encoded: EncodedTexts, pad_token_id: int,
                           device: torch.device, batch_tokens: int | None = None
                           ) -> torch.Tensor:
    """Teacher logits for every row, in row order (float32, on ``device``).

    Used to cache the teacher once when the recipe needs only its logits: the teacher is
    deterministic in eval mode, so every epoch would recompute the same numbers. It runs on
    the inference path (token-budget batches, the device's inference precision).
    """
    from core.evaluation import predict_logits_encoded

    teacher.eval()
    return predict_logits_encoded(teacher, encoded, pad_token_id=pad_token_id, device=device,
                                  batch_tokens=batch_tokens)


def freeze_teacher(teacher: torch.nn.Module, device: torch.device) -> None:
    """Eval mode, no gradients, on ``device``; on CUDA in bf16 (the teacher only runs
    forward: half the memory traffic). Converts the caller's teacher in place; the pipeline
    has saved it already."""
    teacher.to(device, dtype=torch.bfloat16 if device.type == "cuda" else None).eval()
    teacher.requires_grad_(False)


def step_loss(forward: Any, teacher: torch.nn.Module | None, batch: dict[str, torch.Tensor],
              labels: torch.Tensor, recipe: Recipe, teacher_logits_cache: torch.Tensor | None,
              rows: torch.Tensor, device: torch.device, model: torch.nn.Module) -> Any:
    """Forward the student (and the teacher unless cached) and combine the recipe's terms.

    ``model`` is the student itself (``forward`` may wrap it); on CUDA it and the teacher
    get ready 4-D masks (``core.cuda_graphs.model_attention_mask``)."""
    hidden = recipe.needs_hidden_states and teacher is not None
    teacher_logits = teacher_hidden = None
    mask = batch["attention_mask"]
    # The model's inputs: token ids, and segment ids for pairs (not the graph's row indices).
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids") if k in batch}
    with forward_context(device, training_dtype(device)):
        if teacher is not None:
            if teacher_logits_cache is not None:
                teacher_logits = teacher_logits_cache[rows]  # rows: on the device already
            else:
                # no_grad rather than inference_mode: the loss keeps teacher tensors for backward.
                with torch.no_grad():
                    out = teacher(**inputs, attention_mask=model_attention_mask(teacher, mask),
                                  output_hidden_states=hidden)
                teacher_logits = out.logits
                teacher_hidden = final_hidden_states(out) if hidden else None
        out = forward(**inputs, attention_mask=model_attention_mask(model, mask),
                      output_hidden_states=hidden)
    return distillation_loss(
        out.logits, labels, teacher_logits=teacher_logits,
        student_hidden=final_hidden_states(out) if hidden else None, teacher_hidden=teacher_hidden,
        attention_mask=batch["attention_mask"], alpha_kd=recipe.alpha_kd if teacher else 0.0,
        alpha_ce=recipe.alpha_ce, alpha_cos=recipe.alpha_cos if teacher else 0.0,
        temperature=recipe.temperature, regression=out.logits.shape[-1] == 1)
