"""Text-featurization benchmark: items/s of the bundled MiniLM-L6 encoder on CPU, before and
after token-sorted batching, and the faster variants tried, each with its cosine to the
fp32 vectors it would replace.

Catalogs (real text where the data is present; each sampled to ``--texts`` non-empty item
texts, seed 0): ``podcasts`` (Apple Podcasts titles + descriptions, long), ``lastfm``
(artist names + tags, short), ``synthetic`` (the generated catalog of the graph-build
benchmark). Methods, timed interleaved ``--reps`` times (median items/s; the machine's
noise is the min–max spread):

- ``before``: texts sorted by characters, 128-row batches (the encoder until this change);
- ``after``: ``TextEncoder.encode`` as it is: sorted by token count, 32-row batches;
- ``int8``: the same, with every ``nn.Linear`` dynamically quantized to int8 (per channel);
- ``onnxruntime``: the same batches through ONNX Runtime (only when onnxruntime and onnx are
  installed; they are not dependencies of audiograph).

    python benchmarks/featurize.py [--texts 1000] [--reps 3] [--save NAME] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import torch

from audiograph.core.text_encoder import TextEncoder, item_texts

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def catalog_texts(name: str, work: Path, n: int) -> list[str] | None:
    """``n`` sampled non-empty item texts of a catalog (None: its source data is absent)."""
    from audiograph.graphs.adapters import lastfm, podcasts, synthetic

    out = work / name
    if name == "synthetic":
        synthetic.prepare_synthetic(
            out, users=2000, items={"music": 2000, "podcast": 500, "audiobook": 100}, seed=0
        )
    else:
        src = DATA / {"podcasts": "podcast-catalog", "lastfm": "lastfm-hetrec-2k"}[name]
        if not src.is_dir():
            print(f"skipped {name}: {src} not found")
            return None
        (podcasts.prepare_podcasts if name == "podcasts" else lastfm.prepare_lastfm)(src, out)
    texts = [t for t in item_texts(pl.read_parquet(out / "items.parquet")) if t.strip()]
    rng = np.random.default_rng(0)
    return [texts[i] for i in rng.choice(len(texts), min(n, len(texts)), replace=False)]


def encode_before(enc: TextEncoder, texts: list[str]) -> np.ndarray:
    """The encoder until this change: sorted by characters, 128-row batches."""
    out = np.zeros((len(texts), enc.dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), 128):
        idx = order[start : start + 128]
        out[idx] = enc.encode_batch([texts[i] for i in idx])
    return out


def int8_encoder(enc: TextEncoder) -> TextEncoder:
    """A copy of ``enc`` whose linear layers run int8 dynamic quantization (per channel)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    q = copy.copy(enc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q.model = quantize_dynamic(
            copy.deepcopy(enc.model), {torch.nn.Linear: per_channel_dynamic_qconfig}
        )
    return q


def onnx_encoder(enc: TextEncoder, work: Path) -> TextEncoder | None:
    """A copy of ``enc`` whose model runs in ONNX Runtime (None: onnxruntime absent)."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime as ort
    except ImportError:
        return None
    path, b = work / "encoder.onnx", enc.tokenizer(["a b", "c"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {k: {0: "batch", 1: "tokens"} for k in [*names, "hidden"]}

    class Hidden(torch.nn.Module):  # keyword inputs -> last hidden state, for the exporter
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(enc.model).eval(),
            tuple(b[k] for k in names),
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["hidden"],
            dynamic_axes=axes,
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(**batch: torch.Tensor) -> SimpleNamespace:
        feed = {k: batch[k].numpy() for k in names}
        return SimpleNamespace(last_hidden_state=torch.from_numpy(sess.run(None, feed)[0]))

    o = copy.copy(enc)
    o.model = run
    return o


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=1000, help="texts per catalog")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--catalogs", default="podcasts,lastfm,synthetic")
    ap.add_argument("--save", default=None, help="write results/featurize-NAME.json")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ag-featurize-"))
    enc = TextEncoder()
    methods = {
        "before": lambda t: encode_before(enc, t),
        "after": lambda t: enc.encode(t, progress=False),
    }
    q = int8_encoder(enc)
    methods["int8"] = lambda t: q.encode(t, progress=False)
    o = onnx_encoder(enc, work)
    if o is not None:
        methods["onnxruntime"] = lambda t: o.encode(t, progress=False)
    else:
        print("skipped onnxruntime: not installed (pip install onnxruntime onnx)")
    doc = {
        "encoder": enc.id,
        "max_length": enc.max_length,
        "threads": torch.get_num_threads(),
        "reps": args.reps,
        "catalogs": {},
    }
    for name in args.catalogs.split(","):
        texts = catalog_texts(name, work, args.texts)
        if texts is None:
            continue
        tokens = enc.token_counts(texts)
        rates: dict[str, list[float]] = {m: [] for m in methods}
        vectors = {}
        for f in methods.values():  # warm-up
            f(texts[:64])
        for _ in range(args.reps):
            for m, f in methods.items():
                t = time.perf_counter()
                vectors[m] = f(texts)
                rates[m].append(len(texts) / (time.perf_counter() - t))
        ref = vectors["before"]
        rows = {}
        for m, r in rates.items():
            cos = (vectors[m] * ref).sum(1)
            rows[m] = {
                "items_per_s": round(float(np.median(r)), 1),
                "min": round(min(r), 1),
                "max": round(max(r), 1),
                "min_cosine": float(cos.min()),
                "mean_cosine": float(cos.mean()),
            }
            print(
                f"{name:10s} {m:12s} {rows[m]['items_per_s']:7.1f} items/s "
                f"({rows[m]['min']}-{rows[m]['max']})  cosine to before: min "
                f"{rows[m]['min_cosine']:.6f}, mean {rows[m]['mean_cosine']:.6f}"
            )
        doc["catalogs"][name] = {
            "texts": len(texts),
            "mean_tokens": float(tokens.mean()),
            "methods": rows,
        }
    if args.json:
        print(json.dumps(doc, indent=1))
    if args.save:
        doc["command"] = " ".join(
            f"--{k} {v}"
            for k, v in (("texts", args.texts), ("reps", args.reps), ("save", args.save))
        )
        out = HERE / "results" / f"featurize-{args.save}.json"
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"saved {out}")


if __name__ == "__main__":
    main()
