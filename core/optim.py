"""The optimiser and learning-rate schedule of every training stage: AdamW (fused where the
device has the kernel) with linear warm-up and decay."""

from __future__ import annotations

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                   device: torch.device, capturable: bool = False) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; biases and LayerNorm weights not decayed."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # Biases and LayerNorm weights are not decayed (BERT's recipe).
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates each tensor in one pass. On a CPU the default per-tensor loop
    # costs ~50 ms a step for a 17M-parameter MiniLM student, the fused one ~7 ms.
    if capturable:  # a step inside a CUDA graph: step count and learning rate on the device
        return torch.optim.AdamW(groups, lr=torch.tensor(lr, device=device), fused=True,
                                 capturable=True)
    return torch.optim.AdamW(groups, lr=lr, fused=device.type in ("cuda", "cpu"))


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
