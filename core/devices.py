"""Which device and precision to run on, and how to describe them in a report.

``resolve_device`` turns a spec's ``device`` string into a ``torch.device`` (failing clearly
when the hardware is missing), ``inference_dtype`` picks the precision for evaluation and
timing, and ``describe_device`` names the hardware so timings are never reported without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

import torch

logger = logging.getLogger(__name__)

_PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16",
                    torch.float64: "fp64"}


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The device a job asked for, checked against the hardware present.

    Args:
        name: ``auto`` (CUDA if available, else MPS, else CPU), ``cpu``, ``cuda``,
            ``cuda:N`` or ``mps``; a ``torch.device`` is checked the same way.
    Returns:
        The ``torch.device`` to use.
    Raises:
        ValueError: the name is unknown or the requested accelerator is not available.
    """
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was requested but CUDA is not available on this "
                             "machine (no GPU or a CPU-only torch build); use 'cpu' or 'auto'")
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise ValueError(f"device {name!r} was requested but only {count} CUDA device(s) "
                             f"exist (cuda:0 .. cuda:{count - 1})")
        return torch.device("cuda", index)
    if device.type == "mps" and not mps_available():
        raise ValueError(f"device {name!r} was requested but MPS is not available; "
                         "use 'cpu' or 'auto'")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


@lru_cache(maxsize=1)
def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device: str | torch.device) -> str:
    """A human-readable name of the hardware behind ``device``, for reports.

    Args:
        device: a device or its name.
    Returns:
        e.g. ``"cpu (AMD EPYC 7B13, 2 threads)"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({_cpu_model_name()}, {torch.get_num_threads()} threads)"
    if device.type == "mps":
        return f"mps ({platform.machine()})"
    return str(device)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX).

    There bf16 matmuls run at twice the fp32 rate: MiniLM's forward pass measured 2.3x
    faster under bf16 autocast on a Zen 4 EPYC. Without it, bf16 is emulated and slower.
    ``DISTILLAB_CPU_BF16=0`` (or ``1``) overrides the detection.

    Returns:
        True where bf16 is the faster choice on this CPU.
    """
    forced = os.environ.get("DISTILLAB_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def is_int8_quantized(model: Any) -> bool:
    """Whether ``model`` holds dynamically quantised (int8) modules, which take fp32 inputs."""
    modules = model.modules() if hasattr(model, "modules") else ()
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in modules)


def inference_dtype(device: str | torch.device, model: Any = None) -> torch.dtype:
    """The precision used for evaluation and timing on ``device``.

    bf16 autocast (the weights stay fp32) on GPUs that support it natively and on CPUs that
    multiply bf16 natively (:func:`cpu_has_native_bf16`); fp32 elsewhere, where bf16 would
    be emulated and slower. An int8-quantised ``model`` always gets fp32 inputs.

    Args:
        device: a device or its name.
        model: the model to run, if known (int8 models need fp32).
    Returns:
        ``torch.bfloat16`` or ``torch.float32``.
    """
    device = torch.device(device)
    if model is not None and is_int8_quantized(model):
        return torch.float32
    if model is not None and getattr(getattr(model, "config", None), "num_labels", 2) == 1:
        # A regression's one output in bf16 keeps ~3 significant digits: ties that move
        # its Spearman correlation. It is scored and timed in fp32.
        return torch.float32
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def training_dtype(device: str | torch.device) -> torch.dtype:
    """The autocast precision of training steps on ``device`` (weights and optimizer stay fp32).

    bf16 where the hardware multiplies it natively, by the rule of :func:`inference_dtype`:
    GPUs with bf16, and CPUs with AVX512-BF16 or AMX, where a MiniLM training step (batch
    32 x 64 tokens, forward, backward and fused AdamW) took 310 ms against 671 ms in fp32 on
    a 2-core Zen 4 EPYC. fp32 elsewhere. ``DISTILLAB_CPU_BF16=0`` keeps CPUs in fp32.
    """
    return inference_dtype(device)


# Padded tokens per inference batch. A GPU wants large batches to fill its cores and few
# launches per text: on an H200 whose host spent ~1 ms per layer launching kernels, 872 SST-2
# sentences in 4 batches took 66 ms for BERT-base (docs/BENCHMARKS.md). A CPU is fastest
# when a batch's activations stay in cache: MiniLM on SST-2 ran 2.0x faster at 1,024 tokens
# a batch than at 16,384 (bf16 and fp32 alike), and BBC articles 1.4x faster.
GPU_BATCH_TOKENS = 32768
CPU_BATCH_TOKENS = 1024
# The most rows in one inference batch (short texts reach it before the token budget).
GPU_BATCH_ROWS = 1024
CPU_BATCH_ROWS = 256


