"""``build-graph --engine spark``: the co-interaction plan of :mod:`.coint` in Spark SQL.

The same inputs, checks and graph as the polars engine, with the interactions never
loaded on the driver:

1. the items table is read and validated on the driver by the contract's reader (the
   graph's node tensors are assembled there anyway);
2. Spark reads ``interactions.parquet`` / ``.csv`` (CSV columns as strings, as the
   contract does) and validates every partition with the contract's own
   :func:`~audiograph.graphs.contract.normalize_interactions` (``mapInArrow``); unknown
   item ids are found by an anti-join with the item index;
3. per ``(user, item)``: total weight, latest ts; the user cap is ``ROW_NUMBER()`` over
   each user by (weight desc, ts desc nulls last, item) — or (ts, weight, item) for
   ``cap_by="recent"``;
4. self-join on user, ``GROUP BY`` item pair with the shared-user count, ``n_users >=
   min_users``; top-k per (node, neighbour type) by ``ROW_NUMBER()`` over (n_users, the
   pair hash of :func:`~audiograph.graphs.coint.co_interaction_edges`);
5. the union of both endpoints' choices, ``a < b``, written as partitioned parquet that
   the driver reads back.

Driver memory: the item table, its text features and the pairs (12 bytes each, plus the
directed, sorted copy of :func:`~audiograph.graphs.build.build_graph`: about 40 bytes per
undirected pair), never the interactions. With ``edge_shard_rows`` Spark also builds,
range-partitions and sorts the directed edges, and the driver streams them into edge
shards one part at a time. On a cluster the work folder must be one the executors write
and the driver reads (a shared mount).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from audiograph.core.errors import ContractError, contract_error, short_reason
from audiograph.graphs.contract import (
    check_signals,
    normalize_interactions,
    normalize_items,
    read_items,
)
from audiograph.graphs.csv_parts import first_lines, same_header, url_first_lines
from audiograph.graphs.tables import header_names

HAS_PYSPARK = importlib.util.find_spec("pyspark") is not None
_COLUMNS = ["user_id", "item_id", "weight", "signal", "ts"]
_SHIFT = 1 << 32
_PHI = 2654435761  # the pair-hash constant of coint._top_k


def spark_session(master: str = "local[*]") -> Any:
    """A Spark session on ``master`` (one-line errors when pyspark, pandas, pyarrow or Java
    is missing, or Spark does not start). Spark's own log and the stack traces of failed
    tasks are silenced (``AUDIOGRAPH_DEBUG=1`` shows them): bad input surfaces as the
    contract's one-line error."""
    for package in ("pyspark", "pandas", "pyarrow"):
        if not (HAS_PYSPARK if package == "pyspark" else importlib.util.find_spec(package)):
            raise ContractError(f"--engine spark needs {package}: pip install 'audiograph[spark]'")
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise ContractError(
            "--engine spark needs a Java runtime (17 or newer): install one "
            "(e.g. apt install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    from pyspark.sql import SparkSession

    # executors run this interpreter locally (on a cluster: one with audiograph installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName("audiograph build-graph")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if master.startswith("local"):  # a few partitions per core, not the cluster default;
        # the driver is the executor: a quarter of the RAM (Spark's default is 1 GB)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
        builder = builder.config("spark.driver.memory", f"{max(1, min(8, ram // 4 // 2**30))}g")
    try:
        with _jvm_stderr():
            spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM did not start or reach the master
        raise ContractError(
            f"--engine spark: cannot start Spark on master {master!r} ({short_reason(exc)})"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def _jvm_stderr() -> Iterator[None]:
    """While the JVM starts (it inherits this process's stderr for good, and so do the
    Python workers it forks), point file descriptor 2 at the null device, unless
    ``AUDIOGRAPH_DEBUG`` is set; py4j's Python-side logging is silenced too."""
    if os.environ.get("AUDIOGRAPH_DEBUG", "") not in ("", "0"):
        yield
        return
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def is_url(data_dir: str | Path) -> bool:
    """Whether ``data_dir`` is a URL for Spark (``file://``, ``s3a://``, ``hdfs://``, ...)
    rather than a local folder."""
    return "://" in str(data_dir)


def _table_file(spark: Any, data_dir: str, stem: str) -> str | None:
    """The ``stem`` table Spark reads: ``stem.parquet``, else ``stem.csv``, in the local
    folder or at the URL (checked through Spark's Hadoop file system); None when neither
    exists."""
    for ext in (".parquet", ".csv"):
        if not is_url(data_dir):
            if (Path(data_dir) / f"{stem}{ext}").exists():
                return str(Path(data_dir) / f"{stem}{ext}")
            continue
        url = f"{data_dir.rstrip('/')}/{stem}{ext}"
        path = spark._jvm.org.apache.hadoop.fs.Path(url)
        if path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path):
            return url
    return None


def _read(spark: Any, path: str) -> Any:
    """A Spark DataFrame of a parquet file, or of a CSV file with every column as text
    (as the contract reads CSV)."""
    if not path.endswith(".csv"):
        return spark.read.parquet(path)
    header = next(csv.reader([line]), []) if (line := _csv_header(spark, path)) else []
    names = header_names(header, path.rsplit("/", 1)[-1])
    reader = spark.read.option("header", True).option("inferSchema", False)
    if names != header:  # padded names (``a, b, c``): values padded alike, as the contract reads
        reader = reader.option("ignoreLeadingWhiteSpace", True)
        reader = reader.option("ignoreTrailingWhiteSpace", True)
    df = reader.csv(path)
    return df.toDF(*names) if len(names) == len(df.columns) else df


def _csv_header(spark: Any, path: str) -> str | None:
    """The header line of the CSV file ``path``, or the one every part file of the folder
    ``path`` starts with (Spark would map each part's columns by position onto the first
    part's names); None when there is no header. Only the first line of each part is read:
    in plain Python for a local path, through Spark's Hadoop file system for a URL."""
    lines = url_first_lines(spark, path) if is_url(path) else first_lines(Path(path))
    return same_header(lines, path.rstrip("/").rsplit("/", 1)[-1])


def read_items_any(data_dir: str | Path, master: str) -> pl.DataFrame:
    """The validated items table: the contract's reader for a local folder; for a URL,
    read by Spark and collected to the driver (the node table lives there anyway), then
    validated by the contract's own normalizer."""
    if not is_url(data_dir):
        return read_items(data_dir)
    from pyspark.errors import PySparkException

    spark = spark_session(master)
    path = _table_file(spark, str(data_dir), "items")
    if path is None:
        raise ContractError(f"{data_dir}: no items.parquet or items.csv")
    try:
        table = pl.from_arrow(_read(spark, path).toArrow())
    except PySparkException as exc:
        raise ContractError(f"{path}: cannot read the items table ({short_reason(exc)})") from None
    return normalize_items(table, path.rsplit("/", 1)[-1])


def _validated(spark: Any, path: str) -> Any:
    """The interactions of ``path`` as the contract normalizes them (partition-wise)."""
    from pyspark.sql import types as T

    name = Path(path).name
    raw = _read(spark, path)
    schema = T.StructType(
        [
            T.StructField("user_id", T.StringType()),
            T.StructField("item_id", T.StringType()),
            T.StructField("weight", T.DoubleType()),
            T.StructField("signal", T.StringType()),
            T.StructField("ts", T.LongType()),
        ]
    )

    def normalize(batches: Any) -> Any:
        for batch in batches:
            if batch.num_rows:
                df = normalize_interactions(pl.from_arrow(batch), name).select(_COLUMNS)
                yield from df.to_arrow().to_batches()

    return raw.mapInArrow(normalize, schema)


def _raised(exc: BaseException) -> ContractError | None:
    """The contract error an executor raised, from Spark's wrapped exception."""
    found = re.findall(r"ContractError: (.+)", str(exc))
    if not found:
        return None
    return ContractError(re.sub(r"\(row \d+:", "(example row:", found[-1].strip()))


def spark_pairs(
    data_dir: str | Path, items: pl.DataFrame, cfg: Any, work: Path, directed: bool = False
) -> tuple[pl.DataFrame | None, dict[str, Any]]:
    """Undirected pairs ``a < b`` (global item rows of ``items``) with ``n_users``, as
    :func:`~audiograph.graphs.coint.co_interaction_edges` computes them, and the input
    stats ``{"interactions", "dropped_unknown", "pairs"}``.

    ``work`` is an empty folder the executors write and the driver reads. With
    ``directed`` the pairs stay out of the driver: both directions go to
    ``work/edges/part-*.parquet`` as ``t, s, d, w`` (the frame of
    :func:`~audiograph.graphs.build._directed`), range-partitioned into parts of about
    ``cfg.edge_shard_rows`` rows, in ``(t, s, d)`` order across the part numbers; the
    returned pairs are then None.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    spark = spark_session(cfg.master)
    path = _table_file(spark, str(data_dir), "interactions")
    empty = pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32, "n_users": pl.UInt32})
    if path is None:
        return (None if directed else empty), {"interactions": 0, "dropped_unknown": {}, "pairs": 0}
    index = spark.createDataFrame(
        items.select(
            "item_id",
            item=pl.int_range(pl.len(), dtype=pl.Int64),
            t=pl.col("type_code").cast(pl.Int64),
            local=pl.col("node_index").cast(pl.Int64),
        ).to_arrow()
    )
    try:
        inter = _validated(spark, path).cache()
        stats = _input_stats(inter, index, Path(path).name, cfg.drop_unknown, F)
        check_signals(stats.pop("signals"), cfg.signals, Path(path).name)
        if cfg.signals is not None:
            inter = inter.where(F.col("signal").isin(cfg.signals))
        ui = inter.join(F.broadcast(index.select("item_id", "item")), "item_id")
        ui = ui.groupBy("user_id", "item").agg(
            F.sum("weight").alias("weight"), F.max("ts").alias("ts")
        )
        if cfg.user_cap is not None:
            first, second = ("weight", "ts") if cfg.cap_by == "weight" else ("ts", "weight")
            order = [
                F.col(first).desc_nulls_last(),
                F.col(second).desc_nulls_last(),
                F.col("item").asc(),
            ]
            rank = F.row_number().over(Window.partitionBy("user_id").orderBy(*order))
            ui = ui.withColumn("r", rank).where(F.col("r") <= cfg.user_cap)
        ui = ui.select("user_id", "item")
        left, right = ui.alias("l"), ui.select("user_id", F.col("item").alias("other"))
        keep = F.col("item") != F.col("other") if cfg.top_k else F.col("item") < F.col("other")
        counts = (
            left.join(right, "user_id")
            .where(keep)
            .groupBy("item", "other")
            .agg(F.count(F.lit(1)).alias("n_users"))
            .where(F.col("n_users") >= cfg.min_users)
        )
        if cfg.top_k:
            counts = _top_k(counts, index, cfg.top_k, F, Window)
        pairs = counts.select(
            F.least("item", "other").alias("a"), F.greatest("item", "other").alias("b"), "n_users"
        )
        pairs = pairs.groupBy("a", "b").agg(F.max("n_users").alias("n_users"))
        pairs.write.mode("overwrite").parquet(str(work / "pairs"))
        if directed:
            written = spark.read.parquet(str(work / "pairs"))
            stats["pairs"] = written.count()
            n_parts = max(1, -(-2 * stats["pairs"] // cfg.edge_shard_rows))
            _directed_edges(written, index, len(items["type_code"].unique()), F).repartitionByRange(
                n_parts, "t", "s", "d"
            ).sortWithinPartitions("t", "s", "d").write.mode("overwrite").parquet(
                str(work / "edges")
            )
            return None, stats
        files = sorted((work / "pairs").glob("*.parquet"))
        out = pl.concat([pl.read_parquet(f) for f in files]) if files else empty
    except (PySparkException, Py4JJavaError) as exc:
        if (err := _raised(exc)) is not None:
            raise err from None
        raise
    out = out.select(
        pl.col("a").cast(pl.UInt32), pl.col("b").cast(pl.UInt32), pl.col("n_users").cast(pl.UInt32)
    ).sort("a", "b")
    stats["pairs"] = out.height
    return out, stats


def _directed_edges(pairs: Any, index: Any, n_types: int, F: Any) -> Any:
    """Both directions of every pair as ``t = type(src) * n_types + type(dst)``, local
    ``s``, ``d`` and float ``w``."""
    both = pairs.select(F.col("a").alias("src"), F.col("b").alias("dst"), "n_users").unionByName(
        pairs.select(F.col("b").alias("src"), F.col("a").alias("dst"), "n_users")
    )
    src = index.select(
        F.col("item").alias("src"), F.col("t").alias("ts"), F.col("local").alias("s")
    )
    dst = index.select(
        F.col("item").alias("dst"), F.col("t").alias("td"), F.col("local").alias("d")
    )
    return (
        both.join(F.broadcast(src), "src")
        .join(F.broadcast(dst), "dst")
        .select(
            (F.col("ts") * n_types + F.col("td")).alias("t"),
            "s",
            "d",
            F.col("n_users").cast("float").alias("w"),
        )
    )


def _input_stats(inter: Any, index: Any, file: str, drop: bool, F: Any) -> dict[str, Any]:
    """Row count, unknown item ids (an error unless ``drop``) and the signals present."""
    unknown = inter.join(index.select("item_id"), "item_id", "left_anti")
    n_unknown = unknown.count()
    if n_unknown and not drop:
        row = unknown.limit(1).collect()[0].asDict()
        raise contract_error(
            file,
            "item_id",
            f"{n_unknown} rows reference item_ids not in the "
            "items table (use --drop-unknown to drop them)",
            row,
        )
    n = inter.count() - n_unknown
    if n_unknown and n == 0:
        raise ContractError(f"{file}: no rows left after dropping unknown item_ids")
    signals = sorted(r[0] for r in inter.select("signal").distinct().collect())
    return {"interactions": n, "dropped_unknown": {"interactions": n_unknown}, "signals": signals}


def _top_k(counts: Any, index: Any, k: int, F: Any, Window: Any) -> Any:
    """Each (item, type of other) keeps its ``k`` best by (n_users, pair hash); the hash
    ``((item ^ other) * PHI) mod 2^32`` is computed in 16-bit halves (no 64-bit overflow)."""
    x = F.col("item").bitwiseXOR(F.col("other"))
    hi, lo = _PHI >> 16, _PHI & 0xFFFF
    tie = (((x * hi) % _SHIFT) * (1 << 16) + x * lo) % _SHIFT
    types = F.broadcast(index.select(F.col("item").alias("other"), F.col("t").alias("dst_t")))
    order = Window.partitionBy("item", "dst_t").orderBy(F.col("n_users").desc(), tie.desc())
    return (
        counts.join(types, "other")
        .withColumn("r", F.row_number().over(order))
        .where(F.col("r") <= k)
        .select("item", "other", "n_users")
    )
