"""CUDA graphs over a few static batch shapes: one launch for a whole forward or step.

On the H200 host DistilLab was measured on, eager PyTorch spent ~0.9 ms per BERT layer per
forward launching kernels, so short batches ran at the host's pace, not the GPU's
(docs/BENCHMARKS.md). A captured CUDA graph replays every kernel of a forward (or of a whole
training step: forward, backward, clipping, optimizer) with one launch.

Graphs need fixed shapes and fixed addresses. On CUDA batch widths are rounded up to a
multiple of :data:`WIDTH_MULTIPLE` tokens and inference batches padded to a power-of-two
number of rows, so a job sees a handful of shapes. For each shape, :class:`ShapeGraphs`
runs the first occurrence eagerly on its capture stream (which warms that stream's kernels
and handles), captures the second into a graph and replays it, and replays that graph for
every later one. The inputs are copied into static buffers; the outputs are the graph's own
tensors, valid until the same shape runs again.

Graphs are opt-in until a GPU run has measured them (``DISTILLAB_CUDA_GRAPHS=1``; the
prepared GPU check, ``scripts/gpu_check.sh``, sets it and times the eager path beside
them). A capture that fails (a model whose forward waits on the GPU, say) turns graphs off
for that model or run, with the reason logged and recorded in :data:`STATS`; the batch then
runs eagerly. Static widths and ready 4-D masks apply on CUDA either way.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)

WIDTH_MULTIPLE = 32  # batch widths on CUDA: 32, 64, 96, ... tokens
MAX_GRAPHS = 48  # per model (inference) or per training stage; later shapes run eagerly


def graphs_enabled(device: str | torch.device) -> bool:
    """Whether DistilLab captures CUDA graphs on ``device``: CUDA with
    ``DISTILLAB_CUDA_GRAPHS=1`` (opt-in until measured on a GPU, see the module's notes)."""
    return (torch.device(device).type == "cuda"
            and os.environ.get("DISTILLAB_CUDA_GRAPHS", "0").strip() == "1")


def width_multiple(device: str | torch.device) -> int:
    """The multiple batch widths are rounded up to: :data:`WIDTH_MULTIPLE` on CUDA (few
    shapes, each warmed once), 1 elsewhere (a CPU pays for every padded token)."""
    return WIDTH_MULTIPLE if torch.device(device).type == "cuda" else 1


def width_cap(model: Any) -> int | None:
    """The widest a batch may be padded to for ``model``: its position limit (less two, for
    models such as RoBERTa whose positions start after the padding index)."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(positions) - 2 if isinstance(positions, int) and positions > 2 else None


def row_bucket(rows: int, full: int) -> int:
    """The rows a batch of ``rows`` is padded to: the next power of two, at most ``full``."""
    bucket = 1
    while bucket < rows:
        bucket *= 2
    return max(rows, min(bucket, full))


@dataclass
class GraphStats:
    """What the graphs did in this process (reset by the bench between contenders)."""

    captures: int = 0
    capture_s: float = 0.0
    replays: int = 0
    eager: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"captures": self.captures, "capture_s": round(self.capture_s, 4),
                "replays": self.replays, "eager": self.eager, "failures": self.failures[-5:]}

    def reset(self) -> None:
        self.captures, self.capture_s, self.replays, self.eager = 0, 0.0, 0, 0
        self.failures.clear()


STATS = GraphStats()


class ShapeGraphs:
    """Graphs of one function per input shape, on one CUDA device.

    ``run(key, inputs, fn)`` returns ``fn(inputs)``: eagerly on the first occurrence of
    ``key``, then from a captured graph. ``fn`` must only launch GPU work (no host reads
    of device values) and return tensors, or a structure of them, that it allocated.
    """

    def __init__(self, device: torch.device, max_graphs: int = MAX_GRAPHS) -> None:
        self.device = device
        self.max_graphs = max_graphs
        self.stream = torch.cuda.Stream(device)
        self.pool = torch.cuda.graph_pool_handle()
        self.seen: Counter[Hashable] = Counter()
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], Any]] = {}
        self.broken: str | None = None

    def run(self, key: Hashable, inputs: dict[str, torch.Tensor],
            fn: Callable[[dict[str, torch.Tensor]], Any]) -> Any:
        """``fn(inputs)``, from this shape's graph where there is one."""
        key = (key, tuple((name, tuple(t.shape), t.dtype) for name, t in inputs.items()))
        captured = self.graphs.get(key)
        if captured is not None:
            graph, static, outputs = captured
            for name, tensor in inputs.items():
                static[name].copy_(tensor, non_blocking=True)
            graph.replay()
            STATS.replays += 1
            return outputs
        self.seen[key] += 1
        if self.broken or len(self.graphs) >= self.max_graphs:
            STATS.eager += 1
            return fn(inputs)
        if self.seen[key] == 1:
            return self._eager_on_capture_stream(inputs, fn)
        return self._capture(key, inputs, fn)

    def _eager_on_capture_stream(self, inputs: dict[str, torch.Tensor],
                                 fn: Callable[[dict[str, torch.Tensor]], Any]) -> Any:
        """A real (eager) call on the stream graphs are captured on: it creates that
        stream's library handles and workspaces before any capture needs them."""
        STATS.eager += 1
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            outputs = fn(inputs)
        current.wait_stream(self.stream)
        return outputs

    def _capture(self, key: Hashable, inputs: dict[str, torch.Tensor],
                 fn: Callable[[dict[str, torch.Tensor]], Any]) -> Any:
        started = time.perf_counter()
        static = {name: tensor.clone() for name, tensor in inputs.items()}
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool, stream=self.stream,
                                  capture_error_mode="thread_local"):
                outputs = fn(static)
        except Exception as error:  # e.g. an op that reads a device value on the host
            self.broken = f"{type(error).__name__}: {error}"[:300]
            STATS.failures.append(self.broken)
            logger.warning("CUDA graph capture failed, running eagerly from now on: %s",
                           self.broken)
            torch.cuda.synchronize(self.device)
            STATS.eager += 1
            return fn(inputs)
        graph.replay()  # capturing records the kernels; this runs them
        self.graphs[key] = (graph, static, outputs)
        STATS.captures += 1
        STATS.capture_s += time.perf_counter() - started
        return outputs


