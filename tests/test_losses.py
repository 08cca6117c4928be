"""Losses against values computed by hand."""

import math

import pytest
import torch

from core.losses import (
    IGNORE_LABEL,
    distillation_loss,
    hard_label_loss,
    hidden_cosine_loss,
    soft_target_loss,
)


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))


def test_soft_target_loss_at_t1_is_kl_of_teacher_to_student():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])  # p_teacher = [0.75, 0.25]
    expected = _kl([0.75, 0.25], [0.5, 0.5])  # 0.130812...
    assert soft_target_loss(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_soft_target_loss_scales_by_t_squared():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    s3 = math.sqrt(3.0)
    p_teacher_t2 = [s3 / (s3 + 1), 1 / (s3 + 1)]  # softmax([ln 3 / 2, 0])
    expected = 4.0 * _kl(p_teacher_t2, [0.5, 0.5])  # 0.14539...
    assert soft_target_loss(student, teacher, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_soft_target_loss_is_zero_when_student_matches_teacher():
    logits = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    assert soft_target_loss(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_target_loss_averages_over_the_batch():
    student = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    expected = _kl([0.75, 0.25], [0.5, 0.5]) / 2
    assert soft_target_loss(student, teacher, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_hard_label_loss_ignores_unlabelled_rows():
    logits = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    labels = torch.tensor([0, IGNORE_LABEL])
    assert hard_label_loss(logits, labels).item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_hard_label_loss_of_an_all_unlabelled_batch_is_zero_with_a_gradient():
    logits = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss = hard_label_loss(logits, torch.tensor([IGNORE_LABEL]))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


def test_hidden_cosine_loss_ignores_padding():
    student = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [9.0, -9.0]]])
    teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0], [1.0, 1.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # token 1: orthogonal -> 1 - 0 = 1; token 2: parallel -> 0; token 3 is padding.
    assert hidden_cosine_loss(student, teacher, mask).item() == pytest.approx(0.5, abs=1e-6)


def test_hidden_cosine_loss_sends_no_gradient_to_padding():
    student = torch.randn(2, 4, 8, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    hidden_cosine_loss(student, torch.randn(2, 4, 8), mask).backward()
    assert torch.all(student.grad[mask == 0] == 0)
    assert torch.all(student.grad[mask == 1].abs().sum(-1) > 0)


def test_distillation_loss_weights_each_term():
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    labels = torch.tensor([0])
    hidden_s = torch.tensor([[[1.0, 0.0]]])
    hidden_t = torch.tensor([[[0.0, 1.0]]])
    terms = distillation_loss(student, labels, teacher_logits=teacher, student_hidden=hidden_s,
                              teacher_hidden=hidden_t, attention_mask=torch.tensor([[1]]),
                              alpha_kd=2.0, alpha_ce=3.0, alpha_cos=5.0, temperature=1.0)
    kd, ce, cos = _kl([0.75, 0.25], [0.5, 0.5]), math.log(2.0), 1.0
    assert terms.total.item() == pytest.approx(2 * kd + 3 * ce + 5 * cos, rel=1e-6)
    assert (terms.kd.item(), terms.ce.item(), terms.cos.item()) == pytest.approx((kd, ce, cos))


def test_distillation_loss_with_only_ce_is_fine_tuning():
    logits = torch.tensor([[2.0, 0.0]])
    labels = torch.tensor([1])
    terms = distillation_loss(logits, labels, alpha_ce=1.0)
    expected = -math.log(math.exp(0.0) / (math.exp(2.0) + 1.0))
    assert terms.total.item() == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_needs_the_teacher_for_kd():
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(torch.zeros(1, 2), torch.tensor([0]), alpha_kd=1.0)
