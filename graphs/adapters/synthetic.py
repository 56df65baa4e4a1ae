"""Synthetic audio catalog: the embedded default dataset (no input files needed).

The generator's rule (what the text shows, what it hides, how choices are drawn):

* **Topics, visible.** Every item has one of ``topics`` topics (Zipf-like popularity; the
  item feature column ``topic``) and a lognormal popularity. Its title, description and
  (clean) tags are words of the topic's vocabulary; each title and description word is a
  random word instead with ``WORD_NOISE`` (0.15).
* **Tastes, hidden and cross-type** (``tastes=K > 1``). Every item has one of K tastes
  (uniform): its latent cell ``(topic, taste)`` lies in one space for every type. A user
  has one taste per topic, the same for music, podcasts and audiobooks, so the cells of
  their music predict their audiobooks: co-listening links a cell's items across types,
  the text does not. The text shows a taste in part: ``TASTE_HINT`` (0.3) of the items
  end their description with a style word (``STYLES``, shared by all topics), their
  taste's except with ``WORD_NOISE`` (then a random taste's).
* **Choices.** A user has a mix of 1-3 topics (Dirichlet), an activity level and a type
  propensity: all stream music, ~60 % podcasts, ~10 % audiobooks (the sparse type). An
  event picks a type, a topic from the mix (any topic by popularity with ``TOPIC_NOISE``,
  0.1), the user's taste in it (a uniform one with ``TASTE_NOISE``, 0.2), then an item of
  that (type, topic, taste) by popularity: within a type, item ``i`` has the chance
  ``p_u(topic_i) * ((1 - TASTE_NOISE) [taste_u(topic_i) = taste_i] + TASTE_NOISE / K) *
  share_i``, ``share_i`` its popularity share in its (type, topic, taste) group. Repeats
  merge into ``stream`` rows (weight = plays), plus ``follow`` (podcasts) and ``preview``
  (music, audiobooks) rows of weight 1, over 180 days. Queries are topic phrases
  (relevant: the topic's items tagged with a word of the phrase).
* **Truth.** :func:`prepare_synthetic` writes it beside the tables (``truth/users.parquet``:
  ``topic_p``, ``taste`` per topic; ``truth/items.parquet``: ``topic``, ``taste``,
  ``share``); no reader, split or training stage reads it. :func:`oracle_vectors` scores
  by it, for benchmark sanity only.

Vectorized numpy/polars, deterministic per ``seed``; tastes and hints use a stream of their
own, so ``tastes=1`` gives the frames of earlier versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiograph.core.atomic import atomic_dir
from audiograph.core.config import configure
from audiograph.core.errors import ContractError
from audiograph.graphs.adapters.common import DATASET, claim_dataset, save_dataset
from audiograph.graphs.adapters.synthetic_truth import oracle_vectors  # noqa: F401 (public here)
from audiograph.graphs.adapters.synthetic_vocab import COUNTRIES, FILLER, STYLES, TEMPLATES, TOPICS
from audiograph.graphs.config import SyntheticConfig

DEFAULT_ITEMS: dict[str, int] = {"music": 2000, "podcast": 1000, "audiobook": 300}
T0 = 1_700_000_000  # start of the interaction window (unix seconds)
DAY = 86_400
WINDOW_S = 180 * DAY
# per type: (share of users using it, relative event rate for them, mean replays per event)
BEHAVIOUR = {"music": (1.0, 1.0, 1.0), "podcast": (0.6, 0.8, 0.2), "audiobook": (0.1, 0.6, 1.5)}
OTHER_BEHAVIOUR = (0.3, 0.6, 0.5)  # any other item type
TOPIC_NOISE = 0.1  # chance an event ignores the user's topic mix
TASTE_NOISE = 0.2  # chance an event ignores the user's hidden taste (tastes > 1)
WORD_NOISE = 0.15  # chance a title/description word is a random (off-topic/filler) word
TASTE_HINT = 0.3  # share of items whose description ends with a style word (tastes > 1)
TRUTH = "truth"  # folder of the hidden truth in a prepared dataset (benchmark sanity only)
SIGNALS = ("stream", "follow", "preview")
QUERY_CAP = 50  # relevant items per query


def topic_table(topics: int) -> tuple[list[str], list[tuple[str, ...]]]:
    """Names and vocabularies of ``topics`` topics: topic ``t`` is entry ``t % len(TOPICS)``
    of the table, names and words suffixed with ``2``, ``3``... beyond it to stay distinct."""
    names, vocab = [], []
    for t in range(topics):
        name, words = TOPICS[t % len(TOPICS)]
        k = t // len(TOPICS) + 1
        names.append(name if k == 1 else f"{name} {k}")
        vocab.append(words if k == 1 else tuple(f"{w}{k}" for w in words))
    return names, vocab


def style_words(tastes: int) -> list[str]:
    """The style word of each of ``tastes`` tastes (suffixed beyond :data:`STYLES`)."""
    return [
        STYLES[k % len(STYLES)] + (str(k // len(STYLES) + 1) if k >= len(STYLES) else "")
        for k in range(tastes)
    ]


def generate_synthetic(
    cfg: SyntheticConfig | None = None, **options: Any
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Generate ``(items, interactions, users, queries)`` frames following the contract;
    ``cfg`` (:class:`~audiograph.graphs.config.SyntheticConfig`, or its fields as
    ``options``) sets the catalog's size, topics, tastes and seed."""
    return _generate(configure(SyntheticConfig, cfg, options, "generate_synthetic"))[:4]


