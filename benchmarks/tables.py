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

HERE = Path(__file__).resolve().parent
README, RESULTS = HERE / "README.md", HERE / "results"
KEYS = ("hr@10", "recall@10", "ndcg@10", "mrr", "coverage")
SLICES = ("new_items", "rare_items")


def _ci(x: dict[str, Any] | None) -> str:
    if not x:
        return "–"
    return f"{x['mean']:.3f}" + ("" if x.get("ci95") is None else f" ± {x['ci95']:.3f}")


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
        cells = [_ci(r.get(k)) for k in KEYS]
        for g in ("warm", "cold", "no_history"):
            users = (r.get(g) or {}).get("users") or [0]
            cells.append(f"{_ci((r.get(g) or {}).get('hr@10'))} ({users[0]})")
        for s in SLICES if slices else ():
            pairs = (r.get(s) or {}).get("pairs") or ["–"]
            cells.append(f"{_ci((r.get(s) or {}).get('recall@10'))} ({pairs[0]})")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for key, diff in out.items():
        if "_vs_" not in key or not isinstance(diff, dict) or not diff:
            continue
        a, b = key.rsplit("_vs_", 1)
        lines += ["", f"| {a} vs {b}, HR@10 (paired) | difference | ratio |", "|---|---|---|"]
        for group, d in diff.items():
            lines.append(f"| {group} | {_ci(d.get('diff'))} | {_ci(d.get('ratio'))} |")
    lines += _bootstrap_lines(out.get("bootstrap") or {}, out["seeds"])
    if out.get("validation"):
        shown = ", ".join(f"{k} {_ci(v)}" for k, v in out["validation"].items())
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
        hr = {m: _ci(r[m]["hr@10"]) for m in ("2t", "2t-hgnn", "lightgcn", "hgnn", "llm-knn")}
        lines.append(
            f"| {label} | {h['hidden']} / {h['epochs']} / {_count(h['balance'])} "
            f"| {v['split']['label_fraction']} | {_ci(val['hgnn_mean_mrr'])} "
            f"| {_ci(val['2t-hgnn_recall@10'])} | {_ci(val['2t_recall@10'])} | {hr['2t']} "
            f"| {hr['2t-hgnn']} | {_ci(d['all']['diff'])} | {_ci(d['all']['ratio'])} "
            f"| {_ci((d.get('cold') or {}).get('ratio'))} | {hr['lightgcn']} | {hr['hgnn']} "
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


def _recalls(r: dict[str, Any]) -> list[str]:
    """Search and rec recall@10, @30 cells of a generative or prefix summary row."""
    return [_ci((r.get(t) or {}).get(f"recall@{k}")) for t in ("search", "rec") for k in (10, 30)]


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


def generative_table(doc: dict[str, Any]) -> str:
    """Rows: generative (per space) and reference rows; recall@10/@30 per task (mean ±
    ci95 over seeds), generative ÷ reference at recall@10, SID uniqueness, epochs and
    p50 latency of one request."""
    rows = [
        "| row (seeds) | search R@10 | search R@30 | rec R@10 | rec R@30 | rec ÷ 2T | "
        "search ÷ best dense | unique SIDs | epochs (best) | p50 ms search / rec |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in doc["summary"].items():
        cell = _recalls(r)
        gen = name.startswith("gen-")
        uniq = "–" if not gen else "/".join(f"{s['unique_fraction']:.2f}" for s in r["sid"])
        ep = (
            "–"
            if not gen
            else "/".join(f"{t['epochs']} ({t['best_epoch'] + 1})" for t in r["training"])
        )
        lat = _latency(r) if gen else "–"
        ratios = [_ci(r.get(k)) if gen else "–" for k in ("rec_vs_2t", "search_vs_dense")]
        label = f"{name} ({len(r.get('seeds', doc['seeds']))})"
        rows.append(f"| {label} | " + " | ".join([*cell, *ratios, uniq, ep, lat]) + " |")
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
    return "\n".join(rows + _seed_bootstraps(doc["bootstrap"], seeds))


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
        ratios = [_ci(r.get(f"{t}_vs_gen")) if user else "–" for t in ("search", "rec")]
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


def _count(x: Any) -> str:
    """``10,000`` for a number, the value itself otherwise (e.g. ``min``)."""
    return f"{x:,}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def graph_build_table(doc: dict[str, Any]) -> str:
    """Build time and peak memory per engine (``benchmarks/graph_build.py --save``)."""
    engines = [k.removesuffix("_build_s") for k in doc if k.endswith("_build_s")]
    rows = [
        "| engine | build-graph wall time (no text) | peak RSS (driver process) | "
        "peak RSS (Spark JVM) |",
        "|---|---|---|---|",
    ]
    for e in engines:
        jvm = doc.get(f"{e}_jvm_peak_rss_gb")
        rows.append(
            f"| {e} | {doc[f'{e}_build_s']} s | {doc[f'{e}_peak_rss_gb']} GB | "
            f"{'-' if jvm is None else f'{jvm} GB'} |"
        )
    same = doc.get("identical_graphs")
    rows.append("")
    rows.append(
        f"{doc['users']:,} users, {doc['items']:,} items, {doc['interactions']:,} "
        f"interactions → {doc['directed_edges']:,} directed edges"
        + ("" if same is None else f"; graph.safetensors byte-identical: {same}")
        + f"; text featurization (MiniLM-L6, 128 tokens, CPU) "
        f"{doc['text_items_per_s']} items/s"
        + f". Command: `python benchmarks/graph_build.py {doc['command']}`."
    )
    return "\n".join(rows)


def distributed_table(doc: dict[str, Any]) -> str:
    """Training throughput, 1 process vs torchrun ranks (``benchmarks/distributed.py``)."""
    rows = [
        "| model | processes | throughput | training time | wall time (whole command) |",
        "|---|---|---|---|---|",
    ]
    for r in doc["rows"].values():
        unit = {"edges_per_s": "supervision edges/s", "pairs_per_s": "pairs/s"}[r["unit"]]
        rows.append(
            f"| {r['model']} | {r['processes']} | {r['per_s']:,} {unit} | "
            f"{r['train_s']} s ({r['epochs']} epoch{'s' * (r['epochs'] != 1)}) | "
            f"{r['wall_s']} s |"
        )
    rows += [
        "",
        f"{doc['graph']}; {doc['machine']}. Command: "
        f"`python benchmarks/distributed.py {doc['command']}`.",
    ]
    return "\n".join(rows)


def train_table(doc: dict[str, Any]) -> str:
    """HGNN training speed, audiograph vs PyG in one run (``benchmarks/train.py --save``)."""
    from audiograph.hgnn.bench import speed_rows

    rows = speed_rows(doc)
    end = doc["ratio_end_to_end"]
    c = doc["config"]
    rows += [
        "",
        f"audiograph ÷ PyG: **{doc['ratio']:.2f}×** compute only, "
        + (
            "end to end skipped (" + doc.get("skipped", "") + ")"
            if end is None
            else f"**{end:.2f}×** end to end"
        )
        + f". Graph {doc['graph']}"
        + (f", supervision on {doc['seed_type']} only" if doc.get("seed_type") else "")
        + f"; hidden {c['hidden']}, fan-out {c['fanout']}, batch "
        f"{c['batch_size']}, {c['num_negatives']} negative(s), {c['loss']} loss, "
        f"{c.get('precision', 'fp32')} on both sides; "
        f"{doc['device']}, {doc['threads']} intra-op threads. Command: "
        f"`python benchmarks/train.py {doc['command']}`.",
    ]
    return "\n".join(rows)


def sampler_table(doc: dict[str, Any]) -> str:
    """Neighbour sampler vs PyG in one run (``benchmarks/sampler.py --save``), and the
    multi-link epoch when the run had ``--multilink-graph``."""
    rows = [
        "| sampler | seeds | weighted | features | batches/s | edges/batch | M sampled edges/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        name = "audiograph" if r["sampler"] == "audiograph" else "PyG + torch-sparse"
        seeds = (
            f"{doc['batch_size']:,} over all types"
            if r["seeds"] == "all"
            else f"{doc['batch_size']:,} {r['seeds']}"
        )
        if r["edges_per_s"] is None:
            why = (
                "cannot (one seed type per loader, PyG #4765)" if r["seeds"] == "all" else "skipped"
            )
            rows.append(f"| {name} | {seeds} | – | – | {why} | | |")
            continue
        rows.append(
            f"| {name} | {seeds} | {'yes' if r['weighted'] else 'no'} | "
            f"{'yes' if r['features'] else 'no'} | {r['batches_per_s']:.2f} | "
            f"{r['edges_per_batch']:,.0f} | {r['edges_per_s'] / 1e6:.2f} |"
        )
    g, ratio = doc["graph"], doc["ratio"]
    nodes = ", ".join(f"{n:,} {t}" for t, n in g["nodes"].items())
    rows += [
        "",
        f"**audiograph ÷ PyG (uniform, {doc['seed_type']} seeds, no features): "
        + ("n/a (peer skipped)" if ratio is None else f"{ratio:.1f}×")
        + "**. Graph "
        f"{g['name']}: {nodes}; {g['edges']:,} edges; fan-out {doc['fanout']}; "
        f"{doc['batches']} timed batches after one warm-up; {doc['threads']} intra-op "
        f"threads; {_load(doc.get('load', 0))}. Command: "
        f"`python benchmarks/sampler.py {doc['command']}`.",
    ]
    if doc.get("multilink"):
        rows += [
            "",
            "| epoch | supervision edges per link type | supervision edges | "
            "sampled edges | seconds |",
            "|---|---|---|---|---|",
        ]
        for r in doc["multilink"]:
            per = " · ".join(f"{k.replace('__co__', '–')} {v:,}" for k, v in r["per_type"].items())
            rows.append(
                f"| {r['epoch']} | {per} | {r['supervision_edges']:,} | "
                f"{r['sampled_edges']:,} | {r['seconds']:.1f} |"
            )
    return "\n".join(rows)


def _load(n: int) -> str:
    if not n:
        return "idle machine"
    return f"{n} busy single-threaded process{'es' if n > 1 else ''} beside both samplers"


def featurize_table(doc: dict[str, Any]) -> str:
    """Text-featurization items/s before and after, and the variants tried
    (``benchmarks/featurize.py --save``)."""
    rows = [
        "| catalog (mean tokens) | method | items/s (median, min–max) | × before | "
        "min / mean cosine to before |",
        "|---|---|---|---|---|",
    ]
    for name, cat in doc["catalogs"].items():
        before = cat["methods"]["before"]["items_per_s"]
        for m, r in cat["methods"].items():
            rows.append(
                f"| {name} ({cat['mean_tokens']:.0f}) | {m} | {r['items_per_s']:.1f} "
                f"({r['min']:.0f}–{r['max']:.0f}) | {r['items_per_s'] / before:.2f} | "
                f"{r['min_cosine']:.4f} / {r['mean_cosine']:.4f} |"
            )
    texts = next(iter(doc["catalogs"].values()))["texts"]
    rows += [
        "",
        f"{texts:,} texts per catalog, {doc['reps']} interleaved repetitions, "
        f"{doc['threads']} intra-op threads, {doc['max_length']} tokens at most. Command: "
        f"`python benchmarks/featurize.py {doc['command']}`.",
    ]
    return "\n".join(rows)


def defaults_table(doc: dict[str, Any]) -> str:
    """``train-hgnn``'s time to quality with its defaults, per seed and as mean ± 95 %
    t-interval (``benchmarks/train_defaults.py --save``)."""
    rows = ["| seed | best val MRR | at epoch | epochs run | wall (min) |", "|---|---|---|---|---|"]
    for r in doc["runs"]:
        rows.append(
            f"| {r['seed']} | {r['best_val_mrr']:.4f} | {r['best_epoch']} | "
            f"{r['epochs_run']} | {r['wall_s'] / 60:.1f} |"
        )
    mrr, wall = doc["best_val_mrr"], doc["wall_min"]
    t, g = doc["train"], doc["graph"]
    slowest = max(r["wall_s"] for r in doc["runs"]) / 60
    spread = "" if wall["ci95"] is None else f" ± {wall['ci95']:.1f}"
    rows.append(
        f"| mean ± 95 % | {_ci(mrr)} | | | {wall['mean']:.1f}{spread} (slowest {slowest:.1f}) |"
    )
    options = ", ".join(doc["options"]) or "none: the defaults"
    rows += [
        "",
        f"Graph {g['name']} ({g['nodes']:,} nodes, {g['edges']:,} directed edges); "
        f"options {options} (hidden {t['hidden']}, fan-out {t['fanout']}, batch "
        f"{t['batch_size']:,}, {t['loss']} loss, {t.get('precision', 'fp32')}, Adam "
        f"{t['lr']:g}, lr decay {t['lr_decay']:g} "
        f"per epoch, at most {t['max_epoch_edges']:,} supervision edges per epoch, "
        f"{t['epochs']} epochs, patience {t['patience']}); {doc['machine']}. Command: "
        f"`python benchmarks/train_defaults.py {doc['command']}`.",
    ]
    return "\n".join(rows)


TABLES = {
    "quality": quality_table,
    "ablation": ablation_table,
    "train": train_table,
    "graph_build": graph_build_table,
    "featurize": featurize_table,
    "sampler": sampler_table,
    "defaults": defaults_table,
    "distributed": distributed_table,
    "generative": generative_table,
    "prefix": prefix_table,
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
