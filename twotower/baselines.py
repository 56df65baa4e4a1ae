"""Baselines for :func:`audiograph.twotower.metrics.evaluate_vectors`.

Each returns ``(user_vecs [U, d], item_vecs [I, d])`` float32, row-aligned with the given
``users`` (a Series of ids) and ``items`` (a frame with ``item_id``, ``item_type``), so one
harness scores them all by dot product:

* :func:`popularity` — ``d = 1``: every user is ``1``, every item its training popularity.
* :func:`history_knn` — cosine between an item's vector and the weight-aware mean of the
  vectors of everything the user interacted with in train (all types and signals): with
  text vectors ``llm-knn``, with the HGNN item embeddings of ``audiograph export`` ``hgnn``.
* :func:`lightgcn` — PyG's LightGCN trained with BPR on the training user–item graph.
* :func:`candidate_vectors` — any ``[U, C]`` score matrix over the candidates in that
  form (graph-kNN, EASE, item-kNN: :mod:`.graph_knn`, :mod:`.peers`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch
from torch_geometric.nn import LightGCN

from audiograph.core.pyg_templates import pyg_templates_discarded
from audiograph.samplers.threads import FREE_CORES, torch_threads
from audiograph.twotower.config import LightGCNConfig
from audiograph.twotower.vectors import history_means


def popularity(
    train: pl.DataFrame, users: pl.Series, items: pl.DataFrame, log: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(ones [U, 1], pop [I, 1])``: ``pop`` = number of distinct training users of each
    item (``log1p`` of it when ``log``: the same order, but float32 may merge counts above
    about a million into ties, which evaluation counts against the relevant item; the
    counts themselves are exact below ``2**24``)."""
    counts = train.select("user_id", "item_id").unique().group_by("item_id").len()
    pop = items.select("item_id").join(counts, on="item_id", how="left", maintain_order="left")
    score = pop["len"].fill_null(0).to_numpy().astype(np.float32)
    score = np.log1p(score) if log else score
    return np.ones((len(users), 1), np.float32), score[:, None].astype(np.float32)


