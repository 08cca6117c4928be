"""Dynamic int8 quantisation of a student for CPU inference: an extra point on the trade-off.

Every ``nn.Linear`` gets int8 weights (one scale per output channel, which keeps the
predictions closer to fp32 than one scale per tensor: 96.5% vs 94.5% label agreement for
MiniLM with a probe head on BBC News) and quantises its input activations on the fly;
embeddings, LayerNorm, biases and the attention softmax stay fp32. It needs no calibration
data and runs on x86 (fbgemm/onednn) and Arm (qnnpack) CPUs, not on GPUs.

It uses ``torch.ao.quantization.quantize_dynamic``. PyTorch marks that API deprecated in
favour of the separate ``torchao`` package, but it still works in torch 2.13, which this
project pins; the deprecation warnings are silenced here and nothing else changes.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

INT8_WEIGHTS_FILE = "model_int8.pt"
INT8_MARKER_FILE = "quantization.json"
INT8_PRECISION = "int8-dynamic"
WHAT_SIZE_COUNTS = ("torch.save of the quantised state dict: int8 Linear weights with their "
                    "scales and zero points, fp32 biases, embeddings and LayerNorm; "
                    "tokenizer and config not counted")


def int8_supported() -> bool:
    """Whether this torch build has a CPU engine for dynamic int8 Linear layers."""
    try:
        engines = torch.backends.quantized.supported_engines
    except AttributeError:
        return False
    return any(e in engines for e in ("x86", "fbgemm", "onednn", "qnnpack"))


def quantize_dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """An int8 copy of ``model`` for CPU inference; ``model`` itself is left unchanged.

    Args:
        model: a float model (any device; the copy is on the CPU, in eval mode).
    Returns:
        The quantised copy; it keeps the original's ``config`` (labels, layer count).
    Raises:
        RuntimeError: this torch build has no quantised CPU engine.
    """
    if not int8_supported():
        raise RuntimeError("this torch build has no quantised CPU engine (fbgemm, x86, "
                           "onednn or qnnpack); int8 quantisation is unavailable")
    # deepcopy first: quantize_dynamic would otherwise move the caller's model to the CPU.
    float_copy = copy.deepcopy(model).to("cpu", dtype=torch.float32).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*deprecat.*",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated.*")
        quantization = torch.ao.quantization
        quantized = quantization.quantize_dynamic(
            float_copy, {torch.nn.Linear: quantization.per_channel_dynamic_qconfig},
            dtype=torch.qint8)
    return quantized.eval()


def serialized_size_bytes(model: torch.nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (what :func:`save_int8` writes)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def save_int8(model: torch.nn.Module, folder: str | Path, source_role: str) -> float:
    """Write the quantised state dict and a marker that says how to rebuild the model.

    The folder deliberately holds no ``config.json``: it is not a ``from_pretrained``
    folder, and the run registry lists only those. The model is rebuilt by loading the
    ``source_role`` model and calling :func:`quantize_dynamic_int8` (deterministic: the
    weight scales come from the weights alone).

    Args:
        model: the quantised model.
        folder: e.g. ``runs/<id>/models/student_int8``.
        source_role: the role of the float model it was made from.
    Returns:
        The weights file's size in MB (1,000,000 bytes).
    """
    from core.runs import atomic_write_bytes, atomic_write_json

    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(folder / INT8_WEIGHTS_FILE, buffer.getvalue())
    atomic_write_json(folder / INT8_MARKER_FILE, {
        "quantization": "dynamic int8, per-channel weights (torch.ao.quantization."
                        "quantize_dynamic, nn.Linear)",
        "source_role": source_role,
        "rebuild": "core.quantize.quantize_dynamic_int8(<source_role model>)",
        "torch": torch.__version__,
        "size_counts": WHAT_SIZE_COUNTS,
    })
    size_mb = (folder / INT8_WEIGHTS_FILE).stat().st_size / 1e6
    logger.info("saved int8 %s (%.2f MB) to %s", source_role, size_mb, folder)
    return size_mb


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker :func:`save_int8` wrote, or None."""
    path = Path(folder) / INT8_MARKER_FILE
    return json.loads(path.read_text()) if path.exists() else None
