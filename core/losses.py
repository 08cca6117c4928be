"""Distillation losses as pure functions over tensors.

The full objective (DESIGN.md, Sanh et al. 2019):

    loss = alpha_kd * T^2 * KL(p_teacher(T) || p_student(T))
         + alpha_ce * CE(student_logits, labels)
         + alpha_cos * (1 - cos(h_student, h_teacher))

The T^2 factor lives in :func:`soft_target_loss` alone, so gradients of the soft term keep
the same scale whatever the temperature (Hinton et al. 2015, §2).

For a regression (one output) there is no distribution to soften, so the terms become:

    loss = alpha_kd * MSE(student, teacher) + alpha_ce * MSE(student, target)
         + alpha_cos * (1 - cos(h_student, h_teacher))

(the temperature does not apply; rows without a target, NaN, are skipped by the hard term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

IGNORE_LABEL = -100


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over the batch.

    Args:
        student_logits: (batch, classes).
        teacher_logits: (batch, classes), no gradient needed.
        temperature: T > 0; higher spreads the teacher's probability mass.
    Returns:
        A scalar tensor.
    """
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hard_label_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the true labels; rows labelled ``IGNORE_LABEL`` (-100) are skipped.

    Returns 0 (with a gradient path) when every row is unlabelled, e.g. a transfer-set batch.
    The mean is a sum over a clamped count rather than a branch on ``labels``: reading a
    device tensor in an ``if`` would make the host wait for the GPU at every step.
    """
    total = F.cross_entropy(student_logits.float(), labels, ignore_index=IGNORE_LABEL,
                            reduction="sum")
    return total / (labels != IGNORE_LABEL).sum().clamp(min=1)


def soft_regression_loss(student_outputs: torch.Tensor, teacher_outputs: torch.Tensor
                         ) -> torch.Tensor:
    """MSE between the student's and the teacher's outputs (regression's soft target).

    Args:
        student_outputs, teacher_outputs: (batch, 1) or (batch,).
    Returns:
        A scalar tensor.
    """
    return F.mse_loss(student_outputs.float().reshape(-1), teacher_outputs.float().reshape(-1))


def hard_regression_loss(student_outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE with the true targets; rows whose target is NaN (unlabelled transfer rows) are
    skipped, and a batch without targets gives 0 with a gradient path (no host sync)."""
    predicted = student_outputs.float().reshape(-1)
    targets = targets.float().reshape(-1)
    labelled = ~torch.isnan(targets)
    error = torch.where(labelled, predicted - torch.nan_to_num(targets), 0.0)
    return (error * error).sum() / labelled.sum().clamp(min=1)


def hidden_cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens of 1 - cos(h_student, h_teacher) (DistilBERT's L_cos).

    Args:
        student_hidden, teacher_hidden: (batch, seq, hidden), same width.
        attention_mask: (batch, seq), 1 for real tokens; padding is ignored.

    Every position is computed and padding weighted 0: selecting the real tokens with a
    boolean index would make the host wait for the GPU at every step.
    """
    weight = attention_mask.float()
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)
    return ((1.0 - cos) * weight).sum() / weight.sum().clamp(min=1.0)


@dataclass(frozen=True)
class LossTerms:
    """The weighted total and each unweighted term (detached; read with ``.item()`` only when
    logging, since each read is a device sync on CUDA)."""

    total: torch.Tensor
    kd: torch.Tensor
    ce: torch.Tensor
    cos: torch.Tensor


def distillation_loss(student_logits: torch.Tensor, labels: torch.Tensor, *,
                      teacher_logits: torch.Tensor | None = None,
                      student_hidden: torch.Tensor | None = None,
                      teacher_hidden: torch.Tensor | None = None,
                      attention_mask: torch.Tensor | None = None,
                      alpha_kd: float = 0.0, alpha_ce: float = 1.0, alpha_cos: float = 0.0,
                      temperature: float = 1.0, regression: bool = False) -> LossTerms:
    """The weighted objective; terms with weight 0 are not computed.

    With ``alpha_kd = alpha_cos = 0`` this is plain fine-tuning (teacher or baseline). With
    ``regression`` the soft and hard terms are MSEs (see the module docstring) and
    ``temperature`` is not used.
    """
    zero = student_logits.new_zeros((), dtype=torch.float32)
    total, kd, ce, cos = zero, zero, zero, zero
    if alpha_kd > 0:
        if teacher_logits is None:
            raise ValueError("alpha_kd > 0 needs teacher_logits")
        term = (soft_regression_loss(student_logits, teacher_logits) if regression
                else soft_target_loss(student_logits, teacher_logits, temperature))
        total = total + alpha_kd * term
        kd = term.detach()
    if alpha_ce > 0:
        term = (hard_regression_loss(student_logits, labels) if regression
                else hard_label_loss(student_logits, labels))
        total = total + alpha_ce * term
        ce = term.detach()
    if alpha_cos > 0:
        if student_hidden is None or teacher_hidden is None or attention_mask is None:
            raise ValueError("alpha_cos > 0 needs both hidden states and the attention mask")
        term = hidden_cosine_loss(student_hidden, teacher_hidden, attention_mask)
        total = total + alpha_cos * term
        cos = term.detach()
    return LossTerms(total=total, kd=kd, ce=ce, cos=cos)
