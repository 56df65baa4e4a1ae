"""Render the result tables of benchmarks/README.md from ``benchmarks/results/*.json``.

    python benchmarks/tables.py          # rewrite the generated blocks in README.md
    python benchmarks/tables.py --check  # exit 1 when README.md is not up to date

A generated block sits between ``<!-- KIND:NAME -->`` and ``<!-- /KIND:NAME -->``, rendered
from ``results/KIND-NAME.json`` (``quality`` tables and ``ablation`` tables); nothing is
typed by hand.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from statistics import median
from typing import Any

from speed_tables import (  # the sibling script: speed and scale tables, cell formats
    ci,
    codebook_table,
    count,
    defaults_table,
    distributed_table,
    featurize_table,
    generative_speed_table,
    graph_build_table,
    sampler_table,
    train_table,
)

HERE = Path(__file__).resolve().parent
README, RESULTS = HERE / "README.md", HERE / "results"
KEYS = ("hr@10", "recall@10", "ndcg@10", "mrr", "coverage")
SLICES = ("new_items", "rare_items")


def quality_table(out: dict[str, Any]) -> str:
    """Markdown: per model the mean ± 95 % interval over seeds of each metric, of HR@10 per
    user group and (results with item slices) of new- and rare-item recall@10; then the
    paired across-seed comparisons (difference and ratio) and the per-seed bootstrap
    intervals where the results have them. A missing figure shows ``–``."""
    seeds = len(out["seeds"])
    rows = out["results"]
    slices = any(SLICES[0] in r or SLICES[1] in r for r in rows.values())
    extra = " | new-item R@10 (pairs) | rare-item R@10 (pairs)" if slices else ""
    lines = [
        f"Target type `{out['target_type']}`, {seeds} seeds (mean ± 95 % t-interval), "
        f"{out['seconds'] / 60:.1f} min on {out['machine']}.",
        "",
        "| model | "
        + " | ".join(KEYS)
        + " | warm HR@10 | cold HR@10 | no-history HR@10"
        + extra
        + " |",
        "|---" * (len(KEYS) + 4 + 2 * slices) + "|",
    ]
    for model, r in rows.items():
        cells = [ci(r.get(k)) for k in KEYS]
        for g in ("warm", "cold", "no_history"):
            users = (r.get(g) or {}).get("users") or [0]
            cells.append(f"{ci((r.get(g) or {}).get('hr@10'))} ({users[0]})")
        for s in SLICES if slices else ():
            pairs = (r.get(s) or {}).get("pairs") or ["–"]
            cells.append(f"{ci((r.get(s) or {}).get('recall@10'))} ({pairs[0]})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for key, diff in out.items():
        if "_vs_" not in key or not isinstance(diff, dict) or not diff:
            continue
        a, b = key.rsplit("_vs_", 1)
        lines += ["", f"| {a} vs {b}, HR@10 (paired) | difference | ratio |", "|---|---|---|"]
        for group, d in diff.items():
            lines.append(f"| {group} | {ci(d.get('diff'))} | {ci(d.get('ratio'))} |")
    lines += _bootstrap_lines(out.get("bootstrap") or {}, out["seeds"])
    if out.get("validation"):
        shown = ", ".join(f"{k} {ci(v)}" for k, v in out["validation"].items())
        lines += ["", f"Validation (what model selection saw; leak-free): {shown}."]
    users = next(iter(rows.values()))["users"]
    lines += ["", f"Evaluated users (seed 0): {users}; split: {json.dumps(out['split'])}."]
    if slices:
        lines += [
            "",
            "Item slices: test pairs whose item has no training user (new) or 1–2 "
            "(rare); recall@10 = share of those pairs in the user's top 10; pairs of "
            "seed 0 in parentheses.",
        ]
    if "set" in out.get("config", {}):
        changed = ", ".join(
            f"{st}.{k}={json.dumps(v)}"
            for st, t in out["config"]["set"].items()
            for k, v in t.items()
        )
        lines += [
            "",
            "Settings: the product's defaults for every stage"
            + (f", except {changed}." if changed else "."),
        ]
    return "\n".join(lines)


def _head(*cells: str) -> list[str]:
    """A Markdown table's header line and separator."""
    return ["| " + " | ".join(cells) + " |", "|---" * len(cells) + "|"]


def _bootstrap_lines(boot: dict[str, Any], seeds: list[int]) -> list[str]:
    """Per comparison and seed: the paired per-user bootstrap difference [95 % interval]."""
    names = [k for k, v in boot.items() if isinstance(v, list)]
    if not names:
        return []
    lines = [
        "",
        f"| HR@10 difference, per-user bootstrap ({boot.get('draws', '?')} "
        "resamples), 95 % interval | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---" * (len(seeds) + 1) + "|",
    ]
    for name in names:
        by_seed = {b["seed"]: b for b in boot[name]}
        cells = [
            f"{b['diff']:+.3f} [{b['lo']:+.3f}, {b['hi']:+.3f}]" if (b := by_seed.get(s)) else "–"
            for s in seeds
        ]
        lines.append(f"| {name.replace('_vs_', ' vs ')} | " + " | ".join(cells) + " |")
    return lines


