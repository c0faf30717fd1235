"""Typed, validated job configuration loaded from `conf/<env>.yaml` plus `--set key=value` overrides.

Every section is a pydantic model with `extra="forbid"`, so a typo fails with the key's full dotted
path and the keys that are allowed there; a bad value names the expected type or allowed values.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator


class ConfigError(ValueError):
    """A configuration problem, phrased as one line a user can act on."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors (``extra="forbid"``) and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


NAMESPACE_FORM = "catalog.schema: two names of letters, digits and underscores joined by one dot, e.g. main.seasonrec"
_NAMESPACE = re.compile(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+")
TableLocation = Literal["managed", "external"]


def split_namespace(namespace: str) -> tuple[str, str]:
    """``"catalog.schema"`` as (catalog, schema); `ValueError` (one line naming the allowed form) for
    anything else: empty parts, a third part, spaces or quotes (names a plain SQL identifier can hold)."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"must be {NAMESPACE_FORM}")
    catalog, schema = namespace.split(".")
    return catalog, schema


class PathsConfig(Section):
    """Where seasonrec keeps tables and files. Without ``table_namespace`` every Delta table is the folder
    ``<lake_root>/<name>`` (local runs, plain Spark). With it (Unity Catalog or another metastore, the
    delta-spark engine only) tables are ``<catalog>.<schema>.<name>`` and ``lake_root`` holds files only
    (``_staging``, streaming ``_incoming``) unless ``table_location`` is external."""

    lake_root: str = "lake"
    checkpoint_dir: str = "lake/_checkpoints"
    model_dir: str = "lake/_models"
    mlflow_dir: str = "lake/_mlflow"
    report_dir: str = "reports"
    petastorm_cache_dir: str = "lake/_petastorm_cache"
    table_namespace: str | None = Field(
        default=None, description="catalog.schema to keep the tables in, by name (delta-spark engine); None: "
                                  "path-based tables under lake_root")
    table_location: TableLocation = Field(
        default="managed", description="with table_namespace: managed (the catalog chooses the storage) or "
                                       "external (each table's LOCATION is <lake_root>/<name>, e.g. an abfss:// or "
                                       "s3:// external location; never a /Volumes/ path)")

    @field_validator("table_namespace")
    @classmethod
    def _namespace(cls, namespace: str | None) -> str | None:
        if namespace is not None:
            split_namespace(namespace)
        return namespace

    @field_validator("table_location")
    @classmethod
    def _external_not_in_a_volume(cls, location: str, info: ValidationInfo) -> str:
        # Databricks: a Unity Catalog volume holds files, never tables.
        lake_root = str(info.data.get("lake_root", ""))
        if location == "external" and info.data.get("table_namespace") and lake_root.startswith("/Volumes/"):
            raise ValueError(f"external puts the tables under lake_root {lake_root}, a Unity Catalog volume, which "
                             "cannot hold tables; use managed, or a lake_root on a cloud external location")
        return location

    def file_paths(self) -> dict[str, str]:
        """{key: value} of the folder settings (every field but the table namespace settings)."""
        return {k: v for k, v in self.model_dump().items() if k not in ("table_namespace", "table_location")}


class SparkConfig(Section):
    """The ``spark`` section: master, app name, driver memory, shuffle partitions, log level and extra Spark conf."""

    master: str | None = Field(default=None, description="None: keep what spark-submit/Databricks set, else local[*]")
    app_name: str = "seasonrec"
    driver_memory: str = "4g"
    shuffle_partitions: int = Field(default=8, ge=1)
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"
    conf: dict[str, str] = Field(default_factory=dict)


class SyntheticConfig(Section):
    """The ``data.synthetic`` section: size, dates, seed, popularity skew, re-buys, countries, cancellations and the
    planted cold-sensitive items of the generated data set (`seasonrec.data.synthetic`)."""

    seed: int = 42
    n_users: int = Field(default=2000, ge=10)
    n_items: int = Field(default=800, ge=10)
    n_events: int = Field(default=120_000, ge=100)
    start: dt.date = dt.date(2009, 12, 1)
    end: dt.date = dt.date(2011, 12, 31)
    zipf_exponent: float = Field(default=1.1, gt=0)
    repeat_share: float = Field(default=0.35, ge=0, le=1)
    countries: list[str] = Field(default_factory=lambda: ["GB", "DE", "FR", "CN", "AU"])
    user_zipf_exponent: float = Field(default=0.6, ge=0, description="skew of user activity")
    preferred_category_share: float = Field(default=0.3, ge=0, le=1,
                                            description="non-repeat buys from the user's favourite staple category")
    cancel_share: float = Field(default=0.02, ge=0, le=1, description="purchases later cancelled (C-invoices)")
    favourite_items: int = Field(default=4, ge=1, description="items per user that repeat buys come from")
    partitions: int | None = Field(default=None, ge=1, description="None: one per 1M events (min 2)")
    cold_sensitive_share: float = Field(
        default=0.05, ge=0, lt=1, description="extra purchases of the planted weather-sensitive items, as a share "
                                              "of n_events (carved out of them)")
    cold_sensitive_first_rank: int = Field(
        default=2, ge=1, description="popularity rank within the weather-sensitive category of the first planted "
                                     "item (1: its best seller); the planted items are that rank and the next ones")

    @model_validator(mode="after")
    def _range(self) -> SyntheticConfig:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


RequiredField = Literal["invoice", "user", "description", "country", "category"]
# data.<source>.timestamp_format: a Spark datetime pattern, or patterns tried in order.
TimestampFormat = str | list[str]
# The fields a file source can map (seasonrec.data.sources.FIELDS stages them in this order).
SOURCE_FIELDS = ("invoice", "user", "item", "timestamp", "quantity", "price", "description", "category", "country")


class FileSourceConfig(Section):
    """A file source (CSV/Parquet/JSON): where it is, how its fields map and parse, and what its rows
    promise (the per-source rules of `seasonrec.data.validation`)."""

    path: str = "../shared/data/online_retail/online_retail_2010-12_2011-09.csv.gz"
    format: Literal["csv", "parquet", "json"] = "csv"
    timestamp_format: TimestampFormat | None = Field(
        default=None, description="Spark datetime pattern of the timestamp column, or patterns tried in order; "
                                  "None: try the ISO formats and M/d/yyyy and d/M/yyyy H:mm, refusing a date "
                                  "that both read differently")
    timezone: str | None = Field(default=None, description="zone of naive timestamps (None: UTC), e.g. Europe/London")
    quarantine_max_share: float | None = Field(default=None, ge=0, le=1,
                                               description="overrides data.quarantine_max_share for this source")
    multiline: bool = Field(default=True, description="csv: quoted fields may hold line breaks (RFC 4180; one "
                                                      "task per file); false splits big files, and a record "
                                                      "broken by a line break is quarantined (field count)")
    required_fields: list[RequiredField] = Field(
        default_factory=lambda: ["invoice"], description="fields a row must have (item always); checked only "
                                                         "when the source maps the field")
    cancellation_prefix: str | None = Field(
        default="C", min_length=1, description="a negative quantity is valid only on an invoice starting with "
                                               "this; None: any negative quantity is a return")
    numeric_user_ids: bool = Field(default=False, description="customer ids are numbers ('17850' or '17850.0')")
    integer_quantities: bool = Field(default=True, description="quantities are units (whole numbers)")
    # Column mapping: seasonrec field -> source column name.
    columns: dict[str, str] = Field(
        default_factory=lambda: {
            "user": "CustomerID",
            "item": "StockCode",
            "timestamp": "InvoiceDate",
            "quantity": "Quantity",
            "price": "UnitPrice",
            "description": "Description",
            "country": "Country",
            "invoice": "InvoiceNo",
        }
    )

    # Other names a source's files may give a mapped column (e.g. Online Retail II's "Customer ID" for
    # CustomerID): used, per file, only when the mapped name is not among its columns.
    alternative_columns: dict[str, list[str]] = Field(
        default_factory=dict, description="field -> other column names it may have in a file, tried in order "
                                          "when data.<source>.columns' name is missing (ingest; data.file's "
                                          "also for the stream)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        # Checked here: Spark would fail on every row with a long JVM trace.
        if zone is not None and not _is_zone(zone):
            raise ValueError(f"unknown time zone {zone!r}; allowed: an IANA zone name such as Europe/London, "
                             "UTC, America/New_York")
        return zone

    @model_validator(mode="after")
    def _required_columns(self) -> FileSourceConfig:
        missing = {"user", "item", "timestamp", "quantity", "price"} - set(self.columns)
        if missing:
            raise ValueError(f"columns must map {sorted(missing)}; allowed fields: {', '.join(SOURCE_FIELDS)}")
        unmapped = sorted(set(self.alternative_columns) - set(self.columns))
        if unmapped:
            raise ValueError(f"alternative_columns names fields {unmapped} that columns does not map; allowed: "
                             f"{', '.join(sorted(self.columns))}")
        return self


def _is_zone(name: str) -> bool:
    """True when ``name`` is an IANA time zone (the names Spark's timestamp functions take)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


class ValidationConfig(Section):
    """Plausibility limits every ingested row must meet (the reasons are in `seasonrec.data.validation`)."""

    max_abs_quantity: float = Field(default=1e6, gt=0, description="largest |quantity| of one line")
    max_price: float = Field(default=1e6, gt=0, description="largest unit price")
    earliest_timestamp: dt.date = Field(default=dt.date(2000, 1, 1), description="older rows are refused")
    max_days_ahead: int = Field(default=1, ge=0, description="rows after the end of today + this many days "
                                                             "(UTC) are refused")


# Preset of --source online_retail (UCI file: ISO timestamps in UK local time, see its README; the ~25%
# rows without CustomerID are guest checkouts, kept as sales with no user; numeric customer ids; the rows
# without a description are stock notes with price 0, not sales). UCI's "Online Retail II" (id 502, Dec
# 2009 - Dec 2011, the same shop) names three columns differently: read as they are. Slash dates are not
# read by default: the workbook displays them month first, but a re-saved export may write them day first,
# and 1/12/2010 is then a different day; the job's refusal says which setting reads them.
ONLINE_RETAIL_PRESET: dict[str, Any] = {
    "timezone": "Europe/London", "timestamp_format": "yyyy-MM-dd HH:mm:ss", "numeric_user_ids": True,
    "required_fields": ["invoice", "description"],
    "alternative_columns": {"invoice": ["Invoice"], "price": ["Price"], "user": ["Customer ID"]}}


class DataConfig(Section):
    """The ``data`` section: which source ``seasonrec ingest`` reads (synthetic, online_retail, file), each source's
    settings, the quarantine threshold and the validation rules."""

    source: Literal["synthetic", "online_retail", "file"] = "synthetic"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    file: FileSourceConfig = Field(default_factory=FileSourceConfig)
    quarantine_max_share: float = Field(default=0.05, ge=0, le=1)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    online_retail: FileSourceConfig = Field(default_factory=lambda: FileSourceConfig(**ONLINE_RETAIL_PRESET))

    @model_validator(mode="before")
    @classmethod
    def _online_retail_keeps_preset(cls, data: Any) -> Any:
        # `--set data.online_retail.path=...` must change the path only, not drop the preset's other keys.
        if isinstance(data, dict) and isinstance(data.get("online_retail"), dict):
            data = {**data, "online_retail": {**ONLINE_RETAIL_PRESET, **data["online_retail"]}}
        return data


class SplitConfig(Section):
    """Time-based split: train < train_end <= validation < validation_end <= test < test_end."""

    train_end: dt.date = dt.date(2011, 8, 1)
    validation_end: dt.date = dt.date(2011, 9, 1)
    test_end: dt.date = dt.date(2011, 10, 1)

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if not self.train_end <= self.validation_end <= self.test_end:
            raise ValueError("dates must satisfy train_end <= validation_end <= test_end")
        return self


class FeaturesConfig(Section):
    """The ``features`` section: countries, product filters, salt, negative sampling, history lengths, popularity tiers,
    seasonality smoothing and text/category settings of the silver and gold tables."""

    countries: list[str] = Field(default_factory=lambda: ["GB", "DE", "FR", "CN", "AU", "US"])
    southern_hemisphere: list[str] = Field(default_factory=lambda: ["AU", "NZ", "ZA", "AR", "BR", "CL"])
    # Case-insensitive: Online Retail writes its manual line "M" and once "m"; Online Retail II adds the
    # adjustments ADJUST/ADJUST2 and test codes TEST001/TEST002.
    non_product_pattern: str = Field(
        default=r"(?i)^(POST|DOT|M|C2|BANK CHARGES|AMAZONFEE|PADS|CRUK|D|S|B|ADJUST\d*|gift_.*|TEST.*)$",
        description="Java regex of stock codes that are not products (postage, fees, manual adjustments)")
    salt_env: str = "SEASONREC_SALT"
    default_salt: str = "local-dev-salt"
    negatives_per_positive: int = Field(default=4, ge=0)
    popularity_negative_share: float = Field(default=0.5, ge=0, le=1)
    history_length: int = Field(default=20, ge=1)
    bought_items_max: int = Field(default=100, ge=1, description="items per user with exact re-buy counts")
    tail_share: float = Field(default=0.2, gt=0, lt=1, description="tail = items making the last share of volume")
    head_share: float = Field(default=0.5, gt=0, lt=1)
    seasonality_smoothing_weeks: int = Field(default=2, ge=0)
    seasonality_prior: float = Field(default=5.0, ge=0, description="pseudo-purchases shrinking sparse items to flat")
    text_vocab_size: int = Field(default=2000, ge=10)
    seed: int = 11
    # Category from description keywords (first match wins) when the source has no category column.
    category_keywords: dict[str, list[str]] = Field(default_factory=lambda: {
        "christmas": ["CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "BAUBLE", "NATIVITY"],
        "easter": ["EASTER", "BUNNY", "CHICK"],
        "bags": ["BAG", "PURSE"],
        "candles": ["CANDLE", "T-LIGHT", "TEALIGHT", "LANTERN", "INCENSE"],
        "kitchen": ["MUG", "CUP", "PLATE", "BOWL", "JAR", "TEA", "CAKE", "BAKING", "LUNCH BOX", "BOTTLE", "NAPKIN"],
        "stationery": ["CARD", "PAPER", "WRAP", "NOTEBOOK", "PEN", "PENCIL", "STICKER", "CALENDAR", "TAPE"],
        "garden": ["GARDEN", "FLOWER", "PLANT", "BIRD", "WATERING"],
        "toys": ["TOY", "GAME", "DOLL", "PUZZLE", "SPACEBOY", "PLAYHOUSE"],
        "textiles": ["CUSHION", "BLANKET", "TOWEL", "APRON", "HOT WATER BOTTLE"],
        "decor": ["HEART", "SIGN", "FRAME", "CLOCK", "DECORATION", "ORNAMENT", "HOLDER", "HOOK"],
    })

    @field_validator("non_product_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        # Checked here: Spark's rlike would fail on the first row with a long JVM trace. Python's and
        # Java's syntax agree on what such a pattern needs (alternation, classes, (?i)).
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression ({error}); allowed: a Java regex of whole stock codes, "
                             "e.g. (?i)^(POST|M|gift_.*)$") from None
        return pattern


TrainingBackend = Literal["horovod", "local"]


WeatherFeatures = Literal["auto", "on", "off"]


def on_off(value: Any) -> Any:
    """A bare YAML on/off (read as a boolean by YAML 1.1, in config files and `key=value` overrides)
    back to "on"/"off"; anything else unchanged."""
    return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class TrainingConfig(Section):
    """The ``training`` section: backend and processes, the two-tower model and its training loop, the ranker with
    its candidate pool, neighbours and weather features, and the MLflow tracking of ``seasonrec train``."""

    backend: TrainingBackend = Field(
        default="horovod", description="how the two-tower and the forecaster's LSTM train (seasonrec.core.backends): "
                                       "horovod (num_proc processes as Spark tasks) or local (one process, the "
                                       "driver; no Horovod needed)")
    num_proc: int = Field(default=2, ge=1)
    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=512, ge=1)
    learning_rate: float = Field(default=0.002, gt=0)
    warmup_epochs: int = Field(default=1, ge=0)
    embedding_dim: int = Field(default=32, ge=2)
    user_buckets: int = Field(default=20_000, ge=1)
    item_buckets: int = Field(default=20_000, ge=1)
    logq_strength: float = Field(
        default=0.3, ge=0,
        description="popularity (logQ) correction: in-batch logits always get -log q (sampling-bias "
                    "correction) and then +logq_strength * log q, so the learned score is debiased by "
                    "logq_strength * log popularity; 0 = popularity-faithful, 1 = plain in-batch softmax")
    temperature: float = Field(default=0.1, gt=0)
    use_calendar_context: bool = True
    early_stopping_patience: int = Field(default=2, ge=0)
    recall_k: int = Field(default=20, ge=1)
    reranker: bool = True
    weather_features: WeatherFeatures = Field(
        default="auto", description="the ranker's weather features (anomaly, spells, item weather sensitivity; "
                                    "seasonrec.features.item_weather): on, off, or auto = the ranker is fitted "
                                    "with and without them on the validation window and the weather one is kept "
                                    "only when its cross-fitted NDCG@10 is higher; the other is kept for "
                                    "seasonrec evaluate's weather ablation")
    rerank_candidates: int = Field(default=300, ge=1, description="ranker pool per user: every candidate "
                                                                  "source's proposals, then the two-tower's best")
    copurchase_neighbours: int = Field(default=20, ge=1, description="co-purchase and content neighbours kept "
                                                                     "per item")
    ranker_earlier_windows: int = Field(
        default=0, ge=0, description="windows as long as the validation window, just before split.train_end, whose "
                                     "purchases may also train the ranker (the two-tower's in-sample score left "
                                     "out); kept only when the cross-fitted NDCG@10 on validation users is higher; "
                                     "0 = the validation window only. Off by default: on Online Retail 2 lifted "
                                     "NDCG@10 in September but cost seasonal recall (docs/measurements.md, #13); "
                                     "and those windows lie inside the two-tower's training data, so their item "
                                     "popularity, repeat rate and season lift (fitted through train_end) include "
                                     "the windows' own purchases")
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "seasonrec"
    seed: int = 7

    @field_validator("weather_features", mode="before")
    @classmethod
    def _weather_on_off(cls, value: Any) -> Any:
        return on_off(value)


class ScoringConfig(Section):
    """The ``scoring`` section: list length, blocks and partitions, filters (bought, sellable, category cap), the second
    stage, fresh co-purchase neighbours and the long-tail ``discovery`` boost of ``seasonrec score``."""

    top_k: int = Field(default=20, ge=1)
    user_block_size: int = Field(default=1024, ge=1)
    exclude_bought: bool = False
    sellable_weeks: int = Field(default=26, ge=0, description="0 disables the sellable filter")
    max_per_category: int | None = Field(default=None, ge=1, description="category diversity cap per user list")
    partitions: int | None = Field(default=None, ge=1, description="None: 2x default parallelism")
    rerank: bool = Field(default=True, description="apply the model's second stage when it has one")
    fresh_copurchase: bool = Field(default=True, description="refit the ranker's co-purchase neighbours on "
                                   "every basket before the scored date (a Spark job per date); false: the "
                                   "model's own, fitted before split.train_end")
    rerank_candidates: int | None = Field(default=None, ge=1,
                                          description="first-stage candidates per user; None: training's")
    discovery: float | None = Field(
        default=None, ge=0, description="discovery boost: adds discovery x the spread of the user's scores x "
                                        "(1 for a long-tail item + 0.25 x its log lift in the weeks ahead, "
                                        "clipped to [0, 2]) to the ranker score of every candidate (users "
                                        "with a history only) below the user's top 10, which keep their place; "
                                        "None: the value training chose on validation users (the largest that "
                                        "keeps recall@20 and NDCG@10 within 5% of no boost in every "
                                        "cross-fitting fold)")


ForecastModel = Literal["gbm", "lstm", "seasonal_naive", "naive", "window_average", "ets", "croston", "tsb"]


class ForecastConfig(Section):
    """Weekly demand forecast per item: series, models, rolling-origin backtest, selection, cold start."""

    horizon: int = Field(default=13, ge=1, description="weeks forecast after --as-of (the CLI's --horizon wins)")
    quantiles: list[float] = Field(
        default_factory=lambda: [0.1, 0.5, 0.9],
        description="lower, median, upper quantile; stored in the p10/p50/p90 columns")
    lookback_weeks: int = Field(default=26, ge=4, description="weeks of history the LSTM reads")
    min_history_weeks: int = Field(default=8, ge=1, description="fewer weeks since the first sale: cold start")
    season_length: int = Field(default=52, ge=2)
    backtest_windows: int = Field(default=4, ge=1, description="rolling origins, each `horizon` weeks long; "
                                                                "the choice is made on windows 2.. and scored on 1")
    epochs: int = Field(default=10, ge=1)
    num_proc: int = Field(default=2, ge=1, description="Horovod processes for the LSTM")
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=0.003, gt=0)
    lstm_units: int = Field(default=32, ge=2)
    item_embedding_dim: int = Field(default=8, ge=1)
    example_stride: int = Field(default=1, ge=1, description="LSTM training origins every N weeks per item")
    seed: int = 17
    models: list[ForecastModel] = Field(
        default_factory=lambda: ["gbm", "lstm", "seasonal_naive", "naive", "window_average", "ets", "croston", "tsb"],
        min_length=1)
    combination: list[ForecastModel] = Field(
        default_factory=lambda: ["gbm", "ets", "tsb", "window_average"],
        description="models combined into the `combination` candidate (week by week: their median P10/P50/P90 and "
                    "average mean), which the backtest keeps only where it wins; members not in `models` are "
                    "skipped; [] or fewer than 2: none")
    item_sum_source: Literal["auto", "combination", "none", ForecastModel] = Field(
        default="auto", description="item forecasts summed per category and over the store into the `item_sum` "
                                    "candidate at those levels (forecasting.item_sums; chosen only where its "
                                    "backtest wins): auto = the model the item level chooses, or a named "
                                    "model; none, or a model the run does not forecast: no such candidate")
    selection: Literal["global", "volume_class"] = Field(
        default="global", description="one model per level (global), or per level and volume class (item series: "
                                      "smooth / intermittent), chosen on the backtest pinball loss")
    window_average_weeks: int = Field(default=4, ge=1, description="window of the window_average baseline")
    gbm_rounds: int = Field(default=200, ge=1, description="LightGBM boosting rounds per objective")
    gbm_learning_rate: float = Field(default=0.05, gt=0)
    gbm_num_leaves: int = Field(default=31, ge=2)
    gbm_min_data_in_leaf: int = Field(default=50, ge=1)
    gbm_mean_objective: Literal["regression", "tweedie", "poisson"] = Field(
        default="regression", description="LightGBM objective of the mean model (see forecasting.gbm)")
    gbm_tweedie_power: float = Field(default=1.3, gt=1, lt=2, description="variance power with gbm_mean_objective "
                                                                         "tweedie")
    gbm_origin_stride: int = Field(default=2, ge=1, description="gbm training origins every N weeks per item")
    gbm_max_history_weeks: int = Field(default=156, ge=4, description="gbm trains on origins at most this many "
                                                                      "weeks before the final cutoff")
    gbm_max_training_rows: int = Field(
        default=2_000_000, ge=0, description="cap on the item model's training rows (LightGBM trains on the driver): "
                                             "above it a hashed share of each item's training origins is kept; "
                                             "0: no cap")
    gbm_threads: int = Field(default=0, ge=0, description="LightGBM threads on the driver; 0: OpenMP default")
    weather_features: bool = Field(default=False, description="the item LightGBM model reads weather anomaly "
                                   "features from context_daily (observed up to each origin, decayed persistence "
                                   "after it; see forecasting.weather_features); off by default: see the README's "
                                   "weather section for the measured effect")
    gbm_aggregate_levels: bool = Field(default=True, description="also train a LightGBM model on the category and "
                                                                 "total series (a candidate at those levels)")
    gbm_aggregate_num_leaves: int = Field(default=15, ge=2, description="leaves of the category/total model")
    gbm_aggregate_min_data_in_leaf: int = Field(default=20, ge=1, description="min rows per leaf of the "
                                                                              "category/total model")
    reconciliation: Literal["auto", "bottom_up", "middle_out", "top_down"] = Field(
        default="auto", description="how item means are made to add up: bottom_up (aggregates = item sums), "
                                    "middle_out (items scaled to the category forecast), top_down (categories and "
                                    "items scaled to the total forecast); auto: the least biased on the backtest "
                                    "windows, bottom_up unless another is strictly less biased")
    drift_correction: Literal["auto", "on", "off"] = Field(
        default="auto", description="per-level multiplicative level correction learned on the backtest windows "
                                    "(median actual/mean ratio, shrunk towards 1, clipped to [0.67, 1.5]; see "
                                    "forecasting.drift): auto (default) applies it to a level's mean, and its "
                                    "quantiles, only where the factor estimated on windows 2.. lowers window 1's "
                                    "bias, and pinball (so nothing with one backtest window); on: always; off: never")
    ets_season_length: int = Field(default=1, ge=1, description="AutoETS season; 1 = non-seasonal (m=52 is slow "
                                                                 "and over-parameterised on 2 years of weeks)")
    tsb_alpha_d: float = Field(default=0.1, gt=0, le=1)
    tsb_alpha_p: float = Field(default=0.1, gt=0, le=1)
    baseline_groups: int | None = Field(default=None, ge=1, description="applyInPandas groups per origin; "
                                                                         "None: 2x default parallelism")

    @field_validator("drift_correction", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        return on_off(value)

    @model_validator(mode="after")
    def _consistent(self) -> ForecastConfig:
        q = self.quantiles
        if len(q) != 3 or not 0 < q[0] < q[1] < q[2] < 1 or abs(q[1] - 0.5) > 1e-9 or abs(q[0] + q[2] - 1) > 1e-9:
            raise ValueError(f"quantiles must be [lower, 0.5, 1 - lower] with 0 < lower < 0.5 (got {q})")
        if self.horizon + 1 > self.season_length - 2:
            raise ValueError(f"horizon ({self.horizon}) must be at most season_length - 3 "
                             f"({self.season_length - 3}): the LSTM reads last season's weeks")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must not repeat (got {self.models})")
        return self


EvaluationMethod = Literal["model", "model_no_context", "global_popularity", "recent_popularity",
                           "seasonal_popularity", "repeat_buy", "item_knn", "als"]


class EvaluationConfig(Section):
    """Offline evaluation: which methods run, their hyper-parameters, and metric definitions."""

    k_list: list[int] = Field(default_factory=lambda: [10, 20], min_length=1)
    methods: list[EvaluationMethod] = Field(
        default_factory=lambda: list(get_args(EvaluationMethod)),
        min_length=1, description="model/model_no_context are skipped (and reported) when no model artifact exists")
    recent_weeks: int = Field(default=4, ge=1)
    als_ranks: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    als_reg_params: list[float] = Field(default_factory=lambda: [0.01, 0.1], min_length=1)
    als_alphas: list[float] = Field(default_factory=lambda: [1.0, 10.0], min_length=1)
    als_max_iter: int = Field(default=10, ge=1)
    als_seed: int = 11
    tuning_metric: Literal["ndcg", "recall", "map", "precision", "hit_rate"] = "ndcg"
    knn_neighbors: int = Field(default=50, ge=1)
    knn_max_items_per_user: int = Field(default=100, ge=1, description="most recent distinct items per user "
                                                                           "used for co-purchase counts")
    seasonal_strength_quantile: float = Field(
        default=0.5, ge=0, lt=1, description="seasonal item = peak week in the window and seasonality_strength "
                                             "at or above this quantile of all items")
    report_top_items: int = Field(default=6, ge=1, description="items drawn in the seasonality/forecast plots")
    discovery_grid: list[float] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0, 2.0],
        description="scoring.discovery values the model is also evaluated at, for the report's NDCG@10 vs "
                    "tail share trade-off plot; [] skips the sweep")
    model_dir: str | None = Field(default=None, description="model artifact to evaluate; None: paths.model_dir")

    @model_validator(mode="after")
    def _positive_k(self) -> EvaluationConfig:
        if any(k < 1 for k in self.k_list):
            raise ValueError(f"k_list values must be >= 1 (got {self.k_list})")
        if any(v < 0 for v in self.discovery_grid):
            raise ValueError(f"discovery_grid values must be >= 0 (got {self.discovery_grid})")
        return self


