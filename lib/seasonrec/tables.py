"""Every Delta table seasonrec owns (``<lake_root>/<name>``, or ``<catalog>.<schema>.<name>`` with
``paths.table_namespace``): name, columns and types, keys,
partitioning and a one-line description, in one place.

`seasonrec.lake.Lake` checks every write of a registered table against its ``columns`` (names and
Spark types, in any order) and raises one line naming the differences, so a job cannot silently
change a table's shape; it also uses ``partition_by`` as the default partitioning. When it creates a
table (and on every full overwrite) it writes the declaration into the Delta schema on both engines:
``comment`` as the table's description, ``column_comments`` as the columns' ``comment`` metadata, the
``not_null`` columns (the keys, but ``nullable_keys``, plus ``also_not_null``) as NOT NULL (a write
with a null there fails and commits nothing), every other column nullable, and ``properties`` (e.g.
Change Data Feed) as table properties. An older table gets the comments and properties on its next
write (`seasonrec.lake.Lake.add_missing_comments`); NOT NULL only with a full overwrite (delta-rs).

Schema migration: a column added to a table after lakes were written without it is declared in the
table's ``columns`` and listed in ``added_columns`` (nullable). Before writing into an existing table
that lacks them, `seasonrec.lake.Lake.add_missing_columns` adds them (one schema-only commit; older
rows read them as null), so an old lake keeps working without a rebuild.

    >>> from seasonrec import tables
    >>> tables.spec(tables.SILVER_ITEMS).column_names
    ('item_id', 'title', 'category', 'price')

Layers: bronze (raw rows as ingested), silver (cleaned, conformed), gold (features and model
inputs), serving/results (what jobs produce for people and other systems).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# bronze: raw rows as ingested
BRONZE_TRANSACTIONS = "bronze_transactions"
QUARANTINE = "quarantine"
SYNTHETIC_TRUTH = "synthetic_truth"  # planted seasonality of the synthetic generator

# silver: cleaned, conformed
SILVER_INTERACTIONS = "silver_interactions"
SILVER_ITEMS = "silver_items"
CALENDAR = "calendar"
CONTEXT_DAILY = "context_daily"  # daily weather context per region (seasonrec.features.weather)

# gold: features and model inputs
ITEM_FEATURES = "gold_item_features"
USER_FEATURES = "gold_user_features"
TRAINING_EXAMPLES = "gold_training_examples"
WEEKLY_DEMAND = "gold_weekly_demand"

# serving / results
ITEM_EMBEDDINGS = "item_embeddings"
RECOMMENDATIONS = "recommendations"
DEMAND_FORECAST = "demand_forecast"
FORECAST_BACKTEST = "forecast_backtest"
FORECAST_BACKTEST_WEEKLY = "forecast_backtest_weekly"
EVALUATION_RUNS = "evaluation_runs"
USER_RECENT_ACTIVITY = "user_recent_activity"  # kept up to date by `seasonrec stream`


CHANGE_DATA_FEED = {"delta.enableChangeDataFeed": "true"}  # readers get row-level inserts/deletes per version


def ddl_column_names(schema: str) -> list[str]:
    """The column names, in order, of a Spark DDL schema string without nested types (commas inside
    ``struct<...>``/``map<...>`` are not handled), e.g. ``"item_id string, scale float"`` -> [item_id, scale]."""
    return [piece.strip().split(" ", 1)[0] for piece in schema.split(",")]


@dataclass(frozen=True)
class Table:
    """One table: ``columns`` as ``"name type"`` Spark DDL pieces, ``keys`` the columns that
    identify a row (unique in the table), ``partition_by`` its partition columns, ``column_comments``
    {column: comment} (every key has one), ``nullable_keys`` the keys that may legitimately be null
    (say why where declared), ``also_not_null`` the non-key columns that are never null, ``properties``
    the Delta table properties set when the table is created."""

    name: str
    layer: str
    comment: str
    columns: tuple[str, ...]
    keys: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()  # declared after tables existed without them: nullable, migrated
    column_comments: dict[str, str] = field(default_factory=dict, hash=False)
    nullable_keys: tuple[str, ...] = ()
    also_not_null: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        named = [*self.added_columns, *self.column_comments, *self.also_not_null, *self.partition_by, *self.keys]
        unknown = sorted({c for c in named if c not in self.column_names})
        if unknown:
            raise ValueError(f"table '{self.name}': {unknown} are not among its columns")
        uncommented = [k for k in self.keys if not self.column_comments.get(k)]
        if uncommented or set(self.nullable_keys) - set(self.keys):
            raise ValueError(f"table '{self.name}': keys without a comment {uncommented} or nullable_keys "
                             f"that are not keys {sorted(set(self.nullable_keys) - set(self.keys))}")
        if set(self.added_columns) & set(self.not_null):  # older rows read an added column as null
            raise ValueError(f"table '{self.name}': added_columns cannot be NOT NULL")

    @property
    def not_null(self) -> tuple[str, ...]:
        """The columns declared NOT NULL: the keys but ``nullable_keys``, then ``also_not_null``."""
        return tuple(k for k in self.keys if k not in self.nullable_keys) + self.also_not_null

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in order (the first word of each ``columns`` DDL entry)."""
        return tuple(ddl_column_names(column)[0] for column in self.columns)

    @property
    def types(self) -> dict[str, str]:
        """{column: Spark simpleString type}, e.g. {"quantity": "double", "history": "array<int>"}."""
        return dict(column.split(" ", 1) for column in self.columns)  # type: ignore[misc]

    @property
    def ddl(self) -> str:
        """The columns as one Spark DDL schema string (``spark.createDataFrame(rows, table.ddl)``)."""
        return ", ".join(self.columns)

    def differences(self, actual: dict[str, str]) -> list[str]:
        """What ``actual`` ({column: simpleString type}) lacks, adds or types differently; [] if it matches."""
        declared = self.types
        out = [f"missing {sorted(set(declared) - set(actual))}"] if set(declared) - set(actual) else []
        if set(actual) - set(declared):
            out.append(f"unexpected {sorted(set(actual) - set(declared))}")
        out += [f"{name} is {actual[name]}, declared {kind}" for name, kind in declared.items()
                if name in actual and actual[name] != kind]
        return out


