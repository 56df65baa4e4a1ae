"""Divergence guards shared by the trainers (``train-hgnn``, ``train-twotower``,
``train-generative``): a non-finite loss or weight stops the run with one line naming where
it happened, before anything of that epoch is written, so the run keeps its last good
checkpoint and ``--resume`` (after lowering the learning rate) continues from it."""

from __future__ import annotations

import math

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