class ServingConfig(Section):
    """`seasonrec register` (MLflow pyfunc model + registry) and `seasonrec serve` (`mlflow models serve`)."""

    model_name: str = Field(default="seasonrec-recommender", min_length=1,
                            description="registered model name (Unity Catalog: catalog.schema.name)")
    champion_alias: str = Field(default="champion", min_length=1, description="alias set on a version that "
                                "passes the quality gate; `seasonrec serve` serves it")
    gate_min_ratio: float = Field(default=1.0, ge=0, description="quality gate: the model's recall@k on the "
                                  "training run's test window must be >= this x repeat-buy's")
    host: str = Field(default="127.0.0.1", description="serve on loopback unless you mean it")
    port: int = Field(default=5001, ge=1, le=65535)
    activity_refresh_seconds: float = Field(default=10.0, gt=0, description="how often the served model reloads "
                                            "user_recent_activity (only when its Delta version changed)")
    workers: int = Field(default=1, ge=1, description="server worker processes (each loads the model)")


class StreamingConfig(Section):
    """`seasonrec stream`: purchase events as they land -> bronze_transactions / quarantine and
    user_recent_activity. Events are parsed like `ingest --source file`: the columns, timestamp_format
    and timezone of data.file apply."""

    source: Literal["files", "kafka"] = Field(default="files", description="files: new files in input_dir; "
                                              "kafka: kafka_topic, message value = one JSON event")
    input_dir: str | None = Field(default=None, description="folder watched for new files (names starting with "
                                                            "'.' or '_' are skipped); None: "
                                                            "<paths.lake_root>/_incoming")
    format: Literal["csv", "json"] = Field(default="csv", description="files: csv (a header line per file) or "
                                                                      "json (JSON lines, one event per line)")
    checkpoint_dir: str | None = Field(default=None, description="Spark checkpoint (exactly-once progress); "
                                                                 "None: <paths.checkpoint_dir>/stream")
    trigger_seconds: float = Field(default=10.0, gt=0, description="micro-batch interval of the continuous mode")
    recent_items_max: int = Field(default=50, ge=1, description="items kept per user in user_recent_activity")
    kafka_bootstrap_servers: str | None = Field(default=None, description="host:port[,host:port] (source kafka)")
    kafka_topic: str | None = Field(default=None, description="topic to subscribe to (source kafka)")
    max_files_per_trigger: int | None = Field(default=None, ge=1, description="files (source files) or messages "
                                                                              "(source kafka) per micro-batch; "
                                                                              "None: all that are new")

    @model_validator(mode="after")
    def _kafka_settings(self) -> StreamingConfig:
        if self.source == "kafka" and not (self.kafka_bootstrap_servers and self.kafka_topic):
            raise ValueError("source kafka needs kafka_bootstrap_servers and kafka_topic")
        return self


