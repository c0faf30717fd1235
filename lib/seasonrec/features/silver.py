"""bronze_transactions -> silver_interactions and silver_items.

silver_interactions: user_id (HMAC-SHA256 of the raw id keyed by the salt; null for guest checkouts, see
`personal`), item_id, ts, date, week_start (Monday), quantity (net of returns, > 0), price, revenue, country
(ISO-2 where known), invoice; partitioned by event_month.
silver_items: item_id, title, category, price.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seasonrec.config import ConfigError, FeaturesConfig
from seasonrec.data.ingest import FLOAT_EXPORTED_ID

log = logging.getLogger("seasonrec")

# Country names seen in retail exports -> ISO 3166 alpha-2 (hemisphere and holiday lookups use codes).
COUNTRY_CODES = {
    "UNITED KINGDOM": "GB", "UK": "GB", "GERMANY": "DE", "FRANCE": "FR", "EIRE": "IE", "IRELAND": "IE",
    "SPAIN": "ES", "NETHERLANDS": "NL", "BELGIUM": "BE", "SWITZERLAND": "CH", "AUSTRALIA": "AU",
    "PORTUGAL": "PT", "NORWAY": "NO", "CHANNEL ISLANDS": "JE", "FINLAND": "FI", "ITALY": "IT", "CYPRUS": "CY",
    "SWEDEN": "SE", "JAPAN": "JP", "AUSTRIA": "AT", "POLAND": "PL", "DENMARK": "DK", "ISRAEL": "IL",
    "HONG KONG": "HK", "SINGAPORE": "SG", "CANADA": "CA", "ICELAND": "IS", "GREECE": "GR", "MALTA": "MT",
    "UNITED ARAB EMIRATES": "AE", "LEBANON": "LB", "LITHUANIA": "LT", "BRAZIL": "BR", "USA": "US",
    "UNITED STATES": "US", "BAHRAIN": "BH", "CZECH REPUBLIC": "CZ", "SAUDI ARABIA": "SA", "CHINA": "CN",
    "NEW ZEALAND": "NZ", "SOUTH AFRICA": "ZA", "RSA": "ZA",
}


# Environments where a missing salt falls back to features.default_salt (known to everyone, so the
# pseudonyms are reversible by hashing candidate ids): laptops and the test suite only.
DEV_ENVS = ("local", "test")
HMAC_BLOCK_BYTES = 64  # SHA-256's block size (RFC 2104's B)
PSEUDONYM_CHARS = 24  # hex characters kept of the HMAC (96 bits)


# How silver's user_id was computed, stored as a property of silver_interactions by every write:
# rows pseudonymised another way (the unkeyed sha256 of seasonrec before it, no property) never match
# these, so they must not be mixed in one table.
PSEUDONYM_PROPERTY = "seasonrec.pseudonym"
PSEUDONYM_SCHEME = "hmac-sha256-v1"


def pseudonym_scheme_problem(properties: dict[str, str]) -> str | None:
    """Why rows pseudonymised by this code must not be added to a table with these properties
    (another or no recorded `PSEUDONYM_SCHEME`), as one line; None when they may."""
    found = properties.get(PSEUDONYM_PROPERTY)
    if found == PSEUDONYM_SCHEME:
        return None
    written = f"pseudonym scheme '{found}'" if found else "no recorded pseudonym scheme (an older seasonrec)"
    return (f"silver_interactions was written with {written}, this code writes '{PSEUDONYM_SCHEME}': its user ids "
            "would not match; rebuild silver with `seasonrec features` without --since")


class MissingSaltError(ConfigError):
    """The pseudonymisation salt is not set where the dev default must not be used."""


def resolve_salt(salt_env: str, default_salt: str, env: str | None) -> str:
    """The salt from the environment variable ``salt_env``; without it, ``default_salt`` in a
    `DEV_ENVS` environment (with a warning) and `MissingSaltError` (one line naming the variable)
    anywhere else: a known salt would let anyone recompute a customer's pseudonym."""
    value = os.environ.get(salt_env)
    if value:
        return value
    if env not in DEV_ENVS:
        raise MissingSaltError(f"{salt_env} is not set: env '{env}' pseudonymises user ids with a secret salt "
                               f"(set {salt_env}; only env {'/'.join(DEV_ENVS)} fall back to "
                               "features.default_salt)")
    log.warning("%s is not set; pseudonymizing users with features.default_salt (fine for dev only)", salt_env)
    return default_salt