def _generate(cfg: SyntheticConfig):
    """The four frames of :func:`generate_synthetic` and the truth ``(users, items)``."""
    counts = dict(DEFAULT_ITEMS if cfg.items is None else cfg.items)
    users, seed, topics, tastes = cfg.users, cfg.seed, cfg.topics, cfg.tastes
    interactions_per_user = cfg.interactions_per_user
    rng = np.random.default_rng(seed)
    vocab = topic_table(topics)[1]
    topic_p = rng.permutation(1.0 / np.arange(1, topics + 1) ** 0.9)
    topic_p /= topic_p.sum()
    trng = np.random.default_rng([seed, 7])  # tastes and hints: a stream of their own
    n_items = sum(counts.values())
    item_taste = trng.integers(0, tastes, n_items)
    user_taste = trng.integers(0, tastes, (users, topics))
    style = np.where(
        trng.random(n_items) < WORD_NOISE, trng.integers(0, tastes, n_items), item_taste
    )
    hint = np.where((trng.random(n_items) < TASTE_HINT) & (tastes > 1), style, -1)
    items_df, item_type, pop = _items(rng, counts, vocab, topic_p, hint, style_words(tastes))
    top, mix = _user_topics(rng, users, topic_p)
    users_df = _users(rng, top, mix, topics)
    item_topic = items_df["topic"].to_numpy()
    taste = None if tastes == 1 else (item_taste, user_taste, tastes, trng)
    inter = _interactions(
        rng,
        list(counts),
        item_type,
        item_topic,
        pop,
        top,
        mix,
        topic_p,
        interactions_per_user,
        taste,
    )
    inter = inter.select(
        user_id=pl.concat_str(pl.lit("u"), pl.col("_u").cast(pl.Utf8)),
        item_id=items_df["item_id"].gather(inter["_i"]),
        weight="weight",
        signal=pl.Series(SIGNALS).gather(inter["_s"]),
        ts="ts",
    )
    queries = _queries(rng, items_df, vocab, pop)
    mix_t = np.zeros((users, topics))
    np.put_along_axis(mix_t, top, mix, axis=1)
    group = (item_type * topics + item_topic) * tastes + item_taste
    truth = (
        users_df.select("user_id").with_columns(
            topic_p=pl.Series((1 - TOPIC_NOISE) * mix_t + TOPIC_NOISE * topic_p).cast(
                pl.List(pl.Float64)
            ),
            taste=pl.Series(user_taste).cast(pl.List(pl.Int64)),
        ),
        items_df.select(
            "item_id", "topic", taste=item_taste, share=pop / np.bincount(group, pop)[group]
        ),
    )
    return items_df, inter, users_df, queries, truth