class MaintenanceConfig(Section):
    """`seasonrec maintain`: what Delta files it may delete."""

    retention_hours: int = Field(default=168, ge=0, description="unreferenced table files and _staging "
                                 "leftovers untouched this long are deleted; time travel reaches back this far "
                                 "only, and a write running longer than this could lose its files")


class WeatherConfig(Section):
    """Daily weather context (`context_daily`, built by `seasonrec features`, see seasonrec.features.weather)."""

    source: Literal["none", "file", "synthetic"] = Field(
        default="synthetic", description="none: no context_daily (weather features fall back to normals / zero "
                                         "anomaly); file: path (CSV/Parquet with date, region, temp_mean_c and "
                                         "optional precipitation_mm, sunshine_h); synthetic: the generator's seeded "
                                         "weather (one region per data.synthetic.countries code)")
    path: str = Field(default="../shared/data/weather/hadcet_daily_1991_2021.csv",
                      description="file source: the observations (relative paths resolve from the working dir)")
    format: Literal["csv", "parquet"] = "csv"
    regions: dict[str, str] = Field(
        default_factory=lambda: {"GB": "central_england"},
        description="file source: country (ISO-2 code or name, as silver normalises it) -> weather region; "
                    "countries without one get weather_known=false and null weather, never an error")
    normal_first_year: int = Field(default=1991, ge=1700, description="climate normal period (1991-2020, the WMO "
                                                                      "standard); where the source covers less, "
                                                                      "the longest available span")
    normal_last_year: int = Field(default=2020, ge=1700)
    normal_smoothing_days: int = Field(default=31, ge=1, description="circular moving average of day-of-year "
                                                                     "means (odd number of days)")
    rolling_days: int = Field(default=7, ge=1, description="trailing window of anomaly_7d_c")
    cold_spell_c: float = Field(default=-2.0, lt=0, description="cold_spell: trailing anomaly <= this (deg C)")
    warm_spell_c: float = Field(default=2.0, gt=0, description="warm_spell: trailing anomaly >= this (deg C)")
    min_temp_c: float = Field(default=-60.0, description="rows below are quarantined (temperature_out_of_range)")
    max_temp_c: float = Field(default=60.0, description="rows above are quarantined (temperature_out_of_range)")

    @model_validator(mode="after")
    def _consistent(self) -> WeatherConfig:
        if self.normal_last_year < self.normal_first_year:
            raise ValueError("normal_last_year must be >= normal_first_year")
        if self.normal_smoothing_days % 2 == 0:
            raise ValueError(f"normal_smoothing_days must be odd (got {self.normal_smoothing_days})")
        if self.min_temp_c >= self.max_temp_c:
            raise ValueError("min_temp_c must be below max_temp_c")
        return self