def salt(config: FeaturesConfig, env: str | None) -> str:
    """The pseudonymization salt of a job running in config ``env`` (`resolve_salt`).

    It is only ever a literal inside the Spark plan; no table stores it.
    """
    return resolve_salt(config.salt_env, config.default_salt, env)


def _hmac_pads(salt_value: str) -> tuple[bytes, bytes]:
    """RFC 2104's (K xor ipad, K xor opad) for key ``salt_value`` (UTF-8; hashed first when longer
    than a block, then zero-padded to one)."""
    key = salt_value.encode("utf-8")
    if len(key) > HMAC_BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key.ljust(HMAC_BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonymize(user: Column, salt_value: str) -> Column:
    """Spark: the pseudonym of a normalised raw user id column (null stays null), HMAC-SHA256 keyed
    by the salt, hex, first `PSEUDONYM_CHARS` characters; equal to `pseudonym` in Python. The padded
    keys are driver-side constants; the two SHA-256 passes run in Spark (``sha2`` over binary)."""
    inner_pad, outer_pad = (F.unhex(F.lit(pad.hex())) for pad in _hmac_pads(salt_value))
    inner = F.sha2(F.concat(inner_pad, F.encode(user.cast("string"), "UTF-8")), 256)
    outer = F.sha2(F.concat(outer_pad, F.unhex(inner)), 256)
    return F.substring(outer, 1, PSEUDONYM_CHARS)


def pseudonym(raw_user: str, salt_value: str) -> str:
    """The silver ``user_id`` of one raw customer id, computed in Python (a server request):
    the same normalisation as ingest (``'17850.0'`` -> ``'17850'``) and the same keyed hash as
    `pseudonymize` (``hmac.new(salt, user, sha256)``)."""
    user = re.sub(FLOAT_EXPORTED_ID, r"\1", str(raw_user).strip())
    return hmac.new(salt_value.encode("utf-8"), user.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def country_code_of(country: str | None) -> str | None:
    """`country_code` for one value in Python: ISO-2 code of a country name or code, None stays None."""
    if country is None:
        return None
    upper = str(country).strip().upper()
    return COUNTRY_CODES.get(upper, upper)


def personal(interactions: DataFrame) -> DataFrame:
    """The rows of `interactions` with a known user: what user features, training examples and
    personal evaluation truth are built from. Guest rows (user_id null) still count for item demand,
    popularity and co-purchase baskets."""
    return interactions.where(F.col("user_id").isNotNull())


def country_code(country: Column) -> Column:
    """Column of country codes: names known to ``COUNTRY_CODES`` mapped to ISO-3166 alpha-2, anything else trimmed and
    upper-cased."""
    upper = F.upper(F.trim(country))
    mapping = F.create_map(*[F.lit(x) for pair in COUNTRY_CODES.items() for x in pair])
    return F.coalesce(mapping[upper], F.when(F.length(upper) == 2, upper), upper)


def product_rows(bronze: DataFrame, config: FeaturesConfig) -> DataFrame:
    """Drop non-product codes (postage, fees, manual adjustments) by the configured regex."""
    return bronze.where(~F.col("item_raw").rlike(config.non_product_pattern))


def net_returns(rows: DataFrame) -> DataFrame:
    """Purchases with returns netted: a return (negative quantity) is matched to the same user's latest
    purchase of the item at or before it (guest returns to the latest guest purchase of the item), and
    reduces that purchase (never below zero); purchases fully returned disappear. Time-local on purpose:
    a return never touches a later purchase, so rebuilding months from M on gives the same rows as a
    full rebuild.
    """
    pair = ["user_raw", "item_raw"]
    purchases = rows.where((F.col("quantity") > 0) & (F.col("price") > 0))
    events = rows.where(F.col("quantity") != 0).select(
        *pair, "ts", "row_hash", "quantity", (F.col("quantity") < 0).cast("int").alias("is_return"))
    so_far = (Window.partitionBy(*pair).orderBy("ts", "is_return", "row_hash")
              .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    matched = (events.withColumn("purchase_hash", F.last(F.when(F.col("is_return") == 0, F.col("row_hash")), True)
                                 .over(so_far))
               .where((F.col("is_return") == 1) & F.col("purchase_hash").isNotNull())
               .groupBy(F.col("purchase_hash").alias("row_hash")).agg(F.sum(-F.col("quantity")).alias("returned")))
    returned = F.least(F.coalesce("returned", F.lit(0.0)), F.col("quantity"))
    netted = purchases.join(matched, "row_hash", "left").withColumn("quantity", F.col("quantity") - returned)
    return netted.where(F.col("quantity") > 0).drop("returned")


def interactions(bronze: DataFrame, config: FeaturesConfig, salt_value: str) -> DataFrame:
    """``silver_interactions`` from bronze: product rows only, returns netted, users pseudonymised with ``salt_value``
    (guests stay null).

    Columns: user_id, item_id, ts, date, week_start, quantity, price, revenue, country (code), invoice, event_month
    (``yyyy-MM``).
    """
    rows = net_returns(product_rows(bronze, config))
    return rows.select(
        pseudonymize(F.col("user_raw"), salt_value).alias("user_id"),
        F.col("item_raw").alias("item_id"),
        "ts",
        F.to_date("ts").alias("date"),
        F.date_trunc("week", "ts").cast("date").alias("week_start"),
        F.col("quantity"),
        F.col("price"),
        F.round(F.col("quantity") * F.col("price"), 4).alias("revenue"),
        country_code(F.col("country")).alias("country"),
        F.col("invoice"),
        F.date_format("ts", "yyyy-MM").alias("event_month"),
    )


def keyword_category(description: Column, keywords: dict[str, list[str]]) -> Column:
    """String column: the first category of ``keywords`` (in dict order) with a keyword (or its plural) as a whole word
    of the upper-cased ``description``; ``"other"`` when none matches."""
    upper = F.upper(F.coalesce(description, F.lit("")))
    result: Column = F.lit("other")
    for category, words in reversed(list(keywords.items())):
        pattern = r"\b(" + "|".join(w.replace("-", r"\-") for w in words) + r")S?\b"
        result = F.when(upper.rlike(pattern), F.lit(category)).otherwise(result)
    return result


def items(bronze: DataFrame, config: FeaturesConfig) -> DataFrame:
    """One row per product: most frequent description, given or keyword category, median price."""
    rows = product_rows(bronze, config).where(F.col("quantity") > 0)
    def most_frequent(column: str, alias: str) -> DataFrame:
        by_item = Window.partitionBy("item_raw").orderBy(F.col("n").desc(), F.col(column))
        return (rows.where(F.col(column).isNotNull()).groupBy("item_raw", column).agg(F.count("*").alias("n"))
                .withColumn("r", F.row_number().over(by_item)).where("r = 1")
                .select("item_raw", F.col(column).alias(alias)))

    titles = most_frequent("description", "title")
    given = most_frequent("category", "given_category")
    prices = rows.where(F.col("price") > 0).groupBy("item_raw").agg(F.percentile_approx("price", 0.5).alias("price"))
    return (rows.select("item_raw").distinct()
            .join(titles, "item_raw", "left").join(given, "item_raw", "left").join(prices, "item_raw", "left")
            .select(F.col("item_raw").alias("item_id"),
                    F.coalesce("title", F.col("item_raw")).alias("title"),
                    F.coalesce("given_category", keyword_category(F.col("title"), config.category_keywords))
                    .alias("category"),
                    F.col("price").cast("double").alias("price")))
