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
from typing import Any

from generative_tables import generative_table, prefix_table  # the sibling scripts
from speed_tables import (  # speed and scale tables, cell formats
    ci,
    codebook_table,
    count,
    defaults_table,
    distributed_table,
    featurize_table,
    generative_speed_table,
    graph_build_table,
    head,
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
    lines = head(
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
    lines = head(
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
