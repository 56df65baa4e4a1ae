"""The speed and scale tables of benchmarks/README.md (graph build, featurize, sampler,
training speed and defaults, distributed), rendered by ``tables.py`` from
``benchmarks/results/*.json``; and the cell formats both modules use."""

from __future__ import annotations

from typing import Any


def ci(x: dict[str, Any] | None) -> str:
    """``mean ± ci95`` of a summarised figure (``–`` when absent)."""
    if not x:
        return "–"
    return f"{x['mean']:.3f}" + ("" if x.get("ci95") is None else f" ± {x['ci95']:.3f}")


def head(*cells: str) -> list[str]:
    """A Markdown table's header line and separator."""
    return ["| " + " | ".join(cells) + " |", "|---" * len(cells) + "|"]


def count(x: Any) -> str:
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
        f"{doc['device']}, {doc['threads']} intra-op threads"
        + (f", {doc['load']} busy process(es) beside" if doc.get("load") else "")
        + ". Command: "
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
        f"| mean ± 95 % | {ci(mrr)} | | | {wall['mean']:.1f}{spread} (slowest {slowest:.1f}) |"
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


def generative_speed_table(doc: dict[str, Any]) -> str:
    """The generative training step before / after, examples/s per epoch
    (``benchmarks/generative_speed.py --save``)."""
    v = doc["variants"]
    epochs = range(doc["epochs"])
    rows = [
        "| step | " + " | ".join(f"epoch {e}" for e in epochs) + " | last ÷ first | total s |",
        "|---|" + "---|" * doc["epochs"] + "---|---|",
    ]
    for name, r in v.items():
        rate = r["examples_per_s"]
        rows.append(
            f"| {name} | "
            + " | ".join(f"{x:,.0f}" for x in rate)
            + f" | {rate[-1] / rate[0]:.2f} | {r['seconds']:,.0f} |"
        )
    before, after = v["before"], v["after"]
    rows += [
        "",
        f"Examples/s of `train-generative` per epoch ({before['examples']:,} examples an "
        f"epoch) on {doc['data']}; after ÷ before: "
        f"**{before['seconds'] / after['seconds']:.2f}×** in total time. Training loss at the "
        f"last epoch: before {before['train_loss'][-1]:.3f}, after "
        f"{after['train_loss'][-1]:.3f}. {doc['machine']}, {doc['threads']} intra-op "
        f"threads. Command: `python benchmarks/generative_speed.py --data DATA_DIR --sid "
        f"SID_DIR --workdir WORK {doc['command']}`.",
    ]
    return "\n".join(rows)


def codebook_table(doc: dict[str, Any]) -> str:
    """The codebook grid on validation (``benchmarks/codebook_grid.py --save``)."""
    rows = [
        "| levels × codes | unique before disambiguation | val R@10 search | val R@10 rec | "
        "val R@10 mean | val loss | epochs (best) | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best = (doc["chosen"]["levels"], doc["chosen"]["codebook_size"])
    for p in doc["points"]:
        r = p["val_recall@10"]
        name = f"{p['levels']} × {p['codebook_size']}"
        mean = f"{p['val_recall@10_mean']:.3f}"
        if (p["levels"], p["codebook_size"]) == best:
            name, mean = f"**{name}**", f"**{mean}**"
        rows.append(
            f"| {name} | {p['unique_fraction']:.1%} | {r.get('search', float('nan')):.3f} | "
            f"{r.get('rec', float('nan')):.3f} | {mean} | {p['val_loss']:.3f} | "
            f"{p['epochs']} ({p['best_epoch'] + 1}) | {p['seconds']:,.0f} |"
        )
    rows += [
        "",
        f"On {doc['data']}; bold: the highest mean validation recall@10. Command: "
        f"`python benchmarks/codebook_grid.py --data SPLIT/train --emb EMB_DIR --workdir "
        f"WORK {doc['command']}`.",
    ]
    return "\n".join(rows)