def _items(rng, counts, vocab, topic_p, hint, styles):
    """``(items, item type code [I], popularity [I])``: topic, title (2-4 words), templated
    description (its last word the style ``hint[i]`` where that is >= 0), 2-4 tags."""
    lens = np.array([len(v) for v in vocab])
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    n_words = lens.sum() + len(FILLER)  # random words: topic words and filler, no style
    words = pl.Series([w for v in vocab for w in v] + list(FILLER) + styles)
    frames, lo = [], 0
    for type_, n in counts.items():
        topic = rng.choice(len(vocab), size=n, p=topic_p)
        m = min(n, len(vocab))
        topic[:m] = rng.permutation(len(vocab))[:m]  # every topic present when n >= topics
        keys = rng.random((n, lens.max()))  # distinct topic words: shuffle the vocabulary
        keys[np.arange(lens.max()) >= lens[topic][:, None]] = 2.0
        pick = offs[topic][:, None] + np.argsort(keys, axis=1)[:, :7]
        noisy = rng.random((n, 7)) < WORD_NOISE  # text columns: 0-3 title, 4-6 description
        text = np.where(noisy, rng.integers(0, n_words, (n, 7)), pick)
        h, lo = hint[lo : lo + n], lo + n
        text[:, 6] = np.where(h >= 0, n_words + h, text[:, 6])
        cols = {f"w{j}": words.gather(text[:, j]) for j in range(7)}
        cols |= {f"t{j}": words.gather(pick[:, j + 2]) for j in range(4)}  # clean tags
        cols |= {"nt": rng.integers(2, 5, n), "ng": rng.integers(2, 5, n)}
        cols |= {"tmpl": rng.integers(0, 2, n), "topic": topic.astype(np.int64)}
        desc = [pl.col(f"w{j}") for j in (4, 5, 6)]
        templates = TEMPLATES.get(type_, (f"A {type_} about {{}}, {{}} and {{}}.",) * 2)
        title = [pl.when(pl.col("nt") > j).then(pl.col(f"w{j}")) for j in range(4)]
        tags = [pl.when(pl.col("ng") > j).then(pl.col(f"t{j}")) for j in range(4)]
        frames.append(
            pl.DataFrame(cols).select(
                item_id=pl.concat_str(pl.lit(f"{type_}:"), pl.int_range(n).cast(pl.Utf8)),
                item_type=pl.lit(type_),
                title=pl.concat_str(title, separator=" ", ignore_nulls=True).str.to_titlecase(),
                description=pl.when(pl.col("tmpl") == 0)
                .then(_fill(templates[0], desc))
                .otherwise(_fill(templates[1], desc)),
                tags=pl.concat_list(tags).list.drop_nulls(),
                topic="topic",
            )
        )
    item_type = np.repeat(np.arange(len(counts)), list(counts.values()))
    return pl.concat(frames), item_type, rng.lognormal(0.0, 1.5, item_type.size)


def _fill(template: str, cols: list[pl.Expr]) -> pl.Expr:
    parts = template.split("{}")
    exprs = [pl.lit(parts[0])]
    for col, part in zip(cols, parts[1:], strict=True):
        exprs += [col, pl.lit(part)]
    return pl.concat_str(exprs)


