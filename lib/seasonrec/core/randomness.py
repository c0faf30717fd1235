"""Deterministic per-row randomness: a uniform in [0, 1) from a hash of the row's keys.

Unlike `F.rand(seed)` or a NumPy generator, the value depends only on the keys and the seed, never on
partitioning, task order or which rows a worker holds, so a generated data set (or a negative sample,
or a subsample of training rows) is identical on 1 core or 100. ``uniform`` is the Spark column,
``hashed_uniform`` its NumPy counterpart for code running inside ``applyInPandas``.
"""

from __future__ import annotations

import zlib

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

_MANTISSA = (1 << 53) - 1


def uniform(seed: int, salt: str, *keys: Column | str) -> Column:
    """U[0,1) as a double, different for every (seed, salt, keys)."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *[F.col(k) if isinstance(k, str) else k for k in keys])
    return hashed.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


def hashed_uniform(salt: str, key: str, numbers: np.ndarray) -> np.ndarray:
    """U[0,1) for each integer of ``numbers`` under the string ``key`` (NumPy; splitmix64 of
    crc32(salt|key) and the number): the same (salt, key, number) always gives the same value.

    Example: keep about 30% of an item's training origins, the same ones on every run and worker::

        origins[hashed_uniform("gbm_training_origins", item_id, origins) < 0.3]
    """
    z = np.asarray(numbers).astype(np.uint64) + np.uint64(zlib.crc32(f"{salt}|{key}".encode()) << 32)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def bins_from_weights(df, key_cols: list[str], value_col: str, weight_col: str, n_bins: int):
    """Inverse-CDF lookup table: for each key, `n_bins` rows (bin 0..n_bins-1) -> value.

    Sampling then becomes an equi-join on (key, floor(u * n_bins)) instead of a range join, which
    keeps generation and negative sampling linear in the number of events.
    """
    from pyspark.sql import Window

    by_key = Window.partitionBy(*key_cols) if key_cols else Window.partitionBy(F.lit(0))
    ordered = by_key.orderBy(value_col).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    cum = (df.where(F.col(weight_col) > 0)
           .withColumn("_total", F.sum(weight_col).over(by_key))
           .withColumn("_hi", F.sum(weight_col).over(ordered) / F.col("_total"))
           .withColumn("_lo", F.col("_hi") - F.col(weight_col) / F.col("_total")))
    # Bin b covers the value whose CDF interval contains the bin centre (b + 0.5) / n_bins.
    first_bin = F.ceil(F.col("_lo") * n_bins - 0.5).cast("int")
    last_bin = F.least(F.ceil(F.col("_hi") * n_bins - 0.5).cast("int"), F.lit(n_bins)) - 1
    return (cum.where(last_bin >= first_bin)
            .select(*key_cols, value_col, F.explode(F.sequence(first_bin, last_bin)).alias("bin")))