def candidate_vectors(
    scores: np.ndarray, cand_rows: np.ndarray, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """A score matrix as vectors the harness scores by dot product: ``(scores [U, C],
    item_vecs [n_items, C])`` where row ``cand_rows[c]`` of ``item_vecs`` is the one-hot
    ``e_c`` and every other row is zero (for models that score users x candidates directly:
    graph-kNN, EASE, item-kNN). A user whose row is all zeros takes the fallback."""
    item_vecs = np.zeros((n_items, len(cand_rows)), np.float32)
    item_vecs[cand_rows, np.arange(len(cand_rows))] = 1.0
    return np.ascontiguousarray(scores, dtype=np.float32), item_vecs


def history_knn(
    train: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    item_vecs: np.ndarray,
    weighted: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """KNN over a user's history: ``llm-knn`` with text vectors, ``hgnn`` with HGNN item
    embeddings (aligned to ``items`` by :func:`audiograph.core.embeddings.align_embeddings`).

    Args:
        train: training interactions (``user_id, item_id, weight, signal``).
        users: ``[U]`` user ids.
        items: ``[I]`` items; row ``i`` of ``item_vecs`` belongs to ``items[i]``.
        item_vecs: float ``[I, d]`` (e.g. :func:`audiograph.twotower.vectors.text_vectors`).
        weighted: weight each interaction by ``weight`` in the user mean.

    Returns:
        ``(user_vecs [U, d], item_vecs [I, d])``, both L2-normalized (zero rows stay
        zero: users without training interactions, items without a vector); a user's vector
        is the mean of the vectors of everything the user interacted with in train (all
        types and signals).
    """
    item_vecs = _l2(np.asarray(item_vecs, np.float32))
    # one block over every type and signal: history_means keys blocks by item_type/signal
    rows = items.select("item_id").with_columns(
        item_type=pl.lit("all"), row=pl.int_range(items.height, dtype=pl.Int64)
    )
    inter = train.select("user_id", "item_id", "weight").with_columns(signal=pl.lit("all"))
    means, _ = history_means(inter, rows, item_vecs, users, weighted)
    user_vecs = means.get("all/all", np.zeros((len(users), item_vecs.shape[1]), np.float32))
    return _l2(user_vecs), item_vecs


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


# ----------------------------------------------------------------------------- LightGCN


@dataclass
class LightGCNFit:
    """A trained LightGCN: vectors aligned with the given users/items, and the mean BPR
    loss of every epoch."""

    user_vecs: np.ndarray
    item_vecs: np.ndarray
    losses: list[float] = field(default_factory=list)


def lightgcn(
    train: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    cfg: LightGCNConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """LightGCN vectors ``(user_vecs [U, dim], item_vecs [I, dim])``; see
    :func:`fit_lightgcn`."""
    fit = fit_lightgcn(train, users, items, cfg)
    return fit.user_vecs, fit.item_vecs


def fit_lightgcn(
    train: pl.DataFrame,
    users: pl.Series,
    items: pl.DataFrame,
    cfg: LightGCNConfig | None = None,
    callback: Callable[[int, np.ndarray, np.ndarray], bool | None] | None = None,
) -> LightGCNFit:
    """Train ``torch_geometric.nn.LightGCN`` on the user–item graph of ``train``.

    The graph has one undirected, unweighted edge per distinct training ``(user, item)``
    pair (all item types and signals), symmetrically normalized once and propagated as a
    ``torch.sparse_csr`` matrix (no torch-sparse/pyg-lib needed). Each epoch visits every
    pair once in a seeded random order, in batches of ``batch``, with one uniformly drawn
    negative item per pair (of the positive's type when ``negatives="type"``, of any type
    when ``"all"``), BPR loss + ``reg`` L2 on the batch's layer-0
    embeddings, and Adam at ``lr``. Defaults were picked on a validation split carved
    out of a Douban training split (books kept at 10 %; never its test split): lr 1e-2
    with batch 8192 beat 5e-3/4096 and 2e-2/8192; music keeps improving up to 40 epochs
    while the sparse books peak at about 5 and then overfit, so 20 is a compromise; pick
    ``epochs`` per target with ``callback`` on a validation split.

    Args:
        train: training interactions (``user_id``, ``item_id``).
        users: ``[U]`` user ids of the output rows.
        items: ``[I]`` items (``item_id``) of the output rows.
        cfg: :class:`LightGCNConfig` (``seed`` seeds the initialisation, the batch order
            and the negatives).
        callback: called after every epoch with ``(epoch, user_vecs, item_vecs)`` (as
            returned), e.g. to pick the number of epochs on a validation split; a true
            return value stops the training after that epoch (early stopping).

    Returns:
        :class:`LightGCNFit` with final (layer-averaged) embeddings; users and items
        without training interactions get zero vectors.
    """
    cfg = cfg or LightGCNConfig()
    dim, layers, epochs, lr, batch = cfg.dim, cfg.layers, cfg.epochs, cfg.lr, cfg.batch
    reg, negatives, seed, device = cfg.reg, cfg.negatives, cfg.seed, cfg.device
    u_ids = train["user_id"].unique().sort()
    uidx = pl.DataFrame({"user_id": u_ids, "u": np.arange(u_ids.len())})
    iidx = items.select("item_id").with_row_index("i")
    pairs = (
        train.select("user_id", "item_id")
        .unique()
        .join(uidx, on="user_id")
        .join(iidx, on="item_id")
    ).sort("u", "i")
    n_u, n_i = u_ids.len(), items.height
    pu = torch.from_numpy(pairs["u"].to_numpy().astype(np.int64))
    pi = torch.from_numpy(pairs["i"].to_numpy().astype(np.int64)) + n_u
    adj = _normalized_adjacency(pu, pi, n_u + n_i).to(device)
    draw = _negative_sampler(items, pi - n_u, negatives)

    has_edge = np.zeros(n_u + n_i, bool)
    has_edge[np.concatenate([pu.numpy(), pi.numpy()])] = True
    user_pos = pl.DataFrame({"user_id": users}).join(
        uidx, on="user_id", how="left", maintain_order="left"
    )["u"]

    def vectors(model: LightGCN) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            emb = _embedding(model, adj).cpu().numpy()
        emb = np.where(has_edge[:, None], emb, 0.0).astype(np.float32)
        user_vecs = np.zeros((len(users), dim), np.float32)
        user_vecs[user_pos.is_not_null().to_numpy()] = emb[user_pos.drop_nulls().to_numpy()]
        return user_vecs, emb[n_u:]

    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        with pyg_templates_discarded():
            model = LightGCN(n_u + n_i, dim, layers, normalize=False).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for epoch in range(epochs):
            order = torch.randperm(len(pu), generator=gen)
            neg = draw(gen) + n_u
            total = 0.0
            # torch's pool at the cores other processes leave free: on a busy machine a
            # thread on a taken core stalls every sparse product (10x slower on 2 cores)
            with torch_threads(FREE_CORES.free()):
                for lo in range(0, len(pu), batch):
                    b = order[lo : lo + batch]
                    u, p, q = pu[b].to(device), pi[b].to(device), neg[b].to(device)
                    emb = _embedding(model, adj)
                    pos_score = (emb[u] * emb[p]).sum(-1)
                    neg_score = (emb[u] * emb[q]).sum(-1)
                    loss = model.recommendation_loss(
                        pos_score, neg_score, node_id=torch.cat([u, p, q]), lambda_reg=reg
                    )
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(b)
                losses.append(total / max(len(pu), 1))
                stop = callback is not None and callback(epoch + 1, *vectors(model))
            if stop:
                break
    return LightGCNFit(*vectors(model), losses)


def _negative_sampler(
    items: pl.DataFrame, pos_items: torch.Tensor, negatives: str
) -> Callable[[torch.Generator], torch.Tensor]:
    """``draw(gen)`` -> one uniform negative item index per positive in ``pos_items``."""
    if negatives not in ("type", "all"):
        raise ValueError(f"negatives must be 'type' or 'all', got {negatives!r}")
    codes = items["item_type"].cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
    if negatives == "all":
        codes = np.zeros_like(codes)
    by_type = torch.from_numpy(np.argsort(codes, kind="stable"))
    count = torch.from_numpy(np.bincount(codes))
    start = torch.cumsum(count, 0) - count
    t = torch.from_numpy(codes)[pos_items]
    lo, size = start[t], count[t]

    def draw(gen: torch.Generator) -> torch.Tensor:
        r = torch.rand(len(t), generator=gen, dtype=torch.float64)
        return by_type[lo + (r * size).long().clamp_max(size - 1)]

    return draw


def _embedding(model: LightGCN, adj: torch.Tensor) -> torch.Tensor:
    """``model.get_embedding`` with the normalized adjacency ``adj`` (symmetric CSR):
    ``sum_l alpha_l A^l E``. The backward of ``A x`` is ``A g`` because ``A`` is symmetric,
    which avoids the slow generic sparse backward (a CSR transpose per call) on CPU."""
    x = model.embedding.weight
    out = x * model.alpha[0]
    for i in range(model.num_layers):
        x = _SymSpmm.apply(adj, x)
        out = out + x * model.alpha[i + 1]
    return out


class _SymSpmm(torch.autograd.Function):
    """``adj @ x`` for a symmetric sparse ``adj`` (no gradient to ``adj``)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # noqa: D102
        return None, ctx.adj @ grad


def _normalized_adjacency(pu: torch.Tensor, pi: torch.Tensor, n: int) -> torch.Tensor:
    """Symmetric ``D^-1/2 A D^-1/2`` of the undirected bipartite graph, ``[n, n]`` CSR
    (the normalization of ``LGConv(normalize=True)``)."""
    row = torch.cat([pu, pi])
    col = torch.cat([pi, pu])
    deg = torch.bincount(row, minlength=n).float()
    inv = deg.clamp_min(1).pow(-0.5)
    val = inv[row] * inv[col]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, (n, n)).coalesce()
        return coo.to_sparse_csr()
