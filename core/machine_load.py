"""How busy the rest of the machine was while something was timed.

A latency measured while another process used the CPUs is not the model's: the results card
and the leaderboard flag such figures. :class:`OtherLoad` reads ``/proc/stat`` (all CPUs) and
``/proc/self/stat`` (this process) before and after, so the CPU time spent by *other*
processes during the timing is known, as a share of the machine's capacity. The 1-minute load
average is recorded beside it (it includes this process and decays slowly, so it is context,
not the test). Off Linux only the load average is recorded.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

BUSY_SHARE = 0.2  # other processes used over a fifth of all CPUs while timing: flagged


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, or None without /proc."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields[:8]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _own_ticks() -> int | None:
    """User + system clock ticks of this process (all its threads), or None without /proc."""
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


class OtherLoad:
    """Context manager: what other processes did to the CPUs while the block ran.

    After the block, :attr:`figures` holds ``others_cpu_share`` (0-1, None off Linux),
    ``load_avg_1m`` and ``machine_busy`` (True when others used over :data:`BUSY_SHARE`).
    """

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self._start: tuple[tuple[int, int] | None, int | None] = (None, None)

    def __enter__(self) -> OtherLoad:
        self._start = (_machine_ticks(), _own_ticks())
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        machine, own = _machine_ticks(), _own_ticks()
        (machine_0, own_0) = self._start
        share = None
        if machine and machine_0 and own is not None and own_0 is not None:
            elapsed = machine[1] - machine_0[1]
            if elapsed > 0:
                others = (machine[0] - machine_0[0]) - (own - own_0)
                share = round(min(max(others / elapsed, 0.0), 1.0), 3)
        try:
            load = round(os.getloadavg()[0], 2)
        except OSError:
            load = None
        self.figures = {"others_cpu_share": share, "load_avg_1m": load,
                        "machine_busy": share is not None and share > BUSY_SHARE}
