"""Statistics of ``benchmarks/quality.py``: intervals over seeds, paired differences and the
paired per-user bootstrap within a seed, from the evaluate reports of each seed.

Pure functions of the reports (JSON dicts): the result tables are rendered from what they
return (``benchmarks/tables.py``), never from the work files.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

KEYS = ("hr@10", "recall@10", "ndcg@10", "mrr", "coverage")
GROUPS = ("warm", "cold", "no_history")
SLICES = ("new_items", "rare_items")  # test pairs of items with 0 / 1-2 training users
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306}
DRAWS = 1000  # bootstrap resamples of the evaluated users per seed
PEERS = ("2t", "lightgcn", "ease", "als", "itemknn", "graph-knn", "popularity")
PAIRS = (  # the paired comparisons reported: 2T-HGNN against every model, the HGNN vs its graph
    *(("2t-hgnn", m) for m in PEERS),
    ("hgnn", "graph-knn"),
)


def interval(values: list[float]) -> dict[str, float | None]:
    """Mean and half-width of the 95 % t-interval (None with one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci95": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return {"mean": mean, "ci95": T95.get(n - 1, 1.96) * sd / math.sqrt(n)}


def aggregate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per model (those of the first report): mean ± ci95 over seeds of every metric,
    of HR@10 per user group and of the new-/rare-item recall@10 (``"pairs"``: the test
    pairs per seed)."""
    out: dict[str, Any] = {}
    for model in reports[0]["results"]:
        rs = [r["results"][model] for r in reports]
        row: dict[str, Any] = {k: interval([r[k] for r in rs]) for k in KEYS}
        row["users"] = rs[0]["users"]
        row["fallback_users"] = rs[0].get("fallback_users")
        for g in GROUPS:
            vals = [r[g]["hr@10"] for r in rs if r.get(g) and r[g]["hr@10"] is not None]
            row[g] = {
                "hr@10": interval(vals) if vals else None,
                "users": [r[g]["users"] for r in rs if r.get(g)],
            }
        for s in SLICES:
            vals = [r[s]["recall@10"] for r in rs if r.get(s) and r[s]["recall@10"] is not None]
            row[s] = {
                "recall@10": interval(vals) if vals else None,
                "pairs": [r[s]["pairs"] for r in rs if r.get(s)],
            }
        out[model] = row
    return out


def difference(reports: list[dict[str, Any]], a: str = "2t-hgnn", b: str = "2t") -> dict:
    """Paired per-seed HR@10 difference and ratio ``a`` vs ``b``, overall and per user
    group (``{}`` when a report lacks either model)."""
    if any(a not in r["results"] or b not in r["results"] for r in reports):
        return {}
    out = {}
    for group in ("all", "cold", "no_history"):
        pa, pb = [], []
        for r in reports:
            ra, rb = r["results"][a], r["results"][b]
            if group != "all":
                ra, rb = ra.get(group) or {}, rb.get(group) or {}
            if ra.get("hr@10") is not None and rb.get("hr@10") is not None:
                pa.append(ra["hr@10"])
                pb.append(rb["hr@10"])
        if pa:
            ratio = None if min(pb) <= 0 else interval([x / y for x, y in zip(pa, pb, strict=True)])
            out[group] = {
                "diff": interval([x - y for x, y in zip(pa, pb, strict=True)]),
                "ratio": ratio,
            }
    return out


def paired_bootstrap(
    a: dict[str, list], b: dict[str, list], seed: int, draws: int = DRAWS, key: str = "hr@10"
) -> dict[str, Any] | None:
    """95 % percentile interval of the mean per-user difference ``a − b`` of ``key``.

    ``a`` and ``b`` are the ``per_user`` entries of two models' evaluate results
    (``{"user_id": [...], key: [...]}``), paired on the users both scored; ``draws``
    resamples of those users with replacement (``numpy`` generator seeded ``seed``).
    None when no user is shared.
    """
    vb = dict(zip(b["user_id"], b[key], strict=True))
    d = np.array([x - vb[u] for u, x in zip(a["user_id"], a[key], strict=True) if u in vb], float)
    if d.size == 0:
        return None
    rng, means = np.random.default_rng(seed), np.empty(draws)
    for lo in range(0, draws, 100):  # bounded memory: 100 resamples at a time
        idx = rng.integers(0, d.size, size=(min(100, draws - lo), d.size))
        means[lo : lo + len(idx)] = d[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"diff": float(d.mean()), "lo": float(low), "hi": float(high), "users": int(d.size)}


def _only(per_user: dict[str, list], group: str) -> dict[str, list]:
    """The entries of ``per_user`` whose user is in ``group`` (e.g. cold for the type)."""
    keep = [g == group for g in per_user["group"]]
    return {k: [x for x, y in zip(v, keep, strict=True) if y] for k, v in per_user.items()}


def seed_bootstraps(report: dict[str, Any], seed: int, draws: int = DRAWS) -> dict[str, Any]:
    """``{"A_vs_B": paired_bootstrap(...)}`` of the :data:`PAIRS` one seed's report has
    (with per-user outcomes), and ``"A_vs_B (cold)"`` over its cold-for-type users where
    the outcomes carry each user's group."""
    res, out = report["results"], {}
    for a, b in PAIRS:
        pa, pb = res.get(a, {}).get("per_user"), res.get(b, {}).get("per_user")
        if pa and pb:
            out[f"{a}_vs_{b}"] = paired_bootstrap(pa, pb, seed, draws)
            if "group" in pa and "group" in pb:
                cold = paired_bootstrap(_only(pa, "cold"), _only(pb, "cold"), seed, draws)
                out[f"{a}_vs_{b} (cold)"] = cold
    return out


def bootstraps(reports: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Per comparison the per-seed bootstrap intervals, ``{"draws", "A_vs_B": [{"seed",
    "diff", "lo", "hi", "users"}, ...]}``."""
    out: dict[str, Any] = {"draws": DRAWS}
    for seed, r in zip(seeds, reports, strict=True):
        for name, b in (r.get("bootstrap") or {}).items():
            if b is not None:
                out.setdefault(name, []).append({"seed": seed, **b})
    return out


def parse_sets(items: list[str], stages: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``["hgnn.epochs=6", ...]`` as ``{"hgnn": {"epochs": 6}}``; a value is read as JSON
    (``6``, ``0.5``, ``true``, ``[10, 5]``, ``{"book": 0.1}``), else kept as a string."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        stage, dot, key = name.strip().partition(".")
        if not sep or not dot or not key:
            raise ValueError(f"--set {item!r}: expected STAGE.KEY=VALUE, e.g. hgnn.epochs=6")
        if stage not in stages:
            raise ValueError(
                f"--set {item!r}: unknown stage {stage!r} (stages: {', '.join(stages)})"
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(stage, {})[key.strip()] = value
    return out


def per_seed_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one seed per model (no per-user data)."""
    out = {}
    for m, r in report["results"].items():
        out[m] = {k: r[k] for k in KEYS}
        for s in SLICES:
            if r.get(s):
                out[m][f"{s}_recall@10"] = r[s]["recall@10"]
    return out
