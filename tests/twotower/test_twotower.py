"""Two-tower: inputs and shapes, cold users, no self-label leak, loss, exact resume, the
plain (no-HGNN) baseline, vectors export, recommendations and top-k lists."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file

import audiograph.twotower.train as tt
from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.synthetic import prepare_synthetic
from audiograph.graphs.contract import read_dataset, write_dataset
from audiograph.graphs.split import split_dataset
from audiograph.twotower import (
    TwoTowerConfig,
    export_vectors,
    recommend,
    score_all_users,
    train_twotower,
    user_item_vectors,
)
from audiograph.twotower.loss import sampled_softmax_loss
from audiograph.twotower.model import (
    InputSpec,
    TwoTower,
    build_spec,
    item_inputs,
    user_inputs,
)
from audiograph.twotower.ranking import recall_at_k
from audiograph.twotower.training_data import prepare, split_history_labels

SMALL = {"tower_dims": [32, 16], "cat_dim": 4, "batch_size": 128, "seed": 5}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("twotower")
    prepare_synthetic(
        root / "data", users=300, items={"music": 150, "podcast": 80, "audiobook": 30}, seed=4
    )
    ds = read_dataset(root / "data")
    # a fake EMB_DIR: seeded random unit vectors for all items but the last 5 (missing → 0)
    ids = ds.items.head(ds.items.height - 5).select("item_id", "item_type")
    emb = np.random.default_rng(0).normal(size=(ids.height, 24)).astype(np.float32)
    (root / "emb").mkdir()
    np.save(root / "emb" / "embeddings.npy", emb / np.linalg.norm(emb, axis=1, keepdims=True))
    ids.with_columns(row=pl.int_range(ids.height, dtype=pl.Int64)).write_parquet(
        root / "emb" / "ids.parquet"
    )
    (root / "emb" / "manifest.json").write_text(json.dumps({"kind": "embeddings"}))
    # a copy with one cold user (features only, no interactions)
    (root / "cold").mkdir()
    cold_users = pl.concat(
        [ds.users, pl.DataFrame({"user_id": ["cold"], "country": ["US"], "age": [30]})]
    )
    write_dataset(root / "cold", ds.items, ds.interactions, cold_users)
    cache = str(root / "cache")
    run = root / "run"
    train_twotower(
        root / "data",
        root / "emb",
        run,
        TwoTowerConfig(epochs=4, cache_dir=cache, resample=False, **SMALL),
        quiet=True,
    )
    return {"root": root, "ds": ds, "cache": cache, "run": run}


def test_inputs_and_forward_shapes(env):
    ds = env["ds"]
    text = np.ones((ds.items.height, 8), np.float32)
    hgnn = np.zeros((ds.items.height, 6), np.float32)
    spec = build_spec(ds.items, ds.interactions, ds.users, 6, 8, 6)
    assert spec.user_categorical["country"] and list(spec.user_numeric) == ["age"]
    assert spec.history_keys == sorted(spec.history_keys) and "podcast/follow" in spec.history_keys
    users = ds.interactions["user_id"].unique().sort()
    ucat, udense = user_inputs(users, ds.users, ds.interactions, ds.items, hgnn, spec, True)
    icat, idense = item_inputs(ds.items, spec, text, hgnn)
    assert ucat.shape == (300, 1) and udense.shape == (300, 1 + len(spec.history_keys) * 7)
    assert icat.shape == (ds.items.height, 1) and idense.shape == (ds.items.height, 15)
    assert abs(float(udense[:, 0].mean())) < 1e-4  # age standardized
    model = TwoTower(spec, [32, 16, 8], 4, True, "history")
    u, v = model.user(ucat, udense), model.item(icat, idense)
    assert u.shape == (300, 8) and v.shape == (ds.items.height, 8)
    assert torch.allclose(u.norm(dim=1), torch.ones(300), atol=1e-5)
    model = TwoTower(spec, [32, 16, 8], 4, True, "knn")  #: [a mlp, HGNN] out
    u, v = model.user(ucat, udense), model.item(icat, idense)
    assert u.shape == (300, 8 + 6) and v.shape == (ds.items.height, 8 + 6)
    assert torch.allclose(v.norm(dim=1), torch.full((ds.items.height,), 0.5**0.5))  # HGNN 0


def test_knn_skip_starts_at_the_history_knn():
    """With ``skip_vector="knn"`` the score is ``(a cos_mlp + cos_knn) / norm`` exactly:
    with the MLP weight ``a`` at 0 the two-tower ranks as HGNN-KNN (cosine of the user's
    count-weighted history mean and the item's HGNN vector); ``a`` starts at 0.1."""
    torch.manual_seed(0)
    spec = InputSpec(["x/s", "y/s"], history_dim=5, text_dim=3, hgnn_dim=2, item_types=["x"])
    model = TwoTower(spec, [8, 4], 2, True, "knn")
    assert abs(float(model.log_a.exp()) - 0.1) < 1e-6
    means, counts = torch.randn(6, 2, 5), torch.tensor([[1.0, 3], [2, 0], [0, 1]] * 2)
    udense = torch.cat([means.flatten(1), torch.log1p(counts)], 1)
    idense = torch.randn(7, 1 + 3 + 2)
    icat = torch.ones(7, 1, dtype=torch.long)
    with torch.no_grad():
        model.log_a.fill_(-30.0)  # a = 0: the k-NN part alone
        score = model.user(torch.zeros(6, 0, dtype=torch.long), udense) @ model.item(icat, idense).T
    hist = (means[..., -2:] * counts[..., None]).sum(1) / counts.sum(1, keepdim=True)
    knn = (
        torch.nn.functional.normalize(hist, dim=1)
        @ torch.nn.functional.normalize(idense[:, -2:], dim=1).T
    )
    assert torch.allclose(score, knn / 2**0.5, atol=1e-5)


def test_split_has_no_self_label_leak(env):
    inter, items = env["ds"].interactions, env["ds"].items
    history, labels = split_history_labels(inter, items, 0.2, seed=1)
    assert history.join(labels, on=["user_id", "item_id"]).height == 0
    assert history.height + inter.join(labels, on=["user_id", "item_id"]).height == inter.height
    per_user = inter.group_by("user_id").agg(n=pl.col("item_id").n_unique())
    got = labels.group_by("user_id").len().join(per_user, on="user_id")
    assert (got["len"] <= got["n"] - 1).all() and (got["len"] >= 1).all()
    assert got.height == per_user.filter(pl.col("n") >= 2).height  # every such user labelled
    # temporal: a label's first interaction is never before the user's history items'
    first = inter.group_by("user_id", "item_id").agg(pl.col("ts").min())
    lab = labels.join(first, on=["user_id", "item_id"]).group_by("user_id").agg(lo=pl.min("ts"))
    his = history.select("user_id", "item_id").join(first, on=["user_id", "item_id"])
    his = his.group_by("user_id").agg(hi=pl.max("ts"))
    assert (lab.join(his, on="user_id").select(pl.col("lo") >= pl.col("hi"))).to_series().all()
    assert split_history_labels(inter, items, 0.2, seed=1)[1].equals(labels)
    pod = split_history_labels(inter, items, 0.5, seed=1, target_type="podcast")[1]
    assert set(pod.join(items, on="item_id")["item_type"]) == {"podcast"}


def test_sampled_softmax_masks_accidental_hits_and_corrects_logq():
    torch.manual_seed(0)
    u, v = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1), torch.randn(4, 8)
    item = torch.tensor([3, 7, 3, 9])
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.5, 0.25]))
    logits = u @ v.T / 0.1 - log_q[None, :]
    logits[0, 2] = logits[2, 0] = float("-inf")  # row 0 and row 2 share item 3
    want = torch.nn.functional.cross_entropy(logits, torch.arange(4))
    assert torch.allclose(sampled_softmax_loss(u, v, item, 0.1, log_q), want)
    neg = torch.tensor([7, 1])
    got = sampled_softmax_loss(u, v, item, 0.1, log_q, [(v[:2], neg, -1.0, None)])
    extra = u @ v[:2].T / 0.1 + 1.0
    extra[1, 0] = float("-inf")  # row 1's positive is item 7
    want = torch.nn.functional.cross_entropy(torch.cat([logits, extra], 1), torch.arange(4))
    assert torch.allclose(got, want)
    # launch-type negatives seen by rows 1 and 3 only; rows weighted 1, 3, 1, 3
    rows, weight = torch.tensor([False, True, False, True]), torch.tensor([1.0, 3, 1, 3])
    got = sampled_softmax_loss(u, v, item, 0.1, log_q, [(v[:2], neg, -1.0, rows)], weight)
    extra[[0, 2]] = float("-inf")
    per_row = torch.nn.functional.cross_entropy(
        torch.cat([logits, extra], 1), torch.arange(4), reduction="none"
    )
    assert torch.allclose(got, (per_row * weight).sum() / weight.sum())


