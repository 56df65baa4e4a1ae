"""Held-out link split and link-prediction metrics per link type.

Validation: ``val_fraction`` of every link type's edges (both directions) are removed from
the training graph. Each held-out edge ``(a, b)`` is scored against a fixed set of
``eval_candidates`` nodes of ``b``'s type drawn uniformly among those with at least one
training edge (isolated nodes would be trivially separable candidates; shared by the link
type's positives), with embeddings computed on the *training* graph:

* AUC — fraction of (positive, candidate) pairs ranked correctly (ties count 1/2);
* Recall@10 — fraction of positives ranked in the top 10 among ``1 + candidates``;
* MRR — mean reciprocal rank of the positive.

Ranks count ties against the positive (:func:`audiograph.core.ranking.positive_ranks`: its
rank is the number of candidates scoring at least as high), so constant embeddings score
MRR about ``1 / (1 + candidates)`` and NaN weights score 0. A link type too small to hold
out an edge (fewer than 10) is not validated, with a warning that names it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch_geometric.data import HeteroData

from audiograph.core.metrics import hit_metrics, hits_of_ranks
from audiograph.core.ranking import positive_ranks
from audiograph.core.types import EdgeType
from audiograph.hgnn.model import embed_batch
from audiograph.samplers import NeighborSampler
from audiograph.samplers.link_loader import active_nodes, node_degrees
from audiograph.samplers.multilink import epoch_generator, link_edges


def split_edges(
    data: HeteroData, val_fraction: float, seed: int = 0
) -> tuple[HeteroData, dict[EdgeType, torch.Tensor]]:
    """``(train graph, {link type: held-out edges [2, V] global ids})``."""
    train = data.clone()
    val: dict[EdgeType, torch.Tensor] = {}
    for i, (et, e) in enumerate(link_edges(data).items()):
        n_val = math.floor(val_fraction * e.shape[1]) if e.shape[1] >= 10 else 0
        if n_val == 0 and val_fraction > 0:
            warnings.warn(
                f"link type {'__'.join(et)}: {e.shape[1]} edges hold out no validation edge; "
                "it is not validated (left out of the mean)",
                stacklevel=2,
            )
        perm = torch.randperm(e.shape[1], generator=epoch_generator(seed, -1, salt=i))
        val[et] = e[:, perm[:n_val]]
        s, r, d = et
        for etype, (a, b) in (((s, r, d), (0, 1)), ((d, r, s), (1, 0))):
            ei = train[etype].edge_index
            n_dst = train[etype[2]].num_nodes
            drop = torch.isin(ei[0] * n_dst + ei[1], val[et][a] * n_dst + val[et][b])
            train[etype].edge_index = ei[:, ~drop]
            if "edge_weight" in train[etype]:
                train[etype].edge_weight = train[etype].edge_weight[~drop]
    return train, val


@torch.no_grad()
def link_metrics(
    model,
    sampler: NeighborSampler,
    val_edges: dict[EdgeType, torch.Tensor],
    has_text: dict[str, torch.Tensor],
    candidates: int = 100,
    max_edges: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """AUC / Recall@10 / MRR per link type (key ``"src__co__dst"``)."""
    model.eval()
    out = {}
    device = sampler.device
    active = {t: active_nodes(deg) for t, deg in node_degrees(sampler).items()}
    for i, (et, e) in enumerate(val_edges.items()):
        if e.shape[1] == 0:
            continue
        s, _, d = et
        e = e[:, :max_edges].to(device)
        g = epoch_generator(seed, -2, salt=i, device=device)
        # candidates: nodes with >= 1 training edge (isolated ones are trivially separable)
        pick = torch.randint(len(active[d]), (candidates,), generator=g, device=device)
        cand = active[d][pick]
        ids = {s: [e[0]], d: [e[1], cand]} if s != d else {s: [e[0], e[1], cand]}
        seeds = {t: torch.unique(torch.cat(v)) for t, v in ids.items()}
        z = embed_batch(model, sampler.sample(seeds, g), has_text)
        za = z[s][torch.searchsorted(seeds[s], e[0])]
        zp = z[d][torch.searchsorted(seeds[d], e[1])]
        zc = z[d][torch.searchsorted(seeds[d], cand)]
        pos = (za * zp).sum(-1, keepdim=True)
        neg = za @ zc.t()
        valid = cand[None, :] != e[1][:, None]
        auc = (((pos > neg).float() + 0.5 * (pos == neg).float()) * valid).sum() / valid.sum()
        rank = positive_ranks(*(t.float().cpu().numpy() for t in (pos[:, 0], neg, valid)))
        m = hit_metrics(hits_of_ranks(rank, candidates + 1), np.ones(len(rank)), 10)
        out["__".join(et)] = {
            "auc": auc.item(),
            "recall@10": float(m["recall"].mean()),
            "mrr": float(m["rr"].mean()),
            "edges": int(e.shape[1]),
        }
    return out
