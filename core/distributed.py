"""Data-parallel training and inference with ``torch.distributed`` (launched by ``torchrun``).

Every rank holds the whole graph and the whole model; an epoch's batches are dealt out
by :func:`shard` (a pure function of the batch number, the rank and the world size), and
after each backward :func:`average_gradients` makes every rank's gradients the mean over
all ranks — what ``DistributedDataParallel`` does, written out because the per-node
embeddings have sparse gradients, which DDP's buckets do not carry on NCCL: dense
gradients are all-reduced; sparse ones are all-gathered (indices and rows) and summed.
Rank 0 alone writes run files; the others wait at :func:`barrier`.

Backends: gloo on CPU, NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from audiograph.core.atomic import resolved
from audiograph.core.errors import ContractError
from audiograph.core.runs import Run, read_run_config


@dataclass(frozen=True)
class World:
    """This process's place among the ranks (``rank 0 of 1`` when not distributed)."""

    rank: int = 0
    size: int = 1
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Whether this rank writes the outputs."""
        return self.rank == 0


def init_world(device: str, distributed: bool) -> World:
    """Join the process group ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ...) when
    ``distributed``; else the single-process world."""
    if not distributed:
        return World(device=device)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ContractError(
            "--distributed: launch with torchrun, e.g. torchrun "
            "--nproc-per-node 2 -m audiograph ..."
        )
    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    return World(dist.get_rank(), dist.get_world_size(), device)


def shard(num_batches: int, world: World, accumulate: int = 1) -> list[list[int]]:
    """The batch numbers of each optimizer step on this rank: step ``s`` takes batches
    ``(s * size + rank) * accumulate + i`` for ``i < accumulate``. The last
    ``num_batches mod (size * accumulate)`` batches are dropped, so every rank takes the
    same number of steps."""
    per_step = world.size * accumulate
    return [
        [(s * world.size + world.rank) * accumulate + i for i in range(accumulate)]
        for s in range(num_batches // per_step)
    ]


def positions(num_batches: int, world: World, accumulate: int = 1) -> dict[int, int]:
    """``{batch number: its place in this rank's sequence}`` for the batches of
    :func:`shard` (place ``k``: zero the gradients when ``k % accumulate == 0``, step
    after ``k % accumulate == accumulate - 1``)."""
    mine = [b for step in shard(num_batches, world, accumulate) for b in step]
    return {b: k for k, b in enumerate(mine)}


def average_gradients(
    dense: list[torch.nn.Parameter], sparse: list[torch.nn.Parameter], world: World
) -> None:
    """Make each parameter's gradient the mean over the ranks (no-op on one rank);
    ``sparse``: parameters with sparse gradients (e.g. ``nn.Embedding(sparse=True)``). A
    parameter this rank did not use counts as a zero gradient."""
    if world.size == 1:
        return
    for p in dense:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world.size
    for p in sparse:
        grad = p.grad.coalesce() if p.grad is not None else _empty_sparse(p)
        p.grad = _gather_sparse(grad, world) / world.size


def _empty_sparse(p: torch.nn.Parameter) -> torch.Tensor:
    idx = torch.zeros((1, 0), dtype=torch.long, device=p.device)
    empty = p.new_zeros((0, *p.shape[1:]))
    return torch.sparse_coo_tensor(idx, empty, p.shape, check_invariants=False).coalesce()


def _gather_sparse(grad: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of every rank's sparse ``grad`` (rows padded to the largest count)."""
    idx, val = grad.indices()[0], grad.values()
    n = torch.tensor([idx.numel()], device=idx.device)
    counts = [torch.zeros_like(n) for _ in range(world.size)]
    dist.all_gather(counts, n)
    most = int(max(c.item() for c in counts))
    pad_i = torch.zeros(most, dtype=idx.dtype, device=idx.device)
    pad_v = val.new_zeros((most, *val.shape[1:]))
    pad_i[: idx.numel()], pad_v[: idx.numel()] = idx, val
    all_i = [torch.empty_like(pad_i) for _ in range(world.size)]
    all_v = [torch.empty_like(pad_v) for _ in range(world.size)]
    dist.all_gather(all_i, pad_i)
    dist.all_gather(all_v, pad_v)
    rows = [int(c.item()) for c in counts]
    i = torch.cat([a[:r] for a, r in zip(all_i, rows, strict=True)])
    v = torch.cat([a[:r] for a, r in zip(all_v, rows, strict=True)])
    return torch.sparse_coo_tensor(i.unsqueeze(0), v, grad.shape, check_invariants=False).coalesce()


def sum_over_ranks(values: tuple[float, ...], world: World) -> tuple[float, ...]:
    """The sums of ``values`` over the ranks (``values`` itself on one rank)."""
    if world.size == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return tuple(t.tolist())


def shared_run(world: World, make: Callable[[], Run | None], path: str | Path, kind: str) -> Run:
    """The run every rank trains: rank 0 creates or opens it (``make()``, which claims and
    checks), then the other ranks open the same directory."""
    run = make() if world.main else None
    barrier(world)
    return run if run is not None else Run(resolved(path), read_run_config(path, kind))


def shared_checkpoint(
    run: Run,
    device: Any,
    keys: tuple[str, ...],
    world: World,
    restore: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """The run's checkpoint on every rank, each restoring it (``restore``,
    :meth:`~audiograph.core.runs.Run.load_checkpoint`): rank 0 first (once the checkpoint
    fits, it trims the metrics log to the checkpointed epochs), then the others."""
    ckpt = run.load_checkpoint(device, keys, restore) if world.main else None
    barrier(world)
    return ckpt if world.main else run.load_checkpoint(device, keys, restore)


def share_rows(
    out: torch.Tensor, ranges: list[list[tuple[int, int]]], world: World
) -> torch.Tensor:
    """``out`` on every rank, where rank ``r`` has filled the row ranges ``ranges[r]``:
    each rank's rows are broadcast from it (bit-exact copies)."""
    if world.size == 1:
        return out
    on = torch.device(world.device)
    for r, mine in enumerate(ranges):
        rows = sum(hi - lo for lo, hi in mine)
        if rows == 0:
            continue
        if r == world.rank:
            buf = torch.cat([out[lo:hi] for lo, hi in mine]).to(on)
        else:
            buf = torch.empty((rows, *out.shape[1:]), dtype=out.dtype, device=on)
        dist.broadcast(buf, src=r)
        at = 0
        for lo, hi in mine:
            out[lo:hi] = buf[at : at + hi - lo].to(out.device)
            at += hi - lo
    return out


def barrier(world: World) -> None:
    """Wait for every rank (no-op on one rank)."""
    if world.size > 1:
        dist.barrier()


def finish(world: World) -> None:
    """Leave the process group this module joined."""
    if world.size > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