def test_training_lowers_the_loss_and_writes_the_run(env):
    rows = [json.loads(x) for x in (env["run"] / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(0.0 <= r["val_recall@10"] <= 1.0 for r in rows)
    config = json.loads((env["run"] / "config.json").read_text())
    assert config["kind"] == "twotower-run" and config["spec"]["hgnn_dim"] == 24
    assert config["spec"]["history_dim"] == 384 + 24 and config["train"]["use_hgnn"] is True
    ckpt = torch.load(env["run"] / "checkpoint.pt", weights_only=True)
    assert int(ckpt["epoch"]) == 4 and set(ckpt) >= {"model", "optimizer", "best", "bad_epochs"}
    with pytest.raises(ContractError, match="already holds a run"):
        train_twotower(env["root"] / "data", None, env["run"], TwoTowerConfig(), quiet=True)


def test_resampled_label_splits_differ_per_epoch_and_repeat_per_seed(env):
    ds = read_dataset(env["root"] / "data")
    cfg = TwoTowerConfig(use_hgnn=False, cache_dir=env["cache"], **SMALL)
    d = prepare(ds, None, cfg)
    (_, dense0), pairs0 = d.epoch_pairs(0)
    (_, dense1), pairs1 = d.epoch_pairs(1)
    again = d.epoch_pairs(1)[1]
    assert torch.equal(pairs1[0], again[0]) and torch.equal(pairs1[1], again[1])
    assert not torch.equal(pairs0[1], pairs1[1])
    # validation users never train: none of them is among the epoch's label users
    assert len(d.val_user[0]) > 0 and dense0.shape[1] == dense1.shape[1]
    trained = set(d.train_inter["user_id"].to_list())
    all_users = set(ds.interactions["user_id"].to_list())
    assert len(all_users - trained) >= len(d.val_user[0])
    assert dense0.shape[0] <= len(trained)


def test_resume_equals_uninterrupted(env, tmp_path):
    data, emb = env["root"] / "data", env["root"] / "emb"
    kw = {**SMALL, "cache_dir": env["cache"], "extra_negatives": 16, "patience": 10}
    train_twotower(data, emb, tmp_path / "full", TwoTowerConfig(epochs=3, **kw), quiet=True)
    train_twotower(data, emb, tmp_path / "cut", TwoTowerConfig(epochs=1, **kw), quiet=True)
    last = train_twotower(
        data, emb, tmp_path / "cut", TwoTowerConfig(epochs=3, **kw), resume=True, quiet=True
    )
    assert last["epoch"] == 2
    for load in (
        lambda d: torch.load(d / "checkpoint.pt", weights_only=True)["model"],
        lambda d: load_file(str(d / "model.safetensors")),
    ):
        a, b = load(tmp_path / "full"), load(tmp_path / "cut")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = [
        [json.loads(x)["train_loss"] for x in (tmp_path / d / "metrics.jsonl").open()]
        for d in ("full", "cut")
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 3


def test_plain_two_tower_needs_no_emb_dir_and_cold_users_get_vectors(env, tmp_path):
    cfg = TwoTowerConfig(epochs=1, use_hgnn=False, cache_dir=env["cache"], **SMALL)
    with pytest.raises(ContractError, match="needs an embeddings directory"):
        train_twotower(env["root"] / "data", None, tmp_path / "x", TwoTowerConfig(), quiet=True)
    train_twotower(env["root"] / "cold", None, tmp_path / "plain", cfg, quiet=True)
    spec = json.loads((tmp_path / "plain" / "config.json").read_text())["spec"]
    assert spec["hgnn_dim"] == 0 and spec["history_dim"] == 384  # history over text vectors
    users, uv, items, iv = user_item_vectors(tmp_path / "plain")
    assert users.len() == 301 and users[-1] == "cold"
    assert uv.shape == (301, 16 + 384)  # [MLP | text k-NN]
    assert items.columns == ["item_id", "item_type"] and iv.shape == (items.height, 16 + 384)
    norm = uv.norm(dim=1)  # 1, or a / sqrt(a^2 + 1) for a user without history (no k-NN part)
    assert torch.isfinite(uv).all() and (norm[:-1] - 1).abs().max() < 1e-5 and 0 < norm[-1] < 1
    cold = recommend(tmp_path / "plain", "cold", k=5)
    assert cold.height == 5 and cold["score"].is_sorted(descending=True)


def test_recommend_excludes_training_items_and_respects_item_type(env):
    inter = env["ds"].interactions
    user = inter.group_by("user_id").len().sort(["len", "user_id"], descending=[True, False])
    user_id = user["user_id"][0]
    seen = set(inter.filter(pl.col("user_id") == user_id)["item_id"])
    out = recommend(env["run"], user_id, k=50)
    assert out.columns == ["item_id", "item_type", "title", "score"] and out.height == 50
    assert not seen & set(out["item_id"]) and out["score"].is_sorted(descending=True)
    pods = recommend(env["run"], user_id, k=500, item_type="podcast")
    assert set(pods["item_type"]) == {"podcast"} and not seen & set(pods["item_id"])
    assert pods.height == 80 - len([i for i in seen if i.startswith("podcast:")])
    with pytest.raises(ContractError, match="user_id 'nobody'"):
        recommend(env["run"], "nobody")
    with pytest.raises(ContractError, match="item_type 'video'"):
        recommend(env["run"], user_id, item_type="video")


def test_export_vectors_and_score_all_users(env, tmp_path):
    m = export_vectors(env["run"], tmp_path / "vec")
    assert m["kind"] == "twotower-vectors" and m["users"] == 300
    assert m["dim"] == 16 + 24  # [MLP | HGNN k-NN]
    uv = np.load(tmp_path / "vec" / "user_vectors.npy")
    users = pl.read_parquet(tmp_path / "vec" / "users.parquet")
    assert uv.shape[0] == 300 and np.allclose(users["vector"].to_numpy(), uv)
    assert pl.read_parquet(tmp_path / "vec" / "items.parquet").height == 260
    out = tmp_path / "top" / "scores.parquet"
    res = score_all_users(env["run"], out, k=7, item_type="music", batch_size=64)
    top = pl.read_parquet(out)
    assert top.columns == ["user_id", "rank", "item_id", "score"]
    assert res["rows"] == top.height == 300 * 7 and top["item_id"].str.starts_with("music").all()
    assert top.join(env["ds"].interactions, on=["user_id", "item_id"]).height == 0
    one = top.filter(pl.col("user_id") == "u3").sort("rank")
    rec = recommend(env["run"], "u3", k=7, item_type="music")
    assert one["item_id"].to_list() == rec["item_id"].to_list()


def files(run):
    return {f.name: f.read_bytes() for f in run.iterdir() if f.is_file()}


def test_a_failed_resume_changes_no_file(env, tmp_path):
    data, emb = env["root"] / "data", env["root"] / "emb"
    kw = {**SMALL, "cache_dir": env["cache"]}
    train_twotower(data, emb, tmp_path / "a", TwoTowerConfig(epochs=3, **kw), quiet=True)
    train_twotower(data, emb, tmp_path / "b", TwoTowerConfig(epochs=1, **kw), quiet=True)
    (tmp_path / "a" / "checkpoint.pt").write_bytes((tmp_path / "b" / "checkpoint.pt").read_bytes())
    before = files(tmp_path / "a")
    with pytest.raises(ContractError, match="belongs to another run"):
        train_twotower(
            data, emb, tmp_path / "a", TwoTowerConfig(epochs=4, **kw), resume=True, quiet=True
        )
    assert files(tmp_path / "a") == before
    assert len((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()) == 3


def test_a_non_finite_loss_stops_the_run_and_keeps_its_last_checkpoint(
    env, tmp_path, monkeypatch, nan_on_second_call
):
    data, emb = env["root"] / "data", env["root"] / "emb"
    kw = {**SMALL, "cache_dir": env["cache"]}
    train_twotower(data, emb, tmp_path / "r", TwoTowerConfig(epochs=1, **kw), quiet=True)
    before = files(tmp_path / "r")
    nan_on_second_call(tt, "sampled_softmax_loss")  # step 1
    with pytest.raises(ContractError) as err:
        train_twotower(
            data, emb, tmp_path / "r", TwoTowerConfig(epochs=2, **kw), resume=True, quiet=True
        )
    msg = str(err.value)
    assert "\n" not in msg and "epoch 1, step 1" in msg and "lower --lr" in msg, msg
    assert "--temperature" in msg
    assert files(tmp_path / "r") == before
    monkeypatch.undo()
    with pytest.raises(ContractError, match=r"training diverged: .*\(now 1e\+30\)"):
        train_twotower(
            data, emb, tmp_path / "huge", TwoTowerConfig(epochs=2, lr=1e30, **kw), quiet=True
        )


def test_nan_vectors_recall_nothing():
    class NaNTowers:
        def eval(self):
            return self

        def user(self, cat, dense):
            return torch.full((len(cat), 4), float("nan"))

        item = user

    users = (torch.zeros(3, 1), torch.zeros(3, 1))
    items = (torch.zeros(20, 1), torch.zeros(20, 1))
    labels = (torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    none = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    assert recall_at_k(NaNTowers(), users, items, labels, none, None) == 0.0


@pytest.mark.parametrize("option", ["target_type", "val_type"])
def test_an_unknown_item_type_is_named_before_any_run_folder(env, tmp_path, option):
    cfg = TwoTowerConfig(epochs=1, cache_dir=env["cache"], **SMALL, **{option: "nosuch"})
    flag = "--" + option.replace("_", "-")
    with pytest.raises(
        ContractError,
        match=rf"{flag} 'nosuch': unknown item type \(known: "
        r"audiobook, music, podcast\)",
    ):
        train_twotower(env["root"] / "data", env["root"] / "emb", tmp_path / "r", cfg, quiet=True)
    assert not (tmp_path / "r").exists()


def test_an_unknown_val_type_is_named_on_split_windows_too(env, tmp_path):
    split_dataset(env["root"] / "data", tmp_path / "split")
    cfg = TwoTowerConfig(epochs=1, cache_dir=env["cache"], val_type="nosuch", **SMALL)
    with pytest.raises(ContractError, match="--val-type 'nosuch': unknown item type"):
        train_twotower(
            tmp_path / "split" / "train", env["root"] / "emb", tmp_path / "r", cfg, quiet=True
        )
    assert not (tmp_path / "r").exists()
