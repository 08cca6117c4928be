"""CPU inference over several single-threaded streams instead of one multi-threaded one.

A small encoder's matmuls on a batch of ~1,000 tokens are too small to keep two or more
threads busy: at two threads each op waits on the other at every barrier. Running whole
batches side by side, one per thread, does more work per second. On the 2-core AMD EPYC of
docs/BENCHMARKS.md, 320 SST-2 sentences through MiniLM (bf16 autocast, batches of at most
1,024 tokens) took 0.88 s as one two-thread stream and 0.72 s as two one-thread streams
(medians of 5); one thread alone took 1.29 s.

torch's intra-op thread count belongs to each thread (OpenMP's and MKL's settings are per
thread; a thread started later takes the count last set anywhere): each stream sets its own
share of the CPUs, and the caller sets its own count again once the streams end, for
threads started later. Each batch runs in one thread from start to end,
so its numbers do not depend on how many streams ran it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from core.devices import forward_context

T = TypeVar("T")
R = TypeVar("R")

# The Python between ops holds the GIL, so streams stop paying somewhere; 2-4 were measured
# (2 cores: 2, 3 and 4 streams within 4% of each other), more is a guess.
MAX_STREAMS = 8


def stream_count(batches: int) -> int:
    """How many streams suit ``batches`` batches on this process's CPUs (1: don't split).

    ``DISTILLAB_CPU_STREAMS`` overrides (1 switches streams off)."""
    wanted = os.environ.get("DISTILLAB_CPU_STREAMS", "").strip()
    limit = (int(wanted) if wanted.isdigit() and int(wanted) > 0
             else min(torch.get_num_threads(), MAX_STREAMS))
    return max(1, min(limit, batches))


def map_in_streams(fn: Callable[[T], R], items: Sequence[T], streams: int) -> list[R]:
    """``[fn(item) for item in items]`` on ``streams`` CPU threads, in ``items``' order.

    The calling thread's ``inference_mode`` and CPU autocast are re-entered for every item
    (both are per thread). Items are taken in order by whichever stream is free, so
    length-sorted batches stay balanced. The first exception is raised here; items not yet
    started are dropped.
    """
    if streams <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    inference = torch.is_inference_mode_enabled()
    dtype = (torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
             else torch.float32)
    threads_before = torch.get_num_threads()

    def run(item: T) -> R:
        with torch.inference_mode(inference), forward_context("cpu", dtype):
            return fn(item)

    # A pool per call, as core.encoding's: a module-level pool would be dead in a forked child.
    pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="distillab-cpu-stream-",
                              initializer=torch.set_num_threads,
                              initargs=(max(1, threads_before // streams),))
    try:
        return list(pool.map(run, items))
    finally:
        pool.shutdown(cancel_futures=True)
        # Threads started later take the count set last anywhere: the caller's again.
        torch.set_num_threads(threads_before)
