"""Deterministic per-row randomness for Spark: a uniform in [0, 1) from a hash of the row's keys.

Unlike `F.rand(seed)`, the value depends only on the keys and the seed, never on partitioning or
task order, so a generated data set (or a negative sample) is identical on 1 core or 100.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_MANTISSA = (1 << 53) - 1


def uniform(seed: int, salt: str, *keys: Column | str) -> Column:
    """U[0,1) as a double, different for every (seed, salt, keys)."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *[F.col(k) if isinstance(k, str) else k for k in keys])
    return hashed.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


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
