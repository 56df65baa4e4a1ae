"""The README's main job: ``audiograph demo`` on the embedded synthetic default."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

from audiograph.pipeline.demo import run_demo
from audiograph.pipeline.stages import NAMES
from audiograph.twotower.config import MODELS


def test_demo_runs_the_chain_and_prints_the_evaluation(tmp_path, capsys):
    result = run_demo(tmp_path / "demo", users=3000, seed=0)
    info = result["graph"]
    assert info["node_types"] == {"music": 2000, "podcast": 1000, "audiobook": 300}
    assert info["feature_dim"] == 384 and sum(info["featureless"].values()) == 0
    assert len(info["edge_types"]) == 9
    for key, n in info["edge_types"].items():
        src, _, dst = key.split("__")
        assert n == info["edge_types"][f"{dst}__co__{src}"] > 0
    out = capsys.readouterr().out
    assert "multi-link epoch 0" in out and "[demo] done in" in out
    # multi-link: every link type is cut to the audiobook-audiobook count
    table = out.split("multi-link epoch 0")[1].split("[demo] sampled")[0]
    rows = [line.split() for line in table.splitlines()[1:] if line.strip()]
    epoch_counts = {r[0]: int(r[2].replace(",", "")) for r in rows}
    assert len(epoch_counts) == 6 and len(set(epoch_counts.values())) == 1
    # the evaluation table: every model on the audiobook test interactions, same users
    report = result["evaluation"]
    assert report["target_type"] == "audiobook"
    assert list(report["results"]) == [m for m in MODELS if m not in report["skipped"]]
    assert set(report["skipped"]) <= {"als", "itemknn"}  # only where implicit is absent
    users = {r["users"] for r in report["results"].values()}
    assert len(users) == 1 and users.pop() > 50
    for name, r in report["results"].items():
        assert 0.0 <= r["ndcg@10"] <= r["hr@10"] <= 1.0 and 0.0 < r["coverage"] <= 1.0, name
    assert "| 2t-hgnn |" in out
    # Semantic IDs for every item, and one generative answer per task from real items
    gen = result["generative"]
    assert gen["sids"]["count"] == 3300 and set(gen["recall"]) == {"search", "rec"}
    assert len(set(gen["search"])) == len(gen["search"]) == 5
    assert len(set(gen["rec"])) == 5 and not set(gen["rec"]) & set(gen["history"])
    assert "[demo] Semantic IDs" in out and f"[demo] recommend for user {gen['user']}" in out
    # the search example is a real test query, answered on topic: most of the top 5 are of
    # the query's topic (the query's own rows name a few of the topic's items); printed
    assert gen["query"] and gen["topic"] and set(gen["relevant"]["search"]) <= set(gen["on_topic"])
    assert len(set(gen["search"]) & set(gen["on_topic"])) >= 3, gen
    assert gen["relevant"]["rec"] and "of the top 5 are relevant" in out
    assert "are of its topic" in out
    # E2P: one personalised answer next to the same frozen model's unpersonalised one
    p = gen["personalised"]
    assert len(set(p["with_user"])) == len(set(p["without_user"])) == 5 and p["relevant"]
    assert f'[demo] personalised search "{p["query"]}" for user {p["user"]}' in out
    assert "with the user token" in out and "query only (same model)" in out
    # `audiograph run` on the demo's TOML is the same experiment: every stage is cached
    toml = resources.files("audiograph.pipeline").joinpath("demo.toml").read_text()
    assert 'out = "runs/demo"' in toml
    (exp := tmp_path / "demo.toml").write_text(toml.replace("runs/demo", str(tmp_path / "demo")))
    res = subprocess.run(
        [sys.executable, "-m", "audiograph", "run", str(exp), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert list(done) == NAMES  # every stage, in order
    assert all(d["cached"] for d in done.values()), done