_FORECAST_KEY_COMMENTS = {
    "as_of": "Last day of the data the forecast saw (one partition per run date)",
    "level": "Series level: item, category or total",
    "item_id": "Series: the item id (level item), the category name (category) or 'total'"}

TABLES: dict[str, Table] = {t.name: t for t in (
    Table(BRONZE_TRANSACTIONS, "bronze", "Sales lines as ingested (one per valid source row; guests have null "
          "user_raw); row_hash makes re-ingesting a file a no-op",
          ("row_hash string", "source string", "source_file string", "invoice string", "user_raw string",
           "item_raw string", "ts timestamp", "quantity double", "price double", "description string",
           "category string", "country string", "ingested_at timestamp"), keys=("row_hash",),
          column_comments={"row_hash": "SHA-256 of the source row's business key and its occurrence in the file: "
                                       "the same line ingested again has the same hash"}),
    Table(QUARANTINE, "bronze", "Source rows that could not be used, with the reason and the raw line; "
          "resolved_at/resolved_by_run are set (the row is kept) when a later ingest brings a valid row with "
          "the same row_hash (business key)",
          ("source string", "source_file string", "reason string", "raw_line string", "ingested_at timestamp",
           "row_hash string", "resolved_at timestamp", "resolved_by_run string"), keys=("row_hash",),
          added_columns=("resolved_at", "resolved_by_run"),
          column_comments={"row_hash": "SHA-256 of the refused row's business key and occurrence (weather rows: of "
                                       "the raw line); a later valid row with the same hash resolves it"}),
    Table(SYNTHETIC_TRUTH, "bronze", "Seasonality and weather sensitivity planted by the synthetic generator, one "
          "row per item (test ground truth; cold_sensitivity 0: demand ignores the weather)",
          ("item_raw string", "category string", "is_seasonal boolean", "season_name string", "peak_week int",
           "cold_sensitivity double"), keys=("item_raw",),
          column_comments={"item_raw": "Item code as the generator wrote it (bronze_transactions.item_raw)"}),
    Table(SILVER_INTERACTIONS, "silver", "Purchases net of returns: pseudonymous user (null for guest "
          "checkouts), item, time, quantity > 0, price, ISO-2 country",
          ("user_id string", "item_id string", "ts timestamp", "date date", "week_start date", "quantity double",
           "price double", "revenue double", "country string", "invoice string", "event_month string"),
          partition_by=("event_month",),
          # No key: a user buys an item several times a day; guests' rows have a null user_id.
          column_comments={"user_id": "Pseudonymous user (keyed hash of the source customer id, table property "
                                      "seasonrec.pseudonym); null for guest checkouts"}),
    Table(SILVER_ITEMS, "silver", "Item catalogue: title, category and latest price per item",
          ("item_id string", "title string", "category string", "price double"), keys=("item_id",),
          column_comments={"item_id": "Item id (the source's item or stock code)"}),
    Table(CALENDAR, "silver", "One row per day: week of year, hemisphere seasons, holidays and shopping "
          "festivals, days to/since the nearest event",
          ("date date", "week_start date", "year int", "week_of_year int", "month int", "day_of_week int",
           "woy_sin double", "woy_cos double", "season_north string", "season_south string", "is_holiday boolean",
           "holiday_name string", "is_festival boolean", "festival_name string", "days_to_next_event int",
           "days_since_last_event int", "event_window string"), keys=("date",),
          column_comments={"date": "Calendar day"}),
    Table(CONTEXT_DAILY, "silver", "Daily weather per region: mean temperature (precipitation/sunshine where "
          "the source has them), day-of-year climate normal, anomaly, trailing anomaly, cold/warm spell flags; a "
          "country of features.countries without a weather region has rows with region = its code, "
          "weather_known=false and null weather",
          ("date date", "region string", "temp_mean_c double", "precipitation_mm double", "sunshine_h double",
           "temp_normal_c double", "anomaly_c double", "anomaly_7d_c double", "cold_spell boolean",
           "warm_spell boolean", "weather_known boolean", "source string"), keys=("date", "region"),
          column_comments={"date": "Day", "region": "Weather region, or the ISO-2 code of a country without "
                                                    "weather data (weather_known=false)"}),
    Table(ITEM_FEATURES, "gold", "Item features as of split.train_end: dense index, category, price bucket, "
          "description tokens, popularity tier, 52-week seasonality profile",
          ("item_id string", "item_index int", "category string", "category_index int", "price_mean double",
           "price_bucket int", "tokens array<string>", "token_ids array<int>", "popularity_tier string",
           "n_purchases bigint", "seasonality array<double>", "peak_week int", "seasonality_strength double",
           "as_of date", "title string"), keys=("item_id",),
          column_comments={"item_id": "Item id (silver_items.item_id)"}),
    Table(USER_FEATURES, "gold", "User features as of split.train_end: RFM, country, category and season "
          "affinity, recent items, purchase summary",
          ("user_id string", "user_index int", "country string", "recency_days int", "frequency bigint",
           "monetary double", "category_affinity array<double>", "season_affinity array<double>",
           "last_items array<int>", "bought_items array<int>", "bought_counts array<int>",
           "bought_days_ago array<int>", "as_of date"), keys=("user_id",),
          column_comments={"user_id": "Pseudonymous known user (silver_interactions.user_id; guests have no "
                                      "features)"}),
    Table(TRAINING_EXAMPLES, "gold", "Two-tower training rows: purchases (label 1) and sampled negatives with "
          "the calendar context and the history before each purchase",
          ("user_id string", "user_index int", "item_id string", "item_index int", "label int", "ts timestamp",
           "date date", "split string", "woy_sin double", "woy_cos double", "season_index int",
           "is_holiday boolean", "is_festival boolean", "days_to_next_event int", "days_since_last_event int",
           "history array<int>"), partition_by=("split",)),
    Table(WEEKLY_DEMAND, "gold", "Units sold per item and week (guest sales included) with calendar features",
          ("item_id string", "week_start date", "quantity double", "orders double", "category string",
           "price double", "week_of_year int", "woy_sin double", "woy_cos double", "is_holiday_week int",
           "is_festival_week int"),
          keys=("item_id", "week_start"),
          column_comments={"item_id": "Item id (silver_items.item_id)", "week_start": "Monday of the week"}),
    Table(ITEM_EMBEDDINGS, "serving", "Item vectors of the current two-tower model (for ANN indexes)",
          ("item_index int", "item_id string", "embedding array<float>", "model_version string"),
          keys=("item_id",), column_comments={"item_id": "Item id (silver_items.item_id)"}),
    Table(RECOMMENDATIONS, "serving", "Top-K items per user for the season of context_date, readable: the "
          "item's title, category and price (silver_items), why it is on the list (reason: re-buy, similar to "
          "<title of a recent item>, in season, popular now) and whether the user bought it before context_date "
          "(buy_again)",
          ("user_id string", "rank int", "item_id string", "score double", "title string", "category string",
           "price double", "reason string", "buy_again boolean", "model_version string", "context_date date",
           "run_id string"), keys=("context_date", "user_id", "rank"), partition_by=("context_date",),
          also_not_null=("item_id", "score", "reason", "buy_again"),
          column_comments={
              "context_date": "Day whose season and holidays the lists are for (one partition per day)",
              "user_id": "Pseudonymous user (silver_interactions.user_id)",
              "rank": "Position in the user's list, 1 = first",
              "item_id": "Recommended item (silver_items.item_id)",
              "reason": "Why the item is listed: re-buy, similar to <title of a recent item>, in season, popular now",
              "buy_again": "True when the user bought the item before context_date"},
          # Consumers (CRM, e-mail) read only what a scoring run changed; see seasonrec.lake for the engines.
          properties=CHANGE_DATA_FEED),
    Table(DEMAND_FORECAST, "serving", "Weekly demand forecast per item, category and total: p10/p50/p90 and "
          "the expected units (mean; item means sum to category and total), the model chosen per level",
          ("item_id string", "level string", "week_start date", "p10 double", "p50 double", "p90 double",
           "mean double", "model string", "as_of date", "run_id string", "cold_start boolean"),
          keys=("as_of", "level", "item_id", "week_start"), partition_by=("as_of",),
          column_comments={**_FORECAST_KEY_COMMENTS, "week_start": "Monday of the forecast week"}),
    Table(FORECAST_BACKTEST, "serving", "Backtest of every forecast model per series and rolling origin: errors, "
          "bias, pinball, coverage, and whether the model was selected",
          ("as_of date", "run_id string", "level string", "item_id string", "segment string", "model string",
           "window int", "origin date", "n_weeks bigint", "actual double", "forecast double",
           "mean_forecast double", "abs_error double", "wape double", "mase double", "bias double",
           "mean_bias double", "pinball double", "coverage double", "selected boolean"),
          keys=("as_of", "level", "item_id", "model", "window"), partition_by=("as_of",),
          column_comments={**_FORECAST_KEY_COMMENTS, "model": "Forecast model backtested",
                           "window": "Backtest window (rolling origin number)"}),
    Table(FORECAST_BACKTEST_WEEKLY, "serving", "Week by week forecast of the model chosen per series at every "
          "backtest origin (P10/P50/P90, mean) with the actual units: the report's forecast fan chart",
          ("as_of date", "run_id string", "level string", "item_id string", "model string", "window int",
           "origin date", "week_start date", "p10 double", "p50 double", "p90 double", "mean double",
           "actual double"),
          keys=("as_of", "level", "item_id", "window", "week_start"), partition_by=("as_of",),
          column_comments={**_FORECAST_KEY_COMMENTS, "window": "Backtest window (rolling origin number)",
                           "week_start": "Monday of the forecast week"}),
    Table(EVALUATION_RUNS, "serving", "Offline evaluation results: one row per run, method, metric, k, segment",
          ("run_id string", "method string", "metric string", "k int", "segment string", "value double",
           "table_versions string", "created_at timestamp"), keys=("run_id", "method", "metric", "k", "segment"),
          nullable_keys=("k",),  # counts (n_users, n_users_no_relevant) have no cut-off
          column_comments={"run_id": "Run id of the evaluate job", "method": "Recommender or baseline scored",
                           "metric": "Metric name (recall, ndcg, coverage, n_users, ...)",
                           "k": "List length the metric is cut at; null for counts without a cut-off",
                           "segment": "User or item segment (all, user_type=..., activity=..., item_decile=...)"}),
    Table(USER_RECENT_ACTIVITY, "serving", "Per known user, from the purchases seen by `seasonrec stream`: the "
          "latest distinct items (most recent first, at most streaming.recent_items_max) with their last purchase "
          "times, the latest purchase time and the number of purchase lines",
          ("user_id string", "item_ids array<string>", "ts array<timestamp>", "last_ts timestamp",
           "n_events bigint", "updated_at timestamp"), keys=("user_id",),
          column_comments={"user_id": "Pseudonymous known user (silver_interactions.user_id)"}),
)}


def spec(name: str) -> Table:
    """The registered table called ``name``; KeyError naming the known tables otherwise."""
    if name not in TABLES:
        raise KeyError(f"unknown table '{name}'; known: {', '.join(sorted(TABLES))}")
    return TABLES[name]
