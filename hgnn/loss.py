"""Link-prediction losses over a sampled batch (see ``audiograph.samplers.link_loader``)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData


def labelled_pairs(
    z: dict[str, torch.Tensor], batch: HeteroData
) -> Iterator[tuple[tuple[str, str, str], torch.Tensor, torch.Tensor]]:
    """``(edge type, z_src [B, h], z_dst [B, h])`` of each link type's positives."""
    for et in batch.edge_types:
        if "edge_label_index" in batch[et]:
            src, dst = batch[et].edge_label_index
            yield et, z[et[0]][src], z[et[2]][dst]


def max_margin_loss(
    z: dict[str, torch.Tensor], batch: HeteroData, margin: float = 0.1
) -> torch.Tensor:
    """The paper's ``mean(max(0, z_a·z_n - z_a·z_p + margin))`` over every positive and
    each of its negatives (``batch[et].edge_label_index`` ``[2, B]``, ``neg_dst`` ``[B, k]``)."""
    losses = []
    for et, za, zp in labelled_pairs(z, batch):
        zn = z[et[2]][batch[et].neg_dst]
        pos = (za * zp).sum(-1, keepdim=True)
        neg = torch.einsum("bh,bkh->bk", za, zn)
        losses.append(F.relu(neg - pos + margin).flatten())
    return torch.cat(losses).mean()


def in_batch_softmax_loss(
    z: dict[str, torch.Tensor], batch: HeteroData, temperature: float = 0.05, logq: bool = False
) -> torch.Tensor:
    """Sampled softmax: each positive against the batch's other destinations of its type.

    Accidental hits are masked: a column whose destination node is row ``i``'s own
    destination (a popular node, or an edge the multi-link sampler repeats) is no negative.
    With ``logq`` every column's logit is lowered by the log of its destination's sampling
    probability (``batch[et].dst_log_q`` ``[B]``): the in-batch negatives are drawn in
    proportion to degree, and without the correction the loss learns to push popular
    destinations down (it fits ``log p(dst | src) - log q(dst)``)."""
    losses = []
    for et, za, zp in labelled_pairs(z, batch):
        dst = batch[et].edge_label_index[1]
        logits = za @ zp.t() / temperature
        if logq:
            logits = logits - batch[et].dst_log_q[None, :]
        target = torch.arange(za.shape[0], device=logits.device)
        same = (dst[:, None] == dst[None, :]) & (target[:, None] != target[None, :])
        logits = logits.masked_fill(same, float("-inf"))
        losses.append(F.cross_entropy(logits, target, reduction="none"))
    return torch.cat(losses).mean()