class SeasonrecConfig(Section):
    """The whole configuration (``conf/<env>.yaml`` plus ``--set`` overrides): ``env`` and one field per section (paths,
    spark, data, split, features, training, scoring, forecast, evaluation, serving, streaming, maintenance, weather)."""

    env: str = "local"
    paths: PathsConfig = Field(default_factory=PathsConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    weather: WeatherConfig = Field(default_factory=WeatherConfig)

    def resolve_paths(self, base: Path) -> SeasonrecConfig:
        """Make relative local paths absolute against `base` (URIs like dbfs:/ or s3:// are kept)."""
        resolved = self.paths.model_copy()
        for name, value in resolved.file_paths().items():
            if "://" not in value and ":/" not in value and not os.path.isabs(value):
                setattr(resolved, name, str((base / value).resolve()))
        return self.model_copy(update={"paths": resolved})


def _section_model(model: type[BaseModel], dotted: list[str]) -> type[BaseModel] | None:
    for part in dotted:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _format_error(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        section = _section_model(SeasonrecConfig, loc[:-1])
        allowed = ", ".join(section.model_fields) if section else "(none)"
        return f"unknown config key '{key}'; allowed keys here: {allowed}"
    return f"config key '{key}': {err['msg']} (got {err.get('input')!r})"


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.epochs=3` -> (['training', 'epochs'], 3); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def _apply_override(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{'.'.join(keys)}': '{key}' is a value, not a section")
        node = child
    node[keys[-1]] = value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
                base_dir: str | os.PathLike | None = None) -> SeasonrecConfig:
    """Load `path` (YAML), apply `overrides` (later wins), validate, and resolve relative paths.

    Relative paths resolve against `base_dir` (default: the current directory) so jobs started
    from the repo root and from spark-submit agree on where the lake is.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            tree = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
    for override in overrides or []:
        _apply_override(tree, *parse_override(override))
    try:
        config = SeasonrecConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError("; ".join(_format_error(e) for e in exc.errors())) from None
    return config.resolve_paths(Path(base_dir or os.getcwd()))