# Inference graphs per model, dropped with the model. The key also holds the parameters'
# addresses: a model moved or re-cast gets new graphs (old ones would read freed memory).
_INFERENCE: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], ShapeGraphs]] = (
    weakref.WeakKeyDictionary())


def _weights_fingerprint(model: Any) -> tuple[Any, ...]:
    return tuple((p.data_ptr(), p.dtype) for p in model.parameters())


def inference_graphs(model: Any, device: torch.device) -> ShapeGraphs:
    """The graphs of ``model``'s forward passes on ``device`` (created on first use)."""
    fingerprint = (str(device), _weights_fingerprint(model))
    entry = _INFERENCE.get(model)
    if entry is None or entry[0] != fingerprint:
        entry = (fingerprint, ShapeGraphs(device))
        _INFERENCE[model] = entry
    return entry[1]


# Whether a model gives the same logits with a ready 4-D boolean mask as with the 2-D one.
_MASK_4D: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def model_attention_mask(model: Any, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mask to hand ``model``: on CUDA, for SDPA models that accept it, a ready 4-D
    boolean mask ``(rows, 1, 1, width)``; else the 2-D one unchanged.

    Transformers 5 turns a 2-D mask into a 4-D one in every forward and first checks
    whether any token is padded (``padding_mask.all()``), which makes the host wait for
    the GPU once per forward. A 4-D mask is taken as it is: no wait, and nothing that a
    graph capture would refuse.
    """
    if attention_mask.device.type != "cuda" or not _accepts_4d_mask(model, attention_mask.device):
        return attention_mask
    return attention_mask.bool()[:, None, None, :]


def _accepts_4d_mask(model: Any, device: torch.device) -> bool:
    known = _MASK_4D.get(model)
    if known is not None:
        return known
    accepted = False
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) == "sdpa":
        accepted = _probe_4d_mask(model, device)
    _MASK_4D[model] = accepted
    return accepted


def _probe_4d_mask(model: Any, device: torch.device) -> bool:
    """Run two padded rows with the 2-D and the 4-D mask; the same logits (or the same last
    hidden states) mean the model reads the 4-D mask as intended."""
    vocab = int(getattr(model.config, "vocab_size", 1000) or 1000)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(100, vocab - 1), vocab, (2, 16), generator=generator).to(device)
    mask = torch.ones(2, 16, dtype=torch.long, device=device)
    mask[1, 9:] = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            plain = _probe_output(model(input_ids=ids, attention_mask=mask))
            ready = _probe_output(model(input_ids=ids,
                                        attention_mask=mask.bool()[:, None, None, :]))
        scale = plain.abs().max().clamp(min=1e-6)
        same = bool(((plain - ready).abs().max() / scale) < 2e-2)
    except Exception as error:  # a model that refuses 4-D masks keeps its 2-D ones
        logger.info("keeping 2-D attention masks for %s: %s", type(model).__name__, error)
        same = False
    finally:
        model.train(was_training)
    return same


def _probe_output(outputs: Any) -> torch.Tensor:
    tensor = getattr(outputs, "logits", None)
    if tensor is None:
        tensor = outputs.last_hidden_state
    return tensor.float()