def _user_topics(rng, users: int, topic_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's 1-3 preferred topics (Gumbel top-k by popularity) and Dirichlet mix."""
    m = min(3, topic_p.size)
    gumbel = np.log(topic_p)[None, :] + rng.gumbel(size=(users, topic_p.size))
    top = np.argsort(-gumbel, axis=1)[:, :m]
    k = np.minimum(rng.choice([1, 2, 3], size=users, p=[0.4, 0.4, 0.2]), m)
    mix = rng.gamma(1.0, size=(users, m))
    mix[np.arange(m) >= k[:, None]] = 0.0
    return top, mix / mix.sum(axis=1, keepdims=True)


def _users(rng, top: np.ndarray, mix: np.ndarray, topics: int) -> pl.DataFrame:
    """Users frame: ``country`` and ``age`` correlate weakly with the main topic."""
    n = top.shape[0]
    main = top[np.arange(n), mix.argmax(axis=1)]
    country_p = 1.0 / np.arange(1, len(COUNTRIES) + 1)
    country = rng.choice(len(COUNTRIES), size=n, p=country_p / country_p.sum())
    country = np.where(rng.random(n) < 0.3, rng.integers(0, len(COUNTRIES), topics)[main], country)
    age = 34 + rng.uniform(-8, 8, topics)[main] + rng.normal(0, 11, n)
    return pl.DataFrame({"_u": np.arange(n)}).select(
        user_id=pl.concat_str(pl.lit("u"), pl.col("_u").cast(pl.Utf8)),
        country=pl.Series(COUNTRIES).gather(country),
        age=np.clip(np.round(age), 16, 80).astype(np.int64),
    )


def _interactions(rng, types, item_type, item_topic, pop, top, mix, topic_p, per_user, taste):
    """Rows ``_u, _i, weight, _s (signal code), ts``; vectorized over all events."""
    n_users, n_items, n_topics = top.shape[0], item_type.size, topic_p.size
    prop, rate, replay = np.array([BEHAVIOUR.get(t, OTHER_BEHAVIOUR) for t in types]).T
    active = rng.random((n_users, len(types))) < prop
    active[:, 0] |= ~active.any(axis=1)
    type_cdf = np.cumsum(active * rate, axis=1)
    type_cdf /= type_cdf[:, -1:]
    sigma = 1.0  # activity: 1 + Poisson(lognormal) with mean per_user
    lam = rng.lognormal(np.log(max(per_user - 1, 1e-3)) - sigma**2 / 2, sigma, n_users)
    uidx = np.repeat(np.arange(n_users, dtype=np.int32), 1 + rng.poisson(lam))
    n = uidx.size
    u = rng.random(n)
    etype = sum((u > type_cdf[:, j][uidx]).astype(np.int64) for j in range(len(types) - 1))
    u, mix_cdf = rng.random(n), np.cumsum(mix, axis=1)
    slot = sum((u > mix_cdf[:, j][uidx]).astype(np.int64) for j in range(mix.shape[1] - 1))
    etopic = top[uidx, slot]
    noise = rng.random(n) < TOPIC_NOISE
    etopic[noise] = rng.choice(n_topics, size=int(noise.sum()), p=topic_p)
    # item within (type, topic[, taste]) proportional to popularity: one CDF with per-group
    # offsets
    group = item_type * n_topics + item_topic
    size = np.bincount(group, minlength=len(types) * n_topics)
    fallback = size.reshape(len(types), n_topics).argmax(axis=1)  # for an empty group
    etopic = np.where(size[etype * n_topics + etopic] == 0, fallback[etype], etopic)
    g = etype * n_topics + etopic
    if taste is not None:  # refine the group by the hidden taste
        item_taste, user_taste, k, trng = taste
        etaste = np.where(
            trng.random(n) < TASTE_NOISE, trng.integers(0, k, n), user_taste[uidx, etopic]
        )
        group = group * k + item_taste
        size = np.bincount(group, minlength=len(types) * n_topics * k)
        by_taste = size.reshape(-1, k)
        etaste = np.where(by_taste[g, etaste] == 0, by_taste[g].argmax(axis=1), etaste)
        g = g * k + etaste
    order = np.argsort(group, kind="stable")
    end = np.cumsum(size)
    start = end - size
    cum = np.cumsum(pop[order])
    base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    total = cum[np.maximum(end - 1, 0)] - base
    pos = np.searchsorted(cum, base[g] + rng.random(n) * total[g], side="right")
    key = uidx.astype(np.int64) * n_items + order[np.clip(pos, start[g], end[g] - 1)]
    ts = T0 + rng.integers(0, WINDOW_S, n)
    o = np.argsort(key, kind="stable")  # events come grouped by user: nearly sorted, fast
    key, ts = key[o], ts[o]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # one stream row per pair
    choices, ts = np.diff(np.r_[first, n]), np.minimum.reduceat(ts, first)
    su, si = key[first] // n_items, key[first] % n_items
    tidx = item_type[si]
    plays = choices + rng.poisson(replay[tidx] * choices)
    r, shift = rng.random(first.size), rng.integers(0, 7 * DAY, first.size)
    fol = (tidx == _index(types, "podcast")) & (r < 1 - np.exp(-0.3 * plays))
    pre = np.isin(tidx, [_index(types, "music"), _index(types, "audiobook")]) & (r < 0.2)
    cols = {
        "_u": np.concatenate([su, su[fol], su[pre]]),
        "_i": np.concatenate([si, si[fol], si[pre]]),
        "weight": np.concatenate([plays, np.ones(fol.sum() + pre.sum())]).astype(np.float64),
        "_s": np.repeat(np.arange(3, dtype=np.int8), [first.size, fol.sum(), pre.sum()]),
        "ts": np.concatenate(
            [
                ts,
                np.minimum(ts[fol] + shift[fol], T0 + WINDOW_S - 1),
                np.maximum(ts[pre] - shift[pre] // 2, T0),
            ]
        ),
    }
    o = np.argsort(cols["_u"], kind="stable")
    return pl.DataFrame({k: v[o] for k, v in cols.items()})


def _index(types: list[str], name: str) -> int:
    return types.index(name) if name in types else -1


def _queries(rng, items: pl.DataFrame, vocab, pop: np.ndarray) -> pl.DataFrame:
    """Per topic two 1-word and two 2-word phrases; relevant = the topic's items tagged
    with a word of the phrase, the ``QUERY_CAP`` most popular of them."""
    rows = []
    for t, words in enumerate(vocab):
        p = [words[j] for j in rng.permutation(len(words))[:6]]
        for k, q in enumerate(([p[0]], [p[1]], p[2:4], p[4:6])):
            rows += [(4 * t + k, " ".join(q), t, w) for w in q]
    phrases = pl.DataFrame(rows, schema=["_q", "query", "topic", "tags"], orient="row")
    tagged = items.select("item_id", "topic", "tags", _pop=pop, _idx=pl.int_range(pl.len()))
    relevant = tagged.explode("tags").join(phrases, on=["topic", "tags"])
    relevant = relevant.unique(["query", "item_id"]).sort(
        ["_q", "_pop", "_idx"], descending=[False, True, False]
    )
    return relevant.group_by("_q", maintain_order=True).head(QUERY_CAP).select("query", "item_id")


def prepare_synthetic(
    out: str | Path, cfg: SyntheticConfig | None = None, **options: Any
) -> dict[str, Any]:
    """Generate the synthetic dataset (see :func:`generate_synthetic`), write it into
    ``out`` with :func:`~audiograph.graphs.adapters.common.save_dataset`, the hidden truth
    into ``out/truth/`` (for :func:`oracle_vectors` only), and return the manifest."""
    claim_dataset(out)
    cfg = configure(SyntheticConfig, cfg, options, "prepare_synthetic")
    items_df, inter, users_df, queries, truth = _generate(cfg)
    summary = {
        "users": cfg.users,
        "items": dict(DEFAULT_ITEMS if cfg.items is None else cfg.items),
        "seed": cfg.seed,
        "topics": topic_table(cfg.topics)[0],
        "interactions_per_user": cfg.interactions_per_user,
        "tastes": cfg.tastes,
        "rows_per_signal": dict(inter.group_by("signal").len().sort("signal").iter_rows()),
        "truth": {
            "users": f"{TRUTH}/users.parquet",
            "items": f"{TRUTH}/items.parquet",
            "topic_noise": TOPIC_NOISE,
            "taste_noise": TASTE_NOISE,
            "taste_hint": TASTE_HINT if cfg.tastes > 1 else 0.0,
            "word_noise": WORD_NOISE,
        },
    }
    queries = queries if queries.height else None  # a tiny catalog may tag no query word
    with atomic_dir(out, DATASET) as tmp:  # the tables staged, then moved beside the truth
        stage = tmp / "tables"
        manifest = save_dataset(stage, "synthetic", items_df, inter, users_df, queries, summary)
        for f in sorted(stage.iterdir()):
            f.rename(tmp / f.name)
        stage.rmdir()
        (tmp / TRUTH).mkdir()
        for frame, name in zip(truth, ("users", "items"), strict=True):
            frame.write_parquet(tmp / summary["truth"][name])
    return manifest


def parse_item_counts(spec: str) -> dict[str, int]:
    """Parse ``"music=2000,podcast=1000,audiobook=300"`` into ``{type: count}``.

    Raises:
        ContractError: on an empty entry, a missing ``=``, a count that is not an integer
            >= 1, or a type given twice.
    """
    counts: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        name, eq, value = (s.strip() for s in part.partition("="))
        if not (name and eq and value.isdigit() and int(value) > 0) or name in counts:
            raise ContractError(
                f"item counts '{spec}': bad entry '{part}' (expected distinct TYPE=N "
                "entries with N >= 1, e.g. music=2000,podcast=1000)"
            )
        counts[name] = int(value)
    return counts
