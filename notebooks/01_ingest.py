# Databricks notebook source
# MAGIC %md
# MAGIC # seasonrec · Ingest (bronze)
# MAGIC
# MAGIC Loads the configured source (the embedded synthetic generator by default, the UCI Online Retail files, or any
# MAGIC mapped CSV/Parquet/JSON file) into `bronze_transactions`; bad rows go to `quarantine` with a reason. Re-runs
# MAGIC MERGE on a row hash, so they never duplicate rows.
# MAGIC
# MAGIC Same code path as `seasonrec ingest`, `make ingest` and `spark-submit jobs/ingest.py`: this notebook only
# MAGIC collects parameters and calls `seasonrec.cli.run_job("ingest", ...)`, which runs `seasonrec.data.jobs.run`.
# MAGIC
# MAGIC **Parameters** — widgets on Databricks, environment variables elsewhere:
# MAGIC
# MAGIC | widget | environment (local) | meaning |
# MAGIC |---|---|---|
# MAGIC | `conf` | `SEASONREC_CONF` | config file (`../conf/databricks.yaml` on Databricks, `conf/local.yaml` locally) |
# MAGIC | `set` | `SEASONREC_SET` | space-separated `section.key=value` overrides |
# MAGIC | `source` | `SEASONREC_SOURCE` | source: synthetic|online_retail|file (default: data.source) |
# MAGIC | `path` | `SEASONREC_PATH` | input path for file/online_retail sources |
# MAGIC | `since` | `SEASONREC_SINCE` | only rows on/after this date (YYYY-MM-DD) |
# MAGIC | `options` | `SEASONREC_OPTIONS` | any other `seasonrec ingest` options |

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
source = param("source", "", "source: synthetic|online_retail|file")
if source:
    job_options += ["--source", source]
path = param("path", "", "input path for file/online_retail sources")
if path:
    job_options += ["--path", path]
since = param("since", "", "only rows on/after this date")
if since:
    job_options += ["--since", since]
job_options += shlex.split(param("options", "", "other job options"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Run `ingest`

# COMMAND ----------

# DBTITLE 1,Run ingest
from seasonrec.cli import build_parser, run_job

JOB = "ingest"
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
    tables.BRONZE_TRANSACTIONS,
    tables.QUARANTINE,
]

config = load_config(conf, overrides)
lake = Lake(get_spark(config), config.paths.lake_root)
for table in OUTPUT_TABLES:
    if lake.exists(table):
        print(f"{table}: version {lake.version(table)}, {lake.read(table).count()} rows at {lake.path(table)}")
        show(lake.read(table))
    else:
        print(f"{table}: not written by this run")
