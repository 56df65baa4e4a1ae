"""The two-tower's training loss: in-batch sampled softmax with logQ correction."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampled_softmax_loss(
    u: torch.Tensor,
    v: torch.Tensor,
    item: torch.Tensor,
    temperature: float,
    log_q: torch.Tensor | None = None,
    negatives: list[tuple[torch.Tensor, torch.Tensor, float, torch.Tensor | None]] = (),
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch sampled softmax with logQ correction; row ``i``'s positive is column ``i``.

    Args:
        u: user vectors ``[B, d]``; v: their positive items' vectors ``[B, d]``.
        item: catalog index of each positive ``[B]`` (masks accidental hits: other columns
            holding row ``i``'s own positive).
        log_q: ``[B]`` log of each in-batch column's sampling rate (``None``: no correction).
        negatives: extra negative sets ``(vectors [N, d], item index [N], log q, rows)``,
            e.g. uniform samples of the catalog or of the launch type; their columns are
            corrected by ``log q`` and only the rows where ``rows`` (bool ``[B]``, None:
            all) is true see them.
        weight: ``[B]`` per-row loss weight (None: the plain mean).
    """
    logits = u @ v.T / temperature
    if log_q is not None:
        logits = logits - log_q[None, :]
    hit = (item[:, None] == item[None, :]) & ~torch.eye(
        len(item), dtype=torch.bool, device=item.device
    )
    logits = [logits.masked_fill(hit, float("-inf"))]
    for neg_v, neg_item, neg_log_q, rows in negatives:
        if not len(neg_item):
            continue
        extra = u @ neg_v.T / temperature - neg_log_q
        mask = item[:, None] == neg_item[None, :]
        if rows is not None:
            mask = mask | ~rows[:, None]
        logits.append(extra.masked_fill(mask, float("-inf")))
    target = torch.arange(len(item), device=u.device)
    loss = F.cross_entropy(torch.cat(logits, dim=1), target, reduction="none")
    if weight is None:
        return loss.mean()
    return (loss * weight).sum() / weight.sum().clamp_min(1e-12)
