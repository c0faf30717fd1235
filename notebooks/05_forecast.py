# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Forecast (weekly demand)
# MAGIC
# MAGIC Weekly demand per item with p10/p50/p90 intervals: a global LSTM (Horovod) and statistical baselines, chosen
# MAGIC per series by backtest; writes `gold_weekly_demand` and `demand_forecast`.
# MAGIC
# MAGIC Same code path as `seasonrec forecast`, `make forecast` and `spark-submit jobs/forecast.py`: this notebook
# MAGIC only collects parameters and calls `seasonrec.cli.run_job("forecast", ...)`, which runs
# MAGIC `seasonrec.forecasting.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `as_of` | `SEASONREC_AS_OF` | forecast origin YYYY-MM-DD (default: last full week) |
# MAGIC | `horizon` | `SEASONREC_HORIZON` | weeks ahead (default: forecast.horizon) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec forecast` options |

# COMMAND ----------

# DBTITLE 1,Setup
import os
import shlex
import sys
from pathlib import Path

try:
    dbutils  # noqa: B018,F821 - injected by Databricks
    ON_DATABRICKS = True
except NameError:
    ON_DATABRICKS = False

# Outside an installed wheel (a Databricks Repo / workspace files), import seasonrec from ../lib.
for candidate in (Path.cwd() / "lib", Path.cwd().parent / "lib"):
    if (candidate / "seasonrec").is_dir() and str(candidate) not in sys.path:
        sys.path.insert(0, str(candidate))


def param(name: str, default: str = "", label: str = "") -> str:
    """A text widget on Databricks (job tasks fill it from base_parameters); elsewhere the
    environment variable SEASONREC_<NAME>, else the default."""
    if ON_DATABRICKS:
        dbutils.widgets.text(name, default, label or name)  # noqa: F821
        return dbutils.widgets.get(name).strip()  # noqa: F821
    return os.environ.get(f"SEASONREC_{name.upper()}", default).strip()


def show(df, rows: int = 10) -> None:
    """display() on Databricks, a text table elsewhere."""
    if ON_DATABRICKS:
        display(df.limit(rows))  # noqa: F821
    else:
        df.show(rows, truncate=60)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Parameters

# COMMAND ----------

# DBTITLE 1,Parameters
conf = param("conf", "../conf/databricks.yaml" if ON_DATABRICKS else "conf/local.yaml", "config file")
overrides = shlex.split(param("set", "", "overrides key=value ..."))
job_options: list[str] = []
as_of = param("as_of", "", "forecast origin YYYY-MM-DD")
if as_of:
    job_options += ["--as-of", as_of]
horizon = param("horizon", "", "weeks ahead")
if horizon:
    job_options += ["--horizon", horizon]
job_options += shlex.split(param("options", "", "other job options"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `forecast`

# COMMAND ----------

# DBTITLE 1,Run forecast
from seasonrec.cli import build_parser, run_job

JOB = "forecast"
argv = [JOB, "--conf", conf, *[arg for kv in overrides for arg in ("--set", kv)], *job_options]
args = build_parser(only=JOB).parse_args(argv)
summary = run_job(JOB, args)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Outputs
# MAGIC Latest version, row count and a sample of each table the job writes.

# COMMAND ----------

# DBTITLE 1,Outputs
from seasonrec import tables
from seasonrec.config import load_config
from seasonrec.lake import Lake
from seasonrec.spark import get_spark

OUTPUT_TABLES = [
    tables.WEEKLY_DEMAND,
    tables.DEMAND_FORECAST,
]

config = load_config(conf, overrides)
lake = Lake(get_spark(config), config.paths.lake_root)
for table in OUTPUT_TABLES:
    if lake.exists(table):
        print(f"{table}: version {lake.version(table)}, {lake.read(table).count()} rows at {lake.path(table)}")
        show(lake.read(table))
    else:
        print(f"{table}: not written by this run")