def ablation_table(doc: dict[str, Any]) -> str:
    """Markdown: per ablation variant, the HGNN settings, what validation saw and the test
    HR@10 of the main models, with the paired 2T-HGNN − 2T difference and ratio."""
    lines = _head(
        "variant",
        "HGNN hidden / epochs / edges per type",
        "label window",
        "val HGNN MRR",
        "val 2T-HGNN R@10",
        "val 2T R@10",
        "2T",
        "2T-HGNN",
        "2T-HGNN − 2T",
        "ratio (all)",
        "ratio (cold)",
        "LightGCN",
        "HGNN-KNN",
        "LLM-KNN",
    )
    for label, v in doc["variants"].items():
        h, r, d, val = v["config"]["hgnn"], v["results"], v["2t-hgnn_vs_2t"], v["validation"]
        hr = {m: ci(r[m]["hr@10"]) for m in ("2t", "2t-hgnn", "lightgcn", "hgnn", "llm-knn")}
        lines.append(
            f"| {label} | {h['hidden']} / {h['epochs']} / {count(h['balance'])} "
            f"| {v['split']['label_fraction']} | {ci(val['hgnn_mean_mrr'])} "
            f"| {ci(val['2t-hgnn_recall@10'])} | {ci(val['2t_recall@10'])} | {hr['2t']} "
            f"| {hr['2t-hgnn']} | {ci(d['all']['diff'])} | {ci(d['all']['ratio'])} "
            f"| {ci((d.get('cold') or {}).get('ratio'))} | {hr['lightgcn']} | {hr['hgnn']} "
            f"| {hr['llm-knn']} |"
        )
    seeds = {len(v["seeds"]) for v in doc["variants"].values()}
    lines += [
        "",
        f"Test HR@10 on `{doc['dataset']}`, mean ± 95 % t-interval over "
        f"{'/'.join(map(str, sorted(seeds)))} seeds (the same seeds and test parts in every "
        "row); validation figures are what model selection saw.",
    ]
    return "\n".join(lines)


def changes_table(doc: dict[str, Any]) -> str:
    """Markdown: issue 36's three changes alone and together (``quality.py --changes``):
    per variant what validation saw, test HR@10 (all and cold-for-type users) of 2T-HGNN,
    2T and LightGCN, and new-item recall@10 of the four history models."""
    lines = _head(
        "variant",
        "val 2T-HGNN R@10",
        "val 2T R@10",
        "2T-HGNN",
        "2T",
        "LightGCN",
        "2T-HGNN cold",
        "2T cold",
        "LightGCN cold",
        "new: 2T-HGNN",
        "new: 2T",
        "new: HGNN-KNN",
        "new: LLM-KNN",
    )
    for label, v in doc["variants"].items():
        r, val = v["results"], v["validation"]

        def cell(model: str, group: str | None = None, key: str = "hr@10", r=r) -> str:
            got = r.get(model) or {}
            return ci((got.get(group) or {}).get(key) if group else got.get(key))

        lines.append(
            f"| {label} | {ci(val['2t-hgnn_recall@10'])} | {ci(val['2t_recall@10'])} "
            + "".join(f"| {cell(m)} " for m in ("2t-hgnn", "2t", "lightgcn"))
            + "".join(f"| {cell(m, 'cold')} " for m in ("2t-hgnn", "2t", "lightgcn"))
            + "".join(
                f"| {cell(m, 'new_items', 'recall@10')} "
                for m in ("2t-hgnn", "2t", "hgnn", "llm-knn")
            )
            + "|"
        )
    seeds = {len(v["seeds"]) for v in doc["variants"].values()}
    lines += [
        "",
        f"`{doc['dataset']}`: HR@10 (all users, cold-for-type users) and new-item recall@10, "
        f"mean ± 95 % t-interval over {'/'.join(map(str, sorted(seeds)))} seeds (the same "
        "seeds and test parts in every row; `–`: not scored in that run); validation "
        "figures are what model selection saw.",
    ]
    return "\n".join(lines)


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
    rows += ["", "Generative training per seed:", "", *_training_lines(doc)]
    return "\n".join(rows)


def prefix_table(doc: dict[str, Any]) -> str:
    """Rows: the frozen generative model without / with the user token (per user-vector
    source) and the references; personal search and rec recall@10/@30 (mean ± ci95 over
    seeds), the with-user ratios, rec tokens per request, p50 latency, trainable
    parameters and training time of the prefix; then the per-seed paired bootstraps."""
    rows = _head(
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


TABLES = {
    "quality": quality_table,
    "ablation": ablation_table,
    "changes": changes_table,
    "train": train_table,
    "graph_build": graph_build_table,
    "featurize": featurize_table,
    "sampler": sampler_table,
    "defaults": defaults_table,
    "distributed": distributed_table,
    "generative": generative_table,
    "prefix": prefix_table,
    "generative_speed": generative_speed_table,
    "codebook": codebook_table,
}  # block kind -> renderer


def render(text: str) -> str:
    """``text`` with every generated block (``<!-- KIND:NAME -->`` … ``<!-- /KIND:NAME -->``,
    rendered from ``results/KIND-NAME.json``) replaced."""

    def block(m: re.Match) -> str:
        kind, name = m.group(1), m.group(2)
        f = RESULTS / f"{kind}-{name}.json"
        if not f.exists():
            sys.exit(f"error: {f}: no results for the block {kind}:{name}")
        body = TABLES[kind](json.loads(f.read_text()))
        return f"<!-- {kind}:{name} -->\n{body}\n<!-- /{kind}:{name} -->"

    kinds = "|".join(TABLES)
    pattern = rf"<!-- ({kinds}):([\w-]+) -->.*?<!-- /\1:\2 -->"
    return re.sub(pattern, block, text, flags=re.S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check README.md is current")
    args = ap.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        sys.exit(0 if new == text else "benchmarks/README.md is not generated from results/")
    README.write_text(new)


if __name__ == "__main__":
    main()
