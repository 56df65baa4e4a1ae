"""How many threads the sampler and the HGNN kernels may use: the cores others leave free.

A parallel kernel is only as fast as its slowest thread. When another process keeps a core
busy (a training step, a data loader, a second job), a thread scheduled on that core runs
in time slices of milliseconds, and every parallel region — hundreds per batch — waits for
it: on 2 cores with one busy process the parallel sampler ran 8-13x slower than idle,
slower than its own serial kernel. So the sampler sizes its thread pools (numba's for the
fused hop, torch's for the tensor ops) to the cores actually free, measured from
``/proc/stat``: the CPU time the whole machine spent busy minus this process's own CPU
time, over the last :data:`WINDOW` seconds. Where ``/proc/stat`` does not exist, every core
of the process's affinity counts as free.

``AUDIOGRAPH_SAMPLER_THREADS=N`` pins the count (tests, benchmarks of one setting).
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Iterator

import torch

WINDOW = 0.25  # seconds: the shortest interval a measurement of busy cores spans
ENV = "AUDIOGRAPH_SAMPLER_THREADS"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _machine_busy() -> float | None:
    """Seconds all CPUs spent busy since boot (``/proc/stat``), or None."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class FreeCores:
    """``free()``: usable cores minus the cores other processes kept busy in the last
    measured window (rounded to the nearest core), at least 1; called off the main thread
    (the prefetch thread of a training run, whose main thread runs the model step), one
    core less. Cheap to call often: it reads ``/proc/stat`` at most once per
    :data:`WINDOW`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None
        self._free = usable_cores()

    def free(self) -> int:
        pinned = os.environ.get(ENV, "").strip()
        if pinned.isdigit() and int(pinned) > 0:
            return int(pinned)
        beside = threading.current_thread() is not threading.main_thread()
        return max(1, self._measure() - beside)

    def _measure(self) -> int:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last[0] < WINDOW:
                return self._free
            busy = _machine_busy()
            if busy is None:
                return self._free
            if self._last is None:  # first call: a short first window
                self._last = (now, busy, _own_cpu())
                time.sleep(0.1)
                now, busy = time.monotonic(), _machine_busy() or busy
            sample = (now, busy, _own_cpu())
            if self._last is not None:
                wall = sample[0] - self._last[0]
                others = (sample[1] - self._last[1]) - (sample[2] - self._last[2])
                self._free = max(1, usable_cores() - round(max(others, 0.0) / wall))
            self._last = sample
            return self._free


FREE_CORES = FreeCores()


def numba_threads() -> int:
    """Size numba's pool for the parallel region this thread starts next to the free cores
    (:data:`FREE_CORES`, capped by ``NUMBA_NUM_THREADS``) and return that count. Every
    numba parallel kernel of the package calls it first: a thread on a core another
    process keeps busy stalls the whole region (numba's count is per calling thread)."""
    import numba

    n = max(1, min(FREE_CORES.free(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch's intra-op pool at ``min(n, its size)`` threads (restored
    after; never more threads than the user gave torch)."""
    before = torch.get_num_threads()
    n = min(n, before)
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
