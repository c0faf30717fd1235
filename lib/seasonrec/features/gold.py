"""silver -> gold: item features, user features and point-in-time correct training examples.

Point-in-time rules:
- item and user aggregates (popularity, seasonality, RFM, affinities, last items) use only
  interactions strictly before `as_of` (the training cutoff, split.train_end): nothing after the
  training data reaches them. A training example inside that data does not read the user totals
  of gold_user_features (they hold its own and later purchases) but `user_features_at` its own day;
- an example's `history` holds items bought strictly before its own `ts` (earlier baskets only);
- negatives copy their positive's ts, history and calendar context.

Indexes are dense (item_index 0..n_items-1 over every known item, user_index 0..n_users-1 over
every known user, both ordered by id) so models can use them directly as embedding ids.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.config import FeaturesConfig, SplitConfig
from seasonrec.core.ordering import POSITION, SUM_BEFORE, global_order, ntile
from seasonrec.core.randomness import bins_from_weights, uniform
from seasonrec.features.calendar import SEASONS, SHOPPING_FESTIVALS, WEEKS

NEGATIVE_BINS = 10_000
SEASON_AFFINITY_NAMES = (*SEASONS, "christmas_run_up", "valentines",
                         "back_to_school", "shopping_festivals", "chinese_festivals")
POPULARITY_TIERS = ("head", "torso", "tail")
STOPWORDS = ("of", "and", "the", "in", "with", "for", "set", "a", "an", "to", "on", "s")


def before(interactions: DataFrame, as_of: dt.date) -> DataFrame:
    """Rows of ``interactions`` with ``ts`` strictly before ``as_of`` (midnight)."""
    return interactions.where(F.col("ts") < F.lit(as_of).cast("timestamp"))


def dense_index(ids: DataFrame, id_col: str, index_col: str) -> DataFrame:
    """Distinct ids numbered 0..n-1 in id order (= row_number() - 1 over the ids, without one partition)."""
    ordered = global_order(ids.select(id_col).distinct(), [(id_col, False)]).frame
    return ordered.select(id_col, F.col(POSITION).cast("int").alias(index_col))


def week_of_year(date: Column) -> Column:
    """ISO week of the date column, week 53 folded into 52 (the features' 1..52 convention)."""
    return F.least(F.weekofyear(date), F.lit(WEEKS))


# ------------------------------------------------------------------------------------------- items
def _tokens(title: Column) -> Column:
    words = F.split(F.lower(F.coalesce(title, F.lit(""))), "[^a-z0-9]+")
    stop = F.array(*[F.lit(w) for w in STOPWORDS])
    return F.array_distinct(F.filter(words, lambda w: (F.length(w) >= 2) & ~F.array_contains(stop, w)
                                     & ~w.rlike("^[0-9]+$")))


def seasonality(history: DataFrame, item_ids: DataFrame, config: FeaturesConfig) -> DataFrame:
    """item_id, seasonality (52 doubles summing to 1), peak_week (1..52), seasonality_strength (0..1).

    Per week of year, the item's share of purchases is divided by the whole catalog's share (so a
    staple that merely follows the Christmas rush stays flat), shrunk towards flat by
    `seasonality_prior` pseudo-purchases, smoothed over +-`seasonality_smoothing_weeks` (circular)
    and normalized. Strength is the total-variation distance from a flat profile.
    """
    spark = history.sparkSession
    counts = (history.withColumn("w", week_of_year(F.col("date"))).groupBy("item_id", "w")
              .agg(F.count("*").cast("double").alias("c")))
    overall = counts.groupBy("w").agg(F.sum("c").alias("g"))
    overall = (overall.crossJoin(F.broadcast(overall.agg(F.sum("g").alias("_all"))))
               .withColumn("g", F.col("g") / F.col("_all")).drop("_all"))
    weeks = spark.range(1, WEEKS + 1).select(F.col("id").cast("int").alias("w"))
    prior = float(config.seasonality_prior)
    grid = (item_ids.select("item_id").crossJoin(weeks)
            .join(counts, ["item_id", "w"], "left").join(F.broadcast(overall), "w", "left")
            .fillna(0.0, ["c", "g"])
            .withColumn("n", F.sum("c").over(Window.partitionBy("item_id")))
            .withColumn("lift", F.when((F.col("g") > 0) & (F.col("n") + prior > 0),
                                       (F.col("c") + prior * F.col("g")) / ((F.col("n") + prior) * F.col("g")))
                        .otherwise(F.lit(1.0))))
    s = config.seasonality_smoothing_weeks
    profile = (grid.groupBy("item_id").agg(F.array_sort(F.collect_list(F.struct("w", "lift"))).alias("pairs"))
               .withColumn("lift", F.transform("pairs", lambda p: p["lift"])))
    smoothed = F.expr(
        f"transform(sequence(0, {WEEKS - 1}), i -> aggregate(sequence(-{s}, {s}), 0D, "
        f"(acc, o) -> acc + element_at(lift, ((i + o + {WEEKS}) % {WEEKS}) + 1)) / {2 * s + 1})")
    return (profile.withColumn("smooth", smoothed)
            .withColumn("total", F.aggregate("smooth", F.lit(0.0), lambda acc, x: acc + x))
            .withColumn("seasonality", F.transform("smooth", lambda x: x / F.col("total")))
            .withColumn("peak_week", F.expr("array_position(seasonality, array_max(seasonality))").cast("int"))
            .withColumn("seasonality_strength",
                        F.aggregate("seasonality", F.lit(0.0), lambda acc, x: acc + F.abs(x - 1.0 / WEEKS)) * 0.5)
            .select("item_id", "seasonality", "peak_week", "seasonality_strength"))


def item_features(silver_items: DataFrame, interactions: DataFrame, as_of: dt.date,
                  config: FeaturesConfig) -> DataFrame:
    """``gold_item_features``: one row per item of ``silver_items`` or ``interactions``, aggregates from interactions
    before ``as_of`` only.

    Columns: item_id, item_index (dense, 0..n_items-1), category, category_index, price_mean, price_bucket (0..4 price
    quintile), tokens, token_ids (title vocabulary of ``text_vocab_size``), popularity_tier (head/torso/tail by
    cumulative purchase share), n_purchases, seasonality, peak_week, seasonality_strength, as_of, title.
    """
    history = before(interactions, as_of)
    ids = dense_index(silver_items.select(F.col("item_id")).unionByName(interactions.select("item_id")),
                      "item_id", "item_index")
    base = ids.join(silver_items, "item_id", "left").withColumn("category", F.coalesce("category", F.lit("other")))
    categories = dense_index(base.select("category"), "category", "category_index")
    stats = history.groupBy("item_id").agg(F.count("*").alias("n_purchases"), F.avg("price").alias("hist_price"))
    df = (base.join(F.broadcast(categories), "category").join(stats, "item_id", "left")
          .fillna(0, ["n_purchases"])
          .withColumn("price_mean", F.coalesce("hist_price", "price", F.lit(0.0)).cast("double")))
    # Popularity tier by cumulative share of purchases, most popular first.
    popularity = global_order(df, [("n_purchases", True), ("item_id", False)], sum_col="n_purchases")
    share_before = F.col(SUM_BEFORE) / F.lit(max(popularity.total, 1))
    df = (popularity.frame.withColumn("share_before", share_before)
          .withColumn("popularity_tier",
                      F.when(F.col("n_purchases") == 0, "tail")
                      .when(F.col("share_before") < config.head_share, "head")
                      .when(F.col("share_before") >= 1 - config.tail_share, "tail").otherwise("torso"))
          .drop(POSITION, SUM_BEFORE))
    by_price = global_order(df, [("price_mean", False), ("item_id", False)])
    df = (by_price.frame.withColumn("price_bucket", (ntile(F.col(POSITION), by_price.rows, 5) - 1).cast("int"))
          .drop(POSITION).withColumn("tokens", _tokens(F.col("title"))))
    token_counts = df.select(F.explode("tokens").alias("token")).groupBy("token").count()
    vocab = (global_order(token_counts, [("count", True), ("token", False)]).frame
             .withColumn("token_id", (F.col(POSITION) + 1).cast("int"))
             .where(F.col("token_id") <= config.text_vocab_size).select("token", "token_id"))
    token_ids = (df.select("item_id", F.posexplode("tokens").alias("pos", "token"))
                 .join(F.broadcast(vocab), "token")
                 .groupBy("item_id").agg(F.array_sort(F.collect_list(F.struct("pos", "token_id"))).alias("ids"))
                 .select("item_id", F.transform("ids", lambda x: x["token_id"]).alias("token_ids")))
    season = seasonality(history, ids, config)
    return (df.join(token_ids, "item_id", "left").join(season, "item_id", "left")
            .withColumn("token_ids", F.coalesce("token_ids", F.array().cast("array<int>")))
            .select("item_id", F.col("item_index").cast("int"), "category", F.col("category_index").cast("int"),
                    "price_mean", "price_bucket", "tokens", "token_ids", "popularity_tier",
                    F.col("n_purchases").cast("long"), "seasonality", "peak_week", "seasonality_strength",
                    F.lit(as_of).alias("as_of"), "title"))


# ------------------------------------------------------------------------------------------- users
def southern(country: Column, config: FeaturesConfig) -> Column:
    """Boolean column: ``country`` is in ``features.southern_hemisphere`` (null countries: False)."""
    return F.coalesce(country.isin(*config.southern_hemisphere), F.lit(False))


def user_countries(interactions: DataFrame) -> DataFrame:
    """(user_id, country): each user's most frequent non-null country (ties: the first alphabetically)."""
    by_user = Window.partitionBy("user_id").orderBy(F.col("n").desc(), "country")
    return (interactions.where(F.col("country").isNotNull()).groupBy("user_id", "country")
            .agg(F.count("*").alias("n")).withColumn("r", F.row_number().over(by_user)).where("r = 1")
            .select("user_id", "country"))


def _season_flags(calendar_cols: DataFrame, config: FeaturesConfig) -> list[Column]:
    month, day = F.col("month"), F.dayofmonth("date")
    season = F.when(southern(F.col("country"), config), F.col("season_south")).otherwise(F.col("season_north"))
    flags = [season == name for name in SEASONS]
    flags += [
        ((month == 11) & (day >= 15)) | ((month == 12) & (day <= 24)),
        (month == 2) & (day <= 14),
        ((month == 8) & (day >= 10)) | ((month == 9) & (day <= 10)),
        F.coalesce(F.col("event_window").isin(*SHOPPING_FESTIVALS), F.lit(False)),
        F.coalesce(F.col("event_window").isin("spring_festival", "mid_autumn"), F.lit(False)),
    ]
    return [F.coalesce(f, F.lit(False)).cast("double") for f in flags]


def _purchase_history(purchases: DataFrame, items: DataFrame, calendar: DataFrame, countries: DataFrame,
                      config: FeaturesConfig) -> DataFrame:
    """``purchases`` (already cut at their cutoff) with item_index, category_index, the user's country and
    the season flags of the purchase date (``flags``: `SEASON_AFFINITY_NAMES` order)."""
    history = (purchases.join(F.broadcast(items.select("item_id", "item_index", "category_index")), "item_id")
               .drop("country").join(countries, "user_id", "left")
               .join(F.broadcast(calendar.select("date", "month", "season_north", "season_south", "event_window")),
                     "date", "left"))
    return history.withColumn("flags", F.array(*_season_flags(history, config)))


def _history_aggregates(history: DataFrame, keys: list[str], with_items: bool) -> DataFrame:
    """Per key: last_date, frequency (baskets), monetary, the season shares (``season_shares``), the
    category shares (``shares``: category_index -> share) and, ``with_items``, ``bought`` (sorted
    (ts, item_index))."""
    bought = F.array_sort(F.collect_list(F.struct(F.col("ts"), F.col("item_index")))).alias("bought")
    items = [bought] if with_items else []
    rfm = history.groupBy(*keys).agg(
        F.max("date").alias("last_date"),
        F.countDistinct("ts").alias("frequency"),  # baskets (invoice may be unmapped)
        F.sum("revenue").alias("monetary"),
        F.array(*[F.avg(F.col("flags")[i]) for i in range(len(SEASON_AFFINITY_NAMES))]).alias("season_shares"),
        *items,
    )
    per_category = (history.groupBy(*keys, "category_index").agg(F.count("*").alias("c"))
                    .withColumn("share", F.col("c") / F.sum("c").over(Window.partitionBy(*keys)))
                    .groupBy(*keys).agg(F.map_from_entries(F.collect_list(F.struct("category_index", "share")))
                                        .alias("shares")))
    return rfm.join(per_category, keys, "left")


def _user_columns(cutoff: Column, n_categories: int) -> list[Column]:
    """The two-tower's user columns from `_history_aggregates` (nulls: no purchase before ``cutoff``)."""
    category_affinity = F.transform(F.sequence(F.lit(0), F.lit(n_categories - 1)),
                                    lambda i: F.coalesce(F.col("shares")[i], F.lit(0.0)))
    return [
        F.coalesce(F.datediff(cutoff, "last_date"), F.lit(-1)).alias("recency_days"),
        F.coalesce("frequency", F.lit(0)).cast("long").alias("frequency"),
        F.coalesce("monetary", F.lit(0.0)).cast("double").alias("monetary"),
        F.when(F.col("shares").isNull(), F.array_repeat(F.lit(0.0), n_categories))
        .otherwise(category_affinity).alias("category_affinity"),
        F.coalesce("season_shares", F.array_repeat(F.lit(0.0), len(SEASON_AFFINITY_NAMES))).alias("season_affinity"),
    ]


def user_features(interactions: DataFrame, items: DataFrame, calendar: DataFrame, as_of: dt.date,
                  config: FeaturesConfig, n_categories: int) -> DataFrame:
    """``gold_user_features``: one row per user of ``interactions``, aggregates from rows before ``as_of``; ``items`` is
    gold_item_features, ``calendar`` the calendar table.

    Columns: user_id, user_index (dense), country, recency_days (-1 without history), frequency (baskets), monetary,
    category_affinity ([n_categories] shares), season_affinity, last_items (up to ``history_length`` item_index, most
    recent first), bought_items / bought_counts / bought_days_ago (`bought_summary`), as_of.
    """
    ids = dense_index(interactions.select("user_id"), "user_id", "user_index")
    countries = user_countries(interactions)
    history = _purchase_history(before(interactions, as_of), items, calendar, countries, config)
    repeat_stats = bought_summary(history.withColumn("cutoff_date", F.lit(as_of)), ["user_id"],
                                  config.bought_items_max)
    last_items = F.slice(F.array_distinct(F.transform(F.reverse("bought"), lambda x: x["item_index"])),
                         1, config.history_length)
    return (ids.join(countries, "user_id", "left").join(_history_aggregates(history, ["user_id"], with_items=True),
                                                        "user_id", "left")
            .join(repeat_stats, "user_id", "left")
            .select(
                "user_id", F.col("user_index").cast("int"), "country", *_user_columns(F.lit(as_of), n_categories),
                F.coalesce(last_items, F.array().cast("array<int>")).alias("last_items"),
                *[F.coalesce(c, F.array().cast("array<int>")).alias(c) for c in BOUGHT_COLUMNS],
                F.lit(as_of).alias("as_of")))


def user_features_at(interactions: DataFrame, items: DataFrame, calendar: DataFrame, cutoffs: DataFrame,
                     config: FeaturesConfig, n_categories: int) -> DataFrame:
    """The two-tower's user columns of each (user, cutoff day), from that user's purchases before the day.

    ``cutoffs``: (user_id, cutoff_date) rows, e.g. the days of a user's training examples: a purchase on
    day d is then described as `seasonrec score` describes the user on day d (rows with ``ts`` before d's
    midnight), not with totals that already hold that purchase and later ones. Returns the distinct
    (user_id, cutoff_date) with country (the user's most frequent one, as in `user_features`),
    recency_days, frequency, monetary, category_affinity ([n_categories]) and season_affinity.
    """
    keys = ["user_id", "cutoff_date"]
    cutoffs = cutoffs.select(*keys).distinct()
    countries = user_countries(interactions)
    earlier = (interactions.join(cutoffs, "user_id")
               .where(F.col("ts") < F.col("cutoff_date").cast("timestamp")))
    history = _purchase_history(earlier, items, calendar, countries, config)
    aggregates = _history_aggregates(history, keys, with_items=False)
    return (cutoffs.join(countries, "user_id", "left").join(aggregates, keys, "left")
            .select(*keys, "country", *_user_columns(F.col("cutoff_date"), n_categories)))


BOUGHT_COLUMNS = ("bought_items", "bought_counts", "bought_days_ago")


def bought_summary(purchases: DataFrame, keys: list[str], max_items: int) -> DataFrame:
    """What each key (a user, or a user at a cutoff) bought before its cutoff, for the re-ranker.

    `purchases` rows (keys, item_index, ts, date, cutoff_date) must already be cut at their key's
    cutoff. Returns keys + `bought_items` (item_index), `bought_counts` (purchase occasions = distinct
    ts) and `bought_days_ago` (cutoff_date - last purchase date), most-bought first (ties: most recent),
    at most `max_items` per key: exact, where the history array only holds the last few baskets.
    """
    per_item = (purchases.withColumn("item_index", F.col("item_index").cast("int")).groupBy(*keys, "item_index")
                .agg(F.countDistinct("ts").cast("int").alias("n"),
                     F.datediff(F.first("cutoff_date"), F.max("date")).alias("days")))
    ranked = F.slice(F.array_sort(F.collect_list(F.struct((-F.col("n")).alias("neg_n"), "days", "item_index"))),
                     1, max_items)
    return (per_item.groupBy(*keys).agg(ranked.alias("_bought"))
            .select(*keys, F.transform("_bought", lambda b: b["item_index"]).alias("bought_items"),
                    F.transform("_bought", lambda b: -b["neg_n"]).alias("bought_counts"),
                    F.transform("_bought", lambda b: b["days"]).alias("bought_days_ago")))


# ------------------------------------------------------------------------------------------- examples
def _split(ts: Column, split: SplitConfig) -> Column:
    def at(d: dt.date) -> Column:
        return F.lit(d).cast("timestamp")

    return (F.when(ts < at(split.train_end), "train").when(ts < at(split.validation_end), "validation")
            .when(ts < at(split.test_end), "test"))


def training_examples(interactions: DataFrame, items: DataFrame, users: DataFrame, calendar: DataFrame,
                      split: SplitConfig, config: FeaturesConfig, n_items: int) -> DataFrame:
    """``gold_training_examples``: purchases before ``split.test_end`` (label 1), each with the items of its user's
    earlier baskets as ``history``, plus ``negatives_per_positive`` sampled negatives (label 0; popularity-weighted
    or uniform) copying the positive's ts, history and context.

    Rows carry ``split`` (train/validation/test by ts), the calendar context of the date (week sin/cos, hemisphere-aware
    season_index, holiday and event distances) and the columns of ``tables.TRAINING_EXAMPLES``. ``n_items`` bounds the
    uniform negatives.
    """
    index = F.broadcast(items.select("item_id", "item_index"))
    positives = (interactions.where(F.col("ts") < F.lit(split.test_end).cast("timestamp"))
                 .groupBy("user_id", "item_id", "ts", "date").agg(F.sum("quantity").alias("quantity"))
                 .join(index, "item_id")
                 .join(users.select("user_id", "user_index", "country"), "user_id")
                 .withColumn("split", _split(F.col("ts"), split)))
    # History: the last `history_length` earlier baskets; a basket = one user's purchases at one ts,
    # so the frame (rows -H..-1 over distinct ts) can never reach the example's own or later baskets.
    h = config.history_length
    baskets = (positives.groupBy("user_index", "ts")
               .agg(F.array_sort(F.collect_set("item_index")).alias("basket")))
    earlier = Window.partitionBy("user_index").orderBy("ts").rowsBetween(-h, -1)
    baskets = baskets.withColumn("previous", F.collect_list(F.struct("ts", "basket")).over(earlier)).select(
        "user_index", "ts",
        F.slice(F.flatten(F.transform(F.reverse(F.array_sort("previous")), lambda b: b["basket"])), 1, h)
        .alias("history"))
    positives = positives.join(baskets, ["user_index", "ts"]).withColumn("label", F.lit(1))

    # Negatives: a popularity-weighted share (by pre-cutoff purchases) and a uniform share.
    n_neg = config.negatives_per_positive
    seed = config.seed
    popular = bins_from_weights(items.where(F.col("n_purchases") > 0).withColumn("k", F.lit(0)), ["k"],
                                "item_index", "n_purchases", NEGATIVE_BINS).select(
        "bin", F.col("item_index").alias("popular_item"))
    keys = ("user_index", "ts", "item_index", "j")
    negatives = (positives.withColumn("j", F.explode(F.sequence(F.lit(1), F.lit(max(n_neg, 1)))))
                 .where(F.lit(n_neg > 0))
                 .withColumn("bin", (uniform(seed, "neg-pop", *keys) * NEGATIVE_BINS).cast("int"))
                 .join(F.broadcast(popular), "bin", "left")
                 .withColumn("uniform_item", (uniform(seed, "neg-uniform", *keys) * n_items).cast("int"))
                 .withColumn("item_index", F.when((uniform(seed, "neg-kind", *keys) < config.popularity_negative_share)
                                                  & F.col("popular_item").isNotNull(), F.col("popular_item"))
                             .otherwise(F.col("uniform_item")))
                 .drop("bin", "popular_item", "uniform_item", "j", "item_id")
                 .join(index, "item_index")
                 .withColumn("label", F.lit(0)))
    # A sampled item that the user bought in the same basket is not a negative.
    negatives = (negatives.join(positives.select("user_index", "ts", "item_index"),
                                ["user_index", "ts", "item_index"], "left_anti")
                 .dropDuplicates(["user_index", "ts", "item_index"]))
    cal = F.broadcast(calendar.select("date", "woy_sin", "woy_cos", "season_north", "season_south", "is_holiday",
                                      "is_festival", "days_to_next_event", "days_since_last_event"))
    season = F.when(southern(F.col("country"), config), F.col("season_south")).otherwise(F.col("season_north"))
    season_index = F.lit(None).cast("int")
    for i, name in reversed(list(enumerate(SEASONS))):
        season_index = F.when(season == name, F.lit(i)).otherwise(season_index)
    examples = positives.unionByName(negatives.select(*positives.columns))
    return (examples.join(cal, "date", "left").withColumn("season_index", season_index)
            .select(*[F.col(c) for c in tables.spec(tables.TRAINING_EXAMPLES).column_names])
            .withColumn("label", F.col("label").cast("int"))
            .withColumn("item_index", F.col("item_index").cast("int"))
            .withColumn("user_index", F.col("user_index").cast("int")))
