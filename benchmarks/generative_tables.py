"""The generative tables of benchmarks/README.md (generative search + rec per embedding
space, and the user prefix), rendered by ``tables.py`` from ``benchmarks/results/*.json``."""

from __future__ import annotations

from statistics import median
from typing import Any

from speed_tables import ci, head


def _recalls(r: dict[str, Any]) -> list[str]:
    """Search and rec recall@10, @30 cells of a generative or prefix summary row."""
    return [ci((r.get(t) or {}).get(f"recall@{k}")) for t in ("search", "rec") for k in (10, 30)]


def _latency(r: dict[str, Any]) -> str:
    """p50 ms of one search and one rec request, per seed."""
    return "/".join(f"{p['search']:.0f}, {p['rec']:.0f}" for p in r["p50_ms"])


def _seed_bootstraps(bootstrap: dict[str, Any], seeds: list[int]) -> list[str]:
    """One bullet per seed: each paired difference ``row − reference [95 % interval]``."""
    lines = []
    for seed in seeds:
        boot = bootstrap.get(str(seed), bootstrap.get(seed, {}))
        parts = [
            f"{k.replace('_vs_', ' − ')} {b['diff']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}]"
            for k, b in boot.items()
            if b
        ]
        lines.append(f"- seed {seed}: " + "; ".join(parts))
    return lines


def _frontier_lines(frontier: dict[str, Any], seeds: list[int]) -> list[str]:
    """The search + rec frontier per seed: which rows beat the multi-task / fused row on
    both tasks beyond the paired interval."""
    if not frontier:
        return []
    lines = [
        "",
        "Search + rec frontier (a row better on both tasks beyond the paired interval):",
        "",
    ]
    for seed in seeds:
        per = frontier.get(str(seed), frontier.get(seed, {}))
        parts = [f"{n[4:]}: " + (", ".join(b[4:] for b in by) or "none") for n, by in per.items()]
        lines.append(f"- seed {seed}: " + "; ".join(parts))
    return lines


def _training_lines(doc: dict[str, Any]) -> list[str]:
    """One bullet per seed: the generative stages' minutes (Semantic IDs, training and
    answers, all spaces) and, per space, examples/s of the first and last epoch with the
    ratio of the median of the last three epochs to that of the first three (where the
    run logged every epoch's rate)."""
    lines = []
    for r in doc["per_seed"]:
        gen = {n[4:]: row for n, row in r["rows"].items() if n.startswith("gen-")}
        parts = []
        for name, row in gen.items():
            rate = row["training"].get("per_epoch") or []
            if len(rate) >= 2:
                first, last = median(rate[:3]), median(rate[-3:])
                parts.append(f"{name} {rate[0]:,.0f} → {rate[-1]:,.0f} ({last / first:.2f})")
        total = sum(row["seconds"] for row in gen.values()) / 60
        rates = f"; examples/s first → last epoch (median last 3 ÷ first 3): {', '.join(parts)}"
        spaces = f"{len(gen)} space" + "s" * (len(gen) != 1)
        lines.append(
            f"- seed {r['seed']}: generative stages {total:.0f} min for {spaces}"
            + (rates if parts else "")
        )
    return lines


def generative_table(doc: dict[str, Any]) -> str:
    """Rows: generative (per space) and reference rows; recall@10/@30 per task (mean ±
    ci95 over seeds), generative ÷ reference at recall@10, SID uniqueness, epochs and
    p50 latency of one request."""
    named = any("named" in r for r in doc["summary"].values())  # the easier search slice
    rows = [
        "| row (seeds) | search R@10 | search R@30 | rec R@10 | rec R@30 | rec ÷ 2T | "
        "search ÷ best reference | unique SIDs | epochs (best) | p50 ms search / rec |"
        + (" named search R@10 |" if named else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if named else ""),
    ]
    for name, r in doc["summary"].items():
        cell = _recalls(r)
        tail = [ci((r.get("named") or {}).get("recall@10"))] if named else []
        gen = name.startswith("gen-")
        uniq = "–" if not gen else "/".join(f"{s['unique_fraction']:.2f}" for s in r["sid"])
        ep = (
            "–"
            if not gen
            else "/".join(f"{t['epochs']} ({t['best_epoch'] + 1})" for t in r["training"])
        )
        lat = _latency(r) if gen else "–"
        ratios = [ci(r.get(k)) if gen else "–" for k in ("rec_vs_2t", "search_vs_dense")]
        label = f"{name} ({len(r.get('seeds', doc['seeds']))})"
        rows.append(f"| {label} | " + " | ".join([*cell, *ratios, uniq, ep, lat, *tail]) + " |")
    seeds = doc["seeds"]
    rows.append("")
    rows.append(
        f"Seeds {', '.join(map(str, seeds))}; {doc['per_seed'][0]['inputs']['queries']} "
        f"queries and {doc['per_seed'][0]['inputs']['users']} users per seed; "
        f"{doc['seconds'] / 60:.0f} min in all "
        f"({', '.join(f'{s / 60:.0f}' for s in doc['seconds_per_seed'])} min per seed)."
        " Paired bootstrap of recall@10 within each seed (1,000 resamples of the "
        "inputs), generative row − reference [95 % interval]:"
    )
    rows.append("")
    rows += _seed_bootstraps(doc["bootstrap"], seeds)
    rows += _frontier_lines(doc.get("frontier", {}), seeds)
    rows += ["", "Generative training per seed:", "", *_training_lines(doc)]
    return "\n".join(rows)


def prefix_table(doc: dict[str, Any]) -> str:
    """Rows: the frozen generative model without / with the user token (per user-vector
    source) and the references; personal search and rec recall@10/@30 (mean ± ci95 over
    seeds), the with-user ratios, rec tokens per request, p50 latency, trainable
    parameters and training time of the prefix; then the per-seed paired bootstraps."""
    rows = head(
        "row (seeds)",
        "personal search R@10",
        "R@30",
        "rec R@10",
        "R@30",
        "search ÷ gen",
        "rec ÷ gen (history)",
        "rec tokens",
        "p50 ms search / rec",
        "trainable params",
        "prefix training s (epochs)",
    )
    for name, r in doc["summary"].items():
        cell = _recalls(r)
        user = name.startswith("gen+user")
        ratios = [ci(r.get(f"{t}_vs_gen")) if user else "–" for t in ("search", "rec")]
        tokens = "/".join(f"{t['rec']:.0f}" for t in r["tokens"]) if "tokens" in r else "–"
        lat = _latency(r) if "p50_ms" in r else "–"
        params = f"{r['trainable_parameters'][0]:,}" if user else "–"
        train = (
            "/".join(f"{t['seconds']:.0f} ({t['epochs']})" for t in r["training"]) if user else "–"
        )
        rows.append(
            f"| {name} ({r['seeds']}) | "
            + " | ".join([*cell, *ratios, tokens, lat, params, train])
            + " |"
        )
    first = doc["per_seed"][0]["inputs"]
    rows += [
        "",
        f"Seeds {', '.join(map(str, doc['seeds']))}; {first['personal_search']} "
        f"sampled (user, tag) test pairs (of {first['personal_pairs']:,}) and "
        f"{first['rec']} test users per seed; "
        f"{', '.join(f'{s / 60:.0f}' for s in doc['seconds_per_seed'])} min per seed "
        "(chain and backbone reused where built). Paired bootstrap of recall@10 within "
        "each seed (1,000 resamples of the inputs), row − reference [95 % interval]:",
        "",
    ]
    return "\n".join(rows + _seed_bootstraps(doc["bootstrap"], doc["seeds"]))
