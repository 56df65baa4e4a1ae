"""Divergence guards shared by the trainers (``train-hgnn``, ``train-twotower``,
``train-generative``): a non-finite loss or weight stops the run with one line naming where
it happened, before anything of that epoch is written, so the run keeps its last good
checkpoint and ``--resume`` (after lowering the learning rate) continues from it. And
:func:`flush_denormals`, which keeps a long CPU run from slowing down on subnormal floats."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from audiograph.core.errors import ContractError


def _diverged(what: str, where: str, advice: str) -> ContractError:
    return ContractError(
        f"training diverged: {what} at {where}; {advice} (the run keeps its last good checkpoint)"
    )


def check_loss(loss: float, where: str, advice: str) -> float:
    """``loss`` if finite, else a one-line :class:`ContractError` naming ``where`` (e.g.
    "epoch 3, step 12") and giving ``advice`` (e.g. "try a lower --lr (now 0.01)").
    Distributed trainers check each rank's steps only on one rank (a rank stopping alone
    would leave the others waiting), else the epoch's loss summed over the ranks."""
    if not math.isfinite(loss):
        raise _diverged(f"the loss is {loss}", where, advice)
    return loss


def check_weights(model: torch.nn.Module, epoch: int, advice: str) -> None:
    """A one-line :class:`ContractError` when a parameter of ``model`` is not finite (an
    optimizer step that overflowed), checked before the epoch's checkpoint is written."""
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p.detach()).all()):
            raise _diverged(f"weight {name} is not finite", f"the end of epoch {epoch}", advice)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat float32 subnormals as zero on the CPU inside the block (switched off after).

    Adam's moment estimates of weights that stop receiving gradient (the unused rows of a
    30k-token embedding table) decay geometrically into the subnormal range after ~800
    steps, where x86 arithmetic is many times slower: a CPU training run then slows epoch
    after epoch (measured: 1,857 → 1,188 examples/s over 9 epochs of the generative
    model). Values that small are zero for every purpose here."""
    before = torch.set_flush_denormal(True)  # True where the CPU supports it
    try:
        yield
    finally:
        if before:
            torch.set_flush_denormal(False)
