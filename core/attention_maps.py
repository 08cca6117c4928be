"""An attention implementation that returns the attention distributions before dropout, for
MiniLM's self-attention transfer (core.general).

SDPA returns no attention maps, and transformers' ``eager`` returns them after dropout,
where a dropped entry (zero) against a teacher's non-zero probability would make the KL
divergence noise. ``use_attention_maps(model)`` switches a model to this implementation
(eager arithmetic, dropout applied to the output only); ``model.set_attn_implementation``
with the previous name switches it back.
"""

from __future__ import annotations

from typing import Any

import torch

ATTENTION_MAPS = "distillab_attention_maps"


def attention_maps_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                           value: torch.Tensor, attention_mask: torch.Tensor | None,
                           scaling: float | None = None, dropout: float = 0.0,
                           **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention over (batch, heads, length, head_dim); returns the output
    (batch, length, heads, head_dim) and the softmax probabilities before dropout."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:  # additive (eager's mask): 0 or the dtype's minimum
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    dropped = torch.nn.functional.dropout(probs, p=dropout, training=module.training)
    return torch.matmul(dropped, value).transpose(1, 2).contiguous(), probs


def use_attention_maps(model: Any) -> str:
    """Switch ``model`` to :data:`ATTENTION_MAPS`; returns the implementation it had."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION_MAPS, attention_maps_forward)
    AttentionMaskInterface.register(ATTENTION_MAPS, eager_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_MAPS)
    return previous
