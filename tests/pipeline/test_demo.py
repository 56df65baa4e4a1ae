"""The README's main job: ``audiograph demo`` on the embedded synthetic default."""

from __future__ import annotations

from pipeline.demo import run_demo


def test_demo_prepares_builds_and_samples(tmp_path, capsys):
    info = run_demo(tmp_path / "demo", users=3000, seed=0)
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
