"""Saving models atomically, their size (parameters, MB on disk) and the fine-tuned-teacher
cache key."""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.models import _BUNDLED_ALIASES, _WEIGHT_SUFFIXES, BUNDLED_MODELS, ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """Count parameters, total and without the input embeddings.

    The embedding part is the base model's whole ``embeddings`` module (word, position and
    token-type embeddings and their LayerNorm), plus any other ``nn.Embedding``.

    Returns:
        ``(total, non_embedding)``; shared parameters count once.
    """
    import torch.nn as nn

    total = sum(p.numel() for p in model.parameters())
    embedding_params: dict[int, int] = {}
    embeddings = getattr(model.base_model, "embeddings", None)
    modules = [embeddings] if isinstance(embeddings, nn.Module) else []
    modules += [m for m in model.modules() if isinstance(m, nn.Embedding)]
    for module in modules:
        for p in module.parameters():
            embedding_params[id(p)] = p.numel()
    return total, total - sum(embedding_params.values())


def size_on_disk_mb(path: str | Path) -> float:
    """Size of a model folder's weights files (``*.safetensors``, ``*.bin``).

    Returns:
        Megabytes, MB = 1,000,000 bytes (tokenizer and config files not counted).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(f"{path}: folder not found")
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)) / 1e6


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE); False if absent."""
    libc_name = ctypes.util.find_library("c")
    try:
        renameat2 = ctypes.CDLL(libc_name, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               path: str | Path) -> float:
    """Save a model (safetensors) and its tokenizer so ``path`` is never half-written.

    Everything is written to a temporary sibling folder, which then replaces ``path`` by
    rename: an atomic exchange on Linux, else two renames (old out, new in).

    Args:
        model: the model; tokenizer: its tokenizer; path: the target folder.
    Returns:
        The weights' size on disk in MB (see :func:`size_on_disk_mb`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if not target.exists():
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp)  # now holds the old model
        else:
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                os.rename(old, target)  # put the old model back
                raise
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return size_on_disk_mb(target)


def _checkpoint_identity(checkpoint: str) -> Any:
    """A bundled or local checkpoint as its resolved path plus its files' sizes and times."""
    key = _BUNDLED_ALIASES.get(checkpoint, checkpoint)
    local = Path(BUNDLED_MODELS[key]() if key in BUNDLED_MODELS else checkpoint).expanduser()
    if not local.is_dir():
        return checkpoint  # a Hub id
    # Overwriting a folder with another model must not reuse the old fine-tuned teacher.
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in local.iterdir()
                   if p.name == "config.json" or p.name.endswith(_WEIGHT_SUFFIXES))
    return {"path": str(local.resolve()), "files": files}


def teacher_cache_key(checkpoint: str, data_fingerprint: str, settings: dict[str, Any]) -> str:
    """The cache key of a fine-tuned teacher.

    Args:
        checkpoint: the teacher's Hub id, local folder or ``bundled:minilm`` (resolved; a
            local folder also contributes its weights files' sizes and modification times).
        data_fingerprint: a fingerprint of the training data.
        settings: the fine-tuning settings (JSON-serialisable).
    Returns:
        The first 16 hex digits of the SHA-256 of the canonical JSON of the three.
    """
    payload = {"checkpoint": _checkpoint_identity(checkpoint), "data": data_fingerprint,
               "settings": settings}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