def default_batch_tokens(device: str | torch.device) -> int:
    """The padded-token budget of one inference batch on ``device``.

    Args:
        device: a device or its name.
    Returns:
        32,768 on GPUs, 1,024 on CPUs (cache-sized batches; see ``CPU_BATCH_TOKENS``).
    """
    return CPU_BATCH_TOKENS if torch.device(device).type == "cpu" else GPU_BATCH_TOKENS


def default_batch_rows(device: str | torch.device) -> int:
    """The most rows in one inference batch on ``device``: 1,024 on GPUs, 256 on CPUs."""
    return CPU_BATCH_ROWS if torch.device(device).type == "cpu" else GPU_BATCH_ROWS


def precision_name(dtype: torch.dtype) -> str:
    """Short name of a precision for reports: ``bf16``, ``fp16``, ``fp32``."""
    return _PRECISION_NAMES.get(dtype, str(dtype).removeprefix("torch."))


def autocast_context(device: str | torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op for full precision.

    While a CUDA graph is being captured autocast's cache of cast weights is off: a graph
    that read cast weights cached outside it would read freed memory when replayed, so
    inside a graph every forward casts its weights itself (PyTorch's CUDA-graph rules)."""
    device = torch.device(device)
    if dtype in (torch.float32, torch.float64):
        return contextlib.nullcontext()
    capturing = device.type == "cuda" and torch.cuda.is_current_stream_capturing()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=not capturing)


def attention_backends(device: str | torch.device) -> AbstractContextManager:
    """On CUDA, PyTorch's SDPA with its flash, memory-efficient and math kernels only.

    Recent PyTorch prefers the cuDNN attention kernel on Hopper GPUs (H100, H200) for bf16.
    cuDNN builds an execution graph for every new (batch, length) shape, hundreds of ms each
    (forward and backward), and length-bucketed batches bring dozens of shapes. On an H200
    DistilLab's first distillation epoch ran 9.8 s beyond its steady steps, the same batches
    again 1.2 s, while an fp32 loop of one padded shape (cuDNN attention needs bf16/fp16)
    paid nothing (docs/BENCHMARKS.md). The memory-efficient kernel takes BERT's padding
    mask with no per-shape set-up. ``DISTILLAB_CUDNN_ATTENTION=1`` allows cuDNN again;
    elsewhere than CUDA this is a no-op.
    """
    device = torch.device(device)
    if device.type != "cuda" or os.environ.get("DISTILLAB_CUDNN_ATTENTION", "").strip() == "1":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                        SDPBackend.MATH])


@contextlib.contextmanager
def forward_context(device: str | torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Where every DistilLab forward pass runs (training steps and inference alike):
    :func:`autocast_context` to ``dtype`` and the kernels :func:`attention_backends` allows."""
    with autocast_context(device, dtype), attention_backends(device):
        yield


def prefer_sdpa(model: Any) -> str:
    """Switch a model that runs eager attention to PyTorch's SDPA kernels where it can.

    Transformers 5 picks SDPA by default; a checkpoint or caller that asked for ``eager``
    gets the fused kernel here (same numbers, less memory traffic; on CUDA it dispatches to
    memory-efficient attention). Models without SDPA support keep what they have.

    Args:
        model: a Hugging Face model (anything else is left alone).
    Returns:
        The attention implementation in use afterwards, or ``"unknown"``.
    """
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if current == "eager" and getattr(model, "_supports_sdpa", False):
        try:
            model.set_attn_implementation("sdpa")
        except (ValueError, ImportError) as error:
            logger.info("keeping eager attention: %s", error)
        current = getattr(config, "_attn_implementation", current)
    return current or "unknown"


def configure_cpu_threads() -> int:
    """Limit torch's intra-op threads to the CPUs this process may actually use.

    In containers torch counts the host's cores, not the cgroup's CPU set; more threads
    than CPUs makes every op slower (threads contend and spin). An explicit
    ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` is respected.

    Returns:
        The number of intra-op threads torch now uses.
    """
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        return torch.get_num_threads()
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        available = os.cpu_count() or 1
    current = torch.get_num_threads()
    if current > available:
        torch.set_num_threads(available)
        logger.info("torch threads %d -> %d (CPUs available to this process)", current,
                    available)
    return torch.get_num_threads()
