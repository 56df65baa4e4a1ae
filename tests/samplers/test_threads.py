"""The sampler's thread count follows the cores other processes leave free: the measurement,
the kernel it picks, the same output either way, and torch's pool restored after."""

from __future__ import annotations

import threading

import pytest
import torch
from sampling_checks import assert_same_hetero, random_hetero

from audiograph.core.errors import ContractError
from audiograph.samplers import fused_hop, threads
from audiograph.samplers.bench import busy_processes, run_sampler_bench
from audiograph.samplers.neighbor import NeighborSampler


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_free_cores_subtract_what_other_processes_used(monkeypatch):
    """4 usable cores; over each window the machine was busy for 3 cores' worth, this
    process for 1: 2 cores are taken by others, 2 free."""
    clock = {"t": 0.0, "busy": 0.0, "own": 0.0}

    def tick(seconds: float, machine: float, own: float) -> None:
        clock["t"] += seconds
        clock["busy"] += machine * seconds
        clock["own"] += own * seconds

    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["t"])
    monkeypatch.setattr(threads.time, "sleep", lambda s: tick(s, 3.0, 1.0))
    monkeypatch.setattr(threads, "_machine_busy", lambda: clock["busy"])
    monkeypatch.setattr(threads, "_own_cpu", lambda: clock["own"])
    cores = threads.FreeCores()
    assert cores.free() == 2  # the first call measures a short window
    tick(0.1, 4.0, 0.5)  # within WINDOW: the last figure, nothing read
    assert cores.free() == 2
    tick(0.5, 4.0, 0.5)  # others: 2.1 s of CPU in 0.6 s = 3.5 cores, rounds to 4: 1 is kept
    assert cores.free() == 1
    tick(1.0, 1.0, 1.0)  # only this process busy: every core free
    assert cores.free() == 4
    got = []  # beside a model step (a prefetch thread): one core less
    worker = threading.Thread(target=lambda: got.append(cores.free()))
    worker.start()
    worker.join()
    assert got == [3]
    monkeypatch.setenv(threads.ENV, "3")
    assert cores.free() == 3


def test_one_free_core_runs_the_serial_kernel_with_the_same_output(monkeypatch):
    data = random_hetero(3, [900, 700, 500], [0.02, 0.01, 0.03] * 3)
    seeds = {t: torch.arange(400) for t in data.node_types}
    monkeypatch.setattr(fused_hop, "PARALLEL_ROWS", 0)
    monkeypatch.setenv(threads.ENV, "2")  # parallel: the kernel of an idle machine
    calls = {"parallel": 0}
    parallel = fused_hop._hop_parallel

    def counted(*args):
        calls["parallel"] += 1
        return parallel(*args)

    monkeypatch.setattr(fused_hop, "_hop_parallel", counted)
    two = NeighborSampler(data, [5, 3]).sample(seeds, gen(3))
    assert calls["parallel"] > 0
    monkeypatch.setenv(threads.ENV, "1")  # one core free: serial only
    calls["parallel"] = 0
    one = NeighborSampler(data, [5, 3]).sample(seeds, gen(3))
    assert calls["parallel"] == 0
    assert_same_hetero(one, two)
    assert_same_hetero(one, NeighborSampler(data, [5, 3], fused=False).sample(seeds, gen(3)))


def test_torch_threads_are_capped_and_restored(monkeypatch):
    before = torch.get_num_threads()
    seen = []
    with threads.torch_threads(1):
        seen.append(torch.get_num_threads())
    with threads.torch_threads(before + 5):  # never more than the user gave torch
        seen.append(torch.get_num_threads())
    assert seen == [1, before] and torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads.torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_bench_load_runs_busy_processes_and_stops_them():
    with busy_processes(2):
        import multiprocessing

        kids = multiprocessing.active_children()
        assert len(kids) == 2 and all(k.is_alive() for k in kids)
    assert not any(k.is_alive() for k in kids)
    res = run_sampler_bench(scale=0.0005, batches=2, batch_size=32, load=1)
    assert res["load"] == 1 and res["ours_edges_per_s"] > 0
    with pytest.raises(ContractError, match="--load must be >= 0"):
        run_sampler_bench(scale=0.0005, load=-1)


def test_hgnn_kernels_size_numba_to_the_free_cores(monkeypatch):
    """The HGNN's max-pool and row-Adam kernels follow the sampler's rule: with one core
    free their parallel regions run on one numba thread, and the result is unchanged."""
    import numba

    from audiograph.hgnn.maxpool_train import max_pool

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one numba thread on this machine")
    g = torch.Generator().manual_seed(0)
    table = torch.rand(50, 8, generator=g, requires_grad=True)
    src, dst = torch.randint(50, (400,), generator=g), torch.randint(30, (400,), generator=g)
    monkeypatch.setenv(threads.ENV, str(numba.config.NUMBA_NUM_THREADS))
    full = max_pool(table, src, dst, 30)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    monkeypatch.setenv(threads.ENV, "1")
    one = max_pool(table, src, dst, 30)
    assert numba.get_num_threads() == 1
    one.sum().backward()
    assert numba.get_num_threads() == 1
    assert torch.equal(full, one)
