"""Data-parallel training over processes started by ``accelerate launch`` or ``torchrun``.

The launcher sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in every process;
:func:`init_from_env` joins them into one process group (gloo for CPU tensors, NCCL for CUDA
tensors) and is a no-op in a single process, so the same code runs either way.

Semantics, chosen so a run means the same on N processes as on one: every rank builds the
same global batches (same seed, same order, same steps per epoch and schedule), trains on its
strided share of each (:func:`shard_batch`), and DDP averages the gradients, weighted so a step
follows the global batch's row-mean loss. ``batch_size`` is the global batch; each rank
holds about ``batch_size / N`` rows. Rank 0 (the main process) alone validates (and sends the
numbers to the others, so every rank keeps the same best epoch), writes the run folder and
scores the models; the other ranks train and return. Single node only: resuming reads the
checkpoint rank 0 wrote, from the same disk.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from core.runs import Run

log = logging.getLogger(__name__)

DEBUG_WEIGHTS_ENV = "DISTILLAB_DEBUG_WEIGHTS_DIR"
# Rank 0 validates and saves while the others wait in a collective: allow it time.
_TIMEOUT = timedelta(minutes=60)


class DistributedError(ValueError):
    """Rank 0 failed a step every rank depends on; the message is rank 0's."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands among the data-parallel processes."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_context = DistContext()


def current() -> DistContext:
    """This process's context (world size 1 until :func:`init_from_env` joins a group)."""
    return _context


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a data-parallel group."""
    return _context.is_main


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def init_from_env() -> DistContext:
    """Join the process group a launcher described in the environment, once.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (set by ``accelerate launch`` and
    ``torchrun``). With CUDA, this process takes GPU ``LOCAL_RANK``.

    Returns:
        The context; ``world_size == 1`` (nothing initialised) without a launcher.
    """
    global _context
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1 or _context.enabled:
        return _context
    local_rank = _env_int("LOCAL_RANK", 0)
    use_cuda = (torch.cuda.is_available() and local_rank < torch.cuda.device_count()
                and dist.is_nccl_available()
                and os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    # Object broadcasts and barriers go through gloo (CPU); gradients of CUDA models via NCCL.
    backend = "cpu:gloo,cuda:nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=_TIMEOUT)
        atexit.register(_destroy)
    _context = DistContext(world_size=dist.get_world_size(), rank=dist.get_rank(),
                           local_rank=local_rank, backend=backend)
    log.info("data-parallel rank %d of %d (local rank %d, %s)", _context.rank,
             _context.world_size, local_rank, backend)
    return _context


def _destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """The device this rank trains on: its own GPU (``cuda:LOCAL_RANK``) when distributed."""
    if _context.enabled and device.type == "cuda":
        return torch.device("cuda", _context.local_rank)
    return device


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (picklable objects); ``value`` itself when alone."""
    if not _context.enabled:
        return value
    box = [value if _context.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def main_says(flag: bool) -> bool:
    """Rank 0's answer on every rank, so all ranks take the same branch.

    Used for file checks (does a saved model exist?) and cancel requests: if each rank
    looked for itself, one could see a file the other does not and the two would wait
    forever in different collectives.
    """
    if not _context.enabled:
        return bool(flag)
    tensor = torch.tensor([int(bool(flag))], dtype=torch.int32)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a file the others read)."""
    if _context.enabled:
        dist.barrier()


def sum_across_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over ranks (a new CPU tensor); a copy of it when alone."""
    total = tensor.detach().to("cpu", torch.float64, copy=True)
    if _context.enabled:
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def shard_batch(indices: np.ndarray, rank: int, world_size: int) -> tuple[np.ndarray, float]:
    """This rank's rows of a global batch and the weight of its mean loss.

    Rows are dealt out in turn (``indices[rank::world_size]``), so a length-sorted batch
    gives every rank rows of similar length. DDP averages gradients over ranks; weighting
    rank r's mean loss by ``n_r * world_size / n`` makes that average the gradient of the
    global batch's mean loss even when the shares differ by a row. A rank left without rows
    (a final batch smaller than the world) repeats one row with weight 0, so it still joins
    the gradient all-reduce.

    Args:
        indices: the global batch's row indices.
        rank, world_size: this process's rank and the number of processes.
    Returns:
        ``(rows, weight)``.
    """
    if world_size <= 1:
        return indices, 1.0
    rows = indices[rank::world_size]
    if len(rows) == 0:
        return indices[:1], 0.0
    return rows, len(rows) * world_size / len(indices)


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel (gradients averaged over ranks in backward).

    DDP also copies rank 0's weights to every rank when it is built, so ranks start equal.
    """
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        gradient_as_bucket_view=True)


def no_sync(ddp_model: torch.nn.Module | None, sync: bool) -> contextlib.AbstractContextManager:
    """Skip DDP's all-reduce on an accumulation micro-step (gradients add up locally)."""
    if ddp_model is None or sync:
        return contextlib.nullcontext()
    return ddp_model.no_sync()


def shared_run(make_run: Callable[[], Run | None],
               runs_dir: str | os.PathLike | None = None) -> Run | None:
    """One run folder for all ranks: rank 0 creates (or opens) it, the others open it.

    Args:
        make_run: creates or opens the run; called on rank 0 only (in a single process,
            just called). May return None (nothing to do); every rank then gets None.
        runs_dir: the runs folder the other ranks open the run from.
    Returns:
        The run, on every rank.
    Raises:
        DistributedError: on ranks other than 0 when ``make_run`` failed there (rank 0
            raises the original error).
    """
    from core.runs import open_run

    init_from_env()
    if not _context.enabled:
        return make_run()
    outcome: tuple[str, str | None] = ("ok", None)
    error: BaseException | None = None
    if _context.is_main:
        try:
            run = make_run()
            outcome = ("ok", run.id if run is not None else None)
        except Exception as raised:  # sent to the other ranks, then raised here
            error, outcome = raised, ("error", str(raised))
    outcome = broadcast_from_main(outcome)
    if error is not None:
        raise error
    if outcome[0] == "error":
        raise DistributedError(f"rank 0 could not prepare the run: {outcome[1]}")
    return open_run(outcome[1], runs_dir) if outcome[1] else None


def state_dict_digest(model: torch.nn.Module) -> str:
    """A SHA-256 of a model's weights (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def dump_weights_if_asked(stage: str, model: torch.nn.Module) -> Path | None:
    """With ``$DISTILLAB_DEBUG_WEIGHTS_DIR`` set, write this rank's weight digest there.

    The file is ``<stage>.rank<r>.sha256``; tests compare them across ranks.
    """
    folder = os.environ.get(DEBUG_WEIGHTS_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{stage}.rank{_context.rank}.sha256"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(state_dict_digest(model) + "\n")
    return path
